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
//! A complete program in two processes: it subscribes, starts itself again as the publisher,
//! and receives the frame the other process built, reading that process's memory in place.
//!
//! ```standalone_crate
//! use std::io::Read;
//! use std::process::{Command, Stdio};
//! use std::time::Duration;
//!
//! use ipc_runtime::prelude::*;
//!
//! #[derive(ShmMessage)]
//! #[shm(topic = "camera/frames")]
//! #[repr(C)]
//! struct Frame {
//!     timestamp: i64,
//!     label: ShmString,
//!     pixels: ShmVec<u8>,
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #   let domain = std::env::var("IPC_DOMAIN")
//! #       .unwrap_or_else(|_| format!("doc-crate-{}", std::process::id()));
//! #   ipc_runtime::domain::set_current(&domain)?;
//!     if std::env::var_os("FRAME_PUBLISHER").is_some() {
//!         // The second process: publishes one frame, then stays until the first is done
//!         // with it (the frame lives in this process's memory).
//!         let publisher = Frame::publisher()?;
//!         publisher.publish(Frame {
//!             timestamp: ipc_runtime::timestamp(),
//!             label: ShmString::from("camera-0"),
//!             pixels: ShmVec::from_slice(&[7u8; 640 * 480]),
//!         })?;
//!         std::io::stdin().read_to_end(&mut Vec::new())?; // until the first one closes it
//!         return Ok(());
//!     }
//!     // The first process: subscribes, then starts the publisher.
//!     let subscriber = Frame::subscriber()?;
//!     let mut publisher = Command::new(std::env::current_exe()?)
//!         .env("FRAME_PUBLISHER", "1")
//! #       .env("IPC_DOMAIN", &domain)
//!         .stdin(Stdio::piped())
//!         .spawn()?;
//!     let frame = subscriber.receive_timeout(Duration::from_secs(10))?.expect("a frame");
//!     println!("#{} from {}: {} bytes", frame.sequence(), frame.label, frame.pixels.len());
//!     assert_eq!((frame.label.as_str(), frame.pixels.len()), ("camera-0", 640 * 480));
//!     drop(frame);
//!     drop(publisher.stdin.take()); // done: the publisher may go
//!     assert!(publisher.wait()?.success());
//!     Ok(())
//! }
//! ```
//!
//! The README's quick start and `examples/` in the repository have more; the `ipc` command
//! line tool shows what is running.
//!
//! # Modules
//!
//! | module | owns |
//! |---|---|
//! | [`domain`] | the name prefix of every OS object, `IPC_DOMAIN` |
//! | [`segment`] | named shared-memory segments, their header and validation, the OS seam |
//! | [`ptr`] | relocatable pointers and the process-local segment table |
//! | [`heap`] | the TLSF allocator inside a segment, the default heap |
//! | [`containers`] | `ShmVec`, `ShmString`, `ShmBox`, `ShmHashMap`/`Set`, `ShmBTreeMap`/`Set`, `ShmVecDeque` |
//! | [`message`] | `ShmSafe`, `ShmMessage`, fingerprints, validity checks |
//! | [`pubsub`] | `Publisher`, `Subscriber`, samples, queues, topic segments |
//! | [`service`] | request/response: `Server`, `Client`, `ActiveRequest`, `PendingResponse` |
//! | [`event`] | `Notifier`, `Listener`, `EventId`: events between processes |
//! | [`pipe`] | `PipeWriter`, `PipeReader`: byte streams through a shared ring |
//! | [`wait`] | the waiting seam: futex / Unix socket / spin / polling backends |
//! | `aio` | async/await (cargo feature `tokio`): `receive_async`, `wait_async`, streams |
//! | [`waitset`] | `WaitSet`: wait on many subscribers, listeners, timers in one sleep |
//! | `wire` | serde (cargo feature `serde`): containers to and from bytes, `Publisher::loan_deserialize` |
//! | [`liveness`] | liveness tokens and inter-process file locks |
//! | [`inspect`] | reading and cleaning a domain from outside (the `ipc` tool) |
//! | [`error`] | the crate's `Error` |

// Lets `#[derive(ShmMessage)]` (which names `::ipc_runtime`) be used inside this crate too.
#[cfg(test)]
extern crate self as ipc_runtime;

#[cfg(feature = "tokio")]
pub mod aio;
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
pub mod pipe;
pub mod ptr;
pub mod pubsub;
pub mod segment;
pub mod service;
mod spin;
mod time;
mod trust;
pub mod wait;
pub mod waitset;
#[cfg(feature = "serde")]
pub mod wire;

/// Every Rust snippet of the README compiles (and runs) as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

/// Every Rust snippet of the architecture notes compiles (and runs) as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../docs/ARCHITECTURE.md")]
mod architecture {}

pub use containers::{
    ShmBTreeMap, ShmBTreeSet, ShmBox, ShmHashMap, ShmHashSet, ShmString, ShmVec, ShmVecDeque,
};
pub use error::{Error, Result};
pub use event::{EventId, Listener, Notifier};
pub use heap::{HeapStats, heap_stats, init_heap};
pub use message::{ShmMessage, ShmSafe};
pub use pipe::{PipeReader, PipeWriter};
pub use pubsub::{Overflow, Publisher, Sample, SampleMut, Subscriber, Topic};
pub use service::{ActiveRequest, Client, PendingResponse, Server};
pub use time::timestamp;

/// The derive: `#[derive(ShmMessage)]`. See [`ShmMessage`](trait@ShmMessage).
pub use ipc_derive::ShmMessage;

/// Everything a user of the framework needs: `use ipc_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::containers::{
        ShmBTreeMap, ShmBTreeSet, ShmBox, ShmHashMap, ShmHashSet, ShmString, ShmVec, ShmVecDeque,
    };
    pub use crate::error::Error;
    pub use crate::event::{EventId, Listener, Notifier};
    pub use crate::message::{ShmMessage, ShmSafe};
    pub use crate::pipe::{PipeReader, PipeWriter};
    pub use crate::pubsub::{Overflow, Publisher, Sample, SampleMut, Subscriber, Topic};
    pub use crate::service::{ActiveRequest, Client, PendingResponse, Server};
    pub use crate::waitset::WaitSet;
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
    pub use crate::message::{FieldInfo, InvalidValue, validity};
    /// What `check_bits` returns.
    pub type CheckResult = core::result::Result<(), InvalidValue>;
    pub use core;
    pub use core::convert::identity;
    pub use core::mem::{align_of, offset_of, size_of};
    pub use core::primitive::{
        bool, i8, i16, i32, i64, i128, isize, str, u8, u16, u32, u64, u128, usize,
    };
}
