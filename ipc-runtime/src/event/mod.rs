//! Events: small ids sent from any number of [`Notifier`]s to any number of [`Listener`]s, across
//! processes, with blocking waits that cost no CPU.
//!
//! ```
//! use std::time::Duration;
//! use ipc_runtime::prelude::*;
//!
//! # ipc_runtime::domain::set_current(&format!("doc-door-{}", std::process::id())).unwrap();
//! let door = "door";
//! let listener = Listener::new(&door)?;           // usually in another process
//! let notifier = Notifier::new(&door)?;
//! notifier.notify(EventId::new(3))?;
//! notifier.notify(EventId::new(3))?;
//! assert_eq!(listener.wait()?, EventId::new(3));
//! assert_eq!(listener.wait_timeout(Duration::from_millis(1))?, Some(EventId::new(3)));
//! assert_eq!(listener.try_wait()?, None);
//! # Ok::<(), ipc_runtime::Error>(())
//! ```
//!
//! This module owns the event channel: its shared segment, who is in it, how an id gets from a
//! notifier to every listener, and how listeners learn that notifiers went away. How a listener
//! *sleeps* is not here: that is the [waiting seam](crate::wait), whose backend is the type
//! parameter `B` of [`Notifier<B>`] and [`Listener<B>`] (the futex on Linux by default; Unix
//! sockets, busy-spin, polling, or your own).
//!
//! # Semantics
//!
//! - **Broadcast.** Every listener of a channel receives every event notified while it is a
//!   member (from `Listener::new` returning until it is dropped). Events notified before a
//!   listener joined are not replayed to it.
//! - **Counting.** A listener remembers every event until it takes it: `N` notifies of one id
//!   before a take are `N` events, and [`Listener::try_wait`] / [`Listener::wait`] return them one
//!   at a time. [`Listener::try_wait_all`] takes everything pending at once, as `(id, count)`
//!   pairs. Nothing is lost while nobody waits, and the memory this takes is fixed (one counter
//!   per id per listener), however many events pile up. Counting was chosen over a coalescing
//!   bitset so that "every event is accounted for" can be checked exactly, and so that a
//!   listener can tell a burst from a single event; a user who wants coalescing drains with
//!   `try_wait_all` and ignores the counts.
//! - **Order.** Ids are not queued in arrival order: a listener takes ids round-robin starting
//!   after the id it took last, so a busy id cannot starve the others.
//! - **Ids** are `0..=max_event_id` (1023 by default, at most 65535), fixed by whoever creates the
//!   channel. An id outside the range is an error at `notify`.
//!
//! # Shared memory
//!
//! One segment per channel, `<domain>.event.<name>` (layout in the `layout` module): a config
//! written once by the creator, epochs, one small slot per notifier, and one slot per listener
//! holding its [`WaitWord`](crate::wait::WaitWord), a bitset of possibly-pending ids, and a
//! `u64` counter per id. A notify increments the id's counter in every listener's slot, then sets
//! the id's bit, and wakes the listener through the eventcount protocol
//! ([`wait::notify`](crate::wait::notify)), which is one fence and one load when the listener is
//! not asleep. A take decrements a counter (compare-and-swap, so threads sharing a listener can
//! take concurrently) and clears the bit with the last event, re-checking the counter after the
//! clear so that a notify racing with the take is never hidden. Bits are hints, counters are the
//! truth. The counters of ids 0–3 share a cache line with the listener's word and first bits, so
//! a wake-up with a small id moves one cache line between cores.
//!
//! A notifier killed between its two steps leaves a counted event without its bit; the next
//! notify of that id sets it again, and reaping the dead notifier restores every missing bit.
//!
//! Every participant maps the segment from its own options, validated against the segment's
//! size; nothing read back from shared memory is used as an address. A listener checks what
//! notifiers write into its slot (a bit for an id beyond the range is a
//! [`Corrupted`](crate::Error::Corrupted) error naming the channel, slot and ids, and is cleared),
//! and notifiers check the slot states listeners write. A participant that writes garbage can
//! lose or invent events for its peers, never make them read or write out of bounds.
//!
//! # Liveness and cleanup
//!
//! Membership follows the protocol topics follow too (`crate::membership`). Each slot records
//! its holder's [process token](crate::liveness::ProcessToken) (one per process and domain,
//! shared by all of the process's participants) and a generation bumped by every new holder,
//! so a new holder's leftovers are never confused with an old one's. Who is in the
//! channel changes only under a [file lock](crate::liveness::FileLock)
//! (`<domain>.lock.event.<name>`): creating or replacing the segment, claiming or freeing a slot,
//! and probing tokens. Joining and leaving reap slots whose process token is no longer held. A segment
//! whose creator died before marking it ready, or whose participants are all dead, is replaced
//! by the next participant. The last participant to leave removes the segment and the lock file,
//! so a domain whose processes all exit is left empty.
//!
//! A listener can ask how many notifiers are alive ([`Listener::notifiers_alive`]), and can opt
//! in to be told in its waits: with [`ListenerBuilder::report_dead_notifiers`] a wait returns
//! [`Error::NotifierDied`](crate::Error::NotifierDied) once for each batch of notifiers found
//! dead (killed or crashed, not left), and with [`ListenerBuilder::report_no_notifiers`] a wait
//! returns [`Error::NoNotifiers`](crate::Error::NoNotifiers) once no notifier is left, after
//! having seen one, and after pending events were taken. A death is noticed by probing tokens,
//! which a watching listener does every [`liveness_interval`](ListenerBuilder::liveness_interval)
//! (100 ms by default) while it waits — that interval bounds how long a blocked `wait` takes to
//! hear about a killed notifier. A notifier that leaves normally wakes the listeners at once.
//! Listeners that do not opt in never probe and never wake up for nothing.

pub(crate) mod channel;
mod layout;
mod listener;
mod notifier;

use std::fmt;

pub use channel::{
    DEFAULT_MAX_EVENT_ID, DEFAULT_MAX_LISTENERS, DEFAULT_MAX_NOTIFIERS, MAX_EVENT_NAME_LEN,
};
pub use layout::{MAX_EVENT_ID_LIMIT, MAX_PARTICIPANTS_LIMIT};
pub use listener::{DEFAULT_LIVENESS_INTERVAL, Listener, ListenerBuilder};
pub use notifier::{Notifier, NotifierBuilder};

/// An event id: a small number, `0..=max_event_id` of the channel it is sent on.
///
/// ```
/// use ipc_runtime::event::EventId;
///
/// let id = EventId::new(7);
/// assert_eq!(id.value(), 7);
/// assert_eq!(id.to_string(), "event #7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(u64);

impl EventId {
    /// The id `n`.
    ///
    /// ```
    /// assert_eq!(ipc_runtime::event::EventId::new(1).value(), 1);
    /// ```
    pub const fn new(n: u64) -> EventId {
        EventId(n)
    }

    /// The number.
    ///
    /// ```
    /// assert_eq!(ipc_runtime::event::EventId::new(42).value(), 42);
    /// ```
    pub const fn value(self) -> u64 {
        self.0
    }
}

impl From<u64> for EventId {
    fn from(n: u64) -> Self {
        EventId(n)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event #{}", self.0)
    }
}

#[cfg(all(test, not(miri)))]
mod tests;
