use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topic = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")]
#[repr(C)]
struct Pose;

fn main() {
    // No `Topic` impl for an invalid name, but the message impls are there.
    let _ = Pose::FINGERPRINT;
}
