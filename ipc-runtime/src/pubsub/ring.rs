//! The two queues of a publisher–subscriber pair, carrying sample slot indices.
//!
//! * **Delivery** (publisher → subscriber): the publisher appends at the tail; the oldest entry
//!   is taken by compare-and-swap on the head — by the subscriber when it receives, or by the
//!   publisher when it drops the oldest sample of a full queue ([`Overflow::DropOldest`]).
//!   Whoever wins the CAS owns the entry. An entry is never overwritten before the head has
//!   moved past it, so a reader that loses the CAS never acts on a stale value.
//! * **Completion** (subscriber → publisher): single producer, single consumer; the subscriber
//!   returns the indices of samples it has finished with.
//!
//! Each side keeps its own copy of the index it alone writes, and treats the other side's index
//! as untrusted input: a distance that does not fit the ring is reported as corruption instead
//! of being followed.
//!
//! [`Overflow::DropOldest`]: super::Overflow::DropOldest

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Another process left the queue's indices in an impossible state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt {
    pub head: u64,
    pub tail: u64,
}

/// A view of one delivery queue.
pub(crate) struct Delivery<'a> {
    pub head: &'a AtomicU64,
    pub tail: &'a AtomicU64,
    pub entries: &'a [AtomicU32],
    /// Logical capacity (≤ entries.len(), which is a power of two).
    pub capacity: u64,
}

impl Delivery<'_> {
    fn slot(&self, index: u64) -> &AtomicU32 {
        &self.entries[(index as usize) & (self.entries.len() - 1)]
    }

    /// Publisher: appends `value` after `tail` (the publisher's own copy). Returns `Ok(false)`
    /// if the queue is full.
    pub fn push(&self, tail: &mut u64, value: u32) -> Result<bool, Corrupt> {
        let head = self.head.load(Ordering::Acquire);
        let used = tail.wrapping_sub(head);
        if used > self.capacity {
            return Err(Corrupt { head, tail: *tail });
        }
        if used == self.capacity {
            return Ok(false);
        }
        self.slot(*tail).store(value, Ordering::Relaxed);
        *tail += 1;
        self.tail.store(*tail, Ordering::Release);
        Ok(true)
    }

    /// Either side: takes the oldest entry. `tail` is the publisher's own copy when the
    /// publisher calls, or `None` to read it from shared memory (the subscriber).
    pub fn pop(&self, own_tail: Option<u64>) -> Result<Option<u32>, Corrupt> {
        loop {
            let head = self.head.load(Ordering::Acquire);
            let tail = own_tail.unwrap_or_else(|| self.tail.load(Ordering::Acquire));
            let used = tail.wrapping_sub(head);
            if used == 0 {
                return Ok(None);
            }
            if used > self.capacity {
                // The head we read may simply be stale (others popped, the publisher pushed
                // more, before we read the tail). Only a distance that persists is corruption.
                if self.head.load(Ordering::Acquire) != head {
                    continue;
                }
                return Err(Corrupt { head, tail });
            }
            let value = self.slot(head).load(Ordering::Relaxed);
            if self
                .head
                .compare_exchange(head, head + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Some(value));
            }
        }
    }

    /// Whether an entry is waiting (the subscriber's cheap check).
    pub fn has_data(&self) -> bool {
        self.tail.load(Ordering::Acquire) != self.head.load(Ordering::Acquire)
    }

    /// Entries queued, as far as `tail` (publisher's copy) is concerned.
    pub fn len(&self, tail: u64) -> u64 {
        tail.wrapping_sub(self.head.load(Ordering::Acquire)).min(self.capacity)
    }
}

/// A view of one completion queue.
pub(crate) struct Completion<'a> {
    pub head: &'a AtomicU64,
    pub tail: &'a AtomicU64,
    pub entries: &'a [AtomicU32],
}

impl Completion<'_> {
    fn slot(&self, index: u64) -> &AtomicU32 {
        &self.entries[(index as usize) & (self.entries.len() - 1)]
    }

    /// Subscriber: returns `value` to the publisher. `Ok(false)` if the ring is full (which a
    /// well-behaved publisher never lets happen).
    pub fn push(&self, tail: &mut u64, value: u32) -> Result<bool, Corrupt> {
        let head = self.head.load(Ordering::Acquire);
        let used = tail.wrapping_sub(head);
        if used > self.entries.len() as u64 {
            return Err(Corrupt { head, tail: *tail });
        }
        if used == self.entries.len() as u64 {
            return Ok(false);
        }
        self.slot(*tail).store(value, Ordering::Relaxed);
        *tail += 1;
        self.tail.store(*tail, Ordering::Release);
        Ok(true)
    }

    /// Publisher: takes every returned index, oldest first, advancing `head` (its own copy).
    pub fn drain(&self, head: &mut u64, mut each: impl FnMut(u32)) -> Result<(), Corrupt> {
        let tail = self.tail.load(Ordering::Acquire);
        let used = tail.wrapping_sub(*head);
        if used > self.entries.len() as u64 {
            return Err(Corrupt { head: *head, tail });
        }
        while *head != tail {
            each(self.slot(*head).load(Ordering::Relaxed));
            *head += 1;
        }
        self.head.store(*head, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(len: usize) -> (AtomicU64, AtomicU64, Vec<AtomicU32>) {
        (AtomicU64::new(0), AtomicU64::new(0), (0..len).map(|_| AtomicU32::new(0)).collect())
    }

    #[test]
    fn delivery_fifo_full_and_drop_oldest() {
        let (head, tail, entries) = ring(4);
        let q = Delivery { head: &head, tail: &tail, entries: &entries, capacity: 3 };
        let mut t = 0;
        assert!(q.push(&mut t, 1).unwrap());
        assert!(q.push(&mut t, 2).unwrap());
        assert!(q.push(&mut t, 3).unwrap());
        assert!(!q.push(&mut t, 4).unwrap(), "logical capacity 3");
        assert_eq!(q.pop(Some(t)).unwrap(), Some(1), "publisher drops the oldest");
        assert!(q.push(&mut t, 4).unwrap());
        assert_eq!(q.pop(None).unwrap(), Some(2));
        assert_eq!(q.pop(None).unwrap(), Some(3));
        assert_eq!(q.pop(None).unwrap(), Some(4));
        assert_eq!(q.pop(None).unwrap(), None);
        assert!(!q.has_data());
    }

    #[test]
    fn garbage_indices_are_corruption_not_reads() {
        let (head, tail, entries) = ring(4);
        let q = Delivery { head: &head, tail: &tail, entries: &entries, capacity: 4 };
        tail.store(1 << 40, Ordering::Relaxed);
        assert!(q.pop(None).is_err());
        let mut t = 0;
        head.store(7, Ordering::Relaxed);
        assert!(q.push(&mut t, 1).is_err());

        let (head, tail, entries) = ring(4);
        let c = Completion { head: &head, tail: &tail, entries: &entries };
        tail.store(99, Ordering::Relaxed);
        let mut h = 0;
        assert!(c.drain(&mut h, |_| panic!("must not read")).is_err());
    }

    #[test]
    fn concurrent_pop_and_drop_oldest_never_duplicate() {
        let (head, tail, entries) = ring(8);
        let q = Delivery { head: &head, tail: &tail, entries: &entries, capacity: 8 };
        let n = if cfg!(miri) { 200 } else { 100_000 };
        let taken_by_subscriber = std::thread::scope(|s| {
            let q = &q;
            let consumer = s.spawn(move || {
                let mut got = Vec::new();
                loop {
                    match q.pop(None).unwrap() {
                        Some(u32::MAX) => return got,
                        Some(v) => got.push(v),
                        None => std::hint::spin_loop(),
                    }
                }
            });
            let mut t = 0;
            let mut dropped = Vec::new();
            for v in 0..n {
                while !q.push(&mut t, v).unwrap() {
                    if let Some(old) = q.pop(Some(t)).unwrap() {
                        dropped.push(old);
                    }
                }
            }
            while !q.push(&mut t, u32::MAX).unwrap() {
                if let Some(old) = q.pop(Some(t)).unwrap() {
                    dropped.push(old);
                }
            }
            let mut got = consumer.join().unwrap();
            got.extend(dropped);
            got
        });
        let mut all = taken_by_subscriber;
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "every entry taken exactly once");
    }
}
