// Inside arrays, tuples and `Option`, the innermost offending type is reported.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Nested {
    refs: [&'static u8; 4],
    pair: (u32, *const u8),
    maybe: Option<String>,
    ok: [u8; 4],
}

fn main() {}
