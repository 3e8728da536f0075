//! The futex backend: the kernel parks the waiter on the address of the word itself.
//!
//! The word is in shared memory and the futex is *not* `FUTEX_PRIVATE_FLAG`, so the kernel keys it
//! by the physical page and wakes across processes. No OS object is created per channel.

use std::io;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use rustix::thread::futex;

use super::{WaitBackend, WaitWord};
use crate::error::{Error, Result};

/// Whether the kernel has `futex_waitv` (cleared on the first `ENOSYS`).
static WAITV: AtomicBool = AtomicBool::new(true);

/// The trait's default `wait_any` (sleeping on the first word in short slices).
fn default_wait_any(
    waiter: &(),
    words: &[(&WaitWord, u32)],
    timeout: Option<Duration>,
) -> Result<()> {
    struct Sliced;
    impl WaitBackend for Sliced {
        const NAME: &'static str = "futex";
        const ID: u32 = Futex::ID;
        const BROADCAST: bool = true;
        type Waiter = ();
        type Waker = ();
        fn waiter(_: &str, _: &WaitWord) -> Result<()> {
            Ok(())
        }
        fn waker(_: &str, _: &WaitWord) -> Result<()> {
            Ok(())
        }
        fn wait(w: &(), word: &WaitWord, observed: u32, timeout: Option<Duration>) -> Result<()> {
            Futex::wait(w, word, observed, timeout)
        }
        fn wake(w: &(), word: &WaitWord) -> Result<()> {
            Futex::wake(w, word)
        }
    }
    Sliced::wait_any(waiter, words, timeout)
}

/// Linux futex on the shared word. The default backend on Linux.
#[derive(Debug, Clone, Copy, Default)]
pub struct Futex;

impl WaitBackend for Futex {
    const NAME: &'static str = "futex";
    const ID: u32 = 1;
    const BROADCAST: bool = true;
    type Waiter = ();
    type Waker = ();

    fn waiter(_channel: &str, _word: &WaitWord) -> Result<()> {
        Ok(())
    }

    fn waker(_channel: &str, _word: &WaitWord) -> Result<()> {
        Ok(())
    }

    fn wait(_: &(), word: &WaitWord, observed: u32, timeout: Option<Duration>) -> Result<()> {
        let timespec = timeout.map(|t| futex::Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: t.subsec_nanos() as _,
        });
        match futex::wait(word.seq(), futex::Flags::empty(), observed, timespec.as_ref()) {
            Ok(()) => Ok(()),
            Err(e)
                if e == rustix::io::Errno::AGAIN
                    || e == rustix::io::Errno::INTR
                    || e == rustix::io::Errno::TIMEDOUT =>
            {
                Ok(())
            }
            Err(e) => Err(Error::io("futex wait", io::Error::from(e))),
        }
    }

    fn wait_any(waiter: &(), words: &[(&WaitWord, u32)], timeout: Option<Duration>) -> Result<()> {
        // `futex_waitv` takes at most 128 words (Linux ≥ 5.16); with one word, or on a kernel
        // without it, fall back to the default.
        if words.len() == 1 || words.len() > 128 || !WAITV.load(Ordering::Relaxed) {
            return default_wait_any(waiter, words, timeout);
        }
        let waiters: Vec<futex::Wait> = words
            .iter()
            .map(|(word, observed)| {
                let mut wait = futex::Wait::new();
                wait.val = u64::from(*observed);
                wait.uaddr = futex::WaitPtr::new(word.seq().as_ptr().cast());
                wait.flags = futex::WaitFlags::SIZE_U32;
                wait
            })
            .collect();
        // waitv's timeout is absolute, on the clock named.
        let deadline = timeout.and_then(|t| {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
            now.checked_add(t).map(|end| futex::Timespec {
                tv_sec: end.as_secs().min(i64::MAX as u64) as i64,
                tv_nsec: end.subsec_nanos() as _,
            })
        });
        match futex::waitv(
            &waiters,
            futex::WaitvFlags::empty(),
            deadline.as_ref(),
            rustix::time::ClockId::Monotonic,
        ) {
            Ok(_) => Ok(()),
            Err(e)
                if e == rustix::io::Errno::AGAIN
                    || e == rustix::io::Errno::INTR
                    || e == rustix::io::Errno::TIMEDOUT =>
            {
                Ok(())
            }
            Err(e) if e == rustix::io::Errno::NOSYS => {
                WAITV.store(false, Ordering::Relaxed);
                default_wait_any(waiter, words, timeout)
            }
            Err(e) => Err(Error::io("futex_waitv", io::Error::from(e))),
        }
    }

    fn wake(_: &(), word: &WaitWord) -> Result<()> {
        futex::wake(word.seq(), futex::Flags::empty(), i32::MAX as u32)
            .map(drop)
            .map_err(|e| Error::io("futex wake", io::Error::from(e)))
    }
}
