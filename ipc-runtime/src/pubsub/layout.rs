//! The layout of a topic segment.
//!
//! ```text
//! SegmentHeader (64)
//! TopicHeader                      fingerprint, type name, options, backend, connect epoch,
//!                                  the subscribers' shared wait word
//! PublisherSlot × max_publishers   state, generation, pid, heap + sample pool, wait words
//! SubscriberSlot × max_subscribers state, generation, pid, wait word
//! Pair × (max_publishers × max_subscribers)
//!     PairHeader                   generations, delivery head/tail, completion head/tail
//!     delivery entries  [u32]      slot indices, publisher → subscriber
//!     completion entries [u32]     slot indices, subscriber → publisher
//! ```
//!
//! Every participant computes the layout itself from the validated options ([`Layout::new`]);
//! offsets are never read back from shared memory, so a scribbled header cannot redirect
//! anyone's accesses. Queues carry slot indices, never pointers.

use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::options::{TopicOptions, WireOptions};
use crate::segment::HEADER_SIZE;
use crate::wait::WaitWord;

/// Version of this layout; bumped whenever it changes.
pub(crate) const LAYOUT_VERSION: u32 = 2;

/// Extra pool slots for samples loaned but not yet published.
pub(crate) const MAX_LOANS: u32 = 4;

/// Longest type name stored in the header.
pub(crate) const TYPE_NAME_CAP: usize = 128;

/// Longest domain stored in a publisher slot.
pub(crate) const DOMAIN_CAP: usize = 104;

/// Participant slot states.
pub(crate) const FREE: u32 = 0;
pub(crate) const CLAIMED: u32 = 1;
pub(crate) const ACTIVE: u32 = 2;
/// A publisher that was dropped but still has samples out; subscribers may drain its queue.
pub(crate) const CLOSING: u32 = 3;

#[repr(C, align(64))]
pub(crate) struct TopicHeader {
    pub layout_version: u32,
    pub backend_id: u32,
    pub fingerprint: u64,
    pub msg_size: u64,
    pub msg_align: u64,
    pub type_name_len: u32,
    pub _pad: u32,
    pub type_name: [u8; TYPE_NAME_CAP],
    pub options: WireOptions,
    /// Bumped whenever a participant arrives or leaves; everyone re-scans when it moves.
    pub connect_epoch: AtomicU64,
    /// With a [`BROADCAST`](crate::wait::WaitBackend::BROADCAST) backend, every subscriber
    /// sleeps here (registered on its own slot's word), so a publish wakes them all with one
    /// call. On a line of its own: publishers write it whenever someone sleeps.
    pub data: Line<WaitWord>,
}

#[repr(C, align(64))]
pub(crate) struct PublisherSlot {
    pub state: AtomicU32,
    pub generation: AtomicU32,
    pub pid: AtomicU32,
    pub pool_len: AtomicU32,
    pub heap_id: AtomicU64,
    pub pool_offset: AtomicU64,
    /// Sequence number of the last published sample (for tools).
    pub sequence: AtomicU64,
    pub heap_domain_len: AtomicU32,
    pub _pad: u32,
    pub heap_domain: [u8; DOMAIN_CAP],
    /// The publisher's service thread waits here (new subscribers, shutdown).
    pub service: WaitWord,
    /// A publisher blocked on a full queue waits here (subscribers consumed something).
    pub space: WaitWord,
}

#[repr(C, align(64))]
pub(crate) struct SubscriberSlot {
    pub state: AtomicU32,
    pub generation: AtomicU32,
    pub pid: AtomicU32,
    pub _pad: u32,
    /// The subscriber registers here when it sleeps for data (and sleeps here too, unless the
    /// backend broadcasts: see [`TopicHeader::data`]).
    pub word: WaitWord,
    /// Samples taken (for tools). On a line of its own: the subscriber writes it on every
    /// receive, and the publisher reads `word` on every publish.
    pub received: Line<AtomicU64>,
}

/// A cache line on its own, so the two sides of a queue do not false-share.
#[repr(C, align(64))]
pub(crate) struct Line<T>(pub T);

#[repr(C, align(64))]
pub(crate) struct PairHeader {
    /// Generations of the publisher and subscriber this pair was last initialised for; the
    /// publisher writes them after resetting the queues, the subscriber uses the pair only when
    /// both match its view.
    pub pub_generation: Line<AtomicU32>,
    pub sub_generation: AtomicU32,
    pub delivery_tail: Line<AtomicU64>,
    pub delivery_head: Line<AtomicU64>,
    pub completion_tail: Line<AtomicU64>,
    pub completion_head: Line<AtomicU64>,
}

/// Offsets of everything in a topic segment, computed from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub options: TopicOptions,
    pub header: usize,
    pub publishers: usize,
    pub subscribers: usize,
    pub pairs: usize,
    pub pair_stride: usize,
    /// Entries of the delivery ring (a power of two ≥ capacity).
    pub delivery_len: usize,
    /// Entries of the completion ring (a power of two ≥ capacity + max_borrowed).
    pub completion_len: usize,
    pub total: usize,
    /// Sample slots in each publisher's pool.
    pub pool_len: u32,
}

fn round64(n: usize) -> usize {
    n.next_multiple_of(64)
}

impl Layout {
    pub fn new(options: TopicOptions) -> Layout {
        let header = HEADER_SIZE;
        let publishers = round64(header + size_of::<TopicHeader>());
        let subscribers = publishers + options.max_publishers as usize * size_of::<PublisherSlot>();
        let pairs =
            round64(subscribers + options.max_subscribers as usize * size_of::<SubscriberSlot>());
        let delivery_len = (options.subscriber_capacity as usize).next_power_of_two();
        let completion_len = (options.subscriber_capacity as usize + options.max_borrowed as usize)
            .next_power_of_two();
        let pair_stride = round64(size_of::<PairHeader>() + 4 * (delivery_len + completion_len));
        let pair_count = options.max_publishers as usize * options.max_subscribers as usize;
        let total = (pairs + pair_count * pair_stride).next_multiple_of(4096);
        let pool_len = options.max_subscribers
            * (options.subscriber_capacity + options.max_borrowed)
            + options.history
            + MAX_LOANS
            + 1;
        Layout {
            options,
            header,
            publishers,
            subscribers,
            pairs,
            pair_stride,
            delivery_len,
            completion_len,
            total,
            pool_len,
        }
    }

    pub fn publisher(&self, index: u32) -> usize {
        debug_assert!(index < self.options.max_publishers);
        self.publishers + index as usize * size_of::<PublisherSlot>()
    }

    pub fn subscriber(&self, index: u32) -> usize {
        debug_assert!(index < self.options.max_subscribers);
        self.subscribers + index as usize * size_of::<SubscriberSlot>()
    }

    pub fn pair(&self, publisher: u32, subscriber: u32) -> usize {
        debug_assert!(publisher < self.options.max_publishers);
        debug_assert!(subscriber < self.options.max_subscribers);
        let index =
            publisher as usize * self.options.max_subscribers as usize + subscriber as usize;
        self.pairs + index * self.pair_stride
    }

    pub fn delivery_entries(&self, publisher: u32, subscriber: u32) -> usize {
        self.pair(publisher, subscriber) + size_of::<PairHeader>()
    }

    pub fn completion_entries(&self, publisher: u32, subscriber: u32) -> usize {
        self.delivery_entries(publisher, subscriber) + 4 * self.delivery_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_in_bounds() {
        for options in [
            TopicOptions::default(),
            TopicOptions {
                subscriber_capacity: 1000,
                max_subscribers: 33,
                max_publishers: 5,
                max_borrowed: 3,
                ..TopicOptions::default()
            },
        ] {
            let l = Layout::new(options);
            assert_eq!(l.publishers % 64, 0);
            assert_eq!(l.subscribers % 64, 0);
            assert_eq!(l.pairs % 64, 0);
            assert_eq!(l.pair_stride % 64, 0);
            assert!(l.delivery_len >= options.subscriber_capacity as usize);
            let last = l.pair(options.max_publishers - 1, options.max_subscribers - 1);
            assert!(
                l.completion_entries(options.max_publishers - 1, options.max_subscribers - 1)
                    + 4 * l.completion_len
                    <= l.total
            );
            assert!(last > l.subscriber(options.max_subscribers - 1));
            assert_eq!(l.total % 4096, 0);
        }
    }
}
