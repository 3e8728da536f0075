// A field whose type is built from a parameter is checked generically, at the definition.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Batch<T> {
    items: Vec<T>,
    first: T,
}

fn main() {}
