//! [`ShmHashSet`]: a hash set in the shared heap (a [`ShmHashMap`] with `()` values).

use core::borrow::Borrow;
use core::fmt;
use core::hash::Hash;
use core::iter::{Chain, FusedIterator};
use core::mem::{align_of, size_of};

use crate::error::{Error, Result};
use crate::message::{InvalidValue, ShmSafe, fingerprint};
use crate::ptr::RelPtr;

use super::ShmHashMap;
use super::entry::Entry;
use super::iter;
use super::table::fail;

/// A hash set in shared memory, with the API and feel of std's
/// [`HashSet`](std::collections::HashSet): a [`ShmHashMap<T, ()>`](ShmHashMap), with the same
/// layout, hash function and guarantees for readers in other processes.
///
/// ```
/// use ipc_runtime::{ShmHashSet, ShmString};
///
/// let mut tags: ShmHashSet<ShmString> = ShmHashSet::new();
/// assert!(tags.insert("red".into()));
/// assert!(!tags.insert("red".into()));
/// tags.extend(["green".into(), "blue".into()]);
/// assert!(tags.contains("green"));
/// assert_eq!(tags.len(), 3);
/// assert!(tags.remove("red"));
/// ```
#[repr(C)]
pub struct ShmHashSet<T: ShmSafe> {
    map: ShmHashMap<T, ()>,
}

// SAFETY: a `ShmHashMap<T, ()>`, its only field.
unsafe impl<T: ShmSafe> ShmSafe for ShmHashSet<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::str(T::LAYOUT_FINGERPRINT, "ShmHashSet"),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    const MAY_BE_INVALID: bool = true;
    unsafe fn check_bits(value: *const Self) -> core::result::Result<(), InvalidValue> {
        // SAFETY: the caller vouches for the set's bytes; `map` is its only field, at 0.
        unsafe { <ShmHashMap<T, ()> as ShmSafe>::check_bits(value.cast()) }
    }
}

impl<T: ShmSafe> ShmHashSet<T> {
    /// An empty set with a fresh random seed; allocates nothing.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmHashSet::<u32>::new().is_empty());
    /// ```
    pub fn new() -> Self {
        ShmHashSet { map: ShmHashMap::new() }
    }

    /// An empty set hashing with `seed`; allocates nothing.
    pub const fn with_seed(seed: u64) -> Self {
        ShmHashSet { map: ShmHashMap::with_seed(seed) }
    }

    /// The hash seed.
    pub fn seed(&self) -> u64 {
        self.map.seed()
    }

    /// The relocatable pointer to the set's block (null when nothing is allocated).
    pub fn rel_ptr(&self) -> RelPtr {
        self.map.rel_ptr()
    }

    /// Number of elements.
    ///
    /// ```
    /// let s: ipc_runtime::ShmHashSet<u8> = [1, 2, 2].into_iter().collect();
    /// assert_eq!(s.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many elements the set holds without growing.
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// An iterator over the elements, in unspecified order.
    ///
    /// ```
    /// let s: ipc_runtime::ShmHashSet<u8> = [1, 2].into_iter().collect();
    /// assert_eq!(s.iter().map(|x| u32::from(*x)).sum::<u32>(), 3);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { inner: self.map.keys() }
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Removes every element, returning them as an iterator; the set keeps its buckets.
    ///
    /// ```
    /// let mut s: ipc_runtime::ShmHashSet<u8> = [1].into_iter().collect();
    /// assert_eq!(s.drain().collect::<Vec<_>>(), [1]);
    /// assert!(s.is_empty());
    /// ```
    pub fn drain(&mut self) -> Drain<'_, T> {
        Drain { inner: self.map.drain() }
    }

    /// Keeps only the elements for which `keep` returns true.
    ///
    /// ```
    /// let mut s: ipc_runtime::ShmHashSet<u32> = (0..10).collect();
    /// s.retain(|x| x % 3 == 0);
    /// assert_eq!(s.len(), 4);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.map.retain(|k, _| keep(k));
    }
}

impl<T: ShmSafe + Hash + Eq> ShmHashSet<T> {
    /// An empty set with room for `capacity` elements. Panics if the heap is out of memory.
    #[track_caller]
    pub fn with_capacity(capacity: usize) -> Self {
        ShmHashSet { map: ShmHashMap::with_capacity(capacity) }
    }

    /// Makes room for `additional` more elements. Panics if the heap is out of memory.
    #[track_caller]
    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    /// Makes room for `additional` more elements, or returns an error.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] or [`Error::CapacityOverflow`]; the set is unchanged.
    pub fn try_reserve(&mut self, additional: usize) -> Result<()> {
        self.map.try_reserve(additional)
    }

    /// Shrinks the buckets as far as the elements allow.
    #[track_caller]
    pub fn shrink_to_fit(&mut self) {
        self.map.shrink_to_fit();
    }

    /// Adds `value`; returns whether it was new (an equal element already there is kept).
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmHashSet::new();
    /// assert!(s.insert(1u8));
    /// assert!(!s.insert(1));
    /// ```
    #[track_caller]
    pub fn insert(&mut self, value: T) -> bool {
        match self.try_insert(value) {
            Ok(new) => new,
            Err((_, e)) => fail(e),
        }
    }

    /// Like [`insert`](Self::insert), but gives the value back with the error when the heap
    /// is out of memory.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmHashSet::new();
    /// assert!(s.try_insert(1u8).unwrap());
    /// ```
    ///
    /// # Errors
    /// `(value, `[`Error::OutOfMemory`]`)` when the set had to grow and could not.
    pub fn try_insert(&mut self, value: T) -> core::result::Result<bool, (T, Error)> {
        match self.map.entry(value) {
            Entry::Occupied(_) => Ok(false),
            Entry::Vacant(e) => match e.try_insert(()) {
                Ok(_) => Ok(true),
                Err((value, (), e)) => Err((value, e)),
            },
        }
    }

    /// Adds `value`, replacing and returning an equal element already there.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmHashSet::new();
    /// assert_eq!(s.replace(1u8), None);
    /// assert_eq!(s.replace(1), Some(1));
    /// ```
    #[track_caller]
    pub fn replace(&mut self, value: T) -> Option<T> {
        let old = self.map.remove_entry(&value).map(|(k, ())| k);
        self.map.insert(value, ());
        old
    }

    /// Whether the set holds `value` (looked up by any borrowed form: `&str` for
    /// [`ShmString`](crate::ShmString) elements).
    ///
    /// ```
    /// let s: ipc_runtime::ShmHashSet<ipc_runtime::ShmString> = ["a".into()].into_iter().collect();
    /// assert!(s.contains("a"));
    /// ```
    #[track_caller]
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(value)
    }

    /// Like [`contains`](Self::contains), but a set (of another process) whose header does
    /// not resolve is an error rather than a panic.
    ///
    /// # Errors
    /// As [`ShmHashMap::try_get`].
    pub fn try_contains<Q>(&self, value: &Q) -> Result<bool>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Ok(self.map.try_get(value)?.is_some())
    }

    /// The element equal to `value`.
    ///
    /// ```
    /// let s: ipc_runtime::ShmHashSet<u8> = [1].into_iter().collect();
    /// assert_eq!(s.get(&1), Some(&1));
    /// ```
    #[track_caller]
    pub fn get<Q>(&self, value: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(value).map(|(k, _)| k)
    }

    /// Removes `value`; returns whether it was there.
    ///
    /// ```
    /// let mut s: ipc_runtime::ShmHashSet<u8> = [1].into_iter().collect();
    /// assert!(s.remove(&1) && !s.remove(&1));
    /// ```
    pub fn remove<Q>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(value).is_some()
    }

    /// Removes and returns the element equal to `value`.
    ///
    /// ```
    /// let mut s: ipc_runtime::ShmHashSet<u8> = [1].into_iter().collect();
    /// assert_eq!(s.take(&1), Some(1));
    /// ```
    pub fn take<Q>(&mut self, value: &Q) -> Option<T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove_entry(value).map(|(k, ())| k)
    }

    /// The elements of `self` that are not in `other`.
    ///
    /// ```
    /// let a: ipc_runtime::ShmHashSet<u8> = [1, 2, 3].into_iter().collect();
    /// let b: ipc_runtime::ShmHashSet<u8> = [2, 3, 4].into_iter().collect();
    /// assert_eq!(a.difference(&b).collect::<Vec<_>>(), [&1]);
    /// ```
    pub fn difference<'a>(&'a self, other: &'a Self) -> Difference<'a, T> {
        Difference { iter: self.iter(), other }
    }

    /// The elements in exactly one of the sets.
    ///
    /// ```
    /// let a: ipc_runtime::ShmHashSet<u8> = [1, 2].into_iter().collect();
    /// let b: ipc_runtime::ShmHashSet<u8> = [2, 3].into_iter().collect();
    /// let mut d: Vec<_> = a.symmetric_difference(&b).copied().collect();
    /// d.sort();
    /// assert_eq!(d, [1, 3]);
    /// ```
    pub fn symmetric_difference<'a>(&'a self, other: &'a Self) -> SymmetricDifference<'a, T> {
        SymmetricDifference { iter: self.difference(other).chain(other.difference(self)) }
    }

    /// The elements in both sets.
    ///
    /// ```
    /// let a: ipc_runtime::ShmHashSet<u8> = [1, 2].into_iter().collect();
    /// let b: ipc_runtime::ShmHashSet<u8> = [2, 3].into_iter().collect();
    /// assert_eq!(a.intersection(&b).collect::<Vec<_>>(), [&2]);
    /// ```
    pub fn intersection<'a>(&'a self, other: &'a Self) -> Intersection<'a, T> {
        let (small, large) = if self.len() <= other.len() { (self, other) } else { (other, self) };
        Intersection { iter: small.iter(), other: large }
    }

    /// The elements in either set, each once.
    ///
    /// ```
    /// let a: ipc_runtime::ShmHashSet<u8> = [1, 2].into_iter().collect();
    /// let b: ipc_runtime::ShmHashSet<u8> = [2, 3].into_iter().collect();
    /// assert_eq!(a.union(&b).count(), 3);
    /// ```
    pub fn union<'a>(&'a self, other: &'a Self) -> Union<'a, T> {
        let (small, large) = if self.len() <= other.len() { (self, other) } else { (other, self) };
        Union { iter: large.iter().chain(small.difference(large)) }
    }

    /// Whether the sets have no element in common.
    pub fn is_disjoint(&self, other: &Self) -> bool {
        self.intersection(other).next().is_none()
    }

    /// Whether every element of `self` is in `other`.
    ///
    /// ```
    /// let a: ipc_runtime::ShmHashSet<u8> = [1].into_iter().collect();
    /// let b: ipc_runtime::ShmHashSet<u8> = [1, 2].into_iter().collect();
    /// assert!(a.is_subset(&b) && b.is_superset(&a));
    /// ```
    pub fn is_subset(&self, other: &Self) -> bool {
        self.len() <= other.len() && self.iter().all(|v| other.contains(v))
    }

    /// Whether every element of `other` is in `self`.
    pub fn is_superset(&self, other: &Self) -> bool {
        other.is_subset(self)
    }

    /// A copy in this process's heap, or an error when out of memory.
    ///
    /// # Errors
    /// As [`ShmHashMap::try_clone`].
    pub fn try_clone(&self) -> Result<Self>
    where
        T: Clone,
    {
        Ok(ShmHashSet { map: self.map.try_clone()? })
    }
}

impl<T: ShmSafe> Default for ShmHashSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ShmSafe + Hash + Eq + Clone> Clone for ShmHashSet<T> {
    #[track_caller]
    fn clone(&self) -> Self {
        ShmHashSet { map: self.map.clone() }
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ShmHashSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T: ShmSafe + Hash + Eq> PartialEq for ShmHashSet<T> {
    /// Equal when both hold the same elements, whatever the order or seeds.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.is_subset(other)
    }
}

impl<T: ShmSafe + Hash + Eq> Eq for ShmHashSet<T> {}

impl<T: ShmSafe + Hash + Eq> Extend<T> for ShmHashSet<T> {
    #[track_caller]
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        self.map.extend(iter.into_iter().map(|v| (v, ())));
    }
}

impl<'a, T: ShmSafe + Hash + Eq + Copy> Extend<&'a T> for ShmHashSet<T> {
    #[track_caller]
    fn extend<I: IntoIterator<Item = &'a T>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<T: ShmSafe + Hash + Eq> FromIterator<T> for ShmHashSet<T> {
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut s = Self::new();
        s.extend(iter);
        s
    }
}

impl<T: ShmSafe + Hash + Eq, const N: usize> From<[T; N]> for ShmHashSet<T> {
    #[track_caller]
    fn from(items: [T; N]) -> Self {
        items.into_iter().collect()
    }
}

impl<'a, T: ShmSafe> IntoIterator for &'a ShmHashSet<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: ShmSafe> IntoIterator for ShmHashSet<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { inner: self.map.into_keys() }
    }
}

/// An iterator over a set's elements. See [`ShmHashSet::iter`].
pub struct Iter<'a, T> {
    inner: iter::Keys<'a, T, ()>,
}

impl<T> Clone for Iter<'_, T> {
    fn clone(&self) -> Self {
        Iter { inner: self.inner.clone() }
    }
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;
    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}
impl<T> FusedIterator for Iter<'_, T> {}

impl<T: fmt::Debug> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// An owning iterator over a set's elements.
#[derive(Debug)]
pub struct IntoIter<T: ShmSafe> {
    inner: iter::IntoKeys<T, ()>,
}

impl<T: ShmSafe> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The elements of a set, removed as they are taken. See [`ShmHashSet::drain`].
#[derive(Debug)]
pub struct Drain<'a, T: ShmSafe> {
    inner: iter::Drain<'a, T, ()>,
}

impl<T: ShmSafe> Iterator for Drain<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.inner.next().map(|(k, ())| k)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The elements of one set not in another. See [`ShmHashSet::difference`].
pub struct Difference<'a, T: ShmSafe> {
    iter: Iter<'a, T>,
    other: &'a ShmHashSet<T>,
}

impl<T: ShmSafe> Clone for Difference<'_, T> {
    fn clone(&self) -> Self {
        Difference { iter: self.iter.clone(), other: self.other }
    }
}

impl<'a, T: ShmSafe + Hash + Eq> Iterator for Difference<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        self.iter.by_ref().find(|v| !self.other.contains(*v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.iter.size_hint().1)
    }
}

impl<T: ShmSafe + fmt::Debug + Hash + Eq> fmt::Debug for Difference<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// The elements in exactly one of two sets. See [`ShmHashSet::symmetric_difference`].
pub struct SymmetricDifference<'a, T: ShmSafe> {
    iter: Chain<Difference<'a, T>, Difference<'a, T>>,
}

impl<'a, T: ShmSafe + Hash + Eq> Iterator for SymmetricDifference<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        self.iter.next()
    }
}

impl<T: ShmSafe> fmt::Debug for SymmetricDifference<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymmetricDifference").finish_non_exhaustive()
    }
}

/// The elements in both of two sets. See [`ShmHashSet::intersection`].
pub struct Intersection<'a, T: ShmSafe> {
    iter: Iter<'a, T>,
    other: &'a ShmHashSet<T>,
}

impl<'a, T: ShmSafe + Hash + Eq> Iterator for Intersection<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        self.iter.by_ref().find(|v| self.other.contains(*v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.iter.size_hint().1)
    }
}

impl<T: ShmSafe> fmt::Debug for Intersection<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intersection").finish_non_exhaustive()
    }
}

/// The elements in either of two sets, each once. See [`ShmHashSet::union`].
pub struct Union<'a, T: ShmSafe> {
    iter: Chain<Iter<'a, T>, Difference<'a, T>>,
}

impl<'a, T: ShmSafe + Hash + Eq> Iterator for Union<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        self.iter.next()
    }
}

impl<T: ShmSafe> fmt::Debug for Union<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Union").finish_non_exhaustive()
    }
}
