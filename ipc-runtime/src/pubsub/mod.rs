//! Zero-copy publish/subscribe between processes.
//!
//! ```
//! use ipc_runtime::prelude::*;
//!
//! # ipc_runtime::domain::set_current(&format!("doc-pubsub-{}", std::process::id())).unwrap();
//! #[derive(ShmMessage)]
//! #[repr(C)]
//! struct Scan {
//!     stamp: i64,
//!     ranges: ShmVec<f32>,
//! }
//!
//! let subscriber = Subscriber::<Scan>::new("lidar")?; // in one process
//! let publisher = Publisher::<Scan>::new("lidar")?; //   in another
//! publisher.publish(Scan { stamp: 1, ranges: ShmVec::from_slice(&[0.5; 360]) })?;
//! let scan = subscriber.receive()?; // reads the publisher's memory in place
//! assert_eq!((scan.stamp, scan.ranges.len()), (1, 360));
//! # Ok::<(), ipc_runtime::Error>(())
//! ```
//!
//! # Who writes what
//!
//! Every cache line in shared memory has exactly one process that writes it:
//!
//! * the **topic segment** holds the header (fingerprint, options) and a registry of
//!   publishers and subscribers, written when they join and leave;
//! * each **publisher** owns, in its own heap, its sample pool and its *port*: one delivery
//!   ring per subscriber slot. Subscribers map both read-only;
//! * each **subscriber** owns, in its own heap, its port: per publisher, how far it has read
//!   and a completion ring of returned samples, and its sleep registration. Publishers map it
//!   read-only.
//!
//! So no participant can inject into, drain or silence another's ring: whatever a subscriber
//! writes only ever concerns itself, and the publisher checks it against its own books before
//! believing it ([`Error::Corrupted`](crate::Error::Corrupted) is reported once and the
//! subscriber disconnected; nothing panics). Registry entries are hints for discovery: a
//! connected peer is dropped only on its own port's word or the OS's (its liveness token).
//!
//! # The hot path
//!
//! A ring entry is a 64-bit word: a sequence stamp over a sample slot index; the subscriber
//! polls the entry itself, and each side reads the other's position only when the ring looks
//! full or a sample must come back (the protocol is checked by a loom model in the
//! repository's tests). Publishing and receiving take one uncontended process-local lock each
//! and make no system call unless someone sleeps; returned samples are taken back in batches,
//! when slots run short.
//!
//! * **Zero-copy, O(connected subscribers).** A message lives in a slot of its publisher's
//!   pool; publishing writes the slot's index into each connected subscriber's ring, and
//!   subscribers read the message in place. The payload's size never changes the cost.
//! * **Small messages inline.** A message of at most 48 bytes with no padding and no destructor
//!   ([`ShmSafe::NO_UNINIT`](crate::ShmSafe::NO_UNINIT)) travels inside its ring entry (one
//!   cache line) and the [`Sample`] holds a copy: one line crosses between the cores instead of
//!   two, and nothing is returned.
//! * **Ownership rule.** Only the publisher drops its messages: a [`Sample`] going out of scope
//!   returns its slot, and the publisher drops the message (and frees its `ShmVec`s) in its own
//!   process once every holder is done.
//! * **Overflow.** [`Overflow::DropOldest`] (the default) never blocks the publisher: a
//!   subscriber that falls behind drops its oldest messages itself, and one that stopped
//!   reading has its oldest queued positions revoked in batches. [`Overflow::Block`] waits for
//!   room, with the lock released, up to the publisher's block timeout.
//! * **Waking.** A subscriber about to sleep registers in its own port; a publish wakes only
//!   when someone is registered. With a backend that sleeps on the word itself
//!   ([`WaitBackend::BROADCAST`](crate::wait::WaitBackend::BROADCAST): futex, spin, polling),
//!   every subscriber of a topic sleeps on one word, so one system call wakes them all. The
//!   publisher checks registrations without a fence until a subscriber has ever slept
//!   (`crate::barrier`).
//!
//! # Life cycle
//!
//! * **Options** ([`Options`], [`PublisherBuilder`], [`SubscriberBuilder`], or
//!   `#[shm(topic = "...", history = 4, ...)]`) are topic-wide and fixed by the participant
//!   that creates the topic. One that sets no option adopts the topic's, whoever came first;
//!   a `history` the creator left unset is adopted from the first participant that asks for
//!   one. A set option that differs is
//!   [`Error::IncompatibleOptions`](crate::Error::IncompatibleOptions), naming the option,
//!   both values and the creator. A participant whose message type has another fingerprint
//!   gets [`Error::TypeMismatch`](crate::Error::TypeMismatch), naming both types
//!   (`Stamped<f64>`) and the first field that differs.
//! * **Any start order.** Subscribers may come first; publishers and subscribers come and go.
//!   Late joiners get the last `history` messages, even from a publisher that stays idle: the
//!   joiner rings the doorbell of the publisher's process, whose service thread (one per
//!   process, asleep until rung) connects it. The same thread finishes a
//!   publisher dropped while its samples were still held elsewhere.
//! * **Crash safety.** Every participant shares its process's
//!   [liveness token](crate::liveness::ProcessToken), recorded in its slot. A publisher
//!   reclaims everything a dead subscriber held; subscribers (and new publishers) reclaim a dead
//!   publisher's slot while the samples they already received stay readable.
//!
//! docs/ARCHITECTURE.md in the repository shows how a message travels, step by step.

// | file | owns |
// |---|---|
// | `layout.rs` | what lives where, and who writes it |
// | `ring.rs` | the delivery and completion protocol of one publisher–subscriber pair |
// | `port.rs` | typed views of a publisher's and a subscriber's port |
// | `topic.rs` | joining a topic segment, its registry, leaving |
// | `describe.rs` | the type description a topic stores, for mismatch errors |
// | `publisher/`, `subscriber/` | the two sides |
// | `sample.rs` | received and loaned samples |
// | `service.rs` | the process's service thread and doorbell |
// | `options.rs` | topic-wide options |
// | `inspect.rs` | reading a topic from outside (the `ipc` tool) |

mod binding;
pub(crate) mod describe;
pub(crate) mod inspect;
mod layout;
pub(crate) mod options;
mod port;
mod publisher;
mod ring;
pub(crate) mod sample;
mod service;
mod subscriber;
pub(crate) mod topic;

pub use binding::Topic;
pub use inspect::{ParticipantInfo, TopicInfo};
pub use options::{Options, Overflow};
pub use publisher::{Publisher, PublisherBuilder};
pub use sample::{PublisherId, Sample, SampleMut};
pub use subscriber::{Subscriber, SubscriberBuilder};

/// What `ring.rs` uses for atomics and barriers; `tests/loom_ring.rs` provides loom's instead.
mod atomic {
    pub(crate) use crate::barrier::light;
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

    /// The heavy side's barrier (see `crate::barrier`).
    pub(crate) fn heavy() -> bool {
        crate::barrier::heavy()
    }
}

#[cfg(all(test, not(miri)))]
mod tests;
