// Topic options in the attribute are checked at compile time.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topic = "a", history = 40, capacity = 16)]
#[repr(C)]
struct TooMuchHistory(u32);

#[derive(ShmMessage)]
#[shm(topic = "b", overflow = "sometimes", max_publishers = 0)]
#[repr(C)]
struct BadValues(u32);

#[derive(ShmMessage)]
#[shm(history = 2)]
#[repr(C)]
struct NoTopic(u32);

#[derive(ShmMessage)]
#[shm(topic = "c", history = 2, history = 3)]
#[repr(C)]
struct Twice(u32);

fn main() {}
