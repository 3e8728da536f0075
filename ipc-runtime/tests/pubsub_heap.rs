//! Publish/subscribe's use of the process heap: what a publisher keeps and when it frees it.
//!
//! These tests measure the whole heap of the process (`heap_stats().bytes_in_use()`), which
//! every test in a binary allocates from, so they live in a binary of their own and run one at
//! a time.

mod support;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ipc_runtime::prelude::*;

#[derive(ShmMessage, Default, Debug)]
#[repr(C)]
struct Frame {
    id: u32,
    pixels: ShmVec<u8>,
    name: ShmString,
}

/// Tests that measure the heap run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn in_use() -> u64 {
    ipc_runtime::heap_stats().bytes_in_use()
}

#[test]
fn returned_messages_are_freed_within_a_queue_s_worth() {
    let _serial = serial();
    let d = support::unique_domain("reclaim");
    let subscriber = Subscriber::<Frame>::builder("r").domain(&d).create().unwrap();
    let publisher = Publisher::<Frame>::builder("r").domain(&d).create().unwrap();
    let capacity = 16; // the default subscriber capacity
    let image = vec![7u8; 64 << 10];
    let baseline = in_use();
    let mut peak = 0;
    for id in 0..1000 {
        publisher
            .publish(Frame { id, pixels: ShmVec::from_slice(&image), ..Frame::default() })
            .unwrap();
        drop(subscriber.try_receive().unwrap().unwrap());
        peak = peak.max(in_use().saturating_sub(baseline));
    }
    // The pool has hundreds of slots, but returned messages are dropped (and their pixels
    // freed) once a queue's worth is accounted to the subscriber, not when slots run out.
    assert!(peak <= (capacity + 2) * (image.len() as u64 + 4096), "peak {peak} bytes");
    drop(subscriber);
    publisher.cleanup().unwrap();
    assert_eq!(publisher.samples_in_use(), 0);
    drop(publisher);
    support::assert_clean(&d);
}

#[test]
fn samples_outlive_a_dropped_publisher() {
    let _serial = serial();
    let d = support::unique_domain("linger");
    let subscriber = Subscriber::<Frame>::builder("l").domain(&d).create().unwrap();
    let without_publisher = in_use();
    let publisher = Publisher::<Frame>::builder("l").domain(&d).create().unwrap();
    publisher
        .publish(Frame { id: 1, pixels: ShmVec::from_slice(&[9; 100]), name: "kept".into() })
        .unwrap();
    publisher.publish(Frame { id: 2, ..Frame::default() }).unwrap();
    let held = subscriber.try_receive().unwrap().unwrap();
    let before = in_use();
    drop(publisher);
    // Still readable, and what was queued is still delivered.
    assert_eq!((held.id, held.pixels.len(), held.name.as_str()), (1, 100, "kept"));
    assert_eq!(subscriber.try_receive().unwrap().unwrap().id, 2);
    drop(held);
    // The lingering publisher frees its pool and what the messages owned once everything is
    // back (on the process's service thread, so allow it a moment).
    assert!(in_use() <= before);
    let freed = support::wait_until(Duration::from_secs(10), || in_use() <= without_publisher);
    assert!(freed, "{} bytes in use, {without_publisher} without the publisher", in_use());
    drop(subscriber);
    let gone = support::wait_until(Duration::from_secs(10), || support::leftovers(&d).is_empty());
    assert!(gone, "left behind: {:?}", support::leftovers(&d));
}
