// `crate` takes a path, written as a string.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(crate = "ipc runtime")]
#[repr(C)]
struct A;

#[derive(ShmMessage)]
#[shm(crate = ipc_runtime)]
#[repr(C)]
struct B;

fn main() {}
