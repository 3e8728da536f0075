//! The publisher's books, in its own memory: who holds which sample slot.
//!
//! * [`Pool`]: the sample slots in the publisher's heap, a reference count per slot (the
//!   publisher while delivering, each subscriber it was delivered to, the history), and the
//!   free list. A slot whose count drops to zero has its message dropped here, in the
//!   publisher's process (the ownership rule).
//! * [`Holdings`]: per subscriber, the slots delivered to it and not yet returned (a bitset),
//!   and the revoked positions it may or may not have taken ("ambiguous", see `ring.rs`).
//!   Whatever a subscriber says it returns is believed only if the books say it holds it.

use std::collections::VecDeque;
use std::ptr::NonNull;

use super::super::sample::SampleSlot;

/// The sample pool and its reference counts.
pub(crate) struct Pool<M> {
    slots: NonNull<SampleSlot<M>>,
    refs: Vec<u32>,
    free: Vec<u32>,
    /// The latest `history_len` published slots, oldest first (each holds a reference).
    history: VecDeque<u32>,
    history_len: usize,
}

impl<M> Pool<M> {
    /// Books for `len` slots at `slots` (uninitialised; the pool owns them from now on).
    pub fn new(slots: NonNull<SampleSlot<M>>, len: u32, history_len: u32) -> Self {
        Pool {
            slots,
            refs: vec![0; len as usize],
            free: (0..len).rev().collect(),
            history: VecDeque::new(),
            history_len: history_len as usize,
        }
    }

    pub fn len(&self) -> u32 {
        self.refs.len() as u32
    }

    /// Slots not free (queued, held, in history, loaned).
    pub fn in_use(&self) -> usize {
        self.refs.len() - self.free.len()
    }

    /// Pointer to slot `i` (`i < len`).
    pub fn slot(&self, i: u32) -> NonNull<SampleSlot<M>> {
        assert!(i < self.len(), "sample slot {i} outside the pool");
        // SAFETY: `i` is inside the pool allocation (asserted).
        unsafe { self.slots.add(i as usize) }
    }

    /// Takes a free slot; the caller initialises it and holds one reference.
    pub fn take(&mut self) -> Option<u32> {
        let i = self.free.pop()?;
        debug_assert_eq!(self.refs[i as usize], 0);
        self.refs[i as usize] = 1;
        Some(i)
    }

    /// Gives back a slot taken but never initialised (an abandoned loan).
    pub fn untake(&mut self, i: u32) {
        debug_assert_eq!(self.refs[i as usize], 1);
        self.refs[i as usize] = 0;
        self.free.push(i);
    }

    pub fn add_ref(&mut self, i: u32) {
        self.refs[i as usize] += 1;
    }

    /// Drops one reference; the last one drops the message and frees the slot.
    pub fn release(&mut self, i: u32) {
        let refs = &mut self.refs[i as usize];
        debug_assert!(*refs > 0, "slot {i} released more often than referenced");
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            // SAFETY: the slot is in our pool, was initialised when it was published (or
            // written into a loan), and nobody references it any more.
            unsafe { std::ptr::drop_in_place((*self.slot(i).as_ptr()).value.as_mut_ptr()) };
            self.free.push(i);
        }
    }

    /// Keeps `i` (just published) as history, releasing whatever falls out.
    pub fn remember(&mut self, i: u32) {
        if self.history_len == 0 {
            return;
        }
        self.add_ref(i);
        self.history.push_back(i);
        if self.history.len() > self.history_len
            && let Some(old) = self.history.pop_front()
        {
            self.release(old);
        }
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = u32> + '_ {
        self.history.iter().copied()
    }

    /// Releases the history (the publisher is going away).
    pub fn forget_history(&mut self) {
        while let Some(i) = self.history.pop_front() {
            self.release(i);
        }
    }

    /// Whether every slot is free.
    pub fn all_free(&self) -> bool {
        self.free.len() == self.refs.len()
    }
}

/// What one subscriber holds, as the publisher accounts it.
#[derive(Debug)]
pub(crate) struct Holdings {
    bits: Vec<u64>,
    count: u32,
    /// Revoked positions the subscriber may have taken, with their slots.
    ambiguous: Vec<(u64, u32)>,
}

impl Holdings {
    pub fn new(pool_len: u32) -> Self {
        Holdings {
            bits: vec![0; (pool_len as usize).div_ceil(64)],
            count: 0,
            ambiguous: Vec::new(),
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Records that `i` was delivered.
    pub fn add(&mut self, i: u32) {
        let word = &mut self.bits[i as usize / 64];
        debug_assert!(*word & (1 << (i % 64)) == 0, "slot {i} delivered twice");
        *word |= 1 << (i % 64);
        self.count += 1;
    }

    /// Removes `i` if held; returns whether it was.
    pub fn remove(&mut self, i: u32) -> bool {
        let Some(word) = self.bits.get_mut(i as usize / 64) else { return false };
        let bit = 1 << (i % 64);
        if *word & bit == 0 {
            return false;
        }
        *word &= !bit;
        self.count -= 1;
        if !self.ambiguous.is_empty() {
            self.ambiguous.retain(|&(_, slot)| slot != i);
        }
        true
    }

    /// Remembers that revoked `position` (slot `i`, still held) may have been taken.
    pub fn add_ambiguous(&mut self, position: u64, i: u32) {
        self.ambiguous.push((position, i));
    }

    /// The subscriber declined `from..from + count`: the slots of ambiguous positions in that
    /// range come back. Returns them.
    pub fn decline(&mut self, from: u64, count: u64) -> Vec<u32> {
        let end = from.saturating_add(count);
        let mut back = Vec::new();
        self.ambiguous.retain(|&(position, slot)| {
            let declined = position >= from && position < end;
            if declined {
                back.push(slot);
            }
            !declined
        });
        for &slot in &back {
            let word = &mut self.bits[slot as usize / 64];
            *word &= !(1 << (slot % 64));
            self.count -= 1;
        }
        back
    }

    /// Every slot held (for a subscriber that is gone); empties the books.
    pub fn take_all(&mut self) -> Vec<u32> {
        let mut all = Vec::with_capacity(self.count as usize);
        for (w, word) in self.bits.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                all.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        self.count = 0;
        self.ambiguous.clear();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    #[test]
    fn references_history_and_drop() {
        let mut storage: Vec<SampleSlot<String>> = (0..3)
            .map(|_| SampleSlot { sequence: 0, _reserved: 0, value: MaybeUninit::uninit() })
            .collect();
        let mut pool = Pool::new(NonNull::new(storage.as_mut_ptr()).unwrap(), 3, 1);
        let a = pool.take().unwrap();
        // SAFETY: slot `a` is ours and uninitialised.
        unsafe { (*pool.slot(a).as_ptr()).value.write("a".into()) };
        pool.add_ref(a); // delivered to one subscriber
        pool.remember(a);
        pool.release(a); // the publisher's own reference
        assert_eq!(pool.in_use(), 1);
        pool.release(a); // the subscriber returned it; history still holds it
        assert_eq!(pool.in_use(), 1);
        let b = pool.take().unwrap();
        // SAFETY: as above.
        unsafe { (*pool.slot(b).as_ptr()).value.write("b".into()) };
        pool.remember(b); // `a` falls out of the history and is dropped
        pool.release(b);
        assert_eq!(pool.history().collect::<Vec<_>>(), [b]);
        pool.forget_history();
        assert!(pool.all_free());
    }

    #[test]
    fn holdings_believe_only_what_they_hold() {
        let mut h = Holdings::new(130);
        h.add(3);
        h.add(129);
        assert!(!h.remove(4), "never delivered");
        assert!(h.remove(3));
        assert!(!h.remove(3), "returned twice");
        h.add(7);
        h.add_ambiguous(40, 7);
        h.add_ambiguous(41, 129);
        assert_eq!(h.decline(41, 10), [129]);
        assert_eq!(h.decline(41, 10), [] as [u32; 0], "a decline counts once");
        assert!(h.remove(7), "taken after all: returned");
        assert_eq!(h.decline(40, 1), [] as [u32; 0]);
        assert_eq!(h.count(), 0);
        h.add(1);
        assert_eq!(h.take_all(), [1]);
        assert!(!h.remove(9999), "out of range is ignored");
    }
}
