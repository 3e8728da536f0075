// The derive adds `T: ShmSafe` itself; each instantiation has its own fingerprint.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Stamped<T> {
    at: i64,
    value: T,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Pair<A, B>(A, B);

#[derive(ShmMessage)]
#[repr(C)]
struct Pose {
    x: f64,
}

fn assert_message<M: ShmMessage>() {}

fn main() {
    assert_message::<Stamped<u32>>();
    assert_message::<Stamped<Pose>>();
    assert_message::<Stamped<Stamped<ShmString>>>();
    assert_message::<Pair<u8, ShmVec<Pose>>>();
    assert_eq!(Stamped::<u32>::TYPE_NAME, "Stamped<T>");
    assert_eq!(Pair::<u8, u8>::TYPE_NAME, "Pair<A, B>");
    assert_ne!(Stamped::<u32>::FINGERPRINT, Stamped::<i32>::FINGERPRINT);
    assert_ne!(Stamped::<u32>::FINGERPRINT, Stamped::<u64>::FINGERPRINT);
    assert_eq!(Stamped::<u32>::FINGERPRINT, Stamped::<u32>::FINGERPRINT);
    let s = Stamped { at: 1, value: Pose { x: 2.0 } };
    let _ = (s.at, s.value.x, Pair(1u8, 2u8).1);
}
