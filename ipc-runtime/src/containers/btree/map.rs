//! [`ShmBTreeMap`]: an ordered map in the shared heap.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::{self, align_of, size_of};
use core::ops::{Bound, Index, RangeBounds};
use core::ptr;

use crate::error::Error;
use crate::message::{ShmSafe, fingerprint};
use crate::ptr::RelPtr;

use super::cursor::{RawRange, Seek, Tree, checked_len};
use super::entry::{Entry, OccupiedEntry, VacantEntry};
use super::iter::{IntoIter, Iter, IterMut, Keys, Range, RangeMut, Values, ValuesMut};
use super::node::{MAX_HEIGHT, NodePtr, Own, key, val};
use super::raw::{self, Path, Root, own_len, search_node};

/// An ordered map in shared memory, with the API and feel of
/// [`BTreeMap`](std::collections::BTreeMap).
///
/// A B-tree (std's shape: nodes of 5 to 11 entries) whose nodes live in this process's shared
/// heap and point to each other with [`RelPtr`]s. The map itself is 32 bytes of plain data (the
/// root pointer, the height and the length), so it can sit inside a message, a
/// [`ShmVec`](crate::ShmVec) or another map, and every process that maps the heap reads the same
/// entries.
///
/// Only the process that built the map may change or drop it; other processes get `&ShmBTreeMap`
/// through a [`Sample`](crate::Sample) and read it through a read-only mapping. A subscriber
/// checks the whole tree when it receives a message (every node pointer resolves inside the
/// publisher's heap, counts are in bounds, all leaves are at the tree's height, no node is
/// reached twice, the entry count matches), and every later walk is bounded again (by the
/// height, the node counts and the length), so a publisher that changes its memory afterwards
/// can make a reader see wrong entries or panic with a clear message, never loop forever or read
/// out of bounds.
///
/// ```
/// use ipc_runtime::ShmBTreeMap;
///
/// let mut m = ShmBTreeMap::new();
/// m.insert(3u64, 30u32);
/// m.insert(1, 10);
/// m.insert(2, 20);
/// assert_eq!(m.get(&2), Some(&20));
/// assert_eq!(m.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
/// assert_eq!(m.range(2..).map(|(k, v)| k + *v as u64).collect::<Vec<_>>(), [22, 33]);
/// assert_eq!(m.first_key_value(), Some((&1, &10)));
/// *m.entry(4).or_insert(0) += 40;
/// assert_eq!(m.remove(&1), Some(10));
/// assert_eq!(m.len(), 3);
/// ```
#[repr(C)]
pub struct ShmBTreeMap<K: ShmSafe, V: ShmSafe> {
    pub(super) root: RelPtr,
    pub(super) height: u64,
    pub(super) len: u64,
    _marker: PhantomData<(K, V)>,
}

// SAFETY: the map holds only a relocatable pointer and two counters; its keys and values are
// ShmSafe, and `check_bits` checks the whole tree (see `super::check`).
unsafe impl<K: ShmSafe, V: ShmSafe> ShmSafe for ShmBTreeMap<K, V> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::u64(
            fingerprint::str(K::LAYOUT_FINGERPRINT, "ShmBTreeMap"),
            V::LAYOUT_FINGERPRINT,
        ),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    const MAY_BE_INVALID: bool = true;
    unsafe fn check_bits(value: *const Self) -> Result<(), crate::message::InvalidValue> {
        // SAFETY: the caller vouches for the map's bytes.
        unsafe { super::check::tree::<K, V>(value) }
    }
}

impl<K: ShmSafe, V: ShmSafe> ShmBTreeMap<K, V> {
    /// An empty map; allocates nothing.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, u32> = ipc_runtime::ShmBTreeMap::new();
    /// assert!(m.is_empty());
    /// ```
    pub const fn new() -> Self {
        ShmBTreeMap { root: RelPtr::NULL, height: 0, len: 0, _marker: PhantomData }
    }

    /// The root pointer, height and length at `value`, read without a reference.
    ///
    /// # Safety
    /// `value` points to `size_of::<Self>()` readable bytes (maybe unaligned).
    pub(super) unsafe fn raw_parts(value: *const Self) -> (RelPtr, u64, u64) {
        // SAFETY: as the caller promised; plain integers.
        unsafe {
            (
                ptr::addr_of!((*value).root).read_unaligned(),
                ptr::addr_of!((*value).height).read_unaligned(),
                ptr::addr_of!((*value).len).read_unaligned(),
            )
        }
    }

    /// Number of entries (`usize::MAX` for a map from another process whose length does not fit
    /// this platform's `usize`).
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u8, u8> = [(1, 2), (3, 4)].into_iter().collect();
    /// assert_eq!(m.len(), 2);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// Whether there are no entries.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmBTreeMap::<u8, u8>::new().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The relocatable pointer to the root node (null for an empty map).
    ///
    /// ```
    /// assert!(ipc_runtime::ShmBTreeMap::<u8, u8>::new().root_ptr().is_null());
    /// ```
    pub fn root_ptr(&self) -> RelPtr {
        self.root
    }

    #[cold]
    pub(super) fn corrupt(&self, what: &str) -> Error {
        Error::Corrupted {
            what: format!(
                "ShmBTreeMap at {:016x}+{:#x}: {what} (height {}, len {})",
                self.root.segment(),
                self.root.offset(),
                self.height,
                self.len
            ),
        }
    }

    /// The tree for reading, or `None` when it is empty; a clear panic for a corrupt header.
    #[inline]
    pub(super) fn tree(&self) -> Option<Tree> {
        if self.root.is_null() {
            return None;
        }
        if self.height > MAX_HEIGHT as u64 {
            super::fail(self.corrupt("height above the maximum"));
        }
        Some(Tree {
            own: Own::get(),
            root: self.root,
            root_holder: ptr::addr_of!(self.root).cast(),
            height: self.height as usize,
            write: false,
        })
    }

    /// The tree for the owner's writes.
    #[inline]
    pub(super) fn tree_mut(&mut self) -> Option<Tree> {
        let mut t = self.tree()?;
        t.write = true;
        Some(t)
    }

    pub(super) fn parts(&mut self) -> Root<'_> {
        Root { root: &mut self.root, height: &mut self.height, len: &mut self.len }
    }

    /// The node and index of the entry with key `k`.
    #[inline]
    fn find<Q>(&self, k: &Q) -> Option<(NodePtr<K, V>, usize)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let t = self.tree()?;
        let mut n = t.root::<K, V>();
        let mut level = 0;
        loop {
            // SAFETY: `n` resolved as a node of this tree; its count is checked.
            match unsafe { search_node(n, checked_len(n), k) } {
                Ok(i) => return Some((n, i)),
                Err(_) if level == t.height => return None,
                Err(i) => {
                    level += 1;
                    // SAFETY: `n` is internal (above the leaf level); `i <= len`.
                    n = unsafe { t.child(n, i, level) };
                }
            }
        }
    }

    /// Searches for `k` in this (owned, non-empty) tree, filling `path`: `Ok(level)` where it
    /// was found, or `Err(())` with the insertion point at the leaf level.
    #[inline]
    pub(super) fn search<Q>(&mut self, k: &Q, path: &mut Path<K, V>) -> Result<usize, ()>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let Some(t) = self.tree_mut() else { return Err(()) };
        let mut n = t.root::<K, V>();
        let mut level = 0;
        loop {
            // SAFETY: `n` is a node of our tree.
            match unsafe { search_node(n, own_len(n), k) } {
                Ok(i) => {
                    path.set(level, n, i);
                    return Ok(level);
                }
                Err(i) => {
                    path.set(level, n, i);
                    if level == t.height {
                        return Err(());
                    }
                    level += 1;
                    // SAFETY: internal node, `i <= len`.
                    n = unsafe { t.child(n, i, level) };
                }
            }
        }
    }

    /// The value for `k`.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, char> = [(1, 'a')].into_iter().collect();
    /// assert_eq!(m.get(&1), Some(&'a'));
    /// assert_eq!(m.get(&2), None);
    /// ```
    #[inline]
    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        // SAFETY: `find` returns an initialised entry of a resolved node; `&self` keeps the map.
        self.find(k).map(|(n, i)| unsafe { &*val(n, i) })
    }

    /// The key and value for `k`.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, char> = [(1, 'a')].into_iter().collect();
    /// assert_eq!(m.get_key_value(&1), Some((&1, &'a')));
    /// ```
    pub fn get_key_value<Q>(&self, k: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        // SAFETY: as in `get`.
        self.find(k).map(|(n, i)| unsafe { (&*key(n, i), &*val(n, i)) })
    }

    /// The value for `k`, mutably (only in the owning process).
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = [(1, 5)].into_iter().collect();
    /// *m.get_mut(&1).unwrap() += 1;
    /// assert_eq!(m[&1], 6);
    /// ```
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if self.is_empty() {
            return None;
        }
        let mut path = Path::new();
        let level = self.search(k, &mut path).ok()?;
        // SAFETY: the entry found in our own (writable) tree; `&mut self` is exclusive.
        Some(unsafe { &mut *val(path.node(level), path.idx(level)) })
    }

    /// Whether there is an entry for `k`.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, ()> = [(1, ())].into_iter().collect();
    /// assert!(m.contains_key(&1) && !m.contains_key(&2));
    /// ```
    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(k).is_some()
    }

    /// Inserts `value` for `key`, returning the value it replaces (the key is kept, as in
    /// std). Panics if the heap is out of memory.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::new();
    /// assert_eq!(m.insert(1u8, 'a'), None);
    /// assert_eq!(m.insert(1, 'b'), Some('a'));
    /// ```
    #[track_caller]
    pub fn insert(&mut self, key: K, value: V) -> Option<V>
    where
        K: Ord,
    {
        match self.try_insert(key, value) {
            Ok(old) => old,
            Err((_, _, e)) => super::fail(e),
        }
    }

    /// Like [`insert`](Self::insert), but gives the key and value back with the error when the
    /// heap is out of memory (the map is then unchanged).
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::new();
    /// assert_eq!(m.try_insert(1u8, 'a').ok(), Some(None));
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] (and the heap's other allocation errors), with the entry.
    #[allow(clippy::type_complexity)]
    pub fn try_insert(&mut self, key: K, value: V) -> Result<Option<V>, (K, V, Error)>
    where
        K: Ord,
    {
        let mut path = Path::new();
        match self.search(&key, &mut path) {
            Ok(level) => {
                // SAFETY: the entry found in our own tree.
                let slot = unsafe { &mut *val(path.node(level), path.idx(level)) };
                Ok(Some(mem::replace(slot, value)))
            }
            Err(()) => {
                // SAFETY: `path` is this search's, no equal key, tree unchanged since.
                unsafe { raw::insert(self.parts(), &path, key, value) }?;
                Ok(None)
            }
        }
    }

    /// Removes the entry for `k`, returning its value.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = [(1, 5)].into_iter().collect();
    /// assert_eq!(m.remove(&1), Some(5));
    /// assert_eq!(m.remove(&1), None);
    /// ```
    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.remove_entry(k).map(|(_, v)| v)
    }

    /// Removes the entry for `k`, returning its key and value.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = [(1, 5)].into_iter().collect();
    /// assert_eq!(m.remove_entry(&1), Some((1, 5)));
    /// ```
    pub fn remove_entry<Q>(&mut self, k: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if self.is_empty() {
            return None;
        }
        let mut path = Path::new();
        let level = self.search(k, &mut path).ok()?;
        // SAFETY: the entry this search found; tree unchanged since.
        Some(unsafe { raw::remove(self.parts(), &mut path, level) })
    }

    /// The path to the first (`last == false`) or last entry of this owned, non-empty tree.
    fn edge_path(&mut self, last: bool, path: &mut Path<K, V>) -> Option<usize> {
        let t = self.tree_mut()?;
        let mut n = t.root::<K, V>();
        for level in 0..=t.height {
            // SAFETY: `n` is a node of our tree.
            let l = unsafe { own_len(n) };
            let i = if !last {
                0
            } else if level == t.height {
                l.checked_sub(1)?
            } else {
                l
            };
            path.set(level, n, i);
            if level < t.height {
                // SAFETY: internal, `i <= len`.
                n = unsafe { t.child(n, i, level + 1) };
            }
        }
        Some(t.height)
    }

    /// Removes and returns the entry with the least key.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 0), (1, 0)].into_iter().collect();
    /// assert_eq!(m.pop_first(), Some((1, 0)));
    /// ```
    pub fn pop_first(&mut self) -> Option<(K, V)> {
        let mut path = Path::new();
        let level = self.edge_path(false, &mut path)?;
        // SAFETY: the path to the first entry, which is in a leaf.
        Some(unsafe { raw::remove(self.parts(), &mut path, level) })
    }

    /// Removes and returns the entry with the greatest key.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 0), (1, 0)].into_iter().collect();
    /// assert_eq!(m.pop_last(), Some((2, 0)));
    /// ```
    pub fn pop_last(&mut self) -> Option<(K, V)> {
        let mut path = Path::new();
        let level = self.edge_path(true, &mut path)?;
        // SAFETY: the path to the last entry, which is in a leaf.
        Some(unsafe { raw::remove(self.parts(), &mut path, level) })
    }

    /// The entry with the least key.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 0), (1, 0)].into_iter().collect();
    /// assert_eq!(m.first_key_value(), Some((&1, &0)));
    /// ```
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.iter().next()
    }

    /// The entry with the greatest key.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 0), (1, 0)].into_iter().collect();
    /// assert_eq!(m.last_key_value(), Some((&2, &0)));
    /// ```
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.iter().next_back()
    }

    /// The whole tree as a range of at most `len` entries.
    fn raw_all(&self, write: bool) -> RawRange<K, V> {
        match self.tree() {
            Some(mut t) => {
                t.write = write;
                RawRange::new(t, |_, _| 0, |_, l| l, self.len())
            }
            None => RawRange::empty(Tree {
                own: Own::get(),
                root: RelPtr::NULL,
                root_holder: ptr::null(),
                height: 0,
                write,
            }),
        }
    }

    fn raw_range<Q, R>(&self, range: R, write: bool) -> RawRange<K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        let (start, end) = (range.start_bound(), range.end_bound());
        match (start, end) {
            (Bound::Excluded(s), Bound::Excluded(e)) if s == e => {
                panic!("range start and end are equal and excluded in ShmBTreeMap")
            }
            (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e))
                if s > e =>
            {
                panic!("range start is greater than range end in ShmBTreeMap")
            }
            _ => {}
        }
        match self.tree() {
            Some(mut t) => {
                t.write = write;
                let (lower, upper) = (Seek::lower(start), Seek::upper(end));
                RawRange::new(t, |n, l| lower.index(n, l), |n, l| upper.index(n, l), self.len())
            }
            None => self.raw_all(write),
        }
    }

    /// The entries in key order (double-ended).
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 20), (1, 10)].into_iter().collect();
    /// assert_eq!(m.iter().collect::<Vec<_>>(), [(&1, &10), (&2, &20)]);
    /// assert_eq!(m.iter().next_back(), Some((&2, &20)));
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter::new(self.raw_all(false))
    }

    /// The entries in key order, values mutable (only in the owning process).
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 20), (1, 10)].into_iter().collect();
    /// m.iter_mut().for_each(|(k, v)| *v += k);
    /// assert_eq!(m[&2], 22);
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut::new(self.raw_all(true))
    }

    /// The keys in order.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 0), (1, 0)].into_iter().collect();
    /// assert_eq!(m.keys().collect::<Vec<_>>(), [&1, &2]);
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys(self.iter())
    }

    /// The values in key order.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 20), (1, 10)].into_iter().collect();
    /// assert_eq!(m.values().collect::<Vec<_>>(), [&10, &20]);
    /// ```
    pub fn values(&self) -> Values<'_, K, V> {
        Values(self.iter())
    }

    /// The values in key order, mutable (only in the owning process).
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = [(1, 10)].into_iter().collect();
    /// m.values_mut().for_each(|v| *v *= 2);
    /// assert_eq!(m[&1], 20);
    /// ```
    pub fn values_mut(&mut self) -> ValuesMut<'_, K, V> {
        ValuesMut(self.iter_mut())
    }

    /// The entries whose keys lie in `range`, in order (double-ended). Panics if the range's
    /// start is after its end, as std does.
    ///
    /// ```
    /// let m: ipc_runtime::ShmBTreeMap<u32, u32> = (0..10).map(|i| (i, i * i)).collect();
    /// let squares: Vec<u32> = m.range(3..6).map(|(_, v)| *v).collect();
    /// assert_eq!(squares, [9, 16, 25]);
    /// assert_eq!(m.range(..=2).next_back(), Some((&2, &4)));
    /// ```
    pub fn range<Q, R>(&self, range: R) -> Range<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        Range::new(self.raw_range(range, false))
    }

    /// The entries whose keys lie in `range`, values mutable (only in the owning process).
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = (0..5).map(|i| (i, 0)).collect();
    /// m.range_mut(1..3).for_each(|(_, v)| *v = 1);
    /// assert_eq!(m.values().sum::<u32>(), 2);
    /// ```
    pub fn range_mut<Q, R>(&mut self, range: R) -> RangeMut<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        RangeMut::new(self.raw_range(range, true))
    }

    /// The entry for `key`, to read, change, insert or remove in place.
    ///
    /// ```
    /// let mut m = ipc_runtime::ShmBTreeMap::new();
    /// for word in ["a", "b", "a"] {
    ///     *m.entry(word.len() as u32 + (word == "a") as u32).or_insert(0u32) += 1;
    /// }
    /// assert_eq!(m[&2], 2);
    /// ```
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V>
    where
        K: Ord,
    {
        let mut path = Path::new();
        match self.search(&key, &mut path) {
            Ok(level) => Entry::Occupied(OccupiedEntry { map: self, path, level }),
            Err(()) => Entry::Vacant(VacantEntry { map: self, key, path }),
        }
    }

    /// Keeps only the entries for which `keep` returns true.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// m.retain(|k, _| k % 3 == 0);
    /// assert_eq!(m.keys().copied().collect::<Vec<_>>(), [0, 3, 6, 9]);
    /// ```
    pub fn retain<F>(&mut self, mut keep: F)
    where
        K: Ord,
        F: FnMut(&K, &mut V) -> bool,
    {
        let all = mem::take(self);
        for (k, mut v) in all {
            if keep(&k, &mut v) {
                self.insert(k, v);
            }
        }
    }

    /// Removes every entry, freeing the nodes.
    ///
    /// ```
    /// let mut m: ipc_runtime::ShmBTreeMap<u32, u32> = [(1, 1)].into_iter().collect();
    /// m.clear();
    /// assert!(m.is_empty());
    /// ```
    pub fn clear(&mut self) {
        drop(mem::take(self));
    }
}

impl<K: ShmSafe, V: ShmSafe> Drop for ShmBTreeMap<K, V> {
    fn drop(&mut self) {
        if let Some(t) = self.tree_mut() {
            let root = mem::replace(&mut self.root, RelPtr::NULL);
            self.len = 0;
            // SAFETY: our own tree, not used again (the root is cleared first).
            unsafe { raw::drop_subtree::<K, V>(t.own, root, 0, t.height) };
        }
    }
}

impl<K: ShmSafe, V: ShmSafe> Default for ShmBTreeMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: ShmSafe + Ord + Clone, V: ShmSafe + Clone> Clone for ShmBTreeMap<K, V> {
    fn clone(&self) -> Self {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug for ShmBTreeMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: ShmSafe + PartialEq, V: ShmSafe + PartialEq> PartialEq for ShmBTreeMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: ShmSafe + Eq, V: ShmSafe + Eq> Eq for ShmBTreeMap<K, V> {}

impl<K: ShmSafe + PartialOrd, V: ShmSafe + PartialOrd> PartialOrd for ShmBTreeMap<K, V> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.iter().partial_cmp(other.iter())
    }
}

impl<K: ShmSafe + Ord, V: ShmSafe + Ord> Ord for ShmBTreeMap<K, V> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl<K: ShmSafe + Hash, V: ShmSafe + Hash> Hash for ShmBTreeMap<K, V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for kv in self {
            kv.hash(state);
        }
    }
}

impl<K: ShmSafe + Ord, V: ShmSafe> Extend<(K, V)> for ShmBTreeMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<'a, K: ShmSafe + Ord + Copy, V: ShmSafe + Copy> Extend<(&'a K, &'a V)> for ShmBTreeMap<K, V> {
    fn extend<I: IntoIterator<Item = (&'a K, &'a V)>>(&mut self, iter: I) {
        self.extend(iter.into_iter().map(|(k, v)| (*k, *v)));
    }
}

impl<K: ShmSafe + Ord, V: ShmSafe> FromIterator<(K, V)> for ShmBTreeMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = ShmBTreeMap::new();
        m.extend(iter);
        m
    }
}

impl<K: ShmSafe + Ord, V: ShmSafe, const N: usize> From<[(K, V); N]> for ShmBTreeMap<K, V> {
    fn from(items: [(K, V); N]) -> Self {
        items.into_iter().collect()
    }
}

impl<K, Q, V> Index<&Q> for ShmBTreeMap<K, V>
where
    K: ShmSafe + Borrow<Q>,
    Q: Ord + ?Sized,
    V: ShmSafe,
{
    type Output = V;
    /// Panics if there is no entry for the key.
    #[track_caller]
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry found for key in ShmBTreeMap")
    }
}

impl<'a, K: ShmSafe, V: ShmSafe> IntoIterator for &'a ShmBTreeMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<'a, K: ShmSafe, V: ShmSafe> IntoIterator for &'a mut ShmBTreeMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;
    fn into_iter(self) -> IterMut<'a, K, V> {
        self.iter_mut()
    }
}

impl<K: ShmSafe, V: ShmSafe> IntoIterator for ShmBTreeMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;
    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter { map: self }
    }
}

/// Checks the tree's invariants as a receiver would (tests).
#[cfg(test)]
impl<K: ShmSafe, V: ShmSafe> ShmBTreeMap<K, V> {
    pub(super) fn check(&self) -> Result<(), crate::message::InvalidValue> {
        // SAFETY: `self` is a valid map.
        unsafe { <Self as ShmSafe>::check_bits(self) }
    }
}
