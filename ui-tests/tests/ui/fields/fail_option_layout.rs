// `Option<T>` has a layout Rust guarantees only for `NonZero*` (accepted); any other `Option`
// is refused with the reason and the fix (a `#[repr(C, u8)]` enum), since no reader could check
// its tag.
use core::num::NonZeroU32;
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Point {
    x: f32,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Maybe {
    fine: Option<NonZeroU32>,
    number: Option<u32>,
    flag: Option<bool>,
    point: Option<Point>,
}

fn main() {}
