//! A subscriber's connection to one publisher: the publisher's port and pool (mapped
//! read-only), our side of the pair, and how to tell the publisher we consumed something.

use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::super::layout::Layout;
use super::super::layout::PubFlags;
use super::super::port::{PeerHold, PubPort, SubPort};
use super::super::ring::{Completion, Consumer, Delivery, INLINE_WORDS, Receipt, Take};
use super::super::sample::SampleSlot;
use super::super::topic::{PUBLISHER, TopicSegment, read_heap_ref};
use crate::barrier;
use crate::error::{Error, Result};
use crate::ptr::RelPtr;
use crate::wait::{WaitBackend, WaitWord};

/// One publisher we read from.
///
/// The views into the publisher's heap (`delivery`, `flags`, `wake`, `pool`) are valid while
/// `port` lives (it holds that heap, see `port.rs`); whoever copies one out keeps a clone of
/// the hold with it ([`Conn::hold`]).
pub(crate) struct Conn<B: WaitBackend> {
    /// This connection among all of this process's (never reused): what our samples remember,
    /// so that a sample is returned to, and keeps mapped, the very connection it came from.
    pub serial: u64,
    /// Samples of it that are out (not yet returned).
    pub outstanding: u32,
    /// Its port (keeps its heap mapped while we read it).
    port: PubPort,
    /// Its slot in the topic.
    p: u32,
    /// Its generation in the topic.
    pub generation: u32,
    /// Its process token, as its slot recorded it when we connected (see `crate::membership`).
    pub token: u64,
    /// Its key (what we acknowledge and what our samples remember).
    pub key: u64,
    /// Its ring towards us (its memory, read-only here).
    delivery: Delivery<'static>,
    /// Our side of the pair (our memory).
    receipt: Receipt<'static>,
    /// Its flags (closing, waiting for room).
    flags: &'static PubFlags,
    /// What we sleep on for it (broadcasting backends).
    pub wake: &'static WaitWord,
    pool: NonNull<u8>,
    pool_len: u32,
    consumer: Consumer,
    /// Its process's heap, whose bell we ring when it is closing.
    heap: (String, u64),
    /// Under `Overflow::Block`: wakes the publisher when it waits for room.
    space_waker: Option<B::Waker>,
    /// The publisher died or finished: read what it left, then forget it.
    pub gone: bool,
    /// It wrote something impossible (reported once); we read nothing more from it.
    pub broken: bool,
}

// SAFETY: `pool` and the views point into the publisher's heap, which `port` keeps mapped while
// the connection lives; the rest is owned data.
unsafe impl<B: WaitBackend> Send for Conn<B> {}

impl<B: WaitBackend> Conn<B> {
    /// Maps publisher slot `p`'s port and pool and resets our side of the pair for it.
    pub fn connect<M>(
        topic: &TopicSegment,
        ours: &SubPort,
        me: u32,
        p: u32,
        generation: u32,
        block: bool,
    ) -> Result<Self> {
        let layout: Layout = ours.layout;
        let entry = topic.publisher(p);
        let (domain, heap) = read_heap_ref(&entry.heap).ok_or_else(|| Error::Corrupted {
            what: format!("topic `{}`: publisher {p} names no valid heap", topic.name),
        })?;
        let port_at = entry.port.load(Ordering::Acquire);
        let pool_at = entry.pool.load(Ordering::Acquire);
        let token = entry.member.token();
        let port = PubPort::map(&domain, heap, port_at, layout, p, generation)?;
        let key = port.header().key.load(Ordering::Acquire);
        // The publisher's own pool size (validated by `map`): its history may differ from ours.
        let pool_len = port.layout.pool_len;
        let bytes = pool_len as usize * size_of::<SampleSlot<M>>();
        // In the heap `port` holds: valid while this connection lives, and for its samples
        // while their hold is parked (`subscriber::State::parked`).
        let pool = RelPtr::new(heap, pool_at).resolve(bytes, align_of::<SampleSlot<M>>())?;
        let line = ours.input(p);
        line.pub_key.store(0, Ordering::Release);
        let consumer = Consumer::new(
            &ours.receipt(p),
            key,
            layout.ring_len,
            layout.stride,
            layout.options.subscriber_capacity as u64,
            layout.options.overflow == super::super::options::Overflow::DropOldest,
            pool_len,
        );
        line.pub_key.store(key, Ordering::Release);
        let space_waker = if block {
            let channel = topic.channel(PUBLISHER, p, generation, ".space");
            B::waker(&channel, &entry.space).ok()
        } else {
            None
        };
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        Ok(Conn {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            outstanding: 0,
            p,
            generation,
            token,
            key,
            delivery: port.delivery(me),
            receipt: ours.receipt(p),
            flags: port.flags(),
            wake: port.wake(),
            pool,
            pool_len,
            consumer,
            heap: (domain, heap),
            port,
            space_waker,
            gone: false,
            broken: false,
        })
    }

    /// The hold on its heap (`None` if it is ours): keeps `wake` and the samples' memory valid
    /// after the connection is gone.
    pub fn hold(&self) -> Option<Arc<PeerHold>> {
        self.port.hold()
    }

    /// The name of its heap if another process truncated it under our mapping (its ring and
    /// samples then read zeros here: nothing more comes from it). Reads its wake word first, so
    /// that a truncation the kernel reported to a wait as `EFAULT` is noticed too.
    pub fn truncated_heap(&self) -> Option<crate::segment::SegmentName> {
        // A fault here is what the truncation guard turns into zeros (and notes).
        let _ = self.wake.seq().load(Ordering::Relaxed);
        crate::ptr::table().truncated(self.heap.1)
    }

    #[cfg(test)]
    pub fn debug(&self) -> String {
        format!(
            "gen {} key {:x} broken {} gone {} consumer {:?} sub_key {:x} tail {} entries {:?}",
            self.generation,
            self.key,
            self.broken,
            self.gone,
            self.consumer,
            self.delivery.sub_key.load(Ordering::Relaxed),
            self.delivery.tail.load(Ordering::Relaxed),
            self.delivery
                .entries
                .iter()
                .step_by(8)
                .map(|e| e.load(Ordering::Relaxed) >> 24)
                .collect::<Vec<_>>()
        )
    }

    /// Whether something waits at the head of the ring (one load).
    pub fn ready(&self, our_key: u64) -> bool {
        !self.broken && self.consumer.ready(&self.delivery, our_key)
    }

    /// Takes the next message, if any.
    #[inline]
    pub fn take(&mut self, our_key: u64) -> Take {
        self.consumer.take(&self.delivery, &self.receipt, our_key)
    }

    /// Takes the next inline message into `out` (sequence, then payload words).
    #[inline]
    pub fn take_inline(&mut self, our_key: u64, out: &mut [u64; INLINE_WORDS + 1]) -> Take {
        self.consumer.take_inline(&self.delivery, &self.receipt, our_key, out)
    }

    /// After a message was taken under `Overflow::Block`: wakes the publisher if it waits for
    /// room (after our head store: a light barrier first).
    pub fn wake_publisher(&self, topic: &TopicSegment) {
        let p = self.p;
        let Some(waker) = &self.space_waker else { return };
        let flags = self.flags;
        barrier::light(&flags.may_block);
        if flags.space.waiters() != 0
            && let Err(err) = crate::wait::wake_word::<B>(waker, &topic.publisher(p).space)
        {
            tracing::debug!(topic = %topic.name, publisher = p, %err, "waking a blocked publisher failed");
        }
    }

    /// The sample in pool slot `slot` (checked against the pool by the ring).
    pub fn sample<M>(&self, slot: u32) -> NonNull<SampleSlot<M>> {
        assert!(slot < self.pool_len, "slot {slot} outside the publisher's pool");
        // SAFETY: `slot < pool_len`, and the pool was resolved for `pool_len` slots.
        unsafe { self.pool.cast::<SampleSlot<M>>().add(slot as usize) }
    }

    /// Returns a finished sample (rings the publisher's bell if it is closing).
    #[inline]
    pub fn give_back(&mut self, slot: u32) {
        self.consumer.give_back(&self.delivery, &self.receipt, Completion::Return(slot));
        if self.flags.closing.load(Ordering::Acquire) != 0 {
            super::super::service::ring(&self.heap.0, self.heap.1);
        }
    }

    /// Test seam: writes raw values into our completion ring (and, if `wreck_tail`, an
    /// impossible tail), as a buggy or hostile subscriber would.
    #[cfg(any(test, feature = "test-seams"))]
    pub fn scribble(&mut self, values: &[u64], wreck_tail: bool) {
        self.consumer.give_back_raw(&self.delivery, &self.receipt, values);
        if wreck_tail {
            self.receipt.completion_tail.store(u64::MAX / 3, Ordering::Release);
        }
    }

    /// Pushes completions that did not fit before.
    pub fn flush(&mut self) {
        self.consumer.flush(&self.delivery, &self.receipt);
    }

    /// Whether the publisher finished (it clears its port's key when it gives up its slot, see
    /// `Publisher`'s `try_finish`): its own word that it is gone, while its process lives on.
    pub fn finished(&self) -> bool {
        self.port.header().key.load(Ordering::Acquire) != self.key
    }

    /// Whether the publisher was dropped and waits for its subscribers to finish reading.
    #[inline]
    pub fn closing(&self) -> bool {
        self.flags.closing.load(Ordering::Relaxed) != 0
    }

    /// Rings the bell of the publisher's process (we joined or left).
    pub fn ring(&self) {
        super::super::service::ring(&self.heap.0, self.heap.1);
    }
}
