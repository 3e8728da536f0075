//! The wait set within one process (threads), against every built-in backend. Across
//! processes: `tests/waitset_cross_process.rs`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::event::{EventId, Listener, Notifier};
use crate::pubsub::{Publisher, Subscriber};
use crate::wait::{Polling, Spin};

fn domain(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("ut{}-ws{}-{tag}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Two subscribers (one publisher thread each) and a listener (a notifier thread) in one wait
/// set: every message and event is seen exactly once, however the wake-ups fall.
fn everything_once<B: WaitBackend>() {
    const MESSAGES: u64 = 2_000;
    const EVENTS: u64 = 300;
    let d = domain("once");
    let subs: Vec<Subscriber<u64, B>> = (0..2)
        .map(|i| {
            Subscriber::<u64>::builder(&format!("t{i}"))
                .domain(&d)
                .overflow(crate::Overflow::Block)
                .backend::<B>()
                .create()
                .unwrap()
        })
        .collect();
    let listener = Listener::builder("ev").domain(&d).backend::<B>().create().unwrap();
    let waitset = WaitSet::<B>::with_backend();
    let guards: Vec<_> = subs.iter().map(|s| waitset.attach(s)).collect();
    let lguard = waitset.attach(&listener);
    std::thread::scope(|s| {
        for i in 0..2 {
            let d = &d;
            s.spawn(move || {
                let publisher = Publisher::<u64>::builder(&format!("t{i}"))
                    .domain(d)
                    .overflow(crate::Overflow::Block)
                    .backend::<B>()
                    .create()
                    .unwrap();
                for n in 0..MESSAGES {
                    publisher.publish(n).unwrap();
                }
                // What it queued stays readable after it leaves.
            });
        }
        let d = &d;
        s.spawn(move || {
            let notifier = Notifier::builder("ev").domain(d).backend::<B>().create().unwrap();
            for n in 0..EVENTS {
                notifier.notify(EventId::new(n % 7)).unwrap();
                if n % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let mut next = [0u64; 2];
        let mut events = 0;
        let end = Instant::now() + Duration::from_secs(60);
        while next.iter().any(|&n| n < MESSAGES) || events < EVENTS {
            assert!(Instant::now() < end, "{}: stuck at {next:?}, {events} events", B::NAME);
            let ready = waitset.wait_timeout(Duration::from_secs(10)).unwrap();
            for id in ready {
                if id == lguard.id() {
                    while listener.try_wait().unwrap().is_some() {
                        events += 1;
                    }
                }
                for (i, g) in guards.iter().enumerate() {
                    if id == g.id() {
                        for sample in subs[i].try_iter() {
                            assert_eq!(*sample.unwrap(), next[i], "{}: subscriber {i}", B::NAME);
                            next[i] += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(events, EVENTS);
        drop(guards);
    });
}

/// A deadline fires on time with nothing else happening; a timeout returns nothing; a
/// detached subscriber no longer wakes the set.
fn timers_and_detach<B: WaitBackend>() {
    let d = domain("timers");
    let sub = Subscriber::<u64>::builder("t").domain(&d).backend::<B>().create().unwrap();
    let publisher = Publisher::<u64>::builder("t").domain(&d).backend::<B>().create().unwrap();
    let waitset = WaitSet::<B>::with_backend();
    let guard = waitset.attach(&sub);
    assert!(sub.try_receive().unwrap().is_none()); // connects the publisher
    let start = Instant::now();
    let deadline = waitset.attach_deadline(start + Duration::from_millis(30));
    assert_eq!(waitset.wait().unwrap(), [deadline.id()], "{}", B::NAME);
    assert!(start.elapsed() >= Duration::from_millis(30), "{}: early", B::NAME);
    assert!(waitset.wait_timeout(Duration::from_millis(5)).unwrap().is_empty());
    publisher.publish(7).unwrap();
    assert_eq!(waitset.wait().unwrap(), [guard.id()]);
    assert_eq!(*sub.try_receive().unwrap().unwrap(), 7);
    drop(guard);
    publisher.publish(8).unwrap();
    assert!(waitset.wait_timeout(Duration::from_millis(5)).unwrap().is_empty());
    let tick = waitset.attach_interval(Duration::from_millis(2));
    let mut n = 0;
    waitset
        .run(|id| {
            assert_eq!(id, tick.id());
            n += 1;
            Ok(if n == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        })
        .unwrap();
}

/// A thread blocked in the subscriber's own receive does not starve the wait set.
fn shared_with_a_blocking_thread<B: WaitBackend>() {
    let d = domain("shared");
    let sub = Subscriber::<u64>::builder("t").domain(&d).backend::<B>().create().unwrap();
    let publisher = Publisher::<u64>::builder("t").domain(&d).backend::<B>().create().unwrap();
    let waitset = WaitSet::<B>::with_backend();
    let guard = waitset.attach(&sub);
    std::thread::scope(|s| {
        s.spawn(|| {
            let got = sub.receive_timeout(Duration::from_secs(30)).unwrap();
            assert!(got.is_some());
        });
        std::thread::sleep(Duration::from_millis(5));
        publisher.publish(1).unwrap();
        publisher.publish(2).unwrap();
        // Whichever took the first, the set sees a message (or the other thread's take) soon.
        let ready = waitset.wait_timeout(Duration::from_secs(20)).unwrap();
        assert!(ready.is_empty() || ready == [guard.id()]);
    });
    while sub.try_receive().unwrap().is_some() {}
}

fn suite<B: WaitBackend>() {
    everything_once::<B>();
    timers_and_detach::<B>();
    shared_with_a_blocking_thread::<B>();
}

#[test]
fn default_backend() {
    suite::<DefaultBackend>();
}

#[test]
fn polling_backend() {
    suite::<Polling>();
}

#[test]
fn spin_backend() {
    suite::<Spin>();
}

#[cfg(all(unix, not(miri)))]
#[test]
fn unix_socket_backend() {
    suite::<crate::wait::UnixSocket>();
}

#[cfg(all(unix, not(miri)))]
#[test]
fn file_descriptors_share_the_sleep() {
    use std::io::Write;
    use std::os::fd::AsFd;
    let d = domain("fd");
    let sub = Subscriber::<u64>::builder("t")
        .domain(&d)
        .backend::<crate::wait::UnixSocket>()
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .domain(&d)
        .backend::<crate::wait::UnixSocket>()
        .create()
        .unwrap();
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(sub.try_receive().unwrap().is_none()); // connects the publisher
    let waitset = WaitSet::<crate::wait::UnixSocket>::with_backend();
    let input = waitset.attach_fd(b.as_fd());
    let data = waitset.attach(&sub);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(10));
            a.write_all(b"x").unwrap();
        });
        assert_eq!(waitset.wait_timeout(Duration::from_secs(20)).unwrap(), [input.id()]);
    });
    let mut byte = [0u8];
    std::io::Read::read_exact(&mut &b, &mut byte).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(10));
            publisher.publish(3).unwrap();
        });
        assert_eq!(waitset.wait_timeout(Duration::from_secs(20)).unwrap(), [data.id()]);
    });
}
