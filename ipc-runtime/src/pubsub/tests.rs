//! In-process publish/subscribe tests (the cross-process ones live in `tests/`). Each test uses
//! its own domain through the builders.

use std::time::Duration;

use crate::prelude::*;
use crate::wait::{DefaultBackend, Polling, Spin, WaitBackend};

fn domain(test: &str) -> String {
    format!("ut{}-ps-{test}", std::process::id())
}

fn leftovers(domain: &str) -> Vec<String> {
    let prefix = format!("{domain}.");
    std::fs::read_dir(crate::liveness::lock_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

fn assert_clean(domain: &str) {
    let left = leftovers(domain);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[derive(ShmMessage, Default, Debug)]
#[shm(topic = "frames")]
#[repr(C)]
struct Frame {
    id: u32,
    pixels: ShmVec<u8>,
    name: ShmString,
}

#[test]
fn loan_build_in_place_publish() {
    let d = domain("loan");
    let publisher = Publisher::<Frame>::builder("loan").domain(&d).create().unwrap();
    let subscriber = Subscriber::<Frame>::builder("loan").domain(&d).create().unwrap();
    let mut sample = publisher.loan().unwrap();
    sample.id = 7;
    sample.pixels.extend_from_slice(&[1, 2, 3]);
    sample.name.push_str("in place");
    sample.publish().unwrap();

    let uninit = publisher.loan_uninit().unwrap();
    uninit.write(Frame { id: 8, ..Frame::default() });
    // An unpublished loan goes back to the pool without a trace.
    let dropped = publisher.loan().unwrap();
    drop(dropped);

    let got = subscriber.try_receive().unwrap().unwrap();
    assert_eq!((got.id, &got.pixels[..], got.name.as_str()), (7, &[1u8, 2, 3][..], "in place"));
    assert_eq!(got.sequence(), 1);
    assert!(subscriber.try_receive().unwrap().is_none(), "unpublished loans are not delivered");
    drop(got);
    drop(subscriber);
    publisher.cleanup().unwrap();
    assert_eq!(publisher.samples_in_use(), 0);
    drop(publisher);
    assert_clean(&d);
}

#[test]
fn loan_limit_is_an_error() {
    let d = domain("loanlimit");
    let publisher = Publisher::<u32>::builder("l").domain(&d).create().unwrap();
    let loans: Vec<_> = (0..4).map(|_| publisher.loan().unwrap()).collect();
    assert!(matches!(publisher.loan(), Err(Error::LoanLimit { max: 4, .. })));
    drop(loans);
    assert!(publisher.loan().is_ok());
}

#[test]
fn incompatible_options_name_the_option() {
    let d = domain("opts");
    let _first = Publisher::<u32>::builder("o").domain(&d).history(2).create().unwrap();
    let err = Subscriber::<u32>::builder("o").domain(&d).history(3).create().unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic `o` was created with history = 2; this participant asked for 3"
    );
    let err =
        Subscriber::<u32>::builder("o").domain(&d).overflow(Overflow::Block).create().unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions { option: "overflow", .. }), "{err}");
    // Not asking is agreeing.
    Subscriber::<u32>::builder("o").domain(&d).create().unwrap();
}

#[test]
fn backend_mismatch_is_refused() {
    let d = domain("backend");
    let _first = Subscriber::<u32>::builder("b").domain(&d).create().unwrap();
    let err = Publisher::<u32>::builder("b").domain(&d).backend::<Spin>().create().unwrap_err();
    match err {
        Error::IncompatibleOptions { option: "wait backend", requested, .. } => {
            assert!(requested.contains(Spin::NAME), "{requested}")
        }
        other => panic!("{other}"),
    }
}

#[test]
fn spin_backend_works_end_to_end() {
    let d = domain("spin");
    let subscriber = Subscriber::<u64>::builder("s")
        .domain(&d)
        .overflow(Overflow::Block)
        .backend::<Spin>()
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("s").domain(&d).backend::<Spin>().create().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=100 {
                publisher.publish(i).unwrap();
            }
        });
        for i in 1..=100 {
            let sample = subscriber.receive_timeout(Duration::from_secs(10)).unwrap().unwrap();
            assert_eq!(*sample, i);
        }
    });
}

/// Three subscribers asleep in `receive` are all woken by one publish: with a broadcasting
/// backend through the topic's shared word (one wake call), otherwise one wake each.
fn one_publish_wakes_every_sleeper<B: WaitBackend>(tag: &str) {
    let d = domain(tag);
    let subscribers: Vec<_> = (0..3)
        .map(|_| Subscriber::<u64>::builder("wake").domain(&d).backend::<B>().create().unwrap())
        .collect();
    let publisher = Publisher::<u64>::builder("wake").domain(&d).backend::<B>().create().unwrap();
    std::thread::scope(|s| {
        let receivers: Vec<_> = subscribers
            .iter()
            .map(|sub| {
                s.spawn(move || {
                    let start = std::time::Instant::now();
                    let value = *sub.receive_timeout(Duration::from_secs(30)).unwrap().unwrap();
                    // At the deadline `receive_timeout` looks once more and would find the
                    // message even if nobody woke it.
                    assert!(start.elapsed() < Duration::from_secs(20), "{}: slept on", B::NAME);
                    value
                })
            })
            .collect();
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while !subscribers.iter().all(|sub| sub.sleeping()) {
            assert!(std::time::Instant::now() < end, "{}: subscribers never slept", B::NAME);
            std::thread::yield_now();
        }
        publisher.publish(42).unwrap();
        for receiver in receivers {
            assert_eq!(receiver.join().unwrap(), 42, "{}", B::NAME);
        }
    });
    drop(publisher);
    drop(subscribers);
    assert_clean(&d);
}

#[test]
fn one_publish_wakes_every_sleeping_subscriber() {
    one_publish_wakes_every_sleeper::<DefaultBackend>("wake-default");
    one_publish_wakes_every_sleeper::<Spin>("wake-spin");
    one_publish_wakes_every_sleeper::<Polling>("wake-polling");
    #[cfg(unix)]
    one_publish_wakes_every_sleeper::<crate::wait::UnixSocket>("wake-socket");
}

#[test]
fn too_many_borrowed_is_an_error_until_one_is_dropped() {
    let d = domain("borrow");
    let subscriber = Subscriber::<u32>::builder("b").domain(&d).max_borrowed(2).create().unwrap();
    let publisher = Publisher::<u32>::builder("b").domain(&d).create().unwrap();
    for i in 0..3 {
        publisher.publish(i).unwrap();
    }
    let a = subscriber.try_receive().unwrap().unwrap();
    let b = subscriber.try_receive().unwrap().unwrap();
    assert!(matches!(subscriber.try_receive(), Err(Error::TooManyBorrowed { max: 2, .. })));
    drop(a);
    assert_eq!(*subscriber.try_receive().unwrap().unwrap(), 2);
    assert_eq!(*b, 1);
}

#[test]
fn drop_oldest_keeps_the_newest_and_shows_gaps() {
    let d = domain("gaps");
    let subscriber =
        Subscriber::<u32>::builder("g").domain(&d).subscriber_capacity(4).create().unwrap();
    let publisher = Publisher::<u32>::builder("g").domain(&d).create().unwrap();
    for i in 1..=10 {
        publisher.publish(i).unwrap();
    }
    let got: Vec<(u64, u32)> = std::iter::from_fn(|| subscriber.try_receive().unwrap())
        .map(|s| (s.sequence(), *s))
        .collect();
    assert_eq!(got, [(7, 7), (8, 8), (9, 9), (10, 10)]);
    publisher.cleanup().unwrap();
    assert_eq!(publisher.samples_in_use(), 0, "dropped samples went back to the pool");
}

#[test]
fn samples_outlive_a_dropped_publisher() {
    let d = domain("linger");
    let subscriber = Subscriber::<Frame>::builder("l").domain(&d).create().unwrap();
    let publisher = Publisher::<Frame>::builder("l").domain(&d).create().unwrap();
    publisher
        .publish(Frame { id: 1, pixels: ShmVec::from_slice(&[9; 100]), name: "kept".into() })
        .unwrap();
    publisher.publish(Frame { id: 2, ..Frame::default() }).unwrap();
    let held = subscriber.try_receive().unwrap().unwrap();
    let before = crate::heap_stats().bytes_in_use();
    drop(publisher);
    // Still readable, and what was queued is still delivered.
    assert_eq!((held.id, held.pixels.len(), held.name.as_str()), (1, 100, "kept"));
    assert_eq!(subscriber.try_receive().unwrap().unwrap().id, 2);
    drop(held);
    // The lingering publisher frees its pool once everything is back.
    assert!(crate::heap_stats().bytes_in_use() <= before);
    drop(subscriber);
}

#[test]
fn topic_binding_and_callback_receive() {
    let d = domain("bind");
    let subscriber =
        Subscriber::<Frame>::builder(<Frame as Topic>::NAME).domain(&d).create().unwrap();
    let publisher =
        Publisher::<Frame>::builder(<Frame as Topic>::NAME).domain(&d).create().unwrap();
    publisher.publish(Frame { id: 3, ..Frame::default() }).unwrap();
    let id = subscriber.receive_with(|f| f.id, Duration::from_secs(1)).unwrap();
    assert_eq!(id, Some(3));
    assert_eq!(subscriber.receive_with(|f| f.id, Duration::from_millis(1)).unwrap(), None);
    assert_eq!(publisher.subscriber_count(), 1);
    assert_eq!(subscriber.publishers_alive(), 1);
}

#[test]
fn history_is_delivered_to_late_joiners() {
    let d = domain("history");
    let publisher = Publisher::<u32>::builder("h").domain(&d).history(3).create().unwrap();
    for i in 1..=5 {
        publisher.publish(i).unwrap();
    }
    let subscriber = Subscriber::<u32>::builder("h").domain(&d).history(3).create().unwrap();
    let got: Vec<u32> = (0..3)
        .map(|_| *subscriber.receive_timeout(Duration::from_secs(5)).unwrap().expect("history"))
        .collect();
    assert_eq!(got, [3, 4, 5]);
}

#[test]
fn start_order_does_not_matter() {
    let d = domain("order");
    let early = Subscriber::<u32>::builder("o").domain(&d).create().unwrap();
    let publisher = Publisher::<u32>::builder("o").domain(&d).create().unwrap();
    let late = Subscriber::<u32>::builder("o").domain(&d).create().unwrap();
    publisher.publish(1).unwrap();
    assert_eq!(*early.try_receive().unwrap().unwrap(), 1);
    assert_eq!(*late.try_receive().unwrap().unwrap(), 1);
    drop(publisher);
    let again = Publisher::<u32>::builder("o").domain(&d).create().unwrap();
    again.publish(2).unwrap();
    assert_eq!(*early.try_receive().unwrap().unwrap(), 2);
    assert_eq!(*late.try_receive().unwrap().unwrap(), 2);
    drop((early, late, again));
    assert_clean(&d);
}

#[test]
fn topic_full_is_reported() {
    let d = domain("full");
    let _a = Subscriber::<u8>::builder("f").domain(&d).max_subscribers(1).create().unwrap();
    let err = Subscriber::<u8>::builder("f").domain(&d).create().unwrap_err();
    assert_eq!(err.to_string(), "topic `f` already has the maximum of 1 subscribers");
}

#[test]
fn invalid_options_are_refused() {
    let d = domain("invalid");
    let err = Publisher::<u8>::builder("i").domain(&d).subscriber_capacity(0).create().unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "subscriber_capacity", .. }), "{err}");
    let err = Publisher::<u8>::builder("bad/name").domain(&d).create().unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    assert_clean(&d);
}
