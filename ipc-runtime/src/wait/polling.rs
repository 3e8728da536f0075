//! The polling backend: sleep in growing steps (50 µs doubling to 1 ms) until the word changes.
//!
//! Portable and cheap in CPU, with wake-up latency bounded by the current step. The fallback on
//! platforms without a cross-process futex.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{WaitBackend, WaitWord};
use crate::error::Result;

/// Sleep with exponential back-off until the shared word changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Polling;

const FIRST_STEP: Duration = Duration::from_micros(50);
const MAX_STEP: Duration = Duration::from_millis(1);

impl WaitBackend for Polling {
    const NAME: &'static str = "polling";
    const ID: u32 = 5;
    const BROADCAST: bool = true;
    type Waiter = ();
    type Waker = ();

    fn waiter(_channel: &str, _word: &WaitWord) -> Result<()> {
        Ok(())
    }

    fn waker(_channel: &str, _word: &WaitWord) -> Result<()> {
        Ok(())
    }

    fn wait(waiter: &(), word: &WaitWord, observed: u32, timeout: Option<Duration>) -> Result<()> {
        Self::wait_any(waiter, &[(word, observed)], timeout)
    }

    fn wait_any(_: &(), words: &[(&WaitWord, u32)], timeout: Option<Duration>) -> Result<()> {
        let start = Instant::now();
        let mut step = FIRST_STEP;
        while words.iter().all(|(word, observed)| word.seq().load(Ordering::Acquire) == *observed) {
            let nap = match timeout {
                Some(t) => match t.checked_sub(start.elapsed()) {
                    Some(left) if !left.is_zero() => step.min(left),
                    _ => break,
                },
                None => step,
            };
            std::thread::sleep(nap);
            step = (step * 2).min(MAX_STEP);
        }
        Ok(())
    }

    fn wake(_: &(), _word: &WaitWord) -> Result<()> {
        Ok(())
    }
}
