//! async/await: [`Subscriber::receive_async`](crate::Subscriber::receive_async),
//! [`Listener::wait_async`](crate::Listener::wait_async) and a [`Stream`](futures_core::Stream)
//! of samples ([`Subscriber::stream`](crate::Subscriber::stream)). Cargo feature `tokio`.
//!
//! ```
//! use ipc_runtime::prelude::*;
//!
//! # ipc_runtime::domain::set_current(&format!("doc-aio-{}", std::process::id())).unwrap();
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! runtime.block_on(async {
//!     let subscriber = Subscriber::<u64>::new("async-ticks")?;
//!     let shutdown = Listener::new("async-stop")?;
//!     let publisher = Publisher::<u64>::new("async-ticks")?;
//!     publisher.publish(1)?;
//!     tokio::select! {
//!         sample = subscriber.receive_async() => assert_eq!(*sample?, 1),
//!         event = shutdown.wait_async() => panic!("no event was sent: {:?}", event?),
//!     }
//!     Ok::<(), ipc_runtime::Error>(())
//! })?;
//! # Ok::<(), ipc_runtime::Error>(())
//! ```
//!
//! # How it works
//!
//! The futures are plain [`Future`]s woken through the standard [`Waker`]: they work on any
//! executor (tested on tokio's current-thread and multi-thread runtimes), and use no tokio
//! API.
//!
//! A poll first *takes* ([`try_receive`](crate::Subscriber::try_receive),
//! [`try_wait`](crate::Listener::try_wait)); a sample or event is only ever taken in the poll
//! that returns it, so dropping a pending future (a losing `select!` branch, a timeout) loses
//! nothing. When there is nothing, the poll registers as a sleeper with the source (the same
//! eventcount protocol as a blocking receive: register, re-check, then sleep) and hands the
//! words to sleep on, with its `Waker`, to the process's **async waiter**: one background
//! thread per wait backend, started on first use, which sleeps on the words of every pending
//! future at once in one [`WaitBackend::wait_many`] call (`futex_waitv` on Linux, `poll` on
//! sockets, `WaitForMultipleObjects` on Windows) and wakes the futures whose words moved. No
//! thread per subscriber, no polling loop. With nothing pending the thread is parked on a
//! condition variable.
//!
//! The waiter holds what it sleeps on (the topic or channel mapping, the peer heaps, the
//! waiting OS object) by reference count, so a future that is leaked instead of dropped costs
//! only memory and an over-counted sleeper (an unneeded wake-up per message), never a dangling
//! access.
//!
//! A wake-up goes through two threads (the waiter, then the executor's), so it costs more
//! than a blocking receive's; see the benchmarks. As with a [`WaitSet`](crate::waitset::WaitSet),
//! backends with one OS object per source (Unix sockets, Windows events) share that object
//! with blocking calls on the same source from other threads: do not mix blocking receives and
//! async receives on one subscriber at the same time there.

mod futures;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

pub use futures::{Receive, SampleStream, WaitEvent};

use crate::error::Result;
use crate::wait::{self, WaitBackend, WaitWord};
use crate::waitset::Source;

/// A [`Source`] that the async waiter can sleep on: it hands out owned (reference-counted)
/// handles to what it sleeps on, since the waiter thread may outlive any borrow of it.
/// Implemented by subscribers and listeners; a type built from them delegates, as for
/// [`Source`].
pub trait AsyncSource<B: WaitBackend>: Source<B> {
    /// Adds to `plan` where to register (borrowed: the future registers and unregisters) and
    /// what to sleep on (owned).
    fn async_plan<'s>(&'s self, plan: &mut AsyncPlan<'s, B>);
}

/// A word in shared memory that stays mapped while its entry's `keep` lives.
#[derive(Clone, Copy)]
struct WordPtr(*const WaitWord);

// SAFETY: the word is made of atomics, and the memory it lies in is kept mapped by the
// reference-counted hold stored next to it (see `AsyncPlan::sleep_on`).
unsafe impl Send for WordPtr {}
// SAFETY: as above.
unsafe impl Sync for WordPtr {}

impl WordPtr {
    fn get(&self) -> &WaitWord {
        // SAFETY: valid while the hold stored with it lives (`AsyncPlan::sleep_on`); every
        // user keeps the entry (and so the hold) alive while it uses the reference.
        unsafe { &*self.0 }
    }
}

type Hold = Arc<dyn Any + Send + Sync>;

/// How a pending future sleeps: filled by [`AsyncSource::async_plan`].
pub struct AsyncPlan<'s, B: WaitBackend> {
    registrations: Vec<&'s WaitWord>,
    waiters: Vec<Arc<B::Waiter>>,
    /// (index into `waiters`, word).
    sleep: Vec<(usize, WordPtr)>,
    keep: Vec<Hold>,
    due: Option<Instant>,
}

impl<'s, B: WaitBackend> AsyncPlan<'s, B> {
    fn new() -> Self {
        AsyncPlan {
            registrations: Vec::new(),
            waiters: Vec::new(),
            sleep: Vec::new(),
            keep: Vec::new(),
            due: None,
        }
    }

    /// Registers as a sleeper on `word` while pending (see
    /// [`Plan::register`](crate::waitset::Plan::register)).
    pub fn register(&mut self, word: &'s WaitWord) {
        self.registrations.push(word);
    }

    /// Sleeps on `word` through `waiter`.
    ///
    /// # Safety
    ///
    /// `word` must stay valid (mapped, not freed) for as long as `hold` lives, or for the life
    /// of the process if `hold` is `None`.
    pub(crate) unsafe fn sleep_on(
        &mut self,
        waiter: &Arc<B::Waiter>,
        word: &WaitWord,
        hold: Option<Hold>,
    ) {
        let index = match self.waiters.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            Some(index) => index,
            None => {
                self.waiters.push(Arc::clone(waiter));
                self.waiters.len() - 1
            }
        };
        self.sleep.push((index, WordPtr(word)));
        self.keep.extend(hold);
    }

    /// Wants the future polled again by `at` even if no word moves (a periodic probe), or
    /// within a millisecond when the registration may not be seen (see
    /// [`Plan::sliced`](crate::waitset::Plan::sliced)).
    pub fn due(&mut self, at: Instant) {
        self.due = Some(self.due.map_or(at, |d| d.min(at)));
    }
}

impl<B: WaitBackend> fmt::Debug for AsyncPlan<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPlan")
            .field("registrations", &self.registrations.len())
            .field("sleep", &self.sleep.len())
            .field("due", &self.due)
            .finish()
    }
}

/// One pending future, as the waiter sees it.
struct Entry<B: WaitBackend> {
    waker: Waker,
    waiters: Vec<Arc<B::Waiter>>,
    /// (index into `waiters`, word, observed sequence).
    sleep: Vec<(usize, WordPtr, u32)>,
    /// Keeps the words mapped.
    keep: Vec<Hold>,
    due: Option<Instant>,
}

impl<B: WaitBackend> Entry<B> {
    fn moved(&self, now: Instant) -> bool {
        self.due.is_some_and(|d| d <= now)
            || self.sleep.iter().any(|(_, w, seen)| w.get().seq().load(Ordering::SeqCst) != *seen)
    }
}

struct State<B: WaitBackend> {
    entries: HashMap<u64, Entry<B>>,
    /// The waiter thread is parked on `idle` (nothing pending), not in the backend.
    parked: bool,
    started: bool,
    /// Moves each time the waiter thread has let go of what it slept on.
    cycle: u64,
}

/// The process's async waiter for backend `B`.
struct Reactor<B: WaitBackend> {
    state: Mutex<State<B>>,
    idle: Condvar,
    /// Signalled when `cycle` moves.
    replanned: Condvar,
    next: AtomicU64,
    /// Rung when an entry is added while the thread sleeps in the backend.
    doorbell: &'static WaitWord,
    bell_waiter: Arc<B::Waiter>,
    bell_waker: B::Waker,
}

/// The waiters, one per backend type, created on first use and never dropped.
fn reactor<B: WaitBackend>() -> Result<&'static Reactor<B>> {
    static ALL: Mutex<Vec<(TypeId, &'static (dyn Any + Send + Sync))>> = Mutex::new(Vec::new());
    let mut all = ALL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, r)) = all.iter().find(|(t, _)| *t == TypeId::of::<B>()) {
        return Ok(r.downcast_ref::<Reactor<B>>().expect("keyed by its own type"));
    }
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    // Leaked on purpose: the thread lives as long as the process, and so does its word.
    let doorbell: &'static WaitWord = Box::leak(Box::new(WaitWord::new()));
    let channel = format!(
        "{}.async.p{}-{}",
        crate::domain::current(),
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    );
    let bell_waiter = B::waiter(&channel, doorbell)?;
    let bell_waker = B::waker(&channel, doorbell)?;
    // The waker reaches the waiter through handles both already hold; remove the name so
    // nothing is left behind when the process exits (a socket file, for instance).
    B::cleanup(&channel)?;
    let reactor: &'static Reactor<B> = Box::leak(Box::new(Reactor {
        state: Mutex::new(State {
            entries: HashMap::new(),
            parked: false,
            started: false,
            cycle: 0,
        }),
        idle: Condvar::new(),
        replanned: Condvar::new(),
        next: AtomicU64::new(1),
        doorbell,
        bell_waiter: Arc::new(bell_waiter),
        bell_waker,
    }));
    all.push((TypeId::of::<B>(), reactor));
    Ok(reactor)
}

impl<B: WaitBackend> Reactor<B> {
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&'static self, entry: Entry<B>) -> Result<u64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut st = self.lock();
        st.entries.insert(id, entry);
        let (parked, started) = (st.parked, st.started);
        if !started {
            st.started = true;
            drop(st);
            let spawned = std::thread::Builder::new()
                .name(format!("ipc-async-{}", B::NAME))
                .spawn(move || self.run());
            if let Err(err) = spawned {
                self.lock().started = false;
                return Err(crate::Error::io("starting the async waiter thread", err));
            }
            return Ok(id);
        }
        drop(st);
        if parked {
            self.idle.notify_one();
        } else {
            wait::notify::<B>(&self.bell_waker, self.doorbell)?;
        }
        Ok(id)
    }

    fn remove(&self, id: u64) {
        let mut st = self.lock();
        let entry = st.entries.remove(&id);
        let (parked, cycle) = (st.parked, st.cycle);
        drop(st);
        let Some(entry) = entry else { return };
        // Dropped outside the lock: it may unmap a heap.
        drop(entry);
        if B::BROADCAST || parked {
            // The thread's snapshot holds only mappings (dropped at its next wake-up).
            return;
        }
        // Backends with an OS object per source: the sleeping thread holds the source's waiter
        // (a socket file, say), which must go with the source. Have it let go, briefly.
        if wait::notify::<B>(&self.bell_waker, self.doorbell).is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut st = self.lock();
        while st.cycle == cycle && !st.parked {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self.replanned.wait_timeout(st, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// The waiter thread.
    fn run(&self) {
        let mut wake: Vec<Waker> = Vec::new();
        loop {
            let mut st = self.lock();
            let now = Instant::now();
            st.entries.retain(|_, e| {
                if e.moved(now) {
                    wake.push(e.waker.clone());
                    false
                } else {
                    true
                }
            });
            if !wake.is_empty() {
                drop(st);
                wake.drain(..).for_each(Waker::wake);
                continue;
            }
            if st.entries.is_empty() {
                st.parked = true;
                self.replanned.notify_all();
                let mut st = self.idle.wait(st).unwrap_or_else(PoisonError::into_inner);
                st.parked = false;
                continue;
            }
            // A snapshot of what to sleep on, holding the words' memory while asleep.
            let mut waiters: Vec<Arc<B::Waiter>> = vec![Arc::clone(&self.bell_waiter)];
            let mut words: Vec<(usize, WordPtr, u32)> = Vec::new();
            let mut keep: Vec<Hold> = Vec::new();
            let mut due: Option<Instant> = None;
            for e in st.entries.values() {
                let base = waiters.len();
                waiters.extend(e.waiters.iter().cloned());
                words.extend(e.sleep.iter().map(|(i, w, seen)| (base + i, *w, *seen)));
                keep.extend(e.keep.iter().cloned());
                due = match (due, e.due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let bell = self.doorbell.seq().load(Ordering::SeqCst);
            self.doorbell.register();
            fence(Ordering::SeqCst);
            drop(st);
            let mut entries: Vec<(&B::Waiter, &WaitWord, u32)> =
                Vec::with_capacity(words.len() + 1);
            entries.push((&*waiters[0], self.doorbell, bell));
            entries.extend(words.iter().map(|(i, w, seen)| (&*waiters[*i], w.get(), *seen)));
            let timeout = due.map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(err) = B::wait_many(&entries, timeout) {
                // Not fatal: the futures re-arm when woken. Nap so that a persistent failure
                // does not spin.
                tracing::warn!("async waiter ({}): {err}", B::NAME);
                std::thread::sleep(Duration::from_millis(1));
            }
            self.doorbell.unregister();
            drop(entries);
            drop(waiters);
            drop(keep);
            self.lock().cycle += 1;
            self.replanned.notify_all();
        }
    }
}

/// A future's registration with a source and the waiter: armed while pending.
pub(crate) struct Waiting<'a, B: WaitBackend> {
    id: Option<(u64, &'static Reactor<B>)>,
    registered: Vec<&'a WaitWord>,
}

impl<'a, B: WaitBackend> Waiting<'a, B> {
    pub(crate) fn new() -> Self {
        Waiting { id: None, registered: Vec::new() }
    }

    /// Registers with `source` and hands its words and `waker` to the waiter. Returns `true`
    /// (without arming) if the source turned ready meanwhile: the caller takes again.
    pub(crate) fn arm<S: AsyncSource<B> + ?Sized>(
        &mut self,
        source: &'a S,
        waker: &Waker,
    ) -> Result<bool> {
        self.disarm();
        let reactor = reactor::<B>()?;
        let mut plan = AsyncPlan::new();
        source.async_plan(&mut plan);
        // Read before registering: a wake after our registration moves a word past it.
        let sleep: Vec<(usize, WordPtr, u32)> = plan
            .sleep
            .iter()
            .map(|(i, w)| (*i, *w, w.get().seq().load(Ordering::SeqCst)))
            .collect();
        for word in &plan.registrations {
            word.register();
        }
        // Pairs with the wakers' fence (see `wait::notify`).
        fence(Ordering::SeqCst);
        self.registered = plan.registrations;
        if source.is_ready() {
            self.disarm();
            return Ok(true);
        }
        let entry = Entry {
            waker: waker.clone(),
            waiters: plan.waiters,
            sleep,
            keep: plan.keep,
            due: plan.due,
        };
        match reactor.insert(entry) {
            Ok(id) => {
                self.id = Some((id, reactor));
                Ok(false)
            }
            Err(err) => {
                self.disarm();
                Err(err)
            }
        }
    }

    /// Ends the registration (if armed).
    pub(crate) fn disarm(&mut self) {
        if let Some((id, reactor)) = self.id.take() {
            reactor.remove(id);
        }
        for word in self.registered.drain(..) {
            word.unregister();
        }
    }
}

impl<B: WaitBackend> Drop for Waiting<'_, B> {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl<B: WaitBackend> fmt::Debug for Waiting<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting").field("armed", &self.id.is_some()).finish()
    }
}

#[cfg(test)]
mod tests;
