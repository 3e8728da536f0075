//! The shared heap: an allocator inside a shared-memory segment owned by one process.
//!
//! Every process has (at most) one default heap, created on first use or explicitly with
//! [`init_heap`]. Containers ([`ShmVec`](crate::ShmVec) and friends) allocate from it; other
//! processes map it read-only, lazily, through the [segment table](crate::ptr).
//!
//! ```
//! use ipc_runtime::prelude::*;
//!
//! # ipc_runtime::domain::set_current(&format!("doc-heap-{}", std::process::id())).unwrap();
//! ipc_runtime::init_heap(16 << 20)?; // optional: the default is 64 MiB (or IPC_HEAP_SIZE)
//! let before = ipc_runtime::heap_stats().bytes_in_use();
//! let v = ShmVec::from_slice(&[1u32, 2, 3]);
//! assert!(ipc_runtime::heap_stats().bytes_in_use() > before);
//! drop(v);
//! assert_eq!(ipc_runtime::heap_stats().bytes_in_use(), before);
//! # Ok::<(), ipc_runtime::Error>(())
//! ```
//!
//! * **Size.** 64 MiB by default; the environment variable `IPC_HEAP_SIZE` (bytes, or with a
//!   `K`, `M` or `G` suffix, at least [`MIN_HEAP_SIZE`]) changes it for processes that do not
//!   call `init_heap`. A value that is not a size, or too small, is an [`Error::InvalidOption`]
//!   naming the variable and the value. The size is fixed when the heap is created; running out
//!   is an error that says which `IPC_HEAP_SIZE` would fit.
//! * **Sparse.** A 1 GiB heap costs only the pages that are touched (on Windows, pages are
//!   committed on demand and count against the commit limit only then).
//! * **Bounded time.** A [TLSF](tlsf) allocator: constant-time allocate and free, at most 1/32
//!   lost to size-class rounding, alignment up to 4 KiB.
//! * **Thread-safe** within the owning process (a short spin lock; only the owner ever writes).
//! * **Validated frees.** Every free is checked against the allocator's own metadata first; a
//!   forged, misaligned or double free panics naming the heap and the offset, with nothing
//!   changed.
//! * **Out of memory** is [`Error::OutOfMemory`] from `try_*` methods and a panic with the same
//!   message from the infallible ones, like `std`.
//! * **Ownership rule.** Only the owning process allocates and frees. A block handed to another
//!   process comes back to the owner to be freed, so no allocator is ever shared for writing and
//!   a crashed reader cannot leave one locked.
//!
//! The heap segment is removed when the process exits normally; [liveness](crate::liveness)
//! cleanup removes those of crashed processes.

// Commit on demand (Windows). Committing the whole view up front would be simpler, and
// pagefile-backed pages take no RAM until touched either way; but every committed page counts
// against the system's commit limit (RAM plus page file), so a few processes with large, mostly
// idle heaps could exhaust it, and the size a user asks for would be a real cost instead of an
// upper bound. So the heap commits lazily, without catching faults:
//
// * TLSF writes only inside blocks it hands out and into block headers it wrote before.
//   `Tlsf::allocate_with` and `Tlsf::grow_in_place_with` report, *before* writing, the range an
//   operation may touch (bookkeeping plus the whole payload handed out).
// * The heap keeps a *commit frontier*: everything below it is committed. Since every range
//   starts at a header that was written before (so below the frontier), one number is enough:
//   a range ending above it moves the frontier up, in 64 KiB steps, through `Segment::commit`.
//   Creation commits the header, the allocator's control block and the last page (the area's
//   sentinel).
// * Pages are never decommitted: freed memory stays committed for reuse, as `Vec` keeps its
//   capacity.
// * When the system cannot commit more, the allocation fails with `Error::OutOfMemory` (logged
//   with the OS error), like a full heap.
//
// Other processes read only blocks that were handed out, which are committed; commitment
// belongs to the section, so their read-only views see it. On Linux and in the in-memory backend
// committing does nothing.
//
// The allocator sits *inside* the spin lock and changes only through `&mut`, statistics
// included, so no two views of its control block can overlap. Frees are checked for alignment,
// being inside the area, a used block's check tag and a successor that links back.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::domain;
use crate::error::{Error, Result};
use crate::ptr::{self, RelPtr};
use crate::segment::{HEADER_SIZE, Segment, SegmentKind, SegmentName, SharedMemoryOs};

pub mod tlsf;

use crate::spin::{Guard, SpinLock};

use tlsf::{FreeError, Tlsf};

/// A heap segment and its use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapInfo {
    /// Segment name.
    pub segment: String,
    /// Process that created it.
    pub owner_pid: u32,
    /// Whether the owner is alive.
    pub alive: bool,
    /// Usage counters.
    pub stats: HeapStats,
}

/// Usage of heap segment `id` in `domain` (mapped read-only for the moment of reading), and
/// whether its owner is alive: what `ipc list` shows.
///
/// ```
/// # ipc_runtime::domain::set_current(&format!("doc-heap-info-{}", std::process::id())).unwrap();
/// let heap = ipc_runtime::heap::default_heap()?;
/// let info = ipc_runtime::heap::info(ipc_runtime::domain::current(), heap.id())?;
/// assert!(info.alive && info.owner_pid == std::process::id());
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidName`] for an invalid domain name; [`Error::SegmentNotFound`] if there is
/// no heap segment with that id; the other errors of [`Segment::open`]
/// ([`Error::UntrustedObject`], [`Error::Io`], and validation errors); [`Error::Io`] if the
/// owner's liveness token exists but cannot be probed.
pub fn info(domain: &str, id: u64) -> Result<HeapInfo> {
    let name = crate::ptr::heap_segment_name(domain, id)?;
    let segment = Segment::open(&name, SegmentKind::Heap, crate::segment::Access::ReadOnly)?;
    let stats = read_stats(&segment);
    let alive = crate::liveness::probe(domain, &token_name(id))? == crate::liveness::Probe::Alive;
    Ok(HeapInfo {
        segment: name.to_string(),
        owner_pid: segment.header().creator_pid(),
        alive,
        stats,
    })
}

/// Default heap size when neither `init_heap` nor `IPC_HEAP_SIZE` says otherwise.
pub const DEFAULT_HEAP_SIZE: usize = if cfg!(miri) { 1 << 20 } else { 64 << 20 };

/// Environment variable with the default heap's size.
pub const HEAP_SIZE_ENV: &str = "IPC_HEAP_SIZE";

/// Smallest size `IPC_HEAP_SIZE` may ask for (a smaller heap could not hold a publisher's port
/// and pool; a value like `0` is a mistake, not a wish for a 4 KiB heap).
pub const MIN_HEAP_SIZE: usize = 64 << 10;

/// Largest alignment the heap honours.
pub const MAX_ALIGN: usize = tlsf::MAX_ALIGN;

/// Offset of the allocator's control block inside a heap segment.
const CONTROL_OFFSET: u64 = HEADER_SIZE as u64;

/// Step by which the commit frontier of a sparse heap moves.
const COMMIT_STEP: u64 = 64 << 10;

/// Page size assumed for the area's last page (the sentinel's).
const PAGE: u64 = 4096;

/// A shared heap: a TLSF allocator inside a segment this process owns.
pub struct Heap {
    id: u64,
    domain: String,
    name: SegmentName,
    size: usize,
    /// The allocator, behind the lock that serialises every use of it (its mutating methods take
    /// `&mut self`, so nothing can touch the control block without holding this lock).
    tlsf: SpinLock<Tlsf>,
    /// Commit frontier: offsets below it are committed. Changed only under the `tlsf` lock.
    committed: AtomicU64,
    /// Says "the owner of this heap is alive" to other processes.
    token: Option<crate::liveness::Token>,
    os: &'static dyn SharedMemoryOs,
}

// SAFETY: the allocator's state lives in shared memory and is only used under the `tlsf` lock;
// `Tlsf` holds only the (process-lifetime) base address and an offset; `os` is a stateless
// table of functions.
unsafe impl Send for Heap {}
// SAFETY: as above.
unsafe impl Sync for Heap {}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap")
            .field("name", &self.name.as_str())
            .field("size", &self.size)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Usage figures of a heap.
///
/// ```
/// let stats = ipc_runtime::heap_stats();
/// assert!(stats.bytes_in_use() <= stats.capacity());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    in_use: u64,
    high_water: u64,
    capacity: u64,
    allocations: u64,
    segment_size: u64,
}

impl HeapStats {
    /// Bytes held by live allocations (block headers included).
    pub fn bytes_in_use(&self) -> u64 {
        self.in_use
    }

    /// Largest `bytes_in_use` seen since the heap was created.
    pub fn high_water(&self) -> u64 {
        self.high_water
    }

    /// Bytes the heap can hand out (block headers included).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Number of live allocations.
    pub fn allocations(&self) -> u64 {
        self.allocations
    }

    /// Size of the heap's segment (capacity plus bookkeeping).
    pub fn segment_size(&self) -> u64 {
        self.segment_size
    }
}

impl Heap {
    /// Creates a heap able to hand out about `bytes` bytes in a new segment of the current
    /// domain, and enters it into the segment table.
    ///
    /// # Errors
    /// As [`create_with`](Heap::create_with).
    pub fn create(bytes: usize) -> Result<Heap> {
        Self::create_with(crate::segment::platform(), domain::current(), bytes)
    }

    /// Creates a heap with an explicit shared-memory mechanism and domain.
    ///
    /// # Errors
    /// [`Error::CapacityOverflow`] if `bytes` plus the heap's bookkeeping exceeds the largest
    /// heap the allocator can manage; [`Error::InvalidName`] for an invalid domain; the errors
    /// of taking the owner's liveness token ([`Error::UntrustedObject`] if a file that is not
    /// ours is at its path, [`Error::Io`] if it cannot be created or locked); the errors of
    /// [`Segment::create_with`] for the heap's segment ([`Error::Io`] when the OS cannot
    /// create or map it); and [`Error::Io`] if the pages the allocator starts with cannot be
    /// committed (Windows), in which case the segment is removed again.
    pub fn create_with(
        os: &'static dyn SharedMemoryOs,
        domain: &str,
        bytes: usize,
    ) -> Result<Heap> {
        let overhead = CONTROL_OFFSET + tlsf::CONTROL_SIZE + 2 * tlsf::BLOCK_OVERHEAD;
        let size = (bytes as u64)
            .checked_add(overhead)
            .map(|s| s.next_multiple_of(4096))
            .filter(|&s| s <= tlsf::MAX_REGION && usize::try_from(s).is_ok())
            .ok_or(Error::CapacityOverflow { what: "heap size" })? as usize;
        let id = crate::segment::fresh_id();
        let name = ptr::heap_segment_name(domain, id)?;
        // The token exists before the segment, so no one can ever see the segment without a
        // live owner and remove it (`remove_if_dead`).
        #[cfg(not(miri))]
        let token = Some(crate::liveness::Token::acquire(domain, &token_name(id))?);
        #[cfg(miri)]
        let token = None;
        let frontier = tlsf::init_extent(CONTROL_OFFSET).next_multiple_of(COMMIT_STEP);
        let frontier = frontier.min(size as u64);
        let mut committed = Ok(());
        let segment =
            Segment::create_sparse_with_id(os, &name, SegmentKind::Heap, size, id, |seg| {
                // What `Tlsf::init` writes: the control block and first header, and the sentinel in
                // the last page (`size` is a multiple of the page size).
                committed = seg
                    .commit(0, frontier as usize)
                    .and_then(|()| seg.commit(size - PAGE as usize, PAGE as usize));
                if committed.is_ok() {
                    // SAFETY: the segment was just created, is writable, page-aligned and `size`
                    // bytes, which leaves room for the control block and two minimal blocks; the
                    // parts `init` writes were committed just above.
                    unsafe { Tlsf::init(seg.base(), CONTROL_OFFSET, size as u64) };
                }
            })?;
        if let Err(err) = committed {
            drop(segment);
            let _ = Segment::unlink_with(os, &name);
            return Err(err);
        }
        let base = segment.base();
        ptr::table().register_name(id, name.clone());
        ptr::table().insert(segment);
        // SAFETY: `init` ran on this region at CONTROL_OFFSET; the table keeps it mapped for the
        // life of the process (a heap we own is never retired); this is the region's one `Tlsf`,
        // and it goes behind the heap's lock.
        let tlsf = unsafe { Tlsf::attach(base, CONTROL_OFFSET) };
        Ok(Heap {
            id,
            domain: domain.to_owned(),
            name,
            size,
            tlsf: SpinLock::new(tlsf),
            committed: AtomicU64::new(frontier),
            token,
            os,
        })
    }

    /// Makes sure offsets below `end` are committed, moving the frontier. Called by the
    /// allocator, under the lock, before it touches anything up to `end`.
    fn commit_below(&self, end: u64) -> bool {
        let frontier = self.committed.load(Ordering::Relaxed);
        if end <= frontier {
            return true;
        }
        let target = end.next_multiple_of(COMMIT_STEP).min(self.size as u64);
        match ptr::table().commit(self.id, frontier as usize, (target - frontier) as usize) {
            Ok(()) => {
                self.committed.store(target, Ordering::Relaxed);
                true
            }
            Err(err) => {
                tracing::warn!(heap = %self.name, %err, "cannot commit more of the heap");
                false
            }
        }
    }

    /// Bytes of the heap's segment committed so far (from its start; plus the last page). On
    /// platforms without commitment this is just how far the allocator has reached.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    #[inline]
    fn guard(&self) -> Guard<'_, Tlsf> {
        self.tlsf.lock()
    }

    /// The segment's id (what [`RelPtr`]s into this heap carry).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The domain the heap's segment lives in.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// Current usage (read under the heap's lock, like every other use of the allocator).
    pub fn stats(&self) -> HeapStats {
        let c = self.guard().counters();
        HeapStats {
            in_use: c.in_use,
            high_water: c.high_water,
            capacity: c.capacity,
            allocations: c.allocations,
            segment_size: self.size as u64,
        }
    }

    fn out_of_memory(&self, requested: u64) -> Error {
        let stats = self.stats();
        let is_default = DEFAULT.get().is_some_and(|heap| std::ptr::eq(heap, self));
        Error::OutOfMemory {
            heap: self.name.to_string(),
            requested,
            capacity: stats.capacity,
            in_use: stats.in_use,
            hint: out_of_memory_hint(is_default, stats.in_use, requested),
        }
    }

    /// Allocates `size` bytes aligned to `align` (a power of two up to 4096).
    ///
    /// # Errors
    /// [`Error::Unsupported`] if `align` is not a power of two or exceeds [`MAX_ALIGN`];
    /// [`Error::OutOfMemory`] (naming the heap, its capacity and use, and for the default heap
    /// the `IPC_HEAP_SIZE` that would fit) if no free block is large enough, or if the memory
    /// for the block cannot be committed (Windows, at the system's commit limit).
    pub fn try_allocate(&self, size: usize, align: usize) -> Result<RelPtr> {
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(Error::Unsupported {
                what: format!(
                    "alignment {align} (the heap honours powers of two up to {MAX_ALIGN})"
                ),
            });
        }
        let offset = self
            .guard()
            .allocate_with(size as u64, align as u64, &mut |_, end| self.commit_below(end));
        offset.map(|o| RelPtr::new(self.id, o)).ok_or_else(|| self.out_of_memory(size as u64))
    }

    /// Frees a block allocated from this heap.
    ///
    /// The pointer is validated against the allocator's own metadata first (see
    /// [`Tlsf::free`]). Panics, changing nothing, on a pointer that is not a block of this heap
    /// in use — forged, misaligned, or freed before: that is a bug or memory corruption in this
    /// process (only the owner frees into its heap), and going on would corrupt the heap.
    ///
    /// ```should_panic
    /// let heap = ipc_runtime::heap::Heap::create(1 << 20).unwrap();
    /// let p = heap.try_allocate(64, 8).unwrap();
    /// heap.free(p);
    /// heap.free(p); // panics: "heap `…`: invalid free at offset 0x…: … (double free)"
    /// ```
    pub fn free(&self, p: RelPtr) {
        assert_eq!(p.segment(), self.id, "freeing a block of another heap into `{}`", self.name);
        // The guard goes before the panic, so the lock is free for whoever catches it.
        let result = self.guard().free(p.offset());
        if let Err(err) = result {
            invalid_free(&self.name, p.offset(), err);
        }
    }

    /// Tries to grow the block at `p` to `new_size` bytes in place.
    pub fn grow_in_place(&self, p: RelPtr, new_size: usize) -> bool {
        let grown = self
            .guard()
            .grow_in_place_with(p.offset(), new_size as u64, &mut |_, end| self.commit_below(end));
        match grown {
            Ok(grown) => grown,
            Err(err) => invalid_free(&self.name, p.offset(), err),
        }
    }

    /// Address of the block at `p` in this process (the heap is mapped writable here).
    pub(crate) fn address(&self, p: RelPtr) -> NonNull<u8> {
        debug_assert_eq!(p.segment(), self.id);
        p.resolve_mut(0, 1).expect("a block of our own heap resolves")
    }

    /// Checks the allocator's invariants by walking every block (slow; tests and debugging).
    ///
    /// # Errors
    /// A description of the first broken invariant found, naming the block or the counter
    /// concerned (see [`Tlsf::check_integrity`]).
    pub fn check_integrity(&self) -> std::result::Result<(), String> {
        self.guard().check_integrity()
    }
}

impl Drop for Heap {
    /// A heap other than the default one is removed by name when dropped; its mapping stays in
    /// the segment table (addresses handed out stay valid), and its token goes.
    fn drop(&mut self) {
        let _ = Segment::unlink_with(self.os, &self.name);
    }
}

/// A free (or a growth) of something that is not a block of heap `name` in use.
#[cold]
#[inline(never)]
#[track_caller]
fn invalid_free(name: &SegmentName, offset: u64, err: FreeError) -> ! {
    panic!("heap `{name}`: invalid free at offset {offset:#x}: {err}")
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FreeError::Misaligned => "misaligned: no block of this heap starts there",
            FreeError::OutOfArea => "outside the heap's allocation area",
            FreeError::NotABlock => {
                "not a block of this heap in use (forged or corrupted pointer, or a block freed \
                 long ago)"
            }
            FreeError::DoubleFree => "block is already free (double free)",
        })
    }
}

/// This process's default heap as the containers' write paths see it: its id, base address and
/// size, in process-local statics (set once, when the heap is created). Nothing of it is in
/// shared memory, so no reader ever sees one of our addresses.
static OWN_ID: AtomicU64 = AtomicU64::new(0);
static OWN_BASE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static OWN_LEN: AtomicU64 = AtomicU64::new(0);

/// The address `p` stands for if it points into this process's default heap (mapped writable
/// here), before its end; `None` otherwise (the caller then resolves through the segment table,
/// which says what is wrong). The containers' write paths' shortcut (see `ShmVec::data_mut` for
/// why the length is not checked here).
#[inline(always)]
pub(crate) fn own_address(p: RelPtr) -> Option<NonNull<u8>> {
    // Acquire pairs with the Release in `init_default`: base and size are set before the id.
    // Before that, the id is 0 and the size 0, so nothing (not even the null pointer) passes.
    if p.segment() != OWN_ID.load(Ordering::Acquire)
        || p.offset() >= OWN_LEN.load(Ordering::Relaxed)
    {
        return None;
    }
    // SAFETY: offset < the heap's size, so the result stays inside its mapping, which the
    // segment table keeps for the life of the process (a heap we own is never retired); the
    // base of a mapping is not null.
    Some(unsafe {
        NonNull::new_unchecked(OWN_BASE.load(Ordering::Relaxed).add(p.offset() as usize))
    })
}

static DEFAULT: OnceLock<Heap> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// The default heap, if it exists.
pub fn try_default() -> Option<&'static Heap> {
    DEFAULT.get()
}

/// The default heap, created on first use with the configured size.
///
/// # Errors
/// Only while the heap does not exist yet, when creating it fails (the next call tries again):
/// [`Error::InvalidOption`] naming `IPC_HEAP_SIZE` if that variable is set but is not a size
/// or is below [`MIN_HEAP_SIZE`], and the errors of [`Heap::create`].
#[inline]
pub fn default_heap() -> Result<&'static Heap> {
    match DEFAULT.get() {
        Some(heap) => Ok(heap),
        None => init_default(None),
    }
}

#[cold]
fn init_default(bytes: Option<usize>) -> Result<&'static Heap> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(heap) = DEFAULT.get() {
        if let Some(bytes) = bytes
            && bytes > heap.stats().capacity as usize
        {
            return Err(Error::HeapAlreadyInitialized {
                existing: heap.stats().capacity,
                requested: bytes as u64,
            });
        }
        return Ok(heap);
    }
    let bytes = match bytes {
        Some(bytes) => bytes,
        None => configured_size()?,
    };
    let heap = Heap::create(bytes)?;
    remove_at_exit(heap.name().clone());
    take_token(&heap);
    #[cfg(not(miri))]
    sweep_dead_heaps(heap.domain(), heap.id());
    let base = ptr::table()
        .resolve_own_base(heap.id())
        .expect("the heap just created is in the segment table");
    OWN_BASE.store(base.as_ptr(), Ordering::Relaxed);
    OWN_LEN.store(heap.size as u64, Ordering::Relaxed);
    OWN_ID.store(heap.id(), Ordering::Release);
    Ok(DEFAULT.get_or_init(|| heap))
}

fn configured_size() -> Result<usize> {
    match std::env::var(HEAP_SIZE_ENV) {
        Ok(text) => size_from_env(&text),
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_HEAP_SIZE),
        Err(std::env::VarError::NotUnicode(text)) => Err(Error::InvalidOption {
            option: HEAP_SIZE_ENV,
            reason: format!("{text:?} is not a byte count like 1048576, 512K, 64M or 1G"),
        }),
    }
}

/// What to do about an allocation of `requested` bytes that did not fit next to `in_use`: for
/// the default heap, an `IPC_HEAP_SIZE` with room for twice that (a power of two, in MiB or
/// GiB), since the size is fixed when the heap is created.
fn out_of_memory_hint(is_default: bool, in_use: u64, requested: u64) -> String {
    const LARGEST: u64 = 1 << 46;
    if requested >= LARGEST {
        return format!("no heap can hold {requested} bytes");
    }
    if !is_default {
        return "this heap's size was fixed when it was created: create it larger".to_owned();
    }
    let mib = (2 * (in_use + requested)).div_ceil(1 << 20).next_power_of_two().max(1);
    let size = if mib >= 1024 { format!("{}G", mib / 1024) } else { format!("{mib}M") };
    format!(
        "the default heap's size is fixed when it is created: set {HEAP_SIZE_ENV}={size} \
         (or call ipc_runtime::init_heap({mib} << 20) before the first allocation)"
    )
}

/// The default heap's size as `IPC_HEAP_SIZE` gives it: a byte count of at least
/// [`MIN_HEAP_SIZE`].
fn size_from_env(text: &str) -> Result<usize> {
    let bytes = parse_size(text).ok_or_else(|| Error::InvalidOption {
        option: HEAP_SIZE_ENV,
        reason: format!("`{text}` is not a byte count like 1048576, 512K, 64M or 1G"),
    })?;
    if bytes < MIN_HEAP_SIZE {
        return Err(Error::InvalidOption {
            option: HEAP_SIZE_ENV,
            reason: format!(
                "`{text}` ({bytes} bytes) is below the minimum heap size of {} KiB",
                MIN_HEAP_SIZE >> 10
            ),
        });
    }
    Ok(bytes)
}

/// Parses `123`, `64K`, `16M`, `1G` (binary multiples).
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, shift) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 10),
        b'm' | b'M' => (&text[..text.len() - 1], 20),
        b'g' | b'G' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    digits.parse::<usize>().ok()?.checked_mul(1 << shift)
}

/// Creates the default heap with room for `bytes` bytes (the counterpart of ipcpp's
/// `initialize_dynamic_buffer`). Calling it again is fine as long as the existing heap is at
/// least that large.
///
/// ```
/// ipc_runtime::init_heap(8 << 20).unwrap();
/// assert!(ipc_runtime::heap_stats().capacity() >= 8 << 20);
/// ```
///
/// # Errors
/// [`Error::HeapAlreadyInitialized`] if the default heap exists already and can hand out less
/// than `bytes`; otherwise, when it creates the heap, the errors of [`Heap::create`]
/// ([`Error::CapacityOverflow`] for a size beyond what a heap can manage).
pub fn init_heap(bytes: usize) -> Result<()> {
    init_default(Some(bytes)).map(drop)
}

/// Usage of this process's default heap (all zero if it does not exist yet).
pub fn heap_stats() -> HeapStats {
    DEFAULT.get().map(Heap::stats).unwrap_or_default()
}

/// Frees a block into the heap that owns it. A block of a heap this process does not own cannot
/// be freed here (ownership rule): it is reported and leaked rather than corrupting anything.
pub(crate) fn free(p: RelPtr) {
    match DEFAULT.get() {
        Some(heap) if heap.id() == p.segment() => heap.free(p),
        _ => tracing::error!(
            segment = %ptr::table().describe(p.segment()),
            offset = p.offset(),
            "dropping shared memory this process does not own; the block is leaked (only the \
             allocating process may free it)"
        ),
    }
}

/// Reads the usage counters of a heap segment (mapped by anyone, read-only is enough).
pub(crate) fn read_stats(segment: &Segment) -> HeapStats {
    // SAFETY: the segment was validated as a heap segment, so the allocator's control block was
    // initialised at CONTROL_OFFSET; `read_counters` only performs atomic reads.
    let c = unsafe { tlsf::read_counters(segment.base(), CONTROL_OFFSET) };
    HeapStats {
        in_use: c.in_use,
        high_water: c.high_water,
        capacity: c.capacity,
        allocations: c.allocations,
        segment_size: segment.len() as u64,
    }
}

/// Name of the liveness token that says the owner of heap `id` is alive.
pub(crate) fn token_name(id: u64) -> String {
    format!("heap.{id:016x}")
}

/// Remembers the default heap's token file, removed at exit (the process keeps holding the
/// lock until then).
fn take_token(heap: &Heap) {
    if let Some(token) = &heap.token {
        TOKEN_PATHS.lock().unwrap_or_else(PoisonError::into_inner).push(token.path().clone());
    }
}

static TOKEN_PATHS: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

/// Number of dropped publishers whose samples are still out in other processes.
static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// Set when the exit hook of [`remove_at_exit`] has run.
static EXITED: AtomicBool = AtomicBool::new(false);

/// While a dropped publisher still has samples out, the heap's segment must survive the
/// process's exit (its liveness token still goes), because other processes may still need to
/// map it to read samples queued for them; whoever next finds the process dead removes the
/// segment ([`remove_once_dead`]). Pair with [`linger_end`].
pub(crate) fn linger_begin() {
    LINGERING.fetch_add(1, Ordering::SeqCst);
}

/// The lingering publisher got all its samples back. If that happens after the exit hook had
/// to leave the heap in place (a service thread finishing during `exit`), the name goes now.
pub(crate) fn linger_end() {
    // SeqCst pairs with the exit hook's store-then-load: at least one of the two sees the
    // other, so the name is removed at least once (a second removal finds nothing).
    if LINGERING.fetch_sub(1, Ordering::SeqCst) == 1
        && EXITED.load(Ordering::SeqCst)
        && let Some(heap) = DEFAULT.get()
    {
        let _ = Segment::unlink(heap.name());
    }
}

/// Makes this process's default heap outlive it for as long as process `pid` lives, so that a
/// subscriber there can still read the samples (and everything they point to) after this
/// publisher exited. Free where segments outlive their creators anyway (POSIX); on Windows it
/// hands `pid` a handle to the heap's section. Failures are logged: at worst, that subscriber
/// loses what it had not read when this process exits.
pub(crate) fn keep_alive_for(pid: u32) {
    if pid == 0 || pid == std::process::id() {
        return;
    }
    if let Some(heap) = DEFAULT.get()
        && let Err(err) = ptr::table().keep_alive_for(heap.id(), pid)
    {
        tracing::debug!(heap = %heap.name(), pid, %err, "cannot keep the heap alive for a reader");
    }
}

/// The name of the doorbell segment of the process owning heap `id` in `domain` (its service
/// thread's wake-up word, see `pubsub::service`); it lives and goes with the heap.
pub(crate) fn bell_name(domain: &str, id: u64) -> Result<SegmentName> {
    SegmentName::new(domain, crate::segment::SegmentKind::Bell, &format!("{id:016x}"))
}

/// Removes the heap segments of dead processes in `domain` (a crashed process cannot remove its
/// own): every process does this once, when it creates its heap.
fn sweep_dead_heaps(domain: &str, own: u64) {
    let prefix = format!("{domain}.heap.");
    let Ok(names) = crate::segment::platform().list(&prefix) else { return };
    for name in names {
        if let Some(id) = name.strip_prefix(&prefix).and_then(|id| u64::from_str_radix(id, 16).ok())
            && id != own
            && remove_if_dead(domain, id)
        {
            tracing::info!(segment = %name, "removed the heap of a dead process");
        }
    }
}

/// Removes the segment of heap `id` in `domain` if the process that owned it is dead. Mappings
/// that other processes hold stay valid; only the name goes.
pub fn remove_if_dead(domain: &str, id: u64) -> bool {
    let dead = matches!(crate::liveness::is_alive(domain, &token_name(id)), Ok(false));
    if dead && let Ok(name) = ptr::heap_segment_name(domain, id) {
        let _ = Segment::unlink(&name);
        // The process's doorbell goes with it (see `pubsub::service`).
        if let Ok(bell) = bell_name(domain, id) {
            let _ = Segment::unlink(&bell);
        }
    }
    dead
}

/// Like [`remove_if_dead`], for a heap whose owner is known to be on its way out (its
/// publisher's token is gone, which happens only in `exit`): waits up to `patience` for the
/// process to finish dying, so that the heap's name is not left behind by someone who looked a
/// moment too early. Returns whether the heap was removed.
pub(crate) fn remove_once_dead(domain: &str, id: u64, patience: std::time::Duration) -> bool {
    let give_up = std::time::Instant::now() + patience;
    loop {
        if remove_if_dead(domain, id) {
            return true;
        }
        if std::time::Instant::now() >= give_up {
            tracing::warn!(
                domain,
                heap = id,
                "the heap of an exiting publisher outlived the wait for its owner; the next process to create a heap in this domain removes it"
            );
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Removes the heap's name (and its liveness token) when the process exits normally; crashed
/// processes' heaps are removed by whoever finds them dead ([`remove_if_dead`]).
fn remove_at_exit(name: SegmentName) {
    crate::liveness::on_exit(Box::new(move || {
        EXITED.store(true, Ordering::SeqCst);
        // Nobody needs to wake a process that is gone; its heap may have to stay a while.
        if let Some(heap) = DEFAULT.get()
            && let Ok(bell) = bell_name(heap.domain(), heap.id())
        {
            let _ = Segment::unlink(&bell);
        }
        if LINGERING.load(Ordering::SeqCst) == 0 {
            let _ = Segment::unlink(&name);
        }
        let tokens =
            std::mem::take(&mut *TOKEN_PATHS.lock().unwrap_or_else(PoisonError::into_inner));
        for path in tokens {
            let _ = std::fs::remove_file(path);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::memory::Memory;

    /// A private heap on the in-memory backend (works under Miri, leaves nothing in /dev/shm).
    fn private_heap(bytes: usize) -> Heap {
        Heap::create_with(&Memory, domain::current(), bytes).unwrap()
    }

    /// A small deterministic generator (xorshift) so tests need no extra crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn fill(heap: &Heap, p: RelPtr, len: usize, byte: u8) {
        // SAFETY: `p` is a live block of at least `len` bytes in our writable heap.
        unsafe { heap.address(p).as_ptr().write_bytes(byte, len) };
    }

    fn holds(heap: &Heap, p: RelPtr, len: usize, byte: u8) -> bool {
        // SAFETY: as in `fill`.
        let bytes = unsafe { std::slice::from_raw_parts(heap.address(p).as_ptr(), len) };
        bytes.iter().all(|&b| b == byte)
    }

    #[test]
    fn alloc_free_storm_from_several_threads() {
        // Miri interprets every byte written, so it gets a smaller storm.
        let heap = private_heap(if cfg!(miri) { 1 << 20 } else { 8 << 20 });
        let threads = if cfg!(miri) { 2 } else { 4 };
        let rounds = if cfg!(miri) { 150 } else { 20_000 };
        let max_len = if cfg!(miri) { 200 } else { 3000 };
        std::thread::scope(|scope| {
            for t in 0..threads {
                let heap = &heap;
                scope.spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                    let mut live: Vec<(RelPtr, usize, u8)> = Vec::new();
                    for round in 0..rounds {
                        if live.len() < 64 && (live.is_empty() || rng.below(3) != 0) {
                            let len = 1 + rng.below(max_len) as usize;
                            let align = 1usize << rng.below(13);
                            let p = heap.try_allocate(len, align).expect("heap large enough");
                            assert_eq!(p.offset() as usize % align, 0);
                            let byte = (round % 251) as u8;
                            fill(heap, p, len, byte);
                            live.push((p, len, byte));
                        } else {
                            let (p, len, byte) =
                                live.swap_remove(rng.below(live.len() as u64) as usize);
                            assert!(holds(heap, p, len, byte), "block overwritten by another");
                            heap.free(p);
                        }
                    }
                    for (p, len, byte) in live {
                        assert!(holds(heap, p, len, byte));
                        heap.free(p);
                    }
                });
            }
        });
        heap.check_integrity().unwrap();
        assert_eq!(heap.stats().bytes_in_use(), 0);
        assert_eq!(heap.stats().allocations(), 0);
        assert!(heap.stats().high_water() > 0);
    }

    #[test]
    fn fragmented_heap_still_fills_past_80_percent() {
        let size = if cfg!(miri) { 256 << 10 } else { 16 << 20 };
        let heap = private_heap(size);
        let mut rng = Rng(12345);
        let mut live = Vec::new();
        let size_of = |rng: &mut Rng| 16 + rng.below(4096) as usize;
        while let Ok(p) = heap.try_allocate(size_of(&mut rng), 16) {
            live.push(p);
        }
        // Free a random half: the heap is now a checkerboard of holes.
        for i in (1..live.len()).rev() {
            live.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for p in live.drain(..live.len() / 2) {
            heap.free(p);
        }
        heap.check_integrity().unwrap();
        let err = loop {
            match heap.try_allocate(size_of(&mut rng), 16) {
                Ok(p) => live.push(p),
                Err(err) => break err,
            }
        };
        let stats = heap.stats();
        let fill = stats.bytes_in_use() as f64 / stats.capacity() as f64;
        assert!(fill >= 0.80, "only {:.1}% of the heap used at OOM", fill * 100.0);
        assert!(matches!(err, Error::OutOfMemory { .. }));
        assert!(err.to_string().contains(heap.name().as_str()), "{err}");
        for p in live {
            heap.free(p);
        }
        heap.check_integrity().unwrap();
        assert_eq!(heap.stats().bytes_in_use(), 0);
    }

    #[test]
    fn oversized_and_misaligned_requests_are_errors() {
        let heap = private_heap(1 << 20);
        assert!(matches!(heap.try_allocate(2 << 20, 8), Err(Error::OutOfMemory { .. })));
        assert!(matches!(heap.try_allocate(usize::MAX, 8), Err(Error::OutOfMemory { .. })));
        assert!(matches!(heap.try_allocate(8, 8192), Err(Error::Unsupported { .. })));
        assert!(matches!(heap.try_allocate(8, 3), Err(Error::Unsupported { .. })));
    }

    /// Runs `f`, expecting a panic; returns its message.
    fn panic_message(f: impl FnOnce()) -> String {
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    #[should_panic(expected = "invalid free at offset 0x")]
    fn forged_free_into_untouched_space_panics() {
        let heap = private_heap(1 << 20);
        let p = heap.try_allocate(64, 16).unwrap();
        // What a forged `ShmVec` would hand back: a pointer into space nothing was ever
        // allocated from, whose all-zero "header" used to pass for a used block of size 0.
        heap.free(RelPtr::new(heap.id(), p.offset() + (256 << 10)));
    }

    #[test]
    fn bad_frees_panic_naming_heap_and_offset_and_change_nothing() {
        let heap = private_heap(1 << 20);
        let keep = heap.try_allocate(100, 16).unwrap();
        let p = heap.try_allocate(300, 16).unwrap();
        let q = heap.try_allocate(50, 64).unwrap();
        heap.free(p);
        let before = heap.stats();
        let name = heap.name().as_str().to_owned();
        for (bad, why) in [
            (p, "double free"),
            (RelPtr::new(heap.id(), q.offset() + 8), "misaligned"),
            (RelPtr::new(heap.id(), q.offset() + 16), "not a block of this heap in use"),
            (RelPtr::new(heap.id(), q.offset() + (512 << 10)), "not a block of this heap in use"),
            (RelPtr::new(heap.id(), 1 << 41), "outside the heap's allocation area"),
        ] {
            let message = panic_message(|| heap.free(bad));
            let offset = format!("offset {:#x}", bad.offset());
            assert!(message.contains(&name), "{message}");
            assert!(message.contains(&offset), "{message}");
            assert!(message.contains(why), "{message}");
            assert_eq!(heap.stats(), before, "counters drifted after: {message}");
            heap.check_integrity().unwrap();
        }
        // The heap still works normally afterwards.
        heap.free(q);
        heap.free(keep);
        assert_eq!(heap.stats().bytes_in_use(), 0);
        assert_eq!(heap.stats().allocations(), 0);
        heap.check_integrity().unwrap();
    }

    /// Statistics are read under the allocator's lock while another thread allocates (this is
    /// what Miri checks: no reference to the control block overlaps a mutation of it).
    #[test]
    fn stats_while_allocating() {
        let heap = private_heap(1 << 20);
        let rounds = if cfg!(miri) { 40 } else { 20_000 };
        std::thread::scope(|scope| {
            let heap = &heap;
            scope.spawn(move || {
                let mut live = Vec::new();
                for i in 0..rounds {
                    live.push(heap.try_allocate(16 + (i * 37) % 700, 16).unwrap());
                    if i % 3 == 2 || live.len() > 64 {
                        heap.free(live.swap_remove(i % live.len()));
                    }
                }
                for p in live {
                    heap.free(p);
                }
            });
            scope.spawn(move || {
                for _ in 0..rounds {
                    let stats = heap.stats();
                    assert!(stats.bytes_in_use() <= stats.capacity());
                    assert!(stats.bytes_in_use() <= stats.high_water());
                    assert!(stats.allocations() * 32 <= stats.bytes_in_use());
                    let _ = format!("{heap:?}");
                }
            });
        });
        assert_eq!(heap.stats().bytes_in_use(), 0);
        heap.check_integrity().unwrap();
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn double_free_panics() {
        let heap = private_heap(1 << 20);
        let p = heap.try_allocate(8, 8).unwrap();
        heap.free(p);
        heap.free(p);
    }

    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn segment_is_sparse() {
        // A 1 GiB heap must not cost 1 GiB: creating it touches only the first pages.
        let heap = Heap::create(1 << 30).unwrap();
        let path = std::path::Path::new("/dev/shm").join(heap.name().as_str());
        let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path).unwrap());
        Segment::unlink(heap.name()).unwrap();
        assert!(blocks * 512 < 1 << 20, "{} bytes committed for a 1 GiB heap", blocks * 512);
    }

    /// A 1 GiB heap commits almost nothing up front, and whatever it hands out (and its own
    /// bookkeeping) is committed before anyone touches it. Wine does not fault on reserved
    /// pages, so the check asks the kernel (`VirtualQuery`) instead of relying on a crash.
    #[test]
    #[cfg(all(windows, not(miri)))]
    fn segment_is_sparse_and_commits_what_it_hands_out() {
        use crate::segment::windows::committed_bytes;
        let heap = Heap::create(1 << 30).unwrap();
        let size = heap.stats().segment_size() as usize;
        let first = heap.try_allocate(16, 16).unwrap();
        let base = heap.address(first).as_ptr().wrapping_sub(first.offset() as usize);
        let base = NonNull::new(base).unwrap();
        let committed_at_start = committed_bytes(base, size);
        assert!(committed_at_start < 1 << 20, "{committed_at_start} bytes committed up front");
        let mut rng = Rng(0x5eed);
        let mut live: Vec<(RelPtr, usize, u8)> = Vec::new();
        for round in 0..1500u32 {
            let byte = (round % 251) as u8;
            match rng.below(4) {
                0 | 1 if live.len() < 100 => {
                    let len = 1 + rng.below(100_000) as usize;
                    let align = 1usize << rng.below(13);
                    let p = heap.try_allocate(len, align).unwrap();
                    let at = heap.address(p);
                    assert_eq!(committed_bytes(at, len), len, "handed out uncommitted memory");
                    fill(&heap, p, len, byte);
                    live.push((p, len, byte));
                }
                2 if !live.is_empty() => {
                    let i = rng.below(live.len() as u64) as usize;
                    let (p, len, old) = live[i];
                    let grown = len + 1 + rng.below(50_000) as usize;
                    if heap.grow_in_place(p, grown) {
                        assert_eq!(committed_bytes(heap.address(p), grown), grown);
                        assert!(holds(&heap, p, len, old));
                        fill(&heap, p, grown, byte);
                        live[i] = (p, grown, byte);
                    }
                }
                _ if !live.is_empty() => {
                    let (p, len, byte) = live.swap_remove(rng.below(live.len() as u64) as usize);
                    assert!(holds(&heap, p, len, byte));
                    heap.free(p);
                }
                _ => {}
            }
        }
        // Everything below the frontier is committed (block headers included), and little more.
        let frontier = heap.committed() as usize;
        assert_eq!(committed_bytes(base, frontier), frontier);
        assert!(committed_bytes(base, size) <= frontier + PAGE as usize);
        assert!(
            frontier as u64 <= heap.stats().high_water() + (2 << 20),
            "frontier {frontier} far above the high-water mark {}",
            heap.stats().high_water()
        );
        heap.check_integrity().unwrap();
        for (p, _, _) in live {
            heap.free(p);
        }
        heap.free(first);
        Segment::unlink(heap.name()).unwrap();
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size(" 16m "), Some(16 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn heap_size_variable_is_checked_with_a_clear_error() {
        assert_eq!(size_from_env("64M").unwrap(), 64 << 20);
        assert_eq!(size_from_env("64K").unwrap(), MIN_HEAP_SIZE);
        for (text, says) in [
            ("abc", "`abc` is not a byte count like 1048576"),
            ("12Q", "`12Q` is not a byte count"),
            ("-5", "`-5` is not a byte count"),
            ("99999999999999999999G", "is not a byte count"),
            ("0", "`0` (0 bytes) is below the minimum heap size of 64 KiB"),
            ("4K", "`4K` (4096 bytes) is below the minimum heap size"),
        ] {
            let err = size_from_env(text).unwrap_err();
            assert!(matches!(err, Error::InvalidOption { option: HEAP_SIZE_ENV, .. }), "{err}");
            let message = err.to_string();
            assert!(message.contains("IPC_HEAP_SIZE") && message.contains(says), "{message}");
        }
    }
}
