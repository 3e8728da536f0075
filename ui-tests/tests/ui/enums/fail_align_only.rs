// `align(N)` does not fix an enum's tag or layout.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(align(8))]
enum Mode {
    Idle,
    Run,
}

fn main() {}
