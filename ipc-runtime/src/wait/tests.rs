//! The waiting conformance suite, written once and run against every backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// Two threads pass a token back and forth `rounds` times; a lost wake-up hangs (and fails the
/// deadline).
fn ping_pong<B: WaitBackend>(rounds: u64) {
    let words = [WaitWord::new(), WaitWord::new()];
    let turn = AtomicU64::new(0);
    let waiters = [B::waiter("a", &words[0]).unwrap(), B::waiter("b", &words[1]).unwrap()];
    let wakers = [B::waker("a", &words[0]).unwrap(), B::waker("b", &words[1]).unwrap()];
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

/// A wait that nothing satisfies returns false once the deadline has passed.
fn times_out<B: WaitBackend>() {
    let word = WaitWord::new();
    let waiter = B::waiter("t", &word).unwrap();
    let start = Instant::now();
    let ok =
        wait_until::<B>(&waiter, &word, deadline(Some(Duration::from_millis(30))), 10, || false)
            .unwrap();
    assert!(!ok);
    assert!(start.elapsed() >= Duration::from_millis(30), "{} returned early", B::NAME);
    assert_eq!(word.waiters(), 0, "waiter count not restored");
}

/// A condition that already holds returns at once without registering.
fn ready_returns_immediately<B: WaitBackend>() {
    let word = WaitWord::new();
    let waiter = B::waiter("r", &word).unwrap();
    assert!(wait_until::<B>(&waiter, &word, None, 0, || true).unwrap());
    assert_eq!(word.waiters(), 0);
}

/// Notifying with nobody waiting does not move the sequence (no system call path).
fn notify_without_waiters_is_cheap<B: WaitBackend>() {
    let word = WaitWord::new();
    let waker = B::waker("n", &word).unwrap();
    notify::<B>(&waker, &word).unwrap();
    assert_eq!(word.seq().load(Ordering::Relaxed), 0);
}

fn conformance<B: WaitBackend>() {
    ready_returns_immediately::<B>();
    notify_without_waiters_is_cheap::<B>();
    times_out::<B>();
    ping_pong::<B>(if cfg!(miri) { 20 } else { 2_000 });
}

#[cfg(all(target_os = "linux", not(miri)))]
#[test]
fn futex_conforms() {
    conformance::<Futex>();
}

#[test]
fn spin_conforms() {
    conformance::<Spin>();
}

#[test]
fn polling_conforms() {
    conformance::<Polling>();
}
