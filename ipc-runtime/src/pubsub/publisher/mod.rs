//! [`Publisher`]: puts messages into its pool and their slot indices into subscribers' rings.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the public type, publishing, waiting for room, finishing after drop |
//! | `builder.rs` | [`PublisherBuilder`] and the topic-wide options both builders share |
//! | `books.rs` | the pool's reference counts, free list and history; what each subscriber holds |
//! | `conn.rs` | one connected subscriber: its mapped port, the ring towards it, waking it |
//!
//! The publisher owns its sample pool and its port (rings, flags) in its own heap; subscribers
//! map both read-only. Its bookkeeping is process-local behind a spin lock taken once per
//! call; publishing itself takes no other lock, makes no system call unless a subscriber
//! sleeps, and issues no fence unless a subscriber has ever slept (see `crate::barrier`).
//!
//! Background work — connecting a late joiner while the publisher is idle, finishing after the
//! `Publisher` was dropped with samples still out — is done by the process's service thread
//! (`pubsub::service`), which shares the lock; everything else happens on the publisher's own
//! calls, lazily: returned samples are taken back when slots run short.

mod books;
mod builder;
mod conn;

use std::fmt;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

pub use builder::PublisherBuilder;
pub(crate) use builder::{DEFAULT_INTERVAL, topic_options};

use super::layout::MAX_LOANS;
use super::options::OptionRequest;
use super::options::Overflow;
use super::port::PubPort;
use super::ring::INLINE_WORDS;
use super::sample::{PublisherId, SampleMut, SampleSlot};
use super::service::{self, Serve, Serviced};
use super::topic::{PUBLISHER, SUBSCRIBER, TopicSegment, write_heap_ref};
use crate::barrier;
use crate::error::{Error, Result};
use crate::heap::{self, Heap};
use crate::membership::{self, ACTIVE, CLOSING, Presence, Registry};
use crate::message::ShmMessage;
use crate::ptr::RelPtr;
use crate::spin::{Guard, SpinLock};
use crate::wait::{self, DefaultBackend, WaitBackend};
use books::Pool;
use conn::{Conn, Delivered};

/// Publishes messages of type `M` on a topic.
///
/// A publisher may be shared between threads; one `publish` runs at a time (they are
/// serialised), so every subscriber sees one publisher's messages in order.
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
    core: Arc<Core<M, B>>,
}

struct Core<M, B: WaitBackend> {
    topic: TopicSegment,
    index: u32,
    /// The generation of our slot (with `index`, our [`PublisherId`]).
    generation: u32,
    heap: &'static Heap,
    port: PubPort,
    port_at: RelPtr,
    pool_at: RelPtr,
    state: SpinLock<State<M, B>>,
    block_timeout: Duration,
    interval: Duration,
    space_waiter: B::Waiter,
    /// With a broadcasting backend: wakes every subscriber sleeping on our port's word, and
    /// every subscriber sleeping on the topic's word (those that do not know us yet).
    broadcast: Option<(B::Waker, B::Waker)>,
    /// The `Publisher` was dropped; finishing as soon as every sample is back.
    closing: AtomicBool,
    /// Counted in `heap::linger_begin`.
    lingering: AtomicBool,
}

struct State<M, B: WaitBackend> {
    pool: Pool<M>,
    /// Connected subscribers by slot.
    conns: Vec<Option<Conn<B>>>,
    /// Per slot, the generation of a subscriber disconnected for writing garbage: that
    /// incarnation is not connected again.
    banned: Vec<u32>,
    /// Slots of `conns` that are `Some`, in slot order: publish walks these only.
    connected: Vec<u32>,
    epoch: u64,
    sequence: u64,
    loans: u32,
    /// A publish is under way (it may have stepped out of the lock to wait for room).
    publishing: bool,
    finished: bool,
    token: Option<Presence>,
    to_wake: Vec<u32>,
}

// SAFETY: the pool's values are only touched under `state`'s lock, and `M: Send` lets them be
// dropped on whichever thread finishes the publisher; everything else is atomics, mapped
// memory that lives as long as the process, or owned data.
unsafe impl<M: Send, B: WaitBackend> Send for Core<M, B> {}
// SAFETY: as above.
unsafe impl<M: Send, B: WaitBackend> Sync for Core<M, B> {}

impl<M: ShmMessage + Send> Publisher<M> {
    /// A publisher on `topic` with default options (see [`Publisher::builder`]).
    ///
    /// # Errors
    /// As [`PublisherBuilder::create`].
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
    fn create(builder: PublisherBuilder<M, B>) -> Result<Self> {
        let domain = match &builder.domain {
            Some(domain) => {
                crate::domain::validate_domain(domain)?;
                domain.clone()
            }
            None => crate::domain::current().to_owned(),
        };
        let heap = heap::default_heap()?;
        let light = barrier::register();
        let (topic, lock) = TopicSegment::join::<M, B>(&domain, &builder.topic, &builder.request)?;
        let claim = topic.claim(PUBLISHER)?;
        let index = claim.index;
        let core = match Core::new(topic, claim.index, claim.generation, heap, light, &builder) {
            Ok(core) => core,
            Err((topic, err)) => {
                membership::release(&topic, PUBLISHER, index);
                drop(claim.token);
                topic.remove_if_unused(lock);
                return Err(err);
            }
        };
        membership::activate(&core.topic, PUBLISHER, index);
        drop(lock);
        core.topic.bump_epoch();
        // Subscribers asleep on the topic's word look at the registry and connect us.
        if let Some((_, topic_word)) = &core.broadcast {
            let _ = wait::wake_word::<B>(topic_word, core.topic.data_word());
        }
        let core = Arc::new(core);
        {
            let mut st = core.state.lock();
            st.token = Some(claim.token);
            core.maintain(&mut st, false);
        }
        let weak: Weak<Core<M, B>> = Arc::downgrade(&core);
        if let Err(err) = service::enroll(weak) {
            // Publishing works without it; late joiners get their history with the next
            // publish instead of at once, and a dropped publisher finishes on its next chance.
            tracing::warn!(topic = %core.topic.name, %err, "no service thread for this publisher");
        }
        Ok(Publisher { core })
    }

    /// Moves `message` into a pool slot and delivers it to every subscriber.
    ///
    /// Cost is O(connected subscribers) and independent of the message's size: subscribers
    /// receive the slot's index and read the message in place (a message of at most 48 plain
    /// bytes travels inside the ring entry instead). With
    /// [`Overflow::Block`](crate::pubsub::Overflow::Block), waits (up to the block timeout) for
    /// full subscribers.
    ///
    /// # Errors
    /// [`Error::OutOfSamples`] if every slot of the pool is still in use after taking back what
    /// subscribers returned and reclaiming what dead ones held (only possible when subscribers
    /// misbehave); nothing is sent then. With
    /// [`Overflow::Block`](crate::pubsub::Overflow::Block): [`Error::PublishTimeout`] naming
    /// the subscriber that did not make room within the block timeout, or the backend's error
    /// (usually [`Error::Io`]) if waiting for room fails. The message then has reached the
    /// subscribers served before that one (in slot order), not those after it.
    pub fn publish(&self, message: M) -> Result<()> {
        let core = &*self.core;
        let mut st = core.begin();
        let i = match core.take_slot(&mut st) {
            Ok(i) => i,
            Err(err) => {
                st.publishing = false;
                return Err(err);
            }
        };
        // SAFETY: slot `i` was free: no one references it; we initialise it and hold one ref.
        unsafe { (*st.pool.slot(i).as_ptr()).value.write(message) };
        core.publish_slot(&mut st, i, None)
    }

    /// Like [`publish`](Self::publish), but the message carries `tag` where its sequence
    /// number would be (what [`Sample::sequence`](crate::Sample::sequence) reads): request/response
    /// uses it to say which request a response answers (`crate::service`).
    pub(crate) fn publish_tagged(&self, message: M, tag: u64) -> Result<()> {
        let core = &*self.core;
        let mut st = core.begin();
        let i = match core.take_slot(&mut st) {
            Ok(i) => i,
            Err(err) => {
                st.publishing = false;
                return Err(err);
            }
        };
        // SAFETY: slot `i` was free: no one references it; we initialise it and hold one ref.
        unsafe { (*st.pool.slot(i).as_ptr()).value.write(message) };
        core.publish_slot(&mut st, i, Some(tag))
    }

    /// Loans a slot initialised with `M::default()`, to build the message in place.
    ///
    /// # Errors
    /// As [`loan_uninit`](Self::loan_uninit).
    pub fn loan(&self) -> Result<SampleMut<'_, M, B>>
    where
        M: Default,
    {
        Ok(self.loan_uninit()?.write(M::default()))
    }

    /// Loans an uninitialised slot; see [`SampleMut::write`].
    ///
    /// # Errors
    /// [`Error::LoanLimit`] if this publisher already has its maximum of samples loaned;
    /// [`Error::OutOfSamples`] if every slot of the pool is still in use after taking back what
    /// subscribers returned and reclaiming what dead ones held.
    pub fn loan_uninit(&self) -> Result<SampleMut<'_, M, B, MaybeUninit<M>>> {
        let core = &*self.core;
        let mut st = core.state.lock();
        if st.loans >= MAX_LOANS {
            return Err(Error::LoanLimit { topic: core.topic.name.clone(), max: MAX_LOANS });
        }
        let i = core.take_slot(&mut st)?;
        st.loans += 1;
        let slot = st.pool.slot(i);
        Ok(SampleMut { publisher: self, slot, index: i, initialized: false, _payload: PhantomData })
    }

    pub(crate) fn publish_loaned(&self, i: u32) -> Result<()> {
        self.publish_loaned_tagged(i, None)
    }

    /// Publishes loaned slot `i`, with `tag` in place of its sequence number if given (see
    /// [`publish_tagged`](Self::publish_tagged)).
    pub(crate) fn publish_loaned_tagged(&self, i: u32, tag: Option<u64>) -> Result<()> {
        let core = &*self.core;
        let mut st = core.begin();
        st.loans -= 1;
        core.publish_slot(&mut st, i, tag)
    }

    pub(crate) fn return_loan(&self, i: u32, initialized: bool) {
        let mut st = self.core.state.lock();
        st.loans -= 1;
        if initialized {
            st.pool.release(i);
        } else {
            st.pool.untake(i);
        }
    }

    /// Runs housekeeping now: takes back returned samples and reclaims everything held by
    /// subscribers whose process died.
    ///
    /// # Errors
    /// None at present: this always returns `Ok(())`. What housekeeping finds wrong (a
    /// subscriber that wrote garbage into its queues is disconnected, for one) is dealt with
    /// or logged, not returned.
    pub fn cleanup(&self) -> Result<()> {
        let mut st = self.core.state.lock();
        self.core.maintain(&mut st, true);
        Ok(())
    }

    /// Number of subscribers currently connected.
    pub fn subscriber_count(&self) -> usize {
        let mut st = self.core.state.lock();
        self.core.maintain(&mut st, false);
        st.connected.len()
    }

    /// Pool slots in use (queued, borrowed, kept as history, or loaned), after taking back
    /// what subscribers returned.
    pub fn samples_in_use(&self) -> usize {
        let mut st = self.core.state.lock();
        self.core.drain_all(&mut st);
        st.pool.in_use()
    }

    /// Sequence number of the last published message.
    pub fn sequence(&self) -> u64 {
        self.core.state.lock().sequence
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.core.topic.name
    }

    /// This publisher's id: what [`Sample::publisher`](crate::pubsub::Sample::publisher) says
    /// of the messages it sent (a bridge uses it to recognise its own messages).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-pubid2-{}", std::process::id())).unwrap();
    /// let subscriber = Subscriber::<u64>::new("doc/ids")?;
    /// let publisher = Publisher::<u64>::new("doc/ids")?;
    /// publisher.publish(1)?;
    /// assert_eq!(subscriber.receive()?.publisher(), publisher.id());
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn id(&self) -> PublisherId {
        PublisherId::new(self.core.index, self.core.generation)
    }

    /// The topic's overflow policy (fixed by its first participant).
    pub fn overflow(&self) -> Overflow {
        self.core.topic.layout.options.overflow
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> Core<M, B> {
    #[allow(clippy::result_large_err)]
    fn new(
        topic: TopicSegment,
        index: u32,
        generation: u32,
        heap: &'static Heap,
        light: bool,
        builder: &PublisherBuilder<M, B>,
    ) -> std::result::Result<Self, (TopicSegment, Error)> {
        let layout = topic.layout;
        let entry = topic.publisher(index);
        let pool_len = layout.pool_len;
        let setup = (|| {
            let bytes = (pool_len as usize)
                .checked_mul(size_of::<SampleSlot<M>>())
                .ok_or(Error::CapacityOverflow { what: "sample pool" })?;
            let pool_at = heap.try_allocate(bytes.max(1), align_of::<SampleSlot<M>>())?;
            let port = PubPort::create(heap, layout, index, generation, light);
            let (port, port_at) = match port {
                Ok(port) => port,
                Err(err) => {
                    heap.free(pool_at);
                    return Err(err);
                }
            };
            let waiters =
                B::waiter(&topic.channel(PUBLISHER, index, generation, ".space"), &entry.space)
                    .and_then(|space| {
                        let broadcast = if B::BROADCAST {
                            let ours = B::waker(
                                &topic.channel(PUBLISHER, index, generation, ".data"),
                                port.wake(),
                            )?;
                            let topic_word = B::waker(
                                &topic.channel(PUBLISHER, index, generation, ".topic"),
                                topic.data_word(),
                            )?;
                            Some((ours, topic_word))
                        } else {
                            None
                        };
                        Ok((space, broadcast))
                    });
            match waiters {
                Ok((space, broadcast)) => Ok((pool_at, port, port_at, space, broadcast)),
                Err(err) => {
                    heap.free(pool_at);
                    heap.free(port_at);
                    Err(err)
                }
            }
        })();
        let (pool_at, port, port_at, space_waiter, broadcast) = match setup {
            Ok(parts) => parts,
            Err(err) => return Err((topic, err)),
        };
        // Describe ourselves to subscribers; the caller then activates the slot.
        write_heap_ref(&entry.heap, heap);
        entry.port.store(port_at.offset(), Ordering::Relaxed);
        entry.pool.store(pool_at.offset(), Ordering::Release);
        let pool = heap.address(pool_at).cast::<SampleSlot<M>>();
        let max_subscribers = layout.options.max_subscribers as usize;
        let state = State {
            pool: Pool::new(pool, pool_len, layout.options.history),
            conns: (0..max_subscribers).map(|_| None).collect(),
            banned: vec![0; max_subscribers],
            connected: Vec::new(),
            epoch: u64::MAX,
            sequence: 0,
            loans: 0,
            publishing: false,
            finished: false,
            token: None,
            to_wake: Vec::new(),
        };
        Ok(Core {
            topic,
            index,
            generation,
            heap,
            port,
            port_at,
            pool_at,
            state: SpinLock::new(state),
            block_timeout: builder.block_timeout,
            interval: builder.interval,
            space_waiter,
            broadcast,
            closing: AtomicBool::new(false),
            lingering: AtomicBool::new(false),
        })
    }

    /// Takes the lock for a publish: one publish at a time, even across waits for room.
    fn begin(&self) -> Guard<'_, State<M, B>> {
        let mut st = self.state.lock();
        while st.publishing {
            // Another thread's publish stepped out to wait for room; let it finish first.
            drop(st);
            std::thread::yield_now();
            st = self.state.lock();
        }
        st.publishing = true;
        self.refresh(&mut st);
        st
    }

    /// Connects and disconnects subscribers if someone arrived or left (one atomic load when
    /// nobody did).
    #[inline]
    fn refresh(&self, st: &mut State<M, B>) {
        let epoch = self.topic.epoch();
        if epoch != st.epoch {
            st.epoch = epoch;
            self.scan(st);
        }
    }

    /// Housekeeping: connect/disconnect, take back returns, and (if `probe`) reclaim what dead
    /// subscribers held.
    fn maintain(&self, st: &mut State<M, B>, probe: bool) {
        self.refresh(st);
        self.drain_all(st);
        if probe {
            for k in (0..st.connected.len()).rev() {
                let s = st.connected[k];
                let token = st.conns[s as usize].as_ref().map_or(0, |c| c.token);
                if !self.topic.token_alive(token) {
                    self.topic.reap(SUBSCRIBER, s);
                    self.disconnect(st, s);
                }
            }
        }
    }

    fn drain_all(&self, st: &mut State<M, B>) {
        let State { conns, connected, pool, .. } = st;
        for &s in connected.iter() {
            if let Some(conn) = conns[s as usize].as_mut() {
                conn.drain(&self.topic, pool);
            }
        }
        self.drop_broken(st);
    }

    /// Disconnects subscribers found writing garbage (reported when found).
    fn drop_broken(&self, st: &mut State<M, B>) {
        for k in (0..st.connected.len()).rev() {
            let s = st.connected[k];
            if st.conns[s as usize].as_ref().is_some_and(|c| c.dead) {
                self.disconnect(st, s);
            }
        }
    }

    /// Reads the registry: connects new subscribers, forgets those that left or died. A
    /// connected subscriber is forgotten only on its own word (its port says it left) or the
    /// OS's (its token is dead), never because the registry changed under it.
    fn scan(&self, st: &mut State<M, B>) {
        // Someone arrived or left: a good moment to give back the heaps of peers since dead.
        super::port::sweep_dead_peers();
        for s in 0..self.topic.layout.options.max_subscribers {
            let entry = self.topic.subscriber(s);
            let state = entry.member.state.load(Ordering::Acquire);
            let generation = entry.member.generation.load(Ordering::Acquire);
            if let Some(conn) = &st.conns[s as usize] {
                let same = conn.generation == generation && state == ACTIVE;
                let gone =
                    conn.dead || conn.left() || (!same && !self.topic.token_alive(conn.token));
                if !gone {
                    continue;
                }
                self.disconnect(st, s);
            }
            if state == ACTIVE && generation != 0 && st.banned[s as usize] != generation {
                self.connect(st, s, generation);
            }
        }
    }

    fn connect(&self, st: &mut State<M, B>, s: u32, generation: u32) {
        let conn = match Conn::<B>::connect(&self.topic, &self.port, self.index, s, generation) {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(topic = %self.topic.name, subscriber = s, %err, "cannot connect a subscriber");
                return;
            }
        };
        if st.conns.iter().flatten().any(|c| c.sub_key == conn.sub_key) {
            // Another slot's entry names a port we serve already: a copy of a registry entry
            // (anyone may write the registry), not a subscriber.
            tracing::warn!(topic = %self.topic.name, subscriber = s, "a registry entry names a subscriber we already serve; ignored");
            conn.disconnect(&mut st.pool);
            return;
        }
        st.conns[s as usize] = Some(conn);
        let at = st.connected.partition_point(|&c| c < s);
        st.connected.insert(at, s);
        // Late joiner: hand it the history.
        let history: Vec<u32> = st.pool.history().collect();
        let State { conns, pool, .. } = st;
        let Some(conn) = conns[s as usize].as_mut() else { return };
        let layout = &self.topic.layout;
        let mut delivered = false;
        for i in history {
            let outcome = if layout.inline {
                let (sequence, payload) = inline_words(pool, i);
                conn.deliver_inline(&self.topic, layout, sequence, &payload)
            } else {
                conn.deliver(&self.topic, layout, pool, i)
            };
            delivered |= outcome == Delivered::Yes;
        }
        if delivered && conn.sleeping() {
            self.wake(st, &[s]);
        }
    }

    /// Takes back everything subscriber `s` held and forgets it.
    fn disconnect(&self, st: &mut State<M, B>, s: u32) {
        if let Some(conn) = st.conns[s as usize].take() {
            if conn.dead {
                st.banned[s as usize] = conn.generation;
            }
            conn.disconnect(&mut st.pool);
        }
        st.connected.retain(|&c| c != s);
    }

    fn take_slot(&self, st: &mut State<M, B>) -> Result<u32> {
        if let Some(i) = st.pool.take() {
            return Ok(i);
        }
        self.drain_all(st);
        if let Some(i) = st.pool.take() {
            return Ok(i);
        }
        self.maintain(st, true);
        st.pool.take().ok_or_else(|| Error::OutOfSamples {
            topic: self.topic.name.clone(),
            pool: st.pool.len(),
        })
    }

    /// Delivers the (initialised) slot `i`, which holds one reference for us, then drops ours.
    /// Ends the publish begun by [`begin`](Self::begin). A `tag` travels in place of the
    /// sequence number (the publisher's own count still advances).
    fn publish_slot(
        &self,
        st: &mut Guard<'_, State<M, B>>,
        i: u32,
        tag: Option<u64>,
    ) -> Result<()> {
        st.sequence += 1;
        let sequence = tag.unwrap_or(st.sequence);
        // SAFETY: slot `i` is ours (one reference, not delivered yet).
        unsafe { (*st.pool.slot(i).as_ptr()).sequence = sequence };
        self.port.stats().sequence.store(st.sequence, Ordering::Relaxed);
        let mut result = Ok(());
        let mut deadline = None;
        let layout = &self.topic.layout;
        let inline = layout.inline.then(|| inline_words(&st.pool, i));
        // Whether a subscriber was found writing garbage (it is dropped at the end).
        let mut broken = false;
        // Deliver to everyone first and wake afterwards, so the first subscribers' wake-up
        // system calls do not delay delivery to the others.
        let mut k = 0;
        while k < st.connected.len() {
            let s = st.connected[k];
            let State { conns, pool, to_wake, .. } = &mut **st;
            let Some(conn) = conns[s as usize].as_mut() else {
                k += 1;
                continue;
            };
            let outcome = match &inline {
                Some((sequence, payload)) => {
                    conn.deliver_inline(&self.topic, layout, *sequence, payload)
                }
                None => conn.deliver(&self.topic, layout, pool, i),
            };
            broken |= conn.dead;
            match outcome {
                Delivered::Yes => {
                    if conn.sleeping() {
                        to_wake.push(s);
                    }
                    k += 1;
                }
                Delivered::Skipped => k += 1,
                Delivered::Full => {
                    // Those already served need not wait for the slow one.
                    self.wake_pending(st);
                    let deadline =
                        *deadline.get_or_insert_with(|| Instant::now() + self.block_timeout);
                    if let Err(err) = self.wait_for_space(st, s, deadline) {
                        result = Err(err);
                        break;
                    }
                    // Waiting stepped out of the lock: the list may have changed. Continue
                    // after `s` (or at its place, if it is still there and not served).
                    k = st.connected.partition_point(|&c| c < s);
                }
            }
        }
        self.wake_pending(st);
        st.pool.remember(i);
        st.pool.release(i);
        st.publishing = false;
        // Bookkeeping after delivery, off the subscribers' critical path.
        if !layout.inline {
            let State { conns, connected, pool, .. } = &mut **st;
            for &s in connected.iter() {
                if let Some(conn) = conns[s as usize].as_mut()
                    && conn.needs_drain(layout)
                {
                    conn.drain(&self.topic, pool);
                    broken |= conn.dead;
                }
            }
        }
        if broken {
            self.drop_broken(st);
        }
        result
    }

    fn wake_pending(&self, st: &mut State<M, B>) {
        if st.to_wake.is_empty() {
            return;
        }
        let to_wake = std::mem::take(&mut st.to_wake);
        self.wake(st, &to_wake);
        st.to_wake = to_wake;
        st.to_wake.clear();
    }

    /// Wakes subscribers `slots` (which sleep). With a broadcasting backend that is one call on
    /// our port's word, whatever their number, plus one on the topic's word if one of them has
    /// not acknowledged us yet (it does not sleep on our word).
    fn wake(&self, st: &mut State<M, B>, slots: &[u32]) {
        if let Some((ours, topic_word)) = &self.broadcast {
            if let Err(err) = wait::wake_word::<B>(ours, self.port.wake()) {
                tracing::warn!(topic = %self.topic.name, %err, "wake-up failed");
            }
            let strangers =
                slots.iter().any(|&s| st.conns[s as usize].as_mut().is_some_and(|c| !c.is_acked()));
            if strangers && let Err(err) = wait::wake_word::<B>(topic_word, self.topic.data_word())
            {
                tracing::warn!(topic = %self.topic.name, %err, "wake-up failed");
            }
            return;
        }
        for &s in slots {
            if let Some(conn) = &st.conns[s as usize] {
                conn.wake(&self.topic);
            }
        }
    }

    /// `Overflow::Block`: waits, with the lock released, until subscriber `s` has room, has
    /// gone, or the deadline passes.
    fn wait_for_space(
        &self,
        st: &mut Guard<'_, State<M, B>>,
        s: u32,
        deadline: Instant,
    ) -> Result<()> {
        let flags = self.port.flags();
        // From now on subscribers fence before looking whether we wait (once per publisher).
        let reliable = barrier::announce(&flags.may_block, barrier::light_side_may_skip());
        let mine = &flags.space;
        let shared = &self.topic.publisher(self.index).space;
        loop {
            // Take back what it returned: a subscriber that scribbled on its completions is
            // disconnected here, not waited for.
            let State { conns, pool, .. } = &mut **st;
            let Some(conn) = conns[s as usize].as_mut() else { return Ok(()) };
            conn.drain(&self.topic, pool);
            if conn.dead || conn.left() {
                self.disconnect(st, s);
                return Ok(());
            }
            if conn.has_room(&self.topic.layout) {
                return Ok(());
            }
            let (token, pid) = (conn.token, conn.pid);
            if !self.topic.token_alive(token) {
                self.topic.reap(SUBSCRIBER, s);
                self.disconnect(st, s);
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::PublishTimeout {
                    topic: self.topic.name.clone(),
                    subscriber_pid: pid,
                    waited: self.block_timeout,
                });
            }
            let mut slice = (now + self.interval).min(deadline);
            if !reliable {
                slice = slice.min(now + Duration::from_millis(1));
            }
            let probe = st.conns[s as usize].as_ref().map(|c| c.room_probe(&self.topic.layout));
            let woke = st.unlocked(|| {
                wait::wait_until_shared::<B>(
                    &self.space_waiter,
                    mine,
                    shared,
                    Some(slice),
                    64,
                    || probe.as_ref().is_none_or(|p| p.ready()),
                )
            });
            woke?;
        }
    }

    /// After the `Publisher` was dropped: once every sample is back (or its holder dead), free
    /// the pool and the port, leave the slot and, if we were the last, the topic.
    fn try_finish(&self, st: &mut State<M, B>) -> bool {
        if st.finished {
            return true;
        }
        st.pool.forget_history();
        self.maintain(st, true);
        // A subscriber is let go once it holds nothing and has read what was queued for it
        // (inline messages live in our port until read), or has left.
        for s in st.connected.clone() {
            if st.conns[s as usize].as_mut().is_some_and(|c| c.done_with()) {
                self.disconnect(st, s);
            }
        }
        if !st.pool.all_free() || !st.connected.is_empty() {
            return false;
        }
        st.finished = true;
        for s in std::mem::take(&mut st.connected) {
            self.disconnect(st, s);
        }
        if self.lingering.swap(false, Ordering::AcqRel) {
            heap::linger_end();
        }
        // Whoever still looks at our port must not take it for ours any more, whatever the
        // heap reuses the memory for.
        self.port.header().key.store(0, Ordering::Release);
        self.heap.free(self.pool_at);
        self.heap.free(self.port_at);
        membership::release(&self.topic, PUBLISHER, self.index);
        self.topic.bump_epoch();
        let generation =
            self.topic.member(PUBLISHER, self.index).generation.load(Ordering::Acquire);
        self.topic.clean_channels(PUBLISHER, self.index, generation);
        drop(st.token.take());
        self.topic.leave();
        true
    }

    /// At process exit with samples still out: stop, but leave the slot `CLOSING` and the
    /// heap's segment in place, so subscribers can still read what we queued for them (their
    /// mapping of our heap keeps it alive). The slot is disowned (it records no token, see
    /// `membership::disown`): whoever finds it dead reclaims it and removes the heap segment
    /// (once our process is gone) and, if nobody is left, the topic.
    fn abandon(&self) {
        // The service thread may be finishing us right now (its sections are short): wait for
        // it, so the process does not exit half-way through; but not forever.
        let give_up = Instant::now() + Duration::from_secs(2);
        let mut st = loop {
            if let Some(st) = self.state.try_lock() {
                break st;
            }
            if Instant::now() >= give_up {
                return;
            }
            std::thread::yield_now();
        };
        if self.try_finish(&mut st) {
            return;
        }
        st.finished = true;
        // Our process lives on a little (and its token with it, for its other participants):
        // the slot reads dead from now on.
        membership::disown(&self.topic, PUBLISHER, self.index);
        self.topic.bump_epoch();
        drop(st.token.take());
        drop(st);
        #[cfg(not(miri))]
        exit_pause_point();
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> Serviced for Core<M, B> {
    fn serve(&self) -> Serve {
        let Some(mut st) = self.state.try_lock() else { return Serve::Busy };
        if st.finished {
            return Serve::Done;
        }
        if st.publishing {
            // A publish waits for room; it connects newcomers when it is done.
            return Serve::Busy;
        }
        let closing = self.closing.load(Ordering::Acquire);
        if !closing && self.topic.epoch() == st.epoch {
            // Nobody arrived or left here: the bell was for another topic of this process.
            // Returns are taken back on the publisher's next call.
            return Serve::Idle;
        }
        self.maintain(&mut st, closing);
        if !closing {
            return Serve::Idle;
        }
        if self.try_finish(&mut st) { Serve::Done } else { Serve::Pending }
    }
}

/// The sequence and payload words of the inline message in slot `i` (the layout chose inline
/// only for types of at most `INLINE_WORDS` words without uninitialised bytes).
fn inline_words<M>(pool: &Pool<M>, i: u32) -> (u64, [u64; INLINE_WORDS]) {
    debug_assert!(size_of::<M>() <= 8 * INLINE_WORDS);
    let slot = pool.slot(i);
    let mut words = [0u64; INLINE_WORDS];
    // SAFETY: the slot holds an initialised `M` (published or remembered), whose bytes are all
    // initialised (`NO_UNINIT`); they fit the buffer (checked by the layout's choice).
    unsafe {
        let value = std::ptr::addr_of!((*slot.as_ptr()).value).cast::<u8>();
        std::ptr::copy_nonoverlapping(value, words.as_mut_ptr().cast::<u8>(), size_of::<M>());
        ((*slot.as_ptr()).sequence, words)
    }
}

/// Hook for tests: in `exit`, after a lingering publisher handed over (its slot disowned, its
/// process not yet gone), wait until the test removes the marker file named by
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

impl<M: ShmMessage + Send, B: WaitBackend> fmt::Debug for Publisher<M, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.core.topic.name)
            .field("type", &M::TYPE_NAME)
            .field("slot", &self.core.index)
            .finish()
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> Drop for Publisher<M, B> {
    fn drop(&mut self) {
        let core = &*self.core;
        let member = &core.topic.publisher(core.index).member;
        let _ = member.state.compare_exchange(ACTIVE, CLOSING, Ordering::AcqRel, Ordering::Relaxed);
        core.port.flags().closing.store(1, Ordering::Release);
        core.closing.store(true, Ordering::Release);
        core.topic.bump_epoch();
        {
            let mut st = core.state.lock();
            if core.try_finish(&mut st) {
                return;
            }
            // Counted before the lock goes: whoever finishes us (the service thread) uncounts.
            heap::linger_begin();
            core.lingering.store(true, Ordering::Release);
        }
        // Subscribers still hold samples: the service thread finishes us when they come back
        // (they ring our bell) or their holders die. Should the process exit first, hand over
        // to the others on the way out.
        let lingering = Arc::downgrade(&self.core);
        crate::liveness::on_exit(Box::new(move || {
            if let Some(core) = lingering.upgrade() {
                core.abandon();
            }
        }));
        service::adopt(Arc::clone(&self.core) as Arc<dyn Serviced>);
        service::poke();
    }
}
