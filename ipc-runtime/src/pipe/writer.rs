//! [`PipeWriter`]: the writing end.

use std::io::{self, Write};
use std::sync::atomic::Ordering;

use super::PipeBuilder;
use super::channel::{Channel, WRITER};
use super::ring;
use super::side::Side;

/// The writing end of a byte pipe in shared memory: [`std::io::Write`].
///
/// One writer per pipe; see the [module docs](crate::pipe) for the semantics (blocking when
/// the ring is full, [`BrokenPipe`](io::ErrorKind::BrokenPipe) once the reader is gone).
///
/// ```
/// use std::io::{Read, Write};
/// use ipc_runtime::pipe::{PipeReader, PipeWriter};
///
/// # let name = format!("doc-writer-{}", std::process::id());
/// let mut writer = PipeWriter::new(&name)?;
/// let mut reader = PipeReader::new(&name)?;
/// writer.write_all(b"hello")?;
/// drop(writer); // the reader sees the end of the stream after the data
/// let mut text = String::new();
/// reader.read_to_string(&mut text)?;
/// assert_eq!(text, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PipeWriter {
    side: Side,
    /// Our write position (the shared one is only ever stored, never read back).
    pos: u64,
    /// The reader's position as last read.
    read_cache: u64,
    capacity: u64,
    mirrored: bool,
    broken: bool,
}

impl PipeWriter {
    /// Joins pipe `name` of the process's domain as its writer, creating the pipe (default
    /// capacity) if it does not exist. Use [`PipeWriter::builder`] for options.
    ///
    /// # Errors
    /// [`Error::PipeBusy`](crate::Error::PipeBusy) if the pipe has a live writer;
    /// [`Error::PipeClosed`](crate::Error::PipeClosed) if its writer came and went while its
    /// reader is still attached; [`Error::InvalidName`](crate::Error::InvalidName);
    /// errors creating or opening the segments (see [`crate::segment`]).
    pub fn new(name: &str) -> crate::Result<PipeWriter> {
        Self::builder(name).create()
    }

    /// Options for a writer of pipe `name`.
    ///
    /// ```
    /// # let name = format!("doc-writer-builder-{}", std::process::id());
    /// let writer = ipc_runtime::pipe::PipeWriter::builder(&name).capacity(256 * 1024).create()?;
    /// assert_eq!(writer.capacity(), 256 * 1024);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn builder(name: &str) -> PipeBuilder<PipeWriter> {
        PipeBuilder::new(name)
    }

    pub(super) fn join(builder: &PipeBuilder<PipeWriter>) -> crate::Result<PipeWriter> {
        let side = Side::join(&builder.name, &builder.options, WRITER, builder.spin, |c| {
            &c.control().space_word.0
        })?;
        let control = side.channel.control();
        let pos = control.write_pos.0.load(Ordering::Acquire);
        let read = control.read_pos.0.load(Ordering::Acquire);
        let capacity = side.channel.capacity() as u64;
        let mirrored = side.channel.ring().is_mirrored();
        let mut writer =
            PipeWriter { side, pos, read_cache: read, capacity, mirrored, broken: false };
        if let Err(bad) = ring::writable(pos, read, capacity) {
            let err = crate::Error::Corrupted {
                what: format!("pipe `{}`: {bad}", writer.channel().name()),
            };
            writer.broken = true;
            return Err(err);
        }
        Ok(writer)
    }

    fn channel(&self) -> &Channel {
        &self.side.channel
    }

    #[cfg(test)]
    pub(super) fn side_channel(&self) -> &Channel {
        self.channel()
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Whether the ring is mapped twice back to back here (so writes are never split at the
    /// wrap), or written in two parts where the platform cannot (see the module docs).
    pub fn is_mirrored(&self) -> bool {
        self.mirrored
    }

    fn broken_pipe(&mut self) -> io::Error {
        self.broken = true;
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("pipe `{}`: its reader is gone", self.channel().name()),
        )
    }

    /// Re-reads the reader's position; returns the free space.
    fn refresh(&mut self) -> io::Result<u64> {
        let read = self.channel().control().read_pos.0.load(Ordering::Acquire);
        match ring::writable(self.pos, read, self.capacity) {
            Ok(free) => {
                self.read_cache = read;
                Ok(free)
            }
            Err(bad) => {
                self.broken = true;
                Err(self.channel().corrupt(bad))
            }
        }
    }

    /// Blocks until there is free space; returns it.
    #[cold]
    fn wait_for_space(&mut self) -> io::Result<u64> {
        loop {
            let control = self.channel().control();
            let seen = self.read_cache;
            let ready = self.side.wait(&control.space_word.0, || {
                control.read_pos.0.load(Ordering::Acquire) != seen
                    || control.status.0.reader_closed.load(Ordering::Relaxed) != 0
            })?;
            if control.status.0.reader_closed.load(Ordering::Acquire) != 0 {
                return Err(self.broken_pipe());
            }
            let free = self.refresh()?;
            if free > 0 {
                return Ok(free);
            }
            if self.channel().truncated() {
                self.broken = true;
                return Err(self.channel().corrupt("a peer truncated its shared memory"));
            }
            if !ready && self.side.peer_gone() {
                return Err(self.broken_pipe());
            }
        }
    }

    /// Copies `bytes` into the ring at our position (the space is free).
    fn copy_in(&mut self, bytes: &[u8]) {
        let base = self.channel().ring().ptr().as_ptr();
        let at = ring::offset(self.pos, self.capacity);
        if self.mirrored {
            // SAFETY: the ring is mapped twice back to back, so `at + len <= 2 * capacity`
            // bytes are mapped (at < capacity, len <= free <= capacity); the bytes are free
            // ring space, which the reader does not read until we publish the position.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(at), bytes.len()) };
        } else {
            let (first, second) = ring::split(self.pos, bytes.len(), self.capacity);
            // SAFETY: `at + first <= capacity` and `second <= at` (split), both inside the
            // single view; free space as above.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(at), first);
                std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), base, second);
            }
        }
    }
}

impl Write for PipeWriter {
    /// Writes as much of `buf` as fits, blocking while the ring is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.broken
            || self.channel().control().status.0.reader_closed.load(Ordering::Relaxed) != 0
        {
            return Err(self.broken_pipe());
        }
        let mut free = self.capacity - (self.pos - self.read_cache);
        if free < buf.len() as u64 {
            free = self.refresh()?;
            if free == 0 {
                free = self.wait_for_space()?;
            }
        }
        let n = free.min(buf.len() as u64) as usize;
        self.copy_in(&buf[..n]);
        self.pos += n as u64;
        let control = self.channel().control();
        control.write_pos.0.store(self.pos, Ordering::Release);
        self.side.wake_peer(&control.data_word.0)?;
        Ok(n)
    }

    /// Nothing to do: written bytes are in the reader's reach at once.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let control = self.channel().control();
        // After the last position store: a reader that sees the flag sees every byte.
        control.status.0.writer_closed.store(1, Ordering::Release);
        if let Err(err) = self.side.wake_peer(&control.data_word.0) {
            tracing::warn!("pipe `{}`: waking the reader: {err}", self.channel().name());
        }
        self.side.leave();
    }
}
