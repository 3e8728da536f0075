//! [`PublisherBuilder`], and the topic-wide options both builders share.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use super::super::options::OptionRequest;
use super::Publisher;
use crate::error::Result;
use crate::message::ShmMessage;
use crate::wait::{DefaultBackend, WaitBackend};

/// Default period of liveness probes while a publisher waits for a subscriber.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// Options for a [`Publisher`]. Topic-wide options are fixed by the participant that creates
/// the topic; an option left unset adopts the topic's (see [`Options`](crate::pubsub::Options)).
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-pubbuilder-{}", std::process::id())).unwrap();
/// let publisher = Publisher::<u64>::builder("orders")
///     .overflow(Overflow::Block)
///     .block_timeout(Duration::from_millis(200))
///     .create()?;
/// assert_eq!(publisher.topic(), "orders");
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct PublisherBuilder<M, B = DefaultBackend> {
    pub(super) topic: String,
    pub(super) domain: Option<String>,
    pub(super) request: OptionRequest,
    pub(super) block_timeout: Duration,
    pub(super) interval: Duration,
    pub(super) _types: PhantomData<fn() -> (M, B)>,
}

impl<M, B> fmt::Debug for PublisherBuilder<M, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherBuilder")
            .field("topic", &self.topic)
            .field("domain", &self.domain)
            .field("request", &self.request)
            .field("block_timeout", &self.block_timeout)
            .finish()
    }
}

macro_rules! topic_options {
    ($builder:ident) => {
        impl<M, B> $builder<M, B> {
            /// Queue depth per subscriber (topic-wide; default 16).
            pub fn subscriber_capacity(mut self, n: u32) -> Self {
                self.request.subscriber_capacity = Some(n);
                self
            }

            /// How many of the latest messages a late-joining subscriber receives (topic-wide;
            /// default 0, at most the subscriber capacity).
            pub fn history(mut self, n: u32) -> Self {
                self.request.history = Some(n);
                self
            }

            /// Maximum number of subscribers (topic-wide; default 8).
            pub fn max_subscribers(mut self, n: u32) -> Self {
                self.request.max_subscribers = Some(n);
                self
            }

            /// Maximum number of publishers (topic-wide; default 2).
            pub fn max_publishers(mut self, n: u32) -> Self {
                self.request.max_publishers = Some(n);
                self
            }

            /// What a publisher does when a subscriber's queue is full (topic-wide; default
            /// [`Overflow::DropOldest`](crate::pubsub::Overflow::DropOldest)).
            pub fn overflow(mut self, overflow: $crate::pubsub::Overflow) -> Self {
                self.request.overflow = Some(overflow);
                self
            }

            /// How many received samples one subscriber may hold at once (topic-wide;
            /// default 8).
            pub fn max_borrowed(mut self, n: u32) -> Self {
                self.request.max_borrowed = Some(n);
                self
            }

            /// Every option `options` sets, at once (over what was set before); the others
            /// stay as they are. What [`Topic::publisher`](crate::Topic::publisher) and
            /// [`Topic::subscriber`](crate::Topic::subscriber) use for
            /// [`Topic::OPTIONS`](crate::Topic::OPTIONS).
            pub fn options(mut self, options: $crate::pubsub::Options) -> Self {
                self.request = self.request.merge(options);
                self
            }

            /// The domain to use instead of the process's (`IPC_DOMAIN`).
            pub fn domain(mut self, domain: &str) -> Self {
                self.domain = Some(domain.to_owned());
                self
            }
        }
    };
}

pub(crate) use topic_options;

topic_options!(PublisherBuilder);

impl<M: ShmMessage + Send, B: WaitBackend> PublisherBuilder<M, B> {
    /// With [`Overflow::Block`](crate::pubsub::Overflow::Block): how long `publish` waits for a
    /// full subscriber before failing with
    /// [`Error::PublishTimeout`](crate::Error::PublishTimeout) (default 5 s; this publisher
    /// only).
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.block_timeout = timeout;
        self
    }

    /// How often the publisher probes a subscriber's liveness while it waits for it (a full
    /// queue under `Block`, or every sample slot in use); default 100 ms. Returned samples are
    /// taken back whenever slots run short, not on a timer.
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Uses waiting backend `B2` (every participant of a topic must use the same one).
    pub fn backend<B2: WaitBackend>(self) -> PublisherBuilder<M, B2> {
        PublisherBuilder {
            topic: self.topic,
            domain: self.domain,
            request: self.request,
            block_timeout: self.block_timeout,
            interval: self.interval,
            _types: PhantomData,
        }
    }

    /// Joins (or creates) the topic and starts publishing.
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
    /// * [`Error::TopicFull`](crate::Error::TopicFull) if live processes hold every publisher
    ///   slot.
    /// * [`Error::OutOfMemory`](crate::Error::OutOfMemory) if this process's heap cannot hold
    ///   the publisher's sample pool and port
    ///   ([`Error::CapacityOverflow`](crate::Error::CapacityOverflow) if the pool's size does
    ///   not even fit `usize`).
    /// * [`Error::Corrupted`](crate::Error::Corrupted) if the topic's segment is corrupt and a
    ///   live process may still use it (a corrupt segment nobody uses is replaced).
    /// * [`Error::UntrustedObject`](crate::Error::UntrustedObject) if the topic's segment, its
    ///   lock file or a token file is not ours (another user's, writable by others, a symbolic
    ///   link), and [`Error::Io`](crate::Error::Io) if the OS fails to create, open or lock one
    ///   of them or the backend's wait objects.
    pub fn create(self) -> Result<Publisher<M, B>> {
        Publisher::create(self)
    }
}
