//! The heap's lock: a test-and-test-and-set spin lock that yields the CPU when contended.
//!
//! The heap's critical sections are a few dozen nanoseconds of bounded work (TLSF), so a
//! futex-based mutex costs more in its two read-modify-write instructions than the work it
//! protects. This lock takes one compare-exchange to lock and a plain release store to unlock.
//! Under contention it spins briefly and then yields, so a preempted holder is not starved.

use std::hint;
use std::sync::atomic::{AtomicBool, Ordering};

/// A spin lock for short, bounded critical sections.
#[derive(Debug, Default)]
pub(crate) struct SpinLock {
    locked: AtomicBool,
}

/// Releases the lock when dropped.
#[derive(Debug)]
pub(crate) struct SpinGuard<'a> {
    lock: &'a SpinLock,
}

impl SpinLock {
    pub(crate) const fn new() -> Self {
        SpinLock { locked: AtomicBool::new(false) }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 100 {
                    spins += 1;
                    hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl Drop for SpinGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::UnsafeCell;

    struct Counter {
        lock: SpinLock,
        value: UnsafeCell<u64>,
    }
    // SAFETY: `value` is only accessed while `lock` is held.
    unsafe impl Sync for Counter {}

    #[test]
    fn excludes_concurrent_holders() {
        let counter = Counter { lock: SpinLock::new(), value: UnsafeCell::new(0) };
        let per_thread = if cfg!(miri) { 100 } else { 100_000 };
        std::thread::scope(|s| {
            let counter = &counter;
            for _ in 0..4 {
                s.spawn(move || {
                    for _ in 0..per_thread {
                        let _guard = counter.lock.lock();
                        // SAFETY: the lock is held.
                        unsafe { *counter.value.get() += 1 };
                    }
                });
            }
        });
        assert_eq!(counter.value.into_inner(), 4 * per_thread);
    }
}
