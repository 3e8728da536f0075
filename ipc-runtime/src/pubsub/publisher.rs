//! [`Publisher`]: puts messages into its pool and their slot indices into subscribers' queues.
//!
//! The publisher owns a pool of sample slots in its own heap (subscribers map it read-only) and
//! keeps, in process-local memory, who holds which slot: a reference count per slot and, per
//! subscriber, the set of slots delivered to it and not yet returned. Whatever a subscriber
//! writes back (its completion queue, the head of its delivery queue) is checked against that
//! record before it is believed, so a buggy or hostile subscriber can lose its own messages but
//! never make the publisher drop a message someone else still reads.
//!
//! A service thread per publisher connects late-joining subscribers (delivering history while the
//! publisher is idle), returns finished samples to the pool, and reclaims what dead subscribers
//! held. It also outlives a dropped `Publisher` while subscribers still hold its samples, so
//! samples already received stay valid; it frees the pool when the last one comes back.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::layout::{ACTIVE, CLOSING, FREE, MAX_LOANS};
use super::options::{OptionRequest, Overflow};
use super::ring::Corrupt;
use super::sample::{SampleMut, SampleSlot};
use super::topic::{Role, Topic};
use crate::domain;
use crate::error::{Error, Result};
use crate::heap::{self, Heap};
use crate::liveness::Token;
use crate::message::ShmMessage;
use crate::ptr::RelPtr;
use crate::wait::{self, DefaultBackend, WaitBackend};

/// Default period of the service thread's housekeeping (liveness probes, returning samples).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// Publishes messages of type `M` on a topic.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-pub-{}", std::process::id())).unwrap();
/// let publisher = Publisher::<u64>::new("counter")?;
/// let subscriber = Subscriber::<u64>::new("counter")?;
/// publisher.publish(42)?;
/// assert_eq!(*subscriber.try_receive()?.unwrap(), 42);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct Publisher<M: ShmMessage + Send, B: WaitBackend = DefaultBackend> {
    shared: Arc<Shared<M, B>>,
}

/// Options for a [`Publisher`]; topic-wide options are fixed by the topic's first participant.
pub struct PublisherBuilder<M, B = DefaultBackend> {
    topic: String,
    domain: Option<String>,
    request: OptionRequest,
    block_timeout: Duration,
    interval: Duration,
    _types: PhantomData<fn() -> (M, B)>,
}

impl<M, B> fmt::Debug for PublisherBuilder<M, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherBuilder")
            .field("topic", &self.topic)
            .field("domain", &self.domain)
            .field("request", &self.request)
            .field("block_timeout", &self.block_timeout)
            .finish()
    }
}

macro_rules! topic_options {
    ($builder:ident) => {
        impl<M, B> $builder<M, B> {
            /// Queue depth per subscriber (topic-wide; default 16).
            pub fn subscriber_capacity(mut self, n: u32) -> Self {
                self.request.subscriber_capacity = Some(n);
                self
            }

            /// How many of the latest messages a late-joining subscriber receives (topic-wide;
            /// default 0, at most the subscriber capacity).
            pub fn history(mut self, n: u32) -> Self {
                self.request.history = Some(n);
                self
            }

            /// Maximum number of subscribers (topic-wide; default 8).
            pub fn max_subscribers(mut self, n: u32) -> Self {
                self.request.max_subscribers = Some(n);
                self
            }

            /// Maximum number of publishers (topic-wide; default 2).
            pub fn max_publishers(mut self, n: u32) -> Self {
                self.request.max_publishers = Some(n);
                self
            }

            /// What a publisher does when a subscriber's queue is full (topic-wide; default
            /// [`Overflow::DropOldest`](crate::pubsub::Overflow::DropOldest)).
            pub fn overflow(mut self, overflow: $crate::pubsub::Overflow) -> Self {
                self.request.overflow = Some(overflow);
                self
            }

            /// How many received samples one subscriber may hold at once (topic-wide;
            /// default 8).
            pub fn max_borrowed(mut self, n: u32) -> Self {
                self.request.max_borrowed = Some(n);
                self
            }

            /// The domain to use instead of the process's (`IPC_DOMAIN`).
            pub fn domain(mut self, domain: &str) -> Self {
                self.domain = Some(domain.to_owned());
                self
            }
        }
    };
}

pub(crate) use topic_options;

topic_options!(PublisherBuilder);

impl<M: ShmMessage + Send, B: WaitBackend> PublisherBuilder<M, B> {
    /// With [`Overflow::Block`]: how long `publish` waits for a full subscriber before failing
    /// with [`Error::PublishTimeout`] (default 5 s; this publisher only).
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.block_timeout = timeout;
        self
    }

    /// How often the service thread probes for dead subscribers and returns finished samples
    /// (default 100 ms).
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Uses waiting backend `B2` (every participant of a topic must use the same one).
    pub fn backend<B2: WaitBackend>(self) -> PublisherBuilder<M, B2> {
        PublisherBuilder {
            topic: self.topic,
            domain: self.domain,
            request: self.request,
            block_timeout: self.block_timeout,
            interval: self.interval,
            _types: PhantomData,
        }
    }

    /// Joins (or creates) the topic and starts publishing.
    pub fn create(self) -> Result<Publisher<M, B>> {
        let domain = self.domain.unwrap_or_else(|| domain::current().to_owned());
        let heap = heap::default_heap()?;
        let (topic, lock) = Topic::join::<M, B>(&domain, &self.topic, &self.request)?;
        let (index, generation, token) = topic.claim(Role::Publisher)?;
        drop(lock);
        let result =
            Shared::start(topic, index, generation, token, heap, self.block_timeout, self.interval);
        result.map(|shared| Publisher { shared })
    }
}

struct Conn<B: WaitBackend> {
    /// Generation of the subscriber this connection serves; 0 = not connected.
    generation: u32,
    /// Pool slots delivered to this subscriber and not yet returned (a bitset).
    held: Vec<u64>,
    held_count: u32,
    /// Our copies of the indices only we write.
    tail: u64,
    completion_head: u64,
    waker: Option<B::Waker>,
}

impl<B: WaitBackend> Conn<B> {
    fn idle(pool_len: u32) -> Self {
        Conn {
            generation: 0,
            held: vec![0; (pool_len as usize).div_ceil(64)],
            held_count: 0,
            tail: 0,
            completion_head: 0,
            waker: None,
        }
    }

    fn holds(&self, index: u32) -> bool {
        self.held.get(index as usize / 64).is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    fn set_held(&mut self, index: u32, on: bool) {
        let word = &mut self.held[index as usize / 64];
        if on {
            *word |= 1 << (index % 64);
            self.held_count += 1;
        } else {
            *word &= !(1 << (index % 64));
            self.held_count -= 1;
        }
    }
}

struct State<M, B: WaitBackend> {
    pool: NonNull<SampleSlot<M>>,
    pool_ptr: RelPtr,
    pool_len: u32,
    refs: Vec<u32>,
    free: Vec<u32>,
    subs: Vec<Conn<B>>,
    history: VecDeque<u32>,
    sequence: u64,
    epoch: u64,
    loans: u32,
    last_probe: Instant,
    scratch: Vec<u32>,
    delivered: Vec<u32>,
    finished: bool,
    token: Option<Token>,
}

struct Shared<M, B: WaitBackend> {
    topic: Topic,
    index: u32,
    generation: u32,
    heap: &'static Heap,
    state: Mutex<State<M, B>>,
    closing: AtomicBool,
    /// Counted in `heap::linger_begin` (dropped with samples still out).
    lingering: AtomicBool,
    block_timeout: Duration,
    interval: Duration,
    service_waiter: B::Waiter,
    service_waker: B::Waker,
    space_waiter: B::Waiter,
    /// With a broadcasting backend: wakes every subscriber sleeping on the topic's word.
    broadcast_waker: Option<B::Waker>,
}

// SAFETY: the pool pointer refers to this process's heap, which lives as long as the process;
// the values in it are only touched under `state`'s lock, and `M: Send` lets them be dropped on
// the service thread.
unsafe impl<M: Send, B: WaitBackend> Send for Shared<M, B> {}
// SAFETY: as above.
unsafe impl<M: Send, B: WaitBackend> Sync for Shared<M, B> {}

enum Delivered {
    Yes,
    /// The subscriber is gone, broken or over its allowance; it does not get this message.
    Skipped,
    /// `Overflow::Block` and the queue is full.
    Full,
}

impl<M: ShmMessage + Send, B: WaitBackend> Shared<M, B> {
    fn start(
        topic: Topic,
        index: u32,
        generation: u32,
        token: Token,
        heap: &'static Heap,
        block_timeout: Duration,
        interval: Duration,
    ) -> Result<Arc<Self>> {
        let slot = topic.publisher(index);
        let fail = |err: Error| {
            slot.state.store(FREE, Ordering::Release);
            err
        };
        let pool_len = topic.layout.pool_len;
        let bytes = (pool_len as usize)
            .checked_mul(size_of::<SampleSlot<M>>())
            .ok_or(Error::CapacityOverflow { what: "sample pool" })
            .map_err(fail)?;
        let pool_ptr =
            heap.try_allocate(bytes.max(1), align_of::<SampleSlot<M>>()).map_err(fail)?;
        let pool = heap.address(pool_ptr).cast::<SampleSlot<M>>();
        let service_channel = topic.channel(Role::Publisher, index, generation, ".service");
        let waiters = B::waiter(&service_channel, &slot.service).and_then(|service| {
            let space = B::waiter(
                &topic.channel(Role::Publisher, index, generation, ".space"),
                &slot.space,
            )?;
            let waker = B::waker(&service_channel, &slot.service)?;
            let broadcast = if B::BROADCAST {
                Some(B::waker(
                    &topic.channel(Role::Publisher, index, generation, ".data"),
                    topic.data_word(),
                )?)
            } else {
                None
            };
            Ok((service, space, waker, broadcast))
        });
        let (service_waiter, space_waiter, service_waker, broadcast_waker) = match waiters {
            Ok(all) => all,
            Err(e) => {
                heap.free(pool_ptr);
                return Err(fail(e));
            }
        };
        // Describe ourselves to subscribers, then go live.
        let heap_domain = heap.domain().as_bytes();
        // SAFETY: nobody else writes a claimed slot; `heap_domain` is a validated domain
        // (≤ 100 bytes) and the field holds 104.
        unsafe {
            let field = slot.heap_domain.as_ptr().cast_mut();
            std::ptr::copy_nonoverlapping(heap_domain.as_ptr(), field, heap_domain.len());
        }
        slot.heap_domain_len.store(heap_domain.len() as u32, Ordering::Relaxed);
        slot.heap_id.store(pool_ptr.segment(), Ordering::Relaxed);
        slot.pool_offset.store(pool_ptr.offset(), Ordering::Relaxed);
        slot.pool_len.store(pool_len, Ordering::Relaxed);
        slot.sequence.store(0, Ordering::Relaxed);
        slot.pid.store(std::process::id(), Ordering::Relaxed);
        slot.state.store(ACTIVE, Ordering::Release);
        topic.bump_epoch();

        let max_subscribers = topic.layout.options.max_subscribers;
        let state = State {
            pool,
            pool_ptr,
            pool_len,
            refs: vec![0; pool_len as usize],
            free: (0..pool_len).rev().collect(),
            subs: (0..max_subscribers).map(|_| Conn::idle(pool_len)).collect(),
            history: VecDeque::new(),
            sequence: 0,
            epoch: u64::MAX,
            loans: 0,
            last_probe: Instant::now(),
            scratch: Vec::new(),
            delivered: Vec::new(),
            finished: false,
            token: Some(token),
        };
        let shared = Arc::new(Shared {
            topic,
            index,
            generation,
            heap,
            state: Mutex::new(state),
            closing: AtomicBool::new(false),
            lingering: AtomicBool::new(false),
            block_timeout,
            interval,
            service_waiter,
            service_waker,
            space_waiter,
            broadcast_waker,
        });
        shared.maintain(&mut shared.lock(), false);
        let service = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("ipc-pub-{}", shared.topic.name))
            .spawn(move || service.serve())
            .map_err(|e| Error::io("starting the publisher's service thread", e))?;
        Ok(shared)
    }

    fn lock(&self) -> MutexGuard<'_, State<M, B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn options(&self) -> &super::options::TopicOptions {
        &self.topic.layout.options
    }

    /// Housekeeping: take back returned samples, connect/disconnect subscribers, and (every
    /// interval, or when `probe`) reclaim what dead subscribers held.
    fn maintain(&self, st: &mut State<M, B>, probe: bool) {
        self.drain_completions(st);
        self.refresh_subscribers(st);
        if probe || st.last_probe.elapsed() >= self.interval {
            st.last_probe = Instant::now();
            for s in 0..self.options().max_subscribers {
                if self.topic.reap_subscriber(s) && st.subs[s as usize].generation != 0 {
                    self.disconnect(st, s);
                }
            }
        }
    }

    /// The light part of housekeeping, on every publish: connect and disconnect subscribers
    /// when someone arrived or left (one atomic load when nobody did).
    #[inline]
    fn refresh_subscribers(&self, st: &mut State<M, B>) {
        let epoch = self.topic.epoch();
        if epoch != st.epoch {
            st.epoch = epoch;
            self.scan_subscribers(st);
        }
    }

    fn drain_completions(&self, st: &mut State<M, B>) {
        for s in 0..self.options().max_subscribers {
            self.drain_one(st, s);
        }
    }

    /// Takes back what subscriber `s` returned.
    fn drain_one(&self, st: &mut State<M, B>, s: u32) {
        let conn = &mut st.subs[s as usize];
        if conn.generation == 0 {
            return;
        }
        let mut returned = std::mem::take(&mut st.scratch);
        let completion = self.topic.completion(self.index, s);
        let drained = completion.drain(&mut conn.completion_head, |i| returned.push(i));
        for i in returned.drain(..) {
            self.release_held(st, s, i, "completion queue");
        }
        st.scratch = returned;
        if let Err(corrupt) = drained {
            self.broken(st, s, "completion", corrupt);
        }
    }

    fn broken(&self, st: &mut State<M, B>, s: u32, queue: &str, corrupt: Corrupt) {
        tracing::error!(
            topic = %self.topic.name,
            subscriber = s,
            head = corrupt.head,
            tail = corrupt.tail,
            "garbage in subscriber's {queue} queue indices; disconnecting it"
        );
        self.disconnect(st, s);
    }

    fn scan_subscribers(&self, st: &mut State<M, B>) {
        for s in 0..self.options().max_subscribers {
            let slot = self.topic.subscriber(s);
            let state = slot.state.load(Ordering::Acquire);
            let generation = slot.generation.load(Ordering::Acquire);
            let connected = st.subs[s as usize].generation;
            if connected != 0 && (connected != generation || state != ACTIVE) {
                self.disconnect(st, s);
            }
            if state == ACTIVE && st.subs[s as usize].generation == 0 && generation != 0 {
                self.connect(st, s, generation);
            }
        }
    }

    fn connect(&self, st: &mut State<M, B>, s: u32, generation: u32) {
        let pair = self.topic.pair(self.index, s);
        pair.sub_generation.store(0, Ordering::Release);
        pair.pub_generation.0.store(self.generation, Ordering::Relaxed);
        pair.delivery_head.0.store(0, Ordering::Relaxed);
        pair.delivery_tail.0.store(0, Ordering::Relaxed);
        pair.completion_head.0.store(0, Ordering::Relaxed);
        pair.completion_tail.0.store(0, Ordering::Relaxed);
        let word = &self.topic.subscriber(s).word;
        let waker = match B::waker(&self.topic.channel(Role::Subscriber, s, generation, ""), word) {
            Ok(waker) => waker,
            Err(err) => {
                tracing::warn!(topic = %self.topic.name, subscriber = s, %err, "cannot wake subscriber; not connecting it");
                return;
            }
        };
        // Our samples live in our heap: it must stay readable for this subscriber even if we
        // exit before it has read them (on Windows an object dies with its last handle).
        heap::keep_alive_for(self.topic.subscriber(s).pid.load(Ordering::Relaxed));
        let pool_len = st.pool_len;
        let conn = &mut st.subs[s as usize];
        *conn = Conn::idle(pool_len);
        conn.generation = generation;
        conn.waker = Some(waker);
        pair.sub_generation.store(generation, Ordering::Release);
        // Late joiner: hand it the history.
        let history: Vec<u32> = st.history.iter().copied().collect();
        let mut delivered = false;
        for i in history {
            delivered |= matches!(self.deliver(st, s, i), Ok(Delivered::Yes));
        }
        if delivered {
            self.wake(st, &mut vec![s]);
        }
    }

    /// Takes back everything subscriber `s` held and forgets it.
    fn disconnect(&self, st: &mut State<M, B>, s: u32) {
        let conn = &mut st.subs[s as usize];
        let mut held = Vec::new();
        for (w, word) in conn.held.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                held.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        let pool_len = st.pool_len;
        st.subs[s as usize] = Conn::idle(pool_len);
        self.topic.pair(self.index, s).sub_generation.store(0, Ordering::Release);
        for i in held {
            self.release_ref(st, i);
        }
    }

    /// Subscriber `s` says it is done with slot `i`; believe it only if it holds `i`.
    fn release_held(&self, st: &mut State<M, B>, s: u32, i: u32, source: &str) {
        let conn = &mut st.subs[s as usize];
        if i >= st.pool_len || !conn.holds(i) {
            tracing::error!(
                topic = %self.topic.name,
                subscriber = s,
                slot = i,
                "garbage in subscriber's {source}: it does not hold this sample; ignored"
            );
            return;
        }
        conn.set_held(i, false);
        self.release_ref(st, i);
    }

    fn release_ref(&self, st: &mut State<M, B>, i: u32) {
        let refs = &mut st.refs[i as usize];
        debug_assert!(*refs > 0);
        *refs -= 1;
        if *refs == 0 {
            // SAFETY: the slot is in our pool, initialised when it was published, and no one
            // references it any more (every holder returned it or was reclaimed).
            unsafe { (*st.pool.as_ptr().add(i as usize)).value.assume_init_drop() };
            st.free.push(i);
        }
    }

    /// Puts slot `i` into subscriber `s`'s queue, applying the overflow policy.
    fn deliver(&self, st: &mut State<M, B>, s: u32, i: u32) -> Result<Delivered, Corrupt> {
        let options = *self.options();
        let allowance = options.subscriber_capacity + options.max_borrowed;
        let queue = self.topic.delivery(self.index, s);
        let mut drained = false;
        loop {
            if !drained && st.subs[s as usize].held_count >= allowance {
                // Returned samples are only taken back after publishing (off the latency path);
                // count them before judging the subscriber.
                self.drain_one(st, s);
                drained = true;
                if st.subs[s as usize].generation == 0 {
                    return Ok(Delivered::Skipped);
                }
            }
            let conn = &mut st.subs[s as usize];
            let over_allowance = conn.held_count >= allowance;
            if !over_allowance && queue.push(&mut conn.tail, i)? {
                conn.set_held(i, true);
                st.refs[i as usize] += 1;
                return Ok(Delivered::Yes);
            }
            match options.overflow {
                Overflow::DropOldest => match queue.pop(Some(conn.tail))? {
                    Some(old) => self.release_held(st, s, old, "delivery queue"),
                    // Queue empty but over allowance: it hoards samples; it misses this one.
                    None if over_allowance => return Ok(Delivered::Skipped),
                    None => {}
                },
                Overflow::Block if over_allowance && queue.len(conn.tail) == 0 => {
                    return Ok(Delivered::Skipped);
                }
                Overflow::Block => return Ok(Delivered::Full),
            }
        }
    }

    /// Wakes those of subscribers `delivered` that sleep, and empties the list. With a
    /// broadcasting backend that is one call on the topic's word, whatever their number.
    fn wake(&self, st: &State<M, B>, delivered: &mut Vec<u32>) {
        if delivered.is_empty() {
            return;
        }
        if let Some(waker) = &self.broadcast_waker {
            let words = delivered.iter().map(|&s| &self.topic.subscriber(s).word);
            if let Err(err) = wait::notify_any::<B>(waker, self.topic.data_word(), words) {
                tracing::warn!(topic = %self.topic.name, %err, "wake-up failed");
            }
        } else {
            for &s in delivered.iter() {
                if let Some(waker) = &st.subs[s as usize].waker
                    && let Err(err) = wait::notify::<B>(waker, &self.topic.subscriber(s).word)
                {
                    tracing::warn!(topic = %self.topic.name, subscriber = s, %err, "wake-up failed");
                }
            }
        }
        delivered.clear();
    }

    /// `Overflow::Block`: waits until subscriber `s` has room, has gone, or the deadline passes.
    fn wait_for_space(
        &self,
        st: &mut MutexGuard<'_, State<M, B>>,
        s: u32,
        deadline: Instant,
    ) -> Result<()> {
        let generation = st.subs[s as usize].generation;
        let tail = st.subs[s as usize].tail;
        let queue = self.topic.delivery(self.index, s);
        let capacity = self.options().subscriber_capacity as u64;
        let slot = self.topic.subscriber(s);
        let gone = || {
            slot.state.load(Ordering::Acquire) != ACTIVE
                || slot.generation.load(Ordering::Acquire) != generation
        };
        loop {
            let slice_end = (Instant::now() + self.interval).min(deadline);
            let ready = wait::wait_until::<B>(
                &self.space_waiter,
                &self.topic.publisher(self.index).space,
                Some(slice_end),
                64,
                || queue.len(tail) < capacity || gone(),
            )?;
            if ready {
                if gone() {
                    self.disconnect(st, s);
                }
                return Ok(());
            }
            if self.topic.reap_subscriber(s) {
                self.disconnect(st, s);
                return Ok(());
            }
            // A subscriber that scribbled on its queues gets disconnected here, not waited for.
            self.drain_completions(st);
            if st.subs[s as usize].generation != generation {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::PublishTimeout {
                    topic: self.topic.name.clone(),
                    subscriber_pid: slot.pid.load(Ordering::Relaxed),
                    waited: self.block_timeout,
                });
            }
        }
    }

    fn take_slot(&self, st: &mut State<M, B>) -> Result<u32> {
        if let Some(i) = st.free.pop() {
            return Ok(i);
        }
        self.drain_completions(st);
        if let Some(i) = st.free.pop() {
            return Ok(i);
        }
        self.maintain(st, true);
        st.free.pop().ok_or_else(|| Error::OutOfSamples {
            topic: self.topic.name.clone(),
            pool: st.pool_len,
        })
    }

    /// Delivers the (initialised) slot `i`, which holds one reference for us, then drops ours.
    fn publish_slot(&self, st: &mut MutexGuard<'_, State<M, B>>, i: u32) -> Result<()> {
        st.sequence += 1;
        let sequence = st.sequence;
        // SAFETY: slot `i` is ours (refs == 1, not delivered yet).
        unsafe { (*st.pool.as_ptr().add(i as usize)).sequence = sequence };
        self.topic.publisher(self.index).sequence.store(sequence, Ordering::Relaxed);
        let mut deadline = None;
        let mut result = Ok(());
        // Deliver to everyone first and wake afterwards, so the first subscribers' wake-up
        // system calls do not delay the delivery to the others.
        let mut delivered = std::mem::take(&mut st.delivered);
        for s in 0..self.options().max_subscribers {
            loop {
                if st.subs[s as usize].generation == 0 {
                    break;
                }
                match self.deliver(st, s, i) {
                    Ok(Delivered::Yes) => {
                        delivered.push(s);
                        break;
                    }
                    Ok(Delivered::Skipped) => break,
                    Ok(Delivered::Full) => {
                        // Those already served need not wait for the slow one.
                        self.wake(st, &mut delivered);
                        let deadline =
                            *deadline.get_or_insert_with(|| Instant::now() + self.block_timeout);
                        if let Err(err) = self.wait_for_space(st, s, deadline) {
                            result = Err(err);
                            break;
                        }
                    }
                    Err(corrupt) => {
                        self.broken(st, s, "delivery", corrupt);
                        break;
                    }
                }
            }
            if result.is_err() {
                break;
            }
        }
        self.wake(st, &mut delivered);
        st.delivered = delivered;
        let history = self.options().history as usize;
        if history > 0 {
            st.refs[i as usize] += 1;
            st.history.push_back(i);
            if st.history.len() > history {
                let old = st.history.pop_front().expect("non-empty");
                self.release_ref(st, old);
            }
        }
        self.release_ref(st, i);
        result
    }

    /// The service thread: waits for news (subscribers arriving, shutdown) or the interval, and
    /// keeps the books.
    fn serve(self: Arc<Self>) {
        let slot = self.topic.publisher(self.index);
        loop {
            let seen = self.lock().epoch;
            let deadline = Instant::now() + self.interval;
            let woke = wait::wait_until::<B>(
                &self.service_waiter,
                &slot.service,
                Some(deadline),
                0,
                || self.closing.load(Ordering::Acquire) || self.topic.epoch() != seen,
            );
            if let Err(err) = woke {
                tracing::warn!(topic = %self.topic.name, %err, "service wait failed");
            }
            let mut st = self.lock();
            if st.finished {
                return;
            }
            self.maintain(&mut st, false);
            if self.closing.load(Ordering::Acquire) && self.try_finish(&mut st) {
                return;
            }
        }
    }

    /// After the `Publisher` was dropped: once every sample is back (or its holder dead), free
    /// the pool, leave the slot and, if we were the last, remove the topic.
    fn try_finish(&self, st: &mut State<M, B>) -> bool {
        if st.finished {
            return true;
        }
        while let Some(i) = st.history.pop_front() {
            self.release_ref(st, i);
        }
        if st.free.len() != st.pool_len as usize {
            return false;
        }
        st.finished = true;
        if self.lingering.swap(false, Ordering::AcqRel) {
            heap::linger_end();
        }
        self.heap.free(st.pool_ptr);
        let slot = self.topic.publisher(self.index);
        slot.heap_id.store(0, Ordering::Relaxed);
        slot.state.store(FREE, Ordering::Release);
        self.topic.bump_epoch();
        // Our waiters live until the last `Arc` goes, which may be never if the process exits
        // first; nobody needs to wake us any more, so remove what they put in the file system.
        self.topic.clean_channels(Role::Publisher, self.index, self.generation);
        drop(st.token.take());
        self.topic.leave();
        true
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> Shared<M, B> {
    /// At process exit with samples still out: stop, but leave the slot `CLOSING` and the
    /// heap's segment in place, so subscribers can still read what we queued for them (their
    /// mapping of our heap keeps it alive). Once our token is gone, whoever finds the slot dead
    /// reclaims it and removes the heap segment and, if nobody is left, the topic.
    fn abandon(&self) {
        // The service thread may be finishing right now (its critical sections are short):
        // wait for it, so the process does not exit half-way through its cleanup. But another
        // thread could hold the lock for long (blocked publishing), so not forever.
        let mut guard = None;
        let give_up = Instant::now() + Duration::from_secs(2);
        while Instant::now() < give_up {
            match self.state.try_lock() {
                Ok(st) => {
                    guard = Some(st);
                    break;
                }
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    guard = Some(p.into_inner());
                    break;
                }
                Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        }
        let Some(mut st) = guard else { return };
        // Perhaps everything came back since the last housekeeping: then finish properly.
        self.maintain(&mut st, false);
        if self.try_finish(&mut st) {
            return;
        }
        st.finished = true;
        self.topic.bump_epoch();
        drop(st.token.take());
        drop(st);
        #[cfg(not(miri))]
        exit_pause_point();
    }
}

/// Hook for tests: in `exit`, after a lingering publisher handed over (its token is gone, its
/// process not yet), wait until the test removes the marker file named by
/// `IPC_TEST_PAUSE_IN_EXIT` (at most 30 s), so a test can look at the topic in that window.
#[cfg(not(miri))]
fn exit_pause_point() {
    if let Ok(path) = std::env::var("IPC_TEST_PAUSE_IN_EXIT") {
        let path = std::path::PathBuf::from(path);
        let _ = std::fs::write(&path, b"paused");
        let give_up = Instant::now() + Duration::from_secs(30);
        while path.exists() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl<M: ShmMessage + Send> Publisher<M> {
    /// A publisher on `topic` with default options (see [`Publisher::builder`]).
    pub fn new(topic: &str) -> Result<Self> {
        Self::builder(topic).create()
    }

    /// A builder for a publisher on `topic`.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    /// use ipc_runtime::pubsub::Overflow;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-pubb-{}", std::process::id())).unwrap();
    /// let publisher = Publisher::<u32>::builder("levels")
    ///     .history(4)
    ///     .subscriber_capacity(64)
    ///     .overflow(Overflow::Block)
    ///     .create()?;
    /// publisher.publish(7)?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn builder(topic: &str) -> PublisherBuilder<M> {
        PublisherBuilder {
            topic: topic.to_owned(),
            domain: None,
            request: OptionRequest::default(),
            block_timeout: Duration::from_secs(5),
            interval: DEFAULT_INTERVAL,
            _types: PhantomData,
        }
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> Publisher<M, B> {
    /// Moves `message` into a pool slot and delivers it to every subscriber.
    ///
    /// Cost is O(subscribers) and independent of the message's size: subscribers receive the
    /// slot's index and read the message in place. With [`Overflow::Block`], waits (up to the
    /// block timeout) for full subscribers; on timeout the message has still reached the others.
    pub fn publish(&self, message: M) -> Result<()> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        shared.refresh_subscribers(&mut st);
        let i = shared.take_slot(&mut st)?;
        // SAFETY: slot `i` was free: no one references it; we initialise it and hold one ref.
        unsafe { (*st.pool.as_ptr().add(i as usize)).value.write(message) };
        st.refs[i as usize] = 1;
        let result = shared.publish_slot(&mut st, i);
        // Bookkeeping after delivery, off the subscribers' critical path.
        shared.drain_completions(&mut st);
        result
    }

    /// Loans a slot initialised with `M::default()`, to build the message in place.
    pub fn loan(&self) -> Result<SampleMut<'_, M, B>>
    where
        M: Default,
    {
        Ok(self.loan_uninit()?.write(M::default()))
    }

    /// Loans an uninitialised slot; see [`SampleMut::write`].
    pub fn loan_uninit(&self) -> Result<SampleMut<'_, M, B, MaybeUninit<M>>> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        if st.loans >= MAX_LOANS {
            return Err(Error::LoanLimit { topic: shared.topic.name.clone(), max: MAX_LOANS });
        }
        shared.refresh_subscribers(&mut st);
        let i = shared.take_slot(&mut st)?;
        st.loans += 1;
        // SAFETY: `i` < pool_len, inside our pool.
        let slot = unsafe { NonNull::new_unchecked(st.pool.as_ptr().add(i as usize)) };
        Ok(SampleMut { publisher: self, slot, index: i, initialized: false, _payload: PhantomData })
    }

    pub(crate) fn publish_loaned(&self, i: u32) -> Result<()> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        st.loans -= 1;
        st.refs[i as usize] = 1;
        shared.refresh_subscribers(&mut st);
        let result = shared.publish_slot(&mut st, i);
        shared.drain_completions(&mut st);
        result
    }

    pub(crate) fn return_loan(&self, i: u32, initialized: bool) {
        let shared = &*self.shared;
        let mut st = shared.lock();
        st.loans -= 1;
        if initialized {
            st.refs[i as usize] = 1;
            shared.release_ref(&mut st, i);
        } else {
            st.free.push(i);
        }
    }

    /// Runs housekeeping now: takes back returned samples and reclaims everything held by
    /// subscribers whose process died. (The service thread does this every interval anyway.)
    pub fn cleanup(&self) -> Result<()> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        shared.maintain(&mut st, true);
        Ok(())
    }

    /// Number of subscribers currently connected.
    pub fn subscriber_count(&self) -> usize {
        let shared = &*self.shared;
        let mut st = shared.lock();
        shared.maintain(&mut st, false);
        st.subs.iter().filter(|c| c.generation != 0).count()
    }

    /// Pool slots in use (queued, borrowed, kept as history, or loaned).
    pub fn samples_in_use(&self) -> usize {
        let st = self.shared.lock();
        st.pool_len as usize - st.free.len()
    }

    /// Sequence number of the last published message.
    pub fn sequence(&self) -> u64 {
        self.shared.lock().sequence
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.shared.topic.name
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> fmt::Debug for Publisher<M, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.shared.topic.name)
            .field("type", &M::TYPE_NAME)
            .field("slot", &self.shared.index)
            .finish()
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> Drop for Publisher<M, B> {
    fn drop(&mut self) {
        let shared = &*self.shared;
        let slot = shared.topic.publisher(shared.index);
        let _ = slot.state.compare_exchange(ACTIVE, CLOSING, Ordering::AcqRel, Ordering::Relaxed);
        shared.topic.bump_epoch();
        shared.closing.store(true, Ordering::Release);
        let finished = {
            let mut st = shared.lock();
            shared.maintain(&mut st, false);
            shared.try_finish(&mut st)
        };
        if !finished {
            // Subscribers still hold samples: the service thread lingers until they come back.
            // Should the process exit first, hand over to the others on the way out.
            heap::linger_begin();
            shared.lingering.store(true, Ordering::Release);
            let lingering = Arc::downgrade(&self.shared);
            crate::liveness::on_exit(Box::new(move || {
                if let Some(shared) = lingering.upgrade() {
                    shared.abandon();
                }
            }));
        }
        // Wake the service thread: it finishes now, or lingers until the samples come back.
        let _ = wait::notify::<B>(&shared.service_waker, &slot.service);
    }
}
