//! A two-level segregated-fit (TLSF) allocator over a byte range addressed by offsets.
//!
//! TLSF keeps free blocks in size classes: a first level of powers of two, each split into 32
//! linear second-level classes, with a bitmap per level. Finding a fitting class is two
//! find-first-set instructions, so `allocate` and `free` run in bounded time whatever the heap's
//! state (no first-fit walk), and rounding a request up to its class wastes at most 1/32.
//!
//! Everything is stored *inside* the region as offsets from the region's base (the segment's
//! start), so the structure is position-independent. Mutation takes `&mut self`, so the caller
//! serialises it by construction (the heap keeps its `Tlsf` behind a lock); statistics are
//! atomics so other processes can read them ([`read_counters`]).
//!
//! Block layout (all offsets and sizes multiples of 16):
//!
//! ```text
//! header  +0   prev_phys  offset of the previous physical block (kept for every block)
//!         +8   size|flags payload size (bits 4..40); bit 0 FREE, bit 1 PREV_FREE; bits 40..64
//!                         a check tag of a used block (hash of its offset and size), 0 if free
//! payload +16  ...        for free blocks: next_free at +16, prev_free at +24
//! ```
//!
//! **Frees are validated** against this metadata before anything changes ([`Tlsf::free`]):
//! the offset must be aligned and inside the area, the header must carry a used block's tag
//! for its offset and size, and the next physical block must link back to it and record it as
//! used. A forged, stale or misaligned offset, or a second free of a block, is a [`FreeError`]
//! and leaves the allocator and its counters as they were.
//!
//! A zero-sized, used sentinel block closes the area so that walking to the next physical block
//! never leaves it.

use std::mem::size_of;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};

const ALIGN: u64 = 16;
const ALIGN_LOG2: u32 = 4;
const SL_LOG2: u32 = 5;
const SL_COUNT: usize = 1 << SL_LOG2;
const FL_SHIFT: u32 = SL_LOG2 + ALIGN_LOG2;
const SMALL: u64 = 1 << FL_SHIFT;
/// Blocks are smaller than `1 << FL_MAX` bytes (512 GiB).
const FL_MAX: u32 = 39;
const FL_COUNT: usize = (FL_MAX - FL_SHIFT + 1) as usize;

const HDR: u64 = 16;
const MIN_PAYLOAD: u64 = 16;
const MIN_BLOCK: u64 = HDR + MIN_PAYLOAD;

const FREE: u64 = 1;
const PREV_FREE: u64 = 2;
const FLAGS: u64 = FREE | PREV_FREE;
/// Bits of a header's size word that hold the size (sizes are below `2^FL_MAX`).
const SIZE_MASK: u64 = ((1 << (FL_MAX + 1)) - 1) & !(ALIGN - 1);
/// Bits of a used block's size word that hold its check tag (zero in free blocks).
const TAG_MASK: u64 = !((1 << (FL_MAX + 1)) - 1);

/// Largest alignment `allocate` honours: the page size, to which every mapping is aligned.
pub const MAX_ALIGN: usize = 4096;

/// Largest region the allocator manages.
pub const MAX_REGION: u64 = 1 << FL_MAX;

/// The allocator's control block, stored at the start of the region it manages.
#[repr(C)]
struct Control {
    area_start: u64,
    area_end: u64,
    capacity: u64,
    in_use: AtomicU64,
    high_water: AtomicU64,
    allocations: AtomicU64,
    fl_bitmap: u64,
    sl_bitmap: [u32; FL_COUNT],
    heads: [[u64; SL_COUNT]; FL_COUNT],
}

/// Bytes the control block takes, rounded to 64.
pub const CONTROL_SIZE: u64 = (size_of::<Control>() as u64).next_multiple_of(64);

/// Bytes of overhead per allocation (the block header).
pub const BLOCK_OVERHEAD: u64 = HDR;

/// How far from the region's base [`Tlsf::init`] writes, with the control block at `control`
/// (besides the sentinel header at the end of the area).
pub const fn init_extent(control: u64) -> u64 {
    control + CONTROL_SIZE + MIN_BLOCK
}

/// Statistics read from a control block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes held by live allocations, headers included.
    pub in_use: u64,
    /// Largest `in_use` ever seen.
    pub high_water: u64,
    /// Bytes the area can hand out, counting one header per block.
    pub capacity: u64,
    /// Number of live allocations.
    pub allocations: u64,
}

/// Why a free (or a size query) was refused. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The offset is not a multiple of the allocator's 16-byte granule: no block starts there.
    Misaligned,
    /// The offset lies outside the area the allocator manages.
    OutOfArea,
    /// No block handed out by the allocator starts there (a forged or corrupted offset, or a
    /// block freed long ago whose header has since been overwritten).
    NotABlock,
    /// The block is free: freed before (a double free).
    DoubleFree,
}

/// A TLSF allocator over the region starting at `base`. Cheap to construct; all state lives in
/// the region.
///
/// Every method that changes the allocator takes `&mut self`, and the type is neither `Clone`
/// nor `Copy`: the one value for a region sits behind its owner's lock, which hands out
/// `&mut Tlsf` to one thread at a time, so two references to the control block can never
/// overlap (and reading the counters goes through the lock too).
#[derive(Debug)]
pub struct Tlsf {
    base: NonNull<u8>,
    control: u64,
}

// SAFETY: a `Tlsf` is a pointer to a region that lives at least as long as it (constructors'
// contracts) plus an offset; moving it to another thread moves the exclusive right to mutate
// the region with it (mutation needs `&mut self`).
unsafe impl Send for Tlsf {}

/// Check tag of a used block: a hash of its offset and size in the size word's top bits, so
/// that a header forged by chance (zeros, stale or user bytes) is told apart from one the
/// allocator wrote.
#[inline(always)]
fn tag(b: u64, size: u64) -> u64 {
    (b.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ size.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)) & TAG_MASK
}

#[inline]
fn mapping(size: u64) -> (usize, usize) {
    if size < SMALL {
        (0, (size / (SMALL / SL_COUNT as u64)) as usize)
    } else {
        let fl = 63 - size.leading_zeros();
        let sl = ((size >> (fl - SL_LOG2)) ^ (1 << SL_LOG2)) as usize;
        ((fl - (FL_SHIFT - 1)) as usize, sl)
    }
}

/// Adds `delta` (wrapping) to a counter that only the lock holder writes: a plain load and store,
/// not a read-modify-write, because other processes only ever read these counters.
#[inline]
fn bump(counter: &AtomicU64, delta: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
}

/// Rounds `size` up to the start of the next class so any block in the found class fits.
#[inline]
fn mapping_search(size: u64) -> (usize, usize) {
    if size >= SMALL {
        let fl = 63 - size.leading_zeros();
        mapping(size + (1 << (fl - SL_LOG2)) - 1)
    } else {
        mapping(size)
    }
}

impl Tlsf {
    /// Initialises an allocator whose control block sits at offset `control` of the region at
    /// `base`, managing `[control + CONTROL_SIZE, end)`.
    ///
    /// # Safety
    /// `base..base+end` must be writable memory that nothing else uses, `base` aligned to 64,
    /// `control` a multiple of 64, and `end - control - CONTROL_SIZE >= 2 * MIN_BLOCK`.
    pub unsafe fn init(base: NonNull<u8>, control: u64, end: u64) -> Tlsf {
        let mut tlsf = Tlsf { base, control };
        let start = control + CONTROL_SIZE;
        let end = end.min(start + MAX_REGION - HDR) & !(ALIGN - 1);
        assert!(end >= start + 2 * MIN_BLOCK, "region too small for a heap");
        // SAFETY: the caller guarantees the control block's memory is ours and writable.
        unsafe {
            tlsf.control_ptr().write(Control {
                area_start: start,
                area_end: end,
                capacity: 0,
                in_use: AtomicU64::new(0),
                high_water: AtomicU64::new(0),
                allocations: AtomicU64::new(0),
                fl_bitmap: 0,
                sl_bitmap: [0; FL_COUNT],
                heads: [[0; SL_COUNT]; FL_COUNT],
            });
        }
        // One free block spanning the area, closed by a used zero-size sentinel.
        let first = start;
        let sentinel = end - HDR;
        let size = sentinel - first - HDR;
        tlsf.wr(first, 0);
        tlsf.set_size_flags(first, size, FREE);
        tlsf.set_size_flags(sentinel, 0, PREV_FREE);
        tlsf.wr(sentinel, first);
        tlsf.insert_free(first);
        tlsf.ctl_mut().capacity = size + HDR;
        tlsf
    }

    /// An allocator over a region initialised earlier by [`Tlsf::init`].
    ///
    /// # Safety
    /// `init` must have run on this region with the same `control` offset, the region must stay
    /// mapped for as long as the returned value lives, and no other `Tlsf` may be used to mutate
    /// it meanwhile (the mutating methods take `&mut self`; put the one value behind a lock).
    pub unsafe fn attach(base: NonNull<u8>, control: u64) -> Tlsf {
        Tlsf { base, control }
    }

    fn control_ptr(&self) -> *mut Control {
        // SAFETY: `control` lies within the region by the constructors' contracts.
        unsafe { self.base.as_ptr().add(self.control as usize).cast() }
    }

    fn ctl(&self) -> &Control {
        // SAFETY: the control block was initialised by `init`. A `&Control` lives only as long
        // as a `&self` borrow, and the only `&mut Control` comes from `ctl_mut(&mut self)`, so
        // the borrow checker rules out any overlap within this process (the one `Tlsf` value
        // of a region sits behind the heap's lock, see `attach`).
        unsafe { &*self.control_ptr() }
    }

    fn ctl_mut(&mut self) -> &mut Control {
        // SAFETY: as in `ctl`; `&mut self` makes this the only reference to the control block.
        unsafe { &mut *self.control_ptr() }
    }

    /// Current counters.
    pub fn counters(&self) -> Counters {
        // SAFETY: the region holds an initialised control block (constructors' contracts).
        unsafe { read_counters(self.base, self.control) }
    }

    #[inline]
    fn rd(&self, off: u64) -> u64 {
        // SAFETY: every offset passed here is a block header field inside the area, 8-aligned
        // (callers check offsets that do not come from the allocator's own links).
        unsafe { self.base.as_ptr().add(off as usize).cast::<u64>().read() }
    }

    #[inline]
    fn wr(&mut self, off: u64, value: u64) {
        // SAFETY: as in `rd`; `&mut self` (the heap's lock) means no one else writes these words.
        unsafe { self.base.as_ptr().add(off as usize).cast::<u64>().write(value) }
    }

    #[inline]
    fn size(&self, b: u64) -> u64 {
        self.rd(b + 8) & SIZE_MASK
    }

    #[inline]
    fn flags(&self, b: u64) -> u64 {
        self.rd(b + 8) & FLAGS
    }

    /// Writes a header's size word (any check tag is cleared; see [`Tlsf::mark_used`]).
    #[inline]
    fn set_size_flags(&mut self, b: u64, size: u64, flags: u64) {
        self.wr(b + 8, size | flags);
    }

    #[inline]
    fn set_size(&mut self, b: u64, size: u64) {
        let flags = self.flags(b);
        self.set_size_flags(b, size, flags);
    }

    /// Sets or clears a flag, keeping the rest of the word (a used block's tag included).
    #[inline]
    fn set_flag(&mut self, b: u64, flag: u64, on: bool) {
        let word = self.rd(b + 8);
        self.wr(b + 8, if on { word | flag } else { word & !flag });
    }

    #[inline]
    fn next_phys(&self, b: u64) -> u64 {
        b + HDR + self.size(b)
    }

    fn insert_free(&mut self, b: u64) {
        let (fl, sl) = mapping(self.size(b));
        let head = self.ctl().heads[fl][sl];
        self.wr(b + 16, head);
        self.wr(b + 24, 0);
        if head != 0 {
            self.wr(head + 24, b);
        }
        let c = self.ctl_mut();
        c.heads[fl][sl] = b;
        c.fl_bitmap |= 1 << fl;
        c.sl_bitmap[fl] |= 1 << sl;
    }

    fn remove_free(&mut self, b: u64) {
        let (fl, sl) = mapping(self.size(b));
        let next = self.rd(b + 16);
        let prev = self.rd(b + 24);
        if next != 0 {
            self.wr(next + 24, prev);
        }
        if prev != 0 {
            self.wr(prev + 16, next);
        }
        let c = self.ctl_mut();
        if c.heads[fl][sl] == b {
            c.heads[fl][sl] = next;
            if next == 0 {
                c.sl_bitmap[fl] &= !(1 << sl);
                if c.sl_bitmap[fl] == 0 {
                    c.fl_bitmap &= !(1 << fl);
                }
            }
        }
    }

    /// Finds (and unlinks) a free block of at least `size` payload bytes.
    fn find_free(&mut self, size: u64) -> Option<u64> {
        if size >= MAX_REGION {
            return None;
        }
        let (mut fl, sl) = mapping_search(size);
        if fl >= FL_COUNT {
            return None;
        }
        let c = self.ctl();
        let mut sl_map = c.sl_bitmap[fl] & (u32::MAX << sl);
        if sl_map == 0 {
            let fl_map = if fl + 1 >= 64 { 0 } else { c.fl_bitmap & (u64::MAX << (fl + 1)) };
            if fl_map == 0 {
                return None;
            }
            fl = fl_map.trailing_zeros() as usize;
            sl_map = c.sl_bitmap[fl];
        }
        let sl = sl_map.trailing_zeros() as usize;
        let b = c.heads[fl][sl];
        debug_assert!(b != 0 && self.size(b) >= size);
        self.remove_free(b);
        Some(b)
    }

    /// Splits the tail off used-to-be block `b` so that it keeps `size` payload bytes.
    fn trim_trailing(&mut self, b: u64, size: u64) {
        let have = self.size(b);
        if have >= size + MIN_BLOCK {
            let rest = b + HDR + size;
            self.set_size(b, size);
            // `rest`'s predecessor `b` is about to be (or is) used; its link is kept anyway,
            // so that every block's successor points back at it (what `check_used` relies on).
            self.wr(rest, b);
            self.set_size_flags(rest, have - size - HDR, FREE);
            let next = self.next_phys(rest);
            self.wr(next, rest);
            self.set_flag(next, PREV_FREE, true);
            self.merge_next_and_insert(rest);
        }
    }

    fn merge_next_and_insert(&mut self, b: u64) {
        let next = self.next_phys(b);
        if self.flags(next) & FREE != 0 {
            self.remove_free(next);
            let size = self.size(b) + HDR + self.size(next);
            self.set_size(b, size);
            let after = self.next_phys(b);
            self.wr(after, b);
        }
        self.insert_free(b);
    }

    /// Marks `b` used: clears FREE, stamps the check tag for its current size, updates its
    /// successor's PREV_FREE and the counters.
    fn mark_used(&mut self, b: u64) {
        let size = self.size(b);
        let prev_free = self.flags(b) & PREV_FREE;
        self.wr(b + 8, size | prev_free | tag(b, size));
        let next = b + HDR + size;
        self.set_flag(next, PREV_FREE, false);
        let c = self.ctl();
        let in_use = c.in_use.load(Ordering::Relaxed) + size + HDR;
        c.in_use.store(in_use, Ordering::Relaxed);
        #[cfg(test)]
        thread_account(size + HDR);
        bump(&c.allocations, 1);
        if in_use > c.high_water.load(Ordering::Relaxed) {
            c.high_water.store(in_use, Ordering::Relaxed);
        }
    }

    /// Allocates `size` bytes aligned to `align` (a power of two ≤ [`MAX_ALIGN`]); returns the
    /// payload's offset from the region base, or `None` when no free block is large enough.
    pub fn allocate(&mut self, size: u64, align: u64) -> Option<u64> {
        self.allocate_with(size, align, &mut |_, _| true)
    }

    /// Like [`allocate`](Tlsf::allocate), for a region whose memory must be made usable
    /// before it is first touched (a sparse segment on Windows).
    ///
    /// Before writing anything, calls `commit(start, end)` with the range of offsets that the
    /// allocation may touch — its own bookkeeping and the whole payload handed out. Everything
    /// outside that range that it writes is a block header (with its free-list links) written
    /// before, so a caller that commits every range it is given, plus the first
    /// [`init_extent`] bytes and the last [`BLOCK_OVERHEAD`] bytes of the area (the sentinel),
    /// never touches uncommitted memory.
    /// If `commit` returns false, nothing is changed and the result is `None`.
    pub fn allocate_with(
        &mut self,
        size: u64,
        align: u64,
        commit: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Option<u64> {
        debug_assert!(align.is_power_of_two() && align <= MAX_ALIGN as u64);
        let size = size.checked_next_multiple_of(ALIGN)?.max(MIN_PAYLOAD);
        let b = if align <= ALIGN {
            let b = self.find_free(size)?;
            // The payload, then possibly the remainder's header and free-list links.
            if !commit(b, (b + HDR + size + MIN_BLOCK).min(self.next_phys(b))) {
                self.insert_free(b);
                return None;
            }
            b
        } else {
            // Room for the payload plus a leading gap that is either 0 or at least a block.
            let b = self.find_free(size.checked_add(align + HDR)?)?;
            let payload = b + HDR;
            let mut aligned = payload.next_multiple_of(align);
            if aligned != payload && aligned - payload < MIN_BLOCK {
                aligned += align;
            }
            let gap = aligned - payload;
            if !commit(b, (aligned + size + MIN_BLOCK).min(self.next_phys(b))) {
                self.insert_free(b);
                return None;
            }
            if gap == 0 {
                b
            } else {
                // Leading part stays free; the rest becomes the block we hand out.
                let n = b + gap;
                let n_size = self.size(b) - gap;
                self.set_size(b, gap - HDR);
                self.set_size_flags(n, n_size, FREE | PREV_FREE);
                self.wr(n, b);
                let next = self.next_phys(n);
                self.wr(next, n);
                self.insert_free(b);
                n
            }
        };
        self.trim_trailing(b, size);
        self.mark_used(b);
        Some(b + HDR)
    }

    /// Checks that `payload` is the payload offset of a block this allocator handed out and
    /// that is still in use, against the allocator's own metadata: in the area, aligned, a
    /// header whose size is plausible and whose check tag matches its offset and size, and a
    /// physical successor that links back to it and records it as used. Reads nothing outside
    /// the area, whatever `payload` is. Returns the block's header offset.
    #[inline]
    fn check_used(&self, payload: u64) -> Result<u64, FreeError> {
        if !payload.is_multiple_of(ALIGN) {
            return Err(FreeError::Misaligned);
        }
        let c = self.ctl();
        let sentinel = c.area_end - HDR;
        if payload < c.area_start + HDR || payload > sentinel {
            return Err(FreeError::OutOfArea);
        }
        let b = payload - HDR;
        let word = self.rd(b + 8);
        if word & FREE != 0 {
            return Err(FreeError::DoubleFree);
        }
        let size = word & SIZE_MASK;
        // `b + HDR + size` cannot overflow: b < 2^40 + area and size < 2^40.
        let next = payload + size;
        if size < MIN_PAYLOAD
            || word & !(SIZE_MASK | FLAGS) != tag(b, size)
            || next > sentinel
            || self.rd(next) != b
            || self.rd(next + 8) & PREV_FREE != 0
        {
            return Err(FreeError::NotABlock);
        }
        Ok(b)
    }

    /// Returns the block whose payload starts at `payload` to the free lists. Nothing changes
    /// (counters included) when `payload` is not a block in use (see [`FreeError`]).
    ///
    /// # Errors
    /// [`FreeError::Misaligned`] for an offset no block can start at, [`FreeError::OutOfArea`]
    /// for one outside the area, [`FreeError::DoubleFree`] for a block that is already free,
    /// and [`FreeError::NotABlock`] when the metadata there is not that of a block in use.
    pub fn free(&mut self, payload: u64) -> Result<(), FreeError> {
        let mut b = self.check_used(payload)?;
        let size = self.size(b);
        let c = self.ctl();
        bump(&c.in_use, (size + HDR).wrapping_neg());
        #[cfg(test)]
        thread_account((size + HDR).wrapping_neg());
        bump(&c.allocations, u64::MAX);
        let flags = self.flags(b);
        // Marks it free and clears its tag, so a second free of it is told apart.
        self.set_size_flags(b, size, flags | FREE);
        let next = b + HDR + size;
        self.set_flag(next, PREV_FREE, true);
        self.wr(next, b);
        if flags & PREV_FREE != 0 {
            let prev = self.rd(b);
            self.remove_free(prev);
            let merged = self.size(prev) + HDR + size;
            self.set_size(prev, merged);
            self.wr(next, prev);
            b = prev;
        }
        self.merge_next_and_insert(b);
        Ok(())
    }

    /// Payload bytes of the used block at `payload` (at least what was asked for).
    ///
    /// # Errors
    /// As [`free`](Tlsf::free), when `payload` is not a block in use.
    pub fn usable_size(&self, payload: u64) -> Result<u64, FreeError> {
        self.check_used(payload).map(|b| self.size(b))
    }

    /// Tries to grow the used block at `payload` to `new_size` bytes without moving it, by
    /// absorbing the following free block. Returns whether it succeeded.
    ///
    /// # Errors
    /// As [`free`](Tlsf::free), when `payload` is not a block in use (nothing is changed).
    pub fn grow_in_place(&mut self, payload: u64, new_size: u64) -> Result<bool, FreeError> {
        self.grow_in_place_with(payload, new_size, &mut |_, _| true)
    }

    /// Like [`grow_in_place`](Tlsf::grow_in_place), calling `commit` first with the range the
    /// growth may touch, as [`allocate_with`](Tlsf::allocate_with) does. Returns `Ok(false)`,
    /// changing nothing, if `commit` returns false.
    ///
    /// # Errors
    /// As [`free`](Tlsf::free), when `payload` is not a block in use (nothing is changed).
    pub fn grow_in_place_with(
        &mut self,
        payload: u64,
        new_size: u64,
        commit: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<bool, FreeError> {
        let b = self.check_used(payload)?;
        let Some(new_size) = new_size.checked_next_multiple_of(ALIGN) else { return Ok(false) };
        let have = self.size(b);
        if new_size <= have {
            return Ok(true);
        }
        let next = self.next_phys(b);
        if self.flags(next) & FREE == 0 || have + HDR + self.size(next) < new_size {
            return Ok(false);
        }
        if !commit(next, (payload + new_size + MIN_BLOCK).min(self.next_phys(next))) {
            return Ok(false);
        }
        self.remove_free(next);
        let absorbed = have + HDR + self.size(next);
        self.set_size(b, absorbed);
        let after = self.next_phys(b);
        self.wr(after, b);
        self.set_flag(after, PREV_FREE, false);
        self.trim_trailing(b, new_size);
        // The size changed: stamp the tag again.
        let size = self.size(b);
        let flags = self.flags(b);
        self.wr(b + 8, size | flags | tag(b, size));
        let grown = size - have;
        let c = self.ctl();
        let in_use = c.in_use.load(Ordering::Relaxed) + grown;
        c.in_use.store(in_use, Ordering::Relaxed);
        #[cfg(test)]
        thread_account(grown);
        if in_use > c.high_water.load(Ordering::Relaxed) {
            c.high_water.store(in_use, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// Walks every block and checks the structural invariants; returns a description of the
    /// first violation. O(blocks): for tests and debugging only.
    ///
    /// # Errors
    /// The description of the first violation and where it is: a block (by offset) whose
    /// flags, links or free-list class are wrong, or a counter that disagrees with the blocks.
    pub fn check_integrity(&self) -> Result<(), String> {
        let c = self.ctl();
        let mut b = c.area_start;
        let mut prev_free = false;
        let mut prev = 0;
        let mut used = 0;
        let mut count = 0;
        let sentinel = c.area_end - HDR;
        while b != sentinel {
            if b > sentinel {
                return Err(format!("block {b:#x} runs past the sentinel {sentinel:#x}"));
            }
            let flags = self.flags(b);
            if (flags & PREV_FREE != 0) != prev_free {
                return Err(format!("block {b:#x}: PREV_FREE flag wrong"));
            }
            if b != c.area_start && self.rd(b) != prev {
                return Err(format!("block {b:#x}: prev_phys {:#x} != {prev:#x}", self.rd(b)));
            }
            let free = flags & FREE != 0;
            if free && prev_free {
                return Err(format!("blocks {prev:#x} and {b:#x} are adjacent and both free"));
            }
            if free {
                let (fl, sl) = mapping(self.size(b));
                if c.sl_bitmap[fl] & (1 << sl) == 0 {
                    return Err(format!("free block {b:#x} in an empty class"));
                }
            } else {
                if self.check_used(b + HDR) != Ok(b) {
                    return Err(format!("used block {b:#x} fails the free-time check"));
                }
                used += self.size(b) + HDR;
                count += 1;
            }
            prev_free = free;
            prev = b;
            b = self.next_phys(b);
        }
        if (self.flags(b) & PREV_FREE != 0) != prev_free {
            return Err("sentinel PREV_FREE flag wrong".into());
        }
        if self.rd(b) != prev {
            return Err(format!("sentinel: prev_phys {:#x} != {prev:#x}", self.rd(b)));
        }
        let counted = c.in_use.load(Ordering::Relaxed);
        if used != counted {
            return Err(format!("in_use counter {counted} != {used} bytes in used blocks"));
        }
        let allocations = c.allocations.load(Ordering::Relaxed);
        if count != allocations {
            return Err(format!("allocations counter {allocations} != {count} used blocks"));
        }
        Ok(())
    }
}

/// Reads the counters of the control block at offset `control` of the region at `base`, with
/// atomic loads only and without forming a reference to the rest of the control block: this is
/// how other processes (which map the region read-only while its owner writes it) read them.
///
/// # Safety
/// `base + control` must hold a control block initialised by [`Tlsf::init`], mapped for the
/// duration of the call.
pub unsafe fn read_counters(base: NonNull<u8>, control: u64) -> Counters {
    // SAFETY: the caller guarantees an initialised control block there; only the atomics are
    // referenced, and `capacity` is written once by `init`, before anyone can see the region.
    unsafe {
        let c = base.as_ptr().add(control as usize).cast::<Control>();
        Counters {
            in_use: (*ptr::addr_of!((*c).in_use)).load(Ordering::Relaxed),
            high_water: (*ptr::addr_of!((*c).high_water)).load(Ordering::Relaxed),
            capacity: ptr::addr_of!((*c).capacity).read(),
            allocations: (*ptr::addr_of!((*c).allocations)).load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Bytes this thread's allocations hold, over every heap (`in_use`'s per-thread part).
    static THREAD_IN_USE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn thread_account(delta: u64) {
    THREAD_IN_USE.with(|c| c.set(c.get().wrapping_add(delta)));
}

/// Bytes held by what this thread allocated and has not freed (tests only): leak checks that
/// other tests, using the same heaps on other threads, cannot disturb.
#[cfg(test)]
pub(crate) fn thread_in_use() -> u64 {
    THREAD_IN_USE.with(std::cell::Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{Layout, alloc_zeroed, dealloc};

    struct Region {
        ptr: NonNull<u8>,
        layout: Layout,
        tlsf: Tlsf,
    }

    impl Region {
        fn new(size: usize) -> Region {
            let layout = Layout::from_size_align(size, 4096).unwrap();
            // SAFETY: non-zero size.
            let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
            // SAFETY: fresh exclusive allocation of `size` bytes, page-aligned.
            let tlsf = unsafe { Tlsf::init(ptr, 64, size as u64) };
            Region { ptr, layout, tlsf }
        }
    }

    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
        }
    }

    #[test]
    fn mapping_classes_are_monotonic() {
        let mut last = (0, 0);
        for size in (16..100_000).step_by(16) {
            let class = mapping(size);
            assert!(class >= last, "size {size}");
            last = class;
            let (fl, sl) = mapping_search(size);
            assert!(fl < FL_COUNT && sl < SL_COUNT);
        }
    }

    #[test]
    fn allocate_free_roundtrip_restores_everything() {
        let mut r = Region::new(1 << 20);
        let before = r.tlsf.counters();
        let a = r.tlsf.allocate(100, 8).unwrap();
        let b = r.tlsf.allocate(5000, 64).unwrap();
        let c = r.tlsf.allocate(1, 4096).unwrap();
        assert_eq!(b % 64, 0);
        assert_eq!(c % 4096, 0);
        r.tlsf.check_integrity().unwrap();
        for p in [b, a, c] {
            r.tlsf.free(p).unwrap();
            r.tlsf.check_integrity().unwrap();
        }
        assert_eq!(r.tlsf.counters().in_use, before.in_use);
        // Fully coalesced again: one block covers the area, so a request of all but the
        // class-rounding slack (1/32) succeeds.
        let whole = r.tlsf.counters().capacity - HDR;
        let big = r.tlsf.allocate(whole - whole / 32 - 16, 16).expect("coalesced");
        r.tlsf.free(big).unwrap();
    }

    #[test]
    fn double_free_and_wild_free_are_refused() {
        let mut r = Region::new(1 << 16);
        let a = r.tlsf.allocate(64, 16).unwrap();
        r.tlsf.free(a).unwrap();
        assert_eq!(r.tlsf.free(a), Err(FreeError::DoubleFree));
        assert_eq!(r.tlsf.free(3), Err(FreeError::Misaligned));
        assert_eq!(r.tlsf.free(1 << 40), Err(FreeError::OutOfArea));
        r.tlsf.check_integrity().unwrap();
    }

    #[test]
    fn forged_stale_and_misaligned_frees_change_nothing() {
        let mut r = Region::new(1 << 16);
        let a = r.tlsf.allocate(64, 16).unwrap();
        let b = r.tlsf.allocate(200, 16).unwrap();
        let c = r.tlsf.allocate(64, 16).unwrap();
        let before = r.tlsf.counters();
        // Untouched space past the last block: an all-zero header.
        let untouched = c + 4096;
        assert_eq!(r.tlsf.free(untouched), Err(FreeError::NotABlock));
        // Inside a block's payload, at a granule that holds zeros or the user's bytes.
        assert_eq!(r.tlsf.free(b + 32), Err(FreeError::NotABlock));
        // SAFETY: `b` is a live block of 200 bytes in our region; we write a fake header into it.
        unsafe {
            let fake = r.ptr.as_ptr().add(b as usize + 64).cast::<u64>();
            fake.add(1).write(64); // a used block of 64 bytes: plausible, but no tag
            fake.add(2 + 8).write(b + 64); // and a successor that links back to it
        }
        assert_eq!(r.tlsf.free(b + 80), Err(FreeError::NotABlock));
        assert_eq!(r.tlsf.free(b + 8), Err(FreeError::Misaligned));
        assert_eq!(r.tlsf.free(3), Err(FreeError::Misaligned));
        assert_eq!(r.tlsf.free(16), Err(FreeError::OutOfArea));
        assert_eq!(r.tlsf.free(1 << 40), Err(FreeError::OutOfArea));
        assert_eq!(r.tlsf.free(u64::MAX - 15), Err(FreeError::OutOfArea));
        assert_eq!(r.tlsf.usable_size(b + 32), Err(FreeError::NotABlock));
        assert_eq!(r.tlsf.counters(), before);
        r.tlsf.check_integrity().unwrap();
        // A block freed and merged with its free neighbours is still told apart.
        for p in [a, b] {
            r.tlsf.free(p).unwrap();
        }
        let after = r.tlsf.counters();
        assert_eq!(r.tlsf.free(b), Err(FreeError::DoubleFree));
        assert_eq!(r.tlsf.free(a), Err(FreeError::DoubleFree));
        assert_eq!(r.tlsf.counters(), after);
        r.tlsf.check_integrity().unwrap();
        // Blocks that grew or were split by later allocations still free normally.
        let big = r.tlsf.allocate(32, 16).unwrap();
        assert!(r.tlsf.grow_in_place(big, 100).unwrap());
        r.tlsf.free(big).unwrap();
        r.tlsf.free(c).unwrap();
        assert_eq!(r.tlsf.counters().in_use, 0);
        assert_eq!(r.tlsf.counters().allocations, 0);
        r.tlsf.check_integrity().unwrap();
    }

    #[test]
    fn grow_in_place_uses_following_free_space() {
        let mut r = Region::new(1 << 20);
        let a = r.tlsf.allocate(64, 16).unwrap();
        assert!(r.tlsf.grow_in_place(a, 10_000).unwrap());
        assert!(r.tlsf.usable_size(a).unwrap() >= 10_000);
        let b = r.tlsf.allocate(64, 16).unwrap();
        assert!(!r.tlsf.grow_in_place(a, 1 << 19).unwrap() || b > a);
        r.tlsf.check_integrity().unwrap();
        r.tlsf.free(a).unwrap();
        r.tlsf.free(b).unwrap();
        r.tlsf.check_integrity().unwrap();
        assert_eq!(r.tlsf.counters().in_use, 0);
    }

    #[test]
    fn exhaustion_returns_none() {
        let mut r = Region::new(1 << 16);
        let mut held = Vec::new();
        while let Some(p) = r.tlsf.allocate(1000, 16) {
            held.push(p);
        }
        assert!(!held.is_empty());
        assert!(r.tlsf.allocate(1 << 20, 16).is_none());
        assert!(r.tlsf.allocate(u64::MAX - 8, 16).is_none());
        for p in held {
            r.tlsf.free(p).unwrap();
        }
        r.tlsf.check_integrity().unwrap();
    }
}
