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
//! | [`Futex`] | `futex` on the word itself (cross-process, not `FUTEX_PRIVATE`) | Linux |
//! | [`Spin`] | busy-poll the word (lowest latency, burns a core while waiting) | all |
//! | [`Polling`] | sleep with exponential back-off (50 µs → 1 ms) | all |
//!
//! Further backends (Unix domain sockets, Windows event objects, a user's own) implement the same
//! trait; the conformance suite in this module's tests runs against every one of them.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::Result;

#[cfg(all(target_os = "linux", not(miri)))]
mod futex;
mod polling;
mod spin;

#[cfg(all(target_os = "linux", not(miri)))]
pub use futex::Futex;
pub use polling::Polling;
pub use spin::Spin;

/// The backend used when none is named: the futex on Linux, polling elsewhere.
#[cfg(all(target_os = "linux", not(miri)))]
pub type DefaultBackend = Futex;
/// The backend used when none is named: the futex on Linux, polling elsewhere.
#[cfg(not(all(target_os = "linux", not(miri))))]
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
}

/// One OS mechanism for sleeping until a [`WaitWord`] changes.
///
/// Implementations only sleep and wake; the protocol that makes this race-free lives in
/// [`wait_until`] and [`notify`], written once for all backends.
///
/// `channel` names one waiter's channel uniquely within the domain (for backends that need an OS
/// object per waiter, such as a socket path or an event name); the waiter creates the object and
/// removes it when dropped, wakers open it.
pub trait WaitBackend: Send + Sync + 'static {
    /// Short name, for errors and tools.
    const NAME: &'static str;
    /// Identifier recorded in shared structures so that participants using different
    /// mechanisms on one channel are refused. Built-in backends use 1–99; pick ≥ 1000 for yours.
    const ID: u32;
    /// Process-local state of the waiting side.
    type Waiter: Send + Sync + fmt::Debug;
    /// Process-local state of a waking side, one per channel it wakes.
    type Waker: Send + Sync + fmt::Debug;

    /// Prepares to wait on `word` as channel `channel`.
    fn waiter(channel: &str, word: &WaitWord) -> Result<Self::Waiter>;

    /// Prepares to wake the waiter of channel `channel`.
    fn waker(channel: &str, word: &WaitWord) -> Result<Self::Waker>;

    /// Sleeps while `word`'s sequence equals `observed`, at most `timeout` (forever if `None`).
    /// May return early (spuriously); callers re-check.
    fn wait(
        waiter: &Self::Waiter,
        word: &WaitWord,
        observed: u32,
        timeout: Option<Duration>,
    ) -> Result<()>;

    /// Wakes every waiter sleeping on `word`. Called after the sequence was bumped.
    fn wake(waker: &Self::Waker, word: &WaitWord) -> Result<()>;
}

/// Tells the waiters of `word` that their condition may have changed. Call it *after* making the
/// change visible (for example after pushing to a queue).
#[inline]
pub fn notify<B: WaitBackend>(waker: &B::Waker, word: &WaitWord) -> Result<()> {
    // Pairs with the SeqCst increment of `waiters` in `wait_until`: either the waiter sees our
    // change when it re-checks, or we see it registered and wake it.
    fence(Ordering::SeqCst);
    if word.waiters.load(Ordering::SeqCst) != 0 {
        word.seq.fetch_add(1, Ordering::SeqCst);
        B::wake(waker, word)?;
    }
    Ok(())
}

/// Waits until `ready()` returns true or `deadline` passes; returns whether it became ready.
///
/// Spins `spin` times first (cheap polls, for latency-critical users), then sleeps through the
/// backend. `ready` must be a cheap check of shared state that [`notify`] callers change.
pub fn wait_until<B: WaitBackend>(
    waiter: &B::Waiter,
    word: &WaitWord,
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
    loop {
        let observed = word.seq.load(Ordering::SeqCst);
        word.waiters.fetch_add(1, Ordering::SeqCst);
        if ready() {
            word.waiters.fetch_sub(1, Ordering::SeqCst);
            return Ok(true);
        }
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => {
                    word.waiters.fetch_sub(1, Ordering::SeqCst);
                    return Ok(false);
                }
            },
        };
        let slept = B::wait(waiter, word, observed, timeout);
        word.waiters.fetch_sub(1, Ordering::SeqCst);
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
