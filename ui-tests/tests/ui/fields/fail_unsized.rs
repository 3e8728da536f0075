// Unsized fields have no fixed size.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Text {
    len: u32,
    text: str,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Bytes {
    len: u32,
    bytes: [u8],
}

fn main() {}
