//! [`ShmVec`]: a growable array in the shared heap.

use core::borrow::{Borrow, BorrowMut};
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop, align_of, size_of};
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};
use core::slice;

use crate::error::{Error, Result};
use crate::heap;
use crate::message::{ShmSafe, fingerprint};
use crate::ptr::RelPtr;

/// A contiguous growable array in shared memory, with the API and feel of [`Vec`].
///
/// The elements live in this process's shared heap; the `ShmVec` itself is 32 bytes of plain data
/// (a [`RelPtr`], the length and the capacity: nothing process-local, no address), so it can sit
/// inside a message, inside another `ShmVec`, or be moved freely, and every process that maps the
/// heap reads the same elements.
///
/// Only the process that allocated the buffer may grow or free it; other processes get `&ShmVec`
/// through a [`Sample`](crate) and read it through a read-only mapping. Cloning in another
/// process makes an independent copy in that process's own heap.
///
/// ```
/// use ipc_runtime::ShmVec;
///
/// let mut v = ShmVec::new();
/// v.push(1u32);
/// v.extend_from_slice(&[2, 3]);
/// v.insert(0, 0);
/// assert_eq!(v, [0, 1, 2, 3]);
/// assert_eq!(v.iter().sum::<u32>(), 6);
/// assert_eq!(v.pop(), Some(3));
/// ```
///
/// Deref to a slice is bounds-checked against the heap segment: a `ShmVec` whose pointer was
/// corrupted (by a bug or another process) panics with a message naming the segment, instead of
/// reading wild memory; [`try_as_slice`](Self::try_as_slice) returns that as an error. A
/// `ShmVec` read from another process's memory may only point into that process's segment
/// that holds it (see [`RelPtr::resolve_held`]), and its length and capacity must fit this
/// platform's `usize` (a 32-bit reader of a 64-bit writer's vector gets an error, never a
/// truncated length).
#[repr(C)]
pub struct ShmVec<T: ShmSafe> {
    ptr: RelPtr,
    len: u64,
    cap: u64,
    _marker: PhantomData<T>,
}

// SAFETY: the vector holds only a relocatable pointer and two counters; its elements are ShmSafe.
unsafe impl<T: ShmSafe> ShmSafe for ShmVec<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::str(T::LAYOUT_FINGERPRINT, "ShmVec"),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    // Where a subscriber receives the message (not at each deref), the pointer and length must
    // resolve, through the same bounds-checked resolution as a deref, and elements with invalid
    // bit patterns are checked, every one: a forged vector is an invalid message, not a panic
    // at the reader's first use.
    const MAY_BE_INVALID: bool = true;
    unsafe fn check_bits(value: *const Self) -> Result<(), crate::message::InvalidValue> {
        // SAFETY: the caller vouches for the vector's bytes.
        let (ptr, len, cap) = unsafe { Self::raw_parts(value) };
        crate::message::validity::elements::<T>(value.cast(), ptr, len, cap, true)
    }
}

impl<T: ShmSafe> ShmVec<T> {
    /// The pointer, length and capacity of the vector at `value`, read without a reference
    /// (for validity checks of bytes another process wrote).
    ///
    /// # Safety
    /// `value` points to `size_of::<Self>()` readable, initialised bytes (maybe unaligned).
    pub(crate) unsafe fn raw_parts(value: *const Self) -> (RelPtr, u64, u64) {
        // SAFETY: as the caller promised; the pointer and the counters are plain integers,
        // valid whatever their bits.
        unsafe {
            (
                ptr::addr_of!((*value).ptr).read_unaligned(),
                ptr::addr_of!((*value).len).read_unaligned(),
                ptr::addr_of!((*value).cap).read_unaligned(),
            )
        }
    }
}

const fn is_zst<T>() -> bool {
    size_of::<T>() == 0
}

#[cold]
#[track_caller]
fn fail(err: Error) -> ! {
    panic!("{err}")
}

impl<T: ShmSafe> ShmVec<T> {
    /// An empty vector; allocates nothing.
    ///
    /// ```
    /// let v: ipc_runtime::ShmVec<u8> = ipc_runtime::ShmVec::new();
    /// assert!(v.is_empty());
    /// assert_eq!(v.capacity(), 0);
    /// ```
    pub const fn new() -> Self {
        ShmVec {
            ptr: RelPtr::NULL,
            len: 0,
            cap: if is_zst::<T>() { u64::MAX } else { 0 },
            _marker: PhantomData,
        }
    }

    /// An empty vector with room for `capacity` elements. Panics if the heap is out of memory.
    ///
    /// ```
    /// let v = ipc_runtime::ShmVec::<u64>::with_capacity(100);
    /// assert!(v.capacity() >= 100);
    /// ```
    #[track_caller]
    pub fn with_capacity(capacity: usize) -> Self {
        Self::try_with_capacity(capacity).unwrap_or_else(|e| fail(e))
    }

    /// Like [`with_capacity`](Self::with_capacity), but returns an error when out of memory.
    ///
    /// ```
    /// let err = ipc_runtime::ShmVec::<u64>::try_with_capacity(usize::MAX / 4).unwrap_err();
    /// assert!(err.to_string().contains("capacity overflow") || err.to_string().contains("out of memory"));
    /// ```
    ///
    /// # Errors
    /// As [`try_reserve_exact`](Self::try_reserve_exact).
    pub fn try_with_capacity(capacity: usize) -> Result<Self> {
        let mut v = Self::new();
        v.try_reserve_exact(capacity)?;
        Ok(v)
    }

    /// A vector holding clones of `items`.
    ///
    /// ```
    /// let v = ipc_runtime::ShmVec::from_slice(&[1, 2, 3]);
    /// assert_eq!(&v[..], &[1, 2, 3]);
    /// ```
    #[track_caller]
    pub fn from_slice(items: &[T]) -> Self
    where
        T: Clone,
    {
        let mut v = Self::with_capacity(items.len());
        v.extend_from_slice(items);
        v
    }

    /// Number of elements (`usize::MAX` for a vector from another process whose length does not
    /// fit this platform's `usize`: reading it is then an error, see
    /// [`try_as_slice`](Self::try_as_slice)).
    ///
    /// ```
    /// assert_eq!(ipc_runtime::ShmVec::from_slice(&[7u8; 3]).len(), 3);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// Whether there are no elements.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmVec::<u8>::new().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of elements the vector can hold without reallocating.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::<u8>::new();
    /// v.reserve(10);
    /// assert!(v.capacity() >= 10);
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        usize::try_from(self.cap).unwrap_or(usize::MAX)
    }

    /// The relocatable pointer to the buffer (null when nothing is allocated).
    ///
    /// ```
    /// assert!(ipc_runtime::ShmVec::<u8>::new().rel_ptr().is_null());
    /// ```
    pub fn rel_ptr(&self) -> RelPtr {
        self.ptr
    }

    /// Address of the buffer in this process, checked against the segment bounds for the whole
    /// capacity, and against the trust rule for a vector stored in another process's memory.
    #[inline]
    fn data(&self) -> Result<*const T> {
        if is_zst::<T>() {
            return Ok(NonNull::<T>::dangling().as_ptr());
        }
        if self.ptr.is_null() {
            // No buffer: nothing to read, unless a forged vector claims a capacity.
            return if self.cap == 0 {
                Ok(NonNull::<T>::dangling().as_ptr())
            } else {
                Err(self.corrupt("null pointer with a capacity"))
            };
        }
        let bytes = self.buffer_bytes()?;
        let holder = (self as *const Self).cast::<u8>();
        self.ptr
            .resolve_held(holder, bytes, align_of::<T>())
            .map(|p| p.as_ptr().cast_const().cast())
    }

    /// Address of the buffer for writing: in this process's own heap through the process-local
    /// shortcut of `heap::own_address`, or else a checked resolution through the segment table,
    /// which also checks that the segment is mapped writable here (this process owns it).
    ///
    /// The shortcut checks that the buffer starts inside our heap, not its length: a `&mut
    /// ShmVec` exists only in memory this process writes (its heap, stack and allocations:
    /// other processes get `&` through samples, and map our heap read-only), so its pointer
    /// and capacity are what this type's own code stored, a block of at least `cap` elements.
    /// Checking the whole range on every `push` cost a quarter of `Vec`'s speed.
    #[inline(always)]
    fn data_mut(&mut self) -> *mut T {
        if !is_zst::<T>()
            && let Some(p) = heap::own_address(self.ptr)
        {
            return p.as_ptr().cast();
        }
        self.data_mut_slow()
    }

    #[cold]
    #[inline(never)]
    fn data_mut_slow(&mut self) -> *mut T {
        if is_zst::<T>() || self.ptr.is_null() {
            return NonNull::<T>::dangling().as_ptr();
        }
        let bytes = self.buffer_bytes().unwrap_or_else(|e| fail(e));
        match self.ptr.resolve_mut(bytes, align_of::<T>()) {
            Ok(p) => p.as_ptr().cast(),
            Err(e) => fail(e),
        }
    }

    /// Bytes of the whole buffer. A capacity (from shared memory) whose size in bytes does not
    /// fit this platform's `usize` is an error, never a truncated or wrapped-around number.
    #[inline]
    fn buffer_bytes(&self) -> Result<usize> {
        self.cap
            .checked_mul(size_of::<T>() as u64)
            .and_then(|bytes| usize::try_from(bytes).ok())
            .ok_or_else(|| self.corrupt("capacity too large for this platform"))
    }

    /// The elements as a slice.
    ///
    /// ```
    /// let v = ipc_runtime::ShmVec::from_slice(&[1u8, 2]);
    /// assert_eq!(v.as_slice(), &[1, 2]);
    /// ```
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        match self.try_as_slice() {
            Ok(items) => items,
            Err(e) => fail(e),
        }
    }

    /// The elements as a slice, or an error saying what is wrong with a vector another process
    /// wrote: a pointer outside its segment or into memory it may not point to, a length beyond
    /// the capacity, sizes too large for this platform.
    ///
    /// ```
    /// let v = ipc_runtime::ShmVec::from_slice(&[1u8, 2]);
    /// assert_eq!(v.try_as_slice().unwrap(), &[1, 2]);
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`] or [`Error::OutOfBounds`] naming the vector's segment and offset.
    #[inline]
    pub fn try_as_slice(&self) -> Result<&[T]> {
        if self.len > self.cap {
            return Err(self.corrupt("length exceeds capacity"));
        }
        // `len <= cap`, and `data` checks that `cap` elements fit `usize`.
        let data = self.data()?;
        // SAFETY: `data` checked that `cap` elements lie inside a mapped segment at the right
        // alignment (and that `cap`, so `len <= cap`, fits `usize`); the first `len` of them are
        // initialised by this type's invariant.
        Ok(unsafe { slice::from_raw_parts(data, self.len as usize) })
    }

    /// The elements as a mutable slice (only in the owning process).
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::from_slice(&[1u8, 2]);
    /// v.as_mut_slice()[0] = 9;
    /// assert_eq!(v, [9, 2]);
    /// ```
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        if self.len > self.cap {
            fail(self.corrupt("length exceeds capacity"));
        }
        let len = self.len as usize;
        // SAFETY: as in `as_slice`, and `resolve_mut` checked the mapping is writable; `&mut
        // self` guarantees exclusive access.
        unsafe { slice::from_raw_parts_mut(self.data_mut(), len) }
    }

    #[cold]
    fn corrupt(&self, what: &str) -> Error {
        Error::Corrupted {
            what: format!(
                "ShmVec at {:016x}+{:#x}: {what} (len {}, capacity {})",
                self.ptr.segment(),
                self.ptr.offset(),
                self.len,
                self.cap
            ),
        }
    }

    /// Appends an element. Panics if the heap is out of memory.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::new();
    /// v.push("x".len());
    /// assert_eq!(v[0], 1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn push(&mut self, value: T) {
        if self.len == self.cap {
            self.grow_for(1).unwrap_or_else(|e| fail(e));
        }
        let len = self.len as usize;
        // SAFETY: len < cap after growing, so the slot is inside the checked buffer and
        // uninitialised.
        unsafe { self.data_mut().add(len).write(value) };
        self.len += 1;
    }

    /// Appends an element, or gives it back with the error when the heap is out of memory.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::new();
    /// assert!(v.try_push(1u8).is_ok());
    /// ```
    ///
    /// # Errors
    /// With `value` given back and the vector unchanged, when it is full and cannot grow: as
    /// [`try_reserve`](Self::try_reserve).
    pub fn try_push(&mut self, value: T) -> std::result::Result<(), (T, Error)> {
        if self.len == self.cap
            && let Err(e) = self.grow_for(1)
        {
            return Err((value, e));
        }
        let len = self.len as usize;
        // SAFETY: as in `push`.
        unsafe { self.data_mut().add(len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last element.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::from_slice(&[1, 2]);
    /// assert_eq!(v.pop(), Some(2));
    /// assert_eq!(v.pop(), Some(1));
    /// assert_eq!(v.pop(), None);
    /// ```
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let data = self.data_mut();
        self.len -= 1;
        // SAFETY: the element at the old last index is initialised and no longer counted.
        Some(unsafe { data.add(self.len as usize).read() })
    }

    /// Appends clones of `items`.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::new();
    /// v.extend_from_slice(b"abc");
    /// assert_eq!(&v[..], b"abc");
    /// ```
    #[track_caller]
    pub fn extend_from_slice(&mut self, items: &[T])
    where
        T: Clone,
    {
        self.reserve(items.len());
        let data = self.data_mut();
        let mut len = SetLenOnDrop::new(&mut self.len);
        for item in items {
            // SAFETY: reserve made room for all items; each write goes to the next
            // uninitialised slot, and the guard records the length even if a clone panics.
            unsafe { data.add(len.local).write(item.clone()) };
            len.local += 1;
        }
    }

    /// Inserts `value` at `index`, shifting later elements right. Panics if `index > len`.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::from_slice(&[1, 3]);
    /// v.insert(1, 2);
    /// assert_eq!(v, [1, 2, 3]);
    /// ```
    #[track_caller]
    pub fn insert(&mut self, index: usize, value: T) {
        let len = self.len();
        assert!(index <= len, "insertion index (is {index}) should be <= len (is {len})");
        if self.len == self.cap {
            self.grow_for(1).unwrap_or_else(|e| fail(e));
        }
        let data = self.data_mut();
        // SAFETY: len < cap; shifting `len - index` initialised elements one slot right stays
        // inside the buffer, then the hole at `index` is filled.
        unsafe {
            let at = data.add(index);
            ptr::copy(at, at.add(1), len - index);
            at.write(value);
        }
        self.len += 1;
    }

    /// Removes and returns the element at `index`, shifting later elements left.
    /// Panics if `index >= len`.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::from_slice(&[1, 2, 3]);
    /// assert_eq!(v.remove(0), 1);
    /// assert_eq!(v, [2, 3]);
    /// ```
    #[track_caller]
    pub fn remove(&mut self, index: usize) -> T {
        let len = self.len();
        assert!(index < len, "removal index (is {index}) should be < len (is {len})");
        let data = self.data_mut();
        // SAFETY: index < len: read the element out, then close the gap.
        unsafe {
            let at = data.add(index);
            let value = at.read();
            ptr::copy(at.add(1), at, len - index - 1);
            self.len -= 1;
            value
        }
    }

    /// Removes the element at `index` by moving the last element into its place (O(1)).
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::from_slice(&[1, 2, 3]);
    /// assert_eq!(v.swap_remove(0), 1);
    /// assert_eq!(v, [3, 2]);
    /// ```
    #[track_caller]
    pub fn swap_remove(&mut self, index: usize) -> T {
        let len = self.len();
        assert!(index < len, "swap_remove index (is {index}) should be < len (is {len})");
        self.as_mut_slice().swap(index, len - 1);
        self.pop().expect("non-empty")
    }

    /// Shortens the vector to `len` elements, dropping the rest. No effect if already shorter.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::from_slice(&[1, 2, 3]);
    /// v.truncate(1);
    /// assert_eq!(v, [1]);
    /// ```
    pub fn truncate(&mut self, len: usize) {
        let old = self.len();
        if len >= old {
            return;
        }
        let data = self.data_mut();
        self.len = len as u64;
        // SAFETY: elements len..old are initialised and no longer counted; drop them once.
        unsafe { ptr::drop_in_place(ptr::slice_from_raw_parts_mut(data.add(len), old - len)) };
    }

    /// Removes all elements, keeping the capacity.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::from_slice(&[1, 2]);
    /// v.clear();
    /// assert!(v.is_empty() && v.capacity() >= 2);
    /// ```
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Keeps only the elements for which `keep` returns true, in order.
    ///
    /// ```
    /// let mut v: ipc_runtime::ShmVec<u32> = (1..=6).collect();
    /// v.retain(|x| x % 2 == 0);
    /// assert_eq!(v, [2, 4, 6]);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let len = self.len();
        let data = self.data_mut();
        let mut kept = 0;
        // Hide the elements while we work, so a panic in `keep` leaks rather than double-drops.
        self.len = 0;
        for i in 0..len {
            // SAFETY: i < len: each element is visited once; kept ones move down to `kept`,
            // dropped ones are dropped in place.
            unsafe {
                let item = data.add(i);
                if keep(&*item) {
                    if kept != i {
                        ptr::copy_nonoverlapping(item, data.add(kept), 1);
                    }
                    kept += 1;
                } else {
                    ptr::drop_in_place(item);
                }
            }
        }
        self.len = kept as u64;
    }

    /// Resizes to `new_len`, filling with clones of `value` or truncating.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::from_slice(&[1]);
    /// v.resize(3, 0);
    /// assert_eq!(v, [1, 0, 0]);
    /// ```
    #[track_caller]
    pub fn resize(&mut self, new_len: usize, value: T)
    where
        T: Clone,
    {
        let len = self.len();
        if new_len <= len {
            self.truncate(new_len);
            return;
        }
        self.reserve(new_len - len);
        let data = self.data_mut();
        let mut len = SetLenOnDrop::new(&mut self.len);
        while len.local < new_len {
            // SAFETY: reserved; writes go to uninitialised slots below the capacity.
            unsafe { data.add(len.local).write(value.clone()) };
            len.local += 1;
        }
    }

    /// Makes room for at least `additional` more elements. Panics if the heap is out of memory.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::<u16>::new();
    /// v.reserve(5);
    /// assert!(v.capacity() >= 5);
    /// ```
    #[track_caller]
    pub fn reserve(&mut self, additional: usize) {
        self.try_reserve(additional).unwrap_or_else(|e| fail(e));
    }

    /// Makes room for at least `additional` more elements, or returns an error.
    ///
    /// ```
    /// let mut v = ipc_runtime::ShmVec::<u64>::new();
    /// assert!(v.try_reserve(16).is_ok());
    /// assert!(v.try_reserve(usize::MAX).is_err());
    /// ```
    ///
    /// # Errors
    /// The vector is unchanged on error. [`Error::CapacityOverflow`] if the new capacity, in
    /// elements or in bytes, exceeds `isize::MAX`; [`Error::OutOfMemory`] if the default heap
    /// has no room for the new buffer; [`Error::Unsupported`] if `T`'s alignment exceeds the
    /// heap's [`MAX_ALIGN`](crate::heap::MAX_ALIGN); and, on the process's first allocation,
    /// the errors of creating the default heap
    /// ([`heap::default_heap`](crate::heap::default_heap)). Never fails for zero-sized `T`.
    pub fn try_reserve(&mut self, additional: usize) -> Result<()> {
        if self.cap - self.len >= additional as u64 {
            return Ok(());
        }
        self.grow_for(additional)
    }

    /// Makes room for exactly `additional` more elements (no amortised doubling).
    ///
    /// # Errors
    /// As [`try_reserve`](Self::try_reserve).
    pub fn try_reserve_exact(&mut self, additional: usize) -> Result<()> {
        if self.cap - self.len >= additional as u64 {
            return Ok(());
        }
        let needed = self.len().checked_add(additional).ok_or(overflow())?;
        self.reallocate(needed)
    }

    #[cold]
    fn grow_for(&mut self, additional: usize) -> Result<()> {
        let needed = self.len().checked_add(additional).ok_or(overflow())?;
        let min = if size_of::<T>() == 1 { 8 } else { 4 };
        let target = needed.max(self.capacity().saturating_mul(2)).max(min);
        self.reallocate(target)
    }

    /// Moves the buffer to one of `new_cap` elements (in place when the heap can).
    fn reallocate(&mut self, new_cap: usize) -> Result<()> {
        debug_assert!(!is_zst::<T>());
        let bytes = new_cap.checked_mul(size_of::<T>()).filter(|&b| b <= isize::MAX as usize);
        let bytes = bytes.ok_or(overflow())?;
        let heap = heap::default_heap()?;
        if !self.ptr.is_null()
            && self.ptr.segment() == heap.id()
            && heap.grow_in_place(self.ptr, bytes)
        {
            self.cap = new_cap as u64;
            return Ok(());
        }
        // Resolved before allocating, so an error leaks nothing.
        let old = if self.ptr.is_null() { None } else { Some(self.data()?) };
        let new = heap.try_allocate(bytes, align_of::<T>())?;
        let len = self.len();
        if let Some(old) = old {
            let dst = heap.address(new).as_ptr().cast::<T>();
            // SAFETY: `old` holds `len` initialised elements, `dst` has room for `new_cap >=
            // len`; distinct blocks never overlap. The elements move (bitwise) to the new block.
            unsafe { ptr::copy_nonoverlapping(old, dst, len) };
            heap::free(self.ptr);
        }
        self.ptr = new;
        self.cap = new_cap as u64;
        Ok(())
    }

    /// Consumes the vector and returns an iterator over its elements in order.
    fn into_iter_owned(self) -> IntoIter<T> {
        IntoIter { vec: ManuallyDrop::new(self), next: 0 }
    }
}

// For `serde_impls` (cargo feature `serde`): deserializing a `ShmVec` element by element.
#[cfg(feature = "serde")]
impl<T: ShmSafe> ShmVec<T> {
    /// Appends what `next` yields until it yields `None` or an error, resolving the buffer once
    /// per growth rather than once per element (`try_push` in a loop ran at a third of `Vec`'s
    /// speed). A failed growth drops the element and returns `grown(length asked for, error)`;
    /// the vector keeps what it had appended, consistent, in every case.
    pub(super) fn try_extend_with<E>(
        &mut self,
        mut next: impl FnMut() -> std::result::Result<Option<T>, E>,
        grown: impl FnOnce(usize, Error) -> E,
    ) -> std::result::Result<(), E> {
        let mut data = self.data_mut();
        while let Some(item) = next()? {
            if self.len == self.cap {
                if let Err(e) = self.grow_for(1) {
                    drop(item);
                    return Err(grown(self.len() + 1, e));
                }
                data = self.data_mut();
            }
            // SAFETY: len < cap, so the slot is inside the buffer `data` points to (resolved
            // after the last growth; `next` cannot reach this vector, and other allocations do
            // not move it) and uninitialised. The length is stored at once, so an error or a
            // panic in `next` leaves the vector consistent.
            unsafe { data.add(self.len as usize).write(item) };
            self.len += 1;
        }
        Ok(())
    }
}

/// Writes a locally tracked length back when dropped, so loops keep the length in a register
/// and a panic mid-loop still leaves the vector consistent (std's `SetLenOnDrop`).
struct SetLenOnDrop<'a> {
    len: &'a mut u64,
    local: usize,
}

impl<'a> SetLenOnDrop<'a> {
    fn new(len: &'a mut u64) -> Self {
        let local = *len as usize;
        SetLenOnDrop { len, local }
    }
}

impl Drop for SetLenOnDrop<'_> {
    fn drop(&mut self) {
        *self.len = self.local as u64;
    }
}

fn overflow() -> Error {
    Error::CapacityOverflow { what: "ShmVec capacity" }
}

impl<T: ShmSafe> Drop for ShmVec<T> {
    fn drop(&mut self) {
        if mem::needs_drop::<T>() && self.len > 0 {
            self.truncate(0);
        }
        if !is_zst::<T>() && !self.ptr.is_null() {
            heap::free(self.ptr);
        }
    }
}

impl<T: ShmSafe> Default for ShmVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ShmSafe> Deref for ShmVec<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: ShmSafe> DerefMut for ShmVec<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: ShmSafe> AsRef<[T]> for ShmVec<T> {
    fn as_ref(&self) -> &[T] {
        self
    }
}

impl<T: ShmSafe> AsMut<[T]> for ShmVec<T> {
    fn as_mut(&mut self) -> &mut [T] {
        self
    }
}

impl<T: ShmSafe> Borrow<[T]> for ShmVec<T> {
    fn borrow(&self) -> &[T] {
        self
    }
}

impl<T: ShmSafe> BorrowMut<[T]> for ShmVec<T> {
    fn borrow_mut(&mut self) -> &mut [T] {
        self
    }
}

impl<T: ShmSafe + Clone> Clone for ShmVec<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ShmVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: ShmSafe + PartialEq<U>, U: ShmSafe> PartialEq<ShmVec<U>> for ShmVec<T> {
    fn eq(&self, other: &ShmVec<U>) -> bool {
        self[..] == other[..]
    }
}

impl<T: ShmSafe + PartialEq<U>, U> PartialEq<[U]> for ShmVec<T> {
    fn eq(&self, other: &[U]) -> bool {
        self[..] == other[..]
    }
}

impl<T: ShmSafe + PartialEq<U>, U> PartialEq<&[U]> for ShmVec<T> {
    fn eq(&self, other: &&[U]) -> bool {
        self[..] == other[..]
    }
}

impl<T: ShmSafe + PartialEq<U>, U, const N: usize> PartialEq<[U; N]> for ShmVec<T> {
    fn eq(&self, other: &[U; N]) -> bool {
        self[..] == other[..]
    }
}

impl<T: ShmSafe + PartialEq<U>, U> PartialEq<Vec<U>> for ShmVec<T> {
    fn eq(&self, other: &Vec<U>) -> bool {
        self[..] == other[..]
    }
}

impl<T: ShmSafe + Eq> Eq for ShmVec<T> {}

impl<T: ShmSafe + PartialOrd> PartialOrd for ShmVec<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self[..].partial_cmp(&other[..])
    }
}

impl<T: ShmSafe + Ord> Ord for ShmVec<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self[..].cmp(&other[..])
    }
}

impl<T: ShmSafe + Hash> Hash for ShmVec<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self[..].hash(state);
    }
}

impl<T: ShmSafe> Extend<T> for ShmVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        for item in iter {
            self.push(item);
        }
    }
}

impl<'a, T: ShmSafe + Copy> Extend<&'a T> for ShmVec<T> {
    fn extend<I: IntoIterator<Item = &'a T>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<T: ShmSafe> FromIterator<T> for ShmVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = ShmVec::new();
        v.extend(iter);
        v
    }
}

impl<T: ShmSafe + Clone> From<&[T]> for ShmVec<T> {
    fn from(items: &[T]) -> Self {
        Self::from_slice(items)
    }
}

impl<T: ShmSafe, const N: usize> From<[T; N]> for ShmVec<T> {
    fn from(items: [T; N]) -> Self {
        items.into_iter().collect()
    }
}

impl<T: ShmSafe> From<Vec<T>> for ShmVec<T> {
    fn from(items: Vec<T>) -> Self {
        items.into_iter().collect()
    }
}

impl<'a, T: ShmSafe> IntoIterator for &'a ShmVec<T> {
    type Item = &'a T;
    type IntoIter = slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: ShmSafe> IntoIterator for &'a mut ShmVec<T> {
    type Item = &'a mut T;
    type IntoIter = slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl<T: ShmSafe> IntoIterator for ShmVec<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        self.into_iter_owned()
    }
}

/// An owning iterator over a [`ShmVec`]'s elements.
///
/// ```
/// let v = ipc_runtime::ShmVec::from_slice(&[1, 2]);
/// let items: Vec<i32> = v.into_iter().collect();
/// assert_eq!(items, [1, 2]);
/// ```
pub struct IntoIter<T: ShmSafe> {
    vec: ManuallyDrop<ShmVec<T>>,
    next: usize,
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IntoIter").field(&&self.vec[self.next..]).finish()
    }
}

impl<T: ShmSafe> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.next >= self.vec.len() {
            return None;
        }
        let data = self.vec.data().unwrap_or_else(|e| fail(e));
        // SAFETY: elements at `next..len` are initialised and not yet moved out; each is read
        // exactly once.
        let item = unsafe { data.add(self.next).read() };
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.vec.len() - self.next;
        (left, Some(left))
    }
}

impl<T: ShmSafe> ExactSizeIterator for IntoIter<T> {}

impl<T: ShmSafe> Drop for IntoIter<T> {
    fn drop(&mut self) {
        let len = self.vec.len();
        if mem::needs_drop::<T>() && self.next < len {
            let data = self.vec.data_mut();
            // SAFETY: elements `next..len` were not moved out; drop them once.
            unsafe {
                ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                    data.add(self.next),
                    len - self.next,
                ))
            };
        }
        self.vec.len = 0;
        // SAFETY: the vector is not used again; dropping it frees the (now empty) buffer.
        unsafe { ManuallyDrop::drop(&mut self.vec) };
    }
}
