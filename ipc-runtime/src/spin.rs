//! The process-local spin lock: one atomic swap to take it, one plain store to release it, no
//! system call.
//!
//! The heap's critical sections (TLSF) and a pub/sub port's bookkeeping are a few dozen
//! nanoseconds of bounded work that never sleeps (a blocked publisher releases its lock while
//! it waits for room), so a futex-based mutex would cost more in its second read-modify-write
//! than the work it protects. Waiting threads spin briefly, then yield, then nap, so a
//! preempted holder is not starved. Nothing here waits on another process.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A spin lock (`std`'s `Mutex` costs a second atomic read-modify-write to release).
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one thread at a time, like `Mutex<T>`.
unsafe impl<T: Send> Send for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Takes the lock, waiting as long as it takes (the holder's section is short).
    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        if let Some(guard) = self.try_lock() {
            return guard;
        }
        self.lock_slow()
    }

    #[cold]
    fn lock_slow(&self) -> Guard<'_, T> {
        let mut attempt = 0u32;
        loop {
            if !self.locked.load(Ordering::Relaxed)
                && let Some(guard) = self.try_lock()
            {
                return guard;
            }
            attempt += 1;
            match attempt {
                0..100 => std::hint::spin_loop(),
                100..200 => std::thread::yield_now(),
                _ => std::thread::sleep(Duration::from_micros(50)),
            }
        }
    }

    /// Takes the lock if it is free.
    #[inline]
    pub fn try_lock(&self) -> Option<Guard<'_, T>> {
        // `then`, not `then_some`: a guard built eagerly and dropped would release the lock
        // someone else holds.
        (!self.locked.swap(true, Ordering::Acquire)).then(|| Guard { lock: self })
    }
}

/// Holds a [`SpinLock`]; releases it on drop.
pub(crate) struct Guard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Guard<'_, T> {
    /// Runs `f` with the lock released, then takes it again (for waits that may be long).
    pub fn unlocked<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.lock.locked.store(false, Ordering::Release);
        let result = f();
        std::mem::forget(self.lock.lock());
        result
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held: no other reference exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_and_can_step_aside() {
        let lock = SpinLock::new(0u64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        *lock.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(*lock.lock(), 40_000);
        let mut guard = lock.lock();
        guard.unlocked(|| assert!(lock.try_lock().is_some(), "released while stepping aside"));
        assert!(lock.try_lock().is_none(), "held again");
    }
}
