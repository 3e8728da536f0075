//! `#[derive(ShmMessage)]`: compile-time proof that a type can live in shared memory.
//!
//! Use it through `ipc_runtime` (`use ipc_runtime::prelude::*;`), which re-exports it next to
//! the traits it implements; the derive's output refers to `::ipc_runtime`. See
//! [`ShmMessage`](derive@ShmMessage) for what it accepts and emits.
//!
//! A subscriber reads messages in memory another process wrote and maps read-only, so the
//! derive enforces two rules besides "no pointers, no handles, a stable layout":
//!
//! - **no interior mutability**: a field with an atomic, `Cell`, `RefCell`, `OnceCell` or
//!   `UnsafeCell`, at any depth (in an array, a tuple, a container, another derived type or a
//!   generic argument), is a compile error at that field saying why — a reader could write
//!   through `&self` into its read-only mapping;
//! - **bit validity is checked**: the derive generates `ShmSafe::check_bits` (every field with
//!   invalid bit patterns, by offset; for enums the tag, then that variant's fields) and
//!   `ShmSafe::MAY_BE_INVALID`. Subscribers run the check before a reader sees a sample; for a
//!   type whose fields accept every bit pattern `MAY_BE_INVALID` is `false` and the check
//!   compiles to nothing.
//!
//! The crate is laid out like `serde_derive`: this file only dispatches, and
//!
//! | module | does |
//! |---|---|
//! | `ast` | the parsed input: the type, its fields or variants, borrowed from `syn` |
//! | `repr` | a typed parser for `#[repr(...)]` |
//! | `attr` | the `#[shm(topic = "...", crate = "...", history = ..)]` attribute |
//! | `check` | everything that makes a type unfit for shared memory, as spanned errors |
//! | `expand` | the generated impls and the layout fingerprint |
//! | `ctxt` | the error collector, so one compile reports every problem |
//!
//! The derive never panics: every problem becomes a `compile_error!` at the span to change.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod repr;
#[cfg(test)]
mod tests;

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

/// Derives `ShmSafe` and `ShmMessage` (and, with `#[shm(topic = "...")]`, `Topic`) for a
/// struct or enum, after proving at compile time that its values can be placed in shared
/// memory and read by other processes.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// #[derive(ShmMessage)]
/// #[shm(topic = "robot.pose")]
/// #[repr(C)]
/// struct Pose {
///     x: f64,
///     y: f64,
///     frame: ShmString,
/// }
///
/// #[derive(ShmMessage)]
/// #[repr(C, u8)]
/// enum Command {
///     Stop,
///     Go { speed: f32 },
///     Follow(ShmVec<Pose>),
/// }
///
/// assert_eq!(<Pose as Topic>::NAME, "robot.pose");
/// assert_eq!(Pose::TYPE_NAME, "Pose");
/// assert_ne!(Pose::FINGERPRINT, Command::FINGERPRINT);
/// ```
///
/// # What it accepts
///
/// - structs with named fields, tuple structs and unit structs, with `#[repr(C)]` (optionally
///   with `align(N)`, `packed` or `packed(N)`) or `#[repr(transparent)]`;
/// - enums, with or without fields, with `#[repr(C)]`, a primitive representation
///   (`#[repr(u8)]`, `#[repr(i32)]`, ...) or both (`#[repr(C, u8)]`);
/// - generic types: the derive adds `T: ShmSafe` to every type parameter and keeps the
///   bounds and `where` clause you wrote; const generics (`[T; N]`) work as they are;
/// - any field type that is `ShmSafe`: primitives (`bool`, `char` and `NonZero*` too), arrays,
///   tuples, `Option<NonZero*>`, `PhantomData`, `ShmVec<T>`, `ShmString`, `ShmBox<T>`, and
///   other derived types.
///
/// # What it rejects
///
/// Each with a compile error at the span to change, saying how to fix it:
///
/// - no `#[repr]`, or one without a stable layout (`repr(Rust)`, `repr(packed)` or
///   `repr(align(N))` without `C`) — Rust's default layout may differ between compilations;
/// - unions — a reader cannot know which field is valid;
/// - lifetime parameters — other processes cannot follow borrows into this one;
/// - any field whose type is not `ShmSafe`: references, raw pointers, `NonNull`, function
///   pointers, trait objects, `Box`, `Vec`, `String`, `Rc`, `Arc`, files, ... — also when
///   hidden behind a type alias or a generic parameter. The error points at the field's type:
///
/// ```compile_fail,E0277
/// use ipc_runtime::prelude::*;
///
/// type Name = String;
///
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Robot {
///     id: u32,
///     name: Name, // error: `String` cannot be placed in shared memory
/// }
/// ```
///
/// ```compile_fail
/// use ipc_runtime::prelude::*;
///
/// #[derive(ShmMessage)] // error: requires a stable layout: add `#[repr(C)]` to `Pose`
/// struct Pose {
///     x: f64,
/// }
/// ```
///
/// - any field with interior mutability — atomics, `Cell`, `RefCell`, `OnceCell`,
///   `UnsafeCell` — however deeply nested (`[AtomicU32; 2]`, `ShmVec<AtomicU64>`,
///   `Wrapper<Cell<u32>>`): a subscriber maps messages read-only, so writing through `&self`
///   would fault, and a value that changes under a `&` is undefined behaviour. The error is at
///   the field and says so:
///
/// ```compile_fail,E0277
/// use ipc_runtime::prelude::*;
/// use std::sync::atomic::AtomicU64;
///
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Stats {
///     hits: AtomicU64, // error: `AtomicU64` has interior mutability: a subscriber maps messages read-only, ...
/// }
/// ```
///
/// - `Option<T>` for any `T` but `NonZero*`: Rust leaves its layout (where the tag is, which
///   values mean `None`) unspecified, so no reader could check it. Use an enum with
///   `#[repr(C, u8)]`, which the derive checks.
///
/// # What it emits
///
/// Inside `const _: () = { ... };`, with fully qualified paths (it works under
/// `#![no_implicit_prelude]`):
///
/// - `unsafe impl ShmSafe`, whose `LAYOUT_FINGERPRINT` is the `FINGERPRINT`, with the
///   validity check: `MAY_BE_INVALID` (whether any field may hold an invalid bit pattern;
///   always for enums) and `check_bits`, which reads the value through raw pointers — for a
///   struct each field that may be invalid, at its offset; for an enum the tag, which must be
///   one of the discriminants, then that variant's fields at the offsets the representation
///   gives them — and reports the path to the first invalid field (`Reading.status`,
///   `Frame.flags[3]`, `Command::Go.speed`) and what it held;
/// - `impl ShmMessage` with `TYPE_NAME` (the name as written: `"Pose"`, `"Wrapper<T>"`) and
///   `FINGERPRINT`, a compile-time hash of the type's name, representation, size and
///   alignment, and of each field's name, offset (`core::mem::offset_of!`) and own
///   fingerprint. For enums, offsets of variant fields are not available on stable Rust;
///   the hash covers each variant's name and discriminant and each field's name and
///   fingerprint, which together with the representation fix the layout. Two definitions
///   agree on the fingerprint exactly when they agree on all of that, in any crate;
/// - with `#[shm(topic = "name")]`, `impl Topic` with `NAME` (and `OPTIONS`, see below). The
///   name is checked at compile time: 1 to 100 bytes of ASCII letters, digits, `_`, `-`, `.`
///   (not first) and `/` between non-empty parts (`robot/arm/joints`).
///
/// # Attributes
///
/// - `#[shm(topic = "robot.pose")]` binds the type to a topic.
/// - Topic options next to it — `history = 4`, `capacity = 16`, `max_subscribers = 8`,
///   `max_publishers = 2`, `max_borrowed = 8`, `overflow = "block"` or `"drop_oldest"` —
///   become `Topic::OPTIONS`, which `Type::publisher()` and `Type::subscriber()` ask for, so
///   both sides agree whoever starts first. Ranges, and `history <= capacity`, are checked at
///   compile time.
/// - `#[shm(crate = "rt")]` names the runtime crate when it is renamed in `Cargo.toml`
///   (`rt = { package = "ipc-runtime", ... }`) or reached through a re-export
///   (`crate = "my_crate::ipc"`). The default is `::ipc_runtime`.
///
/// The expansion contains an `unsafe impl`; its soundness rests on the checks above, not on
/// anything the user writes. It does not trip `#![deny(unsafe_code)]` or other lints in the
/// user's crate.
///
/// # Limitations
///
/// - A type that contains itself through a container (`struct Node { children:
///   ShmVec<Node> }`) is refused: the containers' fingerprints include their element type's,
///   so its fingerprint would never end. Keep the nodes in one `ShmVec` and link them by index.
///   (Only `Self` and the type's own one-segment name are recognised; recursion through
///   another type or an alias still ends in the compiler's const-evaluation cycle, E0391.)
/// - Every type parameter gets `T: ShmSafe`, also one used only in `PhantomData<T>`, which
///   would accept any `T`.
/// - The fingerprint of an enum does not hash the offsets of variant fields (see above).
/// - The validity check runs when a subscriber receives a sample. A publisher that breaks the
///   protocol by changing a pooled sample *after* delivering it (the pool is its own memory)
///   can still change the bytes after the check; messages small enough to travel inside the
///   ring entry are checked on the subscriber's own copy and cannot be changed.
#[proc_macro_derive(ShmMessage, attributes(shm))]
pub fn derive_shm_message(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    derive(syn::parse_macro_input!(input as DeriveInput)).into()
}

/// The whole derive, as a function of `syn` types so it can be tested without a compiler
/// (`tests.rs`). Parses, checks, and emits the impls and every error found.
fn derive(input: DeriveInput) -> TokenStream {
    let cx = ctxt::Ctxt::new();
    let Some(cont) = ast::Container::from_ast(&cx, &input) else {
        return cx.into_compile_errors();
    };
    let body =
        if check::check(&cx, &cont) { expand::impls(&cont) } else { expand::field_checks(&cont) };
    let errors = cx.into_compile_errors();
    quote! {
        #errors
        #[doc(hidden)]
        const _: () = {
            #body
        };
    }
}
