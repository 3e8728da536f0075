//! Tests of `#[derive(ShmMessage)]` (the crate itself is empty):
//!
//! - `tests/ui.rs`: trybuild cases in `tests/ui/<category>/`, grouped like serde's (`repr`,
//!   `fields`, `generics`, `enums`, `attrs`, `hygiene`). `pass_*.rs` must compile and run;
//!   `fail_*.rs` must fail with exactly the diagnostics of their reviewed `.stderr` files.
//! - `tests/fingerprints.rs`: fingerprints agree for identical definitions (also across the
//!   crates `fingerprint-a` and `fingerprint-b`) and change with a field's name, type or
//!   order, the representation, variants and nested types.
//! - `tests/hygiene.rs`: the crates `no-prelude` (`#![no_implicit_prelude]`) and
//!   `renamed-runtime` (runtime renamed to `rt`, `#[shm(crate = "rt")]`) compile and agree
//!   with the ordinary expansion.
