// The standard library's heap types point into this process's heap.
use std::rc::Rc;
use std::sync::Arc;

use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Heap {
    a: Box<u32>,
    b: Vec<u8>,
    c: String,
    d: Rc<u8>,
    e: Arc<u8>,
}

fn main() {}
