//! The error collector: every check reports into one [`Ctxt`], so a single compile shows every
//! problem of a type, each at its own span, instead of stopping at the first.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

/// Collects the errors of one derive invocation.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Reports `msg` at the tokens of `obj` (all of them, where the compiler can join spans).
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, obj: T, msg: M) {
        self.errors.borrow_mut().push(syn::Error::new_spanned(obj.into_token_stream(), msg));
    }

    /// Reports `msg` at `span`.
    pub(crate) fn error_at<M: Display>(&self, span: Span, msg: M) {
        self.errors.borrow_mut().push(syn::Error::new(span, msg));
    }

    /// Reports an error produced by a `syn` parser.
    pub(crate) fn syn_error(&self, err: syn::Error) {
        self.errors.borrow_mut().push(err);
    }

    /// All collected errors as `compile_error!` invocations, in the order they were found.
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.errors.into_inner().iter().map(syn::Error::to_compile_error).collect()
    }
}
