// Inside arrays and tuples, the innermost offending type is reported (an `Option` other than
// `Option<NonZero*>` is refused as a whole: see `fail_option_layout.rs`).
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
