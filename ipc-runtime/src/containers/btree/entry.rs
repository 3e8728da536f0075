//! [`ShmBTreeMap::entry`]: one key's place in the map, found once, then read, changed, filled
//! or emptied without searching again.

use core::fmt;

use crate::message::ShmSafe;

use super::ShmBTreeMap;
use super::node::{key, val};
use super::raw::{self, Path};

/// A key's entry in a [`ShmBTreeMap`]: occupied or vacant. See [`ShmBTreeMap::entry`].
pub enum Entry<'a, K: ShmSafe, V: ShmSafe> {
    /// The key has a value.
    Occupied(OccupiedEntry<'a, K, V>),
    /// The key has no value.
    Vacant(VacantEntry<'a, K, V>),
}

/// An entry that holds a value.
pub struct OccupiedEntry<'a, K: ShmSafe, V: ShmSafe> {
    pub(super) map: &'a mut ShmBTreeMap<K, V>,
    pub(super) path: Path<K, V>,
    pub(super) level: usize,
}

/// An entry without a value, holding the key until one is inserted.
pub struct VacantEntry<'a, K: ShmSafe, V: ShmSafe> {
    pub(super) map: &'a mut ShmBTreeMap<K, V>,
    pub(super) key: K,
    pub(super) path: Path<K, V>,
}

impl<'a, K: ShmSafe + Ord, V: ShmSafe> Entry<'a, K, V> {
    /// The value, inserting `default` first if there is none.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::new();
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

    /// The value, inserting `default()` first if there is none.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::new();
    /// assert_eq!(*m.entry(1u8).or_insert_with(|| 7u32), 7);
    /// ```
    #[track_caller]
    pub fn or_insert_with<F: FnOnce() -> V>(self, default: F) -> &'a mut V {
        match self {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(default()),
        }
    }

    /// The value, inserting `default(&key)` first if there is none.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::new();
    /// assert_eq!(*m.entry(3u32).or_insert_with_key(|k| k * 2), 6);
    /// ```
    #[track_caller]
    pub fn or_insert_with_key<F: FnOnce(&K) -> V>(self, default: F) -> &'a mut V {
        match self {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let v = default(&e.key);
                e.insert(v)
            }
        }
    }

    /// The value, inserting `V::default()` first if there is none.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::<u8, u32>::new();
    /// assert_eq!(*m.entry(1).or_default(), 0);
    /// ```
    #[track_caller]
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    /// Calls `f` on the value if there is one; the entry comes back either way.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::new();
    /// m.entry(1u8).and_modify(|v| *v += 1).or_insert(10u32);
    /// m.entry(1u8).and_modify(|v| *v += 1).or_insert(10u32);
    /// assert_eq!(m[&1], 11);
    /// ```
    #[must_use]
    pub fn and_modify<F: FnOnce(&mut V)>(mut self, f: F) -> Self {
        if let Entry::Occupied(e) = &mut self {
            f(e.get_mut());
        }
        self
    }

    /// The entry's key.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::<u8, u8>::new();
    /// assert_eq!(*m.entry(4).key(), 4);
    /// ```
    pub fn key(&self) -> &K {
        match self {
            Entry::Occupied(e) => e.key(),
            Entry::Vacant(e) => e.key(),
        }
    }
}

impl<'a, K: ShmSafe, V: ShmSafe> OccupiedEntry<'a, K, V> {
    fn at(&self) -> (super::node::NodePtr<K, V>, usize) {
        (self.path.node(self.level), self.path.idx(self.level))
    }

    /// The key.
    pub fn key(&self) -> &K {
        let (n, i) = self.at();
        // SAFETY: the entry the search found in our own tree, borrowed through `self`.
        unsafe { &*key(n, i) }
    }

    /// The value.
    pub fn get(&self) -> &V {
        let (n, i) = self.at();
        // SAFETY: as in `key`.
        unsafe { &*val(n, i) }
    }

    /// The value, mutably.
    pub fn get_mut(&mut self) -> &mut V {
        let (n, i) = self.at();
        // SAFETY: as in `key`; `&mut self` borrows the map exclusively.
        unsafe { &mut *val(n, i) }
    }

    /// The value, mutably, for as long as the map was borrowed.
    pub fn into_mut(self) -> &'a mut V {
        let (n, i) = self.at();
        // SAFETY: as in `key`; the exclusive borrow of the map moves into the result.
        unsafe { &mut *val(n, i) }
    }

    /// Replaces the value, returning the old one.
    pub fn insert(&mut self, value: V) -> V {
        core::mem::replace(self.get_mut(), value)
    }

    /// Removes the entry, returning its value.
    ///
    /// ```
    /// use ipc_runtime::containers::btree::Entry;
    ///
    /// let mut m: ipc_runtime::ShmBTreeMap<u8, u8> = [(1, 2)].into_iter().collect();
    /// if let Entry::Occupied(e) = m.entry(1) {
    ///     assert_eq!(e.remove(), 2);
    /// }
    /// assert!(m.is_empty());
    /// ```
    pub fn remove(self) -> V {
        self.remove_entry().1
    }

    /// Removes the entry, returning its key and value.
    pub fn remove_entry(mut self) -> (K, V) {
        // SAFETY: the path of the search that found this entry; the map was borrowed since.
        unsafe { raw::remove(self.map.parts(), &mut self.path, self.level) }
    }
}

impl<'a, K: ShmSafe, V: ShmSafe> VacantEntry<'a, K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The key back, inserting nothing.
    pub fn into_key(self) -> K {
        self.key
    }

    /// Inserts `value` for the key; panics if the heap is out of memory.
    #[track_caller]
    pub fn insert(self, value: V) -> &'a mut V {
        match self.try_insert(value) {
            Ok(v) => v,
            Err((_, _, e)) => super::fail(e),
        }
    }

    /// Inserts `value` for the key, or gives both back with the error when the heap is out of
    /// memory (the map is then unchanged).
    ///
    /// # Errors
    /// The heap's allocation errors, with the key and value.
    #[allow(clippy::type_complexity)]
    pub fn try_insert(self, value: V) -> Result<&'a mut V, (K, V, crate::Error)> {
        // SAFETY: the path of the search that found no entry for this key; the map was
        // borrowed since. The result points into our own tree, borrowed for `'a`.
        unsafe { raw::insert(self.map.parts(), &self.path, self.key, value).map(|v| &mut *v) }
    }
}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug for Entry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Occupied(e) => f.debug_tuple("Occupied").field(e).finish(),
            Entry::Vacant(e) => f.debug_tuple("Vacant").field(e).finish(),
        }
    }
}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug for OccupiedEntry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OccupiedEntry").field("key", self.key()).field("value", self.get()).finish()
    }
}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe> fmt::Debug for VacantEntry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VacantEntry").field(self.key()).finish()
    }
}
