//! Growable containers in the shared heap: [`ShmVec`], [`ShmString`], [`ShmBox`],
//! [`ShmBTreeMap`], [`ShmBTreeSet`], [`ShmVecDeque`].
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
mod string;
mod vec;

pub use boxed::ShmBox;
pub use btree::{ShmBTreeMap, ShmBTreeSet};
pub use deque::ShmVecDeque;
pub use string::ShmString;
pub use vec::{IntoIter, ShmVec};

#[cfg(test)]
mod tests;
