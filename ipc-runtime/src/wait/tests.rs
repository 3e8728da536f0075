//! Runs the waiting conformance suite ([`super::conformance`]) against every built-in backend,
//! plus checks of the protocol itself that do not depend on a backend.

use std::sync::atomic::Ordering;

use super::conformance::{self, unique_channel};
use super::*;

#[cfg(all(target_os = "linux", not(miri)))]
#[test]
fn futex_conforms() {
    conformance::run::<Futex>();
}

#[cfg(all(unix, not(miri)))]
#[test]
fn unix_socket_conforms() {
    conformance::run::<UnixSocket>();
}

#[cfg(all(windows, not(miri)))]
#[test]
fn windows_event_conforms() {
    conformance::run::<WindowsEvent>();
}

#[test]
fn spin_conforms() {
    conformance::run::<Spin>();
}

#[test]
fn polling_conforms() {
    conformance::run::<Polling>();
}

/// `wait_until` registers exactly while it may sleep, and a notify with a registered waiter
/// moves the sequence (that is what wakes futex-like backends).
#[test]
fn notify_moves_the_sequence_only_for_registered_waiters() {
    fn check<B: WaitBackend>() {
        let word = WaitWord::new();
        let waker = B::waker(&unique_channel("seq"), &word).unwrap();
        notify::<B>(&waker, &word).unwrap();
        assert_eq!(word.seq().load(Ordering::SeqCst), 0);
        word.waiters.fetch_add(1, Ordering::SeqCst);
        notify::<B>(&waker, &word).unwrap();
        assert_eq!(word.seq().load(Ordering::SeqCst), 1);
        word.waiters.fetch_sub(1, Ordering::SeqCst);
    }
    check::<Spin>();
    check::<Polling>();
    check::<DefaultBackend>();
}

/// The spin phase answers a condition that turns true while spinning, without registering.
#[test]
fn spin_phase_sees_the_condition() {
    fn check<B: WaitBackend>() {
        let word = WaitWord::new();
        let waiter = B::waiter(&unique_channel("spin"), &word).unwrap();
        let mut polls = 0;
        let ok = wait_until::<B>(&waiter, &word, None, 100, || {
            polls += 1;
            polls == 50
        })
        .unwrap();
        assert!(ok);
        assert_eq!(polls, 50);
        assert_eq!(word.waiters(), 0);
    }
    check::<Spin>();
}

/// A socket channel too long for `sun_path` still works (shortened to domain + hash) and the
/// shortened name stays in the domain.
#[cfg(all(unix, not(miri)))]
#[test]
fn long_socket_channels_are_shortened() {
    let channel = format!("{}.{}", unique_channel("long"), "x".repeat(90));
    let word = WaitWord::new();
    let waiter = UnixSocket::waiter(&channel, &word).unwrap();
    let waker = UnixSocket::waker(&channel, &word).unwrap();
    word.waiters.fetch_add(1, Ordering::SeqCst);
    let observed = word.seq().load(Ordering::SeqCst);
    notify::<UnixSocket>(&waker, &word).unwrap();
    UnixSocket::wait(&waiter, &word, observed, Some(std::time::Duration::from_secs(10))).unwrap();
    word.waiters.fetch_sub(1, Ordering::SeqCst);
    drop(waiter);
    UnixSocket::cleanup(&channel).unwrap();
}
