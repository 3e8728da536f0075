// `#[shm(crate = "...")]` with the crate's own name, an absolute path and a re-export.
mod reexport {
    pub use ipc_runtime as rt;
}

use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[shm(crate = "ipc_runtime")]
#[repr(C)]
struct A(u8);

#[derive(ShmMessage)]
#[shm(crate = "::ipc_runtime", topic = "b")]
#[repr(C)]
struct B(u8);

#[derive(ShmMessage)]
#[shm(topic = "c")]
#[shm(crate = "reexport::rt")]
#[repr(u8)]
enum C {
    X(u8),
}

fn main() {
    assert_eq!(<B as Topic>::NAME, "b");
    assert_eq!(<C as Topic>::NAME, "c");
    let _ = (A(0).0, B(0).0, C::X(0), A::FINGERPRINT);
}
