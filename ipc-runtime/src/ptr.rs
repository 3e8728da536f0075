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
//! * **Trust follows the holder.** A pointer read from another process's memory (a segment
//!   mapped read-only) may only point into that same segment ([`RelPtr::resolve_held`], which
//!   the containers' read paths use): a peer cannot make us read our own heap, or a third
//!   party's, as if it were its data.
//! * **Lifetime of mappings.** Mappings entered into the table stay mapped until the process
//!   exits, so an address handed out stays valid — except for a read-only segment explicitly
//!   [retired](SegmentTable::retire) (its owner died and nothing refers to it any more: the
//!   caller's contract). Retiring clears the fast slot's id before anything else, and a slot's
//!   id is unique (ids are random and a retired id never comes back), so readers validate a slot
//!   by reading its id before and after its base and size: a stale slot is never used. A
//!   retired id never resolves again, even if its name still exists.

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
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
    ///
    /// This trusts the pointer's origin: a pointer read from another process's memory goes
    /// through [`resolve_held`](Self::resolve_held) instead.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] for a range outside the segment or a misaligned address, and the
    /// errors of mapping the segment ([`Error::SegmentNotFound`] and the like).
    #[inline]
    pub fn resolve(self, len: usize, align: usize) -> Result<NonNull<u8>> {
        table().resolve(self, None, len, align, false)
    }

    /// Like [`resolve`](Self::resolve), for a pointer stored at address `holder`, applying the
    /// trust rule: a pointer stored in memory this process maps read-only (another process's
    /// segment) may only point into *that same* segment. A peer's message and everything it
    /// points to live in the peer's heap, so this refuses nothing honest, and a peer cannot
    /// make us read our own (or a third party's) memory as if it came from it. A pointer stored
    /// anywhere else (our heap, our stack, our own allocations) resolves as with `resolve`.
    ///
    /// ```
    /// use ipc_runtime::ptr::RelPtr;
    ///
    /// let v = ipc_runtime::ShmVec::from_slice(&[1u8, 2, 3]);
    /// let local_holder = &v as *const _ as *const u8; // our own memory: no restriction
    /// assert!(v.rel_ptr().resolve_held(local_holder, 3, 1).is_ok());
    /// ```
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), and [`Error::Corrupted`] when the rule is broken.
    #[inline]
    pub fn resolve_held(self, holder: *const u8, len: usize, align: usize) -> Result<NonNull<u8>> {
        table().resolve(self, Some(holder as usize), len, align, false)
    }

    /// Like [`resolve`](Self::resolve), but also requires the segment to be mapped writable
    /// (that is, owned by this process).
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), and [`Error::Io`] (permission denied) for a segment
    /// mapped read-only.
    #[inline]
    pub fn resolve_mut(self, len: usize, align: usize) -> Result<NonNull<u8>> {
        table().resolve(self, None, len, align, true)
    }
}

/// One lock-free slot of the table's fast array. Published by storing base, then size and the
/// writable bit, then the id (Release); retired by storing id 0 first. Ids are random, unique,
/// and a retired id is never entered again, so the id doubles as the slot's generation: a
/// reader that finds the same id before and after reading base and size read a consistent
/// slot (see [`SegmentTable::resolve`]).
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

// SAFETY: an entry describes a mapping that lives until the process exits or the segment is
// retired (when, by `retire`'s contract, nothing uses it), and is shared memory anyway.
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

/// Address ranges of the segments mapped read-only (other processes' memory), for the trust
/// rule of [`RelPtr::resolve_held`]. Written under the table's `segments` lock, inside a seqlock
/// (`FOREIGN_SEQ` odd while a writer changes them); read lock-free.
struct ForeignRange {
    start: AtomicUsize,
    /// 0 for an unused entry.
    len: AtomicUsize,
}

const FOREIGN_SLOTS: usize = 64;

#[allow(clippy::declare_interior_mutable_const)] // used only as an array initialiser
const EMPTY_RANGE: ForeignRange =
    ForeignRange { start: AtomicUsize::new(0), len: AtomicUsize::new(0) };

static FOREIGN: [ForeignRange; FOREIGN_SLOTS] = [EMPTY_RANGE; FOREIGN_SLOTS];
/// One past the last entry of `FOREIGN` ever used.
static FOREIGN_USED: AtomicUsize = AtomicUsize::new(0);
/// Lowest start and highest end of every read-only segment ever mapped (see [`maybe_foreign`]).
static FOREIGN_LO: AtomicUsize = AtomicUsize::new(usize::MAX);
static FOREIGN_HI: AtomicUsize = AtomicUsize::new(0);
static FOREIGN_SEQ: AtomicU64 = AtomicU64::new(0);
/// Set when more read-only segments are mapped than `FOREIGN` holds; the rest are then found
/// in the table's `segments` list, under its lock.
static FOREIGN_OVERFLOW: AtomicBool = AtomicBool::new(false);

static TABLE: SegmentTable = SegmentTable {
    slow: RwLock::new(Vec::new()),
    segments: Mutex::new(Vec::new()),
    hints: Mutex::new(Vec::new()),
    retired: Mutex::new(Vec::new()),
    holds: Mutex::new(Vec::new()),
};

/// The process-local table from segment ids to mappings. See the module docs.
pub struct SegmentTable {
    /// Entries whose fast slot was taken by another id.
    slow: RwLock<Vec<(u64, Entry)>>,
    /// Segments kept mapped until the process exits or they are retired; also serialises
    /// mapping, retiring and writing `FOREIGN`.
    segments: Mutex<Vec<Segment>>,
    hints: Mutex<Vec<(u64, SegmentName)>>,
    /// Ids of retired segments: they never resolve again.
    retired: Mutex<Vec<u64>>,
    /// Per held segment: its id, how many [`SegmentHold`]s exist, and whether it is to be
    /// retired when the last one goes.
    holds: Mutex<Vec<HoldCount>>,
}

struct HoldCount {
    id: u64,
    count: usize,
    retiring: bool,
}

/// A claim that keeps a segment mapped read-only here from being retired (see
/// [`SegmentTable::retire_when_unheld`]): whoever hands out references into another process's
/// segment holds one for as long as those references live. Dropping the last hold of a segment
/// whose retirement was asked for unmaps it.
#[derive(Debug)]
pub struct SegmentHold {
    id: u64,
}

impl SegmentHold {
    /// The held segment's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for SegmentHold {
    fn drop(&mut self) {
        let table = table();
        let mut holds = table.holds.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(at) = holds.iter().position(|h| h.id == self.id) else { return };
        holds[at].count -= 1;
        if holds[at].count > 0 {
            return;
        }
        let retiring = holds.swap_remove(at).retiring;
        // Retired with the `holds` lock held, so that no `hold` slips in between the count
        // reaching zero and the unmapping (see `hold`).
        let retired = retiring.then(|| {
            // SAFETY: `retire_when_unheld`'s caller promised that every use of the segment is
            // covered by a hold, and this was the last one; a new hold waits for the lock and
            // then finds the id retired.
            unsafe { table.retire(self.id) }
        });
        drop(holds);
        if let Some(Err(err)) = retired {
            tracing::warn!(segment = %table.describe(self.id), %err, "cannot retire a segment");
        }
    }
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
    // `len` and `size` are `usize`, so `u64` holds them on every target; an offset that passes
    // is at most `size` and so fits `usize` too.
    let end = p.offset.checked_add(len as u64);
    p.offset >= HEADER_SIZE as u64
        && end.is_some_and(|e| e <= size as u64)
        && p.offset.is_multiple_of(align as u64)
}

/// Whether `addr` may lie inside a segment this process maps read-only: a cheap, conservative
/// test (the hull of every such segment ever mapped), exact answer from [`in_foreign`].
#[inline(always)]
fn maybe_foreign(addr: usize) -> bool {
    // Both bounds only ever widen, and are widened before a read-only segment is published: a
    // thread holding an address inside one (it resolved the segment's slot, with Acquire) sees
    // bounds that contain it, whatever else it reads.
    addr >= FOREIGN_LO.load(Ordering::Relaxed) && addr < FOREIGN_HI.load(Ordering::Relaxed)
}

/// Whether `addr` lies inside a segment this process maps read-only (another process's memory).
fn in_foreign(addr: usize) -> bool {
    maybe_foreign(addr) && in_foreign_scan(addr)
}

#[inline(never)]
fn in_foreign_scan(addr: usize) -> bool {
    loop {
        let seq = FOREIGN_SEQ.load(Ordering::Acquire);
        let used = FOREIGN_USED.load(Ordering::Relaxed).min(FOREIGN_SLOTS);
        let mut hit = false;
        for range in &FOREIGN[..used] {
            let start = range.start.load(Ordering::Relaxed);
            let len = range.len.load(Ordering::Relaxed);
            hit |= addr.wrapping_sub(start) < len;
        }
        fence(Ordering::Acquire);
        if seq & 1 == 0 && FOREIGN_SEQ.load(Ordering::Relaxed) == seq {
            return hit || (FOREIGN_OVERFLOW.load(Ordering::Relaxed) && in_foreign_slow(addr));
        }
        std::hint::spin_loop();
    }
}

#[cold]
fn in_foreign_slow(addr: usize) -> bool {
    let segments = TABLE.segments.lock().unwrap_or_else(PoisonError::into_inner);
    segments.iter().any(|s| {
        s.access() == Access::ReadOnly && addr.wrapping_sub(s.base().as_ptr() as usize) < s.len()
    })
}

/// Changes `FOREIGN` inside its seqlock. Caller holds the `segments` lock.
fn write_foreign(change: impl FnOnce()) {
    let seq = FOREIGN_SEQ.load(Ordering::Relaxed);
    FOREIGN_SEQ.store(seq.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    change();
    FOREIGN_SEQ.store(seq.wrapping_add(2), Ordering::Release);
}

impl SegmentTable {
    fn lookup(&self, id: u64) -> Option<Entry> {
        let slot = &FAST[(id % FAST_SLOTS as u64) as usize];
        if slot.id.load(Ordering::Acquire) == id {
            let size_writable = slot.size_writable.load(Ordering::Relaxed);
            let base = slot.base.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            // Still the same id: base and size belong to it (see `Slot`).
            if slot.id.load(Ordering::Relaxed) == id
                && let Some(base) = NonNull::new(base)
            {
                return Some(Entry {
                    base,
                    len: size_writable & !1,
                    writable: size_writable & 1 != 0,
                });
            }
        }
        let slow = self.slow.read().unwrap_or_else(PoisonError::into_inner);
        slow.iter().find(|(slow_id, _)| *slow_id == id).map(|(_, entry)| *entry)
    }

    /// The hot path: one slot, four loads, the bounds check, and for a pointer held at
    /// `holder` the trust rule's cheap cases (held inside the target segment, or outside every
    /// read-only mapping's hull). Everything else is out of line.
    #[inline(always)]
    fn resolve(
        &self,
        p: RelPtr,
        holder: Option<usize>,
        len: usize,
        align: usize,
        write: bool,
    ) -> Result<NonNull<u8>> {
        let slot = &FAST[(p.segment % FAST_SLOTS as u64) as usize];
        if slot.id.load(Ordering::Acquire) == p.segment {
            let size_writable = slot.size_writable.load(Ordering::Relaxed);
            let base = slot.base.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let size = size_writable & !1;
            if slot.id.load(Ordering::Relaxed) == p.segment
                && in_bounds(p, len, align, size)
                && (!write || size_writable & 1 != 0)
                && holder.is_none_or(|h| h.wrapping_sub(base as usize) < size || !maybe_foreign(h))
            {
                // SAFETY: offset + len <= size, so the result stays inside the mapping, which
                // stays mapped while anything may use it (module docs); a published slot has a
                // non-null base, and the id read after base and size says they are its own.
                return Ok(unsafe { NonNull::new_unchecked(base.add(p.offset as usize)) });
            }
        }
        self.resolve_slow(p, holder, len, align, write)
    }

    #[cold]
    #[inline(never)]
    fn resolve_slow(
        &self,
        p: RelPtr,
        holder: Option<usize>,
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
        if let Some(h) = holder
            && h.wrapping_sub(entry.base.as_ptr() as usize) >= entry.len
            && in_foreign(h)
        {
            return Err(self.untrusted(p, h));
        }
        // SAFETY: offset + len <= entry.len, so the result stays inside the mapping; in
        // bounds, the offset fits `usize`.
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

    #[cold]
    fn untrusted(&self, p: RelPtr, holder: usize) -> Error {
        let segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        let holder = segments
            .iter()
            .find(|s| holder.wrapping_sub(s.base().as_ptr() as usize) < s.len())
            .map_or_else(|| "another process's memory".to_owned(), |s| format!("`{}`", s.name()));
        drop(segments);
        Error::Corrupted {
            what: format!(
                "a pointer stored in segment {holder} (mapped read-only: another process wrote \
                 it) points into segment {} at offset {:#x}; a peer's pointers may only point \
                 into the segment that holds them",
                self.describe(p.segment),
                p.offset
            ),
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
    /// the life of the process (or until it is [retired](Self::retire)). Returns the segment's
    /// id. A segment mapped read-only counts as another process's memory (see
    /// [`RelPtr::resolve_held`]).
    pub fn insert(&self, segment: Segment) -> u64 {
        let mut segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        let id = segment.id();
        if self.lookup(id).is_none() && !self.is_retired(id) {
            self.publish_entry(id, &segment);
            segments.push(segment);
        }
        id
    }

    /// Base address of segment `id`, one this process entered writable (its own heap).
    pub(crate) fn resolve_own_base(&self, id: u64) -> Option<NonNull<u8>> {
        self.lookup(id).filter(|entry| entry.writable).map(|entry| entry.base)
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
    ///
    /// # Errors
    /// The errors of [`Segment::open`], [`Error::SegmentMismatch`] when the segment found under
    /// the name has another id, and [`Error::SegmentNotFound`] for a retired id.
    pub fn map(&self, id: u64) -> Result<()> {
        self.map_lazily(id).map(drop)
    }

    fn is_retired(&self, id: u64) -> bool {
        self.retired.lock().unwrap_or_else(PoisonError::into_inner).contains(&id)
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
        if self.is_retired(id) {
            return Err(Error::SegmentNotFound {
                segment: format!("{id:016x} (retired: its owner died and it was unmapped)"),
            });
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
        if !entry.writable {
            // Known as foreign before anyone can resolve into it.
            let start = entry.base.as_ptr() as usize;
            FOREIGN_LO.fetch_min(start, Ordering::Relaxed);
            FOREIGN_HI.fetch_max(start + entry.len, Ordering::Relaxed);
            let free = FOREIGN.iter().position(|r| r.len.load(Ordering::Relaxed) == 0);
            match free {
                Some(i) => write_foreign(|| {
                    FOREIGN[i].start.store(start, Ordering::Relaxed);
                    FOREIGN[i].len.store(entry.len, Ordering::Relaxed);
                    FOREIGN_USED.fetch_max(i + 1, Ordering::Relaxed);
                }),
                None => FOREIGN_OVERFLOW.store(true, Ordering::SeqCst),
            }
        }
        let slot = &FAST[(id % FAST_SLOTS as u64) as usize];
        if slot.id.load(Ordering::Relaxed) == 0 {
            slot.base.store(entry.base.as_ptr(), Ordering::Relaxed);
            slot.size_writable.store(entry.len | usize::from(entry.writable), Ordering::Relaxed);
            slot.id.store(id, Ordering::Release);
        } else {
            self.slow.write().unwrap_or_else(PoisonError::into_inner).push((id, entry));
        }
        entry
    }

    /// Holds segment `id` (mapping it read-only if needed): until the hold is dropped,
    /// [`retire_when_unheld`](Self::retire_when_unheld) leaves it mapped.
    ///
    /// # Errors
    /// The errors of mapping the segment, and [`Error::SegmentNotFound`] for a segment retired
    /// or being retired.
    pub fn hold(&self, id: u64) -> Result<SegmentHold> {
        // Lock order: `holds`, then `segments` (inside `map_lazily` and `retire`). Mapping and
        // counting under the `holds` lock makes a hold and a retirement exclusive: either the
        // hold is counted first (and the segment stays mapped), or the id is retired first
        // (and `map_lazily` refuses it).
        let mut holds = self.holds.lock().unwrap_or_else(PoisonError::into_inner);
        self.map_lazily(id)?;
        match holds.iter_mut().find(|h| h.id == id) {
            Some(h) if h.retiring && h.count == 0 => {
                return Err(Error::SegmentNotFound {
                    segment: format!("{id:016x} (being retired)"),
                });
            }
            Some(h) => h.count += 1,
            None if self.is_retired(id) => {
                return Err(Error::SegmentNotFound { segment: format!("{id:016x} (retired)") });
            }
            None => holds.push(HoldCount { id, count: 1, retiring: false }),
        }
        Ok(SegmentHold { id })
    }

    /// Retires segment `id` (see [`retire`](Self::retire)) now if nothing holds it, or else when
    /// its last [`SegmentHold`] is dropped. Returns whether it was retired now.
    ///
    /// # Safety
    /// Every use of the segment's memory in this process, in any thread, happens while a
    /// [`SegmentHold`] of it exists (references into it are obtained after taking a hold and
    /// dropped before giving it up), and the segment's owner is dead, so that nothing new
    /// refers to it.
    ///
    /// # Errors
    /// As [`retire`](Self::retire).
    pub unsafe fn retire_when_unheld(&self, id: u64) -> Result<bool> {
        let mut holds = self.holds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = holds.iter_mut().find(|h| h.id == id && h.count > 0) {
            h.retiring = true;
            return Ok(false);
        }
        holds.retain(|h| h.id != id);
        // SAFETY: no hold exists, and by the caller's promise every use happens under one; the
        // `holds` lock, kept until the segment is gone, keeps a new hold from being taken in
        // between (see `hold`).
        let retired = unsafe { self.retire(id) };
        drop(holds);
        retired
    }

    /// Retires segment `id`, one mapped read-only (another process's): removes it from the
    /// table, unmaps it, and makes its id never resolve again (not even by mapping it anew).
    /// Returns whether such a segment was mapped. The segment's name is left alone.
    ///
    /// This is how a reader gives back the address space of a dead peer's heap; a segment this
    /// process maps writable (its own) is never retired, and an error says so.
    ///
    /// # Safety
    /// Nothing in this process may use memory of the segment any more, in any thread: no
    /// reference or pointer obtained by resolving into it (directly, through a container, or a
    /// `'static` view built on it) is alive or will be used after this call. Callers establish
    /// this with a count of the users they handed such references to (a subscriber's samples
    /// and connections) and retire only when it is zero and the segment's owner is dead (so no
    /// new reference into it can be handed out); [`SegmentHold`] is that count.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a segment mapped writable (this process's own).
    pub unsafe fn retire(&self, id: u64) -> Result<bool> {
        let mut segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(at) = segments.iter().position(|s| s.id() == id) else { return Ok(false) };
        if segments[at].access() != Access::ReadOnly {
            return Err(Error::Unsupported {
                what: format!(
                    "retiring segment `{}`: it is mapped writable (this process's own)",
                    segments[at].name()
                ),
            });
        }
        self.retired.lock().unwrap_or_else(PoisonError::into_inner).push(id);
        // Unpublish before unmapping: the slot first (id 0 before anything else changes)...
        let slot = &FAST[(id % FAST_SLOTS as u64) as usize];
        if slot.id.load(Ordering::Relaxed) == id {
            slot.id.store(0, Ordering::Relaxed);
            fence(Ordering::Release);
            slot.base.store(ptr::null_mut(), Ordering::Relaxed);
            slot.size_writable.store(0, Ordering::Relaxed);
        } else {
            self.slow.write().unwrap_or_else(PoisonError::into_inner).retain(|(i, _)| *i != id);
        }
        // ...then its address range, so that a new mapping at the same addresses is not taken
        // for this one...
        let start = segments[at].base().as_ptr() as usize;
        if let Some(range) = FOREIGN.iter().find(|r| {
            r.start.load(Ordering::Relaxed) == start && r.len.load(Ordering::Relaxed) != 0
        }) {
            write_foreign(|| {
                range.len.store(0, Ordering::Relaxed);
                range.start.store(0, Ordering::Relaxed);
            });
        }
        // ...then the mapping itself.
        drop(segments.swap_remove(at));
        Ok(true)
    }
}

/// The name of the heap segment with id `id` in `domain`.
pub(crate) fn heap_segment_name(domain: &str, id: u64) -> Result<SegmentName> {
    SegmentName::new(domain, SegmentKind::Heap, &format!("{id:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::SharedMemoryOs;
    use crate::segment::memory::Memory;

    /// A fresh segment of the in-memory backend (works under Miri): the writer's mapping, and
    /// its name. `id` 0 picks a random id.
    fn memory_segment(tag: &str, id: u64) -> (Segment, SegmentName) {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let name = SegmentName::new(domain::current(), SegmentKind::Raw, &format!("ptr-{tag}-{n}"))
            .unwrap();
        let id = if id == 0 { crate::segment::fresh_id() } else { id };
        let segment =
            Segment::create_with_id(&Memory, &name, SegmentKind::Raw, 1 << 16, id, |_| {}).unwrap();
        (segment, name)
    }

    /// A segment as another process's: mapped read-only and entered into the table. Returns
    /// its id and a writable view of it (what the peer itself would hold).
    fn peer_segment(tag: &str, id: u64) -> (u64, Segment) {
        let (writer, name) = memory_segment(tag, id);
        let reader =
            Segment::open_with(&Memory, &name, SegmentKind::Raw, Access::ReadOnly).unwrap();
        Memory.unlink(name.as_str()).unwrap();
        (table().insert(reader), writer)
    }

    fn addr(p: NonNull<u8>) -> *const u8 {
        p.as_ptr().cast_const()
    }

    #[test]
    fn pointers_held_in_a_peer_segment_resolve_only_into_it() {
        let (own, name) = memory_segment("own", 0);
        Memory.unlink(name.as_str()).unwrap();
        let own = table().insert(own);
        let (peer, _peer_writer) = peer_segment("peer", 0);
        let (third, _third_writer) = peer_segment("third", 0);
        let in_peer = addr(RelPtr::new(peer, 128).resolve(16, 8).unwrap());
        let in_own = addr(RelPtr::new(own, 128).resolve_mut(16, 8).unwrap());
        let on_stack = 0u64;
        let on_stack = (&on_stack as *const u64).cast::<u8>();

        // Held in the peer's memory: only the peer's own segment.
        assert!(RelPtr::new(peer, 256).resolve_held(in_peer, 8, 8).is_ok());
        for target in [own, third] {
            let err = RelPtr::new(target, 256).resolve_held(in_peer, 8, 8).unwrap_err();
            assert!(matches!(err, Error::Corrupted { .. }), "{err}");
            let message = err.to_string();
            assert!(
                message.contains("may only point into the segment that holds them"),
                "{message}"
            );
            assert!(message.contains("offset 0x100"), "{message}");
        }
        // Held in our own memory: anything, as before.
        for holder in [in_own, on_stack] {
            for target in [own, peer, third] {
                assert!(RelPtr::new(target, 256).resolve_held(holder, 8, 8).is_ok());
            }
        }
        // The unchecked forms are unchanged.
        assert!(RelPtr::new(own, 256).resolve(8, 8).is_ok());
        // SAFETY: nothing resolved into these segments is used any more.
        unsafe {
            assert!(table().retire(peer).unwrap());
            assert!(table().retire(third).unwrap());
        }
    }

    #[test]
    fn retired_segment_is_gone_and_its_id_never_resolves_again() {
        let (peer, writer) = peer_segment("retire", 0);
        let name = writer.name().clone();
        assert!(RelPtr::new(peer, 64).resolve(8, 8).is_ok());
        assert_eq!(table().describe(peer), name.to_string());
        // SAFETY: the pointer resolved above is not used.
        assert!(unsafe { table().retire(peer) }.unwrap());
        // The table no longer has it (its mapping was dropped), and neither the fast path, the
        // lazy path nor re-entering the same segment brings the id back.
        assert_eq!(table().describe(peer), format!("{peer:016x}"));
        let err = RelPtr::new(peer, 64).resolve(8, 8).unwrap_err();
        assert!(err.to_string().contains("retired"), "{err}");
        assert!(table().map(peer).is_err());
        let again = Segment::open_with(&Memory, &name, SegmentKind::Raw, Access::ReadOnly);
        assert!(again.is_err(), "the name was removed");
        let reopened =
            Segment::create_with_id(&Memory, &name, SegmentKind::Raw, 4096, peer, |_| {}).unwrap();
        Memory.unlink(name.as_str()).unwrap();
        table().insert(reopened);
        assert!(RelPtr::new(peer, 64).resolve(8, 8).is_err());
        // SAFETY: never resolved.
        assert!(!unsafe { table().retire(peer) }.unwrap(), "already retired");
    }

    #[test]
    fn own_segments_are_never_retired() {
        let (own, name) = memory_segment("own-retire", 0);
        Memory.unlink(name.as_str()).unwrap();
        let own = table().insert(own);
        // SAFETY: refused before anything changes.
        let err = unsafe { table().retire(own) }.unwrap_err();
        assert!(err.to_string().contains("mapped writable"), "{err}");
        assert!(RelPtr::new(own, 64).resolve_mut(8, 8).is_ok());
    }

    /// A slot retired and reused by another id while readers resolve through it: a reader gets
    /// either an error or an address inside the mapping of the id it asked for, never a mix of
    /// two slots' contents (the id read before and after base and size).
    #[test]
    fn readers_never_mix_a_retired_slot_with_its_successor() {
        // Two ids that share a fast slot.
        let first = crate::segment::fresh_id() | 1 << 63;
        let second = first.wrapping_add(FAST_SLOTS as u64);
        let rounds = if cfg!(miri) { 3 } else { 200 };
        let (second_id, second_writer) = {
            let (writer, name) = memory_segment("second", second);
            (writer.id(), (writer, name))
        };
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let (first_id, _writer) = peer_segment("first", first);
                for _ in 0..rounds {
                    if let Ok(p) = RelPtr::new(first_id, 64).resolve(8, 8) {
                        std::hint::black_box(p);
                    }
                }
                // SAFETY: the addresses resolved above are never dereferenced.
                assert!(unsafe { table().retire(first_id) }.unwrap());
                let name = &second_writer.1;
                let reader =
                    Segment::open_with(&Memory, name, SegmentKind::Raw, Access::ReadOnly).unwrap();
                table().insert(reader);
                stop.store(true, Ordering::Release);
            });
            scope.spawn(|| {
                let (base, len) = (second_writer.0.base().as_ptr() as usize, second_writer.0.len());
                while !stop.load(Ordering::Acquire) {
                    for id in [first, second_id] {
                        if let Ok(p) = RelPtr::new(id, 64).resolve(8, 8) {
                            let at = p.as_ptr() as usize;
                            if id == second_id {
                                assert!(at.wrapping_sub(base) < len, "second resolved elsewhere");
                            } else {
                                assert!(at.wrapping_sub(base) >= len, "first resolved into second");
                            }
                        }
                    }
                    std::thread::yield_now();
                }
            });
        });
        assert!(RelPtr::new(second_id, 64).resolve(8, 8).is_ok());
        assert!(RelPtr::new(first, 64).resolve(8, 8).is_err());
        Memory.unlink(second_writer.1.as_str()).unwrap();
        // SAFETY: nothing resolved is used any more.
        assert!(unsafe { table().retire(second_id) }.unwrap());
    }

    #[test]
    fn held_segment_is_retired_when_its_last_hold_goes() {
        let (peer, _writer) = peer_segment("held", 0);
        let first = table().hold(peer).unwrap();
        let second = table().hold(peer).unwrap();
        // SAFETY: this test uses the segment only while holding it.
        assert!(!unsafe { table().retire_when_unheld(peer) }.unwrap(), "held: not yet");
        assert!(RelPtr::new(peer, 64).resolve(8, 8).is_ok());
        drop(first);
        assert!(RelPtr::new(peer, 64).resolve(8, 8).is_ok(), "one hold left");
        assert_eq!(second.id(), peer);
        drop(second);
        assert!(RelPtr::new(peer, 64).resolve(8, 8).is_err(), "retired with the last hold");
        assert!(table().hold(peer).is_err());
        // Unheld: retired at once.
        let (other, _writer) = peer_segment("unheld", 0);
        // SAFETY: not used.
        assert!(unsafe { table().retire_when_unheld(other) }.unwrap());
        assert!(table().hold(other).is_err());
    }

    /// On Linux, a retired segment is really unmapped: it leaves the process's memory map.
    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn retired_segment_leaves_the_memory_map() {
        let name = SegmentName::new(
            domain::current(),
            SegmentKind::Raw,
            &format!("ptr-unmap-{}", crate::segment::fresh_id()),
        )
        .unwrap();
        let writer = Segment::create(&name, SegmentKind::Raw, 1 << 16).unwrap();
        let reader = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly).unwrap();
        drop(writer);
        let id = table().insert(reader);
        assert!(RelPtr::new(id, 64).resolve(8, 8).is_ok());
        let maps = || std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(maps().contains(name.as_str()), "mapped before");
        // SAFETY: the pointer resolved above is not used.
        assert!(unsafe { table().retire(id) }.unwrap());
        Segment::unlink(&name).unwrap();
        assert!(!maps().contains(name.as_str()), "still mapped after retiring");
        assert!(RelPtr::new(id, 64).resolve(8, 8).is_err());
    }
}
