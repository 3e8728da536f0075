// Unknown keys are errors (a typo must not silently drop the topic); the known keys around
// them still work.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topik = "robot.pose")]
#[repr(C)]
struct A;

#[derive(ShmMessage)]
#[shm(rename(x), topic = "b", bound = "T: Copy")]
#[repr(C)]
struct B;

fn main() {
    assert_eq!(<B as Topic>::NAME, "b");
}
