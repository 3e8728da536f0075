// Trait objects carry vtable pointers of this process.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Boxed {
    handler: Box<dyn Fn()>,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Unsized {
    len: u32,
    value: dyn core::fmt::Debug,
}

fn main() {}
