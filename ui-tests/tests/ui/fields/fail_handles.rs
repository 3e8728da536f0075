// `NonNull`, files and OS-backed locks are process-local.
use std::ptr::NonNull;

use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Handles {
    ptr: NonNull<u8>,
    file: std::fs::File,
    lock: std::sync::Mutex<u32>,
}

fn main() {}
