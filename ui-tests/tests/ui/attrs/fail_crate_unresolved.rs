use ipc_runtime::prelude::*;

// A path that does not resolve is reported by rustc, at the string (once, not once per use).
#[derive(ShmMessage)]
#[shm(crate = "ipc_rt")]
#[repr(C)]
struct B;

fn main() {}
