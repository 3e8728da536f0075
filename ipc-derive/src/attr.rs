//! The derive's own attribute, `#[shm(...)]`, on the type:
//!
//! - `#[shm(topic = "robot.pose")]` binds the type to a topic (`impl Topic`). The name is
//!   validated here, at compile time, with the rule of `ipc_runtime::domain::validate`.
//! - `#[shm(crate = "path::to::ipc_runtime")]` names the runtime crate when it is renamed in
//!   `Cargo.toml` or reached through a re-export; the expansion then uses that path instead of
//!   `::ipc_runtime`.
//!
//! - Topic-wide options next to the topic: `history = 4`, `capacity = 16` (or
//!   `subscriber_capacity`), `max_subscribers = 8`, `max_publishers = 2`, `max_borrowed = 8`,
//!   `overflow = "block"` (or `"drop_oldest"`), which become `Topic::OPTIONS`, so that
//!   `Type::publisher()` and `Type::subscriber()` agree whoever starts first. Ranges and
//!   `history <= capacity` are checked here.
//!
//! Several keys may share one attribute or be split over several. Unknown keys, repeated keys,
//! malformed values and `#[shm]` on fields or variants are errors at their own spans.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Path};

use crate::ctxt::Ctxt;

/// Longest topic name, in bytes; the same limit as `ipc_runtime::domain::MAX_NAME_LEN`.
const MAX_NAME_LEN: usize = 100;

/// The `#[shm(...)]` settings of a type.
#[derive(Default)]
pub(crate) struct Container {
    /// The topic name, when given and valid.
    pub(crate) topic: Option<LitStr>,
    /// The path to the runtime crate, when given and valid.
    pub(crate) krate: Option<Path>,
    /// Topic options given with the topic: (builder method, value), in order.
    pub(crate) options: Vec<(&'static str, TopicOption)>,
}

/// The value of one topic option.
pub(crate) enum TopicOption {
    /// A count.
    Count(u32),
    /// `overflow`: whether it is `Block`.
    Block(bool),
}

/// The numeric options: attribute key, builder method, allowed range (the runtime's limits).
const COUNT_OPTIONS: &[(&str, &str, u32, u32)] = &[
    ("history", "history", 0, 1 << 16),
    ("capacity", "subscriber_capacity", 1, 1 << 16),
    ("subscriber_capacity", "subscriber_capacity", 1, 1 << 16),
    ("max_subscribers", "max_subscribers", 1, 1024),
    ("max_publishers", "max_publishers", 1, 64),
    ("max_borrowed", "max_borrowed", 1, 1 << 16),
];

impl Container {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = Container::default();
        // The first occurrence of each key, even an invalid one, so repeats are reported once.
        let mut seen_topic = false;
        let mut seen_crate = false;
        for attr in attrs.iter().filter(|attr| attr.path().is_ident("shm")) {
            if attr.meta.require_list().is_err() {
                cx.error_spanned_by(
                    attr,
                    "expected `#[shm(topic = \"...\")]` or `#[shm(crate = \"...\")]`",
                );
                continue;
            }
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("topic") {
                    let lit = string_value(&meta, "topic = \"robot.pose\"")?;
                    if std::mem::replace(&mut seen_topic, true) {
                        cx.error_spanned_by(&meta.path, "duplicate `topic`: a type has one topic");
                    } else if let Err(reason) = validate_topic(&lit.value()) {
                        cx.error_at(
                            lit.span(),
                            format!("invalid topic name {:?}: it {reason}", lit.value()),
                        );
                    } else {
                        out.topic = Some(lit);
                    }
                } else if let Some(&(key, method, min, max)) =
                    COUNT_OPTIONS.iter().find(|(key, ..)| meta.path.is_ident(key))
                {
                    let lit: syn::LitInt = meta.value()?.parse()?;
                    match lit.base10_parse::<u32>() {
                        Ok(n) if (min..=max).contains(&n) => {
                            if out.options.iter().any(|(m, _)| *m == method) {
                                cx.error_spanned_by(&meta.path, format!("duplicate `{key}`"));
                            } else {
                                out.options.push((method, TopicOption::Count(n)));
                            }
                        }
                        _ => cx.error_at(
                            lit.span(),
                            format!("`{key}` must be a whole number from {min} to {max}"),
                        ),
                    }
                } else if meta.path.is_ident("overflow") {
                    let lit = string_value(&meta, "overflow = \"block\"")?;
                    let block = match lit.value().as_str() {
                        "block" | "Block" => Some(true),
                        "drop_oldest" | "DropOldest" => Some(false),
                        _ => None,
                    };
                    match block {
                        Some(_) if out.options.iter().any(|(m, _)| *m == "overflow") => {
                            cx.error_spanned_by(&meta.path, "duplicate `overflow`");
                        }
                        Some(block) => out.options.push(("overflow", TopicOption::Block(block))),
                        None => cx.error_at(
                            lit.span(),
                            format!(
                                "`overflow` is \"drop_oldest\" or \"block\", not {:?}",
                                lit.value()
                            ),
                        ),
                    }
                } else if meta.path.is_ident("crate") {
                    let lit = string_value(&meta, "crate = \"ipc_runtime\"")?;
                    if std::mem::replace(&mut seen_crate, true) {
                        cx.error_spanned_by(
                            &meta.path,
                            "duplicate `crate`: name the runtime crate once",
                        );
                    } else {
                        match lit.parse::<Path>() {
                            Ok(path) => out.krate = Some(path),
                            Err(_) => cx.error_at(
                                lit.span(),
                                format!(
                                    "`crate` must be the path of the `ipc_runtime` crate as it is \
                                     named here, like `crate = \"ipc_runtime\"` or \
                                     `crate = \"my_crate::ipc\"`, not {:?}",
                                    lit.value()
                                ),
                            ),
                        }
                    }
                } else {
                    let path = &meta.path;
                    let name = quote!(#path).to_string().replace(' ', "");
                    cx.error_spanned_by(
                        &meta.path,
                        format!(
                            "unknown `shm` attribute `{name}`: expected `topic`, `crate`, or a \
                             topic option (`history`, `capacity`, `max_subscribers`, \
                             `max_publishers`, `max_borrowed`, `overflow`)"
                        ),
                    );
                    // Skip its value, if any, and go on with the next key.
                    while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                        meta.input.parse::<proc_macro2::TokenTree>()?;
                    }
                }
                Ok(())
            });
            if let Err(err) = parsed {
                cx.syn_error(err);
            }
        }
        out.check_options(cx, attrs);
        out
    }

    /// Options need a topic, and a history must fit the capacity given with it.
    fn check_options(&self, cx: &Ctxt, attrs: &[Attribute]) {
        let Some(attr) = attrs.iter().find(|attr| attr.path().is_ident("shm")) else { return };
        if !self.options.is_empty() && self.topic.is_none() {
            cx.error_spanned_by(
                attr,
                "topic options need a topic: `#[shm(topic = \"name\", ...)]`",
            );
        }
        let count = |method: &str| {
            self.options.iter().find_map(|(m, v)| match v {
                TopicOption::Count(n) if *m == method => Some(*n),
                _ => None,
            })
        };
        if let (Some(h), Some(c)) = (count("history"), count("subscriber_capacity"))
            && h > c
        {
            cx.error_spanned_by(
                attr,
                format!(
                    "`history = {h}` exceeds `capacity = {c}`: a late joiner's queue could not \
                     hold it"
                ),
            );
        }
    }

    /// The path the expansion uses for the runtime crate.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => quote!(#path),
            None => quote!(::ipc_runtime),
        }
    }
}

/// Parses `= "..."` after a key; anything else is an error that shows `example`.
fn string_value(meta: &syn::meta::ParseNestedMeta<'_>, example: &str) -> syn::Result<LitStr> {
    let message = format!("expected a string, like `{example}`");
    if !meta.input.peek(syn::Token![=]) {
        return Err(syn::Error::new(meta.path.span(), message));
    }
    match meta.value()?.parse::<syn::Expr>()? {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }) => Ok(lit),
        other => Err(syn::Error::new_spanned(other, message)),
    }
}

/// `#[shm]` belongs on the type; on a field or variant it would silently do nothing.
pub(crate) fn reject_misplaced(cx: &Ctxt, attrs: &[Attribute], place: &str) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("shm")) {
        cx.error_spanned_by(
            attr,
            format!("`#[shm(...)]` is not supported on {place}: put it on the type itself"),
        );
    }
}

/// The rule of `ipc_runtime::domain::validate` (the topic name becomes part of OS object
/// names): 1 to 100 bytes of ASCII letters, digits, `_`, `-`, `.` (not first) and `/` between
/// non-empty parts (`robot/arm/joints`). Returns why a name is invalid, worded to follow "it".
/// A copy of the runtime's rule (a proc-macro crate cannot call into the runtime); the tests
/// below check that both agree on every short name over the characters that matter.
pub(crate) fn validate_topic(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("must not be empty")
    } else if name.len() > MAX_NAME_LEN {
        Err("is longer than 100 bytes")
    } else if name.starts_with('.') {
        Err("must not start with `.`")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
    {
        Err("may only contain ASCII letters, digits, `_`, `-`, `.` and `/`")
    } else if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        Err("may only use `/` between non-empty parts (`a/b/c`)")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_rule_matches_the_runtime() {
        for good in ["a", "robot.pose", "a.b-c_9", "x..y", "robot/arm/joints", &"x".repeat(100)] {
            assert_eq!(validate_topic(good), Ok(()), "{good:?}");
        }
        for bad in ["", ".hidden", "/a", "a/", "a//b", "a b", "a,b", "a+b", "ü", &"x".repeat(101)]
        {
            assert!(validate_topic(bad).is_err(), "{bad:?}");
        }
        // Agrees with the runtime on every name built from a few interesting characters.
        let alphabet = ["", ".", "a", "Z", "0", "_", "-", "/", ",", "+", " ", "é", "\0"];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        let name = format!("{a}{b}{c}{d}");
                        assert_eq!(
                            validate_topic(&name).is_ok(),
                            ipc_runtime::domain::validate(&name, "topic").is_ok(),
                            "{name:?}"
                        );
                    }
                }
            }
        }
        for len in [99, 100, 101] {
            let name = "x".repeat(len);
            assert_eq!(
                validate_topic(&name).is_ok(),
                ipc_runtime::domain::validate(&name, "topic").is_ok()
            );
        }
    }
}
