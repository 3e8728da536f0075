//! Iterators of [`ShmHashMap`](super::ShmHashMap) (and, through it, of
//! [`ShmHashSet`](super::ShmHashSet)).

use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;

use crate::message::ShmSafe;

use super::table::{RawIter, RawTable};

/// An iterator over a map's items, as `(&K, &V)`. See [`ShmHashMap::iter`](super::ShmHashMap::iter).
pub struct Iter<'a, K, V> {
    raw: RawIter<K, V>,
    _marker: PhantomData<&'a (K, V)>,
}

impl<'a, K, V> Iter<'a, K, V> {
    pub(super) fn new(raw: RawIter<K, V>) -> Self {
        Iter { raw, _marker: PhantomData }
    }
}

impl<K, V> Clone for Iter<'_, K, V> {
    fn clone(&self) -> Self {
        Iter { raw: self.raw.clone(), _marker: PhantomData }
    }
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (_, slot) = self.raw.next()?;
        // SAFETY: a full bucket of the map borrowed for `'a`.
        let slot = unsafe { &*slot };
        Some((&slot.key, &slot.value))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.raw.size_hint()
    }
}

impl<K, V> FusedIterator for Iter<'_, K, V> {}
impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// An iterator over a map's items with mutable values. See
/// [`ShmHashMap::iter_mut`](super::ShmHashMap::iter_mut).
pub struct IterMut<'a, K, V> {
    raw: RawIter<K, V>,
    _marker: PhantomData<(&'a K, &'a mut V)>,
}

impl<'a, K, V> IterMut<'a, K, V> {
    pub(super) fn new(raw: RawIter<K, V>) -> Self {
        IterMut { raw, _marker: PhantomData }
    }
}

impl<'a, K, V> Iterator for IterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (_, slot) = self.raw.next()?;
        // SAFETY: a full bucket of the map borrowed mutably for `'a`; each bucket is visited
        // once, so the references never alias.
        let slot = unsafe { &mut *slot };
        Some((&slot.key, &mut slot.value))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.raw.size_hint()
    }
}

impl<K, V> FusedIterator for IterMut<'_, K, V> {}
impl<K, V> ExactSizeIterator for IterMut<'_, K, V> {}

impl<K, V> fmt::Debug for IterMut<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterMut").field("left", &self.raw.left()).finish()
    }
}

/// An iterator over a map's keys. See [`ShmHashMap::keys`](super::ShmHashMap::keys).
pub struct Keys<'a, K, V> {
    pub(super) inner: Iter<'a, K, V>,
}

impl<K, V> Clone for Keys<'_, K, V> {
    fn clone(&self) -> Self {
        Keys { inner: self.inner.clone() }
    }
}

impl<'a, K, V> Iterator for Keys<'a, K, V> {
    type Item = &'a K;
    #[inline]
    fn next(&mut self) -> Option<&'a K> {
        self.inner.next().map(|(k, _)| k)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> FusedIterator for Keys<'_, K, V> {}
impl<K, V> ExactSizeIterator for Keys<'_, K, V> {}

impl<K: fmt::Debug, V> fmt::Debug for Keys<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// An iterator over a map's values. See [`ShmHashMap::values`](super::ShmHashMap::values).
pub struct Values<'a, K, V> {
    pub(super) inner: Iter<'a, K, V>,
}

impl<K, V> Clone for Values<'_, K, V> {
    fn clone(&self) -> Self {
        Values { inner: self.inner.clone() }
    }
}

impl<'a, K, V> Iterator for Values<'a, K, V> {
    type Item = &'a V;
    #[inline]
    fn next(&mut self) -> Option<&'a V> {
        self.inner.next().map(|(_, v)| v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> FusedIterator for Values<'_, K, V> {}
impl<K, V> ExactSizeIterator for Values<'_, K, V> {}

impl<K, V: fmt::Debug> fmt::Debug for Values<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// An iterator over a map's values, mutably. See
/// [`ShmHashMap::values_mut`](super::ShmHashMap::values_mut).
pub struct ValuesMut<'a, K, V> {
    pub(super) inner: IterMut<'a, K, V>,
}

impl<'a, K, V> Iterator for ValuesMut<'a, K, V> {
    type Item = &'a mut V;
    #[inline]
    fn next(&mut self) -> Option<&'a mut V> {
        self.inner.next().map(|(_, v)| v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> FusedIterator for ValuesMut<'_, K, V> {}
impl<K, V> ExactSizeIterator for ValuesMut<'_, K, V> {}

impl<K, V> fmt::Debug for ValuesMut<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValuesMut").finish_non_exhaustive()
    }
}

/// An owning iterator over a map's items. See the map's `IntoIterator`.
pub struct IntoIter<K: ShmSafe, V: ShmSafe> {
    /// Owns the items not yet taken (dropped with it) and the block.
    table: RawTable<K, V>,
    raw: RawIter<K, V>,
}

impl<K: ShmSafe, V: ShmSafe> IntoIter<K, V> {
    pub(super) fn new(mut table: RawTable<K, V>) -> Self {
        let raw = table.iter_mut();
        IntoIter { table, raw }
    }
}

impl<K: ShmSafe, V: ShmSafe> Iterator for IntoIter<K, V> {
    type Item = (K, V);
    #[inline]
    fn next(&mut self) -> Option<(K, V)> {
        let (i, _) = self.raw.next()?;
        let raw = *self.raw.raw()?;
        // SAFETY: `raw` is the table's own view; bucket `i` is full and visited once.
        Some(unsafe { self.table.take_leaving_tombstone(raw, i) })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.raw.size_hint()
    }
}

impl<K: ShmSafe, V: ShmSafe> FusedIterator for IntoIter<K, V> {}
impl<K: ShmSafe, V: ShmSafe> ExactSizeIterator for IntoIter<K, V> {}

impl<K: ShmSafe, V: ShmSafe> fmt::Debug for IntoIter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").field("left", &self.table.len()).finish()
    }
}

/// The keys of a map, consumed. See [`ShmHashMap::into_keys`](super::ShmHashMap::into_keys).
#[derive(Debug)]
pub struct IntoKeys<K: ShmSafe, V: ShmSafe> {
    pub(super) inner: IntoIter<K, V>,
}

impl<K: ShmSafe, V: ShmSafe> Iterator for IntoKeys<K, V> {
    type Item = K;
    fn next(&mut self) -> Option<K> {
        self.inner.next().map(|(k, _)| k)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The values of a map, consumed. See
/// [`ShmHashMap::into_values`](super::ShmHashMap::into_values).
#[derive(Debug)]
pub struct IntoValues<K: ShmSafe, V: ShmSafe> {
    pub(super) inner: IntoIter<K, V>,
}

impl<K: ShmSafe, V: ShmSafe> Iterator for IntoValues<K, V> {
    type Item = V;
    fn next(&mut self) -> Option<V> {
        self.inner.next().map(|(_, v)| v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The items of a map, removed as they are taken; the map keeps its buckets. Dropping the
/// iterator removes what is left. See [`ShmHashMap::drain`](super::ShmHashMap::drain).
pub struct Drain<'a, K: ShmSafe, V: ShmSafe> {
    table: &'a mut RawTable<K, V>,
    raw: RawIter<K, V>,
}

impl<'a, K: ShmSafe, V: ShmSafe> Drain<'a, K, V> {
    pub(super) fn new(table: &'a mut RawTable<K, V>) -> Self {
        let raw = table.iter_mut();
        Drain { table, raw }
    }
}

impl<K: ShmSafe, V: ShmSafe> Iterator for Drain<'_, K, V> {
    type Item = (K, V);
    #[inline]
    fn next(&mut self) -> Option<(K, V)> {
        let (i, _) = self.raw.next()?;
        let raw = *self.raw.raw()?;
        // SAFETY: `raw` is the table's own view; bucket `i` is full and visited once.
        Some(unsafe { self.table.take_leaving_tombstone(raw, i) })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.raw.size_hint()
    }
}

impl<K: ShmSafe, V: ShmSafe> FusedIterator for Drain<'_, K, V> {}
impl<K: ShmSafe, V: ShmSafe> ExactSizeIterator for Drain<'_, K, V> {}

impl<K: ShmSafe, V: ShmSafe> Drop for Drain<'_, K, V> {
    fn drop(&mut self) {
        // Drops what is left, then empties every bucket (tombstones included).
        self.table.clear();
    }
}

impl<K: ShmSafe, V: ShmSafe> fmt::Debug for Drain<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain").field("left", &self.table.len()).finish()
    }
}
