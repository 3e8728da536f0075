// Variant fields are checked like struct fields, at their types.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C, u8)]
enum Event {
    Named(String),
    Raw { ptr: *const u8, len: usize },
    Ok(u32),
}

fn main() {}
