// A generic message instantiated with a type that is not `ShmSafe` is not a message.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Stamped<T> {
    at: i64,
    value: T,
}

fn assert_message<M: ShmMessage>() {}

fn main() {
    assert_message::<Stamped<String>>();
}
