// Invalid `repr`s are rustc's to report; the derive adds no second error about them.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(u8)]
struct IntOnStruct {
    x: u8,
}

#[derive(ShmMessage)]
#[repr(C, transparent)]
struct Conflicting {
    x: u8,
}

#[derive(ShmMessage)]
#[repr(Cee)]
struct Typo {
    x: u8,
}

fn main() {}
