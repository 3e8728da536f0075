//! Topic-wide options: what the first participant fixes and later ones must agree with.

use std::fmt;

use crate::error::{Error, Result};

/// What a publisher does when a subscriber's queue is full.
///
/// ```
/// use ipc_runtime::pubsub::Overflow;
///
/// assert_eq!(Overflow::default(), Overflow::DropOldest);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overflow {
    /// Drop the oldest queued sample of that subscriber: the publisher never blocks, a slow
    /// subscriber sees gaps in [`Sample::sequence`](crate::pubsub::Sample::sequence).
    #[default]
    DropOldest,
    /// Wait for the slowest subscriber to make room, up to the publisher's
    /// [`block_timeout`](crate::pubsub::PublisherBuilder::block_timeout), then fail.
    Block,
}

impl Overflow {
    fn to_wire(self) -> u32 {
        match self {
            Overflow::DropOldest => 0,
            Overflow::Block => 1,
        }
    }

    fn from_wire(value: u32) -> Option<Self> {
        match value {
            0 => Some(Overflow::DropOldest),
            1 => Some(Overflow::Block),
            _ => None,
        }
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overflow::DropOldest => "DropOldest",
            Overflow::Block => "Block",
        })
    }
}

/// Upper bounds that keep a topic's segment a sane size.
pub(crate) const MAX_SUBSCRIBERS: u32 = 1024;
pub(crate) const MAX_PUBLISHERS: u32 = 64;
pub(crate) const MAX_CAPACITY: u32 = 1 << 16;

/// The options every participant of a topic shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopicOptions {
    pub subscriber_capacity: u32,
    pub history: u32,
    pub max_subscribers: u32,
    pub max_publishers: u32,
    pub overflow: Overflow,
    pub max_borrowed: u32,
}

impl Default for TopicOptions {
    fn default() -> Self {
        TopicOptions {
            subscriber_capacity: 16,
            history: 0,
            max_subscribers: 8,
            max_publishers: 2,
            overflow: Overflow::DropOldest,
            max_borrowed: 8,
        }
    }
}

/// Options as stored in the topic header.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WireOptions {
    subscriber_capacity: u32,
    history: u32,
    max_subscribers: u32,
    max_publishers: u32,
    overflow: u32,
    max_borrowed: u32,
}

impl TopicOptions {
    /// Checks the values are usable; errors name the option.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |option: &'static str, reason: String| Err(Error::InvalidOption { option, reason });
        if self.subscriber_capacity == 0 || self.subscriber_capacity > MAX_CAPACITY {
            return bad("subscriber_capacity", format!("must be 1..={MAX_CAPACITY}"));
        }
        if self.history > self.subscriber_capacity {
            return bad(
                "history",
                format!(
                    "{} exceeds subscriber_capacity {}: a late joiner's queue could not hold it",
                    self.history, self.subscriber_capacity
                ),
            );
        }
        if self.max_subscribers == 0 || self.max_subscribers > MAX_SUBSCRIBERS {
            return bad("max_subscribers", format!("must be 1..={MAX_SUBSCRIBERS}"));
        }
        if self.max_publishers == 0 || self.max_publishers > MAX_PUBLISHERS {
            return bad("max_publishers", format!("must be 1..={MAX_PUBLISHERS}"));
        }
        if self.max_borrowed == 0 || self.max_borrowed > MAX_CAPACITY {
            return bad("max_borrowed", format!("must be 1..={MAX_CAPACITY}"));
        }
        let layout = super::layout::Layout::new(*self, false);
        if layout.pool_len >= super::ring::MAX_POOL {
            return bad(
                "subscriber_capacity",
                format!(
                    "each publisher would need {} sample slots (max_subscribers × (ring of {} + \
                     max_borrowed) + history + loans); at most {} fit a ring entry",
                    layout.pool_len,
                    layout.ring_len,
                    super::ring::MAX_POOL - 1
                ),
            );
        }
        Ok(())
    }

    pub fn to_wire(self) -> WireOptions {
        WireOptions {
            subscriber_capacity: self.subscriber_capacity,
            history: self.history,
            max_subscribers: self.max_subscribers,
            max_publishers: self.max_publishers,
            overflow: self.overflow.to_wire(),
            max_borrowed: self.max_borrowed,
        }
    }

    /// Reads options from a header, refusing values no creator could have written.
    pub fn from_wire(wire: WireOptions, topic: &str) -> Result<Self> {
        let overflow = Overflow::from_wire(wire.overflow).ok_or_else(|| Error::Corrupted {
            what: format!(
                "topic `{topic}`: overflow policy {} is not a known value",
                wire.overflow
            ),
        })?;
        let options = TopicOptions {
            subscriber_capacity: wire.subscriber_capacity,
            history: wire.history,
            max_subscribers: wire.max_subscribers,
            max_publishers: wire.max_publishers,
            overflow,
            max_borrowed: wire.max_borrowed,
        };
        options.validate().map_err(|e| Error::Corrupted {
            what: format!("topic `{topic}` header holds invalid options: {e}"),
        })?;
        Ok(options)
    }
}

/// Topic-wide options a participant asks for. An option left unset adopts whatever the topic
/// has; one that is set must match it, except `history`, which a topic whose creator left it
/// unset adopts from the first participant that asks (for the publishers that join after).
///
/// The builders take them one by one ([`PublisherBuilder::history`](crate::pubsub::PublisherBuilder::history),
/// ...) or all at once ([`PublisherBuilder::options`](crate::pubsub::PublisherBuilder::options));
/// `#[shm(topic = "...", history = 4, ...)]` binds them to a message type
/// ([`Topic::OPTIONS`](crate::Topic::OPTIONS)).
///
/// ```
/// use ipc_runtime::pubsub::{Options, Overflow};
///
/// const ORDERS: Options = Options::new().history(4).overflow(Overflow::Block);
/// assert_eq!(ORDERS.get_history(), Some(4));
/// assert_eq!(ORDERS.get_subscriber_capacity(), None); // adopts the topic's
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub(crate) subscriber_capacity: Option<u32>,
    pub(crate) history: Option<u32>,
    pub(crate) max_subscribers: Option<u32>,
    pub(crate) max_publishers: Option<u32>,
    pub(crate) overflow: Option<Overflow>,
    pub(crate) max_borrowed: Option<u32>,
}

/// The name the pub/sub internals use: what one participant asked for.
pub(crate) type OptionRequest = Options;

/// Bits of [`Options::explicit`], as stored in the topic header.
pub(crate) mod bit {
    pub const SUBSCRIBER_CAPACITY: u32 = 1;
    pub const HISTORY: u32 = 2;
    pub const MAX_SUBSCRIBERS: u32 = 4;
    pub const MAX_PUBLISHERS: u32 = 8;
    pub const OVERFLOW: u32 = 16;
    pub const MAX_BORROWED: u32 = 32;
}

impl Options {
    /// No option set: everything adopts the topic's (or, for a creator, the defaults).
    pub const fn new() -> Self {
        Options {
            subscriber_capacity: None,
            history: None,
            max_subscribers: None,
            max_publishers: None,
            overflow: None,
            max_borrowed: None,
        }
    }

    /// Queue depth per subscriber (default 16).
    pub const fn subscriber_capacity(mut self, n: u32) -> Self {
        self.subscriber_capacity = Some(n);
        self
    }

    /// How many of the latest messages a late-joining subscriber receives (default 0, at most
    /// the subscriber capacity).
    pub const fn history(mut self, n: u32) -> Self {
        self.history = Some(n);
        self
    }

    /// Maximum number of subscribers (default 8).
    pub const fn max_subscribers(mut self, n: u32) -> Self {
        self.max_subscribers = Some(n);
        self
    }

    /// Maximum number of publishers (default 2).
    pub const fn max_publishers(mut self, n: u32) -> Self {
        self.max_publishers = Some(n);
        self
    }

    /// What a publisher does when a subscriber's queue is full (default
    /// [`Overflow::DropOldest`]).
    pub const fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = Some(overflow);
        self
    }

    /// How many samples one subscriber may hold at once (default 8).
    pub const fn max_borrowed(mut self, n: u32) -> Self {
        self.max_borrowed = Some(n);
        self
    }

    /// The requested subscriber capacity, if set.
    pub const fn get_subscriber_capacity(&self) -> Option<u32> {
        self.subscriber_capacity
    }

    /// The requested history, if set.
    pub const fn get_history(&self) -> Option<u32> {
        self.history
    }

    /// `other`'s set options over these.
    pub(crate) fn merge(self, other: Options) -> Options {
        Options {
            subscriber_capacity: other.subscriber_capacity.or(self.subscriber_capacity),
            history: other.history.or(self.history),
            max_subscribers: other.max_subscribers.or(self.max_subscribers),
            max_publishers: other.max_publishers.or(self.max_publishers),
            overflow: other.overflow.or(self.overflow),
            max_borrowed: other.max_borrowed.or(self.max_borrowed),
        }
    }

    /// Which options are set ([`bit`]), for the topic header.
    pub(crate) fn explicit(&self) -> u32 {
        [
            (self.subscriber_capacity.is_some(), bit::SUBSCRIBER_CAPACITY),
            (self.history.is_some(), bit::HISTORY),
            (self.max_subscribers.is_some(), bit::MAX_SUBSCRIBERS),
            (self.max_publishers.is_some(), bit::MAX_PUBLISHERS),
            (self.overflow.is_some(), bit::OVERFLOW),
            (self.max_borrowed.is_some(), bit::MAX_BORROWED),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |mask, (_, bit)| mask | bit)
    }

    /// Refuses a request that contradicts itself, whatever the topic: a history larger than
    /// the subscriber capacity asked for alongside it.
    pub(crate) fn check_consistent(&self) -> Result<()> {
        if let (Some(h), Some(c)) = (self.history, self.subscriber_capacity)
            && h > c
        {
            return Err(Error::InvalidOption {
                option: "history",
                reason: format!(
                    "{h} exceeds the subscriber_capacity {c} asked for with it: a late joiner's \
                     queue could not hold it"
                ),
            });
        }
        Ok(())
    }

    /// The options a creator uses: the requested ones over the defaults.
    pub(crate) fn resolve(&self) -> TopicOptions {
        let d = TopicOptions::default();
        let capacity = self.subscriber_capacity.unwrap_or(d.subscriber_capacity);
        TopicOptions {
            // A requested history larger than the default capacity grows the capacity with it.
            subscriber_capacity: match (self.subscriber_capacity, self.history) {
                (None, Some(h)) => capacity.max(h),
                _ => capacity,
            },
            history: self.history.unwrap_or(d.history),
            max_subscribers: self.max_subscribers.unwrap_or(d.max_subscribers),
            max_publishers: self.max_publishers.unwrap_or(d.max_publishers),
            overflow: self.overflow.unwrap_or(d.overflow),
            max_borrowed: self.max_borrowed.unwrap_or(d.max_borrowed),
        }
    }

    /// Checks the set options against an existing topic's (`explicit`: which of those its
    /// creator set; `creator`: who that was, for the error). Returns the history the topic
    /// should adopt, if this request asks for one the creator left unset.
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleOptions`] naming the option, both values and the creator, for a
    /// set option that differs; [`Error::InvalidOption`] for a history the topic's queues
    /// cannot hold.
    pub(crate) fn reconcile(
        &self,
        existing: &TopicOptions,
        explicit: u32,
        creator: &str,
        topic: &str,
    ) -> Result<Option<u32>> {
        fn cmp<T: PartialEq + fmt::Display>(
            (topic, creator, explicit): (&str, &str, u32),
            (option, bit): (&'static str, u32),
            requested: Option<T>,
            existing: T,
        ) -> Result<()> {
            match requested {
                Some(r) if r != existing => Err(Error::IncompatibleOptions {
                    topic: topic.to_owned(),
                    option,
                    existing: if explicit & bit == 0 {
                        format!("{existing} (the default)")
                    } else {
                        existing.to_string()
                    },
                    requested: r.to_string(),
                    creator: creator.to_owned(),
                }),
                _ => Ok(()),
            }
        }
        let who = (topic, creator, explicit);
        cmp(
            who,
            ("subscriber_capacity", bit::SUBSCRIBER_CAPACITY),
            self.subscriber_capacity,
            existing.subscriber_capacity,
        )?;
        cmp(
            who,
            ("max_subscribers", bit::MAX_SUBSCRIBERS),
            self.max_subscribers,
            existing.max_subscribers,
        )?;
        cmp(
            who,
            ("max_publishers", bit::MAX_PUBLISHERS),
            self.max_publishers,
            existing.max_publishers,
        )?;
        cmp(who, ("overflow", bit::OVERFLOW), self.overflow, existing.overflow)?;
        cmp(who, ("max_borrowed", bit::MAX_BORROWED), self.max_borrowed, existing.max_borrowed)?;
        match self.history {
            Some(h) if h != existing.history && explicit & bit::HISTORY == 0 => {
                if h > existing.subscriber_capacity {
                    return Err(Error::InvalidOption {
                        option: "history",
                        reason: format!(
                            "{h} exceeds topic `{topic}`'s subscriber_capacity {}: a late \
                             joiner's queue could not hold it",
                            existing.subscriber_capacity
                        ),
                    });
                }
                Ok(Some(h))
            }
            other => cmp(who, ("history", bit::HISTORY), other, existing.history).map(|()| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_mismatch_names_the_option() {
        let existing = TopicOptions::default();
        // An explicit history the creator left unset is adopted, within the capacity.
        let request = Options::new().history(3);
        assert_eq!(request.reconcile(&existing, 0, "pid 7", "t").unwrap(), Some(3));
        let err = Options::new().history(17).reconcile(&existing, 0, "pid 7", "t").unwrap_err();
        assert!(err.to_string().contains("17 exceeds topic `t`'s subscriber_capacity 16"), "{err}");
        // One the creator set is not.
        let err = request.reconcile(&existing, bit::HISTORY, "pid 7", "t").unwrap_err();
        assert_eq!(
            err.to_string(),
            "topic `t` was created by pid 7 with history = 0; this participant asked for 3 \
             (a topic's options are fixed by the participant that creates it: give every \
             participant the same options, or none to adopt the topic's)"
        );
        let err = Options::new().subscriber_capacity(64).reconcile(&existing, 0, "pid 7", "t");
        assert!(err.unwrap_err().to_string().contains("subscriber_capacity = 16 (the default)"),);
        assert_eq!(Options::new().reconcile(&existing, 0, "pid 7", "t").unwrap(), None);
        assert!(Options::new().history(5).subscriber_capacity(4).check_consistent().is_err());
    }

    #[test]
    fn history_grows_default_capacity_and_is_validated() {
        let options = OptionRequest { history: Some(40), ..OptionRequest::default() }.resolve();
        assert_eq!(options.subscriber_capacity, 40);
        let bad = OptionRequest {
            history: Some(40),
            subscriber_capacity: Some(10),
            ..OptionRequest::default()
        };
        assert!(matches!(
            bad.resolve().validate(),
            Err(Error::InvalidOption { option: "history", .. })
        ));
    }

    #[test]
    fn wire_roundtrip_and_garbage() {
        let options = TopicOptions { overflow: Overflow::Block, ..TopicOptions::default() };
        assert_eq!(TopicOptions::from_wire(options.to_wire(), "t").unwrap(), options);
        let mut wire = options.to_wire();
        wire.overflow = 7;
        assert!(matches!(TopicOptions::from_wire(wire, "t"), Err(Error::Corrupted { .. })));
        let mut wire = options.to_wire();
        wire.max_subscribers = 0;
        assert!(matches!(TopicOptions::from_wire(wire, "t"), Err(Error::Corrupted { .. })));
    }
}
