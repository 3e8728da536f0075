// Spelling out the default layout does not make it stable.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(Rust)]
struct Pose {
    x: f64,
}

fn main() {}
