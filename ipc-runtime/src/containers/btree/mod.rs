//! Ordered containers in the shared heap: [`ShmBTreeMap`] and [`ShmBTreeSet`], B-trees whose
//! nodes point to each other with relocatable pointers.
//!
//! The node layout follows std's `BTreeMap` (5 to 11 entries per node, `B = 6`). Nodes have no
//! parent pointers and do not record whether they are leaves (the tree's height says), so that
//! a walk's depth is bounded by the height. Reading a tree that another process wrote is
//! checked on receipt (see [`ShmBTreeMap`]) and bounded on every walk.

mod check;
mod cursor;
mod entry;
mod iter;
mod map;
mod node;
mod raw;
mod set;

pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use iter::{IntoIter, Iter, IterMut, Keys, Range, RangeMut, Values, ValuesMut};
pub use map::ShmBTreeMap;
pub use node::MAX_HEIGHT;
pub use set::{SetIntoIter, SetIter, SetRange, ShmBTreeSet};

#[cfg(test)]
mod tests;

use crate::error::Error;

#[cold]
#[track_caller]
fn fail(err: Error) -> ! {
    panic!("{err}")
}
