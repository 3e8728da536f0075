//! Relocatable pointers and the process-local segment table.
//!
//! Every process maps a segment at a different address, so nothing in shared memory may hold a
//! raw address. A [`RelPtr`] names *which segment* (its random 64-bit id) and *which offset*; the
//! process-local [`SegmentTable`] turns that into an address.
//!
//! * **O(1) on the hot path.** The table has a fixed array of 64 lock-free slots indexed by the
//!   low bits of the (random) id; a hit costs three relaxed loads and a compare. Ids that collide
//!   in the array fall back to a hash map behind a read lock.
//! * **Lazy mapping.** A segment this process has not mapped yet is mapped on first use, by name,
//!   read-only (the process does not own it). The name comes from a hint registered by whoever
//!   learned the id (a topic registers its publishers' heaps) or, failing that, from the id itself
//!   (heap segments are named `<domain>.heap.<id as 16 hex digits>`).
//! * **Bounds-checked.** Every resolution checks `offset + len` against the segment's size and
//!   the offset's alignment; a bad pointer is an [`Error::OutOfBounds`], never a wild read.
//! * **Move-safe.** A `RelPtr` holds no address, so bitwise moves (all Rust moves) keep it valid.
//!   That is why containers use it instead of self-relative offsets.
//! * Mappings entered into the table stay mapped until the process exits, so an address handed
//!   out once stays valid; this is what makes the lock-free slots sound.

use std::hash::{BuildHasher, Hasher};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use crate::domain;
use crate::error::{Error, Result};
use crate::segment::{Access, HEADER_SIZE, Segment, SegmentKind, SegmentName};

/// A pointer into shared memory that means the same thing in every process.
///
/// `RelPtr` is plain data (`#[repr(C)]`, 16 bytes): the id of the segment and the byte offset
/// from the segment's start. The null pointer has segment id 0.
///
/// ```
/// use ipc_runtime::ptr::RelPtr;
///
/// let p = RelPtr::NULL;
/// assert!(p.is_null());
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RelPtr {
    segment: u64,
    offset: u64,
}

impl RelPtr {
    /// The null pointer.
    pub const NULL: RelPtr = RelPtr { segment: 0, offset: 0 };

    /// A pointer to `offset` bytes into the segment with id `segment`.
    pub const fn new(segment: u64, offset: u64) -> Self {
        RelPtr { segment, offset }
    }

    /// Whether this is the null pointer.
    pub const fn is_null(self) -> bool {
        self.segment == 0
    }

    /// Id of the segment pointed into.
    pub const fn segment(self) -> u64 {
        self.segment
    }

    /// Offset from the segment's start.
    pub const fn offset(self) -> u64 {
        self.offset
    }

    /// Resolves the pointer to an address in this process, checking that `len` bytes starting
    /// there lie inside the segment's payload and that the address is aligned to `align`.
    /// Maps the segment read-only if this process has not mapped it yet.
    #[inline]
    pub fn resolve(self, len: usize, align: usize) -> Result<NonNull<u8>> {
        table().resolve(self, len, align, false)
    }

    /// Like [`resolve`](Self::resolve), but also requires the segment to be mapped writable
    /// (that is, owned by this process).
    #[inline]
    pub fn resolve_mut(self, len: usize, align: usize) -> Result<NonNull<u8>> {
        table().resolve(self, len, align, true)
    }
}

/// One lock-free slot of the table's fast array. Written once (base, then size and the
/// writable bit, then id with Release) and never changed afterwards.
struct Slot {
    id: AtomicU64,
    base: AtomicPtr<u8>,
    /// Segment size (a multiple of the page size) with bit 0 set when mapped writable.
    size_writable: AtomicUsize,
}

#[derive(Clone, Copy)]
struct Entry {
    base: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: an entry describes a mapping that lives until process exit and is shared memory anyway.
unsafe impl Send for Entry {}
// SAFETY: as above.
unsafe impl Sync for Entry {}

const FAST_SLOTS: usize = 64;

#[allow(clippy::declare_interior_mutable_const)] // used only as an array initialiser
const EMPTY_SLOT: Slot = Slot {
    id: AtomicU64::new(0),
    base: AtomicPtr::new(ptr::null_mut()),
    size_writable: AtomicUsize::new(0),
};

/// The fast array lives in a plain static, so the hot path has no initialisation check.
static FAST: [Slot; FAST_SLOTS] = [EMPTY_SLOT; FAST_SLOTS];

static TABLE: SegmentTable = SegmentTable {
    slow: RwLock::new(Vec::new()),
    segments: Mutex::new(Vec::new()),
    hints: Mutex::new(Vec::new()),
};

/// The process-local table from segment ids to mappings. See the module docs.
pub struct SegmentTable {
    /// Entries whose fast slot was taken by another id.
    slow: RwLock<Vec<(u64, Entry)>>,
    /// Segments kept mapped for the life of the process; also serialises mapping.
    segments: Mutex<Vec<Segment>>,
    hints: Mutex<Vec<(u64, SegmentName)>>,
}

impl std::fmt::Debug for SegmentTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.segments.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("SegmentTable").field("mapped", &count).finish()
    }
}

/// The process's segment table.
#[inline]
pub fn table() -> &'static SegmentTable {
    &TABLE
}

#[inline(always)]
fn in_bounds(p: RelPtr, len: usize, align: usize, size: usize) -> bool {
    let end = p.offset.checked_add(len as u64);
    p.offset >= HEADER_SIZE as u64
        && end.is_some_and(|e| e <= size as u64)
        && (p.offset as usize).is_multiple_of(align)
}

impl SegmentTable {
    fn lookup(&self, id: u64) -> Option<Entry> {
        let slot = &FAST[(id as usize) % FAST_SLOTS];
        if slot.id.load(Ordering::Acquire) == id {
            let size_writable = slot.size_writable.load(Ordering::Relaxed);
            return Some(Entry {
                // SAFETY: a slot's id is published (Release) only after a non-null base.
                base: unsafe { NonNull::new_unchecked(slot.base.load(Ordering::Relaxed)) },
                len: size_writable & !1,
                writable: size_writable & 1 != 0,
            });
        }
        let slow = self.slow.read().unwrap_or_else(PoisonError::into_inner);
        slow.iter().find(|(slow_id, _)| *slow_id == id).map(|(_, entry)| *entry)
    }

    /// The hot path: one slot, three loads, the bounds check. Everything else is out of line.
    #[inline(always)]
    fn resolve(&self, p: RelPtr, len: usize, align: usize, write: bool) -> Result<NonNull<u8>> {
        let slot = &FAST[(p.segment as usize) % FAST_SLOTS];
        if slot.id.load(Ordering::Acquire) == p.segment {
            let size_writable = slot.size_writable.load(Ordering::Relaxed);
            if in_bounds(p, len, align, size_writable & !1) && (!write || size_writable & 1 != 0) {
                let base = slot.base.load(Ordering::Relaxed);
                // SAFETY: offset + len <= size, so the result stays inside the mapping, which
                // lives until the process exits; a published slot has a non-null base.
                return Ok(unsafe { NonNull::new_unchecked(base.add(p.offset as usize)) });
            }
        }
        self.resolve_slow(p, len, align, write)
    }

    #[cold]
    #[inline(never)]
    fn resolve_slow(
        &self,
        p: RelPtr,
        len: usize,
        align: usize,
        write: bool,
    ) -> Result<NonNull<u8>> {
        let entry = match self.lookup(p.segment) {
            Some(entry) => entry,
            None => self.map_lazily(p.segment)?,
        };
        if !in_bounds(p, len, align, entry.len) {
            return Err(self.out_of_bounds(p, len, entry.len));
        }
        if write && !entry.writable {
            return Err(Error::io(
                format!("writing through segment {}", self.describe(p.segment)),
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the segment is mapped read-only: it belongs to another process",
                ),
            ));
        }
        // SAFETY: offset + len <= entry.len, so the result stays inside the mapping.
        Ok(unsafe { entry.base.add(p.offset as usize) })
    }

    #[cold]
    fn out_of_bounds(&self, p: RelPtr, len: usize, segment_size: usize) -> Error {
        Error::OutOfBounds {
            segment: self.describe(p.segment),
            offset: p.offset,
            len: len as u64,
            segment_size: segment_size as u64,
        }
    }

    /// The segment's name if known, else its id in hex.
    pub fn describe(&self, id: u64) -> String {
        let segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        segments
            .iter()
            .find(|s| s.id() == id)
            .map_or_else(|| format!("{id:016x}"), |s| s.name().to_string())
    }

    /// The name of segment `id` if another process [truncated](Segment::was_truncated) it
    /// under this process's mapping; `None` if it was not (or is not mapped here). One relaxed
    /// load unless some segment of this process was ever truncated.
    pub(crate) fn truncated(&self, id: u64) -> Option<SegmentName> {
        if !crate::segment::any_truncated() {
            return None;
        }
        let segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        segments.iter().find(|s| s.id() == id && s.was_truncated()).map(|s| s.name().clone())
    }

    /// Records that segment `id` is called `name`, so that lazy mapping finds it.
    pub fn register_name(&self, id: u64, name: SegmentName) {
        let mut hints = self.hints.lock().unwrap_or_else(PoisonError::into_inner);
        hints.retain(|(known, _)| *known != id);
        hints.push((id, name));
    }

    /// Enters a segment this process created (or opened) into the table, keeping it mapped for
    /// the life of the process. Returns the segment's id.
    pub fn insert(&self, segment: Segment) -> u64 {
        let mut segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        let id = segment.id();
        if self.lookup(id).is_none() {
            self.publish_entry(id, &segment);
            segments.push(segment);
        }
        id
    }

    /// Commits `[offset, offset + len)` of segment `id`, one this process entered (see
    /// [`Segment::commit`]); for heaps created sparse.
    pub(crate) fn commit(&self, id: u64, offset: usize, len: usize) -> Result<()> {
        let segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        match segments.iter().find(|s| s.id() == id) {
            Some(segment) => segment.commit(offset, len),
            None => Err(Error::SegmentNotFound { segment: format!("{id:016x}") }),
        }
    }

    /// Keeps segment `id` (one this process entered) in existence for as long as process `pid`
    /// lives (see [`Segment::keep_alive_for`]).
    pub(crate) fn keep_alive_for(&self, id: u64, pid: u32) -> Result<()> {
        let segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        match segments.iter().find(|s| s.id() == id) {
            Some(segment) => segment.keep_alive_for(pid),
            None => Err(Error::SegmentNotFound { segment: format!("{id:016x}") }),
        }
    }

    /// Maps segment `id` (read-only) and enters it into the table.
    ///
    /// This is what a subscriber calls when it learns of a publisher's heap, so that later reads
    /// never depend on the name still existing.
    pub fn map(&self, id: u64) -> Result<()> {
        self.map_lazily(id).map(drop)
    }

    #[cold]
    fn map_lazily(&self, id: u64) -> Result<Entry> {
        if id == 0 {
            return Err(Error::OutOfBounds {
                segment: "null".into(),
                offset: 0,
                len: 0,
                segment_size: 0,
            });
        }
        let mut segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = self.lookup(id) {
            return Ok(entry);
        }
        let hints = self.hints.lock().unwrap_or_else(PoisonError::into_inner);
        let name = hints.iter().find(|(known, _)| *known == id).map(|(_, name)| name.clone());
        drop(hints);
        let name = match name {
            Some(name) => name,
            None => heap_segment_name(domain::current(), id)?,
        };
        let segment = Segment::open(&name, SegmentKind::Heap, Access::ReadOnly)?;
        if segment.id() != id {
            return Err(Error::SegmentMismatch {
                segment: name.to_string(),
                expected: id,
                found: segment.id(),
            });
        }
        let entry = self.publish_entry(id, &segment);
        segments.push(segment);
        Ok(entry)
    }

    /// Makes `segment` findable under `id`. Caller holds the `segments` lock.
    fn publish_entry(&self, id: u64, segment: &Segment) -> Entry {
        let entry = Entry {
            base: segment.base(),
            // Bit 0 of the size carries the writable flag in the fast slots; a (never seen in
            // practice) odd-sized segment loses its last byte to it.
            len: segment.len() & !1,
            writable: segment.access() == Access::ReadWrite,
        };
        let slot = &FAST[(id as usize) % FAST_SLOTS];
        if slot.id.load(Ordering::Relaxed) == 0 {
            slot.base.store(entry.base.as_ptr(), Ordering::Relaxed);
            slot.size_writable.store(entry.len | usize::from(entry.writable), Ordering::Relaxed);
            slot.id.store(id, Ordering::Release);
        } else {
            self.slow.write().unwrap_or_else(PoisonError::into_inner).push((id, entry));
        }
        entry
    }
}

/// The name of the heap segment with id `id` in `domain`.
pub(crate) fn heap_segment_name(domain: &str, id: u64) -> Result<SegmentName> {
    SegmentName::new(domain, SegmentKind::Heap, &format!("{id:016x}"))
}

/// A fresh random segment id (never 0).
pub(crate) fn fresh_segment_id() -> u64 {
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
