// User items named like what the expansion uses do not change its meaning.
#![allow(non_camel_case_types, dead_code)]

use ipc_runtime::prelude::*;

struct u64;
struct u8;
struct i128;
struct isize;
struct str;
mod core {}
trait ShmSafe {}
const h: () = ();
const d: () = ();
const START: () = ();

#[derive(ShmMessage)]
#[repr(C)]
struct Pose {
    x: f64,
}

#[derive(ShmMessage)]
#[repr(u8)]
#[shm(topic = "shadowed")]
enum Mode {
    A = 1,
    B,
}

#[derive(ShmMessage)]
#[repr(C)]
enum Level {
    Low,
}

fn main() {
    let _ = (Pose { x: 0.0 }.x, Mode::A, Mode::B, Level::Low);
    let _ = (Pose::FINGERPRINT, Mode::FINGERPRINT, Level::FINGERPRINT, <Mode as Topic>::NAME);
}
