//! Growable containers in the shared heap: [`ShmVec`], [`ShmString`], [`ShmBox`],
//! [`ShmHashMap`], [`ShmHashSet`], [`ShmBTreeMap`], [`ShmBTreeSet`], [`ShmVecDeque`].
//!
//! They feel like `Vec`, `String` and `Box`, nest freely (`ShmVec<ShmString>`,
//! `ShmBox<ShmVec<u64>>`, `ShmVec<MyMessage>`), and are themselves [`ShmSafe`](crate::ShmSafe):
//! each is a few words of plain data holding a [`RelPtr`](crate::ptr::RelPtr) into the heap of
//! the process that built it, so any process that maps that heap reads the same contents.
//!
//! Allocation goes to this process's default heap (see [`crate::heap`]); dropping frees into
//! the heap that owns the block. Only the owning process may modify or free a container; other
//! processes see it through `&` and a read-only mapping.

mod boxed;
pub mod btree;
pub mod deque;
mod hash;
mod string;
mod vec;

pub use boxed::ShmBox;
pub use btree::{ShmBTreeMap, ShmBTreeSet};
pub use deque::ShmVecDeque;
pub use string::ShmString;
pub use vec::{IntoIter, ShmVec};

pub use hash::{ShmBuildHasher, ShmHashMap, ShmHashSet, ShmHasher};

/// The entry and iterator types of [`ShmHashMap`] (as `std::collections::hash_map`).
pub mod hash_map {
    pub use super::hash::{
        Drain, Entry, IntoIter, IntoKeys, IntoValues, Iter, IterMut, Keys, OccupiedEntry,
        VacantEntry, Values, ValuesMut,
    };
}

/// The iterator types of [`ShmHashSet`] (as `std::collections::hash_set`).
pub mod hash_set {
    pub use super::hash::set_iter::{
        Difference, Drain, Intersection, IntoIter, Iter, SymmetricDifference, Union,
    };
}

#[cfg(test)]
mod tests;

// `serde::Serialize`/`Deserialize` for every container (cargo feature `serde`; see `crate::wire`).
#[cfg(feature = "serde")]
pub(crate) mod serde_impls;
#[cfg(all(test, feature = "serde"))]
mod serde_tests;
