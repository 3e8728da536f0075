// A message that contains itself (through a container) gets one readable error.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Node {
    value: u32,
    children: ShmVec<Node>,
}

fn main() {
    let _ = Publisher::<Node>::new("tree");
}
