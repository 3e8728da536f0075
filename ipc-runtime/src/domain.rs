//! Domains: the prefix of every name the framework puts into the operating system.
//!
//! The domain is `ipc` unless the environment variable `IPC_DOMAIN` says otherwise (read once per
//! process) or a builder passes its own. Different domains never see each other, which is how
//! tests run in parallel and clean up after themselves.
//!
//! # OS names
//!
//! Shared-memory objects, lock files and sockets are all named
//! `<domain>.<kind>.<encoded name>[.<suffix>...]`:
//!
//! * the **domain** is ASCII letters, digits, `_` and `-` ([`validate_domain`]): no `.`;
//! * the **kind** is a fixed lowercase word (`topic`, `event`, `heap`, `bell`, `raw`, `lock`);
//! * the **name** of a topic or event may hold `.` and `/` (hierarchical names such as
//!   `robot/arm/joints`, see [`validate`]); it is [encoded](encode_name) with `.` → `,` and
//!   `/` → `+`, characters a valid name never contains, so the encoding is reversible and has
//!   no `.` ([`decode_name`]): `robot/arm/joints` is `ipc.topic.robot+arm+joints` in
//!   `ls /dev/shm`;
//! * **suffixes** are the framework's own (slot letters and numbers, generations, `space`,
//!   `sock`).
//!
//! Since neither the domain nor the encoded name contains a `.`, splitting an OS name at its
//! dots gives back domain, kind, name and suffixes unambiguously: the encoding is injective,
//! and a name starts with `<domain>.` only if it belongs to that domain. Listings
//! ([`parse_object_name`], `inspect`, `ipc list`/`clean`) take the component after
//! `<domain>.<kind>.` and decode it, so a topic's token or socket (which carries a suffix) is
//! never taken for a topic, and domain `A` never sees objects of another domain (before this
//! scheme, `ipc clean --domain A` matched the objects of a domain called `A.lock.x`).
//! Lock and token names (the part after `<domain>.lock.`) are `.`-separated parts composed the
//! same way: `topic.<encoded name>`, `topic.<encoded name>.p0.3`, `heap.<id>`.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Environment variable that sets the process's default domain.
pub const DOMAIN_ENV: &str = "IPC_DOMAIN";

/// Domain used when `IPC_DOMAIN` is not set.
pub const DEFAULT_DOMAIN: &str = "ipc";

/// Longest accepted domain or object name, in bytes. OS object names are limited (255 bytes on
/// Linux, `MAX_PATH` on Windows) and a full name joins a domain, a kind and a name.
pub const MAX_NAME_LEN: usize = 100;

/// The process's default domain: `IPC_DOMAIN` if set and valid, else [`DEFAULT_DOMAIN`].
///
/// An invalid `IPC_DOMAIN` is reported once through `tracing` and replaced by the default, so a
/// typo cannot make two programs silently talk past each other without a trace.
///
/// ```
/// let domain = ipc_runtime::domain::current();
/// assert!(!domain.is_empty());
/// ```
pub fn current() -> &'static str {
    DOMAIN.get_or_init(|| match std::env::var(DOMAIN_ENV) {
        Ok(value) => match validate_domain(&value) {
            Ok(()) => value,
            Err(err) => {
                tracing::error!("{DOMAIN_ENV} ignored: {err}; using `{DEFAULT_DOMAIN}`");
                DEFAULT_DOMAIN.to_owned()
            }
        },
        // Unit tests of this crate stay out of the user's default domain.
        Err(_) if cfg!(test) => format!("ut{}", std::process::id()),
        Err(_) => DEFAULT_DOMAIN.to_owned(),
    })
}

static DOMAIN: OnceLock<String> = OnceLock::new();

/// Sets the process's default domain programmatically, before anything used it. Succeeds if
/// the domain is already `domain`; fails with [`Error::DomainAlreadySet`] if it is another one
/// (objects may already exist under the old name).
///
/// ```
/// let name = format!("doc-{}", std::process::id());
/// ipc_runtime::domain::set_current(&name).unwrap();
/// assert_eq!(ipc_runtime::domain::current(), name);
/// assert!(ipc_runtime::domain::set_current("other").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidName`] if `domain` is not a valid domain name ([`validate_domain`]);
/// [`Error::DomainAlreadySet`] if the process's domain is already another one (set before,
/// or fixed by a first use, from `IPC_DOMAIN` or the default).
pub fn set_current(domain: &str) -> Result<()> {
    validate_domain(domain)?;
    let current = DOMAIN.get_or_init(|| domain.to_owned());
    if current == domain {
        Ok(())
    } else {
        Err(Error::DomainAlreadySet { current: current.clone(), requested: domain.to_owned() })
    }
}

/// Checks a topic or event name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits, `_`,
/// `-`, `.` (not first) and `/` between non-empty parts (hierarchical names such as
/// `robot/arm/joints`). The name is [encoded](encode_name) into OS names, so `.` and `/` in it
/// never reach the file system as such.
///
/// ```
/// use ipc_runtime::domain::validate;
///
/// assert!(validate("sensors.imu-1", "topic").is_ok());
/// assert!(validate("robot/arm/joints", "topic").is_ok());
/// assert!(validate("../etc", "topic").is_err());
/// assert!(validate("/robot", "topic").is_err());
/// assert!(validate("robot//arm", "topic").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidName`] saying which rule `name` breaks.
pub fn validate(name: &str, what: &'static str) -> Result<()> {
    match name_problem(name) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName { what, name: name.to_owned(), reason }),
    }
}

/// Why `name` is not a valid topic or event name, or `None` if it is. `ipc-derive` checks
/// `#[shm(topic = "...")]` with a copy of this rule (its tests check that both agree).
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("is longer than 100 bytes")
    } else if name.starts_with('.') {
        Some("must not start with `.`")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
    {
        Some("may only contain ASCII letters, digits, `_`, `-`, `.` and `/`")
    } else if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        Some("may only use `/` between non-empty parts (`a/b/c`)")
    } else {
        None
    }
}

/// Checks a domain name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits, `_` and `-`.
/// No `.`: it separates the domain from the rest of every OS name (see the module docs).
///
/// ```
/// use ipc_runtime::domain::validate_domain;
///
/// assert!(validate_domain("robot-1").is_ok());
/// assert!(validate_domain("A.lock.x").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidName`] saying which rule `domain` breaks.
pub fn validate_domain(domain: &str) -> Result<()> {
    let reason = if domain.is_empty() {
        Some("must not be empty")
    } else if domain.len() > MAX_NAME_LEN {
        Some("is longer than 100 bytes")
    } else if !domain.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')) {
        Some("may only contain ASCII letters, digits, `_` and `-` (no `.`)")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName { what: "domain", name: domain.to_owned(), reason }),
    }
}

/// Encodes a [valid](validate) topic or event name for use in OS names: `.` becomes `,` and
/// `/` becomes `+`; every other byte stays. Neither `,` nor `+` occurs in a valid name, so the
/// encoding is reversible ([`decode_name`]), and its result never contains `.`.
///
/// ```
/// use ipc_runtime::domain::{decode_name, encode_name};
///
/// assert_eq!(encode_name("robot/arm/joints"), "robot+arm+joints");
/// assert_eq!(encode_name("sensors.imu"), "sensors,imu");
/// assert_eq!(decode_name("robot+arm+joints").as_deref(), Some("robot/arm/joints"));
/// ```
pub fn encode_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '.' => ',',
            '/' => '+',
            c => c,
        })
        .collect()
}

/// Reverses [`encode_name`]: `None` unless `encoded` is the encoding of a valid name (so a
/// file name with a `.` in the name part, such as a token or socket of a topic, is not taken
/// for a topic).
pub fn decode_name(encoded: &str) -> Option<String> {
    if encoded.contains(['.', '/']) {
        return None;
    }
    let name: String = encoded
        .chars()
        .map(|c| match c {
            ',' => '.',
            '+' => '/',
            c => c,
        })
        .collect();
    name_problem(&name).is_none().then_some(name)
}

/// Checks a lock or token name (see [`crate::liveness`]): `.`-separated non-empty parts of
/// ASCII letters, digits, `_`, `-` and the [encoding](encode_name) characters `,` and `+`, at
/// most `max` bytes. The framework composes them from encoded names and fixed words.
pub(crate) fn validate_lock_name(name: &str, max: usize) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > max {
        Some("is longer than the limit for composed names")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b',' | b'+'))
    {
        Some("may only contain ASCII letters, digits, `_`, `-`, `,`, `+` and `.`")
    } else if name.split('.').any(str::is_empty) {
        Some("must be `.`-separated non-empty parts")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName { what: "lock", name: name.to_owned(), reason }),
    }
}

/// Joins a domain, an object kind and a name into the full OS-level name
/// `<domain>.<kind>.<encoded name>`. The parts must be valid ([`validate_domain`], a fixed
/// kind word, [`validate`]).
pub(crate) fn object_name(domain: &str, kind: &str, name: &str) -> String {
    format!("{domain}.{kind}.{}", encode_name(name))
}

/// Splits an OS name `<domain>.<kind>.<encoded name>` into domain, kind and (decoded) name;
/// `None` for anything else, including names with a suffix after the name part.
///
/// ```
/// use ipc_runtime::domain::parse_object_name;
///
/// let parsed = parse_object_name("robot.topic.arm+joints").unwrap();
/// assert_eq!(parsed, ("robot", "topic", "arm/joints".to_owned()));
/// assert!(parse_object_name("robot.topic.arm.p0.1").is_none());
/// ```
pub fn parse_object_name(os_name: &str) -> Option<(&str, &str, String)> {
    let mut parts = os_name.splitn(3, '.');
    let (domain, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
    validate_domain(domain).ok()?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Some((domain, kind, decode_name(name)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_names_with_reason() {
        for bad in ["", ".hidden", "/a", "a/", "a//b", "a b", "a,b", "a+b", "ü", &"x".repeat(101)]
        {
            let err = validate(bad, "topic").unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?} -> {err}");
        }
        validate("a.b-c_9", "topic").unwrap();
        validate("robot/arm/joints", "topic").unwrap();
        for bad in ["", "a.b", "a/b", "a,b", "a+b", &"x".repeat(101)] {
            assert!(validate_domain(bad).is_err(), "{bad:?}");
        }
        validate_domain("ut-1_x").unwrap();
        // The message names what the name is for outside the quotes, the name alone inside.
        assert_eq!(
            validate("robot arm", "topic").unwrap_err().to_string(),
            "invalid topic name `robot arm`: may only contain ASCII letters, digits, `_`, `-`, \
             `.` and `/`"
        );
        assert_eq!(
            validate_domain("a.b").unwrap_err().to_string(),
            "invalid domain name `a.b`: may only contain ASCII letters, digits, `_` and `-` (no `.`)"
        );
    }

    /// Every valid name round-trips, distinct names encode to distinct strings without `.`,
    /// and nothing but an encoding decodes.
    #[test]
    fn encoding_is_injective_and_dot_free() {
        let alphabet = ["", ".", "/", "a", "_", "-", ",", "+"];
        let mut seen = std::collections::HashMap::new();
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        let name = format!("{a}{b}{c}{d}");
                        let encoded = encode_name(&name);
                        if validate(&name, "topic").is_ok() {
                            assert!(!encoded.contains('.'), "{name:?} -> {encoded:?}");
                            assert_eq!(decode_name(&encoded).as_deref(), Some(name.as_str()));
                            if let Some(other) = seen.insert(encoded.clone(), name.clone()) {
                                assert_eq!(other, name, "two names encode to {encoded:?}");
                            }
                        } else if let Some(decoded) = decode_name(&name) {
                            assert_eq!(encode_name(&decoded), name);
                        }
                    }
                }
            }
        }
    }

    /// The names that used to alias: an OS name belongs to exactly one (domain, kind, name).
    #[test]
    fn object_names_parse_back_to_their_parts() {
        assert!(validate_domain("A.lock.x").is_err());
        assert!(validate_domain("A.topic.t").is_err());
        let name = object_name("A", "topic", "t.x/y");
        assert_eq!(name, "A.topic.t,x+y");
        assert_eq!(parse_object_name(&name), Some(("A", "topic", "t.x/y".to_owned())));
        assert_eq!(parse_object_name("A.topic.t.p0.1"), None);
        assert_eq!(parse_object_name("A.B.topic.t"), None);
    }
}
