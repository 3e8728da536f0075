// `#[shm(topic = "...")]` binds the type to a topic; valid names at the edges of the rule.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(topic = "robot.pose")]
#[repr(C)]
struct Pose {
    x: f64,
}

#[derive(ShmMessage)]
#[repr(u8)]
#[shm(topic = "A-z_0.9..x")]
enum Mode {
    Idle,
}

#[derive(ShmMessage)]
#[shm(topic = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")]
#[repr(C)]
struct Longest;

#[derive(ShmMessage)]
#[shm(topic = "robot/arm/joints")]
#[repr(C)]
struct Joints;

#[derive(ShmMessage)]
#[repr(C)]
#[shm(topic = "generic")]
struct Generic<T>(T);

fn topic<M: Topic>() -> &'static str {
    M::NAME
}

fn main() {
    assert_eq!(topic::<Pose>(), "robot.pose");
    assert_eq!(topic::<Mode>(), "A-z_0.9..x");
    assert_eq!(topic::<Longest>().len(), 100);
    assert_eq!(topic::<Generic<u8>>(), "generic");
    assert_eq!(topic::<Joints>(), "robot/arm/joints");
    assert_eq!(Pose::TYPE_NAME, "Pose");
    let _ = (Pose { x: 0.0 }.x, Mode::Idle, Generic(0u8).0, Joints);
}
