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

/// Options a participant asked for; `None` means "whatever the topic has".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OptionRequest {
    pub subscriber_capacity: Option<u32>,
    pub history: Option<u32>,
    pub max_subscribers: Option<u32>,
    pub max_publishers: Option<u32>,
    pub overflow: Option<Overflow>,
    pub max_borrowed: Option<u32>,
}

impl OptionRequest {
    /// The options a creator uses: the requested ones over the defaults.
    pub fn resolve(&self) -> TopicOptions {
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

    /// Checks that every explicitly requested option matches the topic's.
    pub fn check(&self, existing: &TopicOptions, topic: &str) -> Result<()> {
        fn cmp<T: PartialEq + fmt::Display>(
            topic: &str,
            option: &'static str,
            requested: Option<T>,
            existing: T,
        ) -> Result<()> {
            match requested {
                Some(r) if r != existing => Err(Error::IncompatibleOptions {
                    topic: topic.to_owned(),
                    option,
                    existing: existing.to_string(),
                    requested: r.to_string(),
                }),
                _ => Ok(()),
            }
        }
        cmp(topic, "subscriber_capacity", self.subscriber_capacity, existing.subscriber_capacity)?;
        cmp(topic, "history", self.history, existing.history)?;
        cmp(topic, "max_subscribers", self.max_subscribers, existing.max_subscribers)?;
        cmp(topic, "max_publishers", self.max_publishers, existing.max_publishers)?;
        cmp(topic, "overflow", self.overflow, existing.overflow)?;
        cmp(topic, "max_borrowed", self.max_borrowed, existing.max_borrowed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_mismatch_names_the_option() {
        let existing = TopicOptions::default();
        let request = OptionRequest { history: Some(3), ..OptionRequest::default() };
        let err = request.check(&existing, "t").unwrap_err();
        assert_eq!(
            err.to_string(),
            "topic `t` was created with history = 0; this participant asked for 3"
        );
        OptionRequest::default().check(&existing, "t").unwrap();
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
