//! Iterators over a [`ShmBTreeMap`].

use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;

use crate::message::ShmSafe;

use super::ShmBTreeMap;
use super::cursor::RawRange;
use super::node::{key, val};

macro_rules! iterator {
    ($(#[$doc:meta])* $name:ident<$lt:lifetime>, $item:ty, |$n:ident, $i:ident| $make:expr, $marker:ty, $exact:tt) => {
        $(#[$doc])*
        pub struct $name<$lt, K: ShmSafe, V: ShmSafe> {
            raw: RawRange<K, V>,
            _marker: PhantomData<$marker>,
        }

        impl<$lt, K: ShmSafe, V: ShmSafe> $name<$lt, K, V> {
            pub(super) fn new(raw: RawRange<K, V>) -> Self {
                $name { raw, _marker: PhantomData }
            }
        }

        impl<$lt, K: ShmSafe, V: ShmSafe> Iterator for $name<$lt, K, V> {
            type Item = $item;
            #[inline]
            fn next(&mut self) -> Option<$item> {
                let ($n, $i) = self.raw.next()?;
                // SAFETY: an initialised entry of a resolved node of the map borrowed for
                // `'a`; each entry comes out once (the ends stop at each other).
                Some(unsafe { $make })
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                iterator!(@hint $exact, self.raw.remaining)
            }
        }

        impl<$lt, K: ShmSafe, V: ShmSafe> DoubleEndedIterator for $name<$lt, K, V> {
            #[inline]
            fn next_back(&mut self) -> Option<$item> {
                let ($n, $i) = self.raw.next_back()?;
                // SAFETY: as in `next`.
                Some(unsafe { $make })
            }
        }

        impl<$lt, K: ShmSafe, V: ShmSafe> FusedIterator for $name<$lt, K, V> {}
        iterator!(@exact $exact, $name);
    };
    (@hint exact, $r:expr) => { ($r, Some($r)) };
    (@hint range, $r:expr) => { (0, Some($r)) };
    (@exact exact, $name:ident) => {
        impl<K: ShmSafe, V: ShmSafe> ExactSizeIterator for $name<'_, K, V> {}
    };
    (@exact range, $name:ident) => {};
}

iterator!(
    /// The entries of a [`ShmBTreeMap`] in key order; see [`ShmBTreeMap::iter`].
    Iter<'a>, (&'a K, &'a V), |n, i| (&*key(n, i), &*val(n, i)), &'a (K, V), exact
);
iterator!(
    /// The entries of a [`ShmBTreeMap`] in key order, values mutable; see
    /// [`ShmBTreeMap::iter_mut`].
    IterMut<'a>, (&'a K, &'a mut V), |n, i| (&*key(n, i), &mut *val(n, i)), &'a mut (K, V), exact
);
iterator!(
    /// The entries of a [`ShmBTreeMap`] in a key range; see [`ShmBTreeMap::range`].
    Range<'a>, (&'a K, &'a V), |n, i| (&*key(n, i), &*val(n, i)), &'a (K, V), range
);
iterator!(
    /// The entries of a [`ShmBTreeMap`] in a key range, values mutable; see
    /// [`ShmBTreeMap::range_mut`].
    RangeMut<'a>, (&'a K, &'a mut V), |n, i| (&*key(n, i), &mut *val(n, i)), &'a mut (K, V), range
);

impl<K: ShmSafe, V: ShmSafe> Clone for Iter<'_, K, V> {
    fn clone(&self) -> Self {
        Iter { raw: self.raw.clone(), _marker: PhantomData }
    }
}

impl<K: ShmSafe, V: ShmSafe> Clone for Range<'_, K, V> {
    fn clone(&self) -> Self {
        Range { raw: self.raw.clone(), _marker: PhantomData }
    }
}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug for Range<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl<K: ShmSafe, V: ShmSafe> fmt::Debug for IterMut<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterMut").field("remaining", &self.raw.remaining).finish()
    }
}

impl<K: ShmSafe, V: ShmSafe> fmt::Debug for RangeMut<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangeMut").finish_non_exhaustive()
    }
}

// SAFETY: the iterators hand out `&K`/`&V` (or `&mut V`) only, like std's.
unsafe impl<K: ShmSafe + Sync, V: ShmSafe + Sync> Send for Iter<'_, K, V> {}
// SAFETY: as above.
unsafe impl<K: ShmSafe + Sync, V: ShmSafe + Sync> Sync for Iter<'_, K, V> {}
// SAFETY: as above.
unsafe impl<K: ShmSafe + Sync, V: ShmSafe + Sync> Send for Range<'_, K, V> {}
// SAFETY: as above.
unsafe impl<K: ShmSafe + Sync, V: ShmSafe + Sync> Sync for Range<'_, K, V> {}
// SAFETY: an exclusive borrow of the map, handing out `&K` and `&mut V`.
unsafe impl<K: ShmSafe + Sync, V: ShmSafe + Send> Send for IterMut<'_, K, V> {}
// SAFETY: as above.
unsafe impl<K: ShmSafe + Sync, V: ShmSafe + Send> Send for RangeMut<'_, K, V> {}

/// The keys of a [`ShmBTreeMap`] in order; see [`ShmBTreeMap::keys`].
#[derive(Clone, Debug)]
pub struct Keys<'a, K: ShmSafe, V: ShmSafe>(pub(super) Iter<'a, K, V>);

/// The values of a [`ShmBTreeMap`] in key order; see [`ShmBTreeMap::values`].
#[derive(Clone, Debug)]
pub struct Values<'a, K: ShmSafe, V: ShmSafe>(pub(super) Iter<'a, K, V>);

/// The values of a [`ShmBTreeMap`] in key order, mutable; see [`ShmBTreeMap::values_mut`].
#[derive(Debug)]
pub struct ValuesMut<'a, K: ShmSafe, V: ShmSafe>(pub(super) IterMut<'a, K, V>);

macro_rules! projection {
    ($name:ident, $item:ty, |$kv:pat_param| $out:expr) => {
        impl<'a, K: ShmSafe, V: ShmSafe> Iterator for $name<'a, K, V> {
            type Item = $item;
            #[inline]
            fn next(&mut self) -> Option<$item> {
                self.0.next().map(|$kv| $out)
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                self.0.size_hint()
            }
        }
        impl<'a, K: ShmSafe, V: ShmSafe> DoubleEndedIterator for $name<'a, K, V> {
            #[inline]
            fn next_back(&mut self) -> Option<$item> {
                self.0.next_back().map(|$kv| $out)
            }
        }
        impl<K: ShmSafe, V: ShmSafe> ExactSizeIterator for $name<'_, K, V> {}
        impl<K: ShmSafe, V: ShmSafe> FusedIterator for $name<'_, K, V> {}
    };
}

projection!(Keys, &'a K, |(k, _)| k);
projection!(Values, &'a V, |(_, v)| v);
projection!(ValuesMut, &'a mut V, |(_, v)| v);

/// An owning iterator over a [`ShmBTreeMap`]'s entries in key order.
///
/// ```
/// let m: ipc_runtime::ShmBTreeMap<u32, u32> = [(2, 20), (1, 10)].into_iter().collect();
/// assert_eq!(m.into_iter().collect::<Vec<_>>(), [(1, 10), (2, 20)]);
/// ```
pub struct IntoIter<K: ShmSafe, V: ShmSafe> {
    pub(super) map: ShmBTreeMap<K, V>,
}

impl<K: ShmSafe, V: ShmSafe> Iterator for IntoIter<K, V> {
    type Item = (K, V);
    fn next(&mut self) -> Option<(K, V)> {
        self.map.pop_first()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.map.len(), Some(self.map.len()))
    }
}

impl<K: ShmSafe, V: ShmSafe> DoubleEndedIterator for IntoIter<K, V> {
    fn next_back(&mut self) -> Option<(K, V)> {
        self.map.pop_last()
    }
}

impl<K: ShmSafe, V: ShmSafe> ExactSizeIterator for IntoIter<K, V> {}
impl<K: ShmSafe, V: ShmSafe> FusedIterator for IntoIter<K, V> {}

impl<K: ShmSafe + fmt::Debug, V: ShmSafe + fmt::Debug> fmt::Debug for IntoIter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IntoIter").field(&self.map).finish()
    }
}
