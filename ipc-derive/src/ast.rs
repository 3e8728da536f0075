//! The parsed input: a [`Container`] (the deriving type) with its fields or variants, its
//! `#[repr]` and its `#[shm]` settings, borrowed from the `syn` tree.

use proc_macro2::Ident;
use syn::spanned::Spanned;
use syn::{DeriveInput, Expr, Generics, Member, Type};

use crate::attr;
use crate::ctxt::Ctxt;
use crate::repr::Repr;

/// The type `#[derive(ShmMessage)]` is applied to.
pub(crate) struct Container<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    pub(crate) data: Data<'a>,
    pub(crate) repr: Repr,
    pub(crate) attrs: attr::Container,
}

pub(crate) enum Data<'a> {
    Struct(Vec<Field<'a>>),
    Enum(Vec<Variant<'a>>),
}

pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) fields: Vec<Field<'a>>,
    /// The explicit discriminant, `= expr`, if any.
    pub(crate) discriminant: Option<&'a Expr>,
}

pub(crate) struct Field<'a> {
    /// The field's name, or its index in a tuple struct or variant.
    pub(crate) member: Member,
    pub(crate) ty: &'a Type,
}

impl Field<'_> {
    /// The name hashed into the fingerprint: the identifier without `r#`, or the index.
    pub(crate) fn name(&self) -> String {
        match &self.member {
            Member::Named(ident) => syn::ext::IdentExt::unraw(ident).to_string(),
            Member::Unnamed(index) => index.index.to_string(),
        }
    }
}

impl<'a> Container<'a> {
    /// Parses `input`. Returns `None` for unions, which cannot be messages at all (the error is
    /// in `cx`); every other problem is reported to `cx` and parsing goes on, so that one
    /// compile shows them all.
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::Container::from_attrs(cx, &input.attrs);
        let repr = Repr::from_attrs(&input.attrs);
        let data = match &input.data {
            syn::Data::Struct(data) => Data::Struct(fields_from_ast(cx, &data.fields)),
            syn::Data::Enum(data) => Data::Enum(
                data.variants
                    .iter()
                    .map(|variant| {
                        attr::reject_misplaced(cx, &variant.attrs, "enum variants");
                        Variant {
                            ident: &variant.ident,
                            fields: fields_from_ast(cx, &variant.fields),
                            discriminant: variant.discriminant.as_ref().map(|(_, expr)| expr),
                        }
                    })
                    .collect(),
            ),
            syn::Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "`#[derive(ShmMessage)]` does not support unions: a reader in another \
                     process cannot know which field is valid. Use an enum with \
                     `#[repr(C, u8)]` (or `#[repr(u8)]`) instead; it carries its own tag",
                );
                return None;
            }
        };
        Some(Container { ident: &input.ident, generics: &input.generics, data, repr, attrs })
    }

    /// Every field, of the struct or of all variants.
    pub(crate) fn all_fields(&self) -> Box<dyn Iterator<Item = &Field<'a>> + '_> {
        match &self.data {
            Data::Struct(fields) => Box::new(fields.iter()),
            Data::Enum(variants) => Box::new(variants.iter().flat_map(|v| v.fields.iter())),
        }
    }
}

/// The fields of a struct or variant: named, tuple (named by index) or none.
fn fields_from_ast<'a>(cx: &Ctxt, fields: &'a syn::Fields) -> Vec<Field<'a>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            attr::reject_misplaced(cx, &field.attrs, "fields");
            Field {
                member: match &field.ident {
                    Some(ident) => Member::Named(ident.clone()),
                    None => Member::Unnamed(syn::Index { index: i as u32, span: field.ty.span() }),
                },
                ty: &field.ty,
            }
        })
        .collect()
}
