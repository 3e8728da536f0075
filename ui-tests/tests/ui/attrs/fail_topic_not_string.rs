use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topic = robot.pose)]
#[repr(C)]
struct A;

#[derive(ShmMessage)]
#[shm(topic)]
#[repr(C)]
struct B;

#[derive(ShmMessage)]
#[shm(topic = 5)]
#[repr(C)]
struct C;

fn main() {}
