// `#[shm]` only belongs on the type.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct A {
    #[shm(topic = "a")]
    x: u32,
}

#[derive(ShmMessage)]
#[repr(u8)]
enum B {
    #[shm(topic = "b")]
    X,
}

fn main() {}
