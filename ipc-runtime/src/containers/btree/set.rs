//! [`ShmBTreeSet`]: an ordered set in the shared heap, a [`ShmBTreeMap`] with `()` values.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::iter::FusedIterator;
use core::mem::{align_of, size_of};
use core::ops::RangeBounds;

use crate::message::{ShmSafe, fingerprint};

use super::ShmBTreeMap;
use super::iter::{IntoIter, Keys, Range};

/// An ordered set in shared memory, with the API and feel of
/// [`BTreeSet`](std::collections::BTreeSet): a [`ShmBTreeMap<T, ()>`](ShmBTreeMap), with the
/// same layout, checks and ownership rules.
///
/// ```
/// use ipc_runtime::ShmBTreeSet;
///
/// let mut s: ShmBTreeSet<u32> = [5, 1, 3].into_iter().collect();
/// assert!(s.insert(4));
/// assert!(!s.insert(4));
/// assert!(s.contains(&3));
/// assert_eq!(s.iter().copied().collect::<Vec<_>>(), [1, 3, 4, 5]);
/// assert_eq!(s.range(2..5).count(), 2);
/// assert_eq!((s.first(), s.last()), (Some(&1), Some(&5)));
/// ```
#[repr(C)]
pub struct ShmBTreeSet<T: ShmSafe> {
    map: ShmBTreeMap<T, ()>,
}

// SAFETY: a `ShmBTreeMap<T, ()>`, its only field.
unsafe impl<T: ShmSafe> ShmSafe for ShmBTreeSet<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::str(T::LAYOUT_FINGERPRINT, "ShmBTreeSet"),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    const MAY_BE_INVALID: bool = true;
    unsafe fn check_bits(value: *const Self) -> Result<(), crate::message::InvalidValue> {
        // SAFETY: the map is the set's only field, at offset 0 (`repr(C)`).
        unsafe { <ShmBTreeMap<T, ()> as ShmSafe>::check_bits(value.cast()) }
    }
}

impl<T: ShmSafe> ShmBTreeSet<T> {
    /// An empty set; allocates nothing.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmBTreeSet::<u8>::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        ShmBTreeSet { map: ShmBTreeMap::new() }
    }

    /// Number of elements.
    ///
    /// ```
    /// let s: ipc_runtime::ShmBTreeSet<u8> = [1, 1, 2].into_iter().collect();
    /// assert_eq!(s.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds `value`; false if it was already there (the set is then unchanged). Panics if the
    /// heap is out of memory.
    #[track_caller]
    pub fn insert(&mut self, value: T) -> bool
    where
        T: Ord,
    {
        match self.map.entry(value) {
            super::Entry::Occupied(_) => false,
            super::Entry::Vacant(e) => {
                e.insert(());
                true
            }
        }
    }

    /// Like [`insert`](Self::insert), but gives the value back with the error when the heap is
    /// out of memory.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmBTreeSet::new();
    /// assert_eq!(s.try_insert(1u8).ok(), Some(true));
    /// ```
    ///
    /// # Errors
    /// The heap's allocation errors, with the value.
    pub fn try_insert(&mut self, value: T) -> Result<bool, (T, crate::Error)>
    where
        T: Ord,
    {
        match self.map.entry(value) {
            super::Entry::Occupied(_) => Ok(false),
            super::Entry::Vacant(e) => e.try_insert(()).map(|_| true).map_err(|(t, _, e)| (t, e)),
        }
    }

    /// Whether `value` is in the set.
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.contains_key(value)
    }

    /// The element equal to `value`.
    pub fn get<Q>(&self, value: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.get_key_value(value).map(|(k, _)| k)
    }

    /// Removes `value`; whether it was there.
    pub fn remove<Q>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.remove(value).is_some()
    }

    /// Removes and returns the element equal to `value`.
    pub fn take<Q>(&mut self, value: &Q) -> Option<T>
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.remove_entry(value).map(|(k, _)| k)
    }

    /// The least element.
    pub fn first(&self) -> Option<&T> {
        self.map.first_key_value().map(|(k, _)| k)
    }

    /// The greatest element.
    pub fn last(&self) -> Option<&T> {
        self.map.last_key_value().map(|(k, _)| k)
    }

    /// Removes and returns the least element.
    pub fn pop_first(&mut self) -> Option<T> {
        self.map.pop_first().map(|(k, _)| k)
    }

    /// Removes and returns the greatest element.
    pub fn pop_last(&mut self) -> Option<T> {
        self.map.pop_last().map(|(k, _)| k)
    }

    /// The elements in order (double-ended).
    pub fn iter(&self) -> SetIter<'_, T> {
        SetIter(self.map.keys())
    }

    /// The elements in `range`, in order (double-ended). Panics if the range's start is after
    /// its end.
    pub fn range<Q, R>(&self, range: R) -> SetRange<'_, T>
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        SetRange(self.map.range(range))
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Keeps only the elements for which `keep` returns true.
    ///
    /// ```
    /// let mut s: ipc_runtime::ShmBTreeSet<u32> = (0..6).collect();
    /// s.retain(|x| x % 2 == 0);
    /// assert_eq!(s.iter().copied().collect::<Vec<_>>(), [0, 2, 4]);
    /// ```
    pub fn retain<F: FnMut(&T) -> bool>(&mut self, mut keep: F)
    where
        T: Ord,
    {
        self.map.retain(|k, _| keep(k));
    }

    /// The map underneath.
    pub fn as_map(&self) -> &ShmBTreeMap<T, ()> {
        &self.map
    }
}

impl<T: ShmSafe> Default for ShmBTreeSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ShmSafe + Ord + Clone> Clone for ShmBTreeSet<T> {
    fn clone(&self) -> Self {
        ShmBTreeSet { map: self.map.clone() }
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ShmBTreeSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T: ShmSafe + PartialEq> PartialEq for ShmBTreeSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<T: ShmSafe + Eq> Eq for ShmBTreeSet<T> {}

impl<T: ShmSafe + Hash> Hash for ShmBTreeSet<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.map.hash(state);
    }
}

impl<T: ShmSafe + Ord> Extend<T> for ShmBTreeSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.insert(x);
        }
    }
}

impl<'a, T: ShmSafe + Ord + Copy> Extend<&'a T> for ShmBTreeSet<T> {
    fn extend<I: IntoIterator<Item = &'a T>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<T: ShmSafe + Ord> FromIterator<T> for ShmBTreeSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut s = ShmBTreeSet::new();
        s.extend(iter);
        s
    }
}

impl<T: ShmSafe + Ord, const N: usize> From<[T; N]> for ShmBTreeSet<T> {
    fn from(items: [T; N]) -> Self {
        items.into_iter().collect()
    }
}

impl<'a, T: ShmSafe> IntoIterator for &'a ShmBTreeSet<T> {
    type Item = &'a T;
    type IntoIter = SetIter<'a, T>;
    fn into_iter(self) -> SetIter<'a, T> {
        self.iter()
    }
}

impl<T: ShmSafe> IntoIterator for ShmBTreeSet<T> {
    type Item = T;
    type IntoIter = SetIntoIter<T>;
    fn into_iter(self) -> SetIntoIter<T> {
        SetIntoIter(self.map.into_iter())
    }
}

/// The elements of a [`ShmBTreeSet`] in order; see [`ShmBTreeSet::iter`].
#[derive(Clone, Debug)]
pub struct SetIter<'a, T: ShmSafe>(Keys<'a, T, ()>);

/// The elements of a [`ShmBTreeSet`] in a range; see [`ShmBTreeSet::range`].
#[derive(Clone, Debug)]
pub struct SetRange<'a, T: ShmSafe>(Range<'a, T, ()>);

/// An owning iterator over a [`ShmBTreeSet`]'s elements in order.
#[derive(Debug)]
pub struct SetIntoIter<T: ShmSafe>(IntoIter<T, ()>);

impl<'a, T: ShmSafe> Iterator for SetIter<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}
impl<T: ShmSafe> DoubleEndedIterator for SetIter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}
impl<T: ShmSafe> ExactSizeIterator for SetIter<'_, T> {}
impl<T: ShmSafe> FusedIterator for SetIter<'_, T> {}

impl<'a, T: ShmSafe> Iterator for SetRange<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        self.0.next().map(|(k, _)| k)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}
impl<T: ShmSafe> DoubleEndedIterator for SetRange<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, _)| k)
    }
}
impl<T: ShmSafe> FusedIterator for SetRange<'_, T> {}

impl<T: ShmSafe> Iterator for SetIntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.0.next().map(|(k, _)| k)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}
impl<T: ShmSafe> DoubleEndedIterator for SetIntoIter<T> {
    fn next_back(&mut self) -> Option<T> {
        self.0.next_back().map(|(k, _)| k)
    }
}
impl<T: ShmSafe> ExactSizeIterator for SetIntoIter<T> {}
impl<T: ShmSafe> FusedIterator for SetIntoIter<T> {}
