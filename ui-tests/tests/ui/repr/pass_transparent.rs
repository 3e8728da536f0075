// `#[repr(transparent)]`: a newtype has its field's layout, also with zero-sized companions.
use core::marker::PhantomData;
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(transparent)]
struct Meters(f64);

#[derive(ShmMessage)]
#[repr(transparent)]
struct Id<T> {
    raw: u64,
    _kind: PhantomData<T>,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Robot;

fn main() {
    assert_eq!(core::mem::size_of::<Meters>(), 8);
    assert_eq!(Id::<Robot>::TYPE_NAME, "Id<T>");
    let id = Id::<Robot> { raw: 7, _kind: PhantomData };
    assert_eq!(id.raw + Meters(1.0).0 as u64, 8);
}
