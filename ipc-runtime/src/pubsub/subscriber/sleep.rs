//! How a subscriber's threads sleep until a message may be there.
//!
//! A sleeping thread registers in the subscriber's own port (publishers read the count there to
//! decide whether to wake anyone) and sleeps on a word in the topic segment, which publishers
//! bump before waking:
//!
//! * with a broadcasting backend (futex, spin, polling) every subscriber of the topic sleeps on
//!   the topic's word, so one wake reaches all of them, and any number of threads of one
//!   subscriber may sleep at once, each with its own deadline;
//! * other backends (Unix sockets, Windows events, user backends) have one OS object per
//!   subscriber, on which one thread at a time may sleep: the others wait for that *baton* on a
//!   process-local condition variable, each with its own deadline, and try again when it is
//!   handed back.
//!
//! Before its first sleep a subscriber announces that it may sleep ([`barrier::announce`]), so
//! that publishers, which otherwise check registrations without a fence, start fencing.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use crate::barrier;
use crate::error::Result;
use crate::wait::{self, WaitBackend, WaitWord};

/// One thread at a time on a non-broadcasting backend's waiter.
#[derive(Debug, Default)]
pub(crate) struct Baton {
    held: Mutex<bool>,
    handed_back: Condvar,
}

impl Baton {
    /// Takes the baton if nobody holds it (a wait set about to sleep on the waiter).
    pub fn try_take(&self) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        !std::mem::replace(&mut *held, true)
    }

    /// Hands back a baton taken with [`try_take`](Self::try_take).
    pub fn hand_back(&self) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.handed_back.notify_all();
    }
}

/// Where and how a subscriber sleeps.
pub(crate) struct Sleeper<'a, B: WaitBackend> {
    pub waiter: &'a B::Waiter,
    /// The registration (in our port).
    pub mine: &'a WaitWord,
    pub baton: &'a Baton,
    /// The sticky "may sleep" flag (in our port).
    pub may_sleep: &'a std::sync::atomic::AtomicU32,
    pub spin: u32,
}

impl<B: WaitBackend> Sleeper<'_, B> {
    /// Sleeps until `ready()`, `deadline`, or a spurious wake-up; returns whether `ready()`
    /// said yes. Never waits past `deadline`, whatever other threads do.
    pub fn sleep(
        &self,
        words: &[&WaitWord],
        deadline: Option<Instant>,
        ready: impl FnMut() -> bool,
    ) -> Result<bool> {
        // A heavy barrier that failed (or a system without one) leaves publishers that skip
        // the fence unaware of us: sleep in short slices then, re-checking.
        let reliable = barrier::announce(self.may_sleep, barrier::light_side_may_skip());
        let deadline = if reliable {
            deadline
        } else {
            let slice = Instant::now() + std::time::Duration::from_millis(1);
            Some(deadline.map_or(slice, |d| d.min(slice)))
        };
        if B::BROADCAST {
            return wait::wait_until_any::<B>(
                self.waiter,
                self.mine,
                words,
                deadline,
                self.spin,
                ready,
            );
        }
        let [shared] = words else {
            unreachable!("a backend that does not broadcast sleeps on one word of its own")
        };
        let mut held = self.baton.held.lock().unwrap_or_else(PoisonError::into_inner);
        if *held {
            // Another thread sleeps on the waiter: wait for it to hand the baton back (then
            // our caller looks again), or for our own deadline.
            match deadline {
                None => {
                    drop(self.baton.handed_back.wait(held).unwrap_or_else(PoisonError::into_inner))
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    drop(
                        self.baton
                            .handed_back
                            .wait_timeout(held, left)
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                }
            }
            return Ok(false);
        }
        *held = true;
        drop(held);
        let result = wait::wait_until_shared::<B>(
            self.waiter,
            self.mine,
            shared,
            deadline,
            self.spin,
            ready,
        );
        *self.baton.held.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.baton.handed_back.notify_all();
        result
    }
}
