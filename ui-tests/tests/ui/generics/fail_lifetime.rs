// Lifetime parameters: the message would borrow from this process. The field types are still
// checked in the same compile.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Borrowed<'a, 'b> {
    name: &'a str,
    text: std::borrow::Cow<'b, str>,
    ok: u32,
}

fn main() {}
