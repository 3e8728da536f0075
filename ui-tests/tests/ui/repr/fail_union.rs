// A union has no tag: a reader cannot know which field is valid.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
union Value {
    int: u64,
    float: f64,
}

fn main() {}
