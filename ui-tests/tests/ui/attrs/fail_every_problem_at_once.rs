// One compile reports every problem of a type, each at its own span.
use ipc_runtime::prelude::*;

type Alias = Vec<u8>;

#[derive(ShmMessage)]
#[shm(topic = "bad topic", colour = "red")]
struct Everything {
    #[shm(crate = "x")]
    name: &'static str,
    callback: fn(),
    data: Alias,
    ok: u32,
}

fn main() {}
