// References hold addresses of this process; each form gets a hint that fits it.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Refs {
    name: &'static str,
    bytes: &'static [u8],
    counter: &'static mut u32,
}

fn main() {}
