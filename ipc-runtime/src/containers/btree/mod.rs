//! Ordered containers in the shared heap: [`ShmBTreeMap`] and [`ShmBTreeSet`], B-trees whose
//! nodes point to each other with relocatable pointers.
//!
//! The node layout follows std's `BTreeMap` (5 to 11 entries per node, `B = 6`). Nodes have no
//! parent pointers and do not record whether they are leaves (the tree's height says), so that
//! a walk's depth is bounded by the height. Reading a tree that another process wrote is
//! checked on receipt (see [`ShmBTreeMap`]) and bounded on every walk.
//!
//! They are message fields like any other container, and look keys up by their borrowed form:
//!
//! ```
//! use std::ops::Bound;
//!
//! use ipc_runtime::prelude::*;
//!
//! #[derive(ShmMessage)]
//! #[repr(C)]
//! struct Catalogue {
//!     names: ShmBTreeMap<u64, ShmString>,
//!     by_name: ShmBTreeMap<ShmString, u64>,
//!     recent: ShmVecDeque<u32>,
//! }
//!
//! let mut c = Catalogue {
//!     names: ShmBTreeMap::new(),
//!     by_name: ShmBTreeMap::new(),
//!     recent: ShmVecDeque::new(),
//! };
//! for (id, name) in [(7, "seven"), (3, "three"), (11, "eleven")] {
//!     c.names.insert(id, ShmString::from(name));
//!     c.by_name.insert(ShmString::from(name), id);
//!     c.recent.push_front(id as u32);
//! }
//! assert_eq!(c.by_name.get("three"), Some(&3));
//! let from_s: Vec<&str> = c
//!     .by_name
//!     .range::<str, _>((Bound::Included("s"), Bound::Unbounded))
//!     .map(|(k, _)| k.as_str())
//!     .collect();
//! assert_eq!(from_s, ["seven", "three"]);
//! assert_eq!(c.names.range(4..).next().map(|(_, v)| v.as_str()), Some("seven"));
//! // What a subscriber checks when it receives the message.
//! // SAFETY: `c` is a valid value.
//! assert!(unsafe { Catalogue::check_bits(&c) }.is_ok());
//! ```

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
