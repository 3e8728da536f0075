// The shape the recursion error suggests: nodes in one `ShmVec`, linked by index.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Node {
    value: u32,
    children: ShmVec<u32>,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Tree {
    nodes: ShmVec<Node>,
}

// A wrapped array is a message.
#[derive(ShmMessage)]
#[repr(C)]
struct Point([f32; 3]);

fn main() {
    let _ = Tree::FINGERPRINT;
    let _ = Point::FINGERPRINT;
}
