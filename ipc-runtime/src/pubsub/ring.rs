//! The protocol between one publisher and one subscriber: a delivery ring (publisher →
//! subscriber) and a completion ring (subscriber → publisher), each written by one side only.
//!
//! This file is self-contained (it names nothing of the crate but `super::atomic`), so that
//! `tests/loom_ring.rs` checks this very code under the `loom` model checker.
//!
//! # Delivery
//!
//! Positions 0, 1, 2, … number the messages of one publisher–subscriber pair. The publisher
//! writes position `p` as one 64-bit entry at index `p mod ring_len`: a 40-bit *stamp* (`p + 1`,
//! so zeroed memory matches no position) over a 24-bit sample slot index. The subscriber polls
//! the entry of its next position itself (no separate tail to read): a stamp equal to its
//! position's is a message, an older one means "nothing yet", a newer one means the publisher
//! lapped it.
//!
//! The subscriber's `head` (in its own memory) is the next position it will look at; moving it
//! past a position *claims* that position. The publisher reads `head` only when the ring looks
//! full (it caches it otherwise).
//!
//! # Drop-oldest without a shared lock
//!
//! With `Overflow::DropOldest` the publisher never waits. A subscriber that is behind by more
//! than `capacity` drops its own oldest messages as it reads (it returns them unread), so it
//! sees the newest `capacity`. The ring has room for `2 × capacity` (rounded to a power of
//! two); only when a subscriber stopped reading altogether does the publisher *revoke* queued
//! positions, in batches (keeping the newest `capacity`): it overwrites them with a `REVOKED`
//! marker, raises `floor`, and then decides who owns each revoked sample.
//!
//! That decision is a Dekker handshake between the publisher's marker store and the
//! subscriber's claim. The subscriber claims *then verifies*: it stores `head = p + 1`, then
//! re-reads entry `p`; the publisher stores the markers, then reads `head`. With a barrier
//! between store and load on both sides, at least one sees the other:
//!
//! * the publisher reads `head ≤ p`: the subscriber's verification will see the marker, so the
//!   publisher takes the sample back at once;
//! * the publisher reads `head > p`: *ambiguous*, the subscriber may have taken the sample. The
//!   publisher keeps it accounted to the subscriber until the subscriber either returns the slot
//!   (it took it) or *declines* position `p` (it saw the marker, or jumped over `p`). Declines
//!   name positions, not slots, so a decline for a position the publisher already took back is
//!   recognised and ignored.
//!
//! A third case needs no revocation at all: the publisher saw the subscriber's claim of `p`,
//! counts the sample as taken, and wraps the ring over `p` before the subscriber verified. The
//! subscriber sees a changed entry and declines `p`, which it cannot tell from "revoked, then
//! overwritten". So the publisher remembers the slot of a position it overwrites at
//! `head - 1` (the only one that can be mid-verification) and reads a decline of it as the
//! return of that slot. (Found by the loom model.)
//!
//! The barriers are asymmetric ([`light`], [`heavy`] in `super::atomic`, see
//! `crate::barrier`): the subscriber, which claims on every receive, issues only a compiler
//! barrier unless `fenced` is set; the publisher sets `fenced` and issues the heavy barrier once
//! per revocation episode, and clears it when the subscriber has caught up.
//!
//! # Small messages inline
//!
//! A message type of at most [`INLINE_WORDS`] machine words with no uninitialised byte and no
//! destructor travels *inside* its ring entry (a cache line: stamp, sequence, payload), so the
//! subscriber reads one line instead of an entry and then a sample slot, and nothing is
//! returned. The entry is a seqlock: the publisher zeroes the stamp, writes the words, then
//! stores the new stamp; the subscriber copies the words and keeps the copy only if the stamp
//! did not change meanwhile. With drop-oldest the publisher overwrites freely (a lapped
//! subscriber resumes `capacity` behind the publisher's tail); with block it waits for the
//! subscriber's head as for slot indices.
//!
//! # Completion
//!
//! The subscriber returns a finished sample's slot index, or declines revoked positions, by
//! appending to its completion ring and publishing `completion_tail`; the publisher reads the
//! tail when it wants slots back (lazily) and publishes how far it read (`completion_head`).
//! Every value read from the other side is checked; an impossible one is [`Corrupt`].

use super::atomic::{AtomicU32, AtomicU64, Ordering, fence, heavy, light};

/// Bits of a sample slot index in an entry.
pub(crate) const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// The slot index of a revoked position.
pub(crate) const REVOKED: u32 = SLOT_MASK as u32;
/// Pools must be smaller than this (slot indices are 24 bits, one value is the marker).
pub(crate) const MAX_POOL: u32 = REVOKED;
const STAMP_BITS: u32 = 64 - SLOT_BITS;
/// Payload words an inline entry carries (after the stamp and the sequence).
pub(crate) const INLINE_WORDS: usize = 6;
/// Words of an inline entry: one cache line.
pub(crate) const INLINE_STRIDE: usize = 8;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;

fn stamp(position: u64) -> u64 {
    position.wrapping_add(1) & STAMP_MASK
}

/// The entry announcing `slot` at `position`.
pub(crate) fn entry(position: u64, slot: u32) -> u64 {
    (stamp(position) << SLOT_BITS) | (slot as u64 & SLOT_MASK)
}

fn slot_of(entry: u64) -> u32 {
    (entry & SLOT_MASK) as u32
}

/// How far the position stamped in `entry` is from `position`: 0 for the same, negative for
/// an older (or never written) one, positive for a newer one.
fn lap(entry: u64, position: u64) -> i64 {
    let diff = (entry >> SLOT_BITS).wrapping_sub(stamp(position)) & STAMP_MASK;
    // Sign-extend the 40-bit difference.
    ((diff << SLOT_BITS) as i64) >> SLOT_BITS
}

/// Checks where a subscriber lapped at `h` (its entry holds a position `distance` later) is
/// told to resume (`what`: the publisher's floor or tail). The publisher may have gone on since
/// the entry was read, so the value may be further on; it cannot be at or behind `h`, nor
/// beyond what the stamps can tell apart.
fn resumable(h: u64, distance: i64, value: u64, what: &str) -> Result<(), Corrupt> {
    if value <= h || value - h > STAMP_MASK / 2 {
        return Err(Corrupt(format!(
            "position {h} was overwritten by position {} but its {what} is {value}",
            h.saturating_add(distance as u64)
        )));
    }
    Ok(())
}

/// A value read from the other side that no correct peer could have written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt(pub String);

/// A subscriber's word to its publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    /// Done with this sample slot.
    Return(u32),
    /// Did not take positions `from..from + count` (revoked, or jumped over).
    Decline { from: u64, count: u64 },
}

const DECLINE: u64 = 1 << 63;
const MAX_DECLINE: u64 = (1 << 31) - 1;

impl Completion {
    fn encode(self) -> u64 {
        match self {
            Completion::Return(slot) => slot as u64,
            Completion::Decline { from, count } => {
                debug_assert!(count <= MAX_DECLINE);
                DECLINE | (count << 32) | (from & 0xffff_ffff)
            }
        }
    }

    /// Decodes an entry; `tail` (the publisher's next position) restores the high bits of a
    /// declined position (declines are of positions below `tail`).
    fn decode(value: u64, tail: u64) -> Completion {
        if value & DECLINE == 0 {
            return Completion::Return(value.min(u32::MAX as u64) as u32);
        }
        let low = value & 0xffff_ffff;
        let back = (tail & 0xffff_ffff).wrapping_sub(low) & 0xffff_ffff;
        Completion::Decline { from: tail.wrapping_sub(back), count: (value >> 32) & MAX_DECLINE }
    }
}

/// What the publisher writes for one subscriber (in the publisher's memory).
#[derive(Clone, Copy)]
pub(crate) struct Delivery<'a> {
    /// Key of the subscriber served; 0 = none.
    pub sub_key: &'a AtomicU64,
    /// Key of the publisher incarnation that owns the ring (its port header); 0 once it gave
    /// the port up.
    pub pub_key: &'a AtomicU64,
    /// Subscriber claims must fence (revocation episode, or the subscriber is not light).
    pub fenced: &'a AtomicU32,
    /// Positions below are consumed or revoked.
    pub floor: &'a AtomicU64,
    /// How far the publisher has read the completion ring.
    pub completion_head: &'a AtomicU64,
    /// The publisher's next position (where a lapped inline subscriber resumes from).
    pub tail: &'a AtomicU64,
    /// `ring_len × stride` words.
    pub entries: &'a [AtomicU64],
}

/// What the subscriber writes for one publisher (in the subscriber's memory).
#[derive(Clone, Copy)]
pub(crate) struct Receipt<'a> {
    /// Next position to look at; moving it claims.
    pub head: &'a AtomicU64,
    pub completion_tail: &'a AtomicU64,
    pub completions: &'a [AtomicU64],
}

/// A revoked position, as the publisher decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revoked {
    pub position: u64,
    pub slot: u32,
    /// The subscriber may have taken it: it stays accounted to the subscriber until returned
    /// or declined.
    pub ambiguous: bool,
}

/// The publisher's side of one pair (process-local state).
#[derive(Debug)]
pub(crate) struct Producer {
    /// Next position to write.
    pub tail: u64,
    /// The subscriber's head as last read.
    head: u64,
    /// Positions below are consumed or revoked.
    floor: u64,
    completion_head: u64,
    capacity: u64,
    mask: u64,
    /// Words per entry: 1, or [`INLINE_STRIDE`] for inline messages.
    stride: usize,
    /// A revocation episode is on (`fenced` set by us).
    episode: bool,
    /// The subscriber's process is a light side (otherwise `fenced` is set for good).
    peer_light: bool,
    /// Slot written at each index, for positions `floor..tail`; `REVOKED` once revoked.
    slots: Box<[u32]>,
    /// Consumed positions we overwrote while each was the subscriber's last claim, with their
    /// slots: it may have been verifying that claim, seen our newer entry and declined the
    /// position although we count it as taken (see `write`). Such a decline returns the slot.
    unverified: Vec<(u64, u32)>,
}

impl Producer {
    /// A fresh pair: resets the shared side (`d` must not be visible to a subscriber yet).
    pub fn new(d: &Delivery<'_>, capacity: u64, stride: usize, peer_light: bool) -> Producer {
        let ring_len = d.entries.len() / stride;
        debug_assert!(ring_len.is_power_of_two() && ring_len as u64 >= capacity);
        for e in d.entries {
            e.store(0, Ordering::Relaxed);
        }
        d.floor.store(0, Ordering::Relaxed);
        d.tail.store(0, Ordering::Relaxed);
        d.completion_head.store(0, Ordering::Relaxed);
        d.fenced.store(u32::from(!peer_light), Ordering::Relaxed);
        Producer {
            tail: 0,
            head: 0,
            floor: 0,
            completion_head: 0,
            capacity,
            mask: ring_len as u64 - 1,
            stride,
            episode: false,
            peer_light,
            slots: vec![0; ring_len].into_boxed_slice(),
            unverified: Vec::new(),
        }
    }

    fn read_head(&mut self, r: &Receipt<'_>) -> Result<u64, Corrupt> {
        let head = r.head.load(Ordering::Acquire);
        if head < self.head || head > self.tail {
            return Err(Corrupt(format!(
                "its head {head} is outside {}..={} (what it consumed .. what was written)",
                self.head, self.tail
            )));
        }
        self.head = head;
        Ok(head)
    }

    /// Whether fewer than `limit` positions are in use (neither consumed nor revoked),
    /// re-reading the subscriber's head only if the cached one says no. `acked`: the subscriber
    /// has acknowledged this pair, so its head is about us (otherwise it counts as 0).
    pub fn has_room(
        &mut self,
        r: &Receipt<'_>,
        d: &Delivery<'_>,
        limit: u64,
        acked: bool,
    ) -> Result<bool, Corrupt> {
        if self.tail - self.head.max(self.floor) < limit {
            return Ok(true);
        }
        if !acked {
            return Ok(false);
        }
        self.read_head(r)?;
        let room = self.tail - self.head.max(self.floor) < limit;
        if room && self.episode && self.tail - self.head < self.capacity {
            // Caught up: the episode is over, claims may skip the fence again.
            self.episode = false;
            d.fenced.store(0, Ordering::Release);
        }
        Ok(room)
    }

    /// Whether the subscriber consumed everything written (re-reading its head).
    pub fn consumed(&mut self, r: &Receipt<'_>, acked: bool) -> Result<bool, Corrupt> {
        if self.head < self.tail && acked {
            self.read_head(r)?;
        }
        Ok(self.head >= self.tail)
    }

    /// Writes `slot` at the next position. The caller made sure there is room.
    pub fn write(&mut self, d: &Delivery<'_>, slot: u32) {
        debug_assert!(slot < REVOKED && self.stride == 1);
        let i = (self.tail & self.mask) as usize;
        // The position we replace, if consumed (not revoked) and the subscriber's last claim as
        // we know it, may be between its claim and its verification: the subscriber then sees
        // our entry instead of its own and declines the position (it cannot tell this from a
        // revocation followed by a newer write), while we count the sample as taken. Remember
        // it, so that the decline returns the slot (`drain`).
        let replaced = self.tail.wrapping_sub(self.mask + 1);
        if self.tail > self.mask && replaced + 1 == self.head && self.slots[i] != REVOKED {
            let old = self.slots[i];
            // An older record of the same slot is stale: the slot came back since.
            self.unverified.retain(|&(_, s)| s != old);
            self.unverified.push((replaced, old));
        }
        self.slots[i] = slot;
        d.entries[i].store(entry(self.tail, slot), Ordering::Release);
        self.tail += 1;
        d.tail.store(self.tail, Ordering::Release);
    }

    /// Writes an inline message (its sequence and payload words) at the next position. With
    /// block the caller made sure there is room; with drop-oldest it overwrites whatever is
    /// there (subscribers notice by the stamp).
    pub fn write_inline(&mut self, d: &Delivery<'_>, sequence: u64, payload: &[u64; INLINE_WORDS]) {
        debug_assert_eq!(self.stride, INLINE_STRIDE);
        let base = (self.tail & self.mask) as usize * INLINE_STRIDE;
        let words = &d.entries[base..base + INLINE_STRIDE];
        // Seqlock write: invalidate, then the words, then the new stamp.
        words[0].store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        words[1].store(sequence, Ordering::Relaxed);
        for (word, &value) in words[2..].iter().zip(payload) {
            word.store(value, Ordering::Relaxed);
        }
        words[0].store(entry(self.tail, 0), Ordering::Release);
        self.tail += 1;
        d.tail.store(self.tail, Ordering::Release);
    }

    /// Drop-oldest for a subscriber that stopped reading (the ring is full): revokes the
    /// oldest queued positions so that, with the next write, the newest `capacity` remain.
    /// `each` learns every revoked position and whether the subscriber may hold it.
    pub fn revoke(
        &mut self,
        d: &Delivery<'_>,
        r: &Receipt<'_>,
        acked: bool,
        mut each: impl FnMut(Revoked),
    ) -> Result<(), Corrupt> {
        let start = self.floor.max(self.head);
        let end = (self.tail + 1).saturating_sub(self.capacity).max(start);
        if start == end {
            return Ok(());
        }
        let mut barrier_ok = true;
        if self.peer_light && !self.episode {
            self.episode = true;
            d.fenced.store(1, Ordering::SeqCst);
            // The subscriber's claims that did not see the flag are visible after this.
            barrier_ok = heavy();
        }
        for position in start..end {
            d.entries[(position & self.mask) as usize]
                .store(entry(position, REVOKED), Ordering::Relaxed);
        }
        d.floor.store(end, Ordering::Release);
        fence(Ordering::SeqCst);
        let head = if acked { self.read_head(r)? } else { 0 };
        for position in start..end {
            let i = (position & self.mask) as usize;
            let slot = self.slots[i];
            self.slots[i] = REVOKED;
            each(Revoked { position, slot, ambiguous: position < head || !barrier_ok });
        }
        self.floor = end;
        Ok(())
    }

    /// Takes what the subscriber returned: calls `each` for every completion, oldest first.
    /// Returns how many there were.
    pub fn drain(
        &mut self,
        d: &Delivery<'_>,
        r: &Receipt<'_>,
        mut each: impl FnMut(Completion),
    ) -> Result<usize, Corrupt> {
        let tail = r.completion_tail.load(Ordering::Acquire);
        let len = r.completions.len() as u64;
        let pending = tail.wrapping_sub(self.completion_head);
        if pending > len {
            return Err(Corrupt(format!(
                "its completion tail {tail} is more than {len} past {}",
                self.completion_head
            )));
        }
        let mask = len - 1;
        while self.completion_head != tail {
            let value =
                r.completions[(self.completion_head & mask) as usize].load(Ordering::Relaxed);
            let completion = Completion::decode(value, self.tail);
            if !self.unverified.is_empty() {
                match completion {
                    Completion::Return(slot) => self.unverified.retain(|&(_, s)| s != slot),
                    Completion::Decline { from, count } => {
                        // A claim it declined after seeing our newer entry: it did not take
                        // the sample we count as taken, so the slot comes back.
                        let end = from.saturating_add(count);
                        self.unverified.retain(|&(position, slot)| {
                            let declined = position >= from && position < end;
                            if declined {
                                each(Completion::Return(slot));
                            }
                            !declined
                        });
                    }
                }
            }
            each(completion);
            self.completion_head += 1;
        }
        d.completion_head.store(self.completion_head, Ordering::Release);
        Ok(pending as usize)
    }
}

/// What a receive found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Take {
    /// A message: the subscriber now holds `slot` (return it when done).
    Message { position: u64, slot: u32 },
    /// An inline message, copied into the caller's buffer (sequence, then payload).
    Inline { position: u64 },
    /// Nothing queued; or nothing could be taken within [`Consumer::step_budget`] steps (a
    /// publisher that keeps overwriting positions under the subscriber's feet): the caller
    /// checks its deadline and tries again, so no peer can keep a receive inside the ring.
    Empty,
    /// The publisher no longer serves this subscriber (it reset or reassigned the ring).
    Disconnected,
    /// The publisher wrote something impossible.
    Corrupt(Corrupt),
}

/// The subscriber's side of one pair (process-local state).
#[derive(Debug)]
pub(crate) struct Consumer {
    /// Next position to look at.
    pub head: u64,
    completion_tail: u64,
    completion_head: u64,
    capacity: u64,
    mask: u64,
    /// Words per entry.
    stride: usize,
    /// Drop the oldest when more than `capacity` are queued.
    drop_oldest: bool,
    pool_len: u32,
    /// Completions that did not fit yet (the publisher is slow to take them).
    pending: Vec<u64>,
    /// The publisher incarnation we read from: a ring whose port now has another key is not
    /// ours any more (memory given back and reused).
    pub_key: u64,
}

impl Consumer {
    /// A fresh pair: resets the shared side (`r` must not be acknowledged to the publisher yet).
    pub fn new(
        r: &Receipt<'_>,
        pub_key: u64,
        ring_len: usize,
        stride: usize,
        capacity: u64,
        drop_oldest: bool,
        pool_len: u32,
    ) -> Consumer {
        r.head.store(0, Ordering::Relaxed);
        r.completion_tail.store(0, Ordering::Relaxed);
        Consumer {
            head: 0,
            completion_tail: 0,
            completion_head: 0,
            capacity,
            mask: ring_len as u64 - 1,
            stride,
            drop_oldest,
            pool_len,
            pending: Vec::new(),
            pub_key,
        }
    }

    fn load(&self, d: &Delivery<'_>, position: u64) -> u64 {
        d.entries[(position & self.mask) as usize * self.stride].load(Ordering::Acquire)
    }

    /// Takes the next inline message into `out` (sequence, then payload), skipping what the
    /// publisher overwrote and, with drop-oldest, messages beyond the newest `capacity`.
    pub fn take_inline(
        &mut self,
        d: &Delivery<'_>,
        r: &Receipt<'_>,
        key: u64,
        out: &mut [u64; INLINE_WORDS + 1],
    ) -> Take {
        debug_assert_eq!(self.stride, INLINE_STRIDE);
        let mut budget = self.step_budget();
        loop {
            if !self.ours(d, key) {
                return Take::Disconnected;
            }
            budget = match budget.checked_sub(1) {
                Some(left) => left,
                None => return Take::Empty,
            };
            let h = self.head;
            let base = (h & self.mask) as usize * INLINE_STRIDE;
            let words = &d.entries[base..base + INLINE_STRIDE];
            let seen = words[0].load(Ordering::Acquire);
            let distance = lap(seen, h);
            if distance < 0 {
                return Take::Empty;
            }
            if distance > 0 {
                // Lapped: resume `capacity` behind the publisher's tail.
                let tail = d.tail.load(Ordering::Acquire);
                if let Err(corrupt) = resumable(h, distance, tail, "tail") {
                    return Take::Corrupt(corrupt);
                }
                self.head = tail.saturating_sub(self.capacity).max(h + 1);
                r.head.store(self.head, Ordering::Release);
                continue;
            }
            for (slot, word) in out.iter_mut().zip(&words[1..]) {
                *slot = word.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if words[0].load(Ordering::Relaxed) != seen {
                // Overwritten while we copied: we were lapped; look again.
                continue;
            }
            if !self.ours(d, key) {
                return Take::Disconnected;
            }
            self.head = h + 1;
            r.head.store(self.head, Ordering::Release);
            if self.drop_oldest && self.behind(d, h) {
                continue;
            }
            return Take::Inline { position: h };
        }
    }

    /// How many positions one `take` may step over before it returns [`Take::Empty`]. An
    /// honest publisher needs at most a ring's worth (a revoked batch, a lapped jump, the
    /// surplus a drop-oldest subscriber drops), twice over for one that keeps publishing; a
    /// publisher that keeps rewriting entries ahead of the subscriber would otherwise keep it
    /// here forever.
    pub fn step_budget(&self) -> u64 {
        4 * (self.mask + 1) + 16
    }

    /// Whether the ring is (still) ours: the publisher incarnation we connected to owns it and
    /// serves us. Checked first, with acquire: when the publisher (re)initialised the ring for
    /// us it reset entries and floor before storing our key, so what we read next is ours.
    #[inline]
    fn ours(&self, d: &Delivery<'_>, key: u64) -> bool {
        d.pub_key.load(Ordering::Acquire) == self.pub_key
            && d.sub_key.load(Ordering::Acquire) == key
    }

    /// Whether an entry is waiting at the head of a ring that is still ours.
    pub fn ready(&self, d: &Delivery<'_>, key: u64) -> bool {
        self.ours(d, key) && lap(self.load(d, self.head), self.head) >= 0
    }

    /// Takes the next message, skipping revoked positions and, with drop-oldest, messages
    /// beyond the newest `capacity`.
    pub fn take(&mut self, d: &Delivery<'_>, r: &Receipt<'_>, key: u64) -> Take {
        let mut budget = self.step_budget();
        loop {
            if !self.ours(d, key) {
                return Take::Disconnected;
            }
            budget = match budget.checked_sub(1) {
                Some(left) => left,
                None => return Take::Empty,
            };
            let h = self.head;
            let seen = self.load(d, h);
            let distance = lap(seen, h);
            if distance < 0 {
                return Take::Empty;
            }
            if distance > 0 {
                // Lapped: the publisher revoked up to `floor` (stored before the newer entry).
                let floor = d.floor.load(Ordering::Acquire);
                if let Err(corrupt) = resumable(h, distance, floor, "floor") {
                    return Take::Corrupt(corrupt);
                }
                r.head.store(floor, Ordering::Release);
                self.head = floor;
                self.decline(d, r, h, floor - h);
                continue;
            }
            // Claim, then verify that the publisher did not revoke the position meanwhile.
            r.head.store(h + 1, Ordering::Relaxed);
            light(d.fenced);
            let verified = self.load(d, h);
            if !self.ours(d, key) {
                return Take::Disconnected;
            }
            self.head = h + 1;
            let slot = slot_of(seen);
            if verified != seen || slot == REVOKED {
                self.decline(d, r, h, 1);
                continue;
            }
            if slot >= self.pool_len {
                self.decline(d, r, h, 1);
                return Take::Corrupt(Corrupt(format!(
                    "position {h} names sample slot {slot}, the pool has {}",
                    self.pool_len
                )));
            }
            if self.drop_oldest && self.behind(d, h) {
                // More than `capacity` queued: this one is among the oldest; drop it unread.
                self.give_back(d, r, Completion::Return(slot));
                continue;
            }
            return Take::Message { position: h, slot };
        }
    }

    /// Whether a message `capacity` positions after `h` is already there.
    fn behind(&self, d: &Delivery<'_>, h: u64) -> bool {
        let ahead = h + self.capacity;
        lap(self.load(d, ahead), ahead) >= 0
    }

    fn decline(&mut self, d: &Delivery<'_>, r: &Receipt<'_>, mut from: u64, mut count: u64) {
        while count > 0 {
            let part = count.min(MAX_DECLINE);
            self.give_back(d, r, Completion::Decline { from, count: part });
            from += part;
            count -= part;
        }
    }

    /// Hands a completion to the publisher (queued locally while its ring is full).
    #[inline]
    pub fn give_back(&mut self, d: &Delivery<'_>, r: &Receipt<'_>, completion: Completion) {
        let len = r.completions.len() as u64;
        if self.pending.is_empty() && self.completion_tail - self.completion_head < len {
            let i = (self.completion_tail & (len - 1)) as usize;
            r.completions[i].store(completion.encode(), Ordering::Relaxed);
            self.completion_tail += 1;
            r.completion_tail.store(self.completion_tail, Ordering::Release);
            return;
        }
        self.pending.push(completion.encode());
        self.flush(d, r);
    }

    /// Test seam: queues raw completion values, as a buggy or hostile subscriber would write.
    #[cfg(any(test, feature = "test-seams"))]
    pub fn give_back_raw(&mut self, d: &Delivery<'_>, r: &Receipt<'_>, values: &[u64]) {
        self.pending.extend_from_slice(values);
        self.flush(d, r);
    }

    /// Moves locally queued completions into the ring as far as there is room. Returns whether
    /// none is left over.
    pub fn flush(&mut self, d: &Delivery<'_>, r: &Receipt<'_>) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let len = r.completions.len() as u64;
        let mask = len - 1;
        let mut moved = 0;
        for &value in &self.pending {
            if self.completion_tail - self.completion_head >= len {
                let head = d.completion_head.load(Ordering::Acquire);
                // The publisher's count is believed only if it is possible; a wrong one costs
                // us our own completions, never anyone else's.
                if head > self.completion_head && head <= self.completion_tail {
                    self.completion_head = head;
                }
                if self.completion_tail - self.completion_head >= len {
                    break;
                }
            }
            r.completions[(self.completion_tail & mask) as usize].store(value, Ordering::Relaxed);
            self.completion_tail += 1;
            moved += 1;
        }
        if moved > 0 {
            r.completion_tail.store(self.completion_tail, Ordering::Release);
            self.pending.drain(..moved);
        }
        self.pending.is_empty()
    }
}

#[cfg(all(test, not(ipc_loom)))]
mod tests {
    use super::*;

    struct Pair {
        key: AtomicU64,
        pub_key: AtomicU64,
        fenced: AtomicU32,
        floor: AtomicU64,
        completion_head: AtomicU64,
        tail: AtomicU64,
        entries: Vec<AtomicU64>,
        head: AtomicU64,
        completion_tail: AtomicU64,
        completions: Vec<AtomicU64>,
    }

    impl Pair {
        fn new(ring: usize, completions: usize) -> Pair {
            Pair {
                key: AtomicU64::new(1),
                pub_key: AtomicU64::new(7),
                fenced: AtomicU32::new(0),
                floor: AtomicU64::new(0),
                completion_head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                entries: (0..ring).map(|_| AtomicU64::new(0)).collect(),
                head: AtomicU64::new(0),
                completion_tail: AtomicU64::new(0),
                completions: (0..completions).map(|_| AtomicU64::new(0)).collect(),
            }
        }
        fn d(&self) -> Delivery<'_> {
            Delivery {
                sub_key: &self.key,
                pub_key: &self.pub_key,
                fenced: &self.fenced,
                floor: &self.floor,
                completion_head: &self.completion_head,
                tail: &self.tail,
                entries: &self.entries,
            }
        }
        fn r(&self) -> Receipt<'_> {
            Receipt {
                head: &self.head,
                completion_tail: &self.completion_tail,
                completions: &self.completions,
            }
        }
    }

    #[test]
    fn stamps_tell_positions_apart() {
        assert_eq!(lap(0, 0), -1, "zeroed memory is never a message");
        assert_eq!(lap(entry(5, 3), 5), 0);
        assert_eq!(lap(entry(5, 3), 6), -1);
        assert_eq!(lap(entry(37, 3), 5), 32);
        assert_eq!(slot_of(entry(u64::MAX - 3, REVOKED)), REVOKED);
        let huge = (1u64 << 40) + 7;
        assert_eq!(lap(entry(huge, 1), huge), 0);
        for c in [Completion::Return(9), Completion::Decline { from: 1_000_000_123, count: 77 }] {
            assert_eq!(Completion::decode(c.encode(), 1_000_000_300), c);
        }
    }

    #[test]
    fn fifo_then_empty() {
        let pair = Pair::new(8, 32);
        let (d, r) = (pair.d(), pair.r());
        let mut p = Producer::new(&d, 4, 1, true);
        let mut c = Consumer::new(&r, 7, 8, 1, 4, true, 100);
        for slot in [10, 11, 12] {
            assert!(p.has_room(&r, &d, 8, true).unwrap());
            p.write(&d, slot);
        }
        for (position, slot) in [(0, 10), (1, 11), (2, 12)] {
            assert_eq!(c.take(&d, &r, 1), Take::Message { position, slot });
            c.give_back(&d, &r, Completion::Return(slot));
        }
        assert_eq!(c.take(&d, &r, 1), Take::Empty);
        let mut back = Vec::new();
        assert_eq!(p.drain(&d, &r, |c| back.push(c)).unwrap(), 3);
        assert_eq!(back, [10, 11, 12].map(Completion::Return));
    }

    #[test]
    fn a_subscriber_behind_drops_its_oldest_and_keeps_capacity() {
        let pair = Pair::new(8, 32);
        let (d, r) = (pair.d(), pair.r());
        let mut p = Producer::new(&d, 3, 1, true);
        let mut c = Consumer::new(&r, 7, 8, 1, 3, true, 100);
        for slot in 0..6 {
            assert!(p.has_room(&r, &d, 8, true).unwrap());
            p.write(&d, slot);
        }
        assert_eq!(c.take(&d, &r, 1), Take::Message { position: 3, slot: 3 });
        let mut back = Vec::new();
        p.drain(&d, &r, |c| back.push(c)).unwrap();
        assert_eq!(back, [0, 1, 2].map(Completion::Return), "dropped unread, returned");
    }

    #[test]
    fn revocation_of_a_stalled_subscriber_keeps_the_newest_and_releases_the_rest() {
        let pair = Pair::new(4, 16);
        let (d, r) = (pair.d(), pair.r());
        // A subscriber may rely on the heavy barrier only where the system has one (Linux);
        // elsewhere it fences on every claim and the publisher needs no barrier.
        let peer_light = heavy();
        let mut p = Producer::new(&d, 2, 1, peer_light);
        let mut c = Consumer::new(&r, 7, 4, 1, 2, true, 100);
        let mut revoked = Vec::new();
        for slot in 0..10 {
            if !p.has_room(&r, &d, 4, true).unwrap() {
                p.revoke(&d, &r, true, |rv| revoked.push(rv)).unwrap();
            }
            p.write(&d, slot);
        }
        assert!(revoked.iter().all(|rv| !rv.ambiguous), "the subscriber never claimed");
        // Two batches (at writes 4 and 7), each leaving the newest `capacity` before the write.
        assert_eq!(revoked.iter().map(|rv| rv.slot).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
        // The subscriber wakes up: it is lapped, declines what it missed, drops the surplus
        // beyond `capacity` unread, and gets the newest two.
        assert_eq!(c.take(&d, &r, 1), Take::Message { position: 8, slot: 8 });
        assert_eq!(c.take(&d, &r, 1), Take::Message { position: 9, slot: 9 });
        assert_eq!(c.take(&d, &r, 1), Take::Empty);
        let mut back = Vec::new();
        p.drain(&d, &r, |c| back.push(c)).unwrap();
        assert_eq!(
            back,
            [
                Completion::Decline { from: 0, count: 6 },
                Completion::Return(6),
                Completion::Return(7)
            ]
        );
    }

    #[test]
    fn inline_messages_travel_in_the_entry_and_laps_resume_at_the_newest() {
        // 4 entries of one cache line each.
        let pair = Pair::new(4 * INLINE_STRIDE, 16);
        let (d, r) = (pair.d(), pair.r());
        let mut p = Producer::new(&d, 2, INLINE_STRIDE, true);
        let mut c = Consumer::new(&r, 7, 4, INLINE_STRIDE, 2, true, 100);
        let mut out = [0; INLINE_WORDS + 1];
        assert_eq!(c.take_inline(&d, &r, 1, &mut out), Take::Empty);
        let payload = |v: u64| [v, v + 1, v + 2, v + 3, v + 4, v + 5];
        p.write_inline(&d, 1, &payload(10));
        assert_eq!(c.take_inline(&d, &r, 1, &mut out), Take::Inline { position: 0 });
        assert_eq!(out, [1, 10, 11, 12, 13, 14, 15]);
        // Drop-oldest: the publisher laps a subscriber that stopped reading.
        for v in 2..=9 {
            p.write_inline(&d, v, &payload(v * 10));
        }
        assert_eq!(c.take_inline(&d, &r, 1, &mut out), Take::Inline { position: 7 });
        assert_eq!(out[0], 8);
        assert_eq!(c.take_inline(&d, &r, 1, &mut out), Take::Inline { position: 8 });
        assert_eq!(out[..2], [9, 90]);
        assert_eq!(c.take_inline(&d, &r, 1, &mut out), Take::Empty);
        assert!(p.drain(&d, &r, |_| panic!("inline messages are not returned")).is_ok());
    }

    #[test]
    fn a_torn_inline_copy_is_never_kept() {
        let pair = Pair::new(2 * INLINE_STRIDE, 16);
        let (d, r) = (pair.d(), pair.r());
        let mut p = Producer::new(&d, 1, INLINE_STRIDE, true);
        let mut c = Consumer::new(&r, 7, 2, INLINE_STRIDE, 1, true, 100);
        let n = 200_000u64;
        std::thread::scope(|s| {
            s.spawn(|| {
                for v in 1..=n {
                    p.write_inline(&d, v, &[v; INLINE_WORDS]);
                }
            });
            let mut out = [0; INLINE_WORDS + 1];
            let mut last = 0;
            while last < n {
                if let Take::Inline { .. } = c.take_inline(&d, &r, 1, &mut out) {
                    assert!(out.iter().all(|&w| w == out[0]), "torn copy: {out:?}");
                    assert!(out[0] > last, "went back: {} after {last}", out[0]);
                    last = out[0];
                }
            }
        });
    }

    #[test]
    fn garbage_from_either_side_is_corruption_not_a_read() {
        let pair = Pair::new(4, 16);
        let (d, r) = (pair.d(), pair.r());
        let mut p = Producer::new(&d, 2, 1, true);
        for slot in 0..4 {
            p.write(&d, slot);
        }
        pair.head.store(u64::MAX, Ordering::Relaxed);
        assert!(p.has_room(&r, &d, 4, true).is_err(), "head beyond the tail");
        pair.head.store(0, Ordering::Relaxed);
        pair.completion_tail.store(1 << 40, Ordering::Relaxed);
        assert!(p.drain(&d, &r, |_| panic!("must not read")).is_err());

        let mut c = Consumer::new(&r, 7, 4, 1, 2, false, 3);
        pair.entries[0].store(entry(0, 99), Ordering::Relaxed);
        assert!(matches!(c.take(&d, &r, 1), Take::Corrupt(_)), "slot outside the pool");
        pair.entries[1].store(entry(9, 1), Ordering::Relaxed);
        assert!(matches!(c.take(&d, &r, 1), Take::Corrupt(_)), "lapped with no floor");
        pair.key.store(2, Ordering::Relaxed);
        assert_eq!(c.take(&d, &r, 1), Take::Disconnected);
    }

    #[test]
    fn a_publisher_rewriting_entries_ahead_cannot_keep_take_looping() {
        // A hostile publisher thread keeps stamping the ring's positions from the subscriber's
        // head on as revoked: each step of `take` declines one and finds the next one revoked
        // too (the writer stays ahead: a store per position against the subscriber's claim,
        // verification and decline). Without a budget `take` would not return while the
        // writer runs.
        use std::sync::atomic::AtomicBool;
        const RING: u64 = 1024;
        let p = Pair::new(RING as usize, 64);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let h = p.head.load(Ordering::Relaxed);
                    for position in h..h + RING {
                        p.entries[(position % RING) as usize]
                            .store(entry(position, REVOKED), Ordering::Release);
                    }
                }
            });
            let (d, r) = (p.d(), p.r());
            let mut c = Consumer::new(&r, 7, RING as usize, 1, RING / 2, false, 8);
            while p.entries[RING as usize - 1].load(Ordering::Acquire) == 0 {
                std::hint::spin_loop(); // the writer's first round
            }
            let mut stepped = 0;
            for _ in 0..100 {
                let before = c.head;
                let take = c.take(&d, &r, 1);
                assert!(!matches!(take, Take::Message { .. }), "{take:?}");
                assert!(c.head - before <= 4 * RING + 16, "one take stepped {}", c.head - before);
                stepped += c.head - before;
            }
            stop.store(true, Ordering::Relaxed);
            assert!(stepped > 0, "the subscriber never met the hostile entries");
        });
    }
}
