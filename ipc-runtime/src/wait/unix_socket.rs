//! The Unix-domain-socket backend: the waiter sleeps in `poll` on a datagram socket of its own;
//! a waker sends it one byte.
//!
//! Works wherever Unix domain sockets do (Linux, macOS, the BSDs) and needs nothing from the
//! kernel but a socket, so it is the portable blocking backend on Unix systems without a
//! cross-process futex. Slower than [`Futex`](super::Futex) (two system calls and a buffer per
//! wake-up instead of one), and it creates one file per waiter.
//!
//! # Objects
//!
//! The waiter binds a datagram socket at `<lock dir>/<channel>.sock` (see
//! [`liveness::lock_dir`]), owner-only, and removes it when dropped. A socket file left by a
//! waiter that died is replaced by the next waiter of the same channel, and removed by
//! [`WaitBackend::cleanup`]. Socket paths are limited (104 bytes on macOS, 108 on Linux): a
//! channel too long for that is shortened to its domain plus a 64-bit hash of the full channel.
//!
//! # Protocol
//!
//! [`wake`](WaitBackend::wake) sends one byte without blocking. A full socket buffer means bytes
//! are already waiting, so the waiter will wake anyway; a missing socket (the waiter is gone or
//! not there yet) means nobody sleeps on it. Both count as success.
//!
//! [`wait`](WaitBackend::wait) first drains old bytes, *then* re-checks the sequence, then
//! polls. The order matters: a waker bumps the sequence before it sends, so a byte drained here
//! either belongs to a bump the re-check sees, or arrives after the drain and ends the poll.

use std::io::{self, ErrorKind};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::{WaitBackend, WaitWord};
use crate::error::{Error, Result};
use crate::liveness;

/// A datagram socket per waiter; wakers send it a byte. Linux and macOS.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::wait::{self, UnixSocket, WaitBackend, WaitWord};
///
/// let channel = format!("{}.doc.sock-{}", ipc_runtime::domain::current(), std::process::id());
/// let word = WaitWord::new();
/// let waiter = UnixSocket::waiter(&channel, &word).unwrap();
/// let waker = UnixSocket::waker(&channel, &word).unwrap();
/// // Nothing happens: the wait times out.
/// let deadline = wait::deadline(Some(Duration::from_millis(5)));
/// assert!(!wait::wait_until::<UnixSocket>(&waiter, &word, deadline, 0, || false).unwrap());
/// wait::notify::<UnixSocket>(&waker, &word).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UnixSocket;

/// The waiting side of [`UnixSocket`]: a bound, non-blocking datagram socket, removed when
/// dropped.
///
/// ```
/// use ipc_runtime::wait::{UnixSocket, WaitBackend, WaitWord};
///
/// let channel = format!("{}.doc.waiter-{}", ipc_runtime::domain::current(), std::process::id());
/// let waiter = UnixSocket::waiter(&channel, &WaitWord::new()).unwrap();
/// drop(waiter); // the socket file is gone
/// ```
#[derive(Debug)]
pub struct SocketWaiter {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Drop for SocketWaiter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The waking side of [`UnixSocket`]: an unbound datagram socket, connected to the waiter's when
/// the waiter existed at creation (then it reaches that waiter only), else sending by path.
///
/// ```
/// use ipc_runtime::wait::{UnixSocket, WaitBackend, WaitWord};
///
/// let channel = format!("{}.doc.waker-{}", ipc_runtime::domain::current(), std::process::id());
/// let word = WaitWord::new();
/// let waker = UnixSocket::waker(&channel, &word).unwrap();
/// UnixSocket::wake(&waker, &word).unwrap(); // nobody there: nothing to do, no error
/// ```
#[derive(Debug)]
pub struct SocketWaker {
    socket: UnixDatagram,
    path: PathBuf,
    connected: bool,
}

/// Longest socket path used: `sun_path` holds 104 bytes on macOS (108 on Linux), NUL included.
const MAX_PATH: usize = 103;

/// Where the socket of `channel` lives.
fn socket_path(channel: &str) -> Result<PathBuf> {
    // Channels join a domain and a name, so they may exceed the 100-byte object-name limit;
    // what matters here is that they cannot leave the directory.
    let valid = !channel.is_empty()
        && !channel.starts_with('.')
        // `,` and `+` come from encoded topic names (see `crate::domain`).
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b',' | b'+'));
    if !valid {
        return Err(Error::InvalidName {
            what: "wait channel",
            name: channel.to_owned(),
            reason: "may only contain ASCII letters, digits, `_`, `-`, `,`, `+` and `.` (not first)",
        });
    }
    let dir = liveness::lock_dir();
    let full = dir.join(format!("{channel}.sock"));
    if full.as_os_str().len() <= MAX_PATH {
        return Ok(full);
    }
    // FNV-1a of the whole channel keeps distinct channels apart; the domain prefix keeps the file
    // recognisable as the domain's (and removable with it).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in channel.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let domain = channel.split('.').next().unwrap_or("ipc");
    for short in [format!("{domain}.sock.{hash:016x}"), format!("ipc-{hash:016x}.sock")] {
        let path = dir.join(short);
        if path.as_os_str().len() <= MAX_PATH {
            return Ok(path);
        }
    }
    Err(Error::InvalidName {
        what: "wait channel",
        name: channel.to_owned(),
        reason: "needs a socket path longer than 103 bytes in the lock directory",
    })
}

impl WaitBackend for UnixSocket {
    const NAME: &'static str = "unix-socket";
    const ID: u32 = 2;
    type Waiter = SocketWaiter;
    type Waker = SocketWaker;

    fn waiter(channel: &str, _word: &WaitWord) -> Result<SocketWaiter> {
        let path = socket_path(channel)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        // The channel names one waiter, so a file already there was left by a waiter that died.
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!("replaced stale wait socket {}", path.display()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing stale {}", path.display()), e)),
        }
        let socket = UnixDatagram::bind(&path)
            .map_err(|e| Error::io(format!("binding wait socket {}", path.display()), e))?;
        // From here on `SocketWaiter::drop` removes the file if anything below fails.
        let waiter = SocketWaiter { socket, path };
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&waiter.path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(format!("restricting {}", waiter.path.display()), e))?;
        }
        waiter
            .socket
            .set_nonblocking(true)
            .map_err(|e| Error::io(format!("configuring {}", waiter.path.display()), e))?;
        Ok(waiter)
    }

    fn waker(channel: &str, _word: &WaitWord) -> Result<SocketWaker> {
        let path = socket_path(channel)?;
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| Error::io(format!("creating a waker socket for {}", path.display()), e))?;
        // Connecting once saves a path lookup per wake; a waiter that does not exist yet is
        // reached by address instead.
        let connected = socket.connect(&path).is_ok();
        Ok(SocketWaker { socket, path, connected })
    }

    fn wait(
        waiter: &SocketWaiter,
        word: &WaitWord,
        observed: u32,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let mut sink = [0u8; 64];
        loop {
            match waiter.socket.recv(&mut sink) {
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::io(format!("draining {}", waiter.path.display()), e));
                }
            }
        }
        if word.seq().load(Ordering::SeqCst) != observed {
            return Ok(());
        }
        // Some platforms refuse poll timeouts above i32::MAX ms; a long wait may end early
        // (callers re-check), so cap it at an hour.
        let timespec = timeout.map(|t| {
            let t = t.min(Duration::from_secs(3600));
            Timespec { tv_sec: t.as_secs() as _, tv_nsec: t.subsec_nanos() as _ }
        });
        let mut fds = [PollFd::new(&waiter.socket, PollFlags::IN)];
        match poll(&mut fds, timespec.as_ref()) {
            Ok(_) => Ok(()),
            Err(e) if e == rustix::io::Errno::INTR => Ok(()),
            Err(e) => Err(Error::io(format!("polling {}", waiter.path.display()), e.into())),
        }
    }

    fn wait_many(
        entries: &[(&SocketWaiter, &WaitWord, u32)],
        timeout: Option<Duration>,
    ) -> Result<()> {
        poll_many(entries, &[], timeout).map(drop)
    }

    fn wake(waker: &SocketWaker, _word: &WaitWord) -> Result<()> {
        let sent = if waker.connected {
            waker.socket.send(&[1])
        } else {
            waker.socket.send_to(&[1], &waker.path)
        };
        match sent {
            Ok(_) => Ok(()),
            Err(e) if is_nobody_there(&e) => Ok(()),
            Err(e) => Err(Error::io(format!("waking {}", waker.path.display()), e)),
        }
    }

    fn cleanup(channel: &str) -> Result<()> {
        let path = socket_path(channel)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
        }
    }
}

/// Drains every entry's socket, re-checks the words, then sleeps in one `poll` on all the
/// sockets and on `fds` (raw descriptors a [`WaitSet`](crate::waitset::WaitSet) watches for
/// input). Returns, per descriptor of `fds`, whether `poll` reported it ready (all false when it
/// did not poll).
pub(crate) fn poll_many(
    entries: &[(&SocketWaiter, &WaitWord, u32)],
    fds: &[std::os::fd::BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> Result<Vec<bool>> {
    // Several entries may share a waiter (a subscriber sleeping on several words): each
    // socket once.
    let mut sockets: Vec<&SocketWaiter> = Vec::with_capacity(entries.len());
    for (waiter, ..) in entries {
        if !sockets.iter().any(|s| std::ptr::eq(*s, *waiter)) {
            sockets.push(waiter);
        }
    }
    let mut sink = [0u8; 64];
    for waiter in &sockets {
        loop {
            match waiter.socket.recv(&mut sink) {
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::io(format!("draining {}", waiter.path.display()), e));
                }
            }
        }
    }
    if super::any_moved(entries) {
        return Ok(vec![false; fds.len()]);
    }
    let timespec = timeout.map(|t| {
        let t = t.min(Duration::from_secs(3600));
        Timespec { tv_sec: t.as_secs() as _, tv_nsec: t.subsec_nanos() as _ }
    });
    let mut polled: Vec<PollFd<'_>> = sockets
        .iter()
        .map(|w| PollFd::new(&w.socket, PollFlags::IN))
        .chain(fds.iter().map(|fd| PollFd::new(fd, PollFlags::IN)))
        .collect();
    match poll(&mut polled, timespec.as_ref()) {
        Ok(_) => {}
        Err(e) if e == rustix::io::Errno::INTR => {}
        Err(e) => return Err(Error::io("polling wait sockets", e.into())),
    }
    Ok(polled[sockets.len()..].iter().map(|p| !p.revents().is_empty()).collect())
}

/// Errors that mean "no waiter to wake" (gone, not there yet) or "already woken" (buffer full).
fn is_nobody_there(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock
            | ErrorKind::NotFound
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::NotConnected
    ) || e.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error())
}
