//! The expansion: `unsafe impl ShmSafe`, `impl ShmMessage` (with the layout fingerprint) and,
//! with `#[shm(topic = "...")]`, `impl Topic`, all inside `const _: () = { ... };` and with
//! fully qualified paths, so the output neither adds names to the user's scope nor depends on
//! what is in it (it compiles under `#![no_implicit_prelude]`).
//!
//! For a type
//!
//! ```text
//! #[derive(ShmMessage)]
//! #[shm(topic = "robot.pose")]
//! #[repr(C)]
//! struct Pose<T> { x: f64, tag: T }
//! ```
//!
//! the output is (see `tests/expand/pose.expanded.rs` for the exact text):
//!
//! ```text
//! const _: () = {
//!     unsafe impl<T: ::ipc_runtime::ShmSafe> ::ipc_runtime::ShmSafe for Pose<T> {
//!         const LAYOUT_FINGERPRINT: u64 = <Self as ::ipc_runtime::ShmMessage>::FINGERPRINT;
//!         const NO_UNINIT: bool = __private::fingerprint::no_uninit(&[/* the parts below */]);
//!         const MAY_BE_INVALID: bool = __private::fingerprint::may_be_invalid(&[/* same */]);
//!         unsafe fn check_bits(value: *const Self) -> __private::CheckResult {
//!             // Each field that may be invalid, at its offset (enums: `check_enum`).
//!             unsafe { __private::validity::check_struct(value.cast(), const { &[/* same */] }) }
//!         }
//!     }
//!     impl<T: ::ipc_runtime::ShmSafe> ::ipc_runtime::ShmMessage for Pose<T> {
//!         const FINGERPRINT: u64 = __private::fingerprint::of(&[
//!             Part::Str("Pose<T>"),                             // name
//!             Part::Str("C"),                                   // representation
//!             Part::Layout(size_of::<Self>(), align_of::<Self>()),
//!             Part::U64(2),                                     // field count
//!             __private::field::<f64>("x", offset_of!(Self, x)),
//!             __private::field::<T>("tag", offset_of!(Self, tag)),
//!         ]);
//!         const TYPE_NAME: &'static str = "Pose<T>";
//!     }
//!     impl<T: ::ipc_runtime::ShmSafe> ::ipc_runtime::Topic for Pose<T> {
//!         const NAME: &'static str = "robot.pose";
//!     }
//! };
//! ```
//!
//! The fingerprint is a flat list of parts folded by a `const fn`: no local variables, so
//! nothing in the user's scope (a `const h: () = ();`, say) can capture a name of the
//! expansion, and no nesting, so it reads like the type. Primitive types are spelled
//! `__private::u64` & co. (re-exports of `core::primitive`) for the same reason: `struct u64;`
//! is legal Rust.
//!
//! # How field types are proved `ShmSafe`
//!
//! `__private::field::<F>` (and `variant_field` for enums) requires `F: ShmSafe`, and the
//! call is spanned at the field's type. So the fingerprint computation *is* the trait-bound
//! backstop: rustc type-checks `FINGERPRINT`'s body for every derived type, whether or not the
//! constant is ever used, and a field whose type is not `ShmSafe` — written directly, behind a
//! type alias, or through a generic parameter — fails there with `ShmSafe`'s
//! `#[diagnostic::on_unimplemented]` message, pointing at the field's type. One bound per
//! field, checked in exactly one place, so every bad field is reported exactly once.
//! (A separate `fn assert<T: ShmSafe>()` per field would report each bad field twice: once
//! for the assertion and once for the fingerprint, which needs the field's fingerprint.)
//!
//! When the type cannot have impls at all (lifetime parameters, unsized fields), the same calls
//! are emitted in a free function with the type's generics, so the field errors still appear in
//! the same compile as the derive's own.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{GenericParam, parse_quote};

use crate::ast::{Container, Data, Field, Variant};
use crate::check;

/// The impls for a type that passed the fatal checks.
pub(crate) fn impls(cont: &Container<'_>) -> TokenStream {
    let krate = cont.attrs.krate();
    let ident = cont.ident;
    let generics = bounded_generics(cont);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let type_name = type_name(cont);
    let fingerprint = match &cont.data {
        Data::Struct(fields) => struct_fingerprint(cont, &type_name, fields),
        Data::Enum(variants) => enum_fingerprint(cont, &type_name, variants),
    };

    let u64 = prim(cont, "u64");
    let str = prim(cont, "str");
    let fields = match &cont.data {
        Data::Struct(fields) => field_infos(cont, &type_name, fields),
        Data::Enum(_) => TokenStream::new(),
    };
    let topic = cont.attrs.topic.as_ref().map(|name| {
        let options = topic_options(cont);
        quote! {
            #[automatically_derived]
            impl #impl_generics #krate::Topic for #ident #ty_generics #where_clause {
                const NAME: &'static #str = #name;
                #options
            }
        }
    });

    // SAFETY (of the generated `unsafe impl ShmSafe`): `ShmSafe` promises that the type's bytes
    // mean the same in every process. This impl only compiles, and so only exists, when
    // (1) the layout is fixed across compilations: `check::check_layout` accepted the
    //     representation (`C`, `transparent`, or for enums `C` or a primitive), otherwise a
    //     `compile_error!` is emitted next to this impl;
    // (2) every field is `ShmSafe`: `FINGERPRINT` below hashes each field through
    //     `field::<FieldType>` / `variant_field::<FieldType>`, which require
    //     `FieldType: ShmSafe`, and rustc type-checks that body whether or not it is used.
    //     Fields that `check` rejected syntactically are left out here, but then a
    //     `compile_error!` is emitted instead;
    // (3) every generic type parameter is `ShmSafe`: `bounded_generics` adds the bound, so
    //     fields of generic type are covered by (2) for every instantiation.
    // (4) no field has interior mutability: the `ShmSafe` impls of atomics and cells never
    //     apply (see `ipc_runtime::message::InteriorMutability`), so (2) covers it;
    // (5) `check_bits` accepts exactly the valid values: it checks every field whose type may
    //     be invalid with that type's own check, at the field's offset (`offset_of!` for
    //     structs; for enums, RFC 2195's layout of the representation), and for enums that the
    //     tag is one of the discriminants as rustc computes them; `MAY_BE_INVALID` is `true`
    //     for enums and for structs with such a field.
    // Enum tags are plain integers of the representation's type. A value of such a type holds
    // no address and no handle, so copied byte for byte into another process it means the
    // same there.
    //
    // Validity (`MAY_BE_INVALID`, `check_bits`): from the same parts as the fingerprint, so that
    // each field's own validity comes with the proof that it is `ShmSafe` and a bad field type
    // is reported once. A struct may be invalid if a field may; its check checks those fields
    // at their offsets. An enum always may (its tag); its check reads the tag, finds the
    // variant and checks that variant's fields at the offsets its representation gives them.
    let p = quote!(#krate::__private);
    let u8_ = prim(cont, "u8");
    let (no_uninit, may_be_invalid, check, tag_enum) = match &cont.data {
        Data::Struct(fields) => {
            let parts = struct_parts(cont, &type_name, fields);
            (
                quote!(#p::fingerprint::no_uninit(&[#parts])),
                quote!(#p::fingerprint::may_be_invalid(&[#parts])),
                quote!(#p::validity::check_struct(value.cast::<#u8_>(), const { &[#parts] })),
                None,
            )
        }
        Data::Enum(variants) => {
            let parts = enum_parts(cont, &type_name, variants);
            let (tag_size, tag_enum) = tag_size(cont, variants);
            let c = cont.repr.c.is_some();
            (
                // Tags and variants of different sizes leave room for padding: say no.
                quote!(false),
                quote!(true),
                quote! {
                    #p::validity::check_enum(value.cast::<#u8_>(), const { &[#parts] }, #tag_size, #c)
                },
                tag_enum,
            )
        }
    };
    let bool_ = prim(cont, "bool");
    // SAFETY (of the emitted `unsafe impl`): `check` accepted only a stable repr, no lifetimes
    // and no unions; every field type is bounded by `ShmSafe` (so position-independent and free
    // of interior mutability, whose `ShmSafe` impls never apply); `MAY_BE_INVALID` and
    // `check_bits` are built from the same field list as the fingerprint, so every field with
    // invalid bit patterns (and an enum's tag) is checked.
    quote! {
        #tag_enum

        #[automatically_derived]
        unsafe impl #impl_generics #krate::ShmSafe for #ident #ty_generics #where_clause {
            const LAYOUT_FINGERPRINT: #u64 = <Self as #krate::ShmMessage>::FINGERPRINT;
            const NO_UNINIT: #bool_ = #no_uninit;
            const MAY_BE_INVALID: #bool_ = #may_be_invalid;
            #[inline]
            unsafe fn check_bits(value: *const Self) -> #p::CheckResult {
                // SAFETY: the caller's promise (`ShmSafe::check_bits`); the parts describe
                // this very type.
                unsafe { #check }
            }
        }

        #[automatically_derived]
        impl #impl_generics #krate::ShmMessage for #ident #ty_generics #where_clause {
            const FINGERPRINT: #u64 = #fingerprint;
            const TYPE_NAME: &'static #str = #type_name;
            #fields
        }

        #topic
    }
}

/// Only the field checks, for a type that cannot have impls: a generic function that is never
/// called but is type-checked, with the same per-field bounds the fingerprint would have.
pub(crate) fn field_checks(cont: &Container<'_>) -> TokenStream {
    let krate = cont.attrs.krate();
    let generics = bounded_generics(cont);
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let checks = cont.all_fields().filter(|f| check::unplaceable(f.ty).is_empty()).map(|f| {
        let ty = f.ty;
        let call = quote_spanned!(ty.span()=> #krate::__private::field::<#ty>);
        quote!(let _ = #call("", 0);)
    });
    quote! {
        #[allow(dead_code)]
        fn __shm_check_fields #impl_generics () #where_clause {
            #(#checks)*
        }
    }
}

/// The type's generics plus `ShmSafe` on every type parameter; the user's bounds and where
/// clause stay.
fn bounded_generics(cont: &Container<'_>) -> syn::Generics {
    let krate = cont.attrs.krate();
    let mut generics = cont.generics.clone();
    for param in &mut generics.params {
        if let GenericParam::Type(param) = param {
            param.bounds.push(parse_quote!(#krate::ShmSafe));
        }
    }
    generics
}

/// `Name`, or `Name<T, N>` for a generic type (parameters as written).
fn type_name(cont: &Container<'_>) -> String {
    let mut name = cont.ident.unraw().to_string();
    let params: Vec<String> = cont
        .generics
        .params
        .iter()
        .map(|param| match param {
            GenericParam::Type(param) => param.ident.unraw().to_string(),
            GenericParam::Const(param) => param.ident.unraw().to_string(),
            GenericParam::Lifetime(param) => param.lifetime.to_string(),
        })
        .collect();
    if !params.is_empty() {
        name.push('<');
        name.push_str(&params.join(", "));
        name.push('>');
    }
    name
}

/// A primitive type by a path the user cannot shadow (`struct u64;` is legal Rust):
/// `__private` re-exports `core::primitive::*`.
fn prim(cont: &Container<'_>, name: &str) -> TokenStream {
    let krate = cont.attrs.krate();
    let name = Ident::new(name, Span::call_site());
    quote!(#krate::__private::#name)
}

/// The common head of every fingerprint: name, representation, size, alignment.
fn head(cont: &Container<'_>, type_name: &str) -> TokenStream {
    let krate = cont.attrs.krate();
    let repr = cont.repr.canonical();
    let p = quote!(#krate::__private);
    quote! {
        #p::Part::Str(#type_name),
        #p::Part::Str(#repr),
        #p::Part::Layout(#p::size_of::<Self>(), #p::align_of::<Self>()),
    }
}

/// Fields the checks did not reject (those already have their error).
/// The fields that go into the fingerprint and validity check: those `check` did not reject
/// (a rejected field already has its error; leaving it out keeps it to one, and a type that
/// contains itself out of a const-evaluation cycle).
fn accepted<'f, 'a>(
    cont: &'f Container<'_>,
    fields: &'f [Field<'a>],
) -> impl Iterator<Item = &'f Field<'a>> {
    fields.iter().filter(|field| {
        check::unplaceable(field.ty).is_empty()
            && check::mentions_self(field.ty, cont.ident).is_none()
    })
}

/// `const OPTIONS` of the `Topic` impl, when the attribute gives options.
fn topic_options(cont: &Container<'_>) -> Option<TokenStream> {
    if cont.attrs.options.is_empty() {
        return None;
    }
    let krate = cont.attrs.krate();
    let calls = cont.attrs.options.iter().map(|(method, value)| {
        let method = Ident::new(method, Span::call_site());
        match value {
            crate::attr::TopicOption::Count(n) => {
                let n = Literal::u32_suffixed(*n);
                quote!(.#method(#n))
            }
            crate::attr::TopicOption::Block(true) => {
                quote!(.#method(#krate::pubsub::Overflow::Block))
            }
            crate::attr::TopicOption::Block(false) => {
                quote!(.#method(#krate::pubsub::Overflow::DropOldest))
            }
        }
    });
    Some(quote! {
        const OPTIONS: #krate::pubsub::Options = #krate::pubsub::Options::new() #(#calls)*;
    })
}

/// `const FIELDS`: each accepted field's name, type (as written), offset, size and fingerprint,
/// taken from the fingerprint's parts (the same expression, so a bad field type is reported
/// once).
fn field_infos(cont: &Container<'_>, type_name: &str, fields: &[Field<'_>]) -> TokenStream {
    let krate = cont.attrs.krate();
    let p = quote!(#krate::__private);
    let parts = struct_parts(cont, type_name, fields);
    let written = accepted(cont, fields).map(|field| type_as_written(field.ty));
    quote! {
        const FIELDS: &'static [#p::FieldInfo] =
            &#p::fingerprint::field_infos(&[#parts], [#(#written),*]);
    }
}

/// A type as a person writes it: `ShmVec<f32>`, `[u8; 4]`, `(u32, f64)` (token strings have
/// spaces around every punctuation mark).
pub(crate) fn type_as_written(ty: &syn::Type) -> String {
    let tokens = ty.to_token_stream().to_string();
    let parts: Vec<&str> = tokens.split_whitespace().collect();
    let is_word = |s: &str| s.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '\'');
    let mut out = String::with_capacity(tokens.len());
    for (i, part) in parts.iter().enumerate() {
        out.push_str(part);
        if let Some(next) = parts.get(i + 1) {
            let after_separator = matches!(*part, "," | ";") && !matches!(*next, ")" | "]" | ">");
            if after_separator || (is_word(part) && is_word(next)) {
                out.push(' ');
            }
        }
    }
    out
}

fn struct_fingerprint(cont: &Container<'_>, type_name: &str, fields: &[Field<'_>]) -> TokenStream {
    let krate = cont.attrs.krate();
    let p = quote!(#krate::__private);
    let parts = struct_parts(cont, type_name, fields);
    quote!(#p::fingerprint::of(&[#parts]))
}

/// The parts of a struct's fingerprint: the head, the field count, and per field its name,
/// offset and type (through `field::<FieldType>`, which requires `ShmSafe`).
fn struct_parts(cont: &Container<'_>, type_name: &str, fields: &[Field<'_>]) -> TokenStream {
    let krate = cont.attrs.krate();
    let p = quote!(#krate::__private);
    let head = head(cont, type_name);
    let count = fields.len() as u64;
    let fields = accepted(cont, fields).map(|field| {
        let ty = field.ty;
        let name = field.name();
        let member = &field.member;
        let call = quote_spanned!(ty.span()=> #p::field::<#ty>);
        quote!(#call(#name, #p::offset_of!(Self, #member)),)
    });
    quote! {
        #head
        #p::Part::U64(#count),
        #(#fields)*
    }
}

fn enum_fingerprint(
    cont: &Container<'_>,
    type_name: &str,
    variants: &[Variant<'_>],
) -> TokenStream {
    let krate = cont.attrs.krate();
    let p = quote!(#krate::__private);
    let parts = enum_parts(cont, type_name, variants);
    quote! {
        #p::fingerprint::of(&[
            #parts
        ])
    }
}

/// The size of an enum's tag, and the item it needs: with a primitive representation, the
/// primitive's size; with `repr(C)` alone, the size of a fieldless `repr(C)` enum with the same
/// discriminants (what RFC 2195 lays the tag out as; C's `int` or larger, by target).
fn tag_size(cont: &Container<'_>, variants: &[Variant<'_>]) -> (TokenStream, Option<TokenStream>) {
    let krate = cont.attrs.krate();
    let p = quote!(#krate::__private);
    if let Some(int) = &cont.repr.int {
        let int = prim(cont, &int.to_string());
        return (quote!(#p::size_of::<#int>()), None);
    }
    if variants.is_empty() {
        // rustc rejects the representation of an enum without variants (E0084).
        return (quote!(0), None);
    }
    let tag_variants = variants.iter().map(|v| {
        let ident = v.ident;
        match v.discriminant {
            Some(expr) => quote!(#ident = #expr),
            None => quote!(#ident),
        }
    });
    let tag = quote! {
        #[allow(dead_code, non_camel_case_types, clippy::all)]
        #[repr(C)]
        enum __ShmTag {
            #(#tag_variants,)*
        }
    };
    (quote!(#p::size_of::<__ShmTag>()), Some(tag))
}

/// The parts of an enum's fingerprint: the head, the variant count, and per variant its name,
/// discriminant, field count and fields (through `variant_field::<FieldType>`, which requires
/// `ShmSafe`). `check_enum` reads the same parts.
fn enum_parts(cont: &Container<'_>, type_name: &str, variants: &[Variant<'_>]) -> TokenStream {
    let krate = cont.attrs.krate();
    let p = quote!(#krate::__private);
    let head = head(cont, type_name);
    let count = variants.len() as u64;
    // Discriminants have the type of the primitive representation, `isize` for `repr(C)`.
    let disc_ty = match &cont.repr.int {
        Some(int) => prim(cont, &int.to_string()),
        None => prim(cont, "isize"),
    };
    let i128 = prim(cont, "i128");
    // As rustc assigns them: an explicit discriminant is evaluated with the enum's
    // discriminant type (`identity::<u8>(expr)` gives an untyped literal that type); an
    // implicit one is the last explicit one plus the number of variants since, or the index
    // if none was explicit. (It cannot overflow: rustc rejects such an enum.)
    let mut last_explicit: Option<(&syn::Expr, u64)> = None;
    let variants = variants.iter().enumerate().map(|(i, variant)| {
        let i = i as u64;
        let name = variant.ident.unraw().to_string();
        if let Some(expr) = variant.discriminant {
            last_explicit = Some((expr, i));
        }
        let disc = match last_explicit {
            Some((expr, at)) => {
                let value = quote!((#p::identity::<#disc_ty>(#expr) as #i128));
                if at == i {
                    value
                } else {
                    let since = Literal::u64_unsuffixed(i - at);
                    quote!(#value.wrapping_add(#since))
                }
            }
            None => Literal::u64_unsuffixed(i).into_token_stream(),
        };
        let field_count = variant.fields.len() as u64;
        let fields = accepted(cont, &variant.fields).map(|field| {
            let ty = field.ty;
            let name = field.name();
            let call = quote_spanned!(ty.span()=> #p::variant_field::<#ty>);
            quote!(#call(#name),)
        });
        quote! {
            #p::Part::Str(#name),
            #p::Part::I128(#disc),
            #p::Part::U64(#field_count),
            #(#fields)*
        }
    });
    quote! {
        #head
        #p::Part::U64(#count),
        #(#variants)*
    }
}
