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

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, RwLock};

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
    pub fn resolve(self, len: usize, align: usize) -> Result<NonNull<u8>> {
        table().resolve(self, len, align, false)
    }

    /// Like [`resolve`](Self::resolve), but also requires the segment to be mapped writable
    /// (that is, owned by this process).
    pub fn resolve_mut(self, len: usize, align: usize) -> Result<NonNull<u8>> {
        table().resolve(self, len, align, true)
    }
}

/// One lock-free slot of the table's fast array. Written once (base, len, writable, then id with
/// Release) and never changed afterwards.
struct Slot {
    id: AtomicU64,
    base: AtomicPtr<u8>,
    len: AtomicUsize,
    writable: AtomicUsize,
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

/// The process-local table from segment ids to mappings. See the module docs.
pub struct SegmentTable {
    fast: [Slot; FAST_SLOTS],
    slow: RwLock<HashMap<u64, Entry>>,
    /// Segments kept mapped for the life of the process; also serialises mapping.
    segments: Mutex<Vec<Segment>>,
    hints: Mutex<HashMap<u64, SegmentName>>,
}

impl std::fmt::Debug for SegmentTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.segments.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("SegmentTable").field("mapped", &count).finish()
    }
}

/// The process's segment table.
pub fn table() -> &'static SegmentTable {
    static TABLE: OnceLock<SegmentTable> = OnceLock::new();
    TABLE.get_or_init(|| SegmentTable {
        fast: std::array::from_fn(|_| Slot {
            id: AtomicU64::new(0),
            base: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
            writable: AtomicUsize::new(0),
        }),
        slow: RwLock::new(HashMap::new()),
        segments: Mutex::new(Vec::new()),
        hints: Mutex::new(HashMap::new()),
    })
}

impl SegmentTable {
    #[inline]
    fn lookup(&self, id: u64) -> Option<Entry> {
        let slot = &self.fast[(id as usize) % FAST_SLOTS];
        if slot.id.load(Ordering::Acquire) == id {
            let base = slot.base.load(Ordering::Relaxed);
            return Some(Entry {
                // SAFETY: a slot's id is published (Release) only after a non-null base.
                base: unsafe { NonNull::new_unchecked(base) },
                len: slot.len.load(Ordering::Relaxed),
                writable: slot.writable.load(Ordering::Relaxed) != 0,
            });
        }
        self.slow.read().unwrap_or_else(PoisonError::into_inner).get(&id).copied()
    }

    #[inline]
    fn resolve(&self, p: RelPtr, len: usize, align: usize, write: bool) -> Result<NonNull<u8>> {
        let entry = match self.lookup(p.segment) {
            Some(entry) => entry,
            None => self.map_lazily(p.segment)?,
        };
        let end = p.offset.checked_add(len as u64);
        let in_bounds =
            p.offset >= HEADER_SIZE as u64 && end.is_some_and(|e| e <= entry.len as u64);
        if !in_bounds || !(p.offset as usize).is_multiple_of(align) {
            return Err(self.out_of_bounds(p, len, entry.len));
        }
        if write && !entry.writable {
            return Err(Error::io(
                format!("writing through segment {:016x}", p.segment),
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

    /// Records that segment `id` is called `name`, so that lazy mapping finds it.
    pub fn register_name(&self, id: u64, name: SegmentName) {
        self.hints.lock().unwrap_or_else(PoisonError::into_inner).insert(id, name);
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
        let name = self.hints.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned();
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
            len: segment.len(),
            writable: segment.access() == Access::ReadWrite,
        };
        let slot = &self.fast[(id as usize) % FAST_SLOTS];
        if slot.id.load(Ordering::Relaxed) == 0 {
            slot.base.store(entry.base.as_ptr(), Ordering::Relaxed);
            slot.len.store(entry.len, Ordering::Relaxed);
            slot.writable.store(usize::from(entry.writable), Ordering::Relaxed);
            slot.id.store(id, Ordering::Release);
        } else {
            self.slow.write().unwrap_or_else(PoisonError::into_inner).insert(id, entry);
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
