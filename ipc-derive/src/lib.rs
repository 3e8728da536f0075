//! `#[derive(ShmMessage)]` for `ipc-runtime` (placeholder until the derive lands).

use proc_macro::TokenStream;

/// Derives `ShmSafe` and `ShmMessage` (work in progress).
#[proc_macro_derive(ShmMessage, attributes(shm))]
pub fn derive_shm_message(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
