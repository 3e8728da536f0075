//! What the writer and the reader share: their joined channel, their own waiter, the lazily
//! made waker of the other side, and the bounded wait.

use std::cell::OnceCell;
use std::io;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use super::channel::{Channel, Membership, READER, WRITER};
use crate::membership::Role;
use crate::wait::{self, DefaultBackend, WaitBackend, WaitWord};

/// How long a blocked side sleeps before it looks whether the other side died.
pub(crate) const DEATH_CHECK: Duration = Duration::from_millis(50);

type Backend = DefaultBackend;

/// One side of a pipe.
#[derive(Debug)]
pub(crate) struct Side {
    pub channel: Channel,
    membership: Membership,
    waiter: <Backend as WaitBackend>::Waiter,
    waker: OnceCell<<Backend as WaitBackend>::Waker>,
    spin: u32,
}

pub(crate) fn io_error(err: crate::Error) -> io::Error {
    match err {
        crate::Error::Io { context, source } => {
            io::Error::new(source.kind(), format!("{context}: {source}"))
        }
        other => io::Error::other(other),
    }
}

impl Side {
    /// Joins `name` as `role` and makes the waiter it sleeps on (`word` picks it out of the
    /// channel's control block).
    pub fn join(
        name: &str,
        options: &super::channel::Options,
        role: Role,
        spin: u32,
        word: fn(&Channel) -> &WaitWord,
    ) -> crate::Result<Side> {
        let (channel, mut membership) = Channel::join(name, options, role)?;
        let channel_name = channel.wait_channel(role, membership.generation);
        match Backend::waiter(&channel_name, word(&channel)) {
            Ok(waiter) => Ok(Side { channel, membership, waiter, waker: OnceCell::new(), spin }),
            Err(err) => {
                channel.leave(&mut membership);
                Err(err)
            }
        }
    }

    fn role(&self) -> Role {
        self.membership.role
    }

    /// Tells the other side, if it sleeps on `word`, that something changed (after the change
    /// was published). No system call unless it sleeps.
    #[inline]
    pub fn wake_peer(&self, word: &WaitWord) -> io::Result<()> {
        // Pairs with the waiter's SeqCst registration (see `crate::wait`).
        fence(Ordering::SeqCst);
        if word.waiters() == 0 {
            return Ok(());
        }
        self.wake_slow(word)
    }

    #[cold]
    #[allow(clippy::let_unit_value)] // The waker is `()` for some backends.
    fn wake_slow(&self, word: &WaitWord) -> io::Result<()> {
        let waker = match self.waker.get() {
            Some(waker) => waker,
            None => {
                // The peer registered, so it has joined: its generation is final.
                let peer = if self.role() == WRITER { READER } else { WRITER };
                let channel = self.channel.wait_channel(peer, self.channel.generation(peer));
                let waker = Backend::waker(&channel, word).map_err(io_error)?;
                self.waker.get_or_init(|| waker)
            }
        };
        wait::wake_word::<Backend>(waker, word).map_err(io_error)
    }

    /// Sleeps on `word` until `ready()` or for at most [`DEATH_CHECK`]; returns `ready()`.
    pub fn wait(&self, word: &WaitWord, ready: impl FnMut() -> bool) -> io::Result<bool> {
        let deadline = Instant::now() + DEATH_CHECK;
        wait::wait_until::<Backend>(&self.waiter, word, Some(deadline), self.spin, ready)
            .map_err(io_error)
    }

    /// Whether the other side left or died ([`Channel::peer_gone`]).
    pub fn peer_gone(&self) -> bool {
        self.channel.peer_gone(self.role())
    }

    /// Leaves the pipe (in `Drop`).
    pub fn leave(&mut self) {
        self.channel.leave(&mut self.membership);
    }
}
