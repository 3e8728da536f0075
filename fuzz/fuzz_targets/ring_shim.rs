// Shared by the ring targets: `src/pubsub/ring.rs` is included as is (it names nothing of the
// crate but `super::atomic`), with std atomics and the asymmetric barriers as plain fences, as
// `tests/loom_ring.rs` does.

pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

    pub(crate) fn light(_flag: &AtomicU32) {
        fence(Ordering::SeqCst)
    }

    pub(crate) fn heavy() -> bool {
        fence(Ordering::SeqCst);
        true
    }
}

use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::ring::{Delivery, Receipt};

/// Both sides' memory of one publisher–subscriber pair, zeroed.
pub(crate) struct Pair {
    pub sub_key: AtomicU64,
    pub pub_key: AtomicU64,
    pub fenced: AtomicU32,
    pub floor: AtomicU64,
    pub completion_head: AtomicU64,
    pub tail: AtomicU64,
    pub entries: Vec<AtomicU64>,
    pub head: AtomicU64,
    pub completion_tail: AtomicU64,
    pub completions: Vec<AtomicU64>,
}

impl Pair {
    pub(crate) fn new(sub_key: u64, pub_key: u64, entries: usize, completions: usize) -> Pair {
        let words = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        Pair {
            sub_key: AtomicU64::new(sub_key),
            pub_key: AtomicU64::new(pub_key),
            fenced: AtomicU32::new(0),
            floor: AtomicU64::new(0),
            completion_head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            entries: words(entries),
            head: AtomicU64::new(0),
            completion_tail: AtomicU64::new(0),
            completions: words(completions),
        }
    }

    /// The publisher's side.
    pub(crate) fn d(&self) -> Delivery<'_> {
        Delivery {
            sub_key: &self.sub_key,
            pub_key: &self.pub_key,
            fenced: &self.fenced,
            floor: &self.floor,
            completion_head: &self.completion_head,
            tail: &self.tail,
            entries: &self.entries,
        }
    }

    /// The subscriber's side.
    pub(crate) fn r(&self) -> Receipt<'_> {
        Receipt {
            head: &self.head,
            completion_tail: &self.completion_tail,
            completions: &self.completions,
        }
    }
}

/// Reads fuzz input as a little program: fixed-size fields, zero once exhausted.
pub(crate) struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    pub(crate) fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        for b in &mut bytes {
            *b = self.u8();
        }
        u64::from_le_bytes(bytes)
    }

    /// A value near `base` (most fuzz-chosen positions that matter are close to the real ones).
    pub(crate) fn near(&mut self, base: u64) -> u64 {
        match self.u8() % 4 {
            0 => self.u64(),
            1 => base.wrapping_add(u64::from(self.u8())),
            2 => base.wrapping_sub(u64::from(self.u8())),
            _ => base,
        }
    }
}
