// Interior mutability is refused, at the field, however it is nested: a subscriber maps
// messages read-only and must not be able to write through `&self`.
use core::cell::{Cell, OnceCell, RefCell, UnsafeCell};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Counters {
    hits: AtomicU64,
    up: AtomicBool,
    cell: Cell<u32>,
    ref_cell: RefCell<u32>,
    once: OnceCell<u32>,
    raw: UnsafeCell<u32>,
    in_array: [AtomicU32; 2],
    in_tuple: (u8, Cell<u8>),
    ok: u64,
}

fn main() {}
