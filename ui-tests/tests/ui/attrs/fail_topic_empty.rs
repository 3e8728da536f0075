use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topic = "")]
#[repr(C)]
struct Pose;

fn main() {}
