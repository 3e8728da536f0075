//! A wait backend of our own: one named pipe (FIFO) per waiter — what "implement your own
//! notifier/observer and use it with the public API" looks like.
//!
//! Nothing here is special to the framework: the backend implements
//! [`ipc_runtime::wait::WaitBackend`] with public items only, proves itself with the public
//! conformance suite ([`ipc_runtime::wait::conformance::run`]), and then plugs into
//! [`Notifier<Fifo>`](ipc_runtime::event::Notifier) and
//! [`Listener<Fifo>`](ipc_runtime::event::Listener) unchanged.
//!
//! ```
//! use ipc_examples::fifo::Fifo;
//! use ipc_runtime::event::{EventId, Listener, Notifier};
//!
//! # let name = format!("doc-fifo-{}", std::process::id());
//! let listener = Listener::<Fifo>::with_backend(&name)?;
//! let notifier = Notifier::<Fifo>::with_backend(&name)?;
//! notifier.notify(EventId::new(1))?;
//! assert_eq!(listener.wait()?, EventId::new(1));
//! # Ok::<(), ipc_runtime::Error>(())
//! ```
//!
//! # How it works
//!
//! The waiter creates a FIFO at `<lock dir>/<channel>.fifo` (mode 0600) and opens it for
//! reading *and* writing, non-blocking: holding a write end itself means the pipe never reports
//! end-of-file when wakers come and go. A waker opens the FIFO for writing (non-blocking, so it
//! fails at once with `ENXIO` when no waiter has it open) and writes one byte per wake. The
//! waiter drains old bytes, re-checks the word's sequence, then sleeps in `poll` — the same
//! order the built-in Unix-socket backend uses, for the same reason: a waker bumps the sequence
//! before it writes, so no wake-up is lost between the check and the sleep.
//!
//! Linux only: `mkfifo` is not in `std`, and rustix does not offer it on Apple systems; a port
//! to macOS would call `libc::mkfifo` instead and keep everything else.

use std::fmt;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ipc_runtime::Error;
use ipc_runtime::liveness;
use ipc_runtime::wait::{WaitBackend, WaitWord};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;

/// Named pipes as a wait backend.
///
/// ```
/// ipc_runtime::wait::conformance::run::<ipc_examples::fifo::Fifo>();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Fifo;

/// The waiting side: the FIFO, open for reading (and writing, to never see end-of-file);
/// removed when dropped.
///
/// ```
/// use ipc_examples::fifo::Fifo;
/// use ipc_runtime::wait::{WaitBackend, WaitWord};
///
/// let channel = format!("{}.doc.fifo-{}", ipc_runtime::domain::current(), std::process::id());
/// let waiter = Fifo::waiter(&channel, &WaitWord::new()).unwrap();
/// drop(waiter);
/// ```
#[derive(Debug)]
pub struct FifoWaiter {
    fd: OwnedFd,
    path: PathBuf,
}

impl Drop for FifoWaiter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The waking side: the FIFO's path and, once it could be opened, a write end.
///
/// ```
/// use ipc_examples::fifo::Fifo;
/// use ipc_runtime::wait::{WaitBackend, WaitWord};
///
/// let channel = format!("{}.doc.fifo-w-{}", ipc_runtime::domain::current(), std::process::id());
/// let word = WaitWord::new();
/// let waker = Fifo::waker(&channel, &word).unwrap();
/// Fifo::wake(&waker, &word).unwrap(); // no FIFO yet: nobody to wake
/// ```
pub struct FifoWaker {
    path: PathBuf,
    fd: Mutex<Option<OwnedFd>>,
}

impl fmt::Debug for FifoWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FifoWaker").field("path", &self.path).finish()
    }
}

fn os_error(context: String, errno: Errno) -> Error {
    Error::Io { context, source: errno.into() }
}

/// Where the FIFO of `channel` lives; refuses names that could leave the directory.
fn fifo_path(channel: &str) -> ipc_runtime::Result<PathBuf> {
    let valid = !channel.is_empty()
        && !channel.starts_with('.')
        && channel.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        return Err(Error::InvalidName {
            what: "wait channel",
            name: channel.to_owned(),
            reason: "may only contain ASCII letters, digits, `_`, `-` and `.` (not first)",
        });
    }
    Ok(liveness::lock_dir().join(format!("{channel}.fifo")))
}

fn remove_if_there(path: &Path) -> ipc_runtime::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io { context: format!("removing {}", path.display()), source: e }),
    }
}

impl WaitBackend for Fifo {
    const NAME: &'static str = "fifo";
    const ID: u32 = 1001;
    type Waiter = FifoWaiter;
    type Waker = FifoWaker;

    fn waiter(channel: &str, _word: &WaitWord) -> ipc_runtime::Result<FifoWaiter> {
        let path = fifo_path(channel)?;
        // The channel names one waiter: anything already there was left by one that died.
        remove_if_there(&path)?;
        rustix::fs::mkfifoat(CWD, &path, Mode::RUSR | Mode::WUSR)
            .map_err(|e| os_error(format!("creating FIFO {}", path.display()), e))?;
        let flags = OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC;
        match rustix::fs::open(&path, flags, Mode::empty()) {
            Ok(fd) => Ok(FifoWaiter { fd, path }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(os_error(format!("opening FIFO {}", path.display()), e))
            }
        }
    }

    fn waker(channel: &str, _word: &WaitWord) -> ipc_runtime::Result<FifoWaker> {
        Ok(FifoWaker { path: fifo_path(channel)?, fd: Mutex::new(None) })
    }

    fn wait(
        waiter: &FifoWaiter,
        word: &WaitWord,
        observed: u32,
        timeout: Option<Duration>,
    ) -> ipc_runtime::Result<()> {
        let mut sink = [0u8; 256];
        loop {
            match rustix::io::read(&waiter.fd, &mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(os_error(format!("draining {}", waiter.path.display()), e)),
            }
        }
        if word.seq().load(Ordering::SeqCst) != observed {
            return Ok(());
        }
        let timespec = timeout.map(|t| {
            let t = t.min(Duration::from_secs(3600));
            Timespec { tv_sec: t.as_secs() as _, tv_nsec: t.subsec_nanos() as _ }
        });
        let mut fds = [PollFd::new(&waiter.fd, PollFlags::IN)];
        match poll(&mut fds, timespec.as_ref()) {
            Ok(_) | Err(Errno::INTR) => Ok(()),
            Err(e) => Err(os_error(format!("polling {}", waiter.path.display()), e)),
        }
    }

    fn wake(waker: &FifoWaker, _word: &WaitWord) -> ipc_runtime::Result<()> {
        let mut fd = waker.fd.lock().unwrap_or_else(PoisonError::into_inner);
        // Two tries: a cached write end may belong to a FIFO whose waiter has gone (EPIPE; Rust
        // programs ignore SIGPIPE), and the path may now hold a new waiter's FIFO.
        for _ in 0..2 {
            if fd.is_none() {
                let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
                match rustix::fs::open(&waker.path, flags, Mode::empty()) {
                    Ok(opened) => *fd = Some(opened),
                    // No FIFO, or nobody reading it: nobody to wake.
                    Err(Errno::NOENT | Errno::NXIO) => return Ok(()),
                    Err(e) => {
                        return Err(os_error(format!("opening {}", waker.path.display()), e));
                    }
                }
            }
            let Some(open) = fd.as_ref() else { return Ok(()) };
            match rustix::io::write(open, &[1]) {
                // Written, or the pipe is full: the waiter has bytes to wake it either way.
                Ok(_) | Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::PIPE) => *fd = None,
                Err(e) => return Err(os_error(format!("waking {}", waker.path.display()), e)),
            }
        }
        Ok(())
    }

    fn cleanup(channel: &str) -> ipc_runtime::Result<()> {
        remove_if_there(&fifo_path(channel)?)
    }
}
