use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(Rust)]
enum Mode {
    Idle,
    Run,
}

fn main() {}
