//! Asymmetric memory barriers between processes: the hot side of a handshake pays nothing, the
//! rare side pays a system call, once per episode.
//!
//! Several protocols in shared memory are Dekker handshakes: one side stores then loads, the
//! other side stores then loads the first side's locations (a publisher stores a ring entry, then
//! looks whether the subscriber sleeps; the subscriber registers as sleeping, then looks at the
//! ring). Each side needs a StoreLoad barrier (`mfence` or a locked instruction, 4–11 ns on the
//! development VM) between its store and its load, or both can miss the other.
//!
//! When one side runs millions of times and the other rarely, Linux lets the rare (*heavy*) side
//! pay for both: `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` makes every running thread of
//! every process registered with `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` pass a full barrier
//! before the call returns. The frequent (*light*) side then needs only a compiler barrier.
//! That call costs ~150 ns when the other process is idle but ~20 µs on a virtual machine when
//! it is running (an inter-processor interrupt is a VM exit), so it is made once per *episode*,
//! never per operation:
//!
//! ```text
//! heavy side, first time in an episode:      light side, every time:
//!   flag.store(1)       (its own memory)       store mine
//!   membarrier()                               compiler barrier
//!   from now on: store; fence; load            if flag.load() != 0 || !registered { fence }
//!                                              load theirs
//! ```
//!
//! If the light side's load of `flag` sees 0, it ran before its thread passed the barrier that
//! `membarrier` forced, so its earlier store is visible to the heavy side once the call returns.
//! If it sees 1, both sides fence and the classic handshake holds. A light side whose process is
//! not registered (not Linux, or registration refused) always fences: [`light_side_may_skip`]
//! says which, and each participant advertises it in its own shared memory so that peers know
//! whether they may rely on it.
//!
//! The loom model of the ring protocol (`tests/loom_ring.rs`) models both barriers as
//! `fence(SeqCst)`: it checks the protocols built on them, not the kernel's promise.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering, compiler_fence, fence};

static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers this process as a light side (once; later calls return the first result): after
/// `true`, other processes' [`heavy`] barriers reach this process's threads.
pub(crate) fn register() -> bool {
    *REGISTERED.get_or_init(register_os)
}

/// Whether this process's light sides may use a compiler barrier instead of a fence (it is
/// registered, see [`register`]).
#[inline]
pub(crate) fn light_side_may_skip() -> bool {
    REGISTERED.get().copied().unwrap_or(false)
}

#[cfg(all(target_os = "linux", not(miri)))]
fn register_os() -> bool {
    use rustix::thread::{MembarrierCommand, membarrier, membarrier_query};
    let query = membarrier_query();
    if !query.contains_command(MembarrierCommand::GlobalExpedited) {
        return false;
    }
    match membarrier(MembarrierCommand::RegisterGlobalExpedited) {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!(%err, "membarrier registration refused; light sides fence");
            false
        }
    }
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn register_os() -> bool {
    false
}

/// The heavy barrier: on return, every thread of every registered process has passed a full
/// barrier, and so has the caller. `false` if the system has none (the caller must not rely on
/// registered light sides then).
pub(crate) fn heavy() -> bool {
    fence(Ordering::SeqCst);
    heavy_os()
}

#[cfg(all(target_os = "linux", not(miri)))]
fn heavy_os() -> bool {
    use rustix::thread::{MembarrierCommand, membarrier};
    match membarrier(MembarrierCommand::GlobalExpedited) {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(%err, "membarrier failed");
            false
        }
    }
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn heavy_os() -> bool {
    false
}

/// The light side's barrier between its store and its load: a compiler barrier, or a full fence
/// when the heavy side has announced itself through `flag` or this process is not registered.
#[inline(always)]
pub(crate) fn light(flag: &AtomicU32) {
    compiler_fence(Ordering::SeqCst);
    if flag.load(Ordering::Relaxed) != 0 || !light_side_may_skip() {
        fence(Ordering::SeqCst);
    }
}

/// The heavy side's announcement in its own memory: sets `flag` and, the first time, issues the
/// heavy barrier. Returns `false` if the light side may not have seen it (no heavy barrier on
/// this system while the peer is `peer_registered`): the caller must then not rely on the peer's
/// fence and fall back to something bounded.
pub(crate) fn announce(flag: &AtomicU32, peer_registered: bool) -> bool {
    if flag.load(Ordering::Relaxed) != 0 {
        return true;
    }
    flag.store(1, Ordering::SeqCst);
    // An unregistered peer always fences: the flag alone would do, but a barrier costs little.
    heavy() || !peer_registered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_is_stable_and_light_barrier_is_harmless() {
        let first = register();
        assert_eq!(register(), first);
        assert_eq!(light_side_may_skip(), first);
        let flag = AtomicU32::new(0);
        light(&flag);
        assert!(announce(&flag, false), "an unregistered peer fences by itself");
        assert_eq!(flag.load(Ordering::Relaxed), 1);
        light(&flag);
    }
}
