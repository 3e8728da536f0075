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

/// Everything of `domain` is gone, or goes within a few seconds: a publisher dropped while a
/// subscriber still held a sample finishes on the process's service thread once it is back.
fn assert_clean(domain: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = leftovers(domain);
        if left.is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "left behind: {left:?}");
        std::thread::yield_now();
    }
}

#[derive(ShmMessage, Default, Debug)]
#[shm(topic = "frames")]
#[repr(C)]
struct Frame {
    id: u32,
    pixels: ShmVec<u8>,
    name: ShmString,
}

/// 64 bytes: too big to travel inside a ring entry, so it takes the pool path, while `u32`
/// travels inline. Tests that care run with both.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Default)]
#[repr(C)]
struct Wide([u32; 16]);

trait Msg: ShmMessage + Send + Sync + Copy + PartialEq + std::fmt::Debug {
    fn of(i: u32) -> Self;
    fn id(&self) -> u32;
}

impl Msg for u32 {
    fn of(i: u32) -> Self {
        i
    }
    fn id(&self) -> u32 {
        *self
    }
}

impl Msg for Wide {
    fn of(i: u32) -> Self {
        Wide([i; 16])
    }
    fn id(&self) -> u32 {
        assert!(self.0.iter().all(|&w| w == self.0[0]), "torn: {self:?}");
        self.0[0]
    }
}

#[test]
fn small_plain_types_travel_inline_and_others_in_the_pool() {
    use super::layout::carries_inline;
    assert!(carries_inline::<u32>() && carries_inline::<[u64; 6]>() && carries_inline::<()>());
    assert!(!carries_inline::<Wide>(), "64 bytes do not fit the entry");
    assert!(!carries_inline::<Frame>(), "has a destructor");
    assert!(!carries_inline::<(u8, u64)>(), "has padding");
    assert!(!carries_inline::<[u64; 7]>(), "56 bytes do not fit");
}

#[test]
fn a_sample_is_small_whatever_the_message() {
    // A `Sample` is moved on every receive: it must not carry the message itself.
    let small = size_of::<Sample<'static, u64>>();
    assert!(small <= 96, "{small} bytes");
    #[derive(ShmMessage)]
    #[repr(C)]
    struct Image([u8; 1 << 16]);
    assert_eq!(size_of::<Sample<'static, Image>>(), small);
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
        format!(
            "topic `o` was created by pid {} with history = 2; this participant asked for 3 (a \
             topic's options are fixed by the participant that creates it: give every \
             participant the same options, or none to adopt the topic's)",
            std::process::id()
        )
    );
    let err =
        Subscriber::<u32>::builder("o").domain(&d).overflow(Overflow::Block).create().unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions { option: "overflow", .. }), "{err}");
    // Not asking is agreeing.
    Subscriber::<u32>::builder("o").domain(&d).create().unwrap();
}

#[test]
fn a_history_the_creator_left_unset_is_adopted() {
    let d = domain("adopt");
    // The subscriber comes first and asks for nothing; the publisher asks for history 4.
    let early = Subscriber::<u64>::builder("a").domain(&d).create().unwrap();
    let publisher = Publisher::<u64>::builder("a").domain(&d).history(4).create().unwrap();
    for i in 1..=6 {
        publisher.publish(i).unwrap();
    }
    let got: Vec<u64> = std::iter::from_fn(|| early.try_receive().unwrap().map(|s| *s)).collect();
    assert_eq!(got, [1, 2, 3, 4, 5, 6], "the early subscriber reads the larger pool");
    // A late subscriber gets the history; a participant asking for nothing adopts it.
    let late = Subscriber::<u64>::builder("a").domain(&d).create().unwrap();
    let history: Vec<u64> = std::iter::from_fn(|| {
        late.receive_timeout(std::time::Duration::from_secs(5)).unwrap().map(|s| *s)
    })
    .take(4)
    .collect();
    assert_eq!(history, [3, 4, 5, 6]);
    // Once adopted it is the topic's: asking for another is a conflict, more than the
    // queues hold is refused, and asking for the same is fine.
    let err = Publisher::<u64>::builder("a").domain(&d).history(2).create().unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions { option: "history", .. }), "{err}");
    Publisher::<u64>::builder("a").domain(&d).history(4).create().unwrap();
    let d2 = domain("adopt-big");
    let _s = Subscriber::<u64>::builder("b").domain(&d2).create().unwrap();
    let err = Publisher::<u64>::builder("b").domain(&d2).history(17).create().unwrap_err();
    assert!(err.to_string().contains("17 exceeds topic `b`'s subscriber_capacity 16"), "{err}");
    // A request that contradicts itself is refused whatever the topic.
    let err = Publisher::<u64>::builder("b")
        .domain(&d2)
        .history(8)
        .subscriber_capacity(4)
        .create()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "history", .. }), "{err}");
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
    let subscriber = Subscriber::<Wide>::builder("b").domain(&d).max_borrowed(2).create().unwrap();
    let publisher = Publisher::<Wide>::builder("b").domain(&d).create().unwrap();
    for i in 0..3 {
        publisher.publish(Wide::of(i)).unwrap();
    }
    let a = subscriber.try_receive().unwrap().unwrap();
    let b = subscriber.try_receive().unwrap().unwrap();
    assert!(matches!(subscriber.try_receive(), Err(Error::TooManyBorrowed { max: 2, .. })));
    drop(a);
    assert_eq!(subscriber.try_receive().unwrap().unwrap().id(), 2);
    assert_eq!(b.id(), 1);
}

#[test]
fn inline_samples_hold_nothing_of_the_publisher() {
    let d = domain("inline-borrow");
    let subscriber = Subscriber::<u32>::builder("b").domain(&d).max_borrowed(1).create().unwrap();
    let publisher = Publisher::<u32>::builder("b").domain(&d).create().unwrap();
    for i in 0..3 {
        publisher.publish(i).unwrap();
    }
    // Copies: keeping them costs the publisher nothing, so `max_borrowed` does not apply.
    let kept: Vec<_> = (0..3).map(|_| subscriber.try_receive().unwrap().unwrap()).collect();
    assert_eq!(kept.iter().map(|s| **s).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(publisher.samples_in_use(), 0);
}

fn drop_oldest_keeps_the_newest_and_shows_gaps<M: Msg>(tag: &str) {
    let d = domain(tag);
    let subscriber =
        Subscriber::<M>::builder("g").domain(&d).subscriber_capacity(4).create().unwrap();
    let publisher = Publisher::<M>::builder("g").domain(&d).create().unwrap();
    for i in 1..=100 {
        publisher.publish(M::of(i)).unwrap();
    }
    let got: Vec<(u64, u32)> = std::iter::from_fn(|| subscriber.try_receive().unwrap())
        .map(|s| (s.sequence(), s.id()))
        .collect();
    assert_eq!(got, [(97, 97), (98, 98), (99, 99), (100, 100)]);
    publisher.cleanup().unwrap();
    assert_eq!(publisher.samples_in_use(), 0, "dropped samples went back to the pool");
    drop((subscriber, publisher));
    assert_clean(&d);
}

#[test]
fn drop_oldest_keeps_the_newest_and_shows_gaps_inline() {
    drop_oldest_keeps_the_newest_and_shows_gaps::<u32>("gaps-inline");
}

#[test]
fn drop_oldest_keeps_the_newest_and_shows_gaps_pooled() {
    drop_oldest_keeps_the_newest_and_shows_gaps::<Wide>("gaps-pooled");
}

/// Block: a publisher on another thread waits for room, nothing is lost or reordered.
fn block_loses_nothing<M: Msg>(tag: &str) {
    let d = domain(tag);
    let subscriber = Subscriber::<M>::builder("blk")
        .domain(&d)
        .overflow(Overflow::Block)
        .subscriber_capacity(2)
        .create()
        .unwrap();
    let publisher = Publisher::<M>::builder("blk")
        .domain(&d)
        .overflow(Overflow::Block)
        .subscriber_capacity(2)
        .create()
        .unwrap();
    let n = 20_000;
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 1..=n {
                publisher.publish(M::of(i)).unwrap();
            }
        });
        for i in 1..=n {
            let Some(sample) = subscriber.receive_timeout(Duration::from_secs(30)).unwrap() else {
                panic!("stalled at {i}: {}", subscriber.debug_state())
            };
            assert_eq!((sample.sequence(), sample.id()), (i as u64, i));
        }
    });
    drop(subscriber);
    assert_clean(&d);
}

#[test]
fn block_loses_nothing_inline() {
    block_loses_nothing::<u32>("block-inline");
}

#[test]
fn block_loses_nothing_pooled() {
    block_loses_nothing::<Wide>("block-pooled");
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

fn history_is_delivered_to_late_joiners<M: Msg>(tag: &str) {
    let d = domain(tag);
    let publisher = Publisher::<M>::builder("h").domain(&d).history(3).create().unwrap();
    for i in 1..=5 {
        publisher.publish(M::of(i)).unwrap();
    }
    // The publisher is idle from now on: its process's service thread hands the history over.
    let subscriber = Subscriber::<M>::builder("h").domain(&d).history(3).create().unwrap();
    let got: Vec<(u64, u32)> = (0..3)
        .map(|_| {
            let s = subscriber.receive_timeout(Duration::from_secs(5)).unwrap().expect("history");
            (s.sequence(), s.id())
        })
        .collect();
    assert_eq!(got, [(3, 3), (4, 4), (5, 5)]);
    drop((subscriber, publisher));
    assert_clean(&d);
}

#[test]
fn history_is_delivered_to_late_joiners_inline() {
    history_is_delivered_to_late_joiners::<u32>("history-inline");
}

#[test]
fn history_is_delivered_to_late_joiners_pooled() {
    history_is_delivered_to_late_joiners::<Wide>("history-pooled");
}

fn start_order_does_not_matter<M: Msg>(tag: &str) {
    let d = domain(tag);
    let early = Subscriber::<M>::builder("o").domain(&d).create().unwrap();
    let publisher = Publisher::<M>::builder("o").domain(&d).create().unwrap();
    let late = Subscriber::<M>::builder("o").domain(&d).create().unwrap();
    publisher.publish(M::of(1)).unwrap();
    assert_eq!(early.try_receive().unwrap().unwrap().id(), 1);
    assert_eq!(late.try_receive().unwrap().unwrap().id(), 1);
    drop(publisher);
    let again = Publisher::<M>::builder("o").domain(&d).create().unwrap();
    again.publish(M::of(2)).unwrap();
    assert_eq!(early.try_receive().unwrap().unwrap().id(), 2);
    assert_eq!(late.try_receive().unwrap().unwrap().id(), 2);
    drop((early, late, again));
    assert_clean(&d);
}

#[test]
fn start_order_does_not_matter_inline() {
    start_order_does_not_matter::<u32>("order-inline");
}

#[test]
fn start_order_does_not_matter_pooled() {
    start_order_does_not_matter::<Wide>("order-pooled");
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
    let err = Publisher::<u8>::builder("bad//name").domain(&d).create().unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    assert_clean(&d);
}
