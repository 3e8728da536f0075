// Topic names become part of OS object names: no empty parts around `/`, no spaces or
// non-ASCII.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topic = "robot//pose")]
#[repr(C)]
struct A;

#[derive(ShmMessage)]
#[shm(topic = "robot pose")]
#[repr(C)]
struct B;

#[derive(ShmMessage)]
#[shm(topic = "pose-ü")]
#[repr(C)]
struct C;

fn main() {}
