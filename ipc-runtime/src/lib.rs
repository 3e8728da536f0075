//! Zero-copy interprocess communication over shared memory.
//!
//! `ipc-runtime` passes typed messages between processes on one machine without serialising or
//! copying the payload:
//!
//! 1. annotate a message type with `#[derive(ShmMessage)]` and `#[repr(C)]` — the derive proves
//!    at compile time that the type is position-independent and computes a layout fingerprint;
//! 2. build messages that hold dynamically sized data in [`ShmVec`], [`ShmString`] and
//!    [`ShmBox`], allocated from this process's shared [heap];
//! 3. publish and subscribe across processes.
//!
//! ```
//! use ipc_runtime::prelude::*;
//!
//! #[derive(ShmMessage)]
//! #[repr(C)]
//! struct Frame {
//!     timestamp: i64,
//!     label: ShmString,
//!     pixels: ShmVec<u8>,
//! }
//!
//! let frame = Frame {
//!     timestamp: ipc_runtime::timestamp(),
//!     label: ShmString::from("camera-0"),
//!     pixels: ShmVec::from_slice(&[0u8; 640]),
//! };
//! assert_eq!(frame.pixels.len(), 640);
//! ```
//!
//! # Modules
//!
//! | module | owns |
//! |---|---|
//! | [`domain`] | the name prefix of every OS object, `IPC_DOMAIN` |
//! | [`segment`] | named shared-memory segments, their header and validation, the OS seam |
//! | [`ptr`] | relocatable pointers and the process-local segment table |
//! | [`heap`] | the TLSF allocator inside a segment, the default heap |
//! | [`containers`] | `ShmVec`, `ShmString`, `ShmBox` |
//! | [`message`] | `ShmSafe`, `ShmMessage`, `Topic`, fingerprints |
//! | [`pubsub`] | `Publisher`, `Subscriber`, samples, queues, topic segments |
//! | [`event`] | `Notifier`, `Listener`, `EventId`: events between processes |
//! | [`wait`] | the waiting seam: futex / Unix socket / spin / polling backends |
//! | [`liveness`] | liveness tokens and inter-process file locks |
//! | [`inspect`] | reading and cleaning a domain from outside (the `ipc` tool) |
//! | [`error`] | the crate's `Error` |

// Lets `#[derive(ShmMessage)]` (which names `::ipc_runtime`) be used inside this crate too.
#[cfg(test)]
extern crate self as ipc_runtime;

mod barrier;
pub mod containers;
pub mod domain;
pub mod error;
pub mod event;
pub mod heap;
pub mod inspect;
pub mod liveness;
mod membership;
pub mod message;
pub mod ptr;
pub mod pubsub;
pub mod segment;
mod spin;
mod time;
mod trust;
pub mod wait;

pub use containers::{ShmBox, ShmString, ShmVec};
pub use containers::{ShmHashMap, ShmHashSet};
pub use error::{Error, Result};
pub use event::{EventId, Listener, Notifier};
pub use heap::{HeapStats, heap_stats, init_heap};
pub use message::{ShmMessage, ShmSafe, Topic};
pub use pubsub::{Overflow, Publisher, Sample, SampleMut, Subscriber};
pub use time::timestamp;

/// The derive: `#[derive(ShmMessage)]`. See [`ShmMessage`](trait@ShmMessage).
pub use ipc_derive::ShmMessage;

/// Everything a user of the framework needs: `use ipc_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::containers::{ShmBox, ShmString, ShmVec};
    pub use crate::containers::{ShmHashMap, ShmHashSet};
    pub use crate::error::Error;
    pub use crate::event::{EventId, Listener, Notifier};
    pub use crate::message::{ShmMessage, ShmSafe, Topic};
    pub use crate::pubsub::{Overflow, Publisher, Sample, SampleMut, Subscriber};
    pub use ipc_derive::ShmMessage;
}

#[doc(hidden)]
pub mod __private {
    //! Items the derive's expansion refers to. Not a public interface.
    //!
    //! The expansion names everything through `::ipc_runtime::__private` (or the path given with
    //! `#[shm(crate = "...")]`), never through the user's scope: primitives too, because a user
    //! may define `struct u64;`.
    pub use crate::message::fingerprint;
    pub use crate::message::fingerprint::{Part, field, variant_field};
    pub use crate::message::{InvalidValue, validity};
    /// What `check_bits` returns.
    pub type CheckResult = core::result::Result<(), InvalidValue>;
    pub use core;
    pub use core::convert::identity;
    pub use core::mem::{align_of, offset_of, size_of};
    pub use core::primitive::{
        bool, i8, i16, i32, i64, i128, isize, str, u8, u16, u32, u64, u128, usize,
    };
}
