//! The derive's bit-validity check (`ShmSafe::check_bits`) on arbitrary bytes: it must accept
//! exactly the valid values (an independent rule decides, by byte offsets), name the first
//! invalid field, and a value it accepts must read back through `match` as those bytes. Covers
//! a primitive-repr enum with a gap, a `repr(C, u8)` enum with fields, `bool`, `char`,
//! `NonZeroU32` and arrays.
#![no_main]

use std::num::NonZeroU32;

use ipc_runtime::prelude::*;
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Status {
    Idle = 0,
    Busy = 1,
    Failed = 7,
}

#[allow(dead_code)]
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C, u8)]
enum Command {
    Stop,
    Go { speed: f32, reverse: bool },
    Say(char),
}

/// Offsets: seq 0, status 8, cmd 12 (tag 12, fields from 16: speed/char 16, reverse 20),
/// flags 24..27, id 28, size 32.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Reading {
    seq: u64,
    status: Status,
    cmd: Command,
    flags: [bool; 3],
    id: NonZeroU32,
}

const SIZE: usize = 32;
const _: () = assert!(size_of::<Reading>() == SIZE);

#[repr(C, align(16))]
struct Aligned([u8; SIZE]);

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The path of the first invalid field, decided from the bytes alone.
fn oracle(b: &[u8]) -> Option<String> {
    if ![0, 1, 7].contains(&u32_at(b, 8)) {
        return Some("Reading.status".into());
    }
    let cmd = match b[12] {
        0 => None,
        1 => (b[20] > 1).then(|| "Reading.cmd::Go.reverse".to_owned()),
        2 => char::from_u32(u32_at(b, 16)).is_none().then(|| "Reading.cmd::Say.0".to_owned()),
        _ => Some("Reading.cmd".to_owned()),
    };
    if cmd.is_some() {
        return cmd;
    }
    if let Some(i) = (0..3).find(|&i| b[24 + i] > 1) {
        return Some(format!("Reading.flags[{i}]"));
    }
    (u32_at(b, 28) == 0).then(|| "Reading.id".to_owned())
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Aligned([0; SIZE]);
    let n = data.len().min(SIZE);
    bytes.0[..n].copy_from_slice(&data[..n]);
    // SAFETY: `SIZE` initialised bytes, aligned to 16 (more than `Reading` needs).
    let got = unsafe { <Reading as ShmSafe>::check_bits(bytes.0.as_ptr().cast()) };
    let expected = oracle(&bytes.0);
    assert_eq!(got.as_ref().err().map(|e| e.path("Reading")), expected, "bytes {:02x?}", bytes.0);
    if got.is_ok() {
        // SAFETY: the check (and the oracle) accepted the bytes as a `Reading`.
        let r: Reading = unsafe { std::ptr::read(bytes.0.as_ptr().cast()) };
        let status = match r.status {
            Status::Idle => 0,
            Status::Busy => 1,
            Status::Failed => 7,
        };
        assert_eq!(status, u32_at(&bytes.0, 8));
        match r.cmd {
            Command::Stop => assert_eq!(bytes.0[12], 0),
            Command::Go { speed, reverse } => {
                assert_eq!(speed.to_bits(), u32_at(&bytes.0, 16));
                assert_eq!(u8::from(reverse), bytes.0[20]);
            }
            Command::Say(c) => assert_eq!(u32::from(c), u32_at(&bytes.0, 16)),
        }
        for (i, flag) in r.flags.iter().enumerate() {
            assert_eq!(u8::from(*flag), bytes.0[24 + i]);
        }
        assert_eq!(r.id.get(), u32_at(&bytes.0, 28));
    }
});
