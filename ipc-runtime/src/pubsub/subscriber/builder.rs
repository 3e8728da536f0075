//! [`SubscriberBuilder`].

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use super::super::options::OptionRequest;
use super::super::publisher::topic_options;
use super::Subscriber;
use crate::error::Result;
use crate::message::ShmMessage;
use crate::wait::{DefaultBackend, WaitBackend};

/// Options for a [`Subscriber`]; topic-wide options are fixed by the topic's first participant.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-subbuilder-{}", std::process::id())).unwrap();
/// let subscriber = Subscriber::<u64>::builder("orders").spin(500).create()?;
/// assert_eq!(subscriber.topic(), "orders");
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct SubscriberBuilder<M, B = DefaultBackend> {
    pub(super) topic: String,
    pub(super) domain: Option<String>,
    pub(super) request: OptionRequest,
    pub(super) spin: u32,
    pub(super) interval: Duration,
    pub(super) fail_without_publishers: bool,
    pub(super) _types: PhantomData<fn() -> (M, B)>,
}

impl<M, B> fmt::Debug for SubscriberBuilder<M, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriberBuilder")
            .field("topic", &self.topic)
            .field("domain", &self.domain)
            .field("request", &self.request)
            .field("spin", &self.spin)
            .finish()
    }
}

topic_options!(SubscriberBuilder);

impl<M: ShmMessage, B: WaitBackend> SubscriberBuilder<M, B> {
    /// Polls this many times before going to sleep in a blocking receive (default 0). A few
    /// thousand trade CPU for wake-up latency.
    pub fn spin(mut self, polls: u32) -> Self {
        self.spin = polls;
        self
    }

    /// Makes blocking receives fail with [`Error::NoPublisher`](crate::Error::NoPublisher)
    /// once every publisher this subscriber has seen is dead or gone and its queues are empty
    /// (default: keep waiting for a new publisher). Dead publishers are noticed within
    /// `interval`.
    pub fn fail_without_publishers(mut self, interval: Duration) -> Self {
        self.fail_without_publishers = true;
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Uses waiting backend `B2` (every participant of a topic must use the same one).
    pub fn backend<B2: WaitBackend>(self) -> SubscriberBuilder<M, B2> {
        SubscriberBuilder {
            topic: self.topic,
            domain: self.domain,
            request: self.request,
            spin: self.spin,
            interval: self.interval,
            fail_without_publishers: self.fail_without_publishers,
            _types: PhantomData,
        }
    }

    /// Joins (or creates) the topic and starts receiving.
    ///
    /// # Errors
    /// * [`Error::InvalidName`](crate::Error::InvalidName) for an invalid topic or domain name
    ///   (or a wait channel name the backend cannot use).
    /// * [`Error::InvalidOption`](crate::Error::InvalidOption) naming the option for options
    ///   that contradict each other or are out of range (a history larger than the subscriber
    ///   capacity, a capacity or participant count outside its range).
    /// * On the process's first use of the shared heap, the errors of creating it
    ///   ([`heap::default_heap`](crate::heap::default_heap)).
    /// * [`Error::LockTimeout`](crate::Error::LockTimeout) if another process holds the topic's
    ///   lock longer than the [lock timeout](crate::liveness::lock_timeout).
    /// * When live participants use the topic already:
    ///   [`Error::TypeMismatch`](crate::Error::TypeMismatch) if it carries another message type
    ///   (naming the first field that differs), and
    ///   [`Error::IncompatibleOptions`](crate::Error::IncompatibleOptions) if its wait backend
    ///   is not `B` or an option set on this builder differs from the topic's (a history its
    ///   creator left unset is adopted instead).
    /// * [`Error::TopicFull`](crate::Error::TopicFull) if live processes hold every subscriber
    ///   slot.
    /// * [`Error::OutOfMemory`](crate::Error::OutOfMemory) if this process's heap cannot hold
    ///   the subscriber's port.
    /// * [`Error::Corrupted`](crate::Error::Corrupted) if the topic's segment is corrupt and a
    ///   live process may still use it (a corrupt segment nobody uses is replaced).
    /// * [`Error::UntrustedObject`](crate::Error::UntrustedObject) if the topic's segment, its
    ///   lock file or a token file is not ours (another user's, writable by others, a symbolic
    ///   link), and [`Error::Io`](crate::Error::Io) if the OS fails to create, open or lock one
    ///   of them or the backend's wait objects.
    pub fn create(self) -> Result<Subscriber<M, B>> {
        Subscriber::create(self)
    }
}
