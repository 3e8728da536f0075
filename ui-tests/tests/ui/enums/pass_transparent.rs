// A single-variant enum with `repr(transparent)` has its field's layout.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(transparent)]
enum Wrapper {
    Only(u32),
}

fn main() {
    assert_eq!(core::mem::size_of::<Wrapper>(), 4);
    let Wrapper::Only(x) = Wrapper::Only(3);
    assert_eq!(x, 3);
    let _ = Wrapper::FINGERPRINT;
}
