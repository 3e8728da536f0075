//! Named shared-memory segments: create, open (validated), unlink.
//!
//! A segment is a named OS shared-memory object that starts with a [`SegmentHeader`]: magic
//! bytes, format version, kind, total size, a random 64-bit id and the creator's pid. Opening a
//! segment validates all of it and returns a specific [`Error`] for each problem (not found, too
//! small, wrong magic, wrong version, wrong kind, truncated, not initialised) — never undefined
//! behaviour and never a panic.
//!
//! The operating system part sits behind [`SharedMemoryOs`]: POSIX `shm_open` on Unix, named
//! file mappings on Windows (`segment::windows`, which keeps a registry of names in the lock
//! directory so that `unlink` behaves as on POSIX), and an in-process [`memory`] backend used
//! under Miri. Heaps create their segment *sparse* ([`SharedMemoryOs::create_reserved`]): on
//! Windows its pages must be [committed](Segment::commit) before they are touched.
//!
//! # Truncation
//!
//! On Linux, any process of the same user can `ftruncate` a POSIX shared-memory object while
//! others have it mapped; touching the lost part would raise `SIGBUS` and kill them. A
//! process-wide `SIGBUS` handler (installed with the first mapping) turns
//! such a fault in a segment's mapping into zeros: the lost part of the mapping becomes
//! private, zero-filled memory, the process carries on, and [`Segment::was_truncated`] tells
//! the segment's owner, which reports it. Zeros are validated like anything else a peer could
//! have written. Every other `SIGBUS` kills as before. A segment already shorter than its
//! header says when it is opened is refused ([`Error::Truncated`]). Sealing (Linux memfds with
//! `F_SEAL_SHRINK`) would forbid the truncation itself, but only works for unnamed memfds passed
//! over sockets, while segments are named objects opened by whoever comes later. Residual
//! risks: writes into the lost part are lost to every peer; a peer that truncates an object
//! and removes or replaces its name before this process touches the lost part still kills it
//! (the handler confirms a truncation through the name). Windows sections cannot be shrunk
//! while they exist; elsewhere (macOS, BSD) the guard is not installed.

use std::fmt;
use std::io;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::domain;
use crate::error::{Error, Result};

#[cfg(all(target_os = "linux", not(miri)))]
mod guard;
pub mod memory;
pub(crate) mod mirror;
mod os;
#[cfg(unix)]
pub mod posix;
#[cfg(windows)]
pub mod windows;

pub use os::{Access, RawMapping, SharedMemoryOs, platform};

/// Whether any segment mapped by this process was [truncated](Segment::was_truncated) so far:
/// one relaxed load, for hot paths to decide whether to look closer.
pub(crate) fn any_truncated() -> bool {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        guard::any_truncated()
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    {
        false
    }
}

/// Magic bytes at offset 0 of every segment.
pub const MAGIC: [u8; 8] = *b"IPCRSEG\x01";

/// Format version of the segment header and of everything this build lays out in segments.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the header; the payload starts at this offset (a multiple of 64).
pub const HEADER_SIZE: usize = size_of::<SegmentHeader>();

const STATE_INITIALIZING: u32 = 0;
const STATE_READY: u32 = 1;

/// What a segment holds. Opening a segment as the wrong kind is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum SegmentKind {
    /// A shared heap ([`crate::heap`]).
    Heap = 1,
    /// A publish/subscribe topic.
    Topic = 2,
    /// An event channel.
    Event = 3,
    /// Anything else (tests, user data).
    Raw = 4,
    /// A process's doorbell: how other processes wake its service thread (`pubsub`).
    Bell = 5,
    /// A byte pipe's control block ([`crate::pipe`]).
    Pipe = 8,
}

impl SegmentKind {
    fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => SegmentKind::Heap,
            2 => SegmentKind::Topic,
            3 => SegmentKind::Event,
            4 => SegmentKind::Raw,
            5 => SegmentKind::Bell,
            8 => SegmentKind::Pipe,
            _ => return None,
        })
    }

    /// The kind's name as used in OS object names (`<domain>.<kind>.<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Heap => "heap",
            SegmentKind::Topic => "topic",
            SegmentKind::Event => "event",
            SegmentKind::Raw => "raw",
            SegmentKind::Bell => "bell",
            SegmentKind::Pipe => "pipe",
        }
    }
}

impl fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn kind_name(value: u32) -> String {
    SegmentKind::from_u32(value).map_or_else(|| format!("unknown ({value})"), |k| k.to_string())
}

/// The first 64 bytes of every segment.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct SegmentHeader {
    magic: [u8; 8],
    version: u32,
    kind: u32,
    size: u64,
    id: u64,
    creator_pid: u32,
    state: AtomicU32,
}

const _: () = assert!(HEADER_SIZE == 64);

impl SegmentHeader {
    /// Total size of the segment in bytes, header included.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The segment's random 64-bit id (never 0), used by relocatable pointers.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Pid of the process that created the segment.
    pub fn creator_pid(&self) -> u32 {
        self.creator_pid
    }
}

/// The full OS name of a segment: `<domain>.<kind>.<encoded name>`, validated (see
/// [`crate::domain`] for the encoding, which keeps names of different domains and topics apart).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentName(String);

impl SegmentName {
    /// Builds and validates the name of segment `name` of `kind` in `domain`.
    ///
    /// ```
    /// use ipc_runtime::segment::{SegmentKind, SegmentName};
    ///
    /// let name = SegmentName::new("robot", SegmentKind::Topic, "imu").unwrap();
    /// assert_eq!(name.as_str(), "robot.topic.imu");
    /// let name = SegmentName::new("robot", SegmentKind::Topic, "arm/joints.v2").unwrap();
    /// assert_eq!(name.as_str(), "robot.topic.arm+joints,v2");
    /// assert!(SegmentName::new("robot", SegmentKind::Topic, "a b").is_err());
    /// assert!(SegmentName::new("robot.topic.x", SegmentKind::Topic, "imu").is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an invalid domain ([`domain::validate_domain`]) or name
    /// ([`domain::validate`]).
    pub fn new(domain: &str, kind: SegmentKind, name: &str) -> Result<Self> {
        domain::validate_domain(domain)?;
        domain::validate(name, "segment")?;
        Ok(SegmentName(domain::object_name(domain, kind.as_str(), name)))
    }

    /// The full name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mapped, validated shared-memory segment.
///
/// Dropping a `Segment` unmaps it; the name stays until [`Segment::unlink`] removes it.
///
/// ```
/// use ipc_runtime::segment::{Access, Segment, SegmentKind, SegmentName};
///
/// let domain = format!("doc-seg-{}", std::process::id());
/// let name = SegmentName::new(&domain, SegmentKind::Raw, "example").unwrap();
/// let created = Segment::create(&name, SegmentKind::Raw, 4096).unwrap();
/// let opened = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly).unwrap();
/// assert_eq!(opened.id(), created.id());
/// assert_eq!(opened.payload_len(), 4096 - 64);
/// Segment::unlink(&name).unwrap();
/// ```
#[derive(Debug)]
pub struct Segment {
    name: SegmentName,
    map: RawMapping,
    os: &'static dyn SharedMemoryOs,
}

impl Segment {
    /// Creates segment `name` of `size` bytes (header included) with the platform mechanism.
    ///
    /// # Errors
    /// As [`create_with`](Segment::create_with).
    pub fn create(name: &SegmentName, kind: SegmentKind, size: usize) -> Result<Segment> {
        Self::create_with(platform(), name, kind, size, |_| {})
    }

    /// Creates a segment with an explicit mechanism, running `init` on the zeroed payload before
    /// the segment is marked ready (openers see `NotReady` until then).
    ///
    /// # Errors
    /// [`Error::TooSmall`] if `size` cannot hold the [`HEADER_SIZE`]-byte header;
    /// [`Error::SegmentExists`] if an object of that name exists; [`Error::Io`] if the OS
    /// cannot create, size or map it (nothing is left under the name then).
    pub fn create_with(
        os: &'static dyn SharedMemoryOs,
        name: &SegmentName,
        kind: SegmentKind,
        size: usize,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment> {
        Self::create_with_id(os, name, kind, size, fresh_id(), init)
    }

    /// Creates a segment whose id is chosen by the caller (heaps name their segment after it).
    pub(crate) fn create_with_id(
        os: &'static dyn SharedMemoryOs,
        name: &SegmentName,
        kind: SegmentKind,
        size: usize,
        id: u64,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment> {
        Self::create_inner(os, name, kind, size, id, false, init)
    }

    /// Creates a *sparse* segment: only the header is usable at first, and every other page
    /// must be [committed](Segment::commit) before it is touched (on Windows; elsewhere pages
    /// cost nothing until touched and committing does nothing). `init` runs on the segment with
    /// only the header committed.
    pub(crate) fn create_sparse_with_id(
        os: &'static dyn SharedMemoryOs,
        name: &SegmentName,
        kind: SegmentKind,
        size: usize,
        id: u64,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment> {
        Self::create_inner(os, name, kind, size, id, true, init)
    }

    fn create_inner(
        os: &'static dyn SharedMemoryOs,
        name: &SegmentName,
        kind: SegmentKind,
        size: usize,
        id: u64,
        sparse: bool,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment> {
        if size < HEADER_SIZE {
            return Err(Error::TooSmall {
                segment: name.to_string(),
                size: size as u64,
                min: HEADER_SIZE as u64,
            });
        }
        let created = if sparse {
            os.create_reserved(name.as_str(), size)
        } else {
            os.create(name.as_str(), size)
        };
        let map = created.map_err(|err| match err.kind() {
            io::ErrorKind::AlreadyExists => Error::SegmentExists { segment: name.to_string() },
            _ => Error::io(format!("creating shared-memory segment `{name}` ({size} bytes)"), err),
        })?;
        let segment = Segment { name: name.clone(), map, os };
        if sparse && let Err(err) = segment.commit(0, HEADER_SIZE) {
            drop(segment);
            let _ = os.unlink(name.as_str());
            return Err(err);
        }
        let header = SegmentHeader {
            magic: MAGIC,
            version: FORMAT_VERSION,
            kind: kind as u32,
            size: size as u64,
            id,
            creator_pid: std::process::id(),
            state: AtomicU32::new(STATE_INITIALIZING),
        };
        // SAFETY: the mapping is writable, page-aligned and at least HEADER_SIZE bytes long, and
        // nobody else writes the header of a segment we just created exclusively.
        unsafe { segment.map.ptr().cast::<SegmentHeader>().as_ptr().write(header) };
        init(&segment);
        segment.header().state.store(STATE_READY, Ordering::Release);
        Ok(segment)
    }

    /// Opens and validates an existing segment with the platform mechanism.
    ///
    /// # Errors
    /// As [`open_with`](Segment::open_with).
    pub fn open(name: &SegmentName, kind: SegmentKind, access: Access) -> Result<Segment> {
        Self::open_with(platform(), name, kind, access)
    }

    /// Opens and validates an existing segment with an explicit mechanism.
    ///
    /// # Errors
    /// [`Error::SegmentNotFound`] if there is no such object; [`Error::UntrustedObject`] if the
    /// object is not ours (another user's, writable by others, a symbolic link);
    /// [`Error::Io`] if it cannot be opened or mapped. Then, validating the header:
    /// [`Error::TooSmall`] for an object shorter than the header, [`Error::WrongMagic`] for
    /// other magic bytes (or a zero id), [`Error::WrongVersion`], [`Error::WrongKind`] for a
    /// segment of another kind than `kind`, [`Error::Truncated`] when the object's size is not
    /// the one its header records, and [`Error::NotReady`] while its creator has not finished
    /// initialising it (or died doing so).
    pub fn open_with(
        os: &'static dyn SharedMemoryOs,
        name: &SegmentName,
        kind: SegmentKind,
        access: Access,
    ) -> Result<Segment> {
        let map = os.open(name.as_str(), access).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => Error::SegmentNotFound { segment: name.to_string() },
            _ => Error::io(format!("opening shared-memory segment `{name}`"), err),
        })?;
        let segment = Segment { name: name.clone(), map, os };
        segment.validate(kind)?;
        Ok(segment)
    }

    fn validate(&self, kind: SegmentKind) -> Result<()> {
        let segment = || self.name.to_string();
        let actual = self.map.len() as u64;
        if self.map.len() < HEADER_SIZE {
            return Err(Error::TooSmall {
                segment: segment(),
                size: actual,
                min: HEADER_SIZE as u64,
            });
        }
        // Read the fields through volatile copies: another process may be writing garbage into
        // the header right now, and nothing below may assume the values are stable.
        let base = self.map.ptr().as_ptr();
        // SAFETY: the mapping is at least HEADER_SIZE bytes, page-aligned, and readable; the
        // header is plain old data, so any bit pattern is a valid value.
        let header: SegmentHeader =
            unsafe { std::ptr::read_volatile(base.cast::<SegmentHeader>()) };
        if header.magic != MAGIC {
            return Err(Error::WrongMagic { segment: segment(), found: header.magic });
        }
        if header.version != FORMAT_VERSION {
            return Err(Error::WrongVersion {
                segment: segment(),
                found: header.version,
                expected: FORMAT_VERSION,
            });
        }
        if header.kind != kind as u32 {
            return Err(Error::WrongKind {
                segment: segment(),
                found: kind_name(header.kind),
                expected: kind.to_string(),
            });
        }
        if header.size != actual || header.size < HEADER_SIZE as u64 {
            return Err(Error::Truncated { segment: segment(), expected: header.size, actual });
        }
        if self.header().state.load(Ordering::Acquire) != STATE_READY {
            return Err(Error::NotReady { segment: segment(), creator_pid: header.creator_pid });
        }
        if header.id == 0 {
            return Err(Error::WrongMagic { segment: segment(), found: header.magic });
        }
        Ok(())
    }

    /// Removes segment `name` with the platform mechanism. Mappings stay valid until dropped.
    ///
    /// # Errors
    /// As [`unlink_with`](Segment::unlink_with).
    pub fn unlink(name: &SegmentName) -> Result<()> {
        Self::unlink_with(platform(), name)
    }

    /// Removes segment `name` with an explicit mechanism.
    ///
    /// # Errors
    /// [`Error::SegmentNotFound`] if there is no such segment; [`Error::Io`] if the OS refuses
    /// to remove the name.
    pub fn unlink_with(os: &'static dyn SharedMemoryOs, name: &SegmentName) -> Result<()> {
        os.unlink(name.as_str()).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => Error::SegmentNotFound { segment: name.to_string() },
            _ => Error::io(format!("removing shared-memory segment `{name}`"), err),
        })
    }

    /// Makes `[offset, offset + len)` of a segment created sparse usable before it is first
    /// touched (see [`SharedMemoryOs::commit`]). Does nothing for segments whose pages are all
    /// usable.
    ///
    /// # Errors
    /// [`Error::Io`] (kind `InvalidInput`) if the range is not inside the segment or the
    /// mapping is read-only; [`Error::Io`] with the OS error if the system cannot commit more
    /// memory.
    pub fn commit(&self, offset: usize, len: usize) -> Result<()> {
        let in_bounds = offset.checked_add(len).is_some_and(|end| end <= self.len());
        if !in_bounds || self.access() != Access::ReadWrite {
            return Err(Error::io(
                format!("committing bytes {offset}..+{len} of segment `{}`", self.name),
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "out of bounds of the segment, or the segment is mapped read-only",
                ),
            ));
        }
        self.os.commit(&self.map, offset, len).map_err(|err| {
            Error::io(format!("committing bytes {offset}..+{len} of segment `{}`", self.name), err)
        })
    }

    /// Keeps the segment in existence for as long as process `pid` lives (see
    /// [`SharedMemoryOs::keep_alive_for`]).
    ///
    /// # Errors
    /// [`Error::Io`] where the mechanism has to act (Windows) and cannot: the segment's name
    /// is gone, process `pid` cannot be opened (it exited), or the handle cannot be handed to
    /// it. Never fails with the other mechanisms (POSIX shared memory, the in-memory one).
    pub fn keep_alive_for(&self, pid: u32) -> Result<()> {
        self.os.keep_alive_for(self.name.as_str(), pid).map_err(|err| {
            Error::io(format!("keeping segment `{}` alive for process {pid}", self.name), err)
        })
    }

    /// The segment's full name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// The mechanism that made the mapping.
    pub fn os(&self) -> &'static dyn SharedMemoryOs {
        self.os
    }

    /// The validated header.
    pub fn header(&self) -> &SegmentHeader {
        // SAFETY: creation wrote and opening validated a header at offset 0 of a mapping that is
        // at least HEADER_SIZE bytes; it lives as long as `self.map`.
        unsafe { self.map.ptr().cast::<SegmentHeader>().as_ref() }
    }

    /// The segment's random id.
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// Total size in bytes, header included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false: a valid segment holds at least its header.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How this process mapped the segment.
    pub fn access(&self) -> Access {
        self.map.access()
    }

    /// Start of the mapping (the header).
    pub fn base(&self) -> NonNull<u8> {
        self.map.ptr()
    }

    /// Start of the payload, right after the header.
    pub fn payload(&self) -> NonNull<u8> {
        // SAFETY: the mapping is at least HEADER_SIZE bytes long.
        unsafe { self.map.ptr().add(HEADER_SIZE) }
    }

    /// Whether another process truncated this segment while it was mapped here: the part past
    /// its new end now reads zeros in this process and is no longer shared (writes there are
    /// lost to every peer). Instead of dying of `SIGBUS`, this process carries on and whoever
    /// owns the segment reports the truncation; see [Truncation](self#truncation).
    /// Always false where segments cannot be truncated or truncation cannot be detected.
    pub fn was_truncated(&self) -> bool {
        self.map.was_truncated()
    }

    /// Payload size: total size minus the header.
    pub fn payload_len(&self) -> usize {
        self.map.len() - HEADER_SIZE
    }
}

#[cfg(test)]
mod tests;

/// A fresh random id (never 0): for segments, and anything else that must not repeat across
/// processes and runs (port keys, names set aside).
pub(crate) fn fresh_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        // RandomState is seeded from the OS's randomness once per process.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        #[cfg(not(miri))] // Miri's isolation forbids reading the clock
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let id = hasher.finish();
        if id != 0 {
            return id;
        }
    }
}
