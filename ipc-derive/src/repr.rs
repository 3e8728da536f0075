//! A typed parser for `#[repr(...)]`.
//!
//! The derive needs to know a type's representation for two reasons: only some representations
//! have a layout that is the same in every compilation (checked in [`check`](crate::check)), and
//! the representation is part of the layout [fingerprint](crate::expand).
//!
//! The parser is lenient on purpose: hints it does not model (`repr(simd)`), malformed hints
//! (`repr(align)`, `repr(align = 8)`) and conflicting hints (`repr(u8, u16)`,
//! `repr(C, transparent)`) are all rejected by rustc itself with precise messages, so the derive
//! only records that it saw something it does not understand ([`Repr::unrecognized`]) and then
//! stays silent about layout instead of adding a second, vaguer error.

use proc_macro2::{Ident, Span};
use syn::spanned::Spanned;
use syn::{Attribute, LitInt};

/// The primitive integer representations of enums (`#[repr(u8)]`, ...).
pub(crate) const INTS: &[&str] =
    &["u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize"];

/// Everything the `#[repr(...)]` attributes of one type say, merged over all of them.
#[derive(Default, Debug)]
pub(crate) struct Repr {
    /// `C`, at its span.
    pub(crate) c: Option<Span>,
    /// `Rust` (the default, spelled out), at its span.
    pub(crate) rust: Option<Span>,
    /// `transparent`, at its span.
    pub(crate) transparent: Option<Span>,
    /// A primitive integer (`u8`, `i32`, ...), as written: the type of enum discriminants.
    pub(crate) int: Option<Ident>,
    /// `packed` (= `packed(1)`) or `packed(N)`: the smallest one given, and its span.
    pub(crate) packed: Option<(u64, Span)>,
    /// `align(N)`: the largest one given, and its span.
    pub(crate) align: Option<(u64, Span)>,
    /// A hint this parser does not model, or a malformed `repr` attribute; rustc reports those.
    pub(crate) unrecognized: bool,
}

impl Repr {
    /// Merges every `#[repr(...)]` in `attrs`.
    pub(crate) fn from_attrs(attrs: &[Attribute]) -> Self {
        let mut repr = Repr::default();
        for attr in attrs.iter().filter(|attr| attr.path().is_ident("repr")) {
            if attr.parse_nested_meta(|meta| repr.hint(meta)).is_err() {
                repr.unrecognized = true;
            }
        }
        repr
    }

    fn hint(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        let span = meta.path.span();
        let Some(name) = meta.path.get_ident().map(Ident::to_string) else {
            self.unrecognized = true;
            return skip_rest(&meta);
        };
        match name.as_str() {
            "C" => self.c = Some(span),
            "Rust" => self.rust = Some(span),
            "transparent" => self.transparent = Some(span),
            "packed" => {
                let n =
                    if meta.input.peek(syn::token::Paren) { parenthesized_int(&meta)? } else { 1 };
                if self.packed.is_none_or(|(old, _)| n < old) {
                    self.packed = Some((n, span));
                }
            }
            "align" => {
                let n = parenthesized_int(&meta)?;
                if self.align.is_none_or(|(old, _)| n > old) {
                    self.align = Some((n, span));
                }
            }
            int if INTS.contains(&int) => {
                if self.int.is_none() {
                    self.int = meta.path.get_ident().cloned();
                }
            }
            _ => {
                self.unrecognized = true;
                return skip_rest(&meta);
            }
        }
        if meta.input.is_empty() || meta.input.peek(syn::Token![,]) {
            Ok(())
        } else {
            Err(meta.error("malformed representation hint"))
        }
    }

    /// A canonical spelling, hashed into the fingerprint: `C`, `C,u8`, `C,packed(1)`,
    /// `C,align(16)`, `transparent`, `u16`, ... Independent of how the hints were split across
    /// attributes or ordered, and `packed` is spelled `packed(1)`.
    pub(crate) fn canonical(&self) -> String {
        let mut parts = Vec::new();
        if self.c.is_some() {
            parts.push("C".to_owned());
        }
        if self.transparent.is_some() {
            parts.push("transparent".to_owned());
        }
        if let Some(int) = &self.int {
            parts.push(int.to_string());
        }
        if let Some((n, _)) = self.packed {
            parts.push(format!("packed({n})"));
        }
        if let Some((n, _)) = self.align {
            parts.push(format!("align({n})"));
        }
        if parts.is_empty() {
            parts.push("Rust".to_owned());
        }
        parts.join(",")
    }
}

fn parenthesized_int(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<u64> {
    let content;
    syn::parenthesized!(content in meta.input);
    let lit: LitInt = content.parse()?;
    if !content.is_empty() {
        return Err(content.error("expected one integer"));
    }
    lit.base10_parse()
}

/// Consumes whatever follows an unrecognized hint (`(...)` or `= ...`) so parsing can go on.
fn skip_rest(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn repr(attrs: Vec<Attribute>) -> Repr {
        Repr::from_attrs(&attrs)
    }

    #[test]
    fn parses_every_modelled_hint() {
        let r = repr(vec![parse_quote!(#[repr(C, align(16))])]);
        assert!(r.c.is_some() && !r.unrecognized);
        assert_eq!(r.canonical(), "C,align(16)");

        assert_eq!(repr(vec![parse_quote!(#[repr(C, packed)])]).canonical(), "C,packed(1)");
        assert_eq!(repr(vec![parse_quote!(#[repr(packed(4), C)])]).canonical(), "C,packed(4)");
        assert_eq!(repr(vec![parse_quote!(#[repr(transparent)])]).canonical(), "transparent");
        assert_eq!(repr(vec![parse_quote!(#[repr(u8, C)])]).canonical(), "C,u8");
        assert_eq!(repr(vec![parse_quote!(#[repr(i64)])]).canonical(), "i64");
        assert_eq!(repr(vec![]).canonical(), "Rust");
        assert!(repr(vec![parse_quote!(#[repr(Rust)])]).rust.is_some());
    }

    #[test]
    fn merges_split_attributes_independent_of_order() {
        let a = repr(vec![parse_quote!(#[repr(C)]), parse_quote!(#[repr(align(8))])]);
        let b = repr(vec![parse_quote!(#[repr(align(8), C)])]);
        assert_eq!(a.canonical(), b.canonical());
        let max = repr(vec![parse_quote!(#[repr(C, align(8))]), parse_quote!(#[repr(align(32))])]);
        assert_eq!(max.canonical(), "C,align(32)");
    }

    #[test]
    fn leaves_what_rustc_rejects_to_rustc() {
        for attr in [
            parse_quote!(#[repr(simd)]),
            parse_quote!(#[repr(align)]),
            parse_quote!(#[repr(align = 8)]),
            parse_quote!(#[repr(align(x))]),
            parse_quote!(#[repr(C(u8))]),
            parse_quote!(#[repr(a::b)]),
            parse_quote!(#[repr = "C"]),
        ] {
            let r = repr(vec![attr]);
            assert!(r.unrecognized, "{r:?}");
        }
        // The rest of the attribute is still read.
        assert!(repr(vec![parse_quote!(#[repr(simd, C)])]).c.is_some());
    }
}
