// Named, tuple and unit structs, and raw identifiers as field names.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Named {
    r#type: u8,
    value: u32,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Tuple(u8, u32);

#[derive(ShmMessage)]
#[repr(C)]
struct Unit;

#[derive(ShmMessage)]
#[repr(C)]
struct Empty {}

fn main() {
    // Same layout, but field names are part of the fingerprint.
    assert_ne!(Named::FINGERPRINT, Tuple::FINGERPRINT);
    assert_ne!(Unit::FINGERPRINT, Empty::FINGERPRINT);
    assert_eq!(core::mem::size_of::<Unit>(), 0);
    let _ = (Named { r#type: 0, value: 1 }.value, Tuple(0, 1).1, Unit, Empty {});
}
