//! Byte pipes between processes: [`PipeWriter`] ([`std::io::Write`]) and [`PipeReader`]
//! ([`std::io::Read`], [`std::io::BufRead`]) over a ring in shared memory.
//!
//! ```
//! use std::io::{Read, Write};
//! use ipc_runtime::pipe::{PipeReader, PipeWriter};
//!
//! # let name = format!("doc-pipe-{}", std::process::id());
//! // In one process:
//! let mut writer = PipeWriter::new(&name)?;
//! // In another (here the same, for the example):
//! let mut reader = PipeReader::new(&name)?;
//! writer.write_all(&[7u8; 1000])?;
//! drop(writer);
//! let mut all = Vec::new();
//! reader.read_to_end(&mut all)?;
//! assert_eq!(all, [7u8; 1000]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics: like an OS pipe
//!
//! * One writer and one reader per pipe; a second one of either gets
//!   [`Error::PipeBusy`](crate::Error::PipeBusy) naming the pipe. Either side may come first:
//!   whoever comes first creates the pipe.
//! * A write blocks while the ring is full and returns how much it wrote (`write_all` loops);
//!   a read blocks while it is empty.
//! * Writer gone (dropped, or its process died however it died) → the reader reads what was
//!   written, then gets end of stream (`read` returns 0).
//! * Reader gone (dropped or dead) → writes fail with
//!   [`io::ErrorKind::BrokenPipe`](std::io::ErrorKind::BrokenPipe). A writer blocked on a full
//!   ring whose reader is killed notices within about 50 ms: a blocked side sleeps in slices
//!   and, between them, asks the OS whether its peer's process token
//!   ([`crate::liveness::ProcessToken`]) is still held. A clean drop wakes the other side at once.
//! * A pipe's stream is one stream: once its writer (or its reader) came and went while the
//!   other side is still attached, a new writer (reader) is refused with
//!   [`Error::PipeClosed`](crate::Error::PipeClosed). When both sides are gone, the last one
//!   out removes the pipe's objects (a pipe whose participants all died is replaced by the next
//!   one to join), and a new pair can use the name.
//! * Bytes written before a reader joins wait in the ring for as long as the writer stays.
//!
//! # The ring
//!
//! A single-producer single-consumer ring of [`capacity`](PipeBuilder::capacity) bytes (a
//! power of two from 64 KiB to 1 GiB; 1 MiB by default), Disruptor-style: the write position
//! and the read position are 64-bit byte counts on cache lines of their own, each stored by
//! one side only, and each side keeps the last value it read of the other's position, so a
//! write or read that fits in what it already knows touches no shared line but its own. When
//! the ring is full (empty), the writer (reader) sleeps on a wait word with the eventcount
//! protocol of [`crate::wait`]; waking costs a system call only if the other side sleeps.
//!
//! The ring's bytes live in their own object, `<domain>.pipe.<name>.ring`, next to a control
//! segment `<domain>.pipe.<name>` holding the positions, the flags and the membership slots.
//! On Unix the ring is mapped **twice back to back** (a `2 × capacity` reservation with both
//! halves mapping the same object), so a write or a read is never split at the wrap and
//! [`BufRead::fill_buf`](std::io::BufRead::fill_buf) hands out everything readable as one
//! slice. On Windows (and under Miri) the ring is mapped once and copies are split in two at
//! the wrap; `fill_buf` then returns the bytes up to the ring's end first.
//! [`PipeWriter::is_mirrored`] and [`PipeReader::is_mirrored`] say which is in use.
//!
//! # Trust
//!
//! The other side's positions are untrusted input: a reader that finds the write position
//! behind its own or more than the capacity ahead, or a writer that finds the read position
//! out of `[write - capacity, write]`, fails with
//! [`io::ErrorKind::InvalidData`](std::io::ErrorKind::InvalidData) naming the pipe and the
//! positions; nothing is ever read or written outside the ring. Opening checks the segment
//! header (see [`crate::segment`]), the pipe's magic, layout version, capacity and control size,
//! and that the ring object is exactly `capacity` bytes; both objects are created owner-only
//! and opened with the same owner and mode checks as every segment.

use std::marker::PhantomData;

mod channel;
mod layout;
mod reader;
mod ring;
mod side;
mod writer;

pub use channel::MAX_PIPE_NAME_LEN;
pub use layout::{DEFAULT_CAPACITY, MAX_CAPACITY, MIN_CAPACITY};
pub use reader::PipeReader;
pub use writer::PipeWriter;

/// Options for a [`PipeWriter`] or a [`PipeReader`]: [`PipeWriter::builder`],
/// [`PipeReader::builder`].
///
/// ```
/// use ipc_runtime::pipe::{PipeReader, PipeWriter};
///
/// # let name = format!("doc-builder-{}", std::process::id());
/// let writer = PipeWriter::builder(&name).capacity(1 << 20).spin(1000).create()?;
/// let reader = PipeReader::builder(&name).create()?;
/// assert_eq!(reader.capacity(), writer.capacity());
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PipeBuilder<T> {
    name: String,
    options: channel::Options,
    spin: u32,
    _side: PhantomData<fn() -> T>,
}

/// Default number of polls before a blocked side sleeps.
const DEFAULT_SPIN: u32 = 256;

impl<T> PipeBuilder<T> {
    fn new(name: &str) -> Self {
        PipeBuilder {
            name: name.to_owned(),
            options: channel::Options::default(),
            spin: DEFAULT_SPIN,
            _side: PhantomData,
        }
    }

    /// The ring's size in bytes when this side creates the pipe: a power of two from
    /// [`MIN_CAPACITY`] to [`MAX_CAPACITY`] ([`DEFAULT_CAPACITY`] if not set). Joining an
    /// existing pipe with a different capacity set is an error; not setting it accepts the
    /// pipe's.
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.options.capacity = Some(bytes);
        self
    }

    /// The domain (default: [`crate::domain::current`]).
    pub fn domain(mut self, domain: &str) -> Self {
        self.options.domain = Some(domain.to_owned());
        self
    }

    /// How many times a blocked side polls before it sleeps (default 256): more for lower
    /// latency at the cost of CPU.
    pub fn spin(mut self, polls: u32) -> Self {
        self.spin = polls;
        self
    }
}

impl PipeBuilder<PipeWriter> {
    /// Joins the pipe as its writer, creating it if needed.
    ///
    /// # Errors
    /// As [`PipeWriter::new`]; [`Error::InvalidOption`](crate::Error::InvalidOption) for a bad
    /// capacity or one that differs from the existing pipe's.
    pub fn create(&self) -> crate::Result<PipeWriter> {
        PipeWriter::join(self)
    }
}

impl PipeBuilder<PipeReader> {
    /// Joins the pipe as its reader, creating it if needed.
    ///
    /// # Errors
    /// As [`PipeReader::new`]; [`Error::InvalidOption`](crate::Error::InvalidOption) for a bad
    /// capacity or one that differs from the existing pipe's.
    pub fn create(&self) -> crate::Result<PipeReader> {
        PipeReader::join(self)
    }
}

#[cfg(test)]
mod tests;
