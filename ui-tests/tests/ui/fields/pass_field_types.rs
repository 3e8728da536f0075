// Every kind of built-in `ShmSafe` field type.
use core::marker::PhantomData;
use core::num::{NonZeroI64, NonZeroU32, NonZeroU8};
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Everything {
    a: u8,
    b: i128,
    c: f32,
    d: bool,
    e: char,
    f: (),
    g: [u16; 4],
    h: [[f64; 3]; 3],
    i: (u8, u32, f64),
    j: Option<NonZeroU32>,
    k: NonZeroU8,
    l: NonZeroI64,
    m: [Option<NonZeroU8>; 3],
    n: PhantomData<String>,
    o: ShmString,
    p: ShmVec<u8>,
    q: ShmVec<ShmString>,
    r: ShmBox<[u32; 16]>,
    s: ShmVec<ShmVec<(u16, u16)>>,
    t: ShmBox<Option<NonZeroU32>>,
    u: (),
}

fn main() {
    assert_eq!(Everything::TYPE_NAME, "Everything");
    assert_ne!(Everything::FINGERPRINT, 0);
}
