// `packed` alone is still Rust's layout: field order is unspecified.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(packed)]
struct A {
    x: u8,
    y: u32,
}

#[derive(ShmMessage)]
#[repr(packed(2))]
struct B {
    x: u8,
    y: u32,
}

fn main() {}
