//! The busy-spin backend: the waiter polls the word in a tight loop.
//!
//! Lowest wake-up latency (no system call on either side) at the price of one CPU core per
//! waiter while it waits. Use it only with a core to spare.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{WaitBackend, WaitWord};
use crate::error::Result;

/// Busy-poll the shared word.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spin;

impl WaitBackend for Spin {
    const NAME: &'static str = "spin";
    const ID: u32 = 3;
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
        let end = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut polls = 0u32;
        while word.seq().load(Ordering::Acquire) == observed {
            std::hint::spin_loop();
            polls = polls.wrapping_add(1);
            // Reading the clock costs more than a poll; look at it every 256 polls.
            if polls.is_multiple_of(256) && end.is_some_and(|end| Instant::now() >= end) {
                break;
            }
        }
        Ok(())
    }

    fn wake(_: &(), _word: &WaitWord) -> Result<()> {
        Ok(())
    }

    fn wait_any(_: &(), words: &[(&WaitWord, u32)], timeout: Option<Duration>) -> Result<()> {
        let end = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut polls = 0u32;
        while words.iter().all(|(word, observed)| word.seq().load(Ordering::Acquire) == *observed) {
            std::hint::spin_loop();
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(256) && end.is_some_and(|end| Instant::now() >= end) {
                break;
            }
        }
        Ok(())
    }
}
