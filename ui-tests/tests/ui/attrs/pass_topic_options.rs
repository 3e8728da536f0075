// Topic options next to the topic become `Topic::OPTIONS`.
use ipc_runtime::prelude::*;
use ipc_runtime::pubsub::{Options, Overflow};

#[derive(ShmMessage)]
#[shm(topic = "robot/joints", history = 4, capacity = 32, max_subscribers = 16)]
#[shm(max_publishers = 1, max_borrowed = 2, overflow = "block")]
#[repr(C)]
struct Joints {
    angles: [f32; 6],
}

#[derive(ShmMessage)]
#[shm(topic = "plain")]
#[repr(C)]
struct Plain(u32);

fn main() {
    const EXPECTED: Options = Options::new()
        .history(4)
        .subscriber_capacity(32)
        .max_subscribers(16)
        .max_publishers(1)
        .max_borrowed(2)
        .overflow(Overflow::Block);
    assert_eq!(Joints::OPTIONS, EXPECTED);
    assert_eq!(Plain::OPTIONS, Options::new());
}
