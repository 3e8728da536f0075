// The user's bounds, `where` clause and defaults are kept; `ShmSafe` is added to them.
use core::fmt::Debug;
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Tagged<T: Copy + Debug, U = u8>
where
    U: Default,
{
    value: T,
    extra: U,
}

fn assert_message<M: ShmMessage>() {}

fn main() {
    assert_message::<Tagged<u32>>();
    assert_message::<Tagged<f64, ShmString>>();
    let t: Tagged<u32> = Tagged { value: 3, extra: 4 };
    assert_eq!(format!("{:?}", t.value), "3");
    assert_eq!(t.extra, 4);
}
