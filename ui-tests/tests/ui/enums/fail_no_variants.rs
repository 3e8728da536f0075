// An enum without variants has no values to send.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
enum Never {}

// With a representation, rustc reports the empty enum itself (E0084); no second error.
#[derive(ShmMessage)]
#[repr(u8)]
enum AlsoNever {}

fn main() {}
