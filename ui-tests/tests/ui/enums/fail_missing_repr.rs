// Without a `#[repr]`, the tag and the variants' layout are unspecified.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
enum Mode {
    Idle,
    Run { speed: f32 },
}

fn main() {}
