// `align(N)` and `packed`/`packed(N)` next to `C`, in one attribute or split over two.
use core::mem::{align_of, size_of};
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C, align(64))]
struct CacheLine {
    counter: u64,
}

#[derive(ShmMessage)]
#[repr(C)]
#[repr(align(16))]
struct Split {
    a: u8,
}

#[derive(ShmMessage)]
#[repr(C, packed)]
struct Packed {
    tag: u8,
    value: u32,
}

#[derive(ShmMessage)]
#[repr(C, packed(2))]
struct Packed2 {
    tag: u8,
    value: u32,
}

fn main() {
    assert_eq!(align_of::<CacheLine>(), 64);
    assert_eq!(align_of::<Split>(), 16);
    assert_eq!(size_of::<Packed>(), 5);
    assert_eq!(size_of::<Packed2>(), 6);
    assert_ne!(Packed::FINGERPRINT, Packed2::FINGERPRINT);
    let p = Packed { tag: 1, value: 2 };
    let value = p.value;
    assert_eq!(p.tag as u32 + value, 3);
    let _ = (CacheLine { counter: 0 }.counter, Split { a: 0 }.a, Packed2 { tag: 0, value: 0 });
}
