//! The waiting conformance suite: what every [`WaitBackend`] must do, written once.
//!
//! The built-in backends run it in this crate's tests; a user's backend runs it from its own
//! tests with one call, [`run`], so "implement your own backend" comes with a way to know it is
//! right. Each check panics with the backend's name and what went wrong.
//!
//! Channels are named `<domain>.wait.c<pid>-<n>` (unique per call), so checks may run in
//! parallel threads and processes.
//!
//! ```
//! ipc_runtime::wait::conformance::run::<ipc_runtime::wait::Spin>();
//! ```

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{WaitBackend, WaitWord, deadline, notify, wait_until};
use crate::domain;

/// Runs every check against `B`; panics on the first failure.
///
/// Takes about a second: most of it is the ping-pong and the timeout checks.
///
/// ```
/// ipc_runtime::wait::conformance::run::<ipc_runtime::wait::Polling>();
/// ```
pub fn run<B: WaitBackend>() {
    ready_returns_immediately::<B>();
    notify_without_waiters_is_cheap::<B>();
    wake_with_nobody_there_succeeds::<B>();
    times_out::<B>();
    wakes_before_the_timeout::<B>();
    waker_made_before_the_waiter::<B>();
    one_wake_reaches_every_sleeper::<B>();
    flood_of_wakes_never_blocks::<B>();
    stale_objects_are_replaced_and_cleaned::<B>();
    wait_many_wakes_on_any_entry::<B>();
    ping_pong::<B>(if cfg!(miri) { 20 } else { 2_000 });
}

/// A channel name no other check (in this or another process) uses.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// assert_ne!(conformance::unique_channel("x"), conformance::unique_channel("x"));
/// ```
pub fn unique_channel(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}.wait.c{}-{}-{}",
        domain::current(),
        std::process::id(),
        tag,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A condition that already holds returns at once without registering.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::ready_returns_immediately::<ipc_runtime::wait::Spin>();
/// ```
pub fn ready_returns_immediately<B: WaitBackend>() {
    let word = WaitWord::new();
    let waiter = B::waiter(&unique_channel("ready"), &word).unwrap();
    assert!(wait_until::<B>(&waiter, &word, None, 0, || true).unwrap());
    assert_eq!(word.waiters(), 0, "{}: waiter count not restored", B::NAME);
}

/// Notifying with nobody waiting does not move the sequence (no system call path).
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::notify_without_waiters_is_cheap::<ipc_runtime::wait::Spin>();
/// ```
pub fn notify_without_waiters_is_cheap<B: WaitBackend>() {
    let word = WaitWord::new();
    let waker = B::waker(&unique_channel("cheap"), &word).unwrap();
    notify::<B>(&waker, &word).unwrap();
    assert_eq!(word.seq().load(Ordering::Relaxed), 0, "{}: notify moved the sequence", B::NAME);
}

/// `wake` succeeds when no waiter exists for the channel (gone, or not created yet).
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::wake_with_nobody_there_succeeds::<ipc_runtime::wait::Spin>();
/// ```
pub fn wake_with_nobody_there_succeeds<B: WaitBackend>() {
    let word = WaitWord::new();
    let channel = unique_channel("nobody");
    let waker = B::waker(&channel, &word).unwrap();
    word.seq().fetch_add(1, Ordering::SeqCst);
    B::wake(&waker, &word).unwrap_or_else(|e| panic!("{}: wake with no waiter: {e}", B::NAME));
    let waiter = B::waiter(&channel, &word).unwrap();
    drop(waiter);
    B::wake(&waker, &word)
        .unwrap_or_else(|e| panic!("{}: wake after the waiter left: {e}", B::NAME));
}

/// A wait that nothing satisfies returns false once the deadline has passed, not before.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::times_out::<ipc_runtime::wait::Spin>();
/// ```
pub fn times_out<B: WaitBackend>() {
    let word = WaitWord::new();
    let waiter = B::waiter(&unique_channel("timeout"), &word).unwrap();
    let start = Instant::now();
    let ok =
        wait_until::<B>(&waiter, &word, deadline(Some(Duration::from_millis(30))), 10, || false)
            .unwrap();
    assert!(!ok, "{}: reported ready", B::NAME);
    assert!(start.elapsed() >= Duration::from_millis(30), "{} returned early", B::NAME);
    assert_eq!(word.waiters(), 0, "{}: waiter count not restored", B::NAME);
}

/// A sleeping waiter with a long deadline is woken by a notify from another thread.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::wakes_before_the_timeout::<ipc_runtime::wait::Spin>();
/// ```
pub fn wakes_before_the_timeout<B: WaitBackend>() {
    let channel = unique_channel("early");
    let word = WaitWord::new();
    let flag = AtomicU64::new(0);
    let waiter = B::waiter(&channel, &word).unwrap();
    let waker = B::waker(&channel, &word).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Wait until the waiter has registered, then change the condition and notify.
            while word.waiters() == 0 {
                std::thread::yield_now();
            }
            flag.store(1, Ordering::SeqCst);
            notify::<B>(&waker, &word).unwrap();
        });
        let start = Instant::now();
        let ok =
            wait_until::<B>(&waiter, &word, deadline(Some(Duration::from_secs(30))), 0, || {
                flag.load(Ordering::SeqCst) == 1
            })
            .unwrap();
        assert!(ok, "{}: not woken", B::NAME);
        assert!(start.elapsed() < Duration::from_secs(20), "{}: slept to the deadline", B::NAME);
    });
}

/// For a [`BROADCAST`](WaitBackend::BROADCAST) backend: one `wake` reaches every thread
/// sleeping on the word, each registered under its own channel. Does nothing for others.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::one_wake_reaches_every_sleeper::<ipc_runtime::wait::Spin>();
/// ```
pub fn one_wake_reaches_every_sleeper<B: WaitBackend>() {
    if !B::BROADCAST {
        return;
    }
    const SLEEPERS: u32 = 3;
    let word = WaitWord::new();
    let about_to_sleep = AtomicU32::new(0);
    let waker = B::waker(&unique_channel("broadcast-waker"), &word).unwrap();
    std::thread::scope(|s| {
        let sleepers: Vec<_> = (0..SLEEPERS)
            .map(|_| {
                s.spawn(|| {
                    let waiter = B::waiter(&unique_channel("broadcast"), &word).unwrap();
                    let observed = word.seq().load(Ordering::SeqCst);
                    about_to_sleep.fetch_add(1, Ordering::SeqCst);
                    let start = Instant::now();
                    // `wait` may return spuriously: sleep again until the sequence moves.
                    while word.seq().load(Ordering::SeqCst) == observed {
                        let left = Duration::from_secs(30).saturating_sub(start.elapsed());
                        assert!(!left.is_zero(), "{}: a sleeper was never woken", B::NAME);
                        B::wait(&waiter, &word, observed, Some(left)).unwrap();
                    }
                    start.elapsed()
                })
            })
            .collect();
        while about_to_sleep.load(Ordering::SeqCst) < SLEEPERS {
            std::thread::yield_now();
        }
        word.seq().fetch_add(1, Ordering::SeqCst);
        B::wake(&waker, &word).unwrap();
        for sleeper in sleepers {
            let slept = sleeper.join().unwrap();
            assert!(slept < Duration::from_secs(20), "{}: one wake did not reach all", B::NAME);
        }
    });
}

/// A waker made before its waiter existed still reaches it.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::waker_made_before_the_waiter::<ipc_runtime::wait::Spin>();
/// ```
pub fn waker_made_before_the_waiter<B: WaitBackend>() {
    let channel = unique_channel("early-waker");
    let word = WaitWord::new();
    let flag = AtomicU64::new(0);
    let waker = B::waker(&channel, &word).unwrap();
    let waiter = B::waiter(&channel, &word).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            while word.waiters() == 0 {
                std::thread::yield_now();
            }
            flag.store(1, Ordering::SeqCst);
            notify::<B>(&waker, &word).unwrap();
        });
        let ok =
            wait_until::<B>(&waiter, &word, deadline(Some(Duration::from_secs(30))), 0, || {
                flag.load(Ordering::SeqCst) == 1
            })
            .unwrap();
        assert!(ok, "{}: waker made first did not wake", B::NAME);
    });
}

/// Many wakes nobody consumes never block the waker, and leave the waiter able to time out.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::flood_of_wakes_never_blocks::<ipc_runtime::wait::Spin>();
/// ```
pub fn flood_of_wakes_never_blocks<B: WaitBackend>() {
    let channel = unique_channel("flood");
    let word = WaitWord::new();
    let waiter = B::waiter(&channel, &word).unwrap();
    let waker = B::waker(&channel, &word).unwrap();
    for _ in 0..if cfg!(miri) { 100 } else { 100_000 } {
        word.seq().fetch_add(1, Ordering::SeqCst);
        B::wake(&waker, &word).unwrap_or_else(|e| panic!("{}: flooded wake: {e}", B::NAME));
    }
    let start = Instant::now();
    let ok =
        wait_until::<B>(&waiter, &word, deadline(Some(Duration::from_millis(20))), 0, || false)
            .unwrap();
    assert!(!ok && start.elapsed() >= Duration::from_millis(20), "{}: after a flood", B::NAME);
}

/// A waiter that died (never dropped) does not stop the next waiter of its channel, and
/// `cleanup` removes what it left.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::stale_objects_are_replaced_and_cleaned::<ipc_runtime::wait::Spin>();
/// ```
pub fn stale_objects_are_replaced_and_cleaned<B: WaitBackend>() {
    let channel = unique_channel("stale");
    let word = WaitWord::new();
    B::cleanup(&channel).unwrap_or_else(|e| panic!("{}: cleanup of nothing: {e}", B::NAME));
    // Forgetting the waiter is what a crash looks like from the outside: its objects stay.
    std::mem::forget(B::waiter(&channel, &word).unwrap());
    let again = B::waiter(&channel, &word)
        .unwrap_or_else(|e| panic!("{}: waiter over a dead one's objects: {e}", B::NAME));
    drop(again);
    std::mem::forget(B::waiter(&channel, &word).unwrap());
    B::cleanup(&channel).unwrap_or_else(|e| panic!("{}: cleanup after a death: {e}", B::NAME));
    B::cleanup(&channel).unwrap_or_else(|e| panic!("{}: cleanup twice: {e}", B::NAME));
}

/// [`WaitBackend::wait_many`] on several waiters, each with its own word: returns at once when
/// a word already moved, wakes when any one entry is notified (each in turn, from another
/// thread), and otherwise sleeps until its timeout.
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::wait_many_wakes_on_any_entry::<ipc_runtime::wait::Spin>();
/// ```
pub fn wait_many_wakes_on_any_entry<B: WaitBackend>() {
    const N: usize = 3;
    let channels: Vec<String> = (0..N).map(|_| unique_channel("many")).collect();
    let words: Vec<WaitWord> = (0..N).map(|_| WaitWord::new()).collect();
    let waiters: Vec<B::Waiter> =
        channels.iter().zip(&words).map(|(c, w)| B::waiter(c, w).unwrap()).collect();
    let wakers: Vec<B::Waker> =
        channels.iter().zip(&words).map(|(c, w)| B::waker(c, w).unwrap()).collect();
    let entries = |observed: &[u32]| -> Vec<(&B::Waiter, &WaitWord, u32)> {
        (0..N).map(|i| (&waiters[i], &words[i], observed[i])).collect()
    };
    let seqs = || -> Vec<u32> { words.iter().map(|w| w.seq().load(Ordering::SeqCst)).collect() };

    // A word that moved before the call: no sleep at all.
    let mut stale = seqs();
    stale[1] = stale[1].wrapping_sub(1);
    let start = Instant::now();
    B::wait_many(&entries(&stale), Some(Duration::from_secs(30))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(20), "{}: slept on a moved word", B::NAME);

    // Nothing happens: the calls (which may return early) add up to the timeout.
    let start = Instant::now();
    let observed = seqs();
    while start.elapsed() < Duration::from_millis(20) {
        let left = Duration::from_millis(20).saturating_sub(start.elapsed());
        B::wait_many(&entries(&observed), Some(left)).unwrap();
        assert_eq!(seqs(), observed, "{}: a word moved by itself", B::NAME);
    }

    // Each entry in turn wakes a sleeper that waits on all of them.
    for target in 0..N {
        let registered = AtomicU32::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                while registered.load(Ordering::SeqCst) == 0 {
                    std::thread::yield_now();
                }
                words[target].seq().fetch_add(1, Ordering::SeqCst);
                B::wake(&wakers[target], &words[target]).unwrap();
            });
            let observed = seqs();
            registered.store(1, Ordering::SeqCst);
            let start = Instant::now();
            while seqs() == observed {
                let left = Duration::from_secs(30).saturating_sub(start.elapsed());
                assert!(!left.is_zero(), "{}: entry {target} never woke wait_many", B::NAME);
                B::wait_many(&entries(&observed), Some(left)).unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{}: entry {target} woke wait_many late",
                B::NAME
            );
        });
    }
}

/// Two threads pass a token back and forth `rounds` times; a lost wake-up hangs (and fails the
/// deadline).
///
/// ```
/// use ipc_runtime::wait::conformance;
///
/// conformance::ping_pong::<ipc_runtime::wait::Spin>(10);
/// ```
pub fn ping_pong<B: WaitBackend>(rounds: u64) {
    let channels = [unique_channel("ping"), unique_channel("pong")];
    let words = [WaitWord::new(), WaitWord::new()];
    let turn = AtomicU64::new(0);
    let waiters =
        [B::waiter(&channels[0], &words[0]).unwrap(), B::waiter(&channels[1], &words[1]).unwrap()];
    let wakers =
        [B::waker(&channels[0], &words[0]).unwrap(), B::waker(&channels[1], &words[1]).unwrap()];
    std::thread::scope(|s| {
        for side in 0..2u64 {
            let (words, turn, waiters, wakers) = (&words, &turn, &waiters, &wakers);
            s.spawn(move || {
                let me = side as usize;
                for round in 0..rounds {
                    let mine = round * 2 + side;
                    let deadline = deadline(Some(Duration::from_secs(20)));
                    let ok = wait_until::<B>(&waiters[me], &words[me], deadline, 0, || {
                        turn.load(Ordering::Acquire) == mine
                    })
                    .unwrap();
                    assert!(ok, "{}: round {round} lost a wake-up", B::NAME);
                    turn.store(mine + 1, Ordering::Release);
                    notify::<B>(&wakers[1 - me], &words[1 - me]).unwrap();
                }
            });
        }
    });
    assert_eq!(turn.load(Ordering::Relaxed), rounds * 2);
}
