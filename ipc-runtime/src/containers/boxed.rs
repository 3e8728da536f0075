//! [`ShmBox`]: a single value in the shared heap.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use crate::error::{Error, Result};
use crate::heap;
use crate::message::{ShmSafe, fingerprint};
use crate::ptr::RelPtr;

/// A value in the shared heap, with the feel of [`Box`].
///
/// Useful to keep a large value out of a message's fixed part: the message stays small and the
/// value is shared in place. (Recursive message types are not supported: a type's fingerprint
/// includes its fields' fingerprints, which would never end.)
///
/// ```
/// use ipc_runtime::{ShmBox, ShmVec};
///
/// let mut big = ShmBox::new(ShmVec::<u64>::new());
/// big.extend(0..1000);
/// assert_eq!(big.len(), 1000);
/// ```
#[repr(C)]
pub struct ShmBox<T: ShmSafe> {
    ptr: RelPtr,
    _marker: PhantomData<T>,
}

// SAFETY: holds a relocatable pointer to a `ShmSafe` value.
unsafe impl<T: ShmSafe> ShmSafe for ShmBox<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::str(T::LAYOUT_FINGERPRINT, "ShmBox"),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    // Where a subscriber receives the message, the pointer must resolve (the same
    // bounds-checked resolution as a deref) and a value with invalid bit patterns is checked.
    const MAY_BE_INVALID: bool = true;
    unsafe fn check_bits(value: *const Self) -> Result<(), crate::message::InvalidValue> {
        // SAFETY: the caller vouches for the box's bytes (maybe unaligned); the pointer is
        // plain integers, valid whatever their bits.
        let ptr = unsafe { core::ptr::addr_of!((*value).ptr).read_unaligned() };
        crate::message::validity::elements::<T>(value.cast(), ptr, 1, 1, false)
    }
}

#[cold]
#[track_caller]
fn fail(err: Error) -> ! {
    panic!("{err}")
}

impl<T: ShmSafe> ShmBox<T> {
    /// Moves `value` into the shared heap. Panics if the heap is out of memory.
    ///
    /// ```
    /// let b = ipc_runtime::ShmBox::new(5u32);
    /// assert_eq!(*b, 5);
    /// ```
    #[track_caller]
    pub fn new(value: T) -> Self {
        Self::try_new(value).unwrap_or_else(|(_, e)| fail(e))
    }

    /// Moves `value` into the shared heap, or gives it back with the error.
    ///
    /// ```
    /// let b = ipc_runtime::ShmBox::try_new([0u8; 16]).unwrap();
    /// assert_eq!(b.len(), 16);
    /// ```
    ///
    /// # Errors
    /// With `value` given back: [`Error::OutOfMemory`] if the default heap has no room for a
    /// `T`; [`Error::Unsupported`] if `T`'s alignment exceeds the heap's
    /// [`MAX_ALIGN`](crate::heap::MAX_ALIGN); and, on the process's first allocation, the
    /// errors of creating the default heap ([`heap::default_heap`](crate::heap::default_heap)).
    /// Never fails for zero-sized `T`.
    pub fn try_new(value: T) -> std::result::Result<Self, (T, Error)> {
        if size_of::<T>() == 0 {
            core::mem::forget(value);
            return Ok(ShmBox { ptr: RelPtr::NULL, _marker: PhantomData });
        }
        let allocated: Result<RelPtr> = heap::default_heap()
            .and_then(|heap| heap.try_allocate(size_of::<T>(), align_of::<T>()));
        match allocated {
            Ok(ptr) => {
                let boxed: ShmBox<T> = ShmBox { ptr, _marker: PhantomData };
                // SAFETY: freshly allocated, writable, sized and aligned for `T`.
                unsafe { boxed.address_mut().as_ptr().write(value) };
                Ok(boxed)
            }
            Err(e) => Err((value, e)),
        }
    }

    /// The relocatable pointer to the value (null for zero-sized types).
    ///
    /// ```
    /// assert!(!ipc_runtime::ShmBox::new(1u8).rel_ptr().is_null());
    /// ```
    pub fn rel_ptr(&self) -> RelPtr {
        self.ptr
    }

    fn address(&self) -> Result<NonNull<T>> {
        if size_of::<T>() == 0 {
            return Ok(NonNull::dangling());
        }
        let holder = (self as *const Self).cast::<u8>();
        self.ptr.resolve_held(holder, size_of::<T>(), align_of::<T>()).map(NonNull::cast)
    }

    /// The value, or an error saying what is wrong with a box another process wrote: a pointer
    /// outside its segment or into memory it may not point to (see
    /// [`RelPtr::resolve_held`](crate::ptr::RelPtr::resolve_held)).
    ///
    /// ```
    /// let b = ipc_runtime::ShmBox::new(3u16);
    /// assert_eq!(*b.try_get().unwrap(), 3);
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`] or [`Error::OutOfBounds`] naming the box's segment and offset.
    pub fn try_get(&self) -> Result<&T> {
        // SAFETY: `address` checked bounds, alignment and the trust rule; the value is
        // initialised.
        self.address().map(|p| unsafe { p.as_ref() })
    }

    fn address_mut(&self) -> NonNull<T> {
        if size_of::<T>() == 0 {
            return NonNull::dangling();
        }
        match self.ptr.resolve_mut(size_of::<T>(), align_of::<T>()) {
            Ok(p) => p.cast(),
            Err(e) => fail(e),
        }
    }

    /// Moves the value out of the heap, freeing its block.
    ///
    /// ```
    /// let b = ipc_runtime::ShmBox::new(7u8);
    /// assert_eq!(ipc_runtime::ShmBox::into_inner(b), 7);
    /// ```
    pub fn into_inner(boxed: Self) -> T {
        let boxed = core::mem::ManuallyDrop::new(boxed);
        // SAFETY: the value is initialised; it is read out once and its block freed without
        // dropping the value again.
        let value = unsafe { boxed.address_mut().as_ptr().read() };
        if size_of::<T>() != 0 {
            heap::free(boxed.ptr);
        }
        value
    }
}

impl<T: ShmSafe> Drop for ShmBox<T> {
    fn drop(&mut self) {
        if size_of::<T>() == 0 {
            // SAFETY: zero-sized values live at any aligned address; drop it once.
            unsafe { core::ptr::drop_in_place(NonNull::<T>::dangling().as_ptr()) };
            return;
        }
        if core::mem::needs_drop::<T>() {
            // SAFETY: the value is initialised and dropped exactly once, here.
            unsafe { core::ptr::drop_in_place(self.address_mut().as_ptr()) };
        }
        heap::free(self.ptr);
    }
}

impl<T: ShmSafe> Deref for ShmBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self.try_get() {
            Ok(value) => value,
            Err(e) => fail(e),
        }
    }
}

impl<T: ShmSafe> DerefMut for ShmBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, the mapping is writable, and `&mut self` is exclusive.
        unsafe { self.address_mut().as_mut() }
    }
}

impl<T: ShmSafe> AsRef<T> for ShmBox<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ShmSafe> AsMut<T> for ShmBox<T> {
    fn as_mut(&mut self) -> &mut T {
        self
    }
}

impl<T: ShmSafe + Clone> Clone for ShmBox<T> {
    fn clone(&self) -> Self {
        ShmBox::new((**self).clone())
    }
}

impl<T: ShmSafe + Default> Default for ShmBox<T> {
    fn default() -> Self {
        ShmBox::new(T::default())
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ShmBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ShmSafe + fmt::Display> fmt::Display for ShmBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ShmSafe + PartialEq> PartialEq for ShmBox<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: ShmSafe + Eq> Eq for ShmBox<T> {}

impl<T: ShmSafe + PartialOrd> PartialOrd for ShmBox<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: ShmSafe + Ord> Ord for ShmBox<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: ShmSafe + Hash> Hash for ShmBox<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<T: ShmSafe> From<T> for ShmBox<T> {
    fn from(value: T) -> Self {
        ShmBox::new(value)
    }
}
