//! [`PipeReader`]: the reading end.

use std::io::{self, BufRead, Read};
use std::sync::atomic::Ordering;

use super::PipeBuilder;
use super::channel::{Channel, READER};
use super::ring;
use super::side::Side;

/// The reading end of a byte pipe in shared memory: [`std::io::Read`] and
/// [`std::io::BufRead`].
///
/// [`fill_buf`](BufRead::fill_buf) returns the readable bytes as one slice straight from the
/// shared ring (no copy); where the ring is [mirrored](PipeReader::is_mirrored) that slice is
/// everything readable, even across the wrap. Reading blocks while the ring is empty and
/// returns 0 (end of stream) once the writer is gone and everything it wrote was read.
///
/// ```
/// use std::io::{BufRead, Write};
/// use ipc_runtime::pipe::{PipeReader, PipeWriter};
///
/// # let name = format!("doc-reader-{}", std::process::id());
/// let mut reader = PipeReader::new(&name)?; // either side may come first
/// let mut writer = PipeWriter::new(&name)?;
/// writer.write_all(b"one\ntwo\n")?;
/// drop(writer);
/// let lines: Vec<String> = reader.lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["one", "two"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PipeReader {
    side: Side,
    /// Our read position (the shared one is only ever stored, never read back).
    pos: u64,
    /// The writer's position as last read and checked.
    write_cache: u64,
    capacity: u64,
    mirrored: bool,
    /// The writer is gone: once the ring is drained, reads return 0.
    writer_gone: bool,
}

impl PipeReader {
    /// Joins pipe `name` of the process's domain as its reader, creating the pipe (default
    /// capacity) if it does not exist. Use [`PipeReader::builder`] for options.
    ///
    /// # Errors
    /// [`Error::PipeBusy`](crate::Error::PipeBusy) if the pipe has a live reader;
    /// [`Error::PipeClosed`](crate::Error::PipeClosed) if its reader came and went while its
    /// writer is still attached; [`Error::InvalidName`](crate::Error::InvalidName);
    /// errors creating or opening the segments (see [`crate::segment`]).
    pub fn new(name: &str) -> crate::Result<PipeReader> {
        Self::builder(name).create()
    }

    /// Options for a reader of pipe `name`.
    ///
    /// ```
    /// # let name = format!("doc-reader-builder-{}", std::process::id());
    /// let reader = ipc_runtime::pipe::PipeReader::builder(&name).capacity(1 << 16).create()?;
    /// assert_eq!(reader.capacity(), 1 << 16);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn builder(name: &str) -> PipeBuilder<PipeReader> {
        PipeBuilder::new(name)
    }

    pub(super) fn join(builder: &PipeBuilder<PipeReader>) -> crate::Result<PipeReader> {
        let side = Side::join(&builder.name, &builder.options, READER, builder.spin, |c| {
            &c.control().data_word.0
        })?;
        let control = side.channel.control();
        let pos = control.read_pos.0.load(Ordering::Acquire);
        let write = control.write_pos.0.load(Ordering::Acquire);
        let capacity = side.channel.capacity() as u64;
        let mirrored = side.channel.ring().is_mirrored();
        let corrupt = ring::readable(write, pos, capacity).err();
        let reader = PipeReader {
            side,
            pos,
            write_cache: if corrupt.is_some() { pos } else { write },
            capacity,
            mirrored,
            writer_gone: false,
        };
        if let Some(bad) = corrupt {
            return Err(crate::Error::Corrupted {
                what: format!("pipe `{}`: {bad}", reader.channel().name()),
            });
        }
        Ok(reader)
    }

    fn channel(&self) -> &Channel {
        &self.side.channel
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Whether the ring is mapped twice back to back here, so that
    /// [`fill_buf`](BufRead::fill_buf) returns everything readable as one slice; otherwise it
    /// returns the part up to the ring's end first (see the module docs).
    pub fn is_mirrored(&self) -> bool {
        self.mirrored
    }

    /// Re-reads the writer's position and checks it; returns the readable byte count.
    fn refresh(&mut self) -> io::Result<u64> {
        let write = self.channel().control().write_pos.0.load(Ordering::Acquire);
        // The writer's position only moves forward; anything else is a corrupt peer.
        if write < self.write_cache {
            return Err(self.channel().corrupt(format!(
                "write position went back from {} to {write}",
                self.write_cache
            )));
        }
        let available = ring::readable(write, self.pos, self.capacity)
            .map_err(|bad| self.channel().corrupt(bad))?;
        self.write_cache = write;
        Ok(available)
    }

    /// Blocks until bytes arrive (returns their count) or the writer is gone (returns 0).
    #[cold]
    fn wait_for_data(&mut self) -> io::Result<u64> {
        loop {
            if self.writer_gone {
                return self.refresh();
            }
            let control = self.channel().control();
            let seen = self.write_cache;
            let ready = self.side.wait(&control.data_word.0, || {
                control.write_pos.0.load(Ordering::Acquire) != seen
                    || control.status.0.writer_closed.load(Ordering::Relaxed) != 0
            })?;
            // The flag first: its writer stored its last position before setting it.
            let closed = control.status.0.writer_closed.load(Ordering::Acquire) != 0;
            let available = self.refresh()?;
            if available > 0 {
                return Ok(available);
            }
            if closed || (!ready && self.side.peer_gone()) {
                self.writer_gone = true;
                // A writer that died published whatever it published; look once more.
                return self.refresh();
            }
            if self.channel().truncated() {
                return Err(self.channel().corrupt("a peer truncated its shared memory"));
            }
        }
    }

    fn available(&mut self) -> io::Result<u64> {
        let mut available = self.write_cache - self.pos;
        if available == 0 {
            available = self.refresh()?;
            if available == 0 {
                available = self.wait_for_data()?;
            }
        }
        Ok(available)
    }
}

impl BufRead for PipeReader {
    /// The readable bytes, straight from shared memory; empty at the end of the stream.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let available = self.available()? as usize;
        let at = ring::offset(self.pos, self.capacity);
        let len = if self.mirrored {
            available
        } else {
            ring::split(self.pos, available, self.capacity).0
        };
        let base = self.channel().ring().ptr().as_ptr();
        // SAFETY: `at < capacity` and `len <= available <= capacity` (checked by `readable`);
        // `at + len` stays within the view: within `2 * capacity` when mirrored, within
        // `capacity` otherwise (`split`). The bytes `pos..pos + len` were published by the
        // writer (Acquire load of its position) and it does not write them again until we
        // consume them. A hostile writer could still scribble on them; they are plain bytes,
        // for which any value is valid. The slice borrows `self`, which owns the mapping.
        Ok(unsafe { std::slice::from_raw_parts(base.add(at), len) })
    }

    fn consume(&mut self, amount: usize) {
        let amount = (amount as u64).min(self.write_cache - self.pos);
        if amount == 0 {
            return;
        }
        self.pos += amount;
        let control = self.channel().control();
        control.read_pos.0.store(self.pos, Ordering::Release);
        if let Err(err) = self.side.wake_peer(&control.space_word.0) {
            tracing::warn!("pipe `{}`: waking the writer: {err}", self.channel().name());
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let control = self.channel().control();
        control.status.0.reader_closed.store(1, Ordering::Release);
        if let Err(err) = self.side.wake_peer(&control.space_word.0) {
            tracing::warn!("pipe `{}`: waking the writer: {err}", self.channel().name());
        }
        self.side.leave();
    }
}
