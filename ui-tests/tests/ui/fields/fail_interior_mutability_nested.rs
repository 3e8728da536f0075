// Interior mutability hidden in a container's element or a generic parameter is refused too,
// at the field that brings it in.
use core::cell::Cell;
use core::sync::atomic::AtomicU64;
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Wrapper<T> {
    inner: T,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Outer {
    wrapped: Wrapper<AtomicU64>,
    nested: Wrapper<Wrapper<Cell<u32>>>,
    fine: Wrapper<u64>,
}

fn main() {}
