//! Where everything of a topic lives, and who writes it.
//!
//! **Single writer.** Every cache line in shared memory has one process that writes it.
//!
//! ```text
//! topic segment  <domain>.topic.<name>   (every participant maps it read-write; joins and
//!                                          leaves write it, the hot path only reads it)
//!   SegmentHeader (64)
//!   TopicHeader                 fingerprint, type name and fields, options, backend, connect
//!                               epoch
//!   Line<WaitWord>              what subscribers sleep on with a broadcasting backend
//!   PublisherEntry × max_pub    Member, where its heap and port are, `space` wake word
//!   SubscriberEntry × max_sub   Member, where its heap and port are, `word` wake word
//!
//! publisher port  (in the publisher's heap; subscribers map it read-only)
//!   PubHeader                   magic, key, generation, sizes, whether it is a light side
//!   PubFlags                    closing, space waiters, "may block" (sticky)
//!   PubStats                    sequence (for tools)
//!   PubWake                     what its subscribers sleep on (broadcasting backends)
//!   per subscriber slot:  OutCtl   key of the subscriber served, floor, revocation flag
//!                         OutComp  completion head (how far it took back returns), tail
//!   per subscriber slot:  entries  [u64; ring_len]  stamped slot indices (see `ring`)
//!   (the sample pool is a second allocation in the same heap)
//!
//! A fresh publisher port has only its header and control lines zeroed; a ring is reset when
//! a subscriber is connected to its slot, before its key is published in `OutCtl`. So the
//! rings of unused subscriber slots are never touched (no memory for them until used), and
//! the control lines of all slots share the first pages.
//!
//! subscriber port (in the subscriber's heap; publishers map it read-only)
//!   SubHeader                   magic, key, generation, sizes, light side, state, pid
//!   SubSleep                    sleepers registered (a WaitWord's count), "may sleep" (sticky)
//!   per publisher slot:   InLine   publisher key acknowledged, head, completion
//!                                  tail, received (for tools)
//!                         completions [u64; completion_len]
//! ```
//!
//! With a broadcasting backend (futex, spin, polling) a subscriber sleeps on the wake words of
//! the publishers it reads from, in their ports, which only they write: nobody else can roll a
//! word back under a sleeper (an ABA that would make it miss a wake-up). The topic's own word
//! only tells sleepers that a new publisher arrived. The *registration* that tells a waker
//! someone sleeps is in the sleeper's own port, so nobody else can make a sleeper look awake.
//! Backends with an OS object per waiter (sockets, events) keep the wake in that object; their
//! sequence words, and a blocked publisher's `space` word, are in the topic segment, where
//! garbage can only cause spurious wake-ups. Garbage elsewhere in the topic segment can disturb
//! the discovery of new participants (see [`crate::membership`]), never a connected pair.
//!
//! Every participant computes offsets itself from the validated options ([`Layout::new`]);
//! offsets are never read back from shared memory.

use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::describe::Description;
use super::options::{TopicOptions, WireOptions};
use crate::membership::Member;
use crate::segment::HEADER_SIZE;
use crate::wait::WaitWord;

/// Version of this layout (topic segment and ports); bumped whenever either changes. Version 5:
/// registry slots record their holder's process token (`crate::membership`), and a publisher
/// port keeps every slot's control lines before the rings.
pub(crate) const LAYOUT_VERSION: u32 = 5;

/// Extra pool slots for samples loaned but not yet published.
pub(crate) const MAX_LOANS: u32 = 4;

/// Longest type name stored in the header.
pub(crate) const TYPE_NAME_CAP: usize = 128;

/// Longest domain stored in an entry.
pub(crate) const DOMAIN_CAP: usize = 104;

/// Magic at the start of a publisher port ("IPC publisher port, layout 5": rings after all
/// the control lines).
pub(crate) const PUB_MAGIC: u64 = u64::from_le_bytes(*b"IPCPUB\x00\x05");
/// Magic at the start of a subscriber port.
pub(crate) const SUB_MAGIC: u64 = u64::from_le_bytes(*b"IPCSUB\x00\x03");

/// Subscriber port states (`SubHeader::state`).
pub(crate) const PORT_ACTIVE: u32 = 1;
pub(crate) const PORT_LEFT: u32 = 2;

/// A cache line on its own.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub(crate) struct Line<T>(pub T);

#[repr(C, align(64))]
pub(crate) struct TopicHeader {
    pub layout_version: u32,
    pub backend_id: u32,
    pub fingerprint: u64,
    pub msg_size: u64,
    pub msg_align: u64,
    pub type_name_len: u32,
    /// 1 if messages travel inside ring entries ([`carries_inline`]).
    pub inline: u32,
    pub type_name: [u8; TYPE_NAME_CAP],
    /// The type's first fields, for error messages ([`super::describe`]).
    pub description: Description,
    pub options: WireOptions,
    /// Which options the creator set (`options::bit`); the others were its defaults.
    pub explicit: u32,
    /// 0, or 1 + the history a later participant asked for when the creator left it unset
    /// (written under the topic's lock; joiners after that use it).
    pub history_set: AtomicU32,
    /// Bumped whenever a participant arrives or leaves; everyone re-scans when it moves.
    pub connect_epoch: AtomicU64,
    /// With a [`BROADCAST`](crate::wait::WaitBackend::BROADCAST) backend, every subscriber
    /// sleeps here (registered in its own port), so a publish wakes them all with one call.
    pub data: Line<WaitWord>,
}

/// Where a participant's heap is: the domain it was created in and its id.
#[repr(C)]
pub(crate) struct HeapRef {
    pub heap_id: AtomicU64,
    pub domain_len: AtomicU32,
    pub _pad: u32,
    pub domain: [u8; DOMAIN_CAP],
}

#[repr(C, align(64))]
pub(crate) struct PublisherEntry {
    pub member: Member,
    pub heap: HeapRef,
    /// Offset of its port in its heap.
    pub port: AtomicU64,
    /// Offset of its sample pool in its heap.
    pub pool: AtomicU64,
    /// Subscribers bump this to wake the publisher when it waits for room (`Overflow::Block`);
    /// the publisher registers in its own port ([`PubFlags::space`]).
    pub space: WaitWord,
}

#[repr(C, align(64))]
pub(crate) struct SubscriberEntry {
    pub member: Member,
    pub heap: HeapRef,
    /// Offset of its port in its heap.
    pub port: AtomicU64,
    /// With a backend that does not broadcast, the subscriber sleeps here (registered in its
    /// own port, [`SubSleep::word`]).
    pub word: WaitWord,
}

/// The read-only part of a publisher port, written once before the publisher goes live.
#[repr(C, align(64))]
pub(crate) struct PubHeader {
    pub magic: u64,
    /// A random key of this publisher incarnation, which subscribers write back to
    /// acknowledge a pair and check on every receive (never reused, unlike memory and
    /// generations); zeroed when the publisher gives its port up.
    pub key: AtomicU64,
    pub generation: u32,
    pub pool_len: u32,
    pub ring_len: u32,
    pub max_subscribers: u32,
    /// 1 if the publisher's process is a registered light side (see [`crate::barrier`]).
    pub light: u32,
    /// Its slot in the topic's registry: a copy of its registry entry in another slot (which
    /// anyone may write) does not make it a second publisher.
    pub slot: u32,
}

/// What the publisher's subscribers sleep on (with a broadcasting backend): only the
/// publisher writes it, so nobody can roll it back under a sleeper.
#[repr(C, align(64))]
pub(crate) struct PubWake {
    pub word: WaitWord,
}

/// Flags subscribers read on their slow paths.
#[repr(C, align(64))]
pub(crate) struct PubFlags {
    /// Set when the `Publisher` was dropped with samples out: returns should ring its bell.
    pub closing: AtomicU32,
    /// Sticky "this publisher has waited for room" ([`crate::barrier::announce`]).
    pub may_block: AtomicU32,
    /// Registration of the publisher's threads waiting for room (only `waiters` is used).
    pub space: WaitWord,
}

/// Written on every publish, read by tools only.
#[repr(C, align(64))]
pub(crate) struct PubStats {
    pub sequence: AtomicU64,
}

/// Per subscriber slot, in the publisher's port: rarely written, read by that subscriber on
/// every receive.
#[repr(C, align(64))]
pub(crate) struct OutCtl {
    /// Key of the subscriber this ring serves; 0 = none. A subscriber reads the ring only
    /// while this is its own key, so memory recycled after the publisher left is never taken
    /// for a ring.
    pub sub_key: AtomicU64,
    /// Positions below this are consumed or revoked: where a lapped subscriber resumes.
    pub floor: AtomicU64,
    /// Set for a revocation episode ([`crate::barrier::announce`]), or for good when the
    /// subscriber's process is not a light side.
    pub fenced: AtomicU32,
}

/// Per subscriber slot, in the publisher's port: written as the publisher takes back returns.
#[repr(C, align(64))]
pub(crate) struct OutComp {
    /// How far the publisher has read the subscriber's completion ring.
    pub completion_head: AtomicU64,
    /// Next position the publisher writes (for tools).
    pub tail: AtomicU64,
}

/// The read-only part of a subscriber port.
#[repr(C, align(64))]
pub(crate) struct SubHeader {
    pub magic: u64,
    /// A random key of this subscriber incarnation (see [`OutCtl::sub_key`]); zeroed when the
    /// subscriber gives its port up.
    pub key: AtomicU64,
    pub generation: u32,
    pub max_publishers: u32,
    pub completion_len: u32,
    /// 1 if the subscriber's process is a registered light side.
    pub light: u32,
    /// [`PORT_ACTIVE`] or [`PORT_LEFT`]: the subscriber's own word that it is gone.
    pub state: AtomicU32,
    /// Pid, for tools and keep-alive handles.
    pub pid: u32,
    /// Its slot in the topic's registry (see [`PubHeader::slot`]).
    pub slot: u32,
}

/// Read by publishers on every publish; written when the subscriber goes to sleep.
#[repr(C, align(64))]
pub(crate) struct SubSleep {
    /// Registration of sleeping threads (only `waiters` is used; they sleep on a topic word).
    pub word: WaitWord,
    /// Sticky "this subscriber has slept" ([`crate::barrier::announce`]).
    pub may_sleep: AtomicU32,
}

/// Per publisher slot, in the subscriber's port: written on every receive and return.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct InLine {
    /// Key of the publisher this state belongs to; 0 = none.
    pub pub_key: AtomicU64,
    /// Next position to consume; a position is claimed by moving `head` past it.
    pub head: AtomicU64,
    /// Entries pushed to the completion ring.
    pub completion_tail: AtomicU64,
    /// Samples received (for tools).
    pub received: AtomicU64,
}

fn round64(n: usize) -> usize {
    n.next_multiple_of(64)
}

/// Whether messages of type `M` travel inside their ring entries: at most
/// [`INLINE_WORDS`](super::ring::INLINE_WORDS) words, aligned to at most 8, no uninitialised
/// byte (they are copied as words) and no destructor (a copy owns nothing).
pub(crate) const fn carries_inline<M: crate::message::ShmSafe>() -> bool {
    M::NO_UNINIT
        && !std::mem::needs_drop::<M>()
        && size_of::<M>() <= 8 * super::ring::INLINE_WORDS
        && align_of::<M>() <= 8
}

/// Offsets and sizes, computed from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub options: TopicOptions,
    /// Messages travel inside ring entries (see `ring.rs`).
    pub inline: bool,
    /// Words per ring entry: 1 (a stamped slot index) or a cache line (inline).
    pub stride: usize,
    // topic segment
    pub header: usize,
    pub publishers: usize,
    pub subscribers: usize,
    pub total: usize,
    // rings
    /// Entries of a delivery ring: a power of two ≥ 2 × capacity, so that a subscriber that
    /// stopped reading is revoked in batches of at least `capacity`.
    pub ring_len: usize,
    /// Entries of a completion ring: a power of two ≥ 2 × (ring_len + max_borrowed).
    pub completion_len: usize,
    /// Sample slots in each publisher's pool.
    pub pool_len: u32,
    /// Most slots one subscriber may hold at once: a full ring and `max_borrowed` in hand.
    pub allowance: u32,
    // publisher port
    /// Bytes of one delivery ring (64-aligned).
    pub ring_stride: usize,
    /// Where the rings start: after the header lines and every slot's control lines.
    pub rings: usize,
    pub pub_port: usize,
    // subscriber port
    pub in_stride: usize,
    pub sub_port: usize,
}

/// Offsets inside a publisher port.
pub(crate) const PUB_HEADER: usize = 0;
pub(crate) const PUB_FLAGS: usize = 64;
pub(crate) const PUB_STATS: usize = 128;
pub(crate) const PUB_WAKE: usize = 192;
pub(crate) const PUB_OUTS: usize = 256;
/// Offsets inside a subscriber port.
pub(crate) const SUB_HEADER: usize = 0;
pub(crate) const SUB_SLEEP: usize = 64;
pub(crate) const SUB_INS: usize = 128;

const _: () = {
    assert!(size_of::<PubHeader>() == 64 && size_of::<PubFlags>() == 64);
    assert!(size_of::<PubStats>() == 64 && size_of::<OutCtl>() == 64);
    assert!(size_of::<PubWake>() == 64);
    assert!(size_of::<OutComp>() == 64 && size_of::<SubHeader>() == 64);
    assert!(size_of::<SubSleep>() == 64 && size_of::<InLine>() == 64);
};

impl Layout {
    pub fn new(options: TopicOptions, inline: bool) -> Layout {
        let header = HEADER_SIZE;
        let publishers = round64(header + size_of::<TopicHeader>());
        let subscribers =
            publishers + options.max_publishers as usize * size_of::<PublisherEntry>();
        let total = (subscribers + options.max_subscribers as usize * size_of::<SubscriberEntry>())
            .next_multiple_of(4096);
        let ring_len = (2 * options.subscriber_capacity as usize).next_power_of_two();
        let stride = if inline { super::ring::INLINE_STRIDE } else { 1 };
        // Inline messages are copies: subscribers hold no pool slot and return nothing; the
        // pool only holds loans and the history.
        let (allowance, completion_len, pool_len) = if inline {
            (0, 2, options.history + MAX_LOANS + 1)
        } else {
            let allowance = ring_len as u32 + options.max_borrowed;
            let completion_len = (2 * allowance as usize).next_power_of_two();
            (
                allowance,
                completion_len,
                options.max_subscribers * allowance + options.history + MAX_LOANS + 1,
            )
        };
        let ring_stride = round64(8 * stride * ring_len);
        let rings = PUB_OUTS + options.max_subscribers as usize * 128;
        let in_stride = 64 + round64(8 * completion_len);
        Layout {
            options,
            inline,
            stride,
            header,
            publishers,
            subscribers,
            total,
            ring_len,
            completion_len,
            pool_len,
            allowance,
            ring_stride,
            rings,
            pub_port: rings + options.max_subscribers as usize * ring_stride,
            in_stride,
            sub_port: SUB_INS + options.max_publishers as usize * in_stride,
        }
    }

    pub fn publisher(&self, index: u32) -> usize {
        debug_assert!(index < self.options.max_publishers);
        self.publishers + index as usize * size_of::<PublisherEntry>()
    }

    pub fn subscriber(&self, index: u32) -> usize {
        debug_assert!(index < self.options.max_subscribers);
        self.subscribers + index as usize * size_of::<SubscriberEntry>()
    }

    /// Offset of subscriber slot `s`'s [`OutCtl`] in a publisher port; [`OutComp`] follows at
    /// +64 (its ring entries are at [`ring`](Self::ring)).
    pub fn out(&self, s: u32) -> usize {
        debug_assert!(s < self.options.max_subscribers);
        PUB_OUTS + s as usize * 128
    }

    /// Offset of subscriber slot `s`'s ring entries in a publisher port.
    pub fn ring(&self, s: u32) -> usize {
        debug_assert!(s < self.options.max_subscribers);
        self.rings + s as usize * self.ring_stride
    }

    /// Offset of publisher slot `p`'s [`InLine`] in a subscriber port; the completion entries
    /// follow at +64.
    pub fn input(&self, p: u32) -> usize {
        debug_assert!(p < self.options.max_publishers);
        SUB_INS + p as usize * self.in_stride
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
            for inline in [false, true] {
                let l = Layout::new(options, inline);
                assert_eq!(l.publishers % 64, 0);
                assert_eq!(l.subscribers % 64, 0);
                assert_eq!(l.total % 4096, 0);
                assert!(l.subscriber(options.max_subscribers - 1) + 64 <= l.total);
                assert!(l.ring_len >= 2 * options.subscriber_capacity as usize);
                assert!(l.ring_len.is_power_of_two() && l.completion_len.is_power_of_two());
                assert!(
                    inline || l.completion_len >= 2 * (l.ring_len + options.max_borrowed as usize)
                );
                let last = options.max_subscribers - 1;
                assert_eq!(l.out(0) % 64, 0);
                assert_eq!(l.ring(0) % 64, 0);
                assert_eq!(l.ring_stride % 64, 0);
                assert_eq!(l.in_stride % 64, 0);
                assert!(l.out(last) + 128 <= l.rings);
                assert_eq!(l.ring(0), l.rings);
                assert!(l.ring(last) + l.ring_stride <= l.pub_port);
                assert!(l.input(options.max_publishers - 1) + l.in_stride <= l.sub_port);
                assert!(l.ring_stride >= 8 * l.stride * l.ring_len);
            }
        }
    }
}
