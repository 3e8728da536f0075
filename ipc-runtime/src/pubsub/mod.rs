//! Zero-copy publish/subscribe between processes.
//!
//! One topic is one shared-memory segment ([`layout`](self) in `layout.rs`) holding the topic's
//! header (message fingerprint, options), a slot per publisher and per subscriber, and a queue
//! pair per publisher–subscriber pair: *delivery* (publisher → subscriber) and *completion*
//! (subscriber → publisher). Queues carry indices of sample slots, never pointers.
//!
//! * **Zero-copy, O(subscribers).** A message lives in a slot of its publisher's sample pool,
//!   in the publisher's heap. Publishing writes the slot's index into each subscriber's queue;
//!   subscribers map the publisher's heap read-only and read the message in place. The payload's
//!   size never changes the cost of publish or receive.
//! * **Ownership rule.** Only the publisher drops its messages: a [`Sample`] going out of scope
//!   returns the index through the completion queue, and the publisher drops the message (and
//!   frees its `ShmVec`s) in its own process once every holder is done.
//! * **Validation.** Everything a subscriber writes (completion entries, queue heads) is checked
//!   by the publisher against its own record before use; garbage is logged and ignored or the
//!   subscriber is disconnected. The publisher is never corrupted by a subscriber.
//! * **Options** ([`PublisherBuilder`], [`SubscriberBuilder`]) are topic-wide and fixed by the
//!   first participant; a later one asking for different values gets
//!   [`Error::IncompatibleOptions`](crate::Error::IncompatibleOptions) naming the option. A
//!   participant whose message type has another fingerprint gets
//!   [`Error::TypeMismatch`](crate::Error::TypeMismatch) naming both types.
//! * **Waking.** A subscriber blocked in `receive` registers on its slot's wait word; a publish
//!   wakes only subscribers that are registered. With a backend that sleeps on the word itself
//!   ([`WaitBackend::BROADCAST`](crate::wait::WaitBackend::BROADCAST): futex, spin, polling),
//!   every subscriber sleeps on one topic-wide word, so a publish wakes all of them with one
//!   system call rather than one per subscriber. Other backends get one wake per subscriber.
//! * **Any start order.** Subscribers may come first; publishers and subscribers come and go.
//!   Late joiners get the last `history` messages.
//! * **Crash safety.** Every participant holds a [liveness token](crate::liveness). A publisher
//!   reclaims everything a dead subscriber held; subscribers (and new publishers) reclaim a dead
//!   publisher's slot while the samples they already received stay readable.
//!
//! Departure from DESIGN.md: each publisher runs a small service thread (connecting late
//! joiners while the publisher is idle, returning samples, probing liveness). Without it a late
//! joiner would wait for the publisher's next message to receive its history.

pub(crate) mod inspect;
mod layout;
mod options;
mod publisher;
mod ring;
mod sample;
mod subscriber;
mod topic;

pub use options::Overflow;
pub use publisher::{Publisher, PublisherBuilder};
pub use sample::{Sample, SampleMut};
pub use subscriber::{Subscriber, SubscriberBuilder};

#[cfg(all(test, not(miri)))]
mod tests;
