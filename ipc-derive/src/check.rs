//! The checks: everything that makes a type unfit for shared memory and can be seen in its
//! definition. Each problem is reported to the [`Ctxt`] at the span that needs changing, with a
//! message that names the fix.
//!
//! What syntax cannot show — whether a field's type, perhaps behind an alias or a generic
//! parameter, is `ShmSafe` — is proved by the compiler: the expansion hashes each field through
//! `fingerprint::field::<FieldType>`, which requires `FieldType: ShmSafe` (see
//! [`expand`](crate::expand)). The syntactic field checks here only add friendlier, more
//! specific messages for the forms that can never be `ShmSafe` (references, raw pointers,
//! function pointers, trait objects, unsized types); fields they reject are left out of the
//! expansion so each problem is reported once.

use syn::{GenericParam, Type};

use crate::ast::{Container, Data};
use crate::ctxt::Ctxt;

/// Checks `cont`. Returns whether the impls can still be emitted (next to the errors, which
/// keeps one mistake from cascading into "trait not implemented" errors at every use of the
/// type); they cannot when the type has lifetime parameters or an unsized field.
pub(crate) fn check(cx: &Ctxt, cont: &Container<'_>) -> bool {
    check_layout(cx, cont);
    let mut can_expand = check_generics(cx, cont);
    for field in cont.all_fields() {
        for bad in unplaceable(field.ty) {
            cx.error_spanned_by(bad.ty, bad.kind.message());
            can_expand &= !bad.kind.is_unsized();
        }
        if let Some(itself) = mentions_self(field.ty, cont.ident) {
            let name = cont.ident;
            cx.error_spanned_by(
                itself,
                format!(
                    "`{name}` contains itself (through a container): a message's layout \
                     fingerprint describes every type it holds, and `{name}`'s would never end. \
                     Keep the nodes in one `ShmVec` and refer to them by index (`children: \
                     ShmVec<u32>`)"
                ),
            );
            // The field is left out of the expansion (`expand::accepted`): one error, not
            // the compiler's const-evaluation cycle after it.
        }
    }
    can_expand
}

/// Where `ty` names the type being derived (`Self`, or its own name as a one-segment path),
/// however deeply inside generic arguments, arrays and tuples. A longer path (`other::Node`)
/// names another type.
pub(crate) fn mentions_self<'a>(ty: &'a Type, name: &syn::Ident) -> Option<&'a syn::Path> {
    match ty {
        Type::Path(p) => {
            if p.qself.is_none()
                && p.path.segments.len() == 1
                && (p.path.segments[0].ident == *name || p.path.segments[0].ident == "Self")
            {
                return Some(&p.path);
            }
            p.path.segments.iter().find_map(|segment| match &segment.arguments {
                syn::PathArguments::AngleBracketed(args) => {
                    args.args.iter().find_map(|arg| match arg {
                        syn::GenericArgument::Type(t) => mentions_self(t, name),
                        _ => None,
                    })
                }
                _ => None,
            })
        }
        Type::Array(a) => mentions_self(&a.elem, name),
        Type::Tuple(t) => t.elems.iter().find_map(|t| mentions_self(t, name)),
        Type::Paren(p) => mentions_self(&p.elem, name),
        Type::Group(g) => mentions_self(&g.elem, name),
        _ => None,
    }
}

/// The representation must give the type the same layout in every compilation.
fn check_layout(cx: &Ctxt, cont: &Container<'_>) {
    let repr = &cont.repr;
    let name = cont.ident;
    if repr.unrecognized || repr.c.is_some() || repr.transparent.is_some() {
        // Stable, or rustc reports the attribute itself.
        return;
    }
    match &cont.data {
        Data::Struct(..) => {
            if let Some(span) = repr.rust {
                cx.error_at(span, "`#[repr(Rust)]` has no stable layout: use `#[repr(C)]`");
            } else if let Some((n, span)) = repr.packed {
                let hint = if n == 1 { "packed".to_owned() } else { format!("packed({n})") };
                cx.error_at(
                    span,
                    format!(
                        "`#[repr({hint})]` alone keeps Rust's unspecified field order: \
                         write `#[repr(C, {hint})]`"
                    ),
                );
            } else if let Some((n, span)) = repr.align {
                cx.error_at(
                    span,
                    format!(
                        "`#[repr(align({n}))]` alone keeps Rust's unspecified field order: \
                         write `#[repr(C, align({n}))]`"
                    ),
                );
            } else if repr.int.is_none() {
                // (A primitive representation on a struct is an error of rustc's.)
                cx.error_spanned_by(
                    name,
                    format!(
                        "`#[derive(ShmMessage)]` requires a stable layout: add `#[repr(C)]` to \
                         `{name}` (Rust's default layout may differ between compilations, so \
                         two programs could disagree on where each field is)"
                    ),
                );
            }
        }
        Data::Enum(variants) => {
            if repr.int.is_some() {
                return;
            }
            if let Some(span) = repr.rust {
                cx.error_at(
                    span,
                    "`#[repr(Rust)]` has no stable layout: use `#[repr(C)]` or a primitive \
                     representation such as `#[repr(u8)]`",
                );
            } else if let Some((n, span)) = repr.align {
                cx.error_at(
                    span,
                    format!(
                        "`#[repr(align({n}))]` alone does not fix an enum's layout: write \
                         `#[repr(C, align({n}))]` or `#[repr(u8, align({n}))]`"
                    ),
                );
            } else if repr.packed.is_some() {
                // `packed` on an enum is an error of rustc's.
            } else if variants.is_empty() {
                cx.error_spanned_by(
                    name,
                    format!(
                        "`{name}` has no variants, so no value of it can ever be sent: add a \
                         variant"
                    ),
                );
            } else {
                cx.error_spanned_by(
                    name,
                    format!(
                        "`#[derive(ShmMessage)]` requires a stable layout: add `#[repr(C)]` or a \
                         primitive representation such as `#[repr(u8)]` to `{name}` (Rust's \
                         default layout may differ between compilations, so two programs could \
                         disagree on the tag and on where each field is)"
                    ),
                );
            }
        }
    }
}

/// Lifetime parameters are rejected; type and const parameters are fine (the expansion adds
/// `T: ShmSafe`). Returns whether the impls can be emitted.
fn check_generics(cx: &Ctxt, cont: &Container<'_>) -> bool {
    let mut ok = true;
    for param in &cont.generics.params {
        if let GenericParam::Lifetime(lifetime) = param {
            cx.error_spanned_by(
                &lifetime.lifetime,
                "`#[derive(ShmMessage)]` does not support lifetime parameters: a message is read \
                 by other processes, which cannot follow borrows into this one. Let the message \
                 own its data, with `ShmString`, `ShmVec<T>` or `ShmBox<T>`",
            );
            ok = false;
        }
    }
    ok
}

/// A part of a field's type that can never be `ShmSafe`, whatever it refers to.
pub(crate) struct Unplaceable<'t> {
    pub(crate) ty: &'t Type,
    pub(crate) kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// `&T`, `&mut T`; `str` and `slice` say what it points to, for a better hint.
    Reference { to_str: bool, to_slice: bool },
    /// `*const T`, `*mut T`
    RawPointer,
    /// `fn(..)`, `extern "C" fn(..)`
    FnPointer,
    /// `dyn Trait`
    TraitObject,
    /// `[T]`
    Slice,
    /// `str`
    Str,
}

impl Kind {
    fn is_unsized(self) -> bool {
        matches!(self, Kind::TraitObject | Kind::Slice | Kind::Str)
    }

    fn message(self) -> &'static str {
        match self {
            Kind::Reference { to_str: true, .. } => {
                "a reference cannot be placed in shared memory: it holds an address that is only \
                 valid in this process. Use `ShmString` for text"
            }
            Kind::Reference { to_slice: true, .. } => {
                "a reference cannot be placed in shared memory: it holds an address that is only \
                 valid in this process. Use `ShmVec<T>` for a sequence"
            }
            Kind::Reference { .. } => {
                "a reference cannot be placed in shared memory: it holds an address that is only \
                 valid in this process. Store the value itself, or use `ShmBox<T>`"
            }
            Kind::RawPointer => {
                "a raw pointer cannot be placed in shared memory: shared memory is mapped at a \
                 different address in every process. Use `ShmBox<T>` or `ShmVec<T>`, which hold \
                 relocatable pointers, or store an index"
            }
            Kind::FnPointer => {
                "a function pointer cannot be placed in shared memory: code is loaded at a \
                 different address in every process. Send an enum or an id that the receiver \
                 maps to a function"
            }
            Kind::TraitObject => {
                "a trait object cannot be placed in shared memory: its vtable is only valid in \
                 this process. Use an enum that derives `ShmMessage` instead"
            }
            Kind::Slice => {
                "a slice has no fixed size, so it cannot be a field of a message: use \
                 `ShmVec<T>`, or an array `[T; N]`"
            }
            Kind::Str => {
                "`str` has no fixed size, so it cannot be a field of a message: use `ShmString`"
            }
        }
    }
}

/// The parts of `ty` that can never be `ShmSafe`, looking through arrays, tuples and
/// parentheses (whose `ShmSafe` impls require every element to be `ShmSafe`), but not into
/// generic arguments (`PhantomData<&'static str>` is fine).
pub(crate) fn unplaceable(ty: &Type) -> Vec<Unplaceable<'_>> {
    let mut out = Vec::new();
    walk(ty, &mut out);
    out
}

fn walk<'t>(ty: &'t Type, out: &mut Vec<Unplaceable<'t>>) {
    let kind = match ty {
        // Containers whose `ShmSafe` impl needs every element to be `ShmSafe`: look inside.
        Type::Array(array) => {
            walk(&array.elem, out);
            return;
        }
        Type::Tuple(tuple) => {
            for elem in &tuple.elems {
                walk(elem, out);
            }
            return;
        }
        Type::Paren(paren) => {
            walk(&paren.elem, out);
            return;
        }
        Type::Group(group) => {
            walk(&group.elem, out);
            return;
        }
        Type::Reference(reference) => {
            let target = strip(&reference.elem);
            Kind::Reference { to_str: is_str(target), to_slice: matches!(target, Type::Slice(_)) }
        }
        Type::Ptr(_) => Kind::RawPointer,
        Type::FnPtr(_) => Kind::FnPointer,
        Type::TraitObject(_) => Kind::TraitObject,
        Type::Slice(_) => Kind::Slice,
        _ if is_str(ty) => Kind::Str,
        // Paths (aliases, generics, user types), macros, ...: the trait bound decides.
        _ => return,
    };
    out.push(Unplaceable { ty, kind });
}

fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Paren(paren) => strip(&paren.elem),
        Type::Group(group) => strip(&group.elem),
        _ => ty,
    }
}

fn is_str(ty: &Type) -> bool {
    matches!(strip(ty), Type::Path(path) if path.qself.is_none() && path.path.is_ident("str"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn kinds(ty: Type) -> Vec<Kind> {
        unplaceable(&ty).iter().map(|bad| bad.kind).collect()
    }

    #[test]
    fn finds_what_can_never_be_shm_safe() {
        assert_eq!(
            kinds(parse_quote!(&'static str)),
            [Kind::Reference { to_str: true, to_slice: false }]
        );
        assert_eq!(kinds(parse_quote!(*const u8)), [Kind::RawPointer]);
        assert_eq!(kinds(parse_quote!(extern "C" fn(u8) -> u8)), [Kind::FnPointer]);
        assert_eq!(kinds(parse_quote!(dyn core::fmt::Debug)), [Kind::TraitObject]);
        assert_eq!(kinds(parse_quote!([u8])), [Kind::Slice]);
        assert_eq!(kinds(parse_quote!(str)), [Kind::Str]);
        assert_eq!(
            kinds(parse_quote!(([*mut u8; 2], (u8, fn())))),
            [Kind::RawPointer, Kind::FnPointer]
        );
    }

    #[test]
    fn leaves_paths_to_the_trait_bound() {
        for ty in [
            parse_quote!(u8),
            parse_quote!(Vec<&'static str>),
            parse_quote!(core::marker::PhantomData<&'static str>),
            parse_quote!(Box<dyn Fn()>),
            parse_quote!([u64; 4]),
            parse_quote!(my::str),
        ] {
            assert_eq!(kinds(ty), []);
        }
    }
}
