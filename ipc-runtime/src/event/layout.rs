//! The event segment's layout: what lives where, computed once from the channel's options and
//! checked against the segment before anything is touched.
//!
//! ```text
//! offset  0  SegmentHeader (64 B, see crate::segment)
//!        64  Config          (64 B)  magic, backend id and name, max event id, slot counts;
//!                                    written once by the creator, copied and validated by openers
//!       128  Shared          (64 B)  epochs and counters every participant updates
//!       192  NotifierSlot × max_notifiers (16 B each)
//!   aligned  ListenerSlot × max_listeners, `stride` bytes each, 64-aligned:
//!              +0   Member: state, generation, pid, token nonce (16 B), WaitWord (8 B)
//!              +24  pending bits of ids 0..63 (a hint: "this id's counter may be > 0")
//!              +32  counters of ids 0..3 (the truth: events not yet taken)
//!              +64  pending bits of ids 64.. (one u64 per 64 ids)
//!              +c   counters of ids 4.., 64-aligned
//! ```
//!
//! The slot's first cache line holds everything a notify of ids 0–3 touches and everything a
//! waiting listener reads: the word, the first bit word, and those ids' counters. A wake-up of
//! a listener that spins then moves one cache line between the two cores instead of two or
//! three, which is most of the busy-spin latency (small ids are the common case; larger ids
//! cost one more line).
//!
//! Nothing read back from shared memory is trusted for addressing: offsets come from a
//! process-local [`Layout`] built from the creator's options and checked against the segment's
//! real size, so a participant that scribbles on the config cannot move anyone's accesses.
//!
//! Both kinds of slot start with a [`Member`], the registry head of [`crate::membership`],
//! which owns its states and their meaning.

use std::mem::{offset_of, size_of};
use std::sync::atomic::AtomicU64;

use crate::error::{Error, Result};
use crate::membership::Member;
use crate::segment::HEADER_SIZE;
use crate::wait::WaitWord;

/// Magic bytes at the start of [`Config`] ("IPC event layout, version 3"). Version 2 had the
/// memory layout of version 1 and the membership protocol of [`crate::membership`] with a token
/// per participant; version 3 records the holder's process token in each slot (the [`Member`]
/// grew to 16 bytes, into what was the notifier slot's reserved word). Processes of different
/// versions would take each other's members for dead, so they must not share a channel.
pub(crate) const MAGIC: [u8; 8] = *b"IPCEVT\x00\x03";

/// Largest accepted `max_event_id`: ids 0..=65535, 512 KiB of counters per listener.
///
/// ```
/// use ipc_runtime::event::{Notifier, MAX_EVENT_ID_LIMIT};
///
/// # ipc_runtime::domain::set_current(&format!("doc-id-limit-{}", std::process::id())).unwrap();
/// let name = "alarms";
/// assert!(Notifier::builder(&name).max_event_id(MAX_EVENT_ID_LIMIT + 1).create().is_err());
/// ```
pub const MAX_EVENT_ID_LIMIT: u64 = 65_535;
/// Largest accepted `max_listeners` / `max_notifiers`.
///
/// ```
/// use ipc_runtime::event::{Notifier, MAX_PARTICIPANTS_LIMIT};
///
/// # ipc_runtime::domain::set_current(&format!("doc-participants-limit-{}", std::process::id())).unwrap();
/// let name = "alarms";
/// let too_many = MAX_PARTICIPANTS_LIMIT + 1;
/// assert!(Notifier::builder(&name).max_listeners(too_many).create().is_err());
/// ```
pub const MAX_PARTICIPANTS_LIMIT: u32 = 1024;

/// Fixed configuration, written once by the creator.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub magic: [u8; 8],
    pub backend_id: u32,
    pub max_listeners: u32,
    pub max_notifiers: u32,
    pub _reserved: u32,
    pub max_event_id: u64,
    /// The backend's name (truncated, NUL-padded), for error messages only.
    pub backend_name: [u8; 32],
}

/// Counters every participant updates.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct Shared {
    /// Bumped when the set of listeners changes (join, leave, reap): notifiers refresh their
    /// wakers when it moves.
    pub listener_epoch: AtomicU64,
    /// Bumped when the set of notifiers changes.
    pub notifier_epoch: AtomicU64,
    /// Notifier joins since creation.
    pub notifier_joins: AtomicU64,
    /// Notifiers found dead (not left) since creation.
    pub notifier_deaths: AtomicU64,
}

/// One notifier's registration.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct NotifierSlot {
    pub member: Member,
}

/// The fixed head of one listener's slot.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ListenerHead {
    pub member: Member,
    pub word: WaitWord,
}

const CONFIG_OFFSET: usize = HEADER_SIZE;
const SHARED_OFFSET: usize = CONFIG_OFFSET + size_of::<Config>();
const NOTIFIERS_OFFSET: usize = SHARED_OFFSET + size_of::<Shared>();
/// The first pending-bit word starts right after the head, in the same cache line.
const BITS_OFFSET: usize = 24;
/// Counters of the first [`HOT_IDS`] ids follow it, filling the line.
const HOT_OFFSET: usize = 32;
/// Number of ids whose counters live in the slot's first cache line.
const HOT_IDS: usize = 4;
/// Further pending-bit words start on the second line.
const MORE_BITS_OFFSET: usize = 64;

const _: () = assert!(size_of::<Config>() == 64 && size_of::<Shared>() == 64);
const _: () = assert!(size_of::<NotifierSlot>() == 16);
const _: () = assert!(size_of::<ListenerHead>() <= BITS_OFFSET);
// The slot heads: a `Member` (state, generation, pid, token nonce), then the rest.
const _: () = assert!(
    size_of::<Member>() == 16
        && offset_of!(Member, state) == 0
        && offset_of!(Member, generation) == 4
        && offset_of!(Member, pid) == 8
        && offset_of!(Member, nonce) == 12
);
const _: () = assert!(offset_of!(NotifierSlot, member) == 0);
const _: () =
    assert!(offset_of!(ListenerHead, member) == 0 && offset_of!(ListenerHead, word) == 16);
const _: () = assert!(size_of::<ListenerHead>() == 24);
const _: () =
    assert!(BITS_OFFSET + 8 == HOT_OFFSET && HOT_OFFSET + HOT_IDS * 8 == MORE_BITS_OFFSET);

fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_add(to - 1).map(|n| n / to * to)
}

/// Where everything is, for one set of options. Process-local and immutable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub backend_id: u32,
    pub max_event_id: u64,
    /// Number of ids: `max_event_id + 1`.
    pub ids: usize,
    /// Number of pending-bit words.
    pub words: usize,
    pub max_listeners: usize,
    pub max_notifiers: usize,
    listeners_offset: usize,
    counters_offset: usize,
    stride: usize,
    /// Total segment size, header included.
    pub size: usize,
}

impl Layout {
    /// The layout for these options, or an error naming the option out of range.
    pub fn new(
        segment: &str,
        backend_id: u32,
        max_event_id: u64,
        max_listeners: u32,
        max_notifiers: u32,
    ) -> Result<Layout> {
        let bad =
            |what: String| Err(Error::Unsupported { what: format!("event `{segment}`: {what}") });
        if max_event_id > MAX_EVENT_ID_LIMIT {
            return bad(format!(
                "max_event_id {max_event_id} exceeds the limit {MAX_EVENT_ID_LIMIT}"
            ));
        }
        for (option, value) in [("max_listeners", max_listeners), ("max_notifiers", max_notifiers)]
        {
            if value == 0 || value > MAX_PARTICIPANTS_LIMIT {
                return bad(format!("{option} {value} is outside 1..={MAX_PARTICIPANTS_LIMIT}"));
            }
        }
        // All of this is bounded by the limits above, far from overflowing; checked anyway.
        let ids = max_event_id as usize + 1;
        let words = ids.div_ceil(64);
        let overflow = || Error::CapacityOverflow { what: "event segment layout" };
        let counters_offset =
            round_up(MORE_BITS_OFFSET + (words - 1) * 8, 64).ok_or_else(overflow)?;
        let stride = round_up(counters_offset + ids.saturating_sub(HOT_IDS) * 8, 64)
            .ok_or_else(overflow)?
            .max(64);
        let listeners_offset =
            round_up(NOTIFIERS_OFFSET + max_notifiers as usize * size_of::<NotifierSlot>(), 64)
                .ok_or_else(overflow)?;
        let size = stride
            .checked_mul(max_listeners as usize)
            .and_then(|l| l.checked_add(listeners_offset))
            .ok_or_else(overflow)?;
        Ok(Layout {
            backend_id,
            max_event_id,
            ids,
            words,
            max_listeners: max_listeners as usize,
            max_notifiers: max_notifiers as usize,
            listeners_offset,
            counters_offset,
            stride,
            size,
        })
    }

    /// The config the creator writes for this layout.
    pub fn config(&self, backend_name: &str) -> Config {
        let mut name = [0u8; 32];
        let len = backend_name.len().min(name.len());
        name[..len].copy_from_slice(&backend_name.as_bytes()[..len]);
        Config {
            magic: MAGIC,
            backend_id: self.backend_id,
            max_listeners: self.max_listeners as u32,
            max_notifiers: self.max_notifiers as u32,
            _reserved: 0,
            max_event_id: self.max_event_id,
            backend_name: name,
        }
    }

    /// Rebuilds the layout from a config read out of a segment of `actual_size` bytes, checking
    /// everything: magic, ranges, and that the size matches exactly.
    pub fn from_config(segment: &str, config: &Config, actual_size: usize) -> Result<Layout> {
        let corrupted =
            |what: String| Error::Corrupted { what: format!("event segment `{segment}`: {what}") };
        if config.magic != MAGIC {
            return Err(corrupted(format!(
                "layout magic {:02x?} is not {:02x?} (not an event channel of this version)",
                config.magic, MAGIC
            )));
        }
        let layout = Layout::new(
            segment,
            config.backend_id,
            config.max_event_id,
            config.max_listeners,
            config.max_notifiers,
        )
        .map_err(|e| corrupted(format!("invalid config: {e}")))?;
        if layout.size != actual_size {
            return Err(corrupted(format!(
                "config implies {} bytes, the segment has {actual_size}",
                layout.size
            )));
        }
        Ok(layout)
    }

    pub fn config_offset() -> usize {
        CONFIG_OFFSET
    }

    pub fn shared_offset() -> usize {
        SHARED_OFFSET
    }

    pub fn notifier_offset(&self, slot: usize) -> usize {
        assert!(slot < self.max_notifiers, "notifier slot {slot} out of range");
        NOTIFIERS_OFFSET + slot * size_of::<NotifierSlot>()
    }

    pub fn listener_offset(&self, slot: usize) -> usize {
        assert!(slot < self.max_listeners, "listener slot {slot} out of range");
        self.listeners_offset + slot * self.stride
    }

    /// Offset of pending-bit word `word` within a listener slot.
    pub fn bits_offset(&self, word: usize) -> usize {
        assert!(word < self.words, "pending word {word} out of range");
        if word == 0 { BITS_OFFSET } else { MORE_BITS_OFFSET + (word - 1) * 8 }
    }

    /// Offset of the counter of id `index` within a listener slot.
    pub fn counter_offset(&self, index: usize) -> usize {
        assert!(index < self.ids, "event index {index} out of range");
        if index < HOT_IDS {
            HOT_OFFSET + index * 8
        } else {
            self.counters_offset + (index - HOT_IDS) * 8
        }
    }

    /// Mask of the ids that exist in the last pending word (bits above are garbage).
    pub fn last_word_mask(&self) -> u64 {
        match self.ids % 64 {
            0 => u64::MAX,
            n => (1u64 << n) - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_in_bounds() {
        for (max_id, listeners, notifiers) in [(0, 1, 1), (63, 2, 3), (64, 16, 16), (1023, 5, 7)] {
            let l = Layout::new("t", 1, max_id, listeners, notifiers).unwrap();
            assert_eq!(l.ids as u64, max_id + 1);
            assert_eq!(l.listener_offset(0) % 64, 0);
            assert_eq!(l.stride % 64, 0);
            assert!(l.notifier_offset(l.max_notifiers - 1) + 16 <= l.listener_offset(0));
            let last = l.listener_offset(l.max_listeners - 1);
            assert_eq!(l.size % 64, 0);
            // Every bit word and counter has its own 8 bytes inside the slot, after the head.
            let mut offsets: Vec<usize> = (0..l.words).map(|w| l.bits_offset(w)).collect();
            offsets.extend((0..l.ids).map(|i| l.counter_offset(i)));
            offsets.sort_unstable();
            assert!(offsets.windows(2).all(|w| w[1] >= w[0] + 8), "overlap: {offsets:?}");
            assert!(offsets[0] >= size_of::<ListenerHead>());
            assert!(offsets.iter().all(|o| o % 8 == 0 && o + 8 <= l.stride));
            assert!(last + l.stride <= l.size);
            // Ids 0..=3 share the word's cache line.
            assert!(l.counter_offset(0) < 64 && l.bits_offset(0) < 64);
        }
    }

    #[test]
    fn options_out_of_range_are_refused() {
        assert!(Layout::new("t", 1, MAX_EVENT_ID_LIMIT + 1, 1, 1).is_err());
        assert!(Layout::new("t", 1, 10, 0, 1).is_err());
        assert!(Layout::new("t", 1, 10, 1, MAX_PARTICIPANTS_LIMIT + 1).is_err());
    }

    #[test]
    fn config_round_trips_and_rejects_garbage() {
        let l = Layout::new("t", 7, 100, 3, 4).unwrap();
        let c = l.config("futex");
        assert_eq!(Layout::from_config("t", &c, l.size).unwrap(), l);
        assert!(Layout::from_config("t", &c, l.size + 64).is_err());
        let mut bad = c;
        bad.max_listeners = 0;
        assert!(matches!(Layout::from_config("t", &bad, l.size), Err(Error::Corrupted { .. })));
        bad = c;
        bad.magic[0] ^= 1;
        assert!(matches!(Layout::from_config("t", &bad, l.size), Err(Error::Corrupted { .. })));
    }

    #[test]
    fn last_word_mask_covers_exactly_the_ids() {
        assert_eq!(Layout::new("t", 1, 63, 1, 1).unwrap().last_word_mask(), u64::MAX);
        assert_eq!(Layout::new("t", 1, 64, 1, 1).unwrap().last_word_mask(), 1);
        assert_eq!(Layout::new("t", 1, 9, 1, 1).unwrap().last_word_mask(), 0x3ff);
    }
}
