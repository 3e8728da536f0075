// Raw pointers hold addresses of this process.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Packet {
    len: u32,
    data: *const u8,
    out: *mut u8,
}

fn main() {}
