//! Hash maps across real processes: a publisher sends a message holding a
//! `ShmHashMap<ShmString, ShmVec<u32>>` of 10,000 entries (and a `ShmHashSet<u64>`) to two
//! subscriber processes, which map the publisher's heap read-only and look keys up by `&str`
//! through the map's fixed hash function; their results match the publisher's model, and the
//! publisher's heap returns to its baseline once the message is dropped.

mod support;

use std::time::Duration;

use ipc_runtime::prelude::*;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

#[derive(ShmMessage)]
#[repr(C)]
struct Index {
    id: u64,
    by_name: ShmHashMap<ShmString, ShmVec<u32>>,
    ids: ShmHashSet<u64>,
}

const ENTRIES: u32 = 10_000;
const TOPIC: &str = "maps/index";

fn name(i: u32) -> String {
    format!("entry-{i}")
}

/// The model: entry `i`'s values.
fn values(i: u32) -> Vec<u32> {
    (0..i % 23).map(|j| i.wrapping_mul(2_654_435_761).wrapping_add(j)).collect()
}

/// An order-independent checksum of a map's entries.
fn checksum<'a>(entries: impl Iterator<Item = (&'a str, &'a [u32])>) -> u64 {
    entries
        .map(|(k, v)| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in k.bytes().chain(v.iter().flat_map(|x| x.to_le_bytes())) {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
            h
        })
        .fold(0, u64::wrapping_add)
}

fn model_checksum() -> u64 {
    let model: Vec<(String, Vec<u32>)> = (0..ENTRIES).map(|i| (name(i), values(i))).collect();
    checksum(model.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
}

#[test]
fn map_is_read_by_two_subscriber_processes() {
    let test = "map_is_read_by_two_subscriber_processes";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("maps");
            let mut subs: Vec<_> =
                (0..2).map(|_| spawn_held_role(test, "sub", &domain, &[])).collect();
            let mut readers: Vec<_> = subs.iter_mut().map(stdout_lines).collect();
            for reader in &mut readers {
                assert!(wait_for_line(reader, "ready"), "subscriber did not start");
            }
            let publisher = support::run_role(test, "pub", &domain, &[]);
            support::assert_success("publisher", &publisher);
            assert_eq!(support::field(&publisher, "heap").as_deref(), Some("baseline"));
            for (sub, reader) in subs.into_iter().zip(readers) {
                let (status, stdout, stderr) = finish(sub, Some(reader));
                assert!(status.success(), "subscriber failed: {stdout}\n{stderr}");
                assert!(stdout.contains(&format!("checked={ENTRIES}\n")), "{stdout}");
            }
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let baseline = ipc_runtime::heap_stats().bytes_in_use();
            let publisher = Publisher::<Index>::new(TOPIC).unwrap();
            assert!(
                support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() >= 2),
                "subscribers did not connect"
            );
            let mut by_name = ShmHashMap::with_capacity(ENTRIES as usize / 2);
            for i in 0..ENTRIES {
                by_name.insert(ShmString::from(name(i).as_str()), ShmVec::from_slice(&values(i)));
            }
            let ids: ShmHashSet<u64> = (0..u64::from(ENTRIES)).map(|i| i * 3).collect();
            assert!(ipc_runtime::heap_stats().bytes_in_use() > baseline);
            publisher.publish(Index { id: 7, by_name, ids }).unwrap();
            // Both subscribers give the sample back; then dropping the publisher drops the
            // message, which frees the map, its 10,000 keys and values, and the set.
            let returned = support::wait_until(Duration::from_secs(60), || {
                publisher.samples_in_use() == 0 || publisher.subscriber_count() == 0
            });
            assert!(returned, "the sample did not come back");
            drop(publisher);
            let freed = support::wait_until(Duration::from_secs(30), || {
                ipc_runtime::heap_stats().bytes_in_use() <= baseline
            });
            assert!(
                freed,
                "heap in use {} after the drop, baseline {baseline}",
                ipc_runtime::heap_stats().bytes_in_use()
            );
            println!("heap=baseline");
        }
        Some("sub") => {
            // A heap of our own first, so the publisher's is surely mapped elsewhere here.
            ipc_runtime::init_heap(8 << 20).unwrap();
            let subscriber = Subscriber::<Index>::new(TOPIC).unwrap();
            println!("ready");
            let sample = subscriber
                .receive_timeout(Duration::from_secs(60))
                .unwrap()
                .expect("no message within 60 s");
            assert_eq!(sample.id, 7);
            let map = &sample.by_name;
            assert_eq!(map.len(), ENTRIES as usize);
            // Every key of the model, looked up by `&str`.
            let mut found = 0;
            for i in 0..ENTRIES {
                let v = map.try_get(name(i).as_str()).unwrap().expect("key missing");
                assert_eq!(v.as_slice(), values(i).as_slice(), "values of {}", name(i));
                found += 1;
            }
            // Keys that are not there, including near misses.
            for miss in ["entry-", "entry-10000", "Entry-1", "", "entry-01"] {
                assert!(map.get(miss).is_none(), "{miss} found");
            }
            // Iteration sees exactly the model.
            let sum = checksum(map.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
            assert_eq!(sum, model_checksum());
            assert_eq!(map.keys().count(), ENTRIES as usize);
            // The set, too.
            assert_eq!(sample.ids.len(), ENTRIES as usize);
            assert!((0..u64::from(ENTRIES)).all(|i| sample.ids.contains(&(i * 3))));
            assert!(!sample.ids.contains(&1));
            // A clone lands in this process's heap and equals the original.
            let copy = map.clone();
            assert_ne!(copy.rel_ptr().segment(), map.rel_ptr().segment());
            assert!(copy == *map);
            drop(copy);
            drop(sample);
            println!("checked={found}");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
