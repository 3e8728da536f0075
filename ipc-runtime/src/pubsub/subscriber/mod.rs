//! [`Subscriber`]: takes slot indices from its rings and reads the messages in place.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the public type, receiving, returning samples, leaving |
//! | `builder.rs` | [`SubscriberBuilder`] |
//! | `conn.rs` | one publisher: its mapped port and pool, our side of the pair |
//! | `sleep.rs` | how receiving threads sleep, one or many at a time |
//!
//! A subscriber owns its port (head positions, completion rings, sleep registration) in its
//! own heap; publishers map it read-only. It maps each publisher's port and pool read-only
//! when it first sees the publisher, so samples stay readable even if the publisher dies. Its
//! bookkeeping is process-local behind a spin lock taken once per receive and once per
//! returned sample; receiving issues no fence and no system call (see `ring.rs`).
//!
//! A publisher's heap stays mapped here while we read from it and while a sample of it is out:
//! a connection keeps its port (which holds the heap, see `port.rs`); a connection forgotten
//! while samples of it are out leaves its hold *parked* until the last of them is returned; a
//! sleeping thread keeps the holds of the wake words it sleeps on. Then, once the publisher's
//! process is dead, its heap is unmapped (address space does not grow with every restart of a
//! publisher).

mod builder;
mod conn;
mod sleep;
mod waitset;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use builder::SubscriberBuilder;

use super::options::{OptionRequest, Overflow};
use super::port::{self, PeerHold, SubPort};
use super::publisher::DEFAULT_INTERVAL;
use super::ring::{INLINE_WORDS, Take};
use super::sample::{Held, Sample};
use super::topic::{PUBLISHER, SUBSCRIBER, TopicSegment, write_heap_ref};
use crate::barrier;
use crate::error::{Error, Result};
use crate::heap::{self, Heap};
use crate::membership::{self, ACTIVE, CLOSING, Presence};
use crate::message::ShmMessage;
use crate::ptr::RelPtr;
use crate::spin::SpinLock;
use crate::wait::{self, DefaultBackend, WaitBackend, WaitWord};
use conn::Conn;
use sleep::{Baton, Sleeper};

/// Receives messages of type `M` from a topic.
///
/// A subscriber may be shared between threads: each gets its own messages, and each blocking
/// call keeps its own deadline.
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
    /// Shared with the async waiter while it sleeps on the topic's words.
    topic: Arc<TopicSegment>,
    index: u32,
    /// Our port's key (what publishers write into the ring they give us).
    key: u64,
    heap: &'static Heap,
    port: SubPort,
    port_at: RelPtr,
    token: Option<Presence>,
    /// Shared with the async waiter while it sleeps on it.
    waiter: Arc<B::Waiter>,
    baton: Baton,
    state: SpinLock<State<B>>,
    /// Whether the topic's overflow policy is `Block` (publishers may wait for us to consume).
    block: bool,
    spin: u32,
    interval: Duration,
    fail_without_publishers: bool,
    _message: PhantomData<fn() -> M>,
}

struct State<B: WaitBackend> {
    epoch: u64,
    /// Publishers by slot.
    pubs: Vec<Option<Conn<B>>>,
    next: usize,
    borrowed: u32,
    seen_publisher: bool,
    /// Connections forgotten while samples of them were out: their heaps stay held until the
    /// last of those samples is returned.
    parked: Vec<Parked>,
}

/// What is left of a forgotten connection while samples of it are out.
struct Parked {
    /// The connection's serial (what its samples remember).
    conn: u64,
    /// Its samples still out.
    outstanding: u32,
    /// Keeps the publisher's heap, which the samples point into, mapped.
    _hold: Arc<PeerHold>,
}

impl<B: WaitBackend> State<B> {
    /// Gives back sample slot `slot` of publisher `p`, taken through connection `serial`: to
    /// that connection if it is still the publisher's, else (the publisher is gone or was
    /// replaced, and reclaimed everything we held) to the connection's parked hold on its heap.
    /// Returns the parked hold once its last sample is back, for the caller to drop outside the
    /// lock (which may unmap the heap).
    fn give_back(&mut self, p: usize, serial: u64, slot: u32) -> Option<Parked> {
        self.borrowed -= 1;
        match self.pubs[p].as_mut() {
            Some(conn) if conn.serial == serial => {
                conn.outstanding -= 1;
                conn.give_back(slot);
                None
            }
            _ => {
                let at = self.parked.iter().position(|parked| parked.conn == serial)?;
                self.parked[at].outstanding -= 1;
                (self.parked[at].outstanding == 0).then(|| self.parked.swap_remove(at))
            }
        }
    }

    /// Forgets the connection to publisher `p`. Samples of it still out keep its heap mapped
    /// (its hold is parked until they are returned).
    fn forget(&mut self, p: usize) {
        let Some(conn) = self.pubs[p].take() else { return };
        if conn.outstanding > 0
            && let Some(hold) = conn.hold()
        {
            self.parked.push(Parked {
                conn: conn.serial,
                outstanding: conn.outstanding,
                _hold: hold,
            });
        }
    }
}

// SAFETY: mapped addresses point into our own heap (mapped for the life of the process) or into
// publishers' heaps held while they are used (module docs); shared state is atomics or behind
// `state`'s lock. Samples hand out `&M` to other threads, hence `M: Sync`.
unsafe impl<M: ShmMessage + Sync, B: WaitBackend> Send for Subscriber<M, B> {}
// SAFETY: as above.
unsafe impl<M: ShmMessage + Sync, B: WaitBackend> Sync for Subscriber<M, B> {}

impl<M: ShmMessage> Subscriber<M> {
    /// A subscriber on `topic` with default options (see [`Subscriber::builder`]).
    ///
    /// # Errors
    /// As [`SubscriberBuilder::create`].
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
    fn create(builder: SubscriberBuilder<M, B>) -> Result<Self> {
        let domain = match builder.domain {
            Some(domain) => {
                crate::domain::validate_domain(&domain)?;
                domain
            }
            None => crate::domain::current().to_owned(),
        };
        let heap = heap::default_heap()?;
        let light = barrier::register();
        let (topic, lock) = TopicSegment::join::<M, B>(&domain, &builder.topic, &builder.request)?;
        let claim = topic.claim(SUBSCRIBER)?;
        let (index, generation) = (claim.index, claim.generation);
        let entry = topic.subscriber(index);
        let setup =
            SubPort::create(heap, topic.layout, index, generation, light).and_then(|(port, at)| {
                let channel = topic.channel(SUBSCRIBER, index, generation, "");
                match B::waiter(&channel, &entry.word) {
                    Ok(waiter) => Ok((port, at, waiter)),
                    Err(err) => {
                        heap.free(at);
                        Err(err)
                    }
                }
            });
        let (port, port_at, waiter) = match setup {
            Ok(parts) => parts,
            Err(err) => {
                membership::release(&topic, SUBSCRIBER, index);
                drop(claim.token);
                topic.remove_if_unused(lock);
                return Err(err);
            }
        };
        write_heap_ref(&entry.heap, heap);
        entry.port.store(port_at.offset(), Ordering::Release);
        membership::activate(&topic, SUBSCRIBER, index);
        drop(lock);
        topic.bump_epoch();
        let max_publishers = topic.layout.options.max_publishers;
        let block = topic.layout.options.overflow == Overflow::Block;
        let subscriber = Subscriber {
            key: port.header().key.load(Ordering::Relaxed),
            topic: Arc::new(topic),
            index,
            heap,
            port,
            port_at,
            token: Some(claim.token),
            waiter: Arc::new(waiter),
            baton: Baton::default(),
            state: SpinLock::new(State {
                epoch: u64::MAX,
                pubs: (0..max_publishers).map(|_| None).collect(),
                next: 0,
                borrowed: 0,
                seen_publisher: false,
                parked: Vec::new(),
            }),
            block,
            spin: builder.spin,
            interval: builder.interval,
            fail_without_publishers: builder.fail_without_publishers,
            _message: PhantomData,
        };
        // Publishers idle right now connect us (and hand us their history) when rung.
        let mut st = subscriber.state.lock();
        subscriber.refresh(&mut st);
        for conn in st.pubs.iter().flatten() {
            conn.ring();
        }
        drop(st);
        Ok(subscriber)
    }

    /// Re-reads the publisher slots if someone arrived or left. A publisher we read from is
    /// forgotten only when it is dead or finished (its queue stays readable until empty), never
    /// because the registry changed under it.
    fn refresh(&self, st: &mut State<B>) {
        let epoch = self.topic.epoch();
        if epoch == st.epoch {
            return;
        }
        // Someone arrived or left: a good moment to give back the heaps of peers since dead.
        port::sweep_dead_peers();
        let mut complete = true;
        for p in 0..self.topic.layout.options.max_publishers {
            let entry = self.topic.publisher(p);
            let state = entry.member.state.load(Ordering::Acquire);
            let generation = entry.member.generation.load(Ordering::Acquire);
            let present = (state == ACTIVE || state == CLOSING) && generation != 0;
            if let Some(conn) = &mut st.pubs[p as usize] {
                if conn.generation == generation && present {
                    continue;
                }
                if !conn.gone && !conn.finished() && self.topic.token_alive(conn.token) {
                    // The registry changed but the publisher we read lives: keep it.
                    continue;
                }
                conn.gone = true;
                if conn.ready(self.key) {
                    // What it left stays readable; the slot's new publisher waits.
                    complete = false;
                    continue;
                }
                st.forget(p as usize);
            }
            if present {
                match Conn::connect::<M>(
                    &self.topic,
                    &self.port,
                    self.index,
                    p,
                    generation,
                    self.block,
                ) {
                    Ok(conn) if st.pubs.iter().flatten().any(|c| c.key == conn.key) => {
                        // Another slot's entry names a port we read already: a copy of a
                        // registry entry (anyone may write the registry), not a publisher.
                        tracing::warn!(topic = %self.topic.name, publisher = p, "a registry entry names a publisher we already read from; ignored");
                    }
                    Ok(conn) => {
                        st.pubs[p as usize] = Some(conn);
                        st.seen_publisher = true;
                    }
                    Err(err) if !self.topic.alive(PUBLISHER, p, generation) => {
                        // Dead, and its heap perhaps already given back (unmapped, see
                        // `port.rs`): nothing to read, and no point in trying again.
                        tracing::debug!(topic = %self.topic.name, publisher = p, %err, "a dead publisher cannot be read");
                    }
                    Err(err) => {
                        tracing::warn!(topic = %self.topic.name, publisher = p, %err, "cannot read a publisher's samples");
                        complete = false;
                    }
                }
            }
        }
        if complete {
            st.epoch = epoch;
        }
    }

    /// Takes the next message if one is queued; never blocks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidMessage`] if the next message fails its validity check
    /// ([`ShmSafe::check_bits`](crate::ShmSafe::check_bits)): it went back to its publisher
    /// unread, and the next call goes on with later messages. [`Error::Corrupted`] if a
    /// publisher wrote garbage into its ring, [`Error::TooManyBorrowed`] if `max_borrowed`
    /// samples are held.
    pub fn try_receive(&self) -> Result<Option<Sample<'_, M, B>>> {
        let mut st = self.state.lock();
        self.refresh(&mut st);
        let count = st.pubs.len();
        // Round robin over the publishers, from the one after the last served.
        for k in 0..count {
            let p = match st.next + k {
                p if p >= count => p - count,
                p => p,
            };
            let got = if self.topic.layout.inline {
                self.take_inline(&mut st, p)?
            } else {
                self.take_pooled(&mut st, p)?
            };
            let Some((sequence, held)) = got else { continue };
            if let Err(invalid) = held.check() {
                return Err(self.reject(&mut st, p, sequence, held, invalid));
            }
            st.next = if p + 1 == count { 0 } else { p + 1 };
            // Only we write this counter (tools read it): no read-modify-write needed.
            let received = &self.port.input(p as u32).received;
            received.store(received.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            // Built here, once: a sample moved through several returns costs more than the
            // rest of a receive.
            let generation = st.pubs[p].as_ref().map_or(0, |conn| conn.generation);
            return Ok(Some(Sample {
                subscriber: self,
                publisher: p as u32,
                generation,
                sequence,
                held,
            }));
        }
        if crate::segment::any_truncated() {
            return self.truncated_publisher(&mut st).map_or(Ok(None), Err);
        }
        Ok(None)
    }

    /// The error for the first publisher we read from whose heap another process truncated
    /// (see [`Segment::was_truncated`](crate::segment::Segment::was_truncated)): reported once,
    /// and nothing more is read from it.
    #[cold]
    fn truncated_publisher(&self, st: &mut State<B>) -> Option<Error> {
        for (p, conn) in st.pubs.iter_mut().enumerate() {
            let Some(conn) = conn.as_mut().filter(|c| !c.broken) else { continue };
            if let Some(heap) = conn.truncated_heap() {
                conn.broken = true;
                let what = format!(
                    "topic `{}`: publisher {p}: its heap, segment `{heap}`, was truncated by another process; nothing more is read from it",
                    self.topic.name
                );
                tracing::error!("{what}");
                return Some(Error::Corrupted { what });
            }
        }
        None
    }

    /// The next inline message from publisher `p`: a copy, nothing to return.
    #[inline]
    fn take_inline(&self, st: &mut State<B>, p: usize) -> Result<Option<(u64, Held<M>)>> {
        let Some(conn) = st.pubs[p].as_mut().filter(|c| !c.broken) else { return Ok(None) };
        let mut words = [0u64; INLINE_WORDS + 1];
        match conn.take_inline(self.key, &mut words) {
            Take::Inline { .. } => {
                if self.block {
                    conn.wake_publisher(&self.topic);
                }
                if conn.closing() {
                    // It finishes once we have read what it queued for us.
                    conn.ring();
                }
                let [sequence, payload @ ..] = words;
                Ok(Some((sequence, Held::Copy(payload))))
            }
            other => self.not_taken(st, p, other).map_or(Ok(None), Err),
        }
    }

    /// The next message from publisher `p`: a slot of its pool, returned when dropped.
    #[inline]
    fn take_pooled(&self, st: &mut State<B>, p: usize) -> Result<Option<(u64, Held<M>)>> {
        let max_borrowed = self.topic.layout.options.max_borrowed;
        let borrowed = st.borrowed;
        let Some(conn) = st.pubs[p].as_mut().filter(|c| !c.broken) else { return Ok(None) };
        if borrowed >= max_borrowed {
            if conn.ready(self.key) {
                return Err(Error::TooManyBorrowed {
                    topic: self.topic.name.clone(),
                    max: max_borrowed,
                });
            }
            return Ok(None);
        }
        match conn.take(self.key) {
            Take::Message { slot, .. } => {
                if self.block {
                    conn.wake_publisher(&self.topic);
                }
                let sample = conn.sample::<M>(slot);
                // SAFETY: the slot is in the mapped pool; the publisher wrote the sequence
                // before delivering the index, and leaves the slot alone until we return it.
                // Volatile: the bytes are another process's.
                let sequence =
                    unsafe { std::ptr::addr_of!((*sample.as_ptr()).sequence).read_volatile() };
                let serial = conn.serial;
                conn.outstanding += 1;
                st.borrowed += 1;
                Ok(Some((sequence, Held::Slot { slot: sample, conn: serial, index: slot })))
            }
            other => self.not_taken(st, p, other).map_or(Ok(None), Err),
        }
    }

    /// A message from publisher `p` failed its validity check: give it back unread (as if a
    /// sample of it were dropped), move on to the next publisher, and report it.
    #[cold]
    #[inline(never)]
    fn reject(
        &self,
        st: &mut State<B>,
        p: usize,
        sequence: u64,
        held: Held<M>,
        invalid: crate::message::InvalidValue,
    ) -> Error {
        st.next = if p + 1 == st.pubs.len() { 0 } else { p + 1 };
        if let Held::Slot { conn: serial, index, .. } = held {
            // Taken just now through the publisher's current connection: never parked.
            let parked = st.give_back(p, serial, index);
            debug_assert!(parked.is_none());
        }
        let err = Error::InvalidMessage {
            topic: self.topic.name.clone(),
            publisher: p as u32,
            pid: self.topic.publisher(p as u32).member.pid.load(Ordering::Relaxed),
            sequence,
            field: invalid.path(M::TYPE_NAME),
            found: invalid.found().to_owned(),
            expected: invalid.expected().to_owned(),
        };
        tracing::warn!("{err}");
        err
    }

    /// What `try_receive` does when publisher `p`'s ring gave no message.
    #[cold]
    fn not_taken(&self, st: &mut State<B>, p: usize, take: Take) -> Option<Error> {
        let conn = st.pubs[p].as_mut()?;
        match take {
            Take::Empty | Take::Disconnected => {
                if conn.gone {
                    // What a departed publisher left is read: forget it.
                    st.forget(p);
                    st.epoch = u64::MAX;
                }
                None
            }
            Take::Corrupt(corrupt) => {
                conn.broken = true;
                let what = format!(
                    "topic `{}`: publisher {p} wrote garbage into its ring: {}; nothing more is read from it",
                    self.topic.name, corrupt.0
                );
                tracing::error!("{what}");
                Some(Error::Corrupted { what })
            }
            Take::Message { .. } | Take::Inline { .. } => None,
        }
    }

    /// Whether `try_receive` may find something: the wake-up condition of blocking receives.
    fn has_data(&self) -> bool {
        if self.topic.epoch() != self.state.lock().epoch {
            return true;
        }
        let st = self.state.lock();
        st.pubs.iter().flatten().any(|conn| conn.ready(self.key))
    }

    /// Waits for the next message without spinning (after the configured spin).
    ///
    /// # Errors
    /// As [`try_receive`](Self::try_receive); also
    /// [`Error::NoPublisher`](crate::Error::NoPublisher) if the subscriber was built with
    /// [`fail_without_publishers`](SubscriberBuilder::fail_without_publishers) and no publisher is
    /// alive, and the backend's error (usually [`Error::Io`](crate::Error::Io)) if sleeping fails.
    pub fn receive(&self) -> Result<Sample<'_, M, B>> {
        loop {
            if let Some(sample) = self.receive_until(None)? {
                return Ok(sample);
            }
        }
    }

    /// Waits up to `timeout` for the next message; `None` if none came.
    ///
    /// # Errors
    /// As [`try_receive`](Self::try_receive); also
    /// [`Error::NoPublisher`](crate::Error::NoPublisher) if the subscriber was built with
    /// [`fail_without_publishers`](SubscriberBuilder::fail_without_publishers) and no publisher is
    /// alive, and the backend's error (usually [`Error::Io`](crate::Error::Io)) if sleeping fails.
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
    ///
    /// # Errors
    /// As [`try_receive`](Self::try_receive); also
    /// [`Error::NoPublisher`](crate::Error::NoPublisher) if the subscriber was built with
    /// [`fail_without_publishers`](SubscriberBuilder::fail_without_publishers) and no publisher is
    /// alive, and the backend's error (usually [`Error::Io`](crate::Error::Io)) if sleeping fails.
    pub fn receive_with<R>(&self, f: impl FnOnce(&M) -> R, timeout: Duration) -> Result<Option<R>> {
        Ok(self.receive_timeout(timeout)?.map(|sample| f(&sample)))
    }

    fn sleeper(&self) -> Sleeper<'_, B> {
        let sleep = self.port.sleep();
        Sleeper {
            waiter: &self.waiter,
            mine: &sleep.word,
            baton: &self.baton,
            may_sleep: &sleep.may_sleep,
            spin: self.spin,
        }
    }

    /// What to sleep on (we register in our own port, which is what publishers check). With a
    /// broadcasting backend: the wake words of the publishers we read from (in their ports,
    /// which only they write, so one wake reaches all their sleeping subscribers and nobody
    /// can roll a word back under us), and the topic's word, which a new publisher rings.
    /// Otherwise our own word in the registry, with the wake kept in our OS object.
    ///
    /// Also returns the holds on the heaps those words lie in: the caller keeps them while it
    /// sleeps, so that a publisher forgotten meanwhile (by another thread) is not unmapped under
    /// a sleeper.
    fn sleep_words(&self) -> (Vec<&WaitWord>, Vec<Arc<PeerHold>>) {
        if !B::BROADCAST {
            return (vec![&self.topic.subscriber(self.index).word], Vec::new());
        }
        let st = self.state.lock();
        let mut words = Vec::with_capacity(1 + st.pubs.len());
        words.push(self.topic.data_word());
        words.extend(st.pubs.iter().flatten().map(|conn| conn.wake));
        let holds = st.pubs.iter().flatten().filter_map(|conn| conn.hold()).collect();
        (words, holds)
    }

    fn receive_until(&self, deadline: Option<Instant>) -> Result<Option<Sample<'_, M, B>>> {
        let sleeper = self.sleeper();
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
            // The words stay valid while `_holds` lives (see `sleep_words`).
            let (words, _holds) = self.sleep_words();
            let ready = match sleeper.sleep(&words, slice, || self.has_data()) {
                Ok(ready) => ready,
                // A word we sleep on may be in a heap another process truncated (the kernel
                // says EFAULT): name that rather than the system call.
                Err(err) => {
                    return Err(self.truncated_publisher(&mut self.state.lock()).unwrap_or(err));
                }
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.try_receive();
            }
            if ready {
                continue;
            }
            if self.fail_without_publishers
                && self.publishers_alive() == 0
                && self.state.lock().seen_publisher
                && !self.has_data()
            {
                return Err(Error::NoPublisher { topic: self.topic.name.clone() });
            }
        }
    }

    /// Called when a sample is dropped: return its slot to the publisher.
    pub(crate) fn release(&self, p: u32, serial: u64, slot: u32) {
        let mut st = self.state.lock();
        let parked = st.give_back(p as usize, serial, slot);
        // A departed publisher's heap, kept for our samples, is let go (perhaps unmapped)
        // outside the lock.
        drop(st);
        drop(parked);
    }

    /// Number of publishers alive on the topic. Reclaims the slots of dead ones (and removes
    /// their heap segments); samples already received from them stay readable.
    pub fn publishers_alive(&self) -> usize {
        (0..self.topic.layout.options.max_publishers)
            .filter(|&p| {
                let member = &self.topic.publisher(p).member;
                let state = member.state.load(Ordering::Acquire);
                (state == ACTIVE || state == CLOSING) && !self.topic.reap(PUBLISHER, p)
            })
            .count()
    }

    /// Probes publishers now and reclaims the slots of dead ones (see
    /// [`publishers_alive`](Self::publishers_alive)); unmaps the heaps of peers found dead
    /// since this process last read from them (once no sample of theirs is out).
    ///
    /// # Errors
    /// The errors of taking the topic's lock, which reaping needs:
    /// [`Error::LockTimeout`](crate::Error::LockTimeout) if another process holds it longer than
    /// the [lock timeout](crate::liveness::lock_timeout), and
    /// [`Error::UntrustedObject`](crate::Error::UntrustedObject) or [`Error::Io`](crate::Error::Io)
    /// if its file is not ours or cannot be opened or locked.
    pub fn cleanup(&self) -> Result<()> {
        self.publishers_alive();
        port::sweep_dead_peers();
        let mut st = self.state.lock();
        for conn in st.pubs.iter_mut().flatten() {
            conn.flush();
        }
        Ok(())
    }

    /// Whether a thread of this subscriber is asleep (registered) waiting for data (tests).
    #[cfg(test)]
    pub(crate) fn sleeping(&self) -> bool {
        self.port.sleep().word.waiters() != 0
    }

    /// Test seam: behaves like a buggy or hostile subscriber by writing `values` into its
    /// completion ring towards publisher slot `publisher` (and, if `wreck_tail`, a nonsensical
    /// tail). The publisher must reject all of it without harm.
    #[cfg(feature = "test-seams")]
    #[doc(hidden)]
    pub fn debug_scribble_completion(&self, publisher: u32, values: &[u32], wreck_tail: bool) {
        let mut st = self.state.lock();
        if let Some(conn) = st.pubs.get_mut(publisher as usize).and_then(Option::as_mut) {
            let raw: Vec<u64> = values.iter().map(|&v| v as u64).collect();
            conn.scribble(&raw, wreck_tail);
        }
    }

    /// Test seam: overwrites everything this subscriber writes in shared memory — its whole
    /// port (head positions, completion rings, sleep registration, state, key) and its registry
    /// entry — with pseudo-random bytes from `seed`, as a buggy or hostile subscriber could.
    /// Publishers and other subscribers must not be harmed by it.
    #[doc(hidden)]
    pub fn debug_scribble_port(&self, seed: u64) {
        let _st = self.state.lock();
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        self.port.scribble(&mut next);
        let entry = self.topic.subscriber(self.index);
        let words = size_of::<super::layout::SubscriberEntry>() / 8;
        let base = std::ptr::from_ref(entry).cast::<std::sync::atomic::AtomicU64>();
        for w in 0..words {
            // SAFETY: the entry is `words` × 8 bytes of atomics and integers in the mapped,
            // writable topic segment, 64-aligned; any bit pattern is valid for them.
            unsafe { (*base.add(w)).store(next(), Ordering::Relaxed) };
        }
    }

    #[cfg(test)]
    pub(crate) fn debug_state(&self) -> String {
        let st = self.state.lock();
        format!(
            "epoch {} vs {}, pubs: {:?}",
            st.epoch,
            self.topic.epoch(),
            st.pubs.iter().map(|c| c.as_ref().map(|c| c.debug())).collect::<Vec<_>>()
        )
    }

    /// Samples currently borrowed from this subscriber.
    pub fn borrowed(&self) -> u32 {
        self.state.lock().borrowed
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// The topic's overflow policy (fixed by its first participant).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-suboverflow-{}", std::process::id())).unwrap();
    /// let subscriber = Subscriber::<u64>::builder("doc/blocking").overflow(Overflow::Block).create()?;
    /// assert_eq!(subscriber.overflow(), Overflow::Block);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn overflow(&self) -> Overflow {
        if self.block { Overflow::Block } else { Overflow::DropOldest }
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
        // Every sample borrowed from us is gone (they borrow `self`). Say so in our own port
        // first (publishers believe that), then leave the registry; publishers take back what
        // is still queued for us when they notice, which ringing their bells makes prompt.
        let header = self.port.header();
        header.state.store(super::layout::PORT_LEFT, Ordering::Release);
        header.key.store(0, Ordering::Release);
        membership::release(&*self.topic, SUBSCRIBER, self.index);
        self.topic.bump_epoch();
        let st = self.state.lock();
        for conn in st.pubs.iter().flatten() {
            conn.ring();
        }
        drop(st);
        drop(self.token.take());
        self.topic.leave();
        // Publishers that still look at our port read it as gone, whatever the heap reuses it
        // for (they check the state word and our token, and validate everything else).
        self.heap.free(self.port_at);
    }
}
