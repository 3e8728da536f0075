//! Ordered maps, sets and deques across real processes: a publisher sends one message holding
//! a `ShmBTreeMap<u64, ShmString>` of 12,000 entries, a `ShmBTreeSet<u32>` and a wrapped
//! `ShmVecDeque<u64>` to two subscriber processes, which look keys up, walk ranges from both
//! ends and compare everything with the model they rebuild from the same recipe; the
//! publisher's heap is back to its baseline once the message is gone. Also: running out of
//! heap in `try_insert` / `try_push_back` changes nothing.

mod support;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use ipc_runtime::prelude::*;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

#[derive(ShmMessage)]
#[repr(C)]
struct Index {
    id: u64,
    map: ShmBTreeMap<u64, ShmString>,
    set: ShmBTreeSet<u32>,
    queue: ShmVecDeque<u64>,
}

const ENTRIES: u64 = 12_000;

/// The publisher's model: keys are multiples of 3 in a scrambled insertion order.
fn model_map() -> BTreeMap<u64, String> {
    (0..ENTRIES).map(|i| (i * 7919 % ENTRIES) * 3).map(|k| (k, format!("value of {k}"))).collect()
}

fn model_set() -> BTreeSet<u32> {
    (0..5000u32).filter(|x| x % 7 != 0).collect()
}

/// Pushes at both ends and pops some, so the ring wraps.
fn model_queue() -> VecDeque<u64> {
    let mut q = VecDeque::new();
    for i in 0..3000u64 {
        if i % 3 == 0 {
            q.push_front(i);
        } else {
            q.push_back(i);
        }
        if i % 5 == 0 {
            q.pop_front();
        }
    }
    q
}

fn build() -> Index {
    let mut map = ShmBTreeMap::new();
    // Insert in the model's scrambled order, then remove and re-add some, to exercise rebalancing.
    for i in 0..ENTRIES {
        let k = (i * 7919 % ENTRIES) * 3;
        map.insert(k, ShmString::from(format!("value of {k}").as_str()));
    }
    for k in (0..ENTRIES * 3).step_by(9) {
        let v = map.remove(&k).unwrap();
        map.insert(k, v);
    }
    let set = model_set().into_iter().collect();
    let mut queue = ShmVecDeque::new();
    for i in 0..3000u64 {
        if i % 3 == 0 {
            queue.push_front(i);
        } else {
            queue.push_back(i);
        }
        if i % 5 == 0 {
            queue.pop_front();
        }
    }
    Index { id: 42, map, set, queue }
}

/// Everything a subscriber checks, against the model; returns a checksum of what it read.
fn check(index: &Index, foreign: bool) -> u64 {
    let model = model_map();
    assert_eq!(index.id, 42);
    assert_eq!(index.map.len(), model.len());
    let mut sum = 0u64;
    for (k, v) in &model {
        assert_eq!(index.map.get(k).map(|s| s.as_str()), Some(v.as_str()), "key {k}");
        assert!(!index.map.contains_key(&(k + 1)));
    }
    assert!(
        index
            .map
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .eq(model.iter().map(|(k, v)| (*k, v.as_str())))
    );
    assert!(index.map.keys().rev().eq(model.keys().rev()));
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let lo = x % (ENTRIES * 3 + 10);
        let hi = lo + (x >> 32) % 500;
        let got: Vec<(u64, &str)> =
            index.map.range(lo..hi).map(|(k, v)| (*k, v.as_str())).collect();
        let want: Vec<(u64, &str)> = model.range(lo..hi).map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, want, "range {lo}..{hi}");
        assert!(
            index
                .map
                .range(lo..=hi)
                .rev()
                .map(|(k, _)| *k)
                .eq(model.range(lo..=hi).rev().map(|(k, _)| *k))
        );
        sum = got.iter().fold(sum, |s, (k, v)| s.wrapping_mul(31).wrapping_add(k + v.len() as u64));
    }
    assert_eq!(index.map.first_key_value().map(|(k, _)| *k), model.keys().next().copied());
    assert_eq!(index.map.last_key_value().map(|(k, _)| *k), model.keys().next_back().copied());
    let set = model_set();
    assert!(index.set.iter().eq(set.iter()));
    assert!(index.set.range(100..200).eq(set.range(100..200)));
    assert!(index.set.contains(&8) && !index.set.contains(&7));
    let queue = model_queue();
    assert!(index.queue.iter().eq(queue.iter()));
    assert!(index.queue.iter().rev().eq(queue.iter().rev()));
    let (a, b) = index.queue.as_slices();
    assert!(!b.is_empty(), "the ring should wrap");
    assert_eq!(a.len() + b.len(), queue.len());
    assert_eq!(index.queue[17], queue[17]);
    assert_eq!(index.queue.front(), queue.front());
    // A clone lands in this process's own heap, independent and equal.
    let copy = index.map.clone();
    assert_eq!(copy.root_ptr().segment() != index.map.root_ptr().segment(), foreign);
    assert!(copy == index.map);
    sum.wrapping_add(index.queue.iter().sum::<u64>())
}

#[test]
fn ordered_containers_are_read_by_two_subscribers() {
    let test = "ordered_containers_are_read_by_two_subscribers";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("btree");
            let mut subs: Vec<_> =
                (0..2).map(|_| spawn_held_role(test, "sub", &domain, &[])).collect();
            let mut readers: Vec<_> = subs.iter_mut().map(stdout_lines).collect();
            for reader in &mut readers {
                assert!(wait_for_line(reader, "ready"), "subscriber did not start");
            }
            let mut publisher = spawn_held_role(test, "pub", &domain, &[]);
            let mut pub_out = stdout_lines(&mut publisher);
            if !wait_for_line(&mut pub_out, "published") {
                let (status, stdout, stderr) = finish(publisher, Some(pub_out));
                panic!("publisher did not publish: {status}\n{stdout}\n{stderr}");
            }
            let mut sums = Vec::new();
            for (sub, reader) in subs.into_iter().zip(readers) {
                let (status, stdout, stderr) = finish(sub, Some(reader));
                assert!(status.success(), "subscriber failed: {status}\n{stdout}\n{stderr}");
                let sum = stdout.lines().find_map(|l| l.strip_prefix("sum=")).map(str::to_owned);
                sums.push(sum.expect("subscriber printed its checksum"));
            }
            assert_eq!(sums[0], sums[1]);
            let (status, stdout, stderr) = finish(publisher, Some(pub_out));
            assert!(status.success(), "publisher failed: {status}\n{stdout}\n{stderr}");
            assert!(stdout.contains("baseline=ok"), "{stdout}");
            assert!(stdout.contains(&format!("sum={}", sums[0])), "{stdout}");
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let publisher = Publisher::<Index>::builder("btree").create().unwrap();
            assert!(
                support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() >= 2),
                "subscribers did not connect"
            );
            let baseline = ipc_runtime::heap_stats().bytes_in_use();
            let index = build();
            // The publisher reads its own message the way the subscribers do.
            let sum = check(&index, false);
            publisher.publish(index).unwrap();
            println!("published");
            support::wait_for_parent();
            // Both subscribers have exited: their samples come back to the pool, and the
            // message (tree nodes, strings, deque buffer) is freed.
            let freed = support::wait_until(Duration::from_secs(20), || {
                let _ = publisher.cleanup();
                ipc_runtime::heap_stats().bytes_in_use() <= baseline
            });
            assert!(
                freed,
                "{} bytes in use, {baseline} before the message",
                ipc_runtime::heap_stats().bytes_in_use()
            );
            println!("sum={sum}");
            println!("baseline=ok");
        }
        Some("sub") => {
            let subscriber = Subscriber::<Index>::builder("btree").create().unwrap();
            println!("ready");
            let sample =
                subscriber.receive_timeout(Duration::from_secs(60)).unwrap().expect("no message");
            println!("sum={}", check(&sample, true));
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn running_out_of_heap_changes_nothing() {
    let test = "running_out_of_heap_changes_nothing";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("btree-oom");
            let out = support::run_role(test, "child", &domain, &[]);
            support::assert_success("child", &out);
            assert_eq!(support::field(&out, "result").as_deref(), Some("ok"));
            support::assert_clean(&domain);
        }
        Some("child") => {
            ipc_runtime::init_heap(1 << 20).unwrap();
            let baseline = ipc_runtime::heap_stats().bytes_in_use();
            let mut map: ShmBTreeMap<u64, [u64; 32]> = ShmBTreeMap::new();
            let mut n = 0;
            let err = loop {
                match map.try_insert(n, [n; 32]) {
                    Ok(None) => n += 1,
                    Ok(Some(_)) => unreachable!("fresh keys"),
                    Err((k, v, e)) => {
                        assert_eq!((k, v[0]), (n, n), "the entry comes back");
                        break e;
                    }
                }
            };
            assert!(matches!(err, Error::OutOfMemory { .. }), "{err}");
            assert_eq!(map.len() as u64, n);
            assert!(map.iter().map(|(k, v)| (*k, v[31])).eq((0..n).map(|i| (i, i))));
            // SAFETY: `map` is a valid map.
            unsafe { <ShmBTreeMap<u64, [u64; 32]> as ShmSafe>::check_bits(&map) }.unwrap();
            // The deque, likewise, with what is left.
            let mut queue: ShmVecDeque<[u64; 32]> = ShmVecDeque::new();
            let mut m = 0;
            let err = loop {
                match queue.try_push_back([m; 32]) {
                    Ok(()) => m += 1,
                    Err((v, e)) => {
                        assert_eq!(v[0], m);
                        break e;
                    }
                }
            };
            assert!(matches!(err, Error::OutOfMemory { .. }), "{err}");
            assert!(queue.iter().map(|v| v[0]).eq(0..m));
            drop((map, queue));
            assert_eq!(ipc_runtime::heap_stats().bytes_in_use(), baseline);
            println!("result=ok");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
