//! The entry API of [`ShmHashMap`](super::ShmHashMap): one lookup, then read, insert or change
//! in place.

use core::fmt;
use core::hash::Hash;

use crate::error::Error;
use crate::message::ShmSafe;

use super::ShmHashMap;
use super::table::{Raw, fail};

/// A view into one key's place in a map, occupied or vacant. See
/// [`ShmHashMap::entry`](super::ShmHashMap::entry).
///
/// ```
/// use ipc_runtime::{ShmHashMap, ShmString};
///
/// let mut m: ShmHashMap<ShmString, u32> = ShmHashMap::new();
/// m.entry("a".into()).or_insert(1);
/// m.entry("a".into()).and_modify(|v| *v += 10).or_insert(0);
/// assert_eq!(m["a"], 11);
/// ```
pub enum Entry<'a, K: ShmSafe, V: ShmSafe> {
    /// The key is in the map.
    Occupied(OccupiedEntry<'a, K, V>),
    /// The key is not in the map.
    Vacant(VacantEntry<'a, K, V>),
}

/// An entry whose key is in the map.
pub struct OccupiedEntry<'a, K: ShmSafe, V: ShmSafe> {
    map: &'a mut ShmHashMap<K, V>,
    /// The map's table as resolved when the entry was found (it cannot change meanwhile: the
    /// entry holds the map).
    raw: Raw<K, V>,
    index: usize,
}

/// An entry whose key is not in the map (yet).
pub struct VacantEntry<'a, K: ShmSafe, V: ShmSafe> {
    map: &'a mut ShmHashMap<K, V>,
    hash: u64,
    key: K,
}

impl<'a, K: ShmSafe + Hash + Eq, V: ShmSafe> Entry<'a, K, V> {
    /// The value, inserting `default` first if the key is vacant.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::new();
    /// *m.entry(1u8).or_insert(0u32) += 5;
    /// assert_eq!(m[&1], 5);
    /// ```
    #[track_caller]
    pub fn or_insert(self, default: V) -> &'a mut V {
        match self {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(default),
        }
    }

    /// The value, inserting `default()` first if the key is vacant.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::new();
    /// m.entry(1u8).or_insert_with(|| 7u32);
    /// assert_eq!(m[&1], 7);
    /// ```
    #[track_caller]
    pub fn or_insert_with(self, default: impl FnOnce() -> V) -> &'a mut V {
        match self {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(default()),
        }
    }

    /// The value, inserting `default(&key)` first if the key is vacant.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::new();
    /// m.entry(3u8).or_insert_with_key(|k| u32::from(*k) * 2);
    /// assert_eq!(m[&3], 6);
    /// ```
    #[track_caller]
    pub fn or_insert_with_key(self, default: impl FnOnce(&K) -> V) -> &'a mut V {
        match self {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let value = default(e.key());
                e.insert(value)
            }
        }
    }

    /// The value, inserting `V::default()` first if the key is vacant.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::<u8, ipc_runtime::ShmVec<u8>>::new();
    /// m.entry(1).or_default().push(9);
    /// assert_eq!(m[&1], [9]);
    /// ```
    #[track_caller]
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    /// Changes the value in place if the key is occupied.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 1)].into_iter().collect();
    /// m.entry(1).and_modify(|v| *v = 2);
    /// assert_eq!(m[&1], 2);
    /// ```
    pub fn and_modify(self, f: impl FnOnce(&mut V)) -> Self {
        match self {
            Entry::Occupied(mut e) => {
                f(e.get_mut());
                Entry::Occupied(e)
            }
            vacant => vacant,
        }
    }

    /// The entry's key.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::<u8, u8>::new();
    /// assert_eq!(*m.entry(4).key(), 4);
    /// ```
    pub fn key(&self) -> &K {
        match self {
            Entry::Occupied(e) => e.key(),
            Entry::Vacant(e) => e.key(),
        }
    }

    /// Sets the value, inserting the key if vacant; returns the occupied entry.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmHashMap::<u8, u8>::new();
    /// let e = m.entry(1).insert_entry(5);
    /// assert_eq!(*e.get(), 5);
    /// ```
    #[track_caller]
    pub fn insert_entry(self, value: V) -> OccupiedEntry<'a, K, V> {
        match self {
            Entry::Occupied(mut e) => {
                e.insert(value);
                e
            }
            Entry::Vacant(e) => e.insert_entry(value),
        }
    }
}

impl<'a, K: ShmSafe + Hash + Eq, V: ShmSafe> OccupiedEntry<'a, K, V> {
    pub(super) fn new(map: &'a mut ShmHashMap<K, V>, raw: Raw<K, V>, index: usize) -> Self {
        OccupiedEntry { map, raw, index }
    }

    fn raw(&self) -> Raw<K, V> {
        self.raw
    }

    /// The key in the map.
    pub fn key(&self) -> &K {
        // SAFETY: bucket `index` is full while the entry (holding `&mut` map) exists.
        unsafe { &(*self.raw().slot(self.index)).key }
    }

    /// The value.
    pub fn get(&self) -> &V {
        // SAFETY: as in `key`.
        unsafe { &(*self.raw().slot(self.index)).value }
    }

    /// The value, mutably.
    pub fn get_mut(&mut self) -> &mut V {
        // SAFETY: as in `key`; `&mut self` holds the map exclusively.
        unsafe { &mut (*self.raw().slot(self.index)).value }
    }

    /// The value, mutably, for as long as the map was borrowed.
    pub fn into_mut(self) -> &'a mut V {
        let slot = self.raw().slot(self.index);
        // SAFETY: as in `get_mut`, for `'a`: the entry gives up its borrow of the map.
        unsafe { &mut (*slot).value }
    }

    /// Replaces the value, returning the old one.
    pub fn insert(&mut self, value: V) -> V {
        core::mem::replace(self.get_mut(), value)
    }

    /// Removes the item, returning its value.
    ///
    /// ```
    /// use ipc_runtime::containers::hash_map::Entry;
    ///
    /// let mut m: ipc_runtime::ShmHashMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// if let Entry::Occupied(e) = m.entry(1) {
    ///     assert_eq!(e.remove(), 2);
    /// }
    /// assert!(m.is_empty());
    /// ```
    pub fn remove(self) -> V {
        self.remove_entry().1
    }

    /// Removes the item, returning its key and value.
    pub fn remove_entry(self) -> (K, V) {
        let raw = self.raw();
        // SAFETY: `raw` is the map's own view; bucket `index` is full.
        unsafe { self.map.table_mut().take(raw, self.index) }
    }
}

impl<'a, K: ShmSafe + Hash + Eq, V: ShmSafe> VacantEntry<'a, K, V> {
    pub(super) fn new(map: &'a mut ShmHashMap<K, V>, hash: u64, key: K) -> Self {
        VacantEntry { map, hash, key }
    }

    /// The key that would be inserted.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The key, giving up the entry.
    pub fn into_key(self) -> K {
        self.key
    }

    /// Inserts the key with `value`. Panics if the heap is out of memory.
    #[track_caller]
    pub fn insert(self, value: V) -> &'a mut V {
        match self.try_insert(value) {
            Ok(v) => v,
            Err((_, _, e)) => fail(e),
        }
    }

    /// Inserts the key with `value`, or gives both back with the error when the heap is out
    /// of memory.
    ///
    /// ```
    /// use ipc_runtime::containers::hash_map::Entry;
    ///
    /// let mut m = ipc_runtime::ShmHashMap::<u8, u8>::new();
    /// if let Entry::Vacant(e) = m.entry(1) {
    ///     *e.try_insert(2).unwrap() += 1;
    /// }
    /// assert_eq!(m[&1], 3);
    /// ```
    ///
    /// # Errors
    /// `(key, value, `[`Error::OutOfMemory`]`)` when the map had to grow and could not.
    pub fn try_insert(self, value: V) -> Result<&'a mut V, (K, V, Error)> {
        self.map.insert_absent(self.hash, self.key, value)
    }

    /// Inserts the key with `value`, returning the occupied entry.
    #[track_caller]
    pub fn insert_entry(self, value: V) -> OccupiedEntry<'a, K, V> {
        let map = self.map;
        match map.insert_absent_raw(self.hash, self.key, value) {
            Ok((raw, index)) => OccupiedEntry { map, raw, index },
            Err((_, _, e)) => fail(e),
        }
    }
}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug for Entry<'_, K, V>
where
    K: Hash + Eq,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Occupied(e) => f.debug_tuple("Entry").field(e).finish(),
            Entry::Vacant(e) => f.debug_tuple("Entry").field(e).finish(),
        }
    }
}

impl<K: ShmSafe + Hash + Eq + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug
    for OccupiedEntry<'_, K, V>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OccupiedEntry").field("key", self.key()).field("value", self.get()).finish()
    }
}

impl<K: ShmSafe + Hash + Eq + fmt::Debug, V: ShmSafe> fmt::Debug for VacantEntry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VacantEntry").field(self.key()).finish()
    }
}
