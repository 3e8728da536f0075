// An alias does not hide a type from the check: the error names the real type and points at
// the field.
use ipc_runtime::prelude::*;

type Handle = *const u8;
type Names = Vec<String>;

#[derive(ShmMessage)]
#[repr(C)]
struct Packet {
    len: u32,
    handle: Handle,
    names: Names,
}

fn main() {}
