//! A publisher's connection to one subscriber: the subscriber's port (mapped read-only), the
//! ring towards it, what it holds, and how to wake it.
//!
//! Everything read from the subscriber's port is checked before it is believed (see
//! `ring.rs`); a subscriber that writes nonsense is reported once and disconnected, which costs
//! it its own messages and nobody else anything.

use std::sync::atomic::Ordering;

use super::super::layout::Layout;
use super::super::layout::{InLine, SubSleep};
use super::super::options::Overflow;
use super::super::port::{PubPort, SubPort};
use super::super::ring::{Completion, Corrupt, Delivery, INLINE_WORDS, Producer, Receipt, Revoked};
use super::super::topic::{SUBSCRIBER, TopicSegment, read_heap_ref};
use super::books::{Holdings, Pool};
use crate::barrier;
use crate::error::{Error, Result};
use crate::wait::WaitBackend;

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    Yes,
    /// The subscriber holds its whole allowance and returns nothing: it misses this one.
    Skipped,
    /// `Overflow::Block` and its queue is full.
    Full,
}

/// A blocked publisher's view of one subscriber's progress, readable without the lock. Its port
/// keeps the subscriber's heap mapped (so `input` valid) even if the subscriber is disconnected
/// meanwhile.
#[derive(Debug, Clone)]
pub(crate) struct RoomProbe {
    port: SubPort,
    sub_key: u64,
    input: &'static InLine,
    key: u64,
    /// The subscriber's head at which there is room again.
    needed: u64,
}

impl RoomProbe {
    /// Whether there is room, or the subscriber left (either way the publisher goes on).
    pub fn ready(&self) -> bool {
        self.port.left(self.sub_key)
            || (self.input.pub_key.load(Ordering::Acquire) == self.key
                && self.input.head.load(Ordering::Acquire) >= self.needed)
    }
}

/// One connected subscriber. The views into its heap (`receipt`, `input`, `sleep`) are valid
/// while `port` lives (it holds that heap, see `port.rs`).
pub(crate) struct Conn<B: WaitBackend> {
    /// Its slot in the topic.
    pub slot: u32,
    /// Its generation (its port says the same).
    pub generation: u32,
    pub pid: u32,
    /// Its process token, as its slot recorded it when we connected (see `crate::membership`).
    pub token: u64,
    port: SubPort,
    /// Our ring towards it (our memory).
    delivery: Delivery<'static>,
    /// Its side of the pair (its memory, read-only here).
    receipt: Receipt<'static>,
    input: &'static InLine,
    sleep: &'static SubSleep,
    /// Our key, which it writes back to acknowledge.
    our_key: u64,
    /// Its key (in its port header, and in the ring's control line).
    pub sub_key: u64,
    producer: Producer,
    pub holdings: Holdings,
    /// It has acknowledged this connection (its side of the pair is reset for us).
    acked: bool,
    /// With a backend that does not broadcast: its own wake channel.
    waker: Option<B::Waker>,
    /// It wrote garbage (reported once); it gets nothing more and is disconnected.
    pub dead: bool,
}

impl<B: WaitBackend> std::fmt::Debug for Conn<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("slot", &self.slot)
            .field("generation", &self.generation)
            .finish()
    }
}

impl<B: WaitBackend> Conn<B> {
    /// Connects subscriber slot `s` (generation `generation`): maps its port, resets our ring
    /// towards it and announces the ring. Then the caller delivers history.
    pub fn connect(
        topic: &TopicSegment,
        ours: &PubPort,
        p: u32,
        s: u32,
        generation: u32,
    ) -> Result<Self> {
        let layout = ours.layout;
        let entry = topic.subscriber(s);
        let (domain, heap) = read_heap_ref(&entry.heap).ok_or_else(|| Error::Corrupted {
            what: format!("topic `{}`: subscriber {s} names no valid heap", topic.name),
        })?;
        let offset = entry.port.load(Ordering::Acquire);
        let token = entry.member.token();
        let port = SubPort::map(&domain, heap, offset, layout, s, generation)?;
        let header = port.header();
        let pid = header.pid;
        let peer_light = header.light == 1;
        let key = header.key.load(Ordering::Acquire);
        let delivery = ours.delivery(s);
        delivery.sub_key.store(0, Ordering::Release);
        let producer = Producer::new(
            &delivery,
            layout.options.subscriber_capacity as u64,
            layout.stride,
            peer_light,
        );
        let waker = if B::BROADCAST {
            None
        } else {
            let channel = topic.channel(SUBSCRIBER, s, generation, "");
            Some(B::waker(&channel, &entry.word)?)
        };
        // Our samples live in our heap: it must stay readable for this subscriber even if we
        // exit before it has read them (on Windows an object dies with its last handle).
        crate::heap::keep_alive_for(pid);
        delivery.sub_key.store(key, Ordering::Release);
        Ok(Conn {
            slot: s,
            generation,
            pid,
            token,
            receipt: port.receipt(p),
            input: port.input(p),
            sleep: port.sleep(),
            port,
            delivery,
            our_key: ours.header().key.load(Ordering::Relaxed),
            sub_key: key,
            producer,
            holdings: Holdings::new(layout.pool_len),
            acked: false,
            waker,
            dead: false,
        })
    }

    /// Whether the subscriber said it left (in its own memory).
    pub fn left(&self) -> bool {
        self.port.left(self.sub_key)
    }

    /// Whether it has acknowledged this pair (its head is about us).
    pub fn is_acked(&mut self) -> bool {
        self.acked()
    }

    #[inline]
    fn acked(&mut self) -> bool {
        if !self.acked {
            self.acked = self.input.pub_key.load(Ordering::Acquire) == self.our_key;
        }
        self.acked
    }

    fn fail(&mut self, topic: &TopicSegment, what: &str, corrupt: Corrupt) {
        if !self.dead {
            tracing::error!(
                topic = %topic.name,
                subscriber = self.slot,
                pid = self.pid,
                "garbage in subscriber's {what}: {}; disconnecting it",
                corrupt.0
            );
        }
        self.dead = true;
    }

    /// Takes back what the subscriber returned or declined.
    pub fn drain<M>(&mut self, topic: &TopicSegment, pool: &mut Pool<M>) {
        if self.dead || !self.acked() {
            return;
        }
        let mut garbage = 0u32;
        let holdings = &mut self.holdings;
        let drained =
            self.producer.drain(&self.delivery, &self.receipt, |completion| match completion {
                Completion::Return(slot) => {
                    if holdings.remove(slot) {
                        pool.release(slot);
                    } else {
                        garbage += 1;
                    }
                }
                Completion::Decline { from, count } => {
                    for slot in holdings.decline(from, count) {
                        pool.release(slot);
                    }
                }
            });
        if garbage > 0 {
            tracing::error!(
                topic = %topic.name,
                subscriber = self.slot,
                pid = self.pid,
                count = garbage,
                "garbage in subscriber's completion queue: it does not hold these samples; ignored"
            );
        }
        if let Err(corrupt) = drained {
            self.fail(topic, "completion queue", corrupt);
        }
    }

    /// Puts slot `i` into the subscriber's ring, applying the overflow policy.
    #[inline]
    pub fn deliver<M>(
        &mut self,
        topic: &TopicSegment,
        layout: &Layout,
        pool: &mut Pool<M>,
        i: u32,
    ) -> Delivered {
        if self.dead {
            return Delivered::Skipped;
        }
        if self.holdings.count() >= layout.allowance {
            // Returns are taken back in batches after publishing (`needs_drain`); count them
            // before judging a subscriber that seems to hold its whole allowance.
            self.drain(topic, pool);
            if self.dead || self.holdings.count() >= layout.allowance {
                return Delivered::Skipped;
            }
        }
        let acked = self.acked();
        let options = layout.options;
        let limit = match options.overflow {
            Overflow::Block => options.subscriber_capacity as u64,
            Overflow::DropOldest => layout.ring_len as u64,
        };
        let room = match self.producer.has_room(&self.receipt, &self.delivery, limit, acked) {
            Ok(room) => room,
            Err(corrupt) => {
                self.fail(topic, "head", corrupt);
                return Delivered::Skipped;
            }
        };
        if !room {
            if options.overflow == Overflow::Block {
                return Delivered::Full;
            }
            let holdings = &mut self.holdings;
            let revoked =
                self.producer.revoke(&self.delivery, &self.receipt, acked, |r: Revoked| {
                    if r.ambiguous {
                        holdings.add_ambiguous(r.position, r.slot);
                    } else if holdings.remove(r.slot) {
                        pool.release(r.slot);
                    }
                });
            if let Err(corrupt) = revoked {
                self.fail(topic, "head", corrupt);
                return Delivered::Skipped;
            }
        }
        self.producer.write(&self.delivery, i);
        self.holdings.add(i);
        pool.add_ref(i);
        Delivered::Yes
    }

    /// Copies an inline message (sequence and payload words) into the subscriber's ring:
    /// nothing to account, nothing to take back.
    #[inline]
    pub fn deliver_inline(
        &mut self,
        topic: &TopicSegment,
        layout: &Layout,
        sequence: u64,
        payload: &[u64; INLINE_WORDS],
    ) -> Delivered {
        if self.dead {
            return Delivered::Skipped;
        }
        if layout.options.overflow == Overflow::Block {
            let acked = self.acked();
            let limit = layout.options.subscriber_capacity as u64;
            match self.producer.has_room(&self.receipt, &self.delivery, limit, acked) {
                Ok(true) => {}
                Ok(false) => return Delivered::Full,
                Err(corrupt) => {
                    self.fail(topic, "head", corrupt);
                    return Delivered::Skipped;
                }
            }
        }
        // Drop-oldest: overwrite whatever is there; a subscriber that fell behind notices.
        self.producer.write_inline(&self.delivery, sequence, payload);
        Delivered::Yes
    }

    /// Whether it is time to take back what the subscriber returned: once a queue's worth is
    /// accounted to it, so that finished messages (and the heap memory they hold) do not pile
    /// up. Done after publishing, off the subscribers' critical path.
    #[inline]
    pub fn needs_drain(&self, layout: &Layout) -> bool {
        self.holdings.count() >= layout.options.subscriber_capacity
    }

    /// Whether there is room again (for a blocked publisher), re-reading the subscriber's head.
    pub fn has_room(&mut self, layout: &Layout) -> bool {
        let acked = self.acked();
        let limit = layout.options.subscriber_capacity as u64;
        self.producer.has_room(&self.receipt, &self.delivery, limit, acked).unwrap_or(true)
    }

    /// What a publisher blocked on this subscriber can poll with its lock released.
    pub fn room_probe(&self, layout: &Layout) -> RoomProbe {
        let limit = layout.options.subscriber_capacity as u64;
        RoomProbe {
            port: self.port.clone(),
            sub_key: self.sub_key,
            input: self.input,
            key: self.our_key,
            needed: (self.producer.tail + 1).saturating_sub(limit),
        }
    }

    /// Whether the subscriber holds nothing and has nothing queued: a closing publisher may
    /// let it go.
    pub fn done_with(&mut self) -> bool {
        if self.dead || self.left() {
            return true;
        }
        let acked = self.acked();
        self.holdings.count() == 0 && self.producer.consumed(&self.receipt, acked).unwrap_or(true)
    }

    /// Whether a thread of the subscriber sleeps (after our ring store: a light barrier first).
    #[inline]
    pub fn sleeping(&self) -> bool {
        barrier::light(&self.sleep.may_sleep);
        self.sleep.word.waiters() != 0
    }

    /// Wakes the subscriber on its own channel (backends that do not broadcast).
    pub fn wake(&self, topic: &TopicSegment) {
        if let Some(waker) = &self.waker {
            let word = &topic.subscriber(self.slot).word;
            if let Err(err) = crate::wait::wake_word::<B>(waker, word) {
                tracing::warn!(topic = %topic.name, subscriber = self.slot, %err, "wake-up failed");
            }
        }
    }

    /// Forgets the subscriber: everything it held comes back, and its ring is withdrawn.
    pub fn disconnect<M>(mut self, pool: &mut Pool<M>) {
        self.delivery.sub_key.store(0, Ordering::Release);
        for slot in self.holdings.take_all() {
            pool.release(slot);
        }
    }
}
