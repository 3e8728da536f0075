//! [`ShmVecDeque`]: a double-ended queue (a ring buffer) in the shared heap.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::iter::FusedIterator;
use core::marker::PhantomData;
use core::mem::{self, MaybeUninit, align_of, size_of};
use core::ops::{Index, IndexMut};
use core::ptr::{self, NonNull};
use core::slice;

use crate::error::{Error, Result};
use crate::heap;
use crate::message::{InvalidValue, ShmSafe, fingerprint};
use crate::ptr::RelPtr;

/// A double-ended queue in shared memory, with the API and feel of
/// [`VecDeque`](std::collections::VecDeque): a ring buffer of elements in this process's shared
/// heap.
///
/// The deque itself is 40 bytes of plain data (a [`RelPtr`] to the buffer, the index of the
/// front element, the length and the capacity), so it can sit inside a message or another
/// container. As for [`ShmVec`](crate::ShmVec), only the process that allocated the buffer
/// changes or frees it; other processes read it through `&`. Every read checks the front index,
/// the length and the capacity against each other and resolves the buffer bounds-checked (under
/// the trust rule of [`RelPtr::resolve_held`] for a deque in another process's memory), so a
/// forged deque is an error or a clear panic, never an out-of-bounds read.
///
/// ```
/// use ipc_runtime::ShmVecDeque;
///
/// let mut q = ShmVecDeque::new();
/// q.push_back(2u32);
/// q.push_back(3);
/// q.push_front(1);
/// assert_eq!(q.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
/// assert_eq!((q.front(), q.back()), (Some(&1), Some(&3)));
/// assert_eq!(q.pop_front(), Some(1));
/// assert_eq!(q[1], 3);
/// ```
#[repr(C)]
pub struct ShmVecDeque<T: ShmSafe> {
    ptr: RelPtr,
    head: u64,
    len: u64,
    cap: u64,
    _marker: PhantomData<T>,
}

// SAFETY: the deque holds only a relocatable pointer and three counters; its elements are
// ShmSafe; `check_bits` checks the counters, the buffer and each element.
unsafe impl<T: ShmSafe> ShmSafe for ShmVecDeque<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::str(T::LAYOUT_FINGERPRINT, "ShmVecDeque"),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    const MAY_BE_INVALID: bool = true;
    unsafe fn check_bits(value: *const Self) -> core::result::Result<(), InvalidValue> {
        // SAFETY: the caller vouches for the deque's bytes; plain integers, read unaligned.
        let (p, head, len, cap) = unsafe {
            (
                ptr::addr_of!((*value).ptr).read_unaligned(),
                ptr::addr_of!((*value).head).read_unaligned(),
                ptr::addr_of!((*value).len).read_unaligned(),
                ptr::addr_of!((*value).cap).read_unaligned(),
            )
        };
        if let Some(what) = bad_counters(head, len, cap) {
            return Err(InvalidValue::new(
                format!("{what} (front {head}, length {len}, capacity {cap})"),
                "a front index below the capacity and a length within it",
            ));
        }
        if is_zst::<T>() || (p.is_null() && cap == 0) {
            return Ok(());
        }
        if p.is_null() {
            return Err(InvalidValue::new(
                format!("a null pointer with a capacity of {cap}"),
                "a pointer into its publisher's heap",
            ));
        }
        let bytes = buffer_bytes::<T>(cap).ok_or_else(|| {
            InvalidValue::new(format!("a capacity of {cap}"), "a capacity that fits in memory")
        })?;
        let first = p.resolve_held(value.cast(), bytes, align_of::<T>()).map_err(|e| {
            InvalidValue::new(
                format!("a pointer that does not resolve ({e})"),
                "a pointer into its publisher's heap",
            )
        })?;
        if T::MAY_BE_INVALID {
            let first = first.as_ptr().cast::<T>();
            for i in 0..len {
                let at = if head + i >= cap { head + i - cap } else { head + i };
                // SAFETY: `at < cap` elements resolved in a mapped segment at `T`'s alignment.
                unsafe { T::check_bits(first.add(at as usize)) }
                    .map_err(|e| e.at_index(i as usize))?;
            }
        }
        Ok(())
    }
}

const fn is_zst<T>() -> bool {
    size_of::<T>() == 0
}

/// What is wrong with the counters, if anything.
fn bad_counters(head: u64, len: u64, cap: u64) -> Option<&'static str> {
    if len > cap {
        Some("a length above the capacity")
    } else if head >= cap && !(cap == 0 && head == 0) {
        Some("a front index outside the buffer")
    } else {
        None
    }
}

/// Bytes of a buffer of `cap` elements, if that fits this platform.
fn buffer_bytes<T>(cap: u64) -> Option<usize> {
    cap.checked_mul(size_of::<T>() as u64).and_then(|b| usize::try_from(b).ok())
}

#[cold]
#[track_caller]
fn fail(err: Error) -> ! {
    panic!("{err}")
}

fn overflow() -> Error {
    Error::CapacityOverflow { what: "ShmVecDeque capacity" }
}

impl<T: ShmSafe> ShmVecDeque<T> {
    /// An empty deque; allocates nothing.
    ///
    /// ```
    /// let q: ipc_runtime::ShmVecDeque<u8> = ipc_runtime::ShmVecDeque::new();
    /// assert!(q.is_empty());
    /// ```
    pub const fn new() -> Self {
        ShmVecDeque {
            ptr: RelPtr::NULL,
            head: 0,
            len: 0,
            cap: if is_zst::<T>() { u64::MAX } else { 0 },
            _marker: PhantomData,
        }
    }

    /// An empty deque with room for `capacity` elements. Panics if the heap is out of memory.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmVecDeque::<u64>::with_capacity(10).capacity() >= 10);
    /// ```
    #[track_caller]
    pub fn with_capacity(capacity: usize) -> Self {
        Self::try_with_capacity(capacity).unwrap_or_else(|e| fail(e))
    }

    /// Like [`with_capacity`](Self::with_capacity), but returns an error when out of memory.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmVecDeque::<u64>::try_with_capacity(usize::MAX / 4).is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::CapacityOverflow`] or the heap's allocation errors.
    pub fn try_with_capacity(capacity: usize) -> Result<Self> {
        let mut q = Self::new();
        q.try_reserve(capacity)?;
        Ok(q)
    }

    /// Number of elements (`usize::MAX` if another process's length does not fit `usize`).
    #[inline]
    pub fn len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// Whether there are no elements.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of elements the deque holds without reallocating.
    #[inline]
    pub fn capacity(&self) -> usize {
        usize::try_from(self.cap).unwrap_or(usize::MAX)
    }

    /// The relocatable pointer to the buffer (null when nothing is allocated).
    pub fn rel_ptr(&self) -> RelPtr {
        self.ptr
    }

    #[cold]
    fn corrupt(&self, what: &str) -> Error {
        Error::Corrupted {
            what: format!(
                "ShmVecDeque at {:016x}+{:#x}: {what} (front {}, len {}, capacity {})",
                self.ptr.segment(),
                self.ptr.offset(),
                self.head,
                self.len,
                self.cap
            ),
        }
    }

    /// The buffer, checked: counters consistent, `cap` elements inside a mapped segment at the
    /// right alignment, under the trust rule for a deque held in another process's memory.
    #[inline]
    fn data(&self) -> Result<*const T> {
        if let Some(what) = bad_counters(self.head, self.len, self.cap) {
            return Err(self.corrupt(what));
        }
        if is_zst::<T>() {
            return Ok(NonNull::<T>::dangling().as_ptr());
        }
        if self.ptr.is_null() {
            return if self.cap == 0 {
                Ok(NonNull::<T>::dangling().as_ptr())
            } else {
                Err(self.corrupt("null pointer with a capacity"))
            };
        }
        let bytes = buffer_bytes::<T>(self.cap)
            .ok_or_else(|| self.corrupt("capacity too large for this platform"))?;
        let holder = (self as *const Self).cast::<u8>();
        self.ptr
            .resolve_held(holder, bytes, align_of::<T>())
            .map(|p| p.as_ptr().cast_const().cast())
    }

    /// The buffer for writing (the owner's: see `ShmVec::data_mut` for the shortcut).
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
        let bytes = buffer_bytes::<T>(self.cap)
            .unwrap_or_else(|| fail(self.corrupt("capacity too large for this platform")));
        match self.ptr.resolve_mut(bytes, align_of::<T>()) {
            Ok(p) => p.as_ptr().cast(),
            Err(e) => fail(e),
        }
    }

    /// The buffer index of element `i` (`head + i` wrapped; `i <= cap`).
    #[inline(always)]
    fn slot(&self, i: u64) -> usize {
        if is_zst::<T>() {
            return 0;
        }
        let s = self.head + i;
        (if s >= self.cap { s - self.cap } else { s }) as usize
    }

    /// The elements as two slices, front part first (the second is empty unless the ring wraps).
    ///
    /// ```
    /// let mut q = ipc_runtime::ShmVecDeque::new();
    /// q.push_back(2u8);
    /// q.push_front(1);
    /// let (a, b) = q.as_slices();
    /// assert_eq!([a, b].concat(), [1, 2]);
    /// ```
    pub fn as_slices(&self) -> (&[T], &[T]) {
        self.try_as_slices().unwrap_or_else(|e| fail(e))
    }

    /// The elements as two slices, or an error saying what is wrong with a deque another
    /// process wrote.
    ///
    /// # Errors
    /// [`Error::Corrupted`] or [`Error::OutOfBounds`] naming the deque's segment and offset.
    pub fn try_as_slices(&self) -> Result<(&[T], &[T])> {
        let data = self.data()?;
        // `data` checked head < cap (or an empty buffer) and len <= cap, and that `cap`
        // elements fit `usize`.
        let first = (self.cap - self.head).min(self.len) as usize;
        let second = self.len as usize - first;
        // SAFETY: `data` resolved `cap` elements; `head..head + first` and `0..second` lie
        // inside them and hold the deque's initialised elements (this type's invariant).
        unsafe {
            Ok((
                slice::from_raw_parts(data.add(self.head as usize), first),
                slice::from_raw_parts(data, second),
            ))
        }
    }

    /// The elements as two mutable slices (only in the owning process).
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        if let Some(what) = bad_counters(self.head, self.len, self.cap) {
            fail(self.corrupt(what));
        }
        let first = (self.cap - self.head).min(self.len) as usize;
        let second = self.len as usize - first;
        let head = self.head as usize;
        let data = self.data_mut();
        // SAFETY: as in `try_as_slices`; the two ranges do not overlap, `&mut self` is
        // exclusive.
        unsafe {
            (
                slice::from_raw_parts_mut(data.add(head), first),
                slice::from_raw_parts_mut(data, second),
            )
        }
    }

    /// Rearranges the elements into one slice (only in the owning process).
    ///
    /// ```
    /// let mut q = ipc_runtime::ShmVecDeque::new();
    /// q.extend([2u8, 3]);
    /// q.push_front(1);
    /// assert_eq!(q.make_contiguous(), &[1, 2, 3]);
    /// ```
    pub fn make_contiguous(&mut self) -> &mut [T] {
        if self.head + self.len > self.cap && !is_zst::<T>() {
            let cap = self.cap as usize;
            let data = self.data_mut().cast::<MaybeUninit<T>>();
            // SAFETY: the whole buffer of `cap` slots, as `MaybeUninit` (some uninitialised);
            // rotating moves the elements, in order, to the start.
            unsafe { slice::from_raw_parts_mut(data, cap) }.rotate_left(self.head as usize);
            self.head = 0;
        }
        self.as_mut_slices().0
    }

    /// Element `i` (0 is the front).
    ///
    /// ```
    /// let q: ipc_runtime::ShmVecDeque<u8> = [1, 2].into_iter().collect();
    /// assert_eq!(q.get(1), Some(&2));
    /// assert_eq!(q.get(2), None);
    /// ```
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i as u64 >= self.len {
            return None;
        }
        let data = self.data().unwrap_or_else(|e| fail(e));
        // SAFETY: `data` checked the counters and resolved `cap` elements; `i < len` so the
        // slot holds an initialised element.
        Some(unsafe { &*data.add(self.slot(i as u64)) })
    }

    /// Element `i`, mutably (only in the owning process).
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i as u64 >= self.len {
            return None;
        }
        let slot = self.slot(i as u64);
        // SAFETY: our own buffer; `i < len`.
        Some(unsafe { &mut *self.data_mut().add(slot) })
    }

    /// The front element.
    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// The back element.
    pub fn back(&self) -> Option<&T> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The front element, mutably.
    pub fn front_mut(&mut self) -> Option<&mut T> {
        self.get_mut(0)
    }

    /// The back element, mutably.
    pub fn back_mut(&mut self) -> Option<&mut T> {
        self.len().checked_sub(1).and_then(|i| self.get_mut(i))
    }

    /// Appends an element at the back. Panics if the heap is out of memory.
    #[inline]
    #[track_caller]
    pub fn push_back(&mut self, value: T) {
        if self.len == self.cap {
            self.grow().unwrap_or_else(|e| fail(e));
        }
        let slot = self.slot(self.len);
        // SAFETY: len < cap: the slot after the last element is free and inside the buffer.
        unsafe { self.data_mut().add(slot).write(value) };
        self.len += 1;
    }

    /// Prepends an element at the front. Panics if the heap is out of memory.
    #[inline]
    #[track_caller]
    pub fn push_front(&mut self, value: T) {
        if self.len == self.cap {
            self.grow().unwrap_or_else(|e| fail(e));
        }
        if !is_zst::<T>() {
            self.head = if self.head == 0 { self.cap - 1 } else { self.head - 1 };
        }
        let head = self.head as usize;
        // SAFETY: len < cap: the slot before the front is free and inside the buffer.
        unsafe { self.data_mut().add(head).write(value) };
        self.len += 1;
    }

    /// Like [`push_back`](Self::push_back), but gives the value back with the error when the
    /// heap is out of memory.
    ///
    /// # Errors
    /// The heap's allocation errors, with the value.
    pub fn try_push_back(&mut self, value: T) -> core::result::Result<(), (T, Error)> {
        if self.len == self.cap
            && let Err(e) = self.grow()
        {
            return Err((value, e));
        }
        self.push_back(value);
        Ok(())
    }

    /// Like [`push_front`](Self::push_front), but gives the value back with the error when the
    /// heap is out of memory.
    ///
    /// # Errors
    /// The heap's allocation errors, with the value.
    pub fn try_push_front(&mut self, value: T) -> core::result::Result<(), (T, Error)> {
        if self.len == self.cap
            && let Err(e) = self.grow()
        {
            return Err((value, e));
        }
        self.push_front(value);
        Ok(())
    }

    /// Removes and returns the front element.
    #[inline]
    pub fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let head = self.head as usize;
        // SAFETY: the front slot holds an initialised element, no longer counted after this.
        let v = unsafe { self.data_mut().add(head).read() };
        self.head = self.slot(1) as u64;
        self.len -= 1;
        Some(v)
    }

    /// Removes and returns the back element.
    #[inline]
    pub fn pop_back(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let slot = self.slot(self.len);
        // SAFETY: the old last slot holds an initialised element, no longer counted.
        Some(unsafe { self.data_mut().add(slot).read() })
    }

    /// Makes room for at least `additional` more elements. Panics if the heap is out of memory.
    #[track_caller]
    pub fn reserve(&mut self, additional: usize) {
        self.try_reserve(additional).unwrap_or_else(|e| fail(e));
    }

    /// Makes room for at least `additional` more elements, or returns an error.
    ///
    /// ```
    /// let mut q = ipc_runtime::ShmVecDeque::<u64>::new();
    /// assert!(q.try_reserve(8).is_ok());
    /// assert!(q.try_reserve(usize::MAX).is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::CapacityOverflow`] or the heap's allocation errors.
    pub fn try_reserve(&mut self, additional: usize) -> Result<()> {
        if self.cap - self.len >= additional as u64 {
            return Ok(());
        }
        let needed = self.len().checked_add(additional).ok_or_else(overflow)?;
        self.reallocate(needed)
    }

    #[cold]
    fn grow(&mut self) -> Result<()> {
        let target = self.capacity().saturating_mul(2).max(4);
        self.reallocate(target)
    }

    /// Moves the elements, in order, to a new buffer of `new_cap >= len` elements.
    fn reallocate(&mut self, new_cap: usize) -> Result<()> {
        debug_assert!(!is_zst::<T>());
        let bytes = new_cap.checked_mul(size_of::<T>()).filter(|&b| b <= isize::MAX as usize);
        let bytes = bytes.ok_or_else(overflow)?;
        let heap = heap::default_heap()?;
        if !self.ptr.is_null()
            && self.ptr.segment() == heap.id()
            && heap.grow_in_place(self.ptr, bytes)
        {
            let old_cap = self.cap;
            self.cap = new_cap as u64;
            self.unwrap_after_growth(old_cap);
            return Ok(());
        }
        let new = heap.try_allocate(bytes, align_of::<T>())?;
        let dst = heap.address(new).as_ptr().cast::<T>();
        if !self.ptr.is_null() {
            let (a, b) = self.as_mut_slices();
            let (a_len, b_len) = (a.len(), b.len());
            // SAFETY: the two parts hold `len <= new_cap` initialised elements; the new block is
            // distinct. The elements move (bitwise), in order, to the start of the new block.
            unsafe {
                ptr::copy_nonoverlapping(a.as_ptr(), dst, a_len);
                ptr::copy_nonoverlapping(b.as_ptr(), dst.add(a_len), b_len);
            }
            heap::free(self.ptr);
        }
        self.ptr = new;
        self.head = 0;
        self.cap = new_cap as u64;
        Ok(())
    }

    /// After the buffer grew in place from `old_cap` to `cap` slots: moves whichever part of a
    /// wrapped ring is shorter so that the elements are again one ring of the new size (std's
    /// `handle_capacity_increase`).
    fn unwrap_after_growth(&mut self, old_cap: u64) {
        let (head, len, cap) = (self.head, self.len, self.cap);
        if head + len <= old_cap {
            return;
        }
        let head_len = old_cap - head;
        let tail_len = len - head_len;
        let data = self.data_mut();
        // SAFETY: our buffer of `cap` slots; `0..tail_len` and `head..old_cap` hold the
        // elements. The tail moves to `old_cap..old_cap + tail_len` (free, inside the new
        // slots), or the head part to the end of the buffer (`ptr::copy` allows the overlap).
        unsafe {
            if tail_len < head_len && tail_len <= cap - old_cap {
                ptr::copy_nonoverlapping(data, data.add(old_cap as usize), tail_len as usize);
            } else {
                let new_head = cap - head_len;
                ptr::copy(data.add(head as usize), data.add(new_head as usize), head_len as usize);
                self.head = new_head;
            }
        }
    }

    /// Keeps the first `len` elements, dropping the rest.
    ///
    /// ```
    /// let mut q: ipc_runtime::ShmVecDeque<u8> = [1, 2, 3].into_iter().collect();
    /// q.truncate(1);
    /// assert_eq!(q, [1]);
    /// ```
    pub fn truncate(&mut self, len: usize) {
        if len as u64 >= self.len {
            return;
        }
        if !mem::needs_drop::<T>() {
            self.len = len as u64;
            return;
        }
        let (a, b) = self.as_mut_slices();
        let (a, b) = (a as *mut [T], b as *mut [T]);
        let a_len = a.len();
        self.len = len as u64;
        // SAFETY: the elements from `len` on are initialised and no longer counted: drop each
        // once (the front part's tail, if any, then the back part's tail).
        unsafe {
            if len < a_len {
                ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                    a.cast::<T>().add(len),
                    a_len - len,
                ));
                ptr::drop_in_place(b);
            } else {
                let skip = len - a_len;
                ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                    b.cast::<T>().add(skip),
                    b.len() - skip,
                ));
            }
        }
    }

    /// Removes every element, keeping the capacity.
    pub fn clear(&mut self) {
        self.truncate(0);
        self.head = 0;
    }

    /// The elements front to back (double-ended).
    ///
    /// ```
    /// let q: ipc_runtime::ShmVecDeque<u8> = [1, 2, 3].into_iter().collect();
    /// assert_eq!(q.iter().rev().copied().collect::<Vec<_>>(), [3, 2, 1]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        let (a, b) = self.as_slices();
        Iter { a: a.iter(), b: b.iter() }
    }

    /// The elements front to back, mutably (only in the owning process).
    pub fn iter_mut(&mut self) -> IterMut<'_, T> {
        let (a, b) = self.as_mut_slices();
        IterMut { a: a.iter_mut(), b: b.iter_mut() }
    }
}

impl<T: ShmSafe> Drop for ShmVecDeque<T> {
    fn drop(&mut self) {
        if mem::needs_drop::<T>() && self.len > 0 {
            self.truncate(0);
        }
        if !is_zst::<T>() && !self.ptr.is_null() {
            heap::free(self.ptr);
        }
    }
}

impl<T: ShmSafe> Default for ShmVecDeque<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ShmSafe + Clone> Clone for ShmVecDeque<T> {
    fn clone(&self) -> Self {
        let mut q = Self::with_capacity(self.len());
        q.extend(self.iter().cloned());
        q
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ShmVecDeque<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: ShmSafe + PartialEq> PartialEq for ShmVecDeque<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: ShmSafe + PartialEq<U>, U, const N: usize> PartialEq<[U; N]> for ShmVecDeque<T> {
    fn eq(&self, other: &[U; N]) -> bool {
        self.len() == N && self.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl<T: ShmSafe + PartialEq<U>, U> PartialEq<Vec<U>> for ShmVecDeque<T> {
    fn eq(&self, other: &Vec<U>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl<T: ShmSafe + Eq> Eq for ShmVecDeque<T> {}

impl<T: ShmSafe + PartialOrd> PartialOrd for ShmVecDeque<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.iter().partial_cmp(other.iter())
    }
}

impl<T: ShmSafe + Ord> Ord for ShmVecDeque<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl<T: ShmSafe + Hash> Hash for ShmVecDeque<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        self.iter().for_each(|x| x.hash(state));
    }
}

impl<T: ShmSafe> Index<usize> for ShmVecDeque<T> {
    type Output = T;
    #[track_caller]
    fn index(&self, i: usize) -> &T {
        self.get(i).expect("ShmVecDeque index out of bounds")
    }
}

impl<T: ShmSafe> IndexMut<usize> for ShmVecDeque<T> {
    #[track_caller]
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.get_mut(i).expect("ShmVecDeque index out of bounds")
    }
}

impl<T: ShmSafe> Extend<T> for ShmVecDeque<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        for x in iter {
            self.push_back(x);
        }
    }
}

impl<'a, T: ShmSafe + Copy> Extend<&'a T> for ShmVecDeque<T> {
    fn extend<I: IntoIterator<Item = &'a T>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<T: ShmSafe> FromIterator<T> for ShmVecDeque<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut q = Self::new();
        q.extend(iter);
        q
    }
}

impl<T: ShmSafe, const N: usize> From<[T; N]> for ShmVecDeque<T> {
    fn from(items: [T; N]) -> Self {
        items.into_iter().collect()
    }
}

impl<T: ShmSafe> From<Vec<T>> for ShmVecDeque<T> {
    fn from(items: Vec<T>) -> Self {
        items.into_iter().collect()
    }
}

impl<'a, T: ShmSafe> IntoIterator for &'a ShmVecDeque<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<'a, T: ShmSafe> IntoIterator for &'a mut ShmVecDeque<T> {
    type Item = &'a mut T;
    type IntoIter = IterMut<'a, T>;
    fn into_iter(self) -> IterMut<'a, T> {
        self.iter_mut()
    }
}

impl<T: ShmSafe> IntoIterator for ShmVecDeque<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { q: self }
    }
}

/// The elements of a [`ShmVecDeque`] front to back; see [`ShmVecDeque::iter`].
#[derive(Clone, Debug)]
pub struct Iter<'a, T> {
    a: slice::Iter<'a, T>,
    b: slice::Iter<'a, T>,
}

/// The elements of a [`ShmVecDeque`] front to back, mutably; see [`ShmVecDeque::iter_mut`].
#[derive(Debug)]
pub struct IterMut<'a, T> {
    a: slice::IterMut<'a, T>,
    b: slice::IterMut<'a, T>,
}

/// An owning iterator over a [`ShmVecDeque`]'s elements, front to back.
#[derive(Debug)]
pub struct IntoIter<T: ShmSafe> {
    q: ShmVecDeque<T>,
}

macro_rules! two_part_iter {
    ($name:ident, $item:ty) => {
        impl<'a, T> Iterator for $name<'a, T> {
            type Item = $item;
            #[inline]
            fn next(&mut self) -> Option<$item> {
                match self.a.next() {
                    Some(x) => Some(x),
                    None => self.b.next(),
                }
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                let n = self.a.len() + self.b.len();
                (n, Some(n))
            }
        }
        impl<'a, T> DoubleEndedIterator for $name<'a, T> {
            #[inline]
            fn next_back(&mut self) -> Option<$item> {
                match self.b.next_back() {
                    Some(x) => Some(x),
                    None => self.a.next_back(),
                }
            }
        }
        impl<T> ExactSizeIterator for $name<'_, T> {}
        impl<T> FusedIterator for $name<'_, T> {}
    };
}

two_part_iter!(Iter, &'a T);
two_part_iter!(IterMut, &'a mut T);

impl<T: ShmSafe> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.q.pop_front()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.q.len(), Some(self.q.len()))
    }
}

impl<T: ShmSafe> DoubleEndedIterator for IntoIter<T> {
    fn next_back(&mut self) -> Option<T> {
        self.q.pop_back()
    }
}

impl<T: ShmSafe> ExactSizeIterator for IntoIter<T> {}
impl<T: ShmSafe> FusedIterator for IntoIter<T> {}

#[cfg(test)]
#[path = "deque_tests.rs"]
mod tests;
