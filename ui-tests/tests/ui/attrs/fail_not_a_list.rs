use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm]
#[repr(C)]
struct A;

#[derive(ShmMessage)]
#[shm = "robot.pose"]
#[repr(C)]
struct B;

fn main() {}
