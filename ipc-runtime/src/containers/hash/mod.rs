//! Hash containers in the shared heap: [`ShmHashMap`] and [`ShmHashSet`].
//!
//! A SwissTable (hashbrown's design: open addressing, one control byte per bucket, probing a
//! group of 8 control bytes at a time) in one block of the owning process's heap, reached
//! through a [`RelPtr`](crate::ptr::RelPtr), so the map is relocatable like
//! [`ShmVec`](crate::ShmVec) and any process mapping the heap reads it. The hash function is
//! fixed and documented ([`ShmBuildHasher`]), with the seed in the map's header, so a reader in
//! another process finds the keys the writer put in.
//!
//! See `table.rs` (the layout, the probing and why it is bounded), `hasher.rs` (the hash
//! function and why it was chosen), and the types' docs for the API, which follows std's
//! `HashMap` and `HashSet`.

mod entry;
mod hasher;
mod iter;
mod map;
mod set;
mod table;

pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use hasher::{ShmBuildHasher, ShmHasher};
pub use iter::{Drain, IntoIter, IntoKeys, IntoValues, Iter, IterMut, Keys, Values, ValuesMut};
pub use map::ShmHashMap;
pub use set::ShmHashSet;

/// The iterators of [`ShmHashSet`].
pub mod set_iter {
    pub use super::set::{
        Difference, Drain, Intersection, IntoIter, Iter, SymmetricDifference, Union,
    };
}

#[cfg(test)]
mod tests;
