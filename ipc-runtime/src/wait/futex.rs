//! The futex backend: the kernel parks the waiter on the address of the word itself.
//!
//! The word is in shared memory and the futex is *not* `FUTEX_PRIVATE_FLAG`, so the kernel keys it
//! by the physical page and wakes across processes. No OS object is created per channel.

use std::io;
use std::time::Duration;

use rustix::thread::futex;

use super::{WaitBackend, WaitWord};
use crate::error::{Error, Result};

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

    fn wake(_: &(), word: &WaitWord) -> Result<()> {
        futex::wake(word.seq(), futex::Flags::empty(), i32::MAX as u32)
            .map(drop)
            .map_err(|e| Error::io("futex wake", io::Error::from(e)))
    }
}
