//! The receiving side: [`Listener`] and its builder.
//!
//! Taking an event is lock-free (a compare-and-swap on the id's counter). Sleeping goes through
//! the waiting seam; threads that share one listener take turns at sleeping (a process-local
//! gate), because a backend only promises to wake one sleeper per waiter — the one asleep wakes
//! for every event and hands over when it returns, so no thread sleeps through a pending event.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::EventId;
use super::channel::{Channel, LISTENER, ListenerRef, Membership, NOTIFIER, Options};
use crate::error::{Error, Result};
use crate::wait::{self, DefaultBackend, WaitBackend};

mod waitset;

/// How often a listener that watches its notifiers probes their liveness while it waits, unless
/// set with [`ListenerBuilder::liveness_interval`].
///
/// ```
/// assert_eq!(ipc_runtime::event::DEFAULT_LIVENESS_INTERVAL.as_millis(), 100);
/// ```
pub const DEFAULT_LIVENESS_INTERVAL: Duration = Duration::from_millis(100);

/// Receives the events of a channel: every event any notifier sends while it is a member.
///
/// Events wait in the listener until taken, counted per id (see the [module
/// docs](super#semantics)). All methods take `&self`; several threads may wait on one listener,
/// and each event is taken by exactly one of them.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-listener-{}", std::process::id())).unwrap();
/// let name = "alarms";
/// let listener = Listener::new(&name)?;
/// let notifier = Notifier::new(&name)?;
/// std::thread::scope(|s| {
///     s.spawn(|| notifier.notify(EventId::new(5)).unwrap());
///     assert_eq!(listener.wait().unwrap(), EventId::new(5));
/// });
/// assert_eq!(listener.wait_timeout(Duration::from_millis(10))?, None);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct Listener<B: WaitBackend = DefaultBackend> {
    /// Shared with the async waiter while it sleeps on the slot's word.
    channel: std::sync::Arc<Channel>,
    membership: Membership,
    /// Shared with the async waiter while it sleeps on it.
    waiter: std::sync::Arc<B::Waiter>,
    /// Wakes our own sleeper after a take had to put a bit back (see `clear_bit`).
    self_waker: B::Waker,
    spin: u32,
    watch: WatchOptions,
    /// Id to start the next search at (round-robin between ids).
    cursor: AtomicUsize,
    gate: Gate,
    state: Mutex<WatchState>,
}

#[derive(Debug, Clone, Copy)]
struct WatchOptions {
    deaths: bool,
    none: bool,
    interval: Duration,
}

impl WatchOptions {
    fn any(&self) -> bool {
        self.deaths || self.none
    }
}

/// What this listener knows about the channel's notifiers.
#[derive(Debug)]
struct WatchState {
    last_probe: Option<Instant>,
    /// `notifier_epoch` as of the last probe.
    epoch: u64,
    /// `notifier_deaths` already reported (or already there when we joined).
    deaths_seen: u64,
    /// `notifier_joins` as of the last probe.
    joins_seen: u64,
    /// Live notifiers at the last probe.
    alive: usize,
    /// A notifier has been alive since "none left" was last reported (or since joining).
    armed: bool,
}

impl Listener {
    /// Joins event channel `name` in the process's domain as a listener, with the default
    /// backend, creating the channel (with default options) if needed.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-listener-new-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::new(&name)?;
    /// assert_eq!(listener.try_wait()?, None);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`ListenerBuilder::create`].
    pub fn new(name: &str) -> Result<Listener> {
        Listener::with_backend(name)
    }

    /// A builder for a listener with options (domain, sizes, backend, spinning, liveness).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-listener-builder-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name)
    ///     .report_dead_notifiers(true)
    ///     .liveness_interval(Duration::from_millis(50))
    ///     .create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn builder(name: &str) -> ListenerBuilder {
        ListenerBuilder::new(name)
    }
}

impl<B: WaitBackend> Listener<B> {
    /// Like [`Listener::new`], with backend `B`.
    ///
    /// ```
    /// use ipc_runtime::event::Listener;
    /// use ipc_runtime::wait::Polling;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-listener-with-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = Listener::<Polling>::with_backend(&name)?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`ListenerBuilder::create`].
    pub fn with_backend(name: &str) -> Result<Listener<B>> {
        ListenerBuilder::<B>::new(name).create()
    }

    /// Takes one pending event, if any, without blocking.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-try-wait-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = Listener::new(&name)?;
    /// let notifier = Notifier::new(&name)?;
    /// assert_eq!(listener.try_wait()?, None);
    /// notifier.notify(EventId::new(2))?;
    /// assert_eq!(listener.try_wait()?, Some(EventId::new(2)));
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`](crate::Error::Corrupted) if the channel's shared state holds a
    /// value no participant could have written; with
    /// [`ListenerBuilder::report_dead_notifiers`] or [`ListenerBuilder::report_no_notifiers`],
    /// [`Error::NotifierDied`](crate::Error::NotifierDied) and
    /// [`Error::NoNotifiers`](crate::Error::NoNotifiers).
    pub fn try_wait(&self) -> Result<Option<EventId>> {
        self.wait_for(None, true, || self.take_one())
    }

    /// Takes one event, blocking until there is one.
    ///
    /// Returns an error only for corrupted shared state, an OS failure, or — if this listener
    /// asked for them — [`Error::NotifierDied`] / [`Error::NoNotifiers`].
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-wait-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = Listener::new(&name)?;
    /// let notifier = Notifier::new(&name)?;
    /// notifier.notify(EventId::new(8))?;
    /// assert_eq!(listener.wait()?, EventId::new(8));
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`](crate::Error::Corrupted) if the channel's shared state holds a
    /// value no participant could have written; the backend's error (usually
    /// [`Error::Io`](crate::Error::Io)) if sleeping fails; and, only if this listener asked for
    /// them ([`ListenerBuilder::report_dead_notifiers`], [`ListenerBuilder::report_no_notifiers`]),
    /// [`Error::NotifierDied`](crate::Error::NotifierDied) and
    /// [`Error::NoNotifiers`](crate::Error::NoNotifiers).
    pub fn wait(&self) -> Result<EventId> {
        loop {
            if let Some(id) = self.wait_for(None, false, || self.take_one())? {
                return Ok(id);
            }
        }
    }

    /// Takes one event, blocking at most `timeout`; `None` if none came in time.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-wait-timeout-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::new(&name)?;
    /// assert_eq!(listener.wait_timeout(Duration::from_millis(5))?, None);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`](crate::Error::Corrupted) if the channel's shared state holds a
    /// value no participant could have written; the backend's error (usually
    /// [`Error::Io`](crate::Error::Io)) if sleeping fails; and, only if this listener asked for
    /// them ([`ListenerBuilder::report_dead_notifiers`], [`ListenerBuilder::report_no_notifiers`]),
    /// [`Error::NotifierDied`](crate::Error::NotifierDied) and
    /// [`Error::NoNotifiers`](crate::Error::NoNotifiers).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<EventId>> {
        self.wait_for(wait::deadline(Some(timeout)), false, || self.take_one())
    }

    /// Takes every pending event without blocking, appending one `(id, count)` pair per pending
    /// id to `out` in ascending id order; returns the number of pairs appended (0 if nothing
    /// was pending).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-try-wait-all-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = Listener::new(&name)?;
    /// let notifier = Notifier::new(&name)?;
    /// for id in [4, 1, 4, 4] {
    ///     notifier.notify(EventId::new(id))?;
    /// }
    /// let mut events = Vec::new();
    /// assert_eq!(listener.try_wait_all(&mut events)?, 2);
    /// assert_eq!(events, [(EventId::new(1), 1), (EventId::new(4), 3)]);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`](crate::Error::Corrupted) if the channel's shared state holds a
    /// value no participant could have written; with
    /// [`ListenerBuilder::report_dead_notifiers`] or [`ListenerBuilder::report_no_notifiers`],
    /// [`Error::NotifierDied`](crate::Error::NotifierDied) and
    /// [`Error::NoNotifiers`](crate::Error::NoNotifiers).
    pub fn try_wait_all(&self, out: &mut Vec<(EventId, u64)>) -> Result<usize> {
        Ok(self.wait_for(None, true, || self.take_all(out))?.unwrap_or(0))
    }

    /// Like [`try_wait_all`](Self::try_wait_all), blocking until at least one event is pending.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-wait-all-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = Listener::new(&name)?;
    /// let notifier = Notifier::new(&name)?;
    /// notifier.notify(EventId::new(0))?;
    /// let mut events = Vec::new();
    /// assert_eq!(listener.wait_all(&mut events)?, 1);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`](crate::Error::Corrupted) if the channel's shared state holds a
    /// value no participant could have written; the backend's error (usually
    /// [`Error::Io`](crate::Error::Io)) if sleeping fails; and, only if this listener asked for
    /// them ([`ListenerBuilder::report_dead_notifiers`], [`ListenerBuilder::report_no_notifiers`]),
    /// [`Error::NotifierDied`](crate::Error::NotifierDied) and
    /// [`Error::NoNotifiers`](crate::Error::NoNotifiers).
    pub fn wait_all(&self, out: &mut Vec<(EventId, u64)>) -> Result<usize> {
        loop {
            if let Some(n) = self.wait_for(None, false, || self.take_all(out))? {
                return Ok(n);
            }
        }
    }

    /// Like [`wait_all`](Self::wait_all), blocking at most `timeout`; 0 if nothing came.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-wait-all-timeout-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::new(&name)?;
    /// let mut events = Vec::new();
    /// assert_eq!(listener.wait_all_timeout(&mut events, Duration::from_millis(5))?, 0);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`](crate::Error::Corrupted) if the channel's shared state holds a
    /// value no participant could have written; the backend's error (usually
    /// [`Error::Io`](crate::Error::Io)) if sleeping fails; and, only if this listener asked for
    /// them ([`ListenerBuilder::report_dead_notifiers`], [`ListenerBuilder::report_no_notifiers`]),
    /// [`Error::NotifierDied`](crate::Error::NotifierDied) and
    /// [`Error::NoNotifiers`](crate::Error::NoNotifiers).
    pub fn wait_all_timeout(
        &self,
        out: &mut Vec<(EventId, u64)>,
        timeout: Duration,
    ) -> Result<usize> {
        Ok(self.wait_for(wait::deadline(Some(timeout)), false, || self.take_all(out))?.unwrap_or(0))
    }

    /// Number of notifiers alive now (probes their liveness tokens, reaping dead ones).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-notifiers-alive-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = Listener::new(&name)?;
    /// assert_eq!(listener.notifiers_alive()?, 0);
    /// let notifier = Notifier::new(&name)?;
    /// assert_eq!(listener.notifiers_alive()?, 1);
    /// drop(notifier);
    /// assert_eq!(listener.notifiers_alive()?, 0);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// The errors of taking the channel's lock, which probing needs:
    /// [`Error::LockTimeout`](crate::Error::LockTimeout) if another process holds it longer than
    /// the [lock timeout](crate::liveness::lock_timeout), and
    /// [`Error::UntrustedObject`](crate::Error::UntrustedObject) or [`Error::Io`](crate::Error::Io)
    /// if its file is not ours or cannot be opened or locked.
    pub fn notifiers_alive(&self) -> Result<usize> {
        let mut state = self.state();
        self.probe(&mut state)?;
        Ok(state.alive)
    }

    /// The channel's name (without the domain).
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-listener-name-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::new(&name)?;
    /// assert_eq!(listener.name(), name);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.channel.name()
    }

    /// The largest id the channel accepts.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-listener-max-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name).max_event_id(7).create()?;
    /// assert_eq!(listener.max_event_id(), 7);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn max_event_id(&self) -> u64 {
        self.channel.layout().max_event_id
    }

    /// The loop behind every receive: liveness reports, take, then sleep until something is
    /// pending, the notifier set changed, a liveness probe is due, or the deadline passed.
    /// Returns `None` when `nonblocking` and nothing was taken, or when `deadline` passed.
    fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        nonblocking: bool,
        mut take: impl FnMut() -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        let shared = self.channel.shared();
        loop {
            let next_probe = if self.watch.any() { Some(self.watch_step()?) } else { None };
            if let Some(value) = take()? {
                return Ok(Some(value));
            }
            if self.watch.none {
                self.report_none_left()?;
            }
            if nonblocking || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let slice = match (deadline, next_probe) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let epoch = shared.notifier_epoch.load(Ordering::SeqCst);
            let watching = self.watch.any();
            let Some(_turn) = self.gate.enter(slice) else { continue };
            wait::wait_until::<B>(&self.waiter, self.slot().word(), slice, self.spin, || {
                self.any_pending()
                    || (watching && shared.notifier_epoch.load(Ordering::SeqCst) != epoch)
            })?;
        }
    }

    fn slot(&self) -> ListenerRef<'_> {
        self.channel.listener(self.membership.slot)
    }

    fn any_pending(&self) -> bool {
        let slot = self.slot();
        (0..self.channel.layout().words).any(|w| slot.bits(w).load(Ordering::Acquire) != 0)
    }

    /// Clears bits beyond the last id in `w` (if it is the last word), reporting them.
    fn check_garbage(&self, w: usize, bits: u64) -> Result<u64> {
        let layout = self.channel.layout();
        if w + 1 != layout.words {
            return Ok(bits);
        }
        let garbage = bits & !layout.last_word_mask();
        if garbage == 0 {
            return Ok(bits);
        }
        self.slot().bits(w).fetch_and(!garbage, Ordering::AcqRel);
        let first = w as u64 * 64 + u64::from(garbage.trailing_zeros());
        Err(Error::Corrupted {
            what: format!(
                "event `{}`: listener slot {} has pending bits for ids {first} and up \
                 (mask {garbage:#018x}), beyond max_event_id {}; cleared",
                self.channel.segment_name_str(),
                self.membership.slot,
                layout.max_event_id
            ),
        })
    }

    /// Takes one event: the first pending id at or after the cursor, wrapping around.
    fn take_one(&self) -> Result<Option<EventId>> {
        let layout = self.channel.layout();
        let slot = self.slot();
        let start = self.cursor.load(Ordering::Relaxed) % layout.ids;
        let (w0, b0) = (start / 64, start % 64);
        // Word w0 is visited twice: first its bits at and above b0, last the ones below.
        for k in 0..=layout.words {
            let w = (w0 + k) % layout.words;
            let raw = slot.bits(w).load(Ordering::Acquire);
            if raw == 0 {
                continue;
            }
            let mut bits = self.check_garbage(w, raw)?;
            if k == 0 {
                bits &= u64::MAX << b0;
            } else if k == layout.words {
                bits &= (1u64 << b0).wrapping_sub(1);
            }
            while bits != 0 {
                let index = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if self.take_from(&slot, index) {
                    self.cursor.store(index + 1, Ordering::Relaxed);
                    return Ok(Some(EventId::new(index as u64)));
                }
            }
        }
        Ok(None)
    }

    /// Takes every pending event as `(id, count)` pairs; `None` if there were none.
    fn take_all(&self, out: &mut Vec<(EventId, u64)>) -> Result<Option<usize>> {
        let layout = self.channel.layout();
        let slot = self.slot();
        let last = layout.words - 1;
        self.check_garbage(last, slot.bits(last).load(Ordering::Acquire))?;
        let before = out.len();
        for w in 0..layout.words {
            let mut bits = slot.bits(w).load(Ordering::Acquire);
            while bits != 0 {
                let index = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let counter = slot.counter(index);
                let count = counter.swap(0, Ordering::AcqRel);
                self.clear_bit(&slot, index);
                if count != 0 {
                    out.push((EventId::new(index as u64), count));
                }
            }
        }
        let taken = out.len() - before;
        Ok((taken > 0).then_some(taken))
    }

    /// Takes one event of id `index` if its counter is non-zero.
    fn take_from(&self, slot: &ListenerRef<'_>, index: usize) -> bool {
        let counter = slot.counter(index);
        // Guess "exactly one pending" (the common case): one read-modify-write instead of a
        // load and then a compare-and-swap, which would move the cache line twice.
        let mut current = 1;
        loop {
            if current == 0 {
                // A stale hint (another thread took the last one): clear it.
                self.clear_bit(slot, index);
                return false;
            }
            match counter.compare_exchange(
                current,
                current - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if current == 1 {
                        self.clear_bit(slot, index);
                    }
                    return true;
                }
                Err(now) => current = now,
            }
        }
    }

    /// Clears the hint bit of `index`, then re-checks its counter: a notify that incremented it
    /// meanwhile may have found the bit still set and left it to us, so put it back and wake
    /// whichever of our threads may be asleep.
    fn clear_bit(&self, slot: &ListenerRef<'_>, index: usize) {
        let (w, mask) = (index / 64, 1u64 << (index % 64));
        slot.bits(w).fetch_and(!mask, Ordering::AcqRel);
        if slot.counter(index).load(Ordering::Acquire) != 0 {
            slot.bits(w).fetch_or(mask, Ordering::AcqRel);
            if let Err(err) = wait::notify::<B>(&self.self_waker, slot.word()) {
                tracing::warn!("event `{}`: {err}", self.channel.segment_name_str());
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Probes notifier liveness under the channel lock, reaping dead notifiers.
    fn probe(&self, state: &mut WatchState) -> Result<()> {
        let shared = self.channel.shared();
        let lock = self.channel.lock()?;
        self.channel.reap::<B>();
        state.alive = self.channel.active(NOTIFIER);
        state.epoch = shared.notifier_epoch.load(Ordering::SeqCst);
        let joins = shared.notifier_joins.load(Ordering::SeqCst);
        drop(lock);
        if state.alive > 0 || joins != state.joins_seen {
            state.armed = true;
        }
        state.joins_seen = joins;
        state.last_probe = Some(Instant::now());
        Ok(())
    }

    /// Probes if due; reports new deaths if asked to. Returns when the next probe is due.
    fn watch_step(&self) -> Result<Instant> {
        let shared = self.channel.shared();
        let mut state = self.state();
        let now = Instant::now();
        let due = match state.last_probe {
            None => true,
            Some(at) => {
                now >= at + self.watch.interval
                    || shared.notifier_epoch.load(Ordering::SeqCst) != state.epoch
            }
        };
        if due {
            self.probe(&mut state)?;
        }
        let deaths = shared.notifier_deaths.load(Ordering::SeqCst);
        if deaths != state.deaths_seen {
            // Only ever grows; a smaller value was written by someone else, not a resurrection.
            let died = deaths.saturating_sub(state.deaths_seen);
            state.deaths_seen = deaths;
            if self.watch.deaths && died > 0 {
                return Err(Error::NotifierDied {
                    event: self.channel.segment_name_str().to_owned(),
                    died,
                    alive: state.alive as u64,
                });
            }
        }
        let last = state.last_probe.unwrap_or(now);
        Ok(last + self.watch.interval)
    }

    /// Reports "no notifier left" once per time the count drops to zero.
    fn report_none_left(&self) -> Result<()> {
        let mut state = self.state();
        if state.armed && state.alive == 0 {
            state.armed = false;
            return Err(Error::NoNotifiers { event: self.channel.segment_name_str().to_owned() });
        }
        Ok(())
    }
}

impl<B: WaitBackend> Drop for Listener<B> {
    fn drop(&mut self) {
        self.channel.leave::<B>(&mut self.membership);
    }
}

impl<B: WaitBackend> fmt::Debug for Listener<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("event", &self.channel.segment_name_str())
            .field("backend", &B::NAME)
            .field("slot", &self.membership.slot)
            .field("watch", &self.watch)
            .finish()
    }
}

/// Lets one thread at a time sleep on the listener's waiter.
///
/// The uncontended case (one thread waits on the listener, the usual) is one compare-and-swap
/// to enter and one store to leave: no lock, and no system call — `Condvar::notify_one` makes
/// one even with nobody waiting, so it is only called when a thread is queued.
#[derive(Debug, Default)]
struct Gate {
    busy: AtomicBool,
    queued: AtomicUsize,
    lock: Mutex<()>,
    free: Condvar,
}

struct Turn<'a>(&'a Gate);

impl Gate {
    fn try_enter(&self) -> bool {
        self.busy.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Waits for the turn to sleep, until `deadline`; `None` if the deadline passed first.
    fn enter(&self, deadline: Option<Instant>) -> Option<Turn<'_>> {
        if self.try_enter() {
            return Some(Turn(self));
        }
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Announce ourselves before re-trying: a leaver either sees `queued` and signals (under
        // the lock, so not before we wait), or left before our re-try, which then succeeds.
        self.queued.fetch_add(1, Ordering::SeqCst);
        let turn = loop {
            if self.try_enter() {
                break Some(Turn(self));
            }
            guard = match deadline {
                None => self.free.wait(guard).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) => {
                        self.free
                            .wait_timeout(guard, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                    None => break None,
                },
            };
        };
        self.queued.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        turn
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::SeqCst);
        if self.0.queued.load(Ordering::SeqCst) != 0 {
            let _guard = self.0.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.0.free.notify_one();
        }
    }
}

/// Options for a [`Listener`]: the domain, the channel's sizes (used when this listener creates
/// the channel, checked against it otherwise), the backend, spinning before sleeping, and
/// whether waits report notifiers that go away.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::event::Listener;
///
/// # ipc_runtime::domain::set_current(&format!("doc-listener-b-{}", std::process::id())).unwrap();
/// let name = "alarms";
/// let listener = Listener::builder(&name)
///     .max_event_id(63)
///     .spin(1000)
///     .report_no_notifiers(true)
///     .create()?;
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct ListenerBuilder<B: WaitBackend = DefaultBackend> {
    name: String,
    options: Options,
    spin: u32,
    watch: WatchOptions,
    _backend: PhantomData<fn() -> B>,
}

impl<B: WaitBackend> ListenerBuilder<B> {
    pub(crate) fn new(name: &str) -> Self {
        ListenerBuilder {
            name: name.to_owned(),
            options: Options::default(),
            spin: 0,
            watch: WatchOptions { deaths: false, none: false, interval: DEFAULT_LIVENESS_INTERVAL },
            _backend: PhantomData,
        }
    }

    /// Uses domain `domain` instead of the process's (`IPC_DOMAIN`).
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-domain-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name).domain("robot-b").create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn domain(mut self, domain: &str) -> Self {
        self.options.domain = Some(domain.to_owned());
        self
    }

    /// Largest id of the channel (ids `0..=max`). Fixed by the creator; a different value for an
    /// existing channel is an error.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-max-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name).max_event_id(3).create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn max_event_id(mut self, max: u64) -> Self {
        self.options.max_event_id = Some(max);
        self
    }

    /// Number of listener slots of the channel. Fixed by the creator.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-listeners-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name).max_listeners(1).create()?;
    /// assert!(ipc_runtime::event::Listener::new(&name).is_err()); // the one slot is taken
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn max_listeners(mut self, max: u32) -> Self {
        self.options.max_listeners = Some(max);
        self
    }

    /// Number of notifier slots of the channel. Fixed by the creator.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-notifiers-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name).max_notifiers(3).create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn max_notifiers(mut self, max: u32) -> Self {
        self.options.max_notifiers = Some(max);
        self
    }

    /// Uses backend `B2` to sleep (all participants of a channel must agree).
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-backend-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name)
    ///     .backend::<ipc_runtime::wait::Polling>()
    ///     .create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn backend<B2: WaitBackend>(self) -> ListenerBuilder<B2> {
        ListenerBuilder {
            name: self.name,
            options: self.options,
            spin: self.spin,
            watch: self.watch,
            _backend: PhantomData,
        }
    }

    /// Polls `n` times for an event before sleeping in the backend: lower latency for events
    /// that come quickly, at the price of CPU. 0 (the default) sleeps at once. A poll costs a
    /// few to a few tens of nanoseconds depending on the CPU (`pause` is slow on recent x86), so
    /// a few hundred polls is a few microseconds. Spinning only pays when the notifier has a
    /// core of its own: on a busy machine it takes CPU from the process it is waiting for.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-spin-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name).spin(10_000).create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn spin(mut self, n: u32) -> Self {
        self.spin = n;
        self
    }

    /// Makes waits return [`Error::NotifierDied`] when notifiers of the channel are found dead
    /// (killed or crashed without leaving), once per batch found. Found by probing every
    /// [`liveness_interval`](Self::liveness_interval) while waiting. Off by default.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-dead-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener =
    ///     ipc_runtime::event::Listener::builder(&name).report_dead_notifiers(true).create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn report_dead_notifiers(mut self, on: bool) -> Self {
        self.watch.deaths = on;
        self
    }

    /// Makes waits return [`Error::NoNotifiers`] when the last notifier is gone (left or died),
    /// once each time the count drops to zero after a notifier was seen, and only when no event
    /// is pending. Off by default.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-none-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = Listener::builder(&name).report_no_notifiers(true).create()?;
    /// let notifier = Notifier::new(&name)?;
    /// notifier.notify(EventId::new(1))?;
    /// drop(notifier);
    /// assert_eq!(listener.wait()?, EventId::new(1)); // pending events first
    /// assert!(matches!(listener.wait(), Err(Error::NoNotifiers { .. })));
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn report_no_notifiers(mut self, on: bool) -> Self {
        self.watch.none = on;
        self
    }

    /// How often a watching listener probes notifier liveness while it waits (default
    /// [`DEFAULT_LIVENESS_INTERVAL`]): the bound on how late a killed notifier is noticed.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-interval-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name)
    ///     .report_dead_notifiers(true)
    ///     .liveness_interval(Duration::from_millis(20))
    ///     .create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.watch.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Joins (creating if needed) the channel.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-lb-create-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let listener = ipc_runtime::event::Listener::builder(&name).create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// * [`Error::InvalidName`](crate::Error::InvalidName) for an invalid event name (or one
    ///   longer than [`MAX_EVENT_NAME_LEN`](super::MAX_EVENT_NAME_LEN)) or domain, or a wait
    ///   channel name the backend cannot use.
    /// * [`Error::LockTimeout`](crate::Error::LockTimeout) if another process holds the channel's
    ///   lock longer than the [lock timeout](crate::liveness::lock_timeout).
    /// * When this listener creates the channel: [`Error::Unsupported`](crate::Error::Unsupported)
    ///   for a `max_event_id` or participant count out of range.
    /// * When the channel exists: [`Error::EventBackendMismatch`](crate::Error::EventBackendMismatch)
    ///   if it uses another backend than `B`,
    ///   [`Error::EventOptionMismatch`](crate::Error::EventOptionMismatch) if a size set on this
    ///   builder differs from the channel's, and [`Error::EventFull`](crate::Error::EventFull) if
    ///   live processes hold every listener slot.
    /// * [`Error::Corrupted`](crate::Error::Corrupted) if the channel's segment is corrupt and a
    ///   live process may still use it (a corrupt segment nobody uses is replaced).
    /// * [`Error::UntrustedObject`](crate::Error::UntrustedObject) if the segment, the lock file or
    ///   a token file is not ours, and [`Error::Io`](crate::Error::Io) if the OS fails to create,
    ///   open or lock one of them, or the backend cannot make this listener's waiter.
    pub fn create(self) -> Result<Listener<B>> {
        let (channel, membership, (waiter, self_waker, state)) =
            Channel::join::<B, _>(&self.name, &self.options, LISTENER, |ch, slot, generation| {
                let view = ch.listener(slot);
                // Discard what the slot's previous owner left. Bits first, then counters: a
                // late notify (from a notifier that has not seen us join yet) either lands after
                // and is ours, or its hint is cleared with a zeroed counter (harmless).
                for w in 0..ch.layout().words {
                    view.bits(w).store(0, Ordering::SeqCst);
                }
                for index in 0..ch.layout().ids {
                    view.counter(index).store(0, Ordering::SeqCst);
                }
                view.word().clear_waiters();
                let wait_channel = ch.listener_channel(slot, generation);
                let waiter = B::waiter(&wait_channel, view.word())?;
                let self_waker = B::waker(&wait_channel, view.word())?;
                let shared = ch.shared();
                let alive = ch.active(NOTIFIER);
                let state = WatchState {
                    last_probe: None,
                    epoch: shared.notifier_epoch.load(Ordering::SeqCst),
                    deaths_seen: shared.notifier_deaths.load(Ordering::SeqCst),
                    joins_seen: shared.notifier_joins.load(Ordering::SeqCst),
                    alive,
                    armed: alive > 0,
                };
                Ok((waiter, self_waker, state))
            })?;
        Ok(Listener {
            channel: std::sync::Arc::new(channel),
            membership,
            waiter: std::sync::Arc::new(waiter),
            self_waker,
            spin: self.spin,
            watch: self.watch,
            cursor: AtomicUsize::new(0),
            gate: Gate::default(),
            state: Mutex::new(state),
        })
    }
}

impl<B: WaitBackend> fmt::Debug for ListenerBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerBuilder")
            .field("name", &self.name)
            .field("options", &self.options)
            .field("backend", &B::NAME)
            .field("spin", &self.spin)
            .field("watch", &self.watch)
            .finish()
    }
}
