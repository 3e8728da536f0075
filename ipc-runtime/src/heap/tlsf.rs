//! A two-level segregated-fit (TLSF) allocator over a byte range addressed by offsets.
//!
//! TLSF keeps free blocks in size classes: a first level of powers of two, each split into 32
//! linear second-level classes, with a bitmap per level. Finding a fitting class is two
//! find-first-set instructions, so `allocate` and `free` run in bounded time whatever the heap's
//! state (no first-fit walk), and rounding a request up to its class wastes at most 1/32.
//!
//! Everything is stored *inside* the region as offsets from the region's base (the segment's
//! start), so the structure is position-independent. The caller serialises all mutation (the
//! heap holds a mutex); statistics are atomics so other processes can read them.
//!
//! Block layout (all offsets and sizes multiples of 16):
//!
//! ```text
//! header  +0   prev_phys  offset of the previous physical block (valid if PREV_FREE)
//!         +8   size|flags payload size; bit 0 FREE, bit 1 PREV_FREE
//! payload +16  ...        for free blocks: next_free at +16, prev_free at +24
//! ```
//!
//! A zero-sized, used sentinel block closes the area so that walking to the next physical block
//! never leaves it.

use std::mem::size_of;
use std::ptr::NonNull;
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

/// Why a free was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The offset is not the payload of a block of this region.
    NotABlock,
    /// The block is already free.
    DoubleFree,
}

/// A TLSF allocator over the region starting at `base`. Cheap to construct; all state lives in
/// the region.
#[derive(Debug, Clone, Copy)]
pub struct Tlsf {
    base: NonNull<u8>,
    control: u64,
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
        let tlsf = Tlsf { base, control };
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
        tlsf.set_size_flags(first, size, FREE);
        tlsf.set_size_flags(sentinel, 0, PREV_FREE);
        tlsf.wr(sentinel, first);
        tlsf.insert_free(first);
        // SAFETY: just written; we hold exclusive access during init.
        unsafe { (*tlsf.control_ptr()).capacity = size + HDR };
        tlsf
    }

    /// An allocator over a region initialised earlier by [`Tlsf::init`].
    ///
    /// # Safety
    /// `init` must have run on this region with the same `control` offset.
    pub unsafe fn attach(base: NonNull<u8>, control: u64) -> Tlsf {
        Tlsf { base, control }
    }

    fn control_ptr(&self) -> *mut Control {
        // SAFETY: `control` lies within the region by the constructors' contracts.
        unsafe { self.base.as_ptr().add(self.control as usize).cast() }
    }

    fn ctl(&self) -> &Control {
        // SAFETY: the control block was initialised by `init`; shared reads of its atomics and
        // of fields only the lock holder writes are sound while the caller holds the lock.
        unsafe { &*self.control_ptr() }
    }

    #[allow(clippy::mut_from_ref)] // the caller's lock provides the exclusivity
    fn ctl_mut(&self) -> &mut Control {
        // SAFETY: callers of mutating methods hold the heap's lock, so no other reference to the
        // control block's non-atomic fields exists.
        unsafe { &mut *self.control_ptr() }
    }

    /// Current counters (atomic reads; callable without the lock).
    pub fn counters(&self) -> Counters {
        let c = self.ctl();
        Counters {
            in_use: c.in_use.load(Ordering::Relaxed),
            high_water: c.high_water.load(Ordering::Relaxed),
            capacity: c.capacity,
            allocations: c.allocations.load(Ordering::Relaxed),
        }
    }

    #[inline]
    fn rd(&self, off: u64) -> u64 {
        // SAFETY: every offset passed here is a block header field inside the area, 8-aligned.
        unsafe { self.base.as_ptr().add(off as usize).cast::<u64>().read() }
    }

    #[inline]
    fn wr(&self, off: u64, value: u64) {
        // SAFETY: as in `rd`; the caller holds the lock, so no one else writes these words.
        unsafe { self.base.as_ptr().add(off as usize).cast::<u64>().write(value) }
    }

    #[inline]
    fn size(&self, b: u64) -> u64 {
        self.rd(b + 8) & !FLAGS
    }

    #[inline]
    fn flags(&self, b: u64) -> u64 {
        self.rd(b + 8) & FLAGS
    }

    #[inline]
    fn set_size_flags(&self, b: u64, size: u64, flags: u64) {
        self.wr(b + 8, size | flags);
    }

    #[inline]
    fn set_size(&self, b: u64, size: u64) {
        self.set_size_flags(b, size, self.flags(b));
    }

    #[inline]
    fn set_flag(&self, b: u64, flag: u64, on: bool) {
        let word = self.rd(b + 8);
        self.wr(b + 8, if on { word | flag } else { word & !flag });
    }

    #[inline]
    fn next_phys(&self, b: u64) -> u64 {
        b + HDR + self.size(b)
    }

    fn insert_free(&self, b: u64) {
        let (fl, sl) = mapping(self.size(b));
        let c = self.ctl_mut();
        let head = c.heads[fl][sl];
        self.wr(b + 16, head);
        self.wr(b + 24, 0);
        if head != 0 {
            self.wr(head + 24, b);
        }
        c.heads[fl][sl] = b;
        c.fl_bitmap |= 1 << fl;
        c.sl_bitmap[fl] |= 1 << sl;
    }

    fn remove_free(&self, b: u64) {
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
    fn find_free(&self, size: u64) -> Option<u64> {
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
    fn trim_trailing(&self, b: u64, size: u64) {
        let have = self.size(b);
        if have >= size + MIN_BLOCK {
            let rest = b + HDR + size;
            self.set_size(b, size);
            // `rest`'s predecessor `b` is about to be (or is) used.
            self.set_size_flags(rest, have - size - HDR, FREE);
            let next = self.next_phys(rest);
            self.wr(next, rest);
            self.set_flag(next, PREV_FREE, true);
            self.merge_next_and_insert(rest);
        }
    }

    fn merge_next_and_insert(&self, b: u64) {
        let next = self.next_phys(b);
        if self.flags(next) & FREE != 0 {
            self.remove_free(next);
            self.set_size(b, self.size(b) + HDR + self.size(next));
            let after = self.next_phys(b);
            self.wr(after, b);
        }
        self.insert_free(b);
    }

    fn mark_used(&self, b: u64) {
        self.set_flag(b, FREE, false);
        let next = self.next_phys(b);
        self.set_flag(next, PREV_FREE, false);
        let c = self.ctl();
        let in_use = c.in_use.load(Ordering::Relaxed) + self.size(b) + HDR;
        c.in_use.store(in_use, Ordering::Relaxed);
        bump(&c.allocations, 1);
        if in_use > c.high_water.load(Ordering::Relaxed) {
            c.high_water.store(in_use, Ordering::Relaxed);
        }
    }

    /// Allocates `size` bytes aligned to `align` (a power of two ≤ [`MAX_ALIGN`]); returns the
    /// payload's offset from the region base, or `None` when no free block is large enough.
    pub fn allocate(&self, size: u64, align: u64) -> Option<u64> {
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
        &self,
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

    /// Checks that `payload` is the payload offset of a used block of this region.
    fn check_used(&self, payload: u64) -> Result<u64, FreeError> {
        let c = self.ctl();
        let b = payload.wrapping_sub(HDR);
        if payload < c.area_start + HDR || payload >= c.area_end || !payload.is_multiple_of(ALIGN) {
            return Err(FreeError::NotABlock);
        }
        let flags = self.flags(b);
        if flags & FREE != 0 {
            return Err(FreeError::DoubleFree);
        }
        let end = b.checked_add(HDR + self.size(b));
        if end.is_none_or(|end| end > c.area_end - HDR) {
            return Err(FreeError::NotABlock);
        }
        Ok(b)
    }

    /// Returns the block whose payload starts at `payload` to the free lists.
    pub fn free(&self, payload: u64) -> Result<(), FreeError> {
        let mut b = self.check_used(payload)?;
        let c = self.ctl();
        bump(&c.in_use, (self.size(b) + HDR).wrapping_neg());
        bump(&c.allocations, u64::MAX);
        self.set_flag(b, FREE, true);
        let next = self.next_phys(b);
        self.set_flag(next, PREV_FREE, true);
        self.wr(next, b);
        if self.flags(b) & PREV_FREE != 0 {
            let prev = self.rd(b);
            self.remove_free(prev);
            self.set_size(prev, self.size(prev) + HDR + self.size(b));
            self.wr(next, prev);
            b = prev;
        }
        self.merge_next_and_insert(b);
        Ok(())
    }

    /// Payload bytes of the used block at `payload` (at least what was asked for).
    pub fn usable_size(&self, payload: u64) -> Result<u64, FreeError> {
        self.check_used(payload).map(|b| self.size(b))
    }

    /// Tries to grow the used block at `payload` to `new_size` bytes without moving it, by
    /// absorbing the following free block. Returns whether it succeeded.
    pub fn grow_in_place(&self, payload: u64, new_size: u64) -> Result<bool, FreeError> {
        self.grow_in_place_with(payload, new_size, &mut |_, _| true)
    }

    /// Like [`grow_in_place`](Tlsf::grow_in_place), calling `commit` first with the range the
    /// growth may touch, as [`allocate_with`](Tlsf::allocate_with) does. Returns `Ok(false)`,
    /// changing nothing, if `commit` returns false.
    pub fn grow_in_place_with(
        &self,
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
        self.set_size(b, have + HDR + self.size(next));
        let after = self.next_phys(b);
        self.set_flag(after, PREV_FREE, false);
        self.trim_trailing(b, new_size);
        let grown = self.size(b) - have;
        let c = self.ctl();
        let in_use = c.in_use.load(Ordering::Relaxed) + grown;
        c.in_use.store(in_use, Ordering::Relaxed);
        if in_use > c.high_water.load(Ordering::Relaxed) {
            c.high_water.store(in_use, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// Walks every block and checks the structural invariants; returns a description of the
    /// first violation. O(blocks): for tests and debugging only.
    pub fn check_integrity(&self) -> Result<(), String> {
        let c = self.ctl();
        let mut b = c.area_start;
        let mut prev_free = false;
        let mut prev = 0;
        let mut used = 0;
        let sentinel = c.area_end - HDR;
        while b != sentinel {
            if b > sentinel {
                return Err(format!("block {b:#x} runs past the sentinel {sentinel:#x}"));
            }
            let flags = self.flags(b);
            if (flags & PREV_FREE != 0) != prev_free {
                return Err(format!("block {b:#x}: PREV_FREE flag wrong"));
            }
            if prev_free && self.rd(b) != prev {
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
                used += self.size(b) + HDR;
            }
            prev_free = free;
            prev = b;
            b = self.next_phys(b);
        }
        if (self.flags(b) & PREV_FREE != 0) != prev_free {
            return Err("sentinel PREV_FREE flag wrong".into());
        }
        let counted = c.in_use.load(Ordering::Relaxed);
        if used != counted {
            return Err(format!("in_use counter {counted} != {used} bytes in used blocks"));
        }
        Ok(())
    }
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
        let r = Region::new(1 << 20);
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
        let r = Region::new(1 << 16);
        let a = r.tlsf.allocate(64, 16).unwrap();
        r.tlsf.free(a).unwrap();
        assert_eq!(r.tlsf.free(a), Err(FreeError::DoubleFree));
        assert_eq!(r.tlsf.free(3), Err(FreeError::NotABlock));
        assert_eq!(r.tlsf.free(1 << 40), Err(FreeError::NotABlock));
        r.tlsf.check_integrity().unwrap();
    }

    #[test]
    fn grow_in_place_uses_following_free_space() {
        let r = Region::new(1 << 20);
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
        let r = Region::new(1 << 16);
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
