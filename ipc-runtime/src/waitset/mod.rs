//! [`WaitSet`]: wait for the first of many subscribers, listeners, deadlines, intervals (and on
//! Unix, raw file descriptors) in one sleep.
//!
//! ```
//! use std::time::Duration;
//! use ipc_runtime::prelude::*;
//! use ipc_runtime::waitset::WaitSet;
//!
//! # ipc_runtime::domain::set_current(&format!("doc-ws-{}", std::process::id())).unwrap();
//! let subscriber = Subscriber::<u64>::new("temperature")?;
//! let shutdown = Listener::new("shutdown")?;
//! let waitset = WaitSet::new();
//! let data = waitset.attach(&subscriber);
//! let stop = waitset.attach(&shutdown);
//! let tick = waitset.attach_interval(Duration::from_millis(10));
//!
//! Publisher::<u64>::new("temperature")?.publish(21)?;
//! let mut ticks = 0;
//! waitset.run(|ready| {
//!     if ready == data.id() {
//!         for sample in subscriber.try_iter() {
//!             assert_eq!(*sample?, 21);
//!         }
//!     } else if ready == stop.id() {
//!         return Ok(std::ops::ControlFlow::Break(()));
//!     } else if ready == tick.id() {
//!         ticks += 1;
//!         if ticks == 3 {
//!             Notifier::new("shutdown")?.notify(EventId::new(0))?;
//!         }
//!     }
//!     Ok(std::ops::ControlFlow::Continue(()))
//! })?;
//! assert_eq!(shutdown.try_wait()?, Some(EventId::new(0)));
//! # Ok::<(), ipc_runtime::Error>(())
//! ```
//!
//! # Semantics
//!
//! - **Level-triggered.** [`wait`](WaitSet::wait) returns the [`AttachmentId`]s of every
//!   attachment that is ready *now*: a subscriber with a message queued, a listener with an event
//!   pending, a deadline or interval tick that passed. An attachment stays ready until what is
//!   there is taken ([`Subscriber::try_iter`](crate::Subscriber::try_iter),
//!   [`Listener::try_wait`](crate::Listener::try_wait)), so nothing is lost and nothing is
//!   reported twice once taken. Timers are edge-like: a deadline is reported once, an interval
//!   once per period (ticks missed while nobody waited are coalesced into one).
//! - **One sleep.** A wait checks every attachment (cheap loads, no system call), registers as
//!   a sleeper with each source, checks again (the eventcount protocol of [`crate::wait`], so a
//!   message published between the check and the sleep is never slept through), and sleeps in
//!   **one** call of [`WaitBackend::wait_many`] until any source's word moves, the nearest timer
//!   or the timeout:
//!
//!   | backend | how the one sleep is made |
//!   |---|---|
//!   | `Futex` | `futex_waitv` on every word (up to 128 words; beyond that, or on a kernel without it, 1 ms slices on the first word looking at the rest) |
//!   | `UnixSocket` | one `poll` on every source's socket (and the attached file descriptors) |
//!   | `WindowsEvent` | one `WaitForMultipleObjects` on every source's event (up to 64; beyond, 1 ms slices on the first 64) |
//!   | `Spin`, `Polling` | their loop, over every word |
//!
//!   A subscriber contributes its topic's word and one word per publisher it reads from (on
//!   the broadcasting backends), or its own OS object (sockets, events); a listener its slot's
//!   word or object.
//! - **Raw file descriptors** ([`WaitSet::attach_fd`], Unix) can share one sleep with
//!   shared-memory sources only when those sleep on file descriptors too: `attach_fd` exists
//!   for `WaitSet<UnixSocket>` only (sources created with the `UnixSocket` backend). The futex
//!   backend sleeps in the kernel's futex queue, which no `poll` can join, so a futex WaitSet
//!   refuses file descriptors at compile time rather than poll in a loop.
//! - **Sharing sources.** A source may stay in use elsewhere while attached: taking from it
//!   from any thread is fine. A *blocking* call on it from another thread while the WaitSet
//!   sleeps competes for the one OS object of backends that have one per source (sockets,
//!   events, and a listener's turn to sleep on any backend): the WaitSet then naps in 1 ms
//!   slices for that source instead of sleeping on it, so it still sees everything.
//! - **Detach on drop.** [`attach`](WaitSet::attach) returns an [`Attachment`] guard; dropping
//!   it removes the source.
//! - **Listeners that watch notifiers** (see
//!   [`report_dead_notifiers`](crate::event::ListenerBuilder::report_dead_notifiers) and
//!   friends) are also reported
//!   ready when their liveness probe is due or the notifier set changed, so that
//!   `try_wait` can report deaths; the probe interval bounds the sleep.
//!
//! A `WaitSet` belongs to the thread that made it (it is neither `Send` nor `Sync`); create one
//! per waiting thread.
//!
//! # Adding a source type
//!
//! Anything that sleeps through the waiting seam can be attached by implementing [`Source`]:
//! a cheap readiness check and a [`Plan`] of where to register and what to sleep on. A type
//! built from subscribers or listeners delegates to theirs (see [`Source`]).

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::wait::{DefaultBackend, WaitBackend, WaitWord};

/// Something a [`WaitSet`] (and the async waiter) can wait on: subscribers and listeners
/// implement it, and so can any type that sleeps through the waiting seam.
///
/// A source says how to find out whether it is ready ([`is_ready`](Source::is_ready), cheap,
/// no system call: it runs before and after registering, on every wait) and how to sleep until
/// it may be ([`plan`](Source::plan)): the words to *register* on (where its wakers look
/// whether anyone sleeps, incremented while asleep) and the `(waiter, word)` pairs to *sleep*
/// on (whose sequence its wakers bump before waking).
///
/// A type built from other sources delegates to them, for instance a server reading requests
/// through an internal subscriber:
///
/// ```
/// use ipc_runtime::prelude::*;
/// use ipc_runtime::wait::DefaultBackend;
/// use ipc_runtime::waitset::{Plan, Source, WaitSet};
///
/// struct Server {
///     requests: Subscriber<u64>,
///     cancel: Listener,
/// }
///
/// impl Source<DefaultBackend> for Server {
///     fn is_ready(&self) -> bool {
///         self.requests.is_ready() || self.cancel.is_ready()
///     }
///     fn plan<'s>(&'s self, plan: &mut Plan<'s, DefaultBackend>) {
///         self.requests.plan(plan);
///         self.cancel.plan(plan);
///     }
/// }
///
/// # ipc_runtime::domain::set_current(&format!("doc-ws-src-{}", std::process::id())).unwrap();
/// let server = Server { requests: Subscriber::new("requests")?, cancel: Listener::new("cancel")? };
/// let waitset = WaitSet::new();
/// let _guard = waitset.attach(&server);
/// assert!(waitset.wait_timeout(std::time::Duration::from_millis(5))?.is_empty());
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub trait Source<B: WaitBackend> {
    /// Whether taking from the source may find something now. Must be cheap (loads of shared
    /// state, no system call), and must turn true after any change a waker announces on the
    /// words of [`plan`](Source::plan).
    fn is_ready(&self) -> bool;

    /// Adds to `plan` where to register and what to sleep on, and anything that must live
    /// while the sleep lasts.
    fn plan<'s>(&'s self, plan: &mut Plan<'s, B>);
}

/// How to sleep until some sources may be ready: filled by [`Source::plan`].
pub struct Plan<'s, B: WaitBackend> {
    registrations: Vec<&'s WaitWord>,
    sleep: Vec<(&'s B::Waiter, &'s WaitWord)>,
    keep: Vec<Box<dyn Keep + 's>>,
    shared: Vec<Arc<dyn Any + Send + Sync>>,
    due: Option<Instant>,
    sliced: bool,
}

/// Anything, kept alive (then dropped) with a plan.
trait Keep {}
impl<T> Keep for T {}

impl<'s, B: WaitBackend> Plan<'s, B> {
    pub(crate) fn new() -> Self {
        Plan {
            registrations: Vec::new(),
            sleep: Vec::new(),
            keep: Vec::new(),
            shared: Vec::new(),
            due: None,
            sliced: false,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.registrations.clear();
        self.sleep.clear();
        self.keep.clear();
        self.shared.clear();
        self.due = None;
        self.sliced = false;
    }

    /// Registers as a sleeper on `word` while asleep (its waiter count is incremented before
    /// the last readiness check and decremented after the sleep): the word wakers look at to
    /// decide whether to wake anyone.
    pub fn register(&mut self, word: &'s WaitWord) {
        self.registrations.push(word);
    }

    /// Sleeps on `word` through `waiter`: the sleep ends when the word's sequence moves (and
    /// the waker wakes `waiter`).
    pub fn sleep_on(&mut self, waiter: &'s B::Waiter, word: &'s WaitWord) {
        self.sleep.push((waiter, word));
    }

    /// Keeps `value` alive until the sleep is over (for example a hold on the memory a word
    /// lies in), then drops it.
    pub fn keep(&mut self, value: impl Sized + 's) {
        self.keep.push(Box::new(value));
    }

    /// Keeps a reference-counted `value` until the sleep is over, like [`keep`](Self::keep)
    /// without an allocation.
    pub fn keep_shared(&mut self, value: Arc<dyn Any + Send + Sync>) {
        self.shared.push(value);
    }

    /// Wants a readiness check by `at` even if no word moves (a periodic probe).
    pub fn due(&mut self, at: Instant) {
        self.due = Some(self.due.map_or(at, |d| d.min(at)));
    }

    /// Says that a waker may not see the registration (or the OS object is busy elsewhere):
    /// the sleep is then cut into slices of at most a millisecond, re-checking in between.
    pub fn sliced(&mut self) {
        self.sliced = true;
    }

    /// Number of `(waiter, word)` pairs slept on.
    pub fn sleep_len(&self) -> usize {
        self.sleep.len()
    }

    /// The sleep entries with the sequences observed now (read before registering), into
    /// `out`.
    pub(crate) fn observe(&self, out: &mut Vec<(&'s B::Waiter, &'s WaitWord, u32)>) {
        out.clear();
        out.extend(
            self.sleep.iter().map(|(w, word)| (*w, *word, word.seq().load(Ordering::SeqCst))),
        );
    }

    pub(crate) fn register_all(&self) {
        for word in &self.registrations {
            word.register();
        }
        // Pairs with the wakers' fence (see `wait::notify`): either they see us registered, or
        // our re-check sees their change.
        fence(Ordering::SeqCst);
    }

    pub(crate) fn unregister_all(&self) {
        for word in &self.registrations {
            word.unregister();
        }
    }

    pub(crate) fn due_at(&self) -> Option<Instant> {
        self.due
    }

    pub(crate) fn is_sliced(&self) -> bool {
        self.sliced
    }
}

impl<B: WaitBackend> fmt::Debug for Plan<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("registrations", &self.registrations.len())
            .field("sleep", &self.sleep.len())
            .field("due", &self.due)
            .field("sliced", &self.sliced)
            .finish()
    }
}

/// Which attachment is ready: compare with [`Attachment::id`].
///
/// ```
/// let waitset = ipc_runtime::waitset::WaitSet::new();
/// let a = waitset.attach_deadline(std::time::Instant::now());
/// let b = waitset.attach_interval(std::time::Duration::from_secs(60));
/// assert_ne!(a.id(), b.id());
/// assert_eq!(waitset.wait()?, [a.id()]);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttachmentId(u64);

/// An attached source, deadline, interval or file descriptor; dropping it detaches it.
#[must_use = "dropping the guard detaches at once"]
pub struct Attachment<'w, 'a, B: WaitBackend = DefaultBackend> {
    set: &'w WaitSet<'a, B>,
    id: AttachmentId,
}

impl<B: WaitBackend> Attachment<'_, '_, B> {
    /// This attachment's id, as [`WaitSet::wait`] reports it.
    ///
    /// ```
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// let tick = waitset.attach_deadline(std::time::Instant::now());
    /// assert!(waitset.wait()?.contains(&tick.id()));
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn id(&self) -> AttachmentId {
        self.id
    }
}

impl<B: WaitBackend> Drop for Attachment<'_, '_, B> {
    fn drop(&mut self) {
        self.set.detach(self.id);
    }
}

impl<B: WaitBackend> fmt::Debug for Attachment<'_, '_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Attachment").field(&self.id.0).finish()
    }
}

struct Timer {
    id: AttachmentId,
    /// When it fires next; `None` once a deadline has fired.
    next: Option<Instant>,
    period: Option<Duration>,
}

/// The function that sleeps when file descriptors are attached (set by `attach_fd`).
#[cfg(all(unix, not(miri)))]
type FdSleep<B> = fn(
    &[(&<B as WaitBackend>::Waiter, &WaitWord, u32)],
    &[std::os::fd::BorrowedFd<'_>],
    Option<Duration>,
) -> Result<Vec<bool>>;

struct Inner<'a, B: WaitBackend> {
    next_id: u64,
    /// Reused from wait to wait (no allocation once warm).
    plan: Plan<'a, B>,
    observed: Vec<(&'a B::Waiter, &'a WaitWord, u32)>,
    sources: Vec<(AttachmentId, &'a dyn Source<B>)>,
    timers: Vec<Timer>,
    #[cfg(all(unix, not(miri)))]
    fds: Vec<(AttachmentId, std::os::fd::BorrowedFd<'a>)>,
    #[cfg(all(unix, not(miri)))]
    fd_sleep: Option<FdSleep<B>>,
}

/// Waits for the first of many sources in one sleep (see the [module docs](self)).
///
/// `B` is the wait backend of the sources (all the same; the default backend by default).
pub struct WaitSet<'a, B: WaitBackend = DefaultBackend> {
    inner: RefCell<Inner<'a, B>>,
}

impl WaitSet<'_> {
    /// An empty wait set for sources of the default backend.
    ///
    /// ```
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// assert!(waitset.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_backend()
    }
}

impl Default for WaitSet<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, B: WaitBackend> WaitSet<'a, B> {
    /// An empty wait set for sources of backend `B`.
    ///
    /// ```
    /// use ipc_runtime::wait::Polling;
    /// use ipc_runtime::waitset::WaitSet;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-ws-b-{}", std::process::id())).unwrap();
    /// let listener = ipc_runtime::Listener::<Polling>::with_backend("polled")?;
    /// let waitset = WaitSet::<Polling>::with_backend();
    /// let _guard = waitset.attach(&listener);
    /// assert!(waitset.wait_timeout(std::time::Duration::from_millis(1))?.is_empty());
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn with_backend() -> Self {
        WaitSet {
            inner: RefCell::new(Inner {
                next_id: 0,
                plan: Plan::new(),
                observed: Vec::new(),
                sources: Vec::new(),
                timers: Vec::new(),
                #[cfg(all(unix, not(miri)))]
                fds: Vec::new(),
                #[cfg(all(unix, not(miri)))]
                fd_sleep: None,
            }),
        }
    }

    fn next_id(inner: &mut Inner<'a, B>) -> AttachmentId {
        inner.next_id += 1;
        AttachmentId(inner.next_id)
    }

    /// Attaches `source` (a [`Subscriber`](crate::Subscriber), a [`Listener`](crate::Listener),
    /// or any [`Source`]) until the returned guard is dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-ws-at-{}", std::process::id())).unwrap();
    /// let listener = Listener::new("door")?;
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// let door = waitset.attach(&listener);
    /// Notifier::new("door")?.notify(EventId::new(1))?;
    /// assert_eq!(waitset.wait_timeout(Duration::from_secs(5))?, [door.id()]);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn attach(&self, source: &'a dyn Source<B>) -> Attachment<'_, 'a, B> {
        let mut inner = self.inner.borrow_mut();
        let id = Self::next_id(&mut inner);
        inner.sources.push((id, source));
        Attachment { set: self, id }
    }

    /// Attaches a one-shot deadline: reported once, by the first wait at or after `at`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// let start = Instant::now();
    /// let deadline = waitset.attach_deadline(start + Duration::from_millis(20));
    /// assert_eq!(waitset.wait()?, [deadline.id()]);
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// assert!(waitset.wait_timeout(Duration::from_millis(5))?.is_empty()); // once only
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn attach_deadline(&self, at: Instant) -> Attachment<'_, 'a, B> {
        let mut inner = self.inner.borrow_mut();
        let id = Self::next_id(&mut inner);
        inner.timers.push(Timer { id, next: Some(at), period: None });
        Attachment { set: self, id }
    }

    /// Attaches an interval: reported once every `period`, the first time one period from
    /// now. Ticks missed while nobody waited are reported as one.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// let tick = waitset.attach_interval(Duration::from_millis(5));
    /// for _ in 0..3 {
    ///     assert_eq!(waitset.wait()?, [tick.id()]);
    /// }
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn attach_interval(&self, period: Duration) -> Attachment<'_, 'a, B> {
        let period = period.max(Duration::from_micros(1));
        let mut inner = self.inner.borrow_mut();
        let id = Self::next_id(&mut inner);
        inner.timers.push(Timer {
            id,
            next: Instant::now().checked_add(period),
            period: Some(period),
        });
        Attachment { set: self, id }
    }

    fn detach(&self, id: AttachmentId) {
        let mut inner = self.inner.borrow_mut();
        inner.sources.retain(|(i, _)| *i != id);
        inner.timers.retain(|t| t.id != id);
        #[cfg(all(unix, not(miri)))]
        inner.fds.retain(|(i, _)| *i != id);
    }

    /// Number of attachments.
    ///
    /// ```
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// let tick = waitset.attach_interval(std::time::Duration::from_secs(1));
    /// assert_eq!(waitset.len(), 1);
    /// drop(tick);
    /// assert_eq!(waitset.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        let inner = self.inner.borrow();
        #[cfg(all(unix, not(miri)))]
        let fds = inner.fds.len();
        #[cfg(not(all(unix, not(miri))))]
        let fds = 0;
        inner.sources.len() + inner.timers.len() + fds
    }

    /// Whether nothing is attached.
    ///
    /// ```
    /// assert!(ipc_runtime::waitset::WaitSet::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sleeps until at least one attachment is ready; returns the ready ones.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] if nothing is attached (the wait would never end); an OS failure
    /// while sleeping.
    ///
    /// ```
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// assert!(waitset.wait().is_err()); // nothing attached
    /// ```
    pub fn wait(&self) -> Result<Vec<AttachmentId>> {
        self.wait_until(None)
    }

    /// Sleeps until at least one attachment is ready or `timeout` passed; returns the ready
    /// ones (none on timeout).
    ///
    /// # Errors
    ///
    /// An OS failure while sleeping.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// assert!(waitset.wait_timeout(Duration::from_millis(1))?.is_empty());
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Vec<AttachmentId>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_until(Some(deadline)),
            None => self.wait_until(None),
        }
    }

    /// Waits for ready attachments and calls `f` once per ready attachment, again and again,
    /// until `f` returns `Break` (or an error, which is returned).
    ///
    /// # Errors
    ///
    /// The first error `f` returns; [`Error::Unsupported`] if nothing is attached; an OS
    /// failure while sleeping.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use std::time::Duration;
    ///
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// let tick = waitset.attach_interval(Duration::from_millis(1));
    /// let mut n = 0;
    /// waitset.run(|id| {
    ///     assert_eq!(id, tick.id());
    ///     n += 1;
    ///     Ok(if n == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    /// })?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn run(&self, mut f: impl FnMut(AttachmentId) -> Result<ControlFlow<()>>) -> Result<()> {
        loop {
            for id in self.wait()? {
                if f(id)?.is_break() {
                    return Ok(());
                }
            }
        }
    }

    /// Waits at most `timeout` for ready attachments and calls `f` once per ready attachment
    /// (the seed's `receive(callback, timeout)` for many sources); returns how many were
    /// ready (0 on timeout).
    ///
    /// # Errors
    ///
    /// The first error `f` returns; an OS failure while sleeping.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let waitset = ipc_runtime::waitset::WaitSet::new();
    /// let now = waitset.attach_deadline(std::time::Instant::now());
    /// let mut seen = Vec::new();
    /// assert_eq!(waitset.run_once(Duration::from_secs(1), |id| Ok(seen.push(id)))?, 1);
    /// assert_eq!(seen, [now.id()]);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn run_once(
        &self,
        timeout: Duration,
        mut f: impl FnMut(AttachmentId) -> Result<()>,
    ) -> Result<usize> {
        let ready = self.wait_timeout(timeout)?;
        for id in &ready {
            f(*id)?;
        }
        Ok(ready.len())
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<Vec<AttachmentId>> {
        let mut ready = Vec::new();
        let mut inner = self.inner.borrow_mut();
        if deadline.is_none()
            && inner.sources.is_empty()
            && inner.timers.is_empty()
            && !has_fds(&inner)
        {
            return Err(Error::Unsupported {
                what: "waiting on an empty WaitSet (it would never return)".into(),
            });
        }
        loop {
            collect_ready(&mut inner, &mut ready)?;
            if !ready.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(ready);
            }
            let Inner { plan, observed, sources, .. } = &mut *inner;
            plan.clear();
            for (_, source) in sources.iter() {
                source.plan(plan);
            }
            plan.observe(observed);
            plan.register_all();
            // Re-check with the registrations visible to wakers.
            let result = collect_ready(&mut inner, &mut ready);
            if result.is_err() || !ready.is_empty() {
                inner.plan.unregister_all();
                inner.plan.clear();
                return result.map(|()| ready);
            }
            let now = Instant::now();
            let mut until = deadline;
            for t in &inner.timers {
                until = earliest(until, t.next);
            }
            until = earliest(until, inner.plan.due_at());
            if inner.plan.is_sliced() {
                until = earliest(until, Some(now + Duration::from_millis(1)));
            }
            let timeout = until.map(|u| u.saturating_duration_since(now));
            let slept = sleep::<B>(&inner, &inner.observed, timeout);
            inner.plan.unregister_all();
            // Hands back turns and holds now, not at the next wait.
            inner.plan.clear();
            slept?;
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(all(unix, not(miri)))]
fn has_fds<B: WaitBackend>(inner: &Inner<'_, B>) -> bool {
    !inner.fds.is_empty()
}

#[cfg(not(all(unix, not(miri))))]
fn has_fds<B: WaitBackend>(_: &Inner<'_, B>) -> bool {
    false
}

/// The one sleep.
fn sleep<B: WaitBackend>(
    inner: &Inner<'_, B>,
    entries: &[(&B::Waiter, &WaitWord, u32)],
    timeout: Option<Duration>,
) -> Result<()> {
    #[cfg(all(unix, not(miri)))]
    if let (Some(fd_sleep), false) = (inner.fd_sleep, inner.fds.is_empty()) {
        let fds: Vec<_> = inner.fds.iter().map(|(_, fd)| *fd).collect();
        return fd_sleep(entries, &fds, timeout).map(drop);
    }
    let _ = inner;
    B::wait_many(entries, timeout)
}

/// Appends the ids of the ready attachments to `ready`; fires due timers.
fn collect_ready<B: WaitBackend>(
    inner: &mut Inner<'_, B>,
    ready: &mut Vec<AttachmentId>,
) -> Result<()> {
    for (id, source) in &inner.sources {
        if source.is_ready() {
            ready.push(*id);
        }
    }
    if !inner.timers.is_empty() {
        let now = Instant::now();
        for t in &mut inner.timers {
            let Some(next) = t.next.filter(|n| *n <= now) else { continue };
            ready.push(t.id);
            t.next = t.period.and_then(|p| {
                // The next tick after now (missed ones coalesce).
                let behind = now.duration_since(next).as_nanos() / p.as_nanos().max(1);
                let steps = u32::try_from(behind + 1).unwrap_or(u32::MAX);
                next.checked_add(p.saturating_mul(steps))
            });
        }
    }
    #[cfg(all(unix, not(miri)))]
    if !inner.fds.is_empty() {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut polled: Vec<PollFd<'_>> =
            inner.fds.iter().map(|(_, fd)| PollFd::new(fd, PollFlags::IN)).collect();
        match poll(&mut polled, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })) {
            Ok(_) => {}
            Err(e) if e == rustix::io::Errno::INTR => {}
            Err(e) => return Err(Error::io("polling attached file descriptors", e.into())),
        }
        for ((id, _), p) in inner.fds.iter().zip(&polled) {
            if !p.revents().is_empty() {
                ready.push(*id);
            }
        }
    }
    Ok(())
}

#[cfg(all(unix, not(miri)))]
impl<'a> WaitSet<'a, crate::wait::UnixSocket> {
    /// Attaches a file descriptor, reported ready while it has input (or an error or hang-up)
    /// pending. Only for wait sets of the `UnixSocket` backend, whose sources sleep on
    /// sockets, so that one `poll` sleeps on everything (see the [module docs](self)).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsFd;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use ipc_runtime::wait::UnixSocket;
    /// use ipc_runtime::waitset::WaitSet;
    ///
    /// let (mut a, b) = UnixStream::pair()?;
    /// let waitset = WaitSet::<UnixSocket>::with_backend();
    /// let input = waitset.attach_fd(b.as_fd());
    /// assert!(waitset.wait_timeout(Duration::from_millis(1))?.is_empty());
    /// a.write_all(b"x")?;
    /// assert_eq!(waitset.wait()?, [input.id()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attach_fd(
        &self,
        fd: std::os::fd::BorrowedFd<'a>,
    ) -> Attachment<'_, 'a, crate::wait::UnixSocket> {
        let mut inner = self.inner.borrow_mut();
        let id = Self::next_id(&mut inner);
        inner.fds.push((id, fd));
        inner.fd_sleep = Some(crate::wait::poll_many);
        Attachment { set: self, id }
    }
}

impl<B: WaitBackend> fmt::Debug for WaitSet<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("WaitSet")
            .field("backend", &B::NAME)
            .field("sources", &inner.sources.len())
            .field("timers", &inner.timers.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
