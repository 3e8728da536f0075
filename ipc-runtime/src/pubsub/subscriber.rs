//! [`Subscriber`]: takes slot indices from its queues and reads the messages in place.
//!
//! A subscriber has one delivery queue per publisher of its topic, filled by that publisher; it
//! maps each publisher's heap read-only when it first sees the publisher (so samples stay
//! readable even if the publisher dies), and returns finished samples through a completion queue
//! per publisher. It sleeps on a word in shared memory through the waiting seam
//! ([`WaitBackend`]), so a blocking receive costs no CPU.

use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::layout::{ACTIVE, CLOSING, FREE};
use super::options::OptionRequest;
use super::publisher::{DEFAULT_INTERVAL, topic_options};
use super::sample::{Sample, SampleSlot};
use super::topic::{Role, Topic};
use crate::domain;
use crate::error::{Error, Result};
use crate::liveness::Token;
use crate::message::ShmMessage;
use crate::ptr::{self, RelPtr};
use crate::wait::{self, DefaultBackend, WaitBackend};

/// Receives messages of type `M` from a topic.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-sub-{}", std::process::id())).unwrap();
/// let subscriber = Subscriber::<u64>::new("ticks")?;
/// let publisher = Publisher::<u64>::new("ticks")?;
/// publisher.publish(1)?;
/// let sample = subscriber.receive_timeout(Duration::from_secs(1))?.expect("delivered");
/// assert_eq!((*sample, sample.sequence()), (1, 1));
/// assert!(subscriber.receive_timeout(Duration::from_millis(10))?.is_none());
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct Subscriber<M: ShmMessage, B: WaitBackend = DefaultBackend> {
    topic: Topic,
    index: u32,
    generation: u32,
    token: Option<Token>,
    waiter: B::Waiter,
    state: Mutex<State<B>>,
    /// One thread at a time sleeps on `waiter` (the backend contract); others queue here.
    sleeper: Mutex<()>,
    /// Whether the topic's overflow policy is `Block` (publishers may wait for us to pop).
    block: bool,
    spin: u32,
    interval: Duration,
    fail_without_publishers: bool,
    _message: PhantomData<fn() -> M>,
}

// SAFETY: pool addresses point into heaps mapped for the life of the process; shared state is
// atomics or behind `state`'s lock. Samples hand out `&M` to other threads, hence `M: Sync`.
unsafe impl<M: ShmMessage + Sync, B: WaitBackend> Send for Subscriber<M, B> {}
// SAFETY: as above.
unsafe impl<M: ShmMessage + Sync, B: WaitBackend> Sync for Subscriber<M, B> {}

/// Options for a [`Subscriber`]; topic-wide options are fixed by the topic's first participant.
pub struct SubscriberBuilder<M, B = DefaultBackend> {
    topic: String,
    domain: Option<String>,
    request: OptionRequest,
    spin: u32,
    interval: Duration,
    fail_without_publishers: bool,
    _types: PhantomData<fn() -> (M, B)>,
}

impl<M, B> fmt::Debug for SubscriberBuilder<M, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriberBuilder")
            .field("topic", &self.topic)
            .field("domain", &self.domain)
            .field("request", &self.request)
            .field("spin", &self.spin)
            .finish()
    }
}

topic_options!(SubscriberBuilder);

impl<M: ShmMessage, B: WaitBackend> SubscriberBuilder<M, B> {
    /// Polls this many times before going to sleep in a blocking receive (default 0). A few
    /// thousand trade CPU for wake-up latency.
    pub fn spin(mut self, polls: u32) -> Self {
        self.spin = polls;
        self
    }

    /// Makes blocking receives fail with [`Error::NoPublisher`] once every publisher this
    /// subscriber has seen is dead or gone and its queues are empty (default: keep waiting for
    /// a new publisher). Dead publishers are noticed within `interval`.
    pub fn fail_without_publishers(mut self, interval: Duration) -> Self {
        self.fail_without_publishers = true;
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Uses waiting backend `B2` (every participant of a topic must use the same one).
    pub fn backend<B2: WaitBackend>(self) -> SubscriberBuilder<M, B2> {
        SubscriberBuilder {
            topic: self.topic,
            domain: self.domain,
            request: self.request,
            spin: self.spin,
            interval: self.interval,
            fail_without_publishers: self.fail_without_publishers,
            _types: PhantomData,
        }
    }

    /// Joins (or creates) the topic and starts receiving.
    pub fn create(self) -> Result<Subscriber<M, B>> {
        let domain = self.domain.unwrap_or_else(|| domain::current().to_owned());
        let (topic, lock) = Topic::join::<M, B>(&domain, &self.topic, &self.request)?;
        let (index, generation, token) = topic.claim(Role::Subscriber)?;
        let slot = topic.subscriber(index);
        let channel = topic.channel(Role::Subscriber, index, generation, "");
        let waiter = match B::waiter(&channel, &slot.word) {
            Ok(waiter) => waiter,
            Err(err) => {
                slot.state.store(FREE, Ordering::Release);
                return Err(err);
            }
        };
        slot.pid.store(std::process::id(), Ordering::Relaxed);
        slot.received.0.store(0, Ordering::Relaxed);
        slot.state.store(ACTIVE, Ordering::Release);
        drop(lock);
        topic.bump_epoch();
        let max_publishers = topic.layout.options.max_publishers;
        let block = topic.layout.options.overflow == super::options::Overflow::Block;
        let subscriber = Subscriber {
            topic,
            index,
            generation,
            token: Some(token),
            waiter,
            state: Mutex::new(State {
                epoch: u64::MAX,
                pubs: (0..max_publishers).map(|_| Conn::idle()).collect(),
                next: 0,
                borrowed: 0,
                seen_publisher: false,
            }),
            sleeper: Mutex::new(()),
            block,
            spin: self.spin,
            interval: self.interval,
            fail_without_publishers: self.fail_without_publishers,
            _message: PhantomData,
        };
        subscriber.wake_publishers();
        Ok(subscriber)
    }
}

struct Conn<B: WaitBackend> {
    /// Generation of the publisher this connection reads; 0 = none.
    generation: u32,
    pool: NonNull<u8>,
    pool_len: u32,
    /// Whether the publisher has initialised our pair for this connection.
    ready: bool,
    completion_tail: u64,
    space_waker: Option<B::Waker>,
}

impl<B: WaitBackend> Conn<B> {
    fn idle() -> Self {
        Conn {
            generation: 0,
            pool: NonNull::dangling(),
            pool_len: 0,
            ready: false,
            completion_tail: 0,
            space_waker: None,
        }
    }
}

struct State<B: WaitBackend> {
    epoch: u64,
    pubs: Vec<Conn<B>>,
    next: usize,
    borrowed: u32,
    seen_publisher: bool,
}

impl<M: ShmMessage> Subscriber<M> {
    /// A subscriber on `topic` with default options (see [`Subscriber::builder`]).
    pub fn new(topic: &str) -> Result<Self> {
        Self::builder(topic).create()
    }

    /// A builder for a subscriber on `topic`.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-subb-{}", std::process::id())).unwrap();
    /// let subscriber = Subscriber::<f64>::builder("temperature")
    ///     .subscriber_capacity(128)
    ///     .spin(1000)
    ///     .create()?;
    /// assert!(subscriber.try_receive()?.is_none());
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn builder(topic: &str) -> SubscriberBuilder<M> {
        SubscriberBuilder {
            topic: topic.to_owned(),
            domain: None,
            request: OptionRequest::default(),
            spin: 0,
            interval: DEFAULT_INTERVAL,
            fail_without_publishers: false,
            _types: PhantomData,
        }
    }
}

impl<M: ShmMessage, B: WaitBackend> Subscriber<M, B> {
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_publishers(&self) {
        for p in 0..self.topic.layout.options.max_publishers {
            let slot = self.topic.publisher(p);
            if slot.state.load(Ordering::Acquire) != ACTIVE {
                continue;
            }
            let generation = slot.generation.load(Ordering::Acquire);
            let channel = self.topic.channel(Role::Publisher, p, generation, ".service");
            match B::waker(&channel, &slot.service) {
                Ok(waker) => {
                    let _ = wait::notify::<B>(&waker, &slot.service);
                }
                Err(err) => {
                    tracing::debug!(topic = %self.topic.name, publisher = p, %err, "cannot wake publisher")
                }
            }
        }
    }

    /// Re-reads the publisher slots if someone arrived or left.
    fn refresh(&self, st: &mut State<B>) {
        let epoch = self.topic.epoch();
        if epoch == st.epoch {
            return;
        }
        let mut complete = true;
        for p in 0..self.topic.layout.options.max_publishers {
            let slot = self.topic.publisher(p);
            let state = slot.state.load(Ordering::Acquire);
            let generation = slot.generation.load(Ordering::Acquire);
            let conn = &mut st.pubs[p as usize];
            if (state == ACTIVE || state == CLOSING) && conn.generation != generation {
                match self.connect(p, generation) {
                    Ok(new) => {
                        *conn = new;
                        st.seen_publisher = true;
                    }
                    Err(err) => {
                        tracing::warn!(topic = %self.topic.name, publisher = p, %err, "cannot read publisher's samples");
                        *conn = Conn::idle();
                        complete = false;
                    }
                }
            } else if conn.generation != 0 && conn.generation != generation {
                // The slot went to a new publisher (which resets our pair). Until then, what a
                // departed or dead publisher left in our queue stays readable: its heap is
                // mapped here and nobody frees those samples any more.
                *conn = Conn::idle();
            }
        }
        if complete {
            st.epoch = epoch;
        }
    }

    /// Maps publisher `p`'s pool (read-only, bounds-checked).
    fn connect(&self, p: u32, generation: u32) -> Result<Conn<B>> {
        let slot = self.topic.publisher(p);
        let pool_len = slot.pool_len.load(Ordering::Relaxed);
        let heap_id = slot.heap_id.load(Ordering::Relaxed);
        let offset = slot.pool_offset.load(Ordering::Relaxed);
        let domain = self.topic.publisher_heap_domain(p);
        if slot.generation.load(Ordering::Acquire) != generation {
            return Err(Error::Corrupted {
                what: "publisher slot changed while being read".into(),
            });
        }
        if pool_len != self.topic.layout.pool_len || heap_id == 0 {
            return Err(Error::Corrupted {
                what: format!(
                    "topic `{}`: publisher {p} announces a pool of {pool_len} samples, the layout has {}",
                    self.topic.name, self.topic.layout.pool_len
                ),
            });
        }
        let domain = domain.ok_or_else(|| Error::Corrupted {
            what: format!("topic `{}`: publisher {p} has an invalid heap domain", self.topic.name),
        })?;
        ptr::table().register_name(heap_id, ptr::heap_segment_name(&domain, heap_id)?);
        let bytes = pool_len as usize * size_of::<SampleSlot<M>>();
        let pool = RelPtr::new(heap_id, offset).resolve(bytes, align_of::<SampleSlot<M>>())?;
        let channel = self.topic.channel(Role::Publisher, p, generation, ".space");
        let space_waker = B::waker(&channel, &slot.space).ok();
        Ok(Conn { generation, pool, pool_len, ready: false, completion_tail: 0, space_waker })
    }

    /// Whether our pair with publisher `p` is initialised for this connection.
    fn pair_ready(&self, p: u32, conn: &mut Conn<B>) -> bool {
        let pair = self.topic.pair(p, self.index);
        let ready = pair.sub_generation.load(Ordering::Acquire) == self.generation
            && pair.pub_generation.0.load(Ordering::Relaxed) == conn.generation;
        if ready && !conn.ready {
            conn.completion_tail = pair.completion_tail.0.load(Ordering::Relaxed);
        }
        conn.ready = ready;
        ready
    }

    /// Takes the next message if one is queued; never blocks.
    pub fn try_receive(&self) -> Result<Option<Sample<'_, M, B>>> {
        let mut st = self.lock();
        self.refresh(&mut st);
        let max_borrowed = self.topic.layout.options.max_borrowed;
        let count = st.pubs.len();
        for k in 0..count {
            let p = (st.next + k) % count;
            let conn = &mut st.pubs[p];
            if conn.generation == 0 || !self.pair_ready(p as u32, conn) {
                continue;
            }
            let queue = self.topic.delivery(p as u32, self.index);
            if !queue.has_data() {
                continue;
            }
            if st.borrowed >= max_borrowed {
                return Err(Error::TooManyBorrowed {
                    topic: self.topic.name.clone(),
                    max: max_borrowed,
                });
            }
            let conn = &mut st.pubs[p];
            let i = match queue.pop(None) {
                Ok(Some(i)) => i,
                Ok(None) => continue,
                Err(corrupt) => {
                    tracing::error!(topic = %self.topic.name, publisher = p, head = corrupt.head, tail = corrupt.tail, "garbage in delivery queue indices");
                    continue;
                }
            };
            // Only a publisher of a `Block` topic ever waits for room.
            if self.block
                && let Some(waker) = &conn.space_waker
            {
                let _ = wait::notify::<B>(waker, &self.topic.publisher(p as u32).space);
            }
            if i >= conn.pool_len {
                tracing::error!(topic = %self.topic.name, publisher = p, slot = i, "delivered index outside the pool; ignored");
                continue;
            }
            // SAFETY: i < pool_len, and the pool was resolved for pool_len slots.
            let slot = unsafe { conn.pool.cast::<SampleSlot<M>>().add(i as usize) };
            // SAFETY: the slot is readable (mapped pool); the publisher wrote the sequence
            // before delivering the index.
            let sequence = unsafe { std::ptr::addr_of!((*slot.as_ptr()).sequence).read_volatile() };
            let generation = conn.generation;
            st.borrowed += 1;
            st.next = p + 1;
            // Only we write this counter (tools read it): no read-modify-write needed.
            let received = &self.topic.subscriber(self.index).received.0;
            received.store(received.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            return Ok(Some(Sample {
                subscriber: self,
                slot,
                publisher: p as u32,
                generation,
                index: i,
                sequence,
            }));
        }
        Ok(None)
    }

    /// Whether `try_receive` would find something: the wake-up condition of blocking receives.
    /// It checks exactly what `try_receive` checks, or a blocking receive could spin.
    fn has_data(&self) -> bool {
        let mut st = self.lock();
        self.refresh(&mut st);
        (0..st.pubs.len()).any(|p| {
            let conn = &mut st.pubs[p];
            conn.generation != 0
                && self.pair_ready(p as u32, conn)
                && self.topic.delivery(p as u32, self.index).has_data()
        })
    }

    /// Waits for the next message without spinning (after the configured spin).
    pub fn receive(&self) -> Result<Sample<'_, M, B>> {
        loop {
            if let Some(sample) = self.receive_until(None)? {
                return Ok(sample);
            }
        }
    }

    /// Waits up to `timeout` for the next message; `None` if none came.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Option<Sample<'_, M, B>>> {
        self.receive_until(wait::deadline(Some(timeout)))
    }

    /// Waits up to `timeout` for the next message and passes it to `f` (the seed's
    /// `receive(callback, timeout)`); returns `f`'s result, or `None` on timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-cb-{}", std::process::id())).unwrap();
    /// let subscriber = Subscriber::<u32>::new("cb")?;
    /// Publisher::<u32>::new("cb")?.publish(5)?;
    /// let doubled = subscriber.receive_with(|v| v * 2, Duration::from_secs(1))?;
    /// assert_eq!(doubled, Some(10));
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn receive_with<R>(&self, f: impl FnOnce(&M) -> R, timeout: Duration) -> Result<Option<R>> {
        Ok(self.receive_timeout(timeout)?.map(|sample| f(&sample)))
    }

    fn receive_until(&self, deadline: Option<Instant>) -> Result<Option<Sample<'_, M, B>>> {
        let word = &self.topic.subscriber(self.index).word;
        // A broadcasting backend lets every subscriber sleep on the topic's word, so that a
        // publish wakes them all with one call; we still register on our own word, which is
        // what the publisher checks.
        let sleep_on = if B::BROADCAST { self.topic.data_word() } else { word };
        loop {
            if let Some(sample) = self.try_receive()? {
                return Ok(Some(sample));
            }
            let slice = if self.fail_without_publishers {
                let next_probe = Instant::now() + self.interval;
                Some(deadline.map_or(next_probe, |d| d.min(next_probe)))
            } else {
                deadline
            };
            let ready = {
                let _sleeper = self.sleeper.lock().unwrap_or_else(PoisonError::into_inner);
                wait::wait_until_shared::<B>(
                    &self.waiter,
                    word,
                    sleep_on,
                    slice,
                    self.spin,
                    || self.has_data(),
                )?
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.try_receive();
            }
            if ready {
                continue;
            }
            if self.fail_without_publishers
                && self.publishers_alive() == 0
                && self.lock().seen_publisher
                && !self.has_data()
            {
                return Err(Error::NoPublisher { topic: self.topic.name.clone() });
            }
        }
    }

    /// Called when a sample is dropped: return its slot to the publisher.
    pub(crate) fn release(&self, p: u32, generation: u32, i: u32) {
        let mut st = self.lock();
        st.borrowed -= 1;
        let conn = &mut st.pubs[p as usize];
        if conn.generation != generation || !self.pair_ready(p, conn) {
            // The publisher is gone or reset our pair; it reclaimed everything we held.
            return;
        }
        match self.topic.completion(p, self.index).push(&mut conn.completion_tail, i) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(topic = %self.topic.name, publisher = p, "completion queue full; the publisher will reclaim on its own")
            }
            Err(corrupt) => {
                tracing::error!(topic = %self.topic.name, publisher = p, head = corrupt.head, tail = corrupt.tail, "garbage in completion queue indices")
            }
        }
    }

    /// Number of publishers alive on the topic. Reclaims the slots of dead ones (and removes
    /// their heap segments); samples already received from them stay readable.
    pub fn publishers_alive(&self) -> usize {
        (0..self.topic.layout.options.max_publishers)
            .filter(|&p| {
                let state = self.topic.publisher(p).state.load(Ordering::Acquire);
                (state == ACTIVE || state == CLOSING) && !self.topic.reap_publisher(p)
            })
            .count()
    }

    /// Probes publishers now and reclaims the slots of dead ones (see
    /// [`publishers_alive`](Self::publishers_alive)).
    pub fn cleanup(&self) -> Result<()> {
        self.publishers_alive();
        Ok(())
    }

    /// Whether a thread of this subscriber is asleep (registered) waiting for data (tests).
    #[cfg(test)]
    pub(crate) fn sleeping(&self) -> bool {
        self.topic.subscriber(self.index).word.waiters() != 0
    }

    /// Test seam: behaves like a buggy or hostile subscriber by writing `values` into its
    /// completion queue towards publisher slot `publisher` (and, if `wreck_tail`, a nonsensical
    /// tail index). The publisher must reject all of it without harm.
    #[doc(hidden)]
    pub fn debug_scribble_completion(&self, publisher: u32, values: &[u32], wreck_tail: bool) {
        let completion = self.topic.completion(publisher, self.index);
        let mut st = self.lock();
        let conn = &mut st.pubs[publisher as usize];
        for &value in values {
            let _ = completion.push(&mut conn.completion_tail, value);
        }
        if wreck_tail {
            completion.tail.store(u64::MAX / 3, Ordering::Release);
        }
    }

    /// Samples currently borrowed from this subscriber.
    pub fn borrowed(&self) -> u32 {
        self.lock().borrowed
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }
}

impl<M: ShmMessage, B: WaitBackend> fmt::Debug for Subscriber<M, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("topic", &self.topic.name)
            .field("type", &M::TYPE_NAME)
            .field("slot", &self.index)
            .finish()
    }
}

impl<M: ShmMessage, B: WaitBackend> Drop for Subscriber<M, B> {
    fn drop(&mut self) {
        // Every sample borrowed from us is gone (they borrow `self`). Leave the slot: the
        // publishers take back what is still queued for us when they notice.
        self.topic.subscriber(self.index).state.store(FREE, Ordering::Release);
        self.topic.bump_epoch();
        self.wake_publishers();
        drop(self.token.take());
        self.topic.leave();
    }
}
