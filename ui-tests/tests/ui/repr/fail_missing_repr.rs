// Without a `#[repr]`, Rust may lay the struct out differently in two compilations.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
struct Pose {
    x: f64,
    y: f64,
}

fn main() {
    // No cascade: the impls are still emitted, so using them adds no error.
    let _ = Pose::FINGERPRINT;
}
