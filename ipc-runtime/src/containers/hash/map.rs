//! [`ShmHashMap`]: a hash map in the shared heap.

use core::borrow::Borrow;
use core::fmt;
use core::hash::Hash;
use core::mem::{self, align_of, size_of};
use core::ops::Index;

use crate::error::{Error, Result};
use crate::message::{InvalidValue, ShmSafe, fingerprint};
use crate::ptr::RelPtr;

use super::entry::{Entry, OccupiedEntry, VacantEntry};
use super::hasher::{ShmBuildHasher, fresh_seed, hash_one};
use super::iter::{Drain, IntoIter, IntoKeys, IntoValues, Iter, IterMut, Keys, Values, ValuesMut};
use super::table::{Placed, RawTable, Slot, fail};

/// A hash map in shared memory, with the API and feel of std's
/// [`HashMap`](std::collections::HashMap).
///
/// The buckets live in one block of this process's shared heap (a SwissTable: open addressing
/// with a byte of metadata per bucket, as in hashbrown); the `ShmHashMap` itself is 48 bytes of
/// plain data (a [`RelPtr`], the bucket count, the number of items, the room left and the hash
/// seed) that can sit inside a message, a [`ShmVec`](crate::ShmVec) or another map. Every process
/// that maps the heap finds the same keys: the hash function is fixed (see
/// [`ShmBuildHasher`]) and the seed is in the map.
///
/// ```
/// use ipc_runtime::{ShmHashMap, ShmString, ShmVec};
///
/// let mut scores: ShmHashMap<ShmString, ShmVec<u32>> = ShmHashMap::new();
/// scores.insert("ada".into(), ShmVec::from_slice(&[90, 85]));
/// scores.entry("bob".into()).or_default().push(70);
/// // Look up by `&str`: `ShmString: Borrow<str>` and both hash alike.
/// assert_eq!(scores.get("ada").map(|v| v.len()), Some(2));
/// assert_eq!(scores["bob"], [70]);
/// assert!(!scores.contains_key("eve"));
/// assert_eq!(scores.remove("ada").unwrap(), [90, 85]);
/// assert_eq!(scores.len(), 1);
/// ```
///
/// Only the process that built the map may change or drop it; other processes read it through
/// `&` in a [`Sample`](crate::Sample), in a read-only mapping. A reader's lookups are bounded
/// whatever the writer did: every probe sequence ends after the table's number of groups, every
/// bucket index is masked into the block, which is resolved bounds-checked and only inside the
/// writer's own segment ([`RelPtr::resolve_held`]). A map received in a message is checked
/// whole when the message arrives (its header, every control byte, and every key and value
/// with invalid bit patterns); [`try_get`](Self::try_get) reports a map whose header no longer
/// resolves as an error, the other accessors panic naming the map.
///
/// Iteration order is unspecified and differs between maps (each new map gets a fresh seed),
/// as with std.
#[repr(C)]
pub struct ShmHashMap<K: ShmSafe, V: ShmSafe> {
    table: RawTable<K, V>,
}

// SAFETY: the map holds a relocatable pointer and four counters; its keys and values are
// ShmSafe.
unsafe impl<K: ShmSafe, V: ShmSafe> ShmSafe for ShmHashMap<K, V> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::u64(
            fingerprint::str(K::LAYOUT_FINGERPRINT, "ShmHashMap"),
            V::LAYOUT_FINGERPRINT,
        ),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    // Where a subscriber receives the message: the header, the block (resolved as a lookup
    // resolves it), every control byte, and each key and value that may be invalid.
    const MAY_BE_INVALID: bool = true;
    unsafe fn check_bits(value: *const Self) -> core::result::Result<(), InvalidValue> {
        // SAFETY: the caller vouches for the map's bytes; `table` is its only field, at 0.
        unsafe { RawTable::<K, V>::check(value.cast(), |slot| check_slot(slot)) }
    }
}

/// The receive-time check of one full bucket's key and value.
fn check_slot<K: ShmSafe, V: ShmSafe>(
    slot: *const Slot<K, V>,
) -> core::result::Result<(), InvalidValue> {
    if K::MAY_BE_INVALID {
        // SAFETY: `slot` is a full bucket of a resolved block: readable, initialised bytes.
        unsafe { K::check_bits(core::ptr::addr_of!((*slot).key)) }
            .map_err(|e| e.in_field("key"))?;
    }
    if V::MAY_BE_INVALID {
        // SAFETY: as above.
        unsafe { V::check_bits(core::ptr::addr_of!((*slot).value)) }
            .map_err(|e| e.in_field("value"))?;
    }
    Ok(())
}

impl<K: ShmSafe, V: ShmSafe> ShmHashMap<K, V> {
    /// An empty map with a fresh random seed; allocates nothing.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u64, u64> = ipc_runtime::ShmHashMap::new();
    /// assert!(m.is_empty());
    /// assert_eq!(m.capacity(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_seed(fresh_seed())
    }

    /// An empty map hashing with `seed`; allocates nothing. Two maps with the same seed and
    /// the same operations lay out their buckets alike.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = ipc_runtime::ShmHashMap::with_seed(42);
    /// assert_eq!(m.seed(), 42);
    /// ```
    pub const fn with_seed(seed: u64) -> Self {
        ShmHashMap { table: RawTable::new(seed) }
    }

    /// The hash seed (stored in the map, so every process hashes alike).
    pub fn seed(&self) -> u64 {
        self.table.seed()
    }

    /// The hash function of this map, for use elsewhere (`std`'s `HashMap::with_hasher`).
    pub fn hasher(&self) -> ShmBuildHasher {
        ShmBuildHasher::with_seed(self.seed())
    }

    /// The relocatable pointer to the map's block (null when nothing is allocated).
    ///
    /// ```
    /// assert!(ipc_runtime::ShmHashMap::<u8, u8>::new().rel_ptr().is_null());
    /// ```
    pub fn rel_ptr(&self) -> RelPtr {
        self.table.rel_ptr()
    }

    /// Number of items.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// assert_eq!(m.len(), 1);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the map holds no items.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmHashMap::<u8, u8>::new().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many items the map holds without growing (7/8 of its buckets).
    ///
    /// ```
    /// let m = ipc_runtime::ShmHashMap::<u8, u8>::with_capacity(10);
    /// assert!(m.capacity() >= 10);
    /// ```
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// An iterator over the items, in unspecified order.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 10), (2, 20)].into_iter().collect();
    /// assert_eq!(m.iter().map(|(k, v)| u32::from(*k) * u32::from(*v)).sum::<u32>(), 50);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter::new(self.table.iter())
    }

    /// Like [`iter`](Self::iter), but a map (of another process) whose header does not
    /// resolve is an error rather than a panic.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 10)].into_iter().collect();
    /// assert_eq!(m.try_iter().unwrap().count(), 1);
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`] or [`Error::OutOfBounds`] naming the map's segment and offset.
    pub fn try_iter(&self) -> Result<Iter<'_, K, V>> {
        Ok(Iter::new(self.table.try_iter()?))
    }

    /// An iterator over the items with mutable values.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 10)].into_iter().collect();
    /// for (_, v) in m.iter_mut() {
    ///     *v += 1;
    /// }
    /// assert_eq!(m[&1], 11);
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut::new(self.table.iter_mut())
    }

    /// An iterator over the keys.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, ()> = [(3, ())].into_iter().collect();
    /// assert_eq!(m.keys().copied().collect::<Vec<_>>(), [3]);
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys { inner: self.iter() }
    }

    /// An iterator over the values.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(3, 4)].into_iter().collect();
    /// assert_eq!(m.values().copied().collect::<Vec<_>>(), [4]);
    /// ```
    pub fn values(&self) -> Values<'_, K, V> {
        Values { inner: self.iter() }
    }

    /// An iterator over mutable values.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(3, 4)].into_iter().collect();
    /// m.values_mut().for_each(|v| *v *= 2);
    /// assert_eq!(m[&3], 8);
    /// ```
    pub fn values_mut(&mut self) -> ValuesMut<'_, K, V> {
        ValuesMut { inner: self.iter_mut() }
    }

    /// The keys, consuming the map.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(3, 4)].into_iter().collect();
    /// assert_eq!(m.into_keys().collect::<Vec<_>>(), [3]);
    /// ```
    pub fn into_keys(self) -> IntoKeys<K, V> {
        IntoKeys { inner: self.into_iter() }
    }

    /// The values, consuming the map.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(3, 4)].into_iter().collect();
    /// assert_eq!(m.into_values().collect::<Vec<_>>(), [4]);
    /// ```
    pub fn into_values(self) -> IntoValues<K, V> {
        IntoValues { inner: self.into_iter() }
    }

    /// Removes every item, returning them as an iterator; the map keeps its buckets.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// assert_eq!(m.drain().collect::<Vec<_>>(), [(1, 2)]);
    /// assert!(m.is_empty() && m.capacity() > 0);
    /// ```
    pub fn drain(&mut self) -> Drain<'_, K, V> {
        Drain::new(&mut self.table)
    }

    /// Removes every item, keeping the buckets.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// m.clear();
    /// assert!(m.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.table.clear();
    }

    /// Keeps only the items for which `keep` returns true.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// m.retain(|k, _| k % 2 == 0);
    /// assert_eq!(m.len(), 5);
    /// ```
    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.table.retain(keep);
    }
}

impl<K: ShmSafe + Hash + Eq, V: ShmSafe> ShmHashMap<K, V> {
    #[inline(always)]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        hash_one(self.table.seed(), key)
    }

    /// An empty map with room for `capacity` items. Panics if the heap is out of memory.
    ///
    /// ```
    /// let m = ipc_runtime::ShmHashMap::<u64, u64>::with_capacity(100);
    /// assert!(m.capacity() >= 100);
    /// ```
    #[track_caller]
    pub fn with_capacity(capacity: usize) -> Self {
        Self::try_with_capacity(capacity).unwrap_or_else(|e| fail(e))
    }

    /// Like [`with_capacity`](Self::with_capacity), but returns an error when out of memory.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmHashMap::<u64, u64>::try_with_capacity(usize::MAX).is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] or [`Error::CapacityOverflow`].
    pub fn try_with_capacity(capacity: usize) -> Result<Self> {
        let mut m = Self::new();
        m.try_reserve(capacity)?;
        Ok(m)
    }

    /// Makes room for at least `additional` more items. Panics if the heap is out of memory.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::<u8, u8>::new();
    /// m.reserve(20);
    /// assert!(m.capacity() >= 20);
    /// ```
    #[track_caller]
    pub fn reserve(&mut self, additional: usize) {
        self.try_reserve(additional).unwrap_or_else(|e| fail(e));
    }

    /// Makes room for at least `additional` more items, or returns an error.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::<u8, u8>::new();
    /// assert!(m.try_reserve(20).is_ok());
    /// assert!(m.try_reserve(usize::MAX).is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] or [`Error::CapacityOverflow`]; the map is unchanged.
    pub fn try_reserve(&mut self, additional: usize) -> Result<()> {
        let seed = self.table.seed();
        self.table.reserve(additional, |k| hash_one(seed, k))
    }

    /// Shrinks the buckets as far as the items allow.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::<u8, u8>::with_capacity(100);
    /// m.insert(1, 1);
    /// m.shrink_to_fit();
    /// assert!(m.capacity() < 100);
    /// ```
    #[track_caller]
    pub fn shrink_to_fit(&mut self) {
        self.shrink_to(0);
    }

    /// Shrinks the buckets to hold at least `min_capacity` items (and every item).
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::<u8, u8>::with_capacity(100);
    /// m.shrink_to(10);
    /// assert!(m.capacity() >= 10 && m.capacity() < 100);
    /// ```
    #[track_caller]
    pub fn shrink_to(&mut self, min_capacity: usize) {
        let seed = self.table.seed();
        self.table.shrink_to(min_capacity, |k| hash_one(seed, k)).unwrap_or_else(|e| fail(e));
    }

    /// Inserts `value` under `key`, returning the value it replaces (the key is kept then, as
    /// std does). Panics if the heap is out of memory.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::new();
    /// assert_eq!(m.insert(1u8, 'a'), None);
    /// assert_eq!(m.insert(1, 'b'), Some('a'));
    /// assert_eq!(m[&1], 'b');
    /// ```
    #[inline]
    #[track_caller]
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.try_insert(key, value) {
            Ok(old) => old,
            Err((_, _, e)) => fail(e),
        }
    }

    /// Like [`insert`](Self::insert), but gives the key and value back with the error when
    /// the heap is out of memory (the map is then unchanged).
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::new();
    /// assert_eq!(m.try_insert(1u8, 2u8).unwrap(), None);
    /// ```
    ///
    /// # Errors
    /// `(key, value, `[`Error::OutOfMemory`]`)` when the map had to grow and could not.
    #[inline]
    pub fn try_insert(
        &mut self,
        key: K,
        value: V,
    ) -> core::result::Result<Option<V>, (K, V, Error)> {
        let hash = self.hash(&key);
        if let Some((raw, i)) = self.table.find_mut(hash, |k| *k == key) {
            // SAFETY: bucket `i` of our own table is full.
            return Ok(Some(mem::replace(unsafe { &mut (*raw.slot(i)).value }, value)));
        }
        let seed = self.table.seed();
        self.table.insert_new(hash, key, value, |k| hash_one(seed, k)).map(|_| None)
    }

    /// Inserts a key known to be absent (the entry API's vacant insert).
    pub(super) fn insert_absent(
        &mut self,
        hash: u64,
        key: K,
        value: V,
    ) -> core::result::Result<&mut V, (K, V, Error)> {
        let (raw, i) = self.insert_absent_raw(hash, key, value)?;
        // SAFETY: bucket `i` of our own table was just filled.
        Ok(unsafe { &mut (*raw.slot(i)).value })
    }

    /// Inserts a key known to be absent; returns the table's view and the key's bucket.
    pub(super) fn insert_absent_raw(&mut self, hash: u64, key: K, value: V) -> Placed<K, V> {
        let seed = self.table.seed();
        self.table.insert_new(hash, key, value, |k| hash_one(seed, k))
    }

    /// The value under `key`, looked up by any borrowed form of the key (`&str` for
    /// [`ShmString`](crate::ShmString) keys). Panics if the map (another process's) does not
    /// resolve; see [`try_get`](Self::try_get).
    ///
    /// ```
    /// use ipc_runtime::{ShmHashMap, ShmString};
    ///
    /// let m: ShmHashMap<ShmString, u32> = [("a".into(), 1)].into_iter().collect();
    /// assert_eq!(m.get("a"), Some(&1));
    /// assert_eq!(m.get("b"), None);
    /// ```
    #[inline]
    #[track_caller]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_key_value(key).map(|(_, v)| v)
    }

    /// Like [`get`](Self::get), but a map whose header does not resolve (a corrupt map of
    /// another process) is an error rather than a panic.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// assert_eq!(m.try_get(&1).unwrap(), Some(&2));
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`] or [`Error::OutOfBounds`] naming the map's segment and offset.
    #[inline]
    pub fn try_get<Q>(&self, key: &Q) -> Result<Option<&V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Ok(self.try_get_key_value(key)?.map(|(_, v)| v))
    }

    /// The stored key and the value under `key`.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// assert_eq!(m.get_key_value(&1), Some((&1, &2)));
    /// ```
    #[inline]
    #[track_caller]
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.try_get_key_value(key).unwrap_or_else(|e| fail(e))
    }

    #[inline]
    fn try_get_key_value<Q>(&self, key: &Q) -> Result<Option<(&K, &V)>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.table.len() == 0 {
            return Ok(None);
        }
        let hash = self.hash(key);
        Ok(self.table.find(hash, |k| k.borrow() == key)?.map(|(raw, i)| {
            // SAFETY: bucket `i` is full (see `Raw::find`); the block lives as long as the
            // mapping, which outlives `&self`.
            let slot = unsafe { &*raw.slot(i) };
            (&slot.key, &slot.value)
        }))
    }

    /// Whether the map holds `key`.
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// assert!(m.contains_key(&1) && !m.contains_key(&2));
    /// ```
    #[inline]
    #[track_caller]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_key_value(key).is_some()
    }

    /// The value under `key`, mutably.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// *m.get_mut(&1).unwrap() = 5;
    /// assert_eq!(m[&1], 5);
    /// ```
    #[inline]
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.table.len() == 0 {
            return None;
        }
        let hash = self.hash(key);
        let (raw, i) = self.table.find_mut(hash, |k| k.borrow() == key)?;
        // SAFETY: bucket `i` of our own table is full; `&mut self` is exclusive.
        Some(unsafe { &mut (*raw.slot(i)).value })
    }

    /// Removes `key`, returning its value.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// assert_eq!(m.remove(&1), Some(2));
    /// assert_eq!(m.remove(&1), None);
    /// ```
    #[inline]
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key`, returning the stored key and its value.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// assert_eq!(m.remove_entry(&1), Some((1, 2)));
    /// ```
    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.table.len() == 0 {
            return None;
        }
        let hash = self.hash(key);
        let (raw, i) = self.table.find_mut(hash, |k| k.borrow() == key)?;
        // SAFETY: `raw` is our table's view and bucket `i` is full.
        Some(unsafe { self.table.take(raw, i) })
    }

    /// The entry of `key`, to read, insert or change in place.
    ///
    /// ```
    /// let mut counts = ipc_runtime::ShmHashMap::new();
    /// for word in ["a", "b", "a"] {
    ///     *counts.entry(word.len() as u32 + u32::from(word == "a")).or_insert(0u32) += 1;
    /// }
    /// assert_eq!(counts[&2], 2);
    /// ```
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let hash = self.hash(&key);
        match self.table.find_mut(hash, |k| *k == key) {
            Some((raw, index)) => Entry::Occupied(OccupiedEntry::new(self, raw, index)),
            None => Entry::Vacant(VacantEntry::new(self, hash, key)),
        }
    }

    /// The raw table, for tests that scribble on it.
    #[cfg(test)]
    pub(super) fn table_mut_for_tests(&mut self) -> &mut RawTable<K, V> {
        &mut self.table
    }

    /// The raw table, for the entry API.
    pub(super) fn table_mut(&mut self) -> &mut RawTable<K, V> {
        &mut self.table
    }

    /// A copy in this process's heap, or an error when out of memory (or when this map, of
    /// another process, does not resolve).
    ///
    /// ```
    /// let m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// assert_eq!(m.try_clone().unwrap(), m);
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfMemory`], or the errors of resolving the map.
    pub fn try_clone(&self) -> Result<Self>
    where
        K: Clone,
        V: Clone,
    {
        Ok(ShmHashMap { table: self.table.try_clone()? })
    }
}

impl<K: ShmSafe, V: ShmSafe> Default for ShmHashMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: ShmSafe + Hash + Eq + Clone, V: ShmSafe + Clone> Clone for ShmHashMap<K, V> {
    /// A copy in this process's heap (of a map in another process's heap too), with the same
    /// seed and bucket layout: no key is hashed again.
    #[track_caller]
    fn clone(&self) -> Self {
        self.try_clone().unwrap_or_else(|e| fail(e))
    }
}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug for ShmHashMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: ShmSafe + Hash + Eq, V: ShmSafe + PartialEq> PartialEq for ShmHashMap<K, V> {
    /// Equal when both hold the same keys with equal values, whatever the order or seeds.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<K: ShmSafe + Hash + Eq, V: ShmSafe + Eq> Eq for ShmHashMap<K, V> {}

impl<K, V, Q> Index<&Q> for ShmHashMap<K, V>
where
    K: ShmSafe + Hash + Eq + Borrow<Q>,
    V: ShmSafe,
    Q: Hash + Eq + ?Sized,
{
    type Output = V;
    /// The value under `key`. Panics if there is none.
    #[track_caller]
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry found for key")
    }
}

impl<K: ShmSafe + Hash + Eq, V: ShmSafe> Extend<(K, V)> for ShmHashMap<K, V> {
    #[track_caller]
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        // As std: reserve the whole hint only into an empty map (the rest may be duplicates).
        let hint = iter.size_hint().0;
        self.reserve(if self.is_empty() { hint } else { hint.div_ceil(2) });
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<'a, K: ShmSafe + Hash + Eq + Copy, V: ShmSafe + Copy> Extend<(&'a K, &'a V)>
    for ShmHashMap<K, V>
{
    #[track_caller]
    fn extend<I: IntoIterator<Item = (&'a K, &'a V)>>(&mut self, iter: I) {
        self.extend(iter.into_iter().map(|(k, v)| (*k, *v)));
    }
}

impl<K: ShmSafe + Hash + Eq, V: ShmSafe> FromIterator<(K, V)> for ShmHashMap<K, V> {
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Self::new();
        m.extend(iter);
        m
    }
}

impl<K: ShmSafe + Hash + Eq, V: ShmSafe, const N: usize> From<[(K, V); N]> for ShmHashMap<K, V> {
    #[track_caller]
    fn from(items: [(K, V); N]) -> Self {
        items.into_iter().collect()
    }
}

impl<'a, K: ShmSafe, V: ShmSafe> IntoIterator for &'a ShmHashMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<'a, K: ShmSafe, V: ShmSafe> IntoIterator for &'a mut ShmHashMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;
    fn into_iter(self) -> IterMut<'a, K, V> {
        self.iter_mut()
    }
}

impl<K: ShmSafe, V: ShmSafe> IntoIterator for ShmHashMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;
    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter::new(self.table)
    }
}
