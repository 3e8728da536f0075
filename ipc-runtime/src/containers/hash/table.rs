//! The raw table: SwissTable-style open addressing in one block of the shared heap.
//!
//! # Layout
//!
//! The header ([`RawTable`], 48 bytes, `repr(C)`) holds a [`RelPtr`] to the block, the bucket
//! mask (`buckets - 1`), the number of items, how many more items may go into empty buckets
//! before the table grows (`growth_left`), and the hash seed. The block holds, with no
//! padding in between and the same layout on every platform:
//!
//! ```text
//! [ Slot<K, V>; buckets ] [ control byte; buckets ] [ copy of the first GROUP control bytes ]
//! ```
//!
//! `buckets` is a power of two, at least [`GROUP`] (8). A control byte is `EMPTY` (0xff),
//! `DELETED` (0x80, a tombstone) or, for a full bucket, the top 7 bits of its key's hash (`h2`,
//! 0x00–0x7f). The trailing copy lets a group of 8 control bytes be read at any bucket with one
//! unaligned 8-byte load. This is hashbrown's layout with the "portable" group of 8 (a `u64`
//! used as 8 lanes), chosen over SSE2's 16 so that every build and platform shares one format
//! and one code path.
//!
//! # Probing, and why it always ends
//!
//! A key's probe sequence starts at `hash & mask` and visits groups at triangular strides
//! (8, 16, 24, …). Because the number of groups (`buckets / 8`) is a power of two, the first
//! `buckets / 8` probes visit every group exactly once, so a lookup stops at the first group
//! with an `EMPTY` byte *or* after `buckets / 8` groups, whatever the control bytes say: a
//! reader's lookup in a table another process wrote never loops forever, and every index it
//! forms is `& mask`, inside the block that was resolved (bounds-checked) for `buckets`.
//!
//! # Invariants (checked for a received table by [`RawTable::check`])
//!
//! * `ptr` null ⇔ no block: then the mask, items and `growth_left` are 0;
//! * otherwise `buckets = mask + 1` is a power of two ≥ 8 and the block is
//!   [`block_bytes`]`(buckets)` bytes;
//! * every control byte is `EMPTY`, `DELETED` or `< 0x80`; the trailing copy equals the first 8;
//! * `items` = the number of full buckets, and `items + deleted + growth_left` =
//!   `capacity(buckets)` (7/8 of the buckets).

use core::marker::PhantomData;
use core::mem::{self, align_of, size_of};
use core::ptr;

use crate::error::{Error, Result};
use crate::heap;
use crate::message::InvalidValue;
use crate::message::ShmSafe;
use crate::ptr::RelPtr;

/// Control bytes per group.
pub(super) const GROUP: usize = 8;
/// Control byte of a bucket never used since the last clear.
pub(crate) const EMPTY: u8 = 0xff;
/// Control byte of a bucket whose item was removed (a tombstone: probes go on past it).
pub(super) const DELETED: u8 = 0x80;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Where an insertion put its item (the table's view and the bucket), or the key and value
/// given back with the error when the table could not grow.
pub(super) type Placed<K, V> = core::result::Result<(Raw<K, V>, usize), (K, V, Error)>;

/// One bucket: a key and its value.
#[repr(C)]
pub(super) struct Slot<K, V> {
    pub(super) key: K,
    pub(super) value: V,
}

/// The top 7 bits of a hash: what a full bucket's control byte holds.
#[inline(always)]
pub(super) fn h2(hash: u64) -> u8 {
    (hash >> 57) as u8
}

/// Lanes (bit 7 of each byte) of `group` equal to `byte`: exact, no false positives.
#[inline(always)]
fn match_byte(group: u64, byte: u8) -> u64 {
    let x = group ^ (LO * u64::from(byte));
    !(((x & !HI).wrapping_add(!HI)) | x) & HI
}

/// Lanes that are `EMPTY` (0xff; bits 7 and 6 set: no other valid byte has both).
#[inline(always)]
fn match_empty(group: u64) -> u64 {
    group & (group << 1) & HI
}

/// Lanes that are `EMPTY` or `DELETED` (bit 7 set).
#[inline(always)]
fn match_free(group: u64) -> u64 {
    group & HI
}

/// Lanes that are full (bit 7 clear).
#[inline(always)]
fn match_full(group: u64) -> u64 {
    !group & HI
}

/// Index in the group of the lowest lane set in `mask` (non-zero).
#[inline(always)]
fn lowest(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// How many items `buckets` buckets hold before the table grows: 7/8 of them.
#[inline]
pub(super) const fn capacity_of(buckets: usize) -> usize {
    buckets / 8 * 7
}

/// The fewest buckets (a power of two, at least [`GROUP`]) that hold `items` items.
pub(super) fn buckets_for(items: usize) -> Option<usize> {
    if items <= capacity_of(GROUP) {
        return Some(GROUP);
    }
    let adjusted = items.checked_mul(8)? / 7;
    adjusted.checked_next_power_of_two()
}

/// Bytes of the block of a table of `buckets` buckets, and the offset of its control bytes;
/// `None` if that does not fit this platform (or `isize`).
#[inline]
pub(super) fn block_bytes<K, V>(buckets: u64) -> Option<(usize, usize)> {
    let slots = buckets.checked_mul(size_of::<Slot<K, V>>() as u64)?;
    let total = slots.checked_add(buckets)?.checked_add(GROUP as u64)?;
    let total = usize::try_from(total).ok().filter(|&t| t <= isize::MAX as usize)?;
    Some((total, slots as usize))
}

#[cold]
#[track_caller]
pub(super) fn fail(err: Error) -> ! {
    panic!("{err}")
}

/// A resolved table: addresses of its slots and control bytes in this process.
pub(super) struct Raw<K, V> {
    slots: *mut Slot<K, V>,
    ctrl: *mut u8,
    mask: usize,
}

impl<K, V> Clone for Raw<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Raw<K, V> {}

impl<K, V> Raw<K, V> {
    #[inline(always)]
    pub(super) fn buckets(&self) -> usize {
        self.mask + 1
    }

    #[cfg(test)]
    pub(super) fn ctrl_ptr_for_tests(&self) -> *mut u8 {
        self.ctrl
    }

    /// The group of 8 control bytes starting at bucket `pos` (`pos < buckets`).
    #[inline(always)]
    fn group(&self, pos: usize) -> u64 {
        debug_assert!(pos <= self.mask);
        // SAFETY: `pos <= mask`, and the block holds `buckets + GROUP` control bytes.
        u64::from_le(unsafe { self.ctrl.add(pos).cast::<u64>().read_unaligned() })
    }

    /// The control byte of bucket `i` (`i < buckets`).
    #[inline(always)]
    pub(super) fn ctrl(&self, i: usize) -> u8 {
        debug_assert!(i <= self.mask);
        // SAFETY: `i <= mask < buckets + GROUP`.
        unsafe { self.ctrl.add(i).read() }
    }

    /// Address of the slot of bucket `i` (`i < buckets`).
    #[inline(always)]
    pub(super) fn slot(&self, i: usize) -> *mut Slot<K, V> {
        debug_assert!(i <= self.mask);
        // SAFETY: `i < buckets`: inside the slot array.
        unsafe { self.slots.add(i) }
    }

    /// The bucket holding a key for which `eq` holds, probing from `hash`: at most
    /// `buckets / GROUP` groups (see the module docs), every index `& mask`.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(&K) -> bool) -> Option<usize> {
        let h2 = h2(hash);
        let mut pos = hash as usize & self.mask;
        let mut stride = 0;
        for _ in 0..self.buckets() / GROUP {
            let group = self.group(pos);
            let mut m = match_byte(group, h2);
            while m != 0 {
                let i = (pos + lowest(m)) & self.mask;
                // SAFETY: the control byte of bucket `i` is `h2 < 0x80`, a full bucket: its
                // slot holds an initialised key (for a table of another process: the check at
                // receive saw it so; see `RawTable::check`).
                if eq(unsafe { &(*self.slot(i)).key }) {
                    return Some(i);
                }
                m &= m - 1;
            }
            if match_empty(group) != 0 {
                return None;
            }
            stride += GROUP;
            pos = (pos + stride) & self.mask;
        }
        None
    }

    /// The first free (empty or deleted) bucket on `hash`'s probe sequence, if any (there is
    /// one while the invariants hold: `growth_left` keeps an empty bucket).
    #[inline]
    fn find_free(&self, hash: u64) -> Option<usize> {
        let mut pos = hash as usize & self.mask;
        let mut stride = 0;
        for _ in 0..self.buckets() / GROUP {
            let m = match_free(self.group(pos));
            if m != 0 {
                return Some((pos + lowest(m)) & self.mask);
            }
            stride += GROUP;
            pos = (pos + stride) & self.mask;
        }
        None
    }

    /// Sets the control byte of bucket `i` and its copy after the end.
    ///
    /// # Safety
    /// The block is writable (this process's own), `i < buckets`.
    #[inline(always)]
    unsafe fn set_ctrl(&self, i: usize, byte: u8) {
        let mirror = (i.wrapping_sub(GROUP) & self.mask) + GROUP;
        // SAFETY: both indices are below `buckets + GROUP`; the caller vouches for the rest.
        unsafe {
            self.ctrl.add(i).write(byte);
            self.ctrl.add(mirror).write(byte);
        }
    }

    /// Iterator over the full buckets.
    pub(super) fn full_buckets(&self, items: usize) -> RawIter<K, V> {
        // At most one item per bucket, whatever a header of another process says: a size hint
        // never exceeds what the resolved block can hold.
        let left = items.min(self.buckets());
        RawIter { raw: Some(*self), next_pos: 0, base: 0, bits: 0, left }
    }
}

/// Indices of the full buckets of a resolved table, at most `left` of them, group by group.
pub(super) struct RawIter<K, V> {
    raw: Option<Raw<K, V>>,
    /// The next group to load.
    next_pos: usize,
    /// The group whose full lanes are in `bits`.
    base: usize,
    bits: u64,
    left: usize,
}

impl<K, V> Clone for RawIter<K, V> {
    fn clone(&self) -> Self {
        RawIter { ..*self }
    }
}

impl<K, V> RawIter<K, V> {
    pub(super) const EMPTY: Self = RawIter { raw: None, next_pos: 0, base: 0, bits: 0, left: 0 };

    pub(super) fn raw(&self) -> Option<&Raw<K, V>> {
        self.raw.as_ref()
    }

    pub(super) fn left(&self) -> usize {
        self.left
    }
}

impl<K, V> Iterator for RawIter<K, V> {
    /// The bucket and its slot's address.
    type Item = (usize, *mut Slot<K, V>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.raw.as_ref()?;
        if self.left == 0 {
            return None;
        }
        while self.bits == 0 {
            if self.next_pos > raw.mask {
                // Fewer full buckets than the header said (a table of another process).
                self.left = 0;
                return None;
            }
            self.bits = match_full(raw.group(self.next_pos));
            self.base = self.next_pos;
            self.next_pos += GROUP;
        }
        let i = self.base + lowest(self.bits);
        self.bits &= self.bits - 1;
        self.left -= 1;
        Some((i, raw.slot(i)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// The header of a table in shared memory. See the module docs.
#[repr(C)]
pub(super) struct RawTable<K: ShmSafe, V: ShmSafe> {
    ptr: RelPtr,
    bucket_mask: u64,
    items: u64,
    growth_left: u64,
    seed: u64,
    _marker: PhantomData<Slot<K, V>>,
}

impl<K: ShmSafe, V: ShmSafe> RawTable<K, V> {
    /// An empty table (no block) with hash seed `seed`.
    pub(super) const fn new(seed: u64) -> Self {
        RawTable {
            ptr: RelPtr::NULL,
            bucket_mask: 0,
            items: 0,
            growth_left: 0,
            seed,
            _marker: PhantomData,
        }
    }

    #[inline(always)]
    pub(super) fn seed(&self) -> u64 {
        self.seed
    }

    /// The number of items the header claims (`usize::MAX` if that does not fit).
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        usize::try_from(self.items).unwrap_or(usize::MAX)
    }

    pub(super) fn rel_ptr(&self) -> RelPtr {
        self.ptr
    }

    /// Items the table holds before it must grow (`len + growth_left`, as the owner keeps
    /// it; 0 without a block).
    pub(super) fn capacity(&self) -> usize {
        if self.ptr.is_null() { 0 } else { capacity_of(self.bucket_mask as usize + 1) }
    }

    #[cold]
    pub(super) fn corrupt(&self, what: &str) -> Error {
        Error::Corrupted {
            what: format!(
                "ShmHashMap at {}+{:#x}: {what} (buckets {}, items {})",
                crate::ptr::table().describe(self.ptr.segment()),
                self.ptr.offset(),
                self.bucket_mask.wrapping_add(1),
                self.items
            ),
        }
    }

    /// The largest bucket mask whose block fits this platform's `isize` (`buckets * (slot size
    /// + 1) + GROUP` bytes), so that a mask checked against it needs no overflow checks.
    const MAX_MASK: u64 = {
        let limit = (isize::MAX as u64 - GROUP as u64) / (size_of::<Slot<K, V>>() as u64 + 1);
        // The mask of the largest power of two of buckets within the limit.
        (1u64 << (63 - limit.leading_zeros())) - 1
    };

    /// The table resolved for reading, from the header read once (so a header another process
    /// changes meanwhile is never half-used): `None` without a block. Bounds-checked for the
    /// whole block, and under the trust rule of [`RelPtr::resolve_held`].
    #[inline]
    pub(super) fn view(&self) -> Result<Option<Raw<K, V>>> {
        // Volatile: each field is read exactly once, even if the compiler would rather read it
        // again later (another process may change it in between).
        // SAFETY: both fields are plain integers of `self`, readable and aligned.
        let (ptr, mask) = unsafe {
            (
                ptr::addr_of!(self.ptr).read_volatile(),
                ptr::addr_of!(self.bucket_mask).read_volatile(),
            )
        };
        if ptr.is_null() {
            return Ok(None);
        }
        // A power of two of at least GROUP buckets, whose block fits `isize`.
        if mask & mask.wrapping_add(1) != 0 || mask < GROUP as u64 - 1 || mask > Self::MAX_MASK {
            return Err(self.corrupt(
                "bucket count is not a power of two of at least 8 that fits this platform",
            ));
        }
        let buckets = mask as usize + 1;
        let ctrl_at = buckets * size_of::<Slot<K, V>>();
        let bytes = ctrl_at + buckets + GROUP;
        let holder = (self as *const Self).cast::<u8>();
        let base = ptr.resolve_held(holder, bytes, align_of::<Slot<K, V>>())?.as_ptr();
        Ok(Some(Raw {
            slots: base.cast(),
            // SAFETY: `ctrl_at < bytes`, inside the resolved block.
            ctrl: unsafe { base.add(ctrl_at) },
            mask: mask as usize,
        }))
    }

    /// [`view`](Self::view), panicking with the error.
    #[inline]
    #[track_caller]
    pub(super) fn view_or_panic(&self) -> Option<Raw<K, V>> {
        self.view().unwrap_or_else(|e| fail(e))
    }

    /// The table resolved for writing (this process's own block; see `ShmVec::data_mut` for
    /// why the shortcut into our own heap checks only the start: a `&mut` table lies in memory
    /// only this process writes, so its header is what this code stored).
    #[inline(always)]
    pub(super) fn view_mut(&mut self) -> Option<Raw<K, V>> {
        if self.ptr.is_null() {
            return None;
        }
        let mask = self.bucket_mask as usize;
        let ctrl_at = (mask + 1) * size_of::<Slot<K, V>>();
        let base = match heap::own_address(self.ptr) {
            Some(p) => p.as_ptr(),
            None => self.view_mut_slow(),
        };
        // SAFETY: the block is `ctrl_at + buckets + GROUP` bytes.
        Some(Raw { slots: base.cast(), ctrl: unsafe { base.add(ctrl_at) }, mask })
    }

    #[cold]
    #[inline(never)]
    fn view_mut_slow(&self) -> *mut u8 {
        let buckets = self.bucket_mask.wrapping_add(1);
        let Some((bytes, _)) = block_bytes::<K, V>(buckets) else {
            fail(self.corrupt("bucket count too large for this platform"))
        };
        match self.ptr.resolve_mut(bytes, align_of::<Slot<K, V>>()) {
            Ok(p) => p.as_ptr(),
            Err(e) => fail(e),
        }
    }

    /// Full buckets, for reading (panics on a table that does not resolve).
    pub(super) fn iter(&self) -> RawIter<K, V> {
        match self.view_or_panic() {
            Some(raw) => raw.full_buckets(self.len()),
            None => RawIter::EMPTY,
        }
    }

    /// Full buckets, for reading, or the error resolving the table.
    pub(super) fn try_iter(&self) -> Result<RawIter<K, V>> {
        Ok(match self.view()? {
            Some(raw) => raw.full_buckets(self.len()),
            None => RawIter::EMPTY,
        })
    }

    /// Full buckets, for writing.
    pub(super) fn iter_mut(&mut self) -> RawIter<K, V> {
        let items = self.len();
        match self.view_mut() {
            Some(raw) => raw.full_buckets(items),
            None => RawIter::EMPTY,
        }
    }

    /// The bucket of the key `eq` accepts, for reading.
    #[inline]
    pub(super) fn find(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
    ) -> Result<Option<(Raw<K, V>, usize)>> {
        Ok(match self.view()? {
            Some(raw) => raw.find(hash, eq).map(|i| (raw, i)),
            None => None,
        })
    }

    /// The bucket of the key `eq` accepts, for writing.
    #[inline]
    pub(super) fn find_mut(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
    ) -> Option<(Raw<K, V>, usize)> {
        let raw = self.view_mut()?;
        raw.find(hash, eq).map(|i| (raw, i))
    }

    /// Inserts a key known to be absent, growing first if needed; returns its bucket, or gives
    /// the key and value back with the error when the heap is out of memory.
    #[inline]
    pub(super) fn insert_new(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        hasher: impl Fn(&K) -> u64,
    ) -> Placed<K, V> {
        let free =
            |table: &mut Self| table.view_mut().and_then(|raw| Some((raw, raw.find_free(hash)?)));
        let mut found = free(self);
        let needs_room = match found {
            None => true,
            // A tombstone is reused without growing; an empty bucket needs room.
            Some((raw, i)) => self.growth_left == 0 && raw.ctrl(i) == EMPTY,
        };
        if needs_room {
            if let Err(e) = self.reserve(1, &hasher) {
                return Err((key, value, e));
            }
            found = free(self);
        }
        let Some((raw, i)) = found else { fail(self.corrupt("no free bucket after growing")) };
        let old = raw.ctrl(i);
        // SAFETY: our own block (view_mut); bucket `i` is free, so its slot holds nothing.
        unsafe {
            raw.slot(i).write(Slot { key, value });
            raw.set_ctrl(i, h2(hash));
        }
        self.growth_left -= u64::from(old == EMPTY);
        self.items += 1;
        Ok((raw, i))
    }

    /// Takes the item out of full bucket `i` (found in this table, which has not changed since).
    ///
    /// # Safety
    /// `raw` is this table's [`view_mut`](Self::view_mut) and bucket `i` is full.
    pub(super) unsafe fn take(&mut self, raw: Raw<K, V>, i: usize) -> (K, V) {
        // As hashbrown: a bucket may become EMPTY again (and count as room) only if no probe
        // sequence can have passed it while looking further: that is, if the 8 buckets around
        // it hold an empty one within any window of 8 containing it.
        let before = match_empty(raw.group(i.wrapping_sub(GROUP) & raw.mask));
        let after = match_empty(raw.group(i));
        let empty_before = (before.leading_zeros() / 8) as usize;
        let empty_after = (after.trailing_zeros() / 8) as usize;
        let byte = if empty_before + empty_after >= GROUP {
            DELETED
        } else {
            self.growth_left += 1;
            EMPTY
        };
        // SAFETY: as the caller promised; the item is read out once, then its bucket is free.
        let slot = unsafe {
            raw.set_ctrl(i, byte);
            raw.slot(i).read()
        };
        self.items -= 1;
        (slot.key, slot.value)
    }

    /// Takes the item out of full bucket `i`, leaving a tombstone (for draining, where the
    /// whole table is emptied afterwards anyway).
    ///
    /// # Safety
    /// As for [`take`](Self::take).
    pub(super) unsafe fn take_leaving_tombstone(&mut self, raw: Raw<K, V>, i: usize) -> (K, V) {
        // SAFETY: as the caller promised; the item is read out once, then its bucket is free.
        let slot = unsafe {
            raw.set_ctrl(i, DELETED);
            raw.slot(i).read()
        };
        self.items -= 1;
        (slot.key, slot.value)
    }

    /// Makes room for `additional` more items without growing again.
    pub(super) fn reserve(&mut self, additional: usize, hasher: impl Fn(&K) -> u64) -> Result<()> {
        if (additional as u64) <= self.growth_left {
            return Ok(());
        }
        let items = self.len();
        let needed = items.checked_add(additional).ok_or_else(overflow)?;
        let full = self.capacity();
        // Mostly tombstones: rebuild at the same size; otherwise at least double.
        let target = if needed <= full / 2 { full } else { needed.max(full + 1) };
        let buckets = buckets_for(target).ok_or_else(overflow)?;
        self.resize(buckets, hasher)
    }

    /// Shrinks the table as far as its items and `min_capacity` allow.
    pub(super) fn shrink_to(
        &mut self,
        min_capacity: usize,
        hasher: impl Fn(&K) -> u64,
    ) -> Result<()> {
        let target = self.len().max(min_capacity);
        if target == 0 {
            self.free_block();
            self.growth_left = 0;
            self.bucket_mask = 0;
            return Ok(());
        }
        let buckets = buckets_for(target).ok_or_else(overflow)?;
        if self.ptr.is_null() || buckets < self.bucket_mask as usize + 1 {
            self.resize(buckets, hasher)?;
        }
        Ok(())
    }

    /// Moves every item into a new block of `buckets` buckets (an error leaves the table as it
    /// was; so does a panic in `hasher`).
    fn resize(&mut self, buckets: usize, hasher: impl Fn(&K) -> u64) -> Result<()> {
        let mut new = RawTable::<K, V>::new(self.seed);
        new.allocate(buckets)?;
        // Until every item is moved, the new table owns none of them: on a panic, its block is
        // freed and nothing dropped.
        struct Guard<'a, K: ShmSafe, V: ShmSafe>(&'a mut RawTable<K, V>);
        impl<K: ShmSafe, V: ShmSafe> Drop for Guard<'_, K, V> {
            fn drop(&mut self) {
                self.0.free_block();
            }
        }
        let guard = Guard(&mut new);
        let dst = guard.0.view_mut().expect("allocated");
        for (_, src) in self.iter_mut() {
            // SAFETY: `src` is a full slot of our own table.
            let hash = hasher(unsafe { &(*src).key });
            let Some(i) = dst.find_free(hash) else {
                fail(self.corrupt("resizing: no free bucket"))
            };
            // SAFETY: `i` is free in the new table (nothing is ever removed from it here);
            // the item is copied bitwise, and the old table forgets it below.
            unsafe {
                ptr::copy_nonoverlapping(src, dst.slot(i), 1);
                dst.set_ctrl(i, h2(hash));
            }
        }
        mem::forget(guard);
        new.items = self.items;
        new.growth_left = capacity_of(buckets) as u64 - self.items;
        // The items now belong to `new`: free the old block without dropping them.
        self.free_block();
        *self = new;
        Ok(())
    }

    /// Gives the table a fresh block of `buckets` buckets, all empty (the table has none).
    fn allocate(&mut self, buckets: usize) -> Result<()> {
        debug_assert!(self.ptr.is_null() && buckets.is_power_of_two() && buckets >= GROUP);
        let (bytes, ctrl_at) = block_bytes::<K, V>(buckets as u64).ok_or_else(overflow)?;
        let heap = heap::default_heap()?;
        let ptr = heap.try_allocate(bytes, align_of::<Slot<K, V>>())?;
        let base = heap.address(ptr).as_ptr();
        // SAFETY: a fresh block of `bytes = ctrl_at + buckets + GROUP` bytes of our heap.
        unsafe { ptr::write_bytes(base.add(ctrl_at), EMPTY, buckets + GROUP) };
        self.ptr = ptr;
        self.bucket_mask = buckets as u64 - 1;
        self.items = 0;
        self.growth_left = capacity_of(buckets) as u64;
        Ok(())
    }

    /// Frees the block without dropping what it holds; the table is left without one.
    fn free_block(&mut self) {
        if !self.ptr.is_null() {
            heap::free(self.ptr);
        }
        self.ptr = RelPtr::NULL;
        self.bucket_mask = 0;
        self.items = 0;
        self.growth_left = 0;
    }

    /// Drops every item and marks every bucket empty, keeping the block.
    pub(super) fn clear(&mut self) {
        let Some(raw) = self.view_mut() else { return };
        if mem::needs_drop::<Slot<K, V>>() {
            for (i, slot) in self.iter_mut() {
                // Forget the item before dropping it: a panicking drop leaks the rest but
                // never drops one twice.
                // SAFETY: our own block; bucket `i` is full.
                unsafe { raw.set_ctrl(i, DELETED) };
                self.items -= 1;
                // SAFETY: the item is initialised and no longer counted.
                unsafe { ptr::drop_in_place(slot) };
            }
        }
        // SAFETY: our own block of `buckets + GROUP` control bytes.
        unsafe { ptr::write_bytes(raw.ctrl, EMPTY, raw.buckets() + GROUP) };
        self.items = 0;
        self.growth_left = capacity_of(raw.buckets()) as u64;
    }

    /// Removes the items for which `keep` returns false.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let Some(raw) = self.view_mut() else { return };
        for (i, slot) in self.iter_mut() {
            // SAFETY: our own block; bucket `i` is full (removing others does not change that).
            let kept = unsafe { keep(&(*slot).key, &mut (*slot).value) };
            if !kept {
                // SAFETY: as above.
                drop(unsafe { self.take(raw, i) });
            }
        }
    }

    /// A copy of this table (which may be another process's: it is read through one snapshot
    /// of each control byte, so the copy is consistent whatever that process does meanwhile).
    pub(super) fn try_clone(&self) -> Result<Self>
    where
        K: Clone,
        V: Clone,
    {
        let mut new = RawTable::new(self.seed);
        let Some(src) = self.view()? else { return Ok(new) };
        new.allocate(src.buckets())?;
        let dst = new.view_mut().expect("allocated");
        let mut deleted = 0u64;
        for i in 0..src.buckets() {
            let byte = src.ctrl(i);
            if byte < 0x80 {
                // SAFETY: a full bucket's slot holds an item (checked at receive for another
                // process's table).
                let item = unsafe { &*src.slot(i) };
                let copy = Slot { key: item.key.clone(), value: item.value.clone() };
                // SAFETY: our own fresh block; bucket `i` is empty in it.
                unsafe {
                    dst.slot(i).write(copy);
                    dst.set_ctrl(i, byte);
                }
                new.items += 1;
            } else if byte == DELETED {
                // SAFETY: as above.
                unsafe { dst.set_ctrl(i, DELETED) };
                deleted += 1;
            }
        }
        new.growth_left = (capacity_of(src.buckets()) as u64).saturating_sub(new.items + deleted);
        Ok(new)
    }

    /// Checks a table another process wrote, at `value` (the receive-time check; see the
    /// module docs for what is checked), and each item with `check_item`.
    ///
    /// # Safety
    /// `value` points to `size_of::<Self>()` readable, initialised bytes (maybe unaligned).
    pub(super) unsafe fn check(
        value: *const Self,
        mut check_item: impl FnMut(*const Slot<K, V>) -> core::result::Result<(), InvalidValue>,
    ) -> core::result::Result<(), InvalidValue> {
        // SAFETY: as the caller promised; every field is plain integers, valid whatever the bits.
        let (ptr, mask, items, growth_left) = unsafe {
            (
                ptr::addr_of!((*value).ptr).read_unaligned(),
                ptr::addr_of!((*value).bucket_mask).read_unaligned(),
                ptr::addr_of!((*value).items).read_unaligned(),
                ptr::addr_of!((*value).growth_left).read_unaligned(),
            )
        };
        let bad = |found: String, expected: &str| Err(InvalidValue::new(found, expected));
        if ptr.is_null() {
            if (mask, items, growth_left) != (0, 0, 0) {
                return bad(
                    format!(
                        "no buckets with a mask of {mask:#x}, {items} items, {growth_left} to grow"
                    ),
                    "an empty table without buckets",
                );
            }
            return Ok(());
        }
        let buckets = mask.wrapping_add(1);
        if !buckets.is_power_of_two() || buckets < GROUP as u64 {
            return bad(format!("{buckets} buckets"), "a power of two of at least 8 buckets");
        }
        let Some((bytes, ctrl_at)) = block_bytes::<K, V>(buckets) else {
            return bad(format!("{buckets} buckets"), "a bucket count that fits in memory");
        };
        let base =
            ptr.resolve_held(value.cast(), bytes, align_of::<Slot<K, V>>()).map_err(|err| {
                InvalidValue::new(
                    format!("a pointer that does not resolve ({err})"),
                    "a pointer into its publisher's heap",
                )
            })?;
        let buckets = buckets as usize;
        let raw = Raw::<K, V> {
            slots: base.as_ptr().cast(),
            // SAFETY: `ctrl_at < bytes`, inside the resolved block.
            ctrl: unsafe { base.as_ptr().add(ctrl_at) },
            mask: buckets - 1,
        };
        let (mut full, mut deleted) = (0u64, 0u64);
        for i in 0..buckets + GROUP {
            // SAFETY: `i < buckets + GROUP`, inside the block. Each byte is read once here.
            let byte = unsafe { raw.ctrl.add(i).read() };
            if i >= buckets {
                if byte != raw.ctrl(i - buckets) {
                    return bad(
                        format!(
                            "control byte {byte:#04x} at {i}, a copy of bucket {}'s",
                            i - buckets
                        ),
                        "a copy equal to the bucket's own control byte",
                    );
                }
                continue;
            }
            match byte {
                EMPTY => {}
                DELETED => deleted += 1,
                0..0x80 => {
                    full += 1;
                    check_item(raw.slot(i)).map_err(|e| e.at_index(i))?;
                }
                _ => {
                    return bad(
                        format!("control byte {byte:#04x} at bucket {i}"),
                        "0xff (empty), 0x80 (deleted) or below 0x80 (full)",
                    );
                }
            }
        }
        if full != items {
            return bad(
                format!("{items} items in {full} full buckets"),
                "as many items as full buckets",
            );
        }
        let capacity = capacity_of(buckets) as u64;
        if items.checked_add(deleted).and_then(|n| n.checked_add(growth_left)) != Some(capacity) {
            return bad(
                format!(
                    "{items} items, {deleted} deleted and {growth_left} to grow in {buckets} buckets"
                ),
                &format!("a total of {capacity} (7/8 of the buckets)"),
            );
        }
        Ok(())
    }
}

fn overflow() -> Error {
    Error::CapacityOverflow { what: "ShmHashMap capacity" }
}

impl<K: ShmSafe, V: ShmSafe> Drop for RawTable<K, V> {
    fn drop(&mut self) {
        if mem::needs_drop::<Slot<K, V>>() {
            for (_, slot) in self.iter_mut() {
                // SAFETY: a full bucket of our own table; dropped once, then the block goes.
                unsafe { ptr::drop_in_place(slot) };
            }
        }
        self.free_block();
    }
}

// Reads through a `Raw` go to shared memory that only the owner writes; the raw pointers are
// addresses of a mapping that lives as long as the process (module docs of `crate::ptr`).
// SAFETY: the iterator only hands out what `&`/`&mut` of the table would.
unsafe impl<K: Sync, V: Sync> Sync for RawIter<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send, V: Send> Send for RawIter<K, V> {}
