use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topic = ".hidden")]
#[repr(C)]
struct Pose;

fn main() {}
