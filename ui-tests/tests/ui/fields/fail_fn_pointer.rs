// Code is loaded at a different address in every process.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Callbacks {
    on_message: fn(u32),
    on_error: extern "C" fn(i32) -> i32,
}

fn main() {}
