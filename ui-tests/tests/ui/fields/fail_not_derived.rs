// A user type must derive `ShmMessage` itself before it can be a field.
use ipc_runtime::prelude::*;

#[repr(C)]
struct Plain {
    x: u32,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Outer {
    inner: Plain,
    many: [Plain; 2],
}

fn main() {}
