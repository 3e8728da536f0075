// `#[repr(C)]` on a struct with named fields: the basic accepted form.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Pose {
    x: f64,
    y: f64,
    heading: f32,
}

// The constants are usable in const context.
const FINGERPRINT: u64 = Pose::FINGERPRINT;

fn main() {
    assert_eq!(Pose::TYPE_NAME, "Pose");
    assert_eq!(<Pose as ShmSafe>::LAYOUT_FINGERPRINT, FINGERPRINT);
    let pose = Pose { x: 1.0, y: 2.0, heading: 0.5 };
    assert_eq!(pose.x + pose.y + f64::from(pose.heading), 3.5);
}
