// The containers' elements cannot have interior mutability either: readers reach them through
// `&` in a read-only mapping too.
use core::cell::Cell;
use core::sync::atomic::AtomicU64;
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Shared {
    counters: ShmVec<AtomicU64>,
    boxed: ShmBox<Cell<u32>>,
}

fn main() {}
