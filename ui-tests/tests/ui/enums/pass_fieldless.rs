// Fieldless enums with a primitive or C representation, explicit and implicit discriminants.
use core::mem::size_of;
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(u8)]
enum Mode {
    Idle,
    Run = 10,
    Stop,
}

#[derive(ShmMessage)]
#[repr(u16)]
enum Mode16 {
    Idle,
    Run = 10,
    Stop,
}

#[derive(ShmMessage)]
#[repr(C)]
enum Level {
    Low = -1,
    High = 1 << 4,
}

#[derive(ShmMessage)]
#[repr(i8)]
enum Sign {
    Minus = -1,
    Zero,
    Plus,
}

#[derive(ShmMessage)]
#[repr(u64)]
enum Big {
    Max = 0xFFFF_FFFF_FFFF_FFFF,
}

const BASE: u32 = 100;

#[derive(ShmMessage)]
#[repr(u32)]
enum FromConst {
    A = BASE,
    B,
}

fn main() {
    assert_eq!(size_of::<Mode>(), 1);
    assert_eq!(Mode::Stop as u8, 11);
    assert_ne!(Mode::FINGERPRINT, Mode16::FINGERPRINT);
    assert_eq!(Level::High as isize, 16);
    assert_eq!(Sign::Plus as i8, 1);
    assert_eq!(Big::Max as u64, u64::MAX);
    assert_eq!(FromConst::B as u32, 101);
    let _ = (Mode::Idle, Mode::Run, Mode16::Idle, Mode16::Run, Mode16::Stop, Level::Low);
    let _ = (Sign::Minus, Sign::Zero, FromConst::A, Big::FINGERPRINT, Level::FINGERPRINT);
    let _ = (Sign::FINGERPRINT, FromConst::FINGERPRINT);
}
