//! The waiting seam: block until another process says "something changed", without spinning.
//!
//! A [`WaitWord`] lives in shared memory next to whatever it guards (a subscriber's queue, a
//! listener's pending bits). Waiters and wakers agree on it through an *eventcount* protocol
//! ([`wait_until`] / [`notify`]): a waiter registers, re-checks its condition, and sleeps only if
//! the word's sequence has not moved; a waker publishes its change, then bumps the sequence and
//! wakes only if someone is registered. No wake-up is lost, and a notify with nobody waiting costs
//! one fence and one load — no system call.
//!
//! How a waiter sleeps is the [`WaitBackend`]: one small trait with one implementation per OS
//! mechanism —
//!
//! | backend | mechanism | platforms |
//! |---|---|---|
//! | `Futex` | `futex` on the word itself (cross-process, not `FUTEX_PRIVATE`) | Linux |
//! | `UnixSocket` | `poll` on a datagram socket per waiter; wakers send a byte | Unix (Linux, macOS) |
//! | `WindowsEvent` | a named auto-reset event object per waiter; wakers `SetEvent` it | Windows |
//! | [`Spin`] | busy-poll the word (lowest latency, burns a core while waiting) | all |
//! | [`Polling`] | sleep with exponential back-off (50 µs → 1 ms) | all |
//!
//! Backends that sleep on the word itself (futex, spin, polling) are
//! [`BROADCAST`](WaitBackend::BROADCAST): one wake reaches every thread sleeping on a word,
//! which publish/subscribe uses to wake all of a topic's subscribers with one call.
//!
//! The default ([`DefaultBackend`]) blocks without spinning on every platform: the futex on
//! Linux, event objects on Windows, Unix domain sockets on other Unix systems (macOS, which has
//! no public cross-process futex; that combination is compiled but not run by CI).
//!
//! A user's own backend implements the same trait (the example below is a complete one; the
//! repository's `custom_backend` example builds one on named pipes) and proves itself with the
//! public [`conformance`] suite, the same suite every built-in backend passes.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::Result;

pub mod conformance;
#[cfg(all(target_os = "linux", not(miri)))]
mod futex;
mod polling;
mod spin;
#[cfg(all(unix, not(miri)))]
mod unix_socket;
#[cfg(all(windows, not(miri)))]
mod windows_event;

#[cfg(all(target_os = "linux", not(miri)))]
pub use futex::Futex;
pub use polling::Polling;
pub use spin::Spin;
#[cfg(all(unix, not(miri)))]
pub(crate) use unix_socket::poll_many;
#[cfg(all(unix, not(miri)))]
pub use unix_socket::{SocketWaiter, SocketWaker, UnixSocket};
#[cfg(all(windows, not(miri)))]
pub use windows_event::{EventHandle, WindowsEvent};

/// The backend used when none is named: the futex on Linux, event objects on Windows, Unix
/// domain sockets on other Unix systems, polling under Miri.
#[cfg(all(target_os = "linux", not(miri)))]
pub type DefaultBackend = Futex;
/// The backend used when none is named: the futex on Linux, event objects on Windows, Unix
/// domain sockets on other Unix systems, polling under Miri.
#[cfg(all(windows, not(miri)))]
pub type DefaultBackend = WindowsEvent;
/// The backend used when none is named: the futex on Linux, event objects on Windows, Unix
/// domain sockets on other Unix systems, polling under Miri.
#[cfg(all(unix, not(target_os = "linux"), not(miri)))]
pub type DefaultBackend = UnixSocket;
/// The backend used when none is named: the futex on Linux, event objects on Windows, Unix
/// domain sockets on other Unix systems, polling under Miri.
#[cfg(miri)]
pub type DefaultBackend = Polling;

/// The shared half of a wake-up channel: an event sequence and a count of registered waiters.
/// Lives in shared memory; all zero is its initial state.
#[repr(C)]
#[derive(Debug, Default)]
pub struct WaitWord {
    seq: AtomicU32,
    waiters: AtomicU32,
}

impl WaitWord {
    /// A fresh word.
    pub const fn new() -> Self {
        WaitWord { seq: AtomicU32::new(0), waiters: AtomicU32::new(0) }
    }

    /// The event sequence (what futex-like backends sleep on).
    pub fn seq(&self) -> &AtomicU32 {
        &self.seq
    }

    /// Number of waiters currently registered (may over-count after a waiter crashed, which only
    /// costs an unnecessary wake).
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }

    /// Forgets registered waiters: for a word being reused after its waiter died mid-wait
    /// (which leaves the count too high, costing a needless wake per notify). Call it only
    /// when nobody can be waiting on the word.
    ///
    /// ```
    /// let word = ipc_runtime::wait::WaitWord::new();
    /// word.clear_waiters();
    /// assert_eq!(word.waiters(), 0);
    /// ```
    pub fn clear_waiters(&self) {
        self.waiters.store(0, Ordering::SeqCst);
    }

    /// Registers one more sleeper (see [`wait_until`]).
    pub(crate) fn register(&self) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
    }

    /// Ends a registration made with [`register`](Self::register).
    pub(crate) fn unregister(&self) {
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One OS mechanism for sleeping until a [`WaitWord`] changes.
///
/// Implementations only sleep and wake; the protocol that makes this race-free lives in
/// [`wait_until`] and [`notify`], written once for all backends. Every implementation must pass
/// [`conformance::run`].
///
/// # Channels
///
/// A *channel* is one waiter's name, unique on the machine: ASCII letters, digits, `_`, `-` and
/// `.`, starting with the domain (the event layer uses `<domain>.event.<name>.l<slot>.<gen>`).
/// Backends that need an OS object per waiter (a socket, a named pipe, a Windows event) derive
/// its name from the channel: the waiter creates the object and removes it when dropped, wakers
/// open it, and [`cleanup`](WaitBackend::cleanup) removes one that a waiter which died left
/// behind. Backends that sleep on the word itself ignore the channel.
///
/// # Contract
///
/// - [`wait`](WaitBackend::wait) returns once `word`'s sequence differs from `observed`, or the
///   timeout passed, or spuriously. It must not miss a [`wake`](WaitBackend::wake) that follows a
///   sequence change made after the caller read `observed`.
/// - One thread at a time sleeps on a given waiter (callers serialise; the event listener does).
/// - `wake` never blocks for long and succeeds when nobody is there to wake.
///
/// # Implementing your own
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::wait::{WaitBackend, WaitWord};
///
/// /// Sleeps in 1 ms naps: crude, but a complete backend.
/// #[derive(Debug)]
/// struct Naps;
///
/// impl WaitBackend for Naps {
///     const NAME: &'static str = "naps";
///     const ID: u32 = 1000;
///     type Waiter = ();
///     type Waker = ();
///     fn waiter(_: &str, _: &WaitWord) -> ipc_runtime::Result<()> { Ok(()) }
///     fn waker(_: &str, _: &WaitWord) -> ipc_runtime::Result<()> { Ok(()) }
///     fn wait(_: &(), word: &WaitWord, observed: u32, timeout: Option<Duration>)
///         -> ipc_runtime::Result<()> {
///         if word.seq().load(std::sync::atomic::Ordering::SeqCst) == observed {
///             std::thread::sleep(timeout.unwrap_or(Duration::MAX).min(Duration::from_millis(1)));
///         }
///         Ok(())
///     }
///     fn wake(_: &(), _: &WaitWord) -> ipc_runtime::Result<()> { Ok(()) }
/// }
///
/// ipc_runtime::wait::conformance::run::<Naps>();
/// ```
pub trait WaitBackend: Send + Sync + 'static {
    /// Short name, for errors and tools.
    const NAME: &'static str;
    /// Identifier recorded in shared structures so that participants using different
    /// mechanisms on one channel are refused. Built-in backends use 1–99; pick ≥ 1000 for yours.
    const ID: u32;
    /// Whether [`wait`](WaitBackend::wait) sleeps on the word itself and
    /// [`wake`](WaitBackend::wake) wakes every thread sleeping on it, whatever channel each
    /// registered under (true of the futex, spin and polling backends). Then several waiters can
    /// share one word and a single `wake` reaches them all: publish/subscribe uses this to wake
    /// every sleeping subscriber of a topic with one call instead of one per subscriber.
    /// Backends with an OS object per waiter (sockets, event objects, pipes) keep the default,
    /// `false`.
    const BROADCAST: bool = false;
    /// Process-local state of the waiting side.
    type Waiter: Send + Sync + fmt::Debug;
    /// Process-local state of a waking side, one per channel it wakes.
    type Waker: Send + Sync + fmt::Debug;

    /// Prepares to wait on `word` as channel `channel`.
    ///
    /// # Errors
    /// Implementations return [`Error::Io`](crate::Error::Io) when the OS object cannot be made
    /// (a socket, an event), and [`Error::InvalidName`](crate::Error::InvalidName) for a channel
    /// name they cannot use (too long for a socket path or an event name).
    fn waiter(channel: &str, word: &WaitWord) -> Result<Self::Waiter>;

    /// Prepares to wake the waiter of channel `channel`.
    ///
    /// # Errors
    /// As [`waiter`](Self::waiter): [`Error::Io`](crate::Error::Io) or
    /// [`Error::InvalidName`](crate::Error::InvalidName).
    fn waker(channel: &str, word: &WaitWord) -> Result<Self::Waker>;

    /// Sleeps while `word`'s sequence equals `observed`, at most `timeout` (forever if `None`).
    /// May return early (spuriously); callers re-check.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the OS call fails for another reason than a timeout,
    /// a wake-up or an interruption (those return `Ok`).
    fn wait(
        waiter: &Self::Waiter,
        word: &WaitWord,
        observed: u32,
        timeout: Option<Duration>,
    ) -> Result<()>;

    /// Wakes every waiter sleeping on `word`. Called after the sequence was bumped.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the OS call fails (a waiter that is gone is not an
    /// error: the wake goes nowhere).
    fn wake(waker: &Self::Waker, word: &WaitWord) -> Result<()>;

    /// [`BROADCAST`](WaitBackend::BROADCAST) backends: sleeps while every `(word, observed)`
    /// pair still holds, at most `timeout`; may return early. A subscriber reading from several
    /// publishers sleeps on all of their words at once.
    ///
    /// The default sleeps on the first word in slices of at most a millisecond, looking at the
    /// others in between; backends that can wait on several words natively override it (the
    /// futex uses `futex_waitv`).
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    fn wait_any(
        waiter: &Self::Waiter,
        words: &[(&WaitWord, u32)],
        timeout: Option<Duration>,
    ) -> Result<()> {
        match words {
            [] => {
                std::thread::sleep(timeout.unwrap_or(Duration::from_millis(1)));
                Ok(())
            }
            [(word, observed)] => Self::wait(waiter, word, *observed, timeout),
            [(first, observed), rest @ ..] => {
                let slice = Duration::from_millis(1);
                let end = timeout.and_then(|t| Instant::now().checked_add(t));
                loop {
                    let left = end.map(|end| end.saturating_duration_since(Instant::now()));
                    Self::wait(
                        waiter,
                        first,
                        *observed,
                        Some(left.map_or(slice, |l| l.min(slice))),
                    )?;
                    let moved = first.seq.load(Ordering::SeqCst) != *observed
                        || rest.iter().any(|(w, o)| w.seq.load(Ordering::SeqCst) != *o);
                    if moved || left.is_some_and(|l| l <= slice) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Sleeps while every `(waiter, word, observed)` entry still holds (each word's sequence
    /// equals its observed value), at most `timeout` (forever if `None`); may return early.
    /// Waits on many sources in one sleep: a [`WaitSet`](crate::waitset::WaitSet) and the
    /// shared async waiter use it. Each entry may name a different waiter (one per source).
    ///
    /// The default: [`BROADCAST`](WaitBackend::BROADCAST) backends sleep on the words
    /// themselves with [`wait_any`](WaitBackend::wait_any) (the waiters are not used); other
    /// backends sleep on the first entry's waiter in slices of at most a millisecond, looking at
    /// every word in between. Backends that can sleep on several OS objects at once override it
    /// (Unix sockets: one `poll` on every socket; Windows events: one
    /// `WaitForMultipleObjects`).
    ///
    /// # Errors
    ///
    /// What the backend's own `wait` returns: an OS failure while sleeping.
    fn wait_many(
        entries: &[(&Self::Waiter, &WaitWord, u32)],
        timeout: Option<Duration>,
    ) -> Result<()> {
        match entries {
            [] => {
                // Nothing to wake us: the timeout (an hour at most; callers re-check).
                std::thread::sleep(timeout.unwrap_or(Duration::from_secs(3600)));
                Ok(())
            }
            [(waiter, word, observed)] => Self::wait(waiter, word, *observed, timeout),
            [(waiter, ..), ..] if Self::BROADCAST => {
                let words: Vec<(&WaitWord, u32)> =
                    entries.iter().map(|(_, word, observed)| (*word, *observed)).collect();
                Self::wait_any(waiter, &words, timeout)
            }
            [(waiter, word, observed), ..] => {
                let slice = Duration::from_millis(1);
                let end = timeout.and_then(|t| Instant::now().checked_add(t));
                loop {
                    let left = end.map(|end| end.saturating_duration_since(Instant::now()));
                    Self::wait(
                        waiter,
                        word,
                        *observed,
                        Some(left.map_or(slice, |l| l.min(slice))),
                    )?;
                    if any_moved(entries) || left.is_some_and(|l| l <= slice) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Removes the OS objects a waiter of `channel` left behind when it died without dropping
    /// its [`Waiter`](WaitBackend::Waiter). Called by whoever reaps a dead participant; must
    /// succeed when there is nothing to remove. Backends without per-waiter objects keep the
    /// default, which does nothing.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if an object that exists cannot be removed.
    fn cleanup(channel: &str) -> Result<()> {
        let _ = channel;
        Ok(())
    }
}

/// Whether the sequence of any entry's word moved past its observed value.
pub(crate) fn any_moved<W>(entries: &[(&W, &WaitWord, u32)]) -> bool {
    entries.iter().any(|(_, word, observed)| word.seq.load(Ordering::SeqCst) != *observed)
}

/// A backend's [`cleanup`](WaitBackend::cleanup) as a plain function.
pub type ChannelCleanup = fn(&str) -> Result<()>;

/// The name and channel cleanup of the built-in backend with identifier `id` (as recorded in
/// shared structures), for tools that clean up after participants of any backend. `None` for
/// identifiers of user-defined backends.
pub fn builtin_backend(id: u32) -> Option<(&'static str, ChannelCleanup)> {
    #[cfg(all(target_os = "linux", not(miri)))]
    if id == Futex::ID {
        return Some((Futex::NAME, Futex::cleanup));
    }
    #[cfg(all(unix, not(miri)))]
    if id == UnixSocket::ID {
        return Some((UnixSocket::NAME, UnixSocket::cleanup));
    }
    #[cfg(all(windows, not(miri)))]
    if id == WindowsEvent::ID {
        return Some((WindowsEvent::NAME, WindowsEvent::cleanup));
    }
    if id == Spin::ID {
        return Some((Spin::NAME, Spin::cleanup));
    }
    if id == Polling::ID {
        return Some((Polling::NAME, Polling::cleanup));
    }
    None
}

/// Tells the waiters of `word` that their condition may have changed. Call it *after* making the
/// change visible (for example after pushing to a queue).
///
/// # Errors
/// The backend's [`wake`](WaitBackend::wake) error.
#[inline]
pub fn notify<B: WaitBackend>(waker: &B::Waker, word: &WaitWord) -> Result<()> {
    // Pairs with the SeqCst increment of `waiters` in `wait_until`: either the waiter sees our
    // change when it re-checks, or we see it registered and wake it.
    fence(Ordering::SeqCst);
    if word.waiters.load(Ordering::SeqCst) != 0 {
        wake_word::<B>(waker, word)?;
    }
    Ok(())
}

/// Bumps `word`'s sequence and wakes whoever sleeps on it, unconditionally (the caller checked
/// registrations itself, where they live).
#[inline]
pub(crate) fn wake_word<B: WaitBackend>(waker: &B::Waker, word: &WaitWord) -> Result<()> {
    word.seq.fetch_add(1, Ordering::SeqCst);
    B::wake(waker, word)
}

/// Waits until `ready()` returns true or `deadline` passes; returns whether it became ready.
///
/// Spins `spin` times first (cheap polls, for latency-critical users), then sleeps through the
/// backend. `ready` must be a cheap check of shared state that [`notify`] callers change.
///
/// # Errors
/// The backend's [`wait`](WaitBackend::wait) error.
pub fn wait_until<B: WaitBackend>(
    waiter: &B::Waiter,
    word: &WaitWord,
    deadline: Option<Instant>,
    spin: u32,
    ready: impl FnMut() -> bool,
) -> Result<bool> {
    wait_until_shared::<B>(waiter, word, word, deadline, spin, ready)
}

/// [`wait_until`] for a waiter that registers on its own word `mine` (where only it writes, and
/// where wakers look whether anyone sleeps) but sleeps on `shared`, which wakers bump before
/// waking ([`wake_word`]). A waiter that died while registered costs only wakes on its own
/// behalf.
pub(crate) fn wait_until_shared<B: WaitBackend>(
    waiter: &B::Waiter,
    mine: &WaitWord,
    shared: &WaitWord,
    deadline: Option<Instant>,
    spin: u32,
    ready: impl FnMut() -> bool,
) -> Result<bool> {
    wait_until_any::<B>(waiter, mine, &[shared], deadline, spin, ready)
}

/// [`wait_until_shared`] for a waiter that sleeps on several words at once (one per publisher
/// it reads from, and its topic's word): registers on `mine`, sleeps with
/// [`WaitBackend::wait_any`] (several words: [`WaitBackend::BROADCAST`] backends only; one word
/// is [`WaitBackend::wait`], for every backend).
pub(crate) fn wait_until_any<B: WaitBackend>(
    waiter: &B::Waiter,
    mine: &WaitWord,
    words: &[&WaitWord],
    deadline: Option<Instant>,
    spin: u32,
    mut ready: impl FnMut() -> bool,
) -> Result<bool> {
    for _ in 0..spin {
        if ready() {
            return Ok(true);
        }
        std::hint::spin_loop();
    }
    let mut observed: Vec<(&WaitWord, u32)> = Vec::with_capacity(words.len());
    loop {
        // Read before registering: a wake after our registration moves a word past it.
        observed.clear();
        observed.extend(words.iter().map(|w| (*w, w.seq.load(Ordering::SeqCst))));
        mine.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the wakers' fence, as in `wait_until_shared`.
        fence(Ordering::SeqCst);
        if ready() {
            mine.waiters.fetch_sub(1, Ordering::SeqCst);
            return Ok(true);
        }
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => {
                    mine.waiters.fetch_sub(1, Ordering::SeqCst);
                    return Ok(false);
                }
            },
        };
        let slept = B::wait_any(waiter, &observed, timeout);
        mine.waiters.fetch_sub(1, Ordering::SeqCst);
        slept?;
        if ready() {
            return Ok(true);
        }
    }
}

/// A deadline `timeout` from now (`None` = wait forever; saturates on overflow).
pub fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

#[cfg(test)]
mod tests;
