// The expansion triggers none of rustc's optional lints in the user's crate.
#![deny(warnings, missing_docs, unsafe_code, unused, nonstandard_style, rust_2018_idioms)]
#![deny(unused_qualifications, unused_results, trivial_casts, trivial_numeric_casts)]
#![deny(unreachable_pub, missing_debug_implementations, single_use_lifetimes)]
#![deny(unused_import_braces, variant_size_differences, meta_variable_misuse)]
//! A crate with strict lints.

use ipc_runtime::prelude::*;

/// A message.
#[derive(ShmMessage, Debug)]
#[shm(topic = "strict")]
#[repr(C)]
pub struct Pose<T> {
    /// x
    pub x: f64,
    /// tag
    pub tag: [T; 2],
}

/// A command.
#[derive(ShmMessage, Debug)]
#[repr(i128)]
pub enum Command {
    /// stop
    Stop = -1,
    /// go
    Go,
}

fn main() {
    let fingerprints = [Pose::<u8>::FINGERPRINT, Command::FINGERPRINT];
    assert_ne!(fingerprints[0], fingerprints[1]);
    let _ = (Command::Stop, Command::Go);
}
