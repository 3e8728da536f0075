// Generic enums get the same `T: ShmSafe` bounds as generic structs.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C, u8)]
enum Update<T, const N: usize> {
    Nothing,
    One(T),
    Batch([T; N]),
}

fn main() {
    assert_eq!(Update::<u8, 2>::TYPE_NAME, "Update<T, N>");
    assert_ne!(Update::<u8, 2>::FINGERPRINT, Update::<u16, 2>::FINGERPRINT);
    let updates = [Update::Nothing, Update::One(1u32), Update::Batch([1, 2, 3])];
    assert!(matches!(updates[2], Update::Batch([_, _, 3])));
}
