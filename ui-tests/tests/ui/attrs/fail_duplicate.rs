// Each key at most once, whether in one attribute or split over several.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topic = "a", topic = "b")]
#[repr(C)]
struct A;

#[derive(ShmMessage)]
#[shm(crate = "ipc_runtime")]
#[shm(crate = "ipc_runtime")]
#[repr(C)]
struct B;

fn main() {}
