//! Where everything of a pipe lives in its control segment, and checking what a peer wrote
//! there before it is used.
//!
//! The control segment (kind [`SegmentKind::Pipe`](crate::segment::SegmentKind::Pipe),
//! [`CONTROL_SIZE`] bytes) holds, after the segment header:
//!
//! | offset | what | written by |
//! |---|---|---|
//! | 64 | [`Config`]: magic, layout version, wait backend, ring capacity | the creator, once |
//! | 128 | writer's [`Member`] slot | writers, under the pipe's lock |
//! | 256 | reader's [`Member`] slot | readers, under the pipe's lock |
//! | 384 | write position | the writer only |
//! | 512 | read position | the reader only |
//! | 640 | [`Status`]: joined and closed flags of both sides | each side its own flags |
//! | 768 | the data word (the reader sleeps on it) | see [`crate::wait`] |
//! | 896 | the space word (the writer sleeps on it) | see [`crate::wait`] |
//!
//! Each group has its own 128-byte block (two cache lines, against adjacent-line prefetch), so
//! the writer's position and the reader's never share a line. The ring's bytes live in a
//! second object of exactly `capacity` bytes (`<domain>.pipe.<name>.ring`). Everything is an
//! offset; no address is ever stored.

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::error::{Error, Result};
use crate::membership::Member;
use crate::segment::HEADER_SIZE;
use crate::wait::WaitWord;

/// Magic bytes of a pipe's config.
pub(crate) const PIPE_MAGIC: [u8; 8] = *b"IPCPIPE\x01";
/// Version of the layout below. Version 2: member slots record their holder's process token
/// (`crate::membership`).
pub(crate) const PIPE_VERSION: u32 = 2;
/// Size of the control segment.
pub(crate) const CONTROL_SIZE: usize = 4096;
/// Offset of [`Config`].
pub(crate) const CONFIG_OFFSET: usize = HEADER_SIZE;
/// Offset of [`Control`].
pub(crate) const CONTROL_OFFSET: usize = 128;
/// Smallest ring: 64 KiB, a multiple of every page size and of Windows' allocation granularity.
pub const MIN_CAPACITY: usize = 64 * 1024;
/// Largest ring: 1 GiB.
pub const MAX_CAPACITY: usize = 1 << 30;
/// Default ring size: 1 MiB.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// What the creator fixes once; read by everyone else with a volatile copy and checked.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub magic: [u8; 8],
    pub version: u32,
    pub backend_id: u32,
    pub capacity: u64,
    pub backend_name: [u8; 32],
}

/// One 128-byte block.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub(crate) struct Line<T>(pub T);

/// Who came and who went. Each flag is written by one side only, once per segment.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub writer_joined: AtomicU32,
    pub writer_closed: AtomicU32,
    pub reader_joined: AtomicU32,
    pub reader_closed: AtomicU32,
}

/// The shared part of a pipe, at [`CONTROL_OFFSET`]. All atomics: any bit pattern a peer
/// writes is a valid value (and is checked before it is used as a position).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub writer: Line<Member>,
    pub reader: Line<Member>,
    pub write_pos: Line<AtomicU64>,
    pub read_pos: Line<AtomicU64>,
    pub status: Line<Status>,
    pub data_word: Line<WaitWord>,
    pub space_word: Line<WaitWord>,
}

const _: () = {
    assert!(CONFIG_OFFSET + size_of::<Config>() <= CONTROL_OFFSET);
    assert!(CONTROL_OFFSET + size_of::<Control>() <= CONTROL_SIZE);
    assert!(offset_of!(Control, write_pos) == 256);
    assert!(offset_of!(Control, read_pos) == 384);
    assert!(offset_of!(Control, space_word) == 768);
};

impl Config {
    pub(crate) fn new(capacity: usize, backend_id: u32, backend: &str) -> Config {
        let mut backend_name = [0u8; 32];
        let n = backend.len().min(31);
        backend_name[..n].copy_from_slice(&backend.as_bytes()[..n]);
        Config {
            magic: PIPE_MAGIC,
            version: PIPE_VERSION,
            backend_id,
            capacity: capacity as u64,
            backend_name,
        }
    }

    /// Checks a config read from segment `pipe` of `segment_len` bytes; returns the capacity.
    pub(crate) fn check(&self, pipe: &str, segment_len: usize) -> Result<usize> {
        let bad = |what: String| Err(Error::Corrupted { what: format!("pipe `{pipe}`: {what}") });
        if self.magic != PIPE_MAGIC {
            return bad(format!("wrong magic {:?} in its config", self.magic));
        }
        if self.version != PIPE_VERSION {
            return bad(format!(
                "layout version {} (this build reads version {PIPE_VERSION})",
                self.version
            ));
        }
        if segment_len != CONTROL_SIZE {
            return bad(format!("control segment is {segment_len} bytes, expected {CONTROL_SIZE}"));
        }
        match usize::try_from(self.capacity) {
            Ok(capacity) if check_capacity(capacity).is_ok() => Ok(capacity),
            _ => bad(format!(
                "ring capacity {} is not a power of two in {MIN_CAPACITY}..={MAX_CAPACITY}",
                self.capacity
            )),
        }
    }

    pub(crate) fn backend_name(&self) -> String {
        String::from_utf8_lossy(&self.backend_name).trim_end_matches('\0').to_owned()
    }
}

/// Checks a capacity option: a power of two from [`MIN_CAPACITY`] to [`MAX_CAPACITY`].
pub(crate) fn check_capacity(capacity: usize) -> Result<()> {
    if capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        Ok(())
    } else {
        Err(Error::InvalidOption {
            option: "capacity",
            reason: format!(
                "{capacity} bytes: must be a power of two from {MIN_CAPACITY} (64 KiB) to {MAX_CAPACITY} (1 GiB)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let good = Config::new(DEFAULT_CAPACITY, 1, "futex");
        assert_eq!(good.check("p", CONTROL_SIZE).unwrap(), DEFAULT_CAPACITY);
        assert_eq!(good.backend_name(), "futex");
        assert!(good.check("p", CONTROL_SIZE * 2).is_err());
        let mut bad = good;
        bad.magic[0] ^= 1;
        assert!(bad.check("p", CONTROL_SIZE).unwrap_err().to_string().contains("magic"));
        let mut bad = good;
        bad.version = 99;
        assert!(bad.check("p", CONTROL_SIZE).unwrap_err().to_string().contains("version"));
        for capacity in [0, 1, 4096, 3 << 16, 1 << 31, u64::MAX] {
            let mut bad = good;
            bad.capacity = capacity;
            let err = bad.check("p", CONTROL_SIZE).unwrap_err().to_string();
            assert!(err.contains("capacity") && err.contains("`p`"), "{err}");
        }
        assert!(check_capacity(1 << 16).is_ok());
        assert!(check_capacity(1 << 30).is_ok());
        assert!(check_capacity(100_000).is_err());
    }
}
