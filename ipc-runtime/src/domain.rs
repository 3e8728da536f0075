//! Domains: the prefix of every name the framework puts into the operating system.
//!
//! Shared-memory objects, lock files and sockets are all named `<domain>.<kind>.<name>`. The
//! domain is `ipc` unless the environment variable `IPC_DOMAIN` says otherwise (read once per
//! process) or a builder passes its own. Different domains never see each other, which is how
//! tests run in parallel and clean up after themselves.

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
        Ok(value) => match validate(&value, "domain") {
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
pub fn set_current(domain: &str) -> Result<()> {
    validate(domain, "domain")?;
    let current = DOMAIN.get_or_init(|| domain.to_owned());
    if current == domain {
        Ok(())
    } else {
        Err(Error::DomainAlreadySet { current: current.clone(), requested: domain.to_owned() })
    }
}

/// Checks that `name` can be part of an OS object name: 1 to [`MAX_NAME_LEN`] bytes of ASCII
/// letters, digits, `_`, `-` and (not first) `.`.
///
/// ```
/// use ipc_runtime::domain::validate;
///
/// assert!(validate("sensors.imu-1", "topic").is_ok());
/// assert!(validate("../etc", "topic").is_err());
/// ```
pub fn validate(name: &str, what: &'static str) -> Result<()> {
    validate_up_to(name, what, MAX_NAME_LEN)
}

/// Like [`validate`] with a different length limit (for names the framework composes from
/// validated parts, such as lock names).
pub(crate) fn validate_up_to(name: &str, what: &'static str, max: usize) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > max {
        Some(if max == MAX_NAME_LEN {
            "is longer than 100 bytes"
        } else {
            "is longer than the limit for composed names"
        })
    } else if name.starts_with('.') {
        Some("must not start with `.`")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
        Some("may only contain ASCII letters, digits, `_`, `-` and `.`")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName { name: format!("{what} {name}"), reason }),
    }
}

/// Joins a domain, an object kind and a name into the full OS-level name.
pub(crate) fn object_name(domain: &str, kind: &str, name: &str) -> String {
    format!("{domain}.{kind}.{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_names_with_reason() {
        for bad in ["", ".hidden", "a/b", "a b", "ü", &"x".repeat(101)] {
            let err = validate(bad, "topic").unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?} -> {err}");
        }
        validate("a.b-c_9", "topic").unwrap();
    }
}
