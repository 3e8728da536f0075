// `align(N)` alone is still Rust's layout: field order is unspecified.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(align(8))]
struct A {
    x: u8,
    y: u32,
}

fn main() {}
