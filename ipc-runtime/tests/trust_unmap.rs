//! A long-running subscriber gives back the heaps of dead publishers: its address space does
//! not grow with every restart of a publisher.
//!
//! The subscriber is a child process (role `sub`) that itself starts the publishers (role
//! `pub`), one after the other, and checks after each that the publisher's heap left its
//! segment table (on every platform: `SegmentTable::describe` no longer knows its name, so its
//! mapping was dropped) and, on Linux, its memory map (`/proc/self/maps` lists no mapping of
//! it, and as many heaps of the domain as before the first publisher).

mod support;

use std::io::BufRead;
use std::time::Duration;

use ipc_runtime::prelude::*;

#[derive(ShmMessage, Default, Debug)]
#[repr(C)]
struct Blob {
    round: u64,
    bytes: ShmVec<u8>,
}

/// Messages each publisher sends.
const MESSAGES: u64 = 8;
/// Publishers started, one after the other.
const ROUNDS: u64 = 20;
/// The round whose subscriber keeps a sample across its publisher's death (a killed one).
const HELD_ROUND: u64 = ROUNDS - 2;
const DEADLINE: Duration = Duration::from_secs(20);

fn payload(round: u64, k: u64) -> Vec<u8> {
    (0..256u64).map(|i| (round * 31 + k * 7 + i) as u8).collect()
}

fn intact(blob: &Blob, round: u64, k: u64) -> bool {
    blob.round == round && blob.bytes.as_slice() == payload(round, k).as_slice()
}

/// The heaps of `domain` this process maps, by name (Linux: from `/proc/self/maps`), and the
/// number of mappings.
#[cfg(target_os = "linux")]
fn mapped_heaps(domain: &str) -> (std::collections::BTreeSet<String>, usize) {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let prefix = format!("{domain}.heap.");
    let mut names = std::collections::BTreeSet::new();
    let mut mappings = 0;
    for line in maps.lines() {
        if let Some(at) = line.find(&prefix) {
            let name = line[at..].split_whitespace().next().unwrap_or_default().to_owned();
            names.insert(name);
            mappings += 1;
        }
    }
    (names, mappings)
}

/// Whether this process still maps heap `id` of `domain`: in its segment table, and on Linux
/// in its memory map.
fn maps_heap(domain: &str, id: u64) -> bool {
    let name = format!("{domain}.heap.{id:016x}");
    let in_table = ipc_runtime::ptr::table().describe(id).contains(&name);
    #[cfg(target_os = "linux")]
    {
        let in_maps = mapped_heaps(domain).0.iter().any(|n| n.contains(&name));
        assert_eq!(in_table, in_maps, "the table and the memory map disagree about {name}");
    }
    in_table
}

/// Reads a `key=value` line from a publisher child.
fn read_field(out: &mut impl BufRead, key: &str) -> String {
    let prefix = format!("{key}=");
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).expect("read child stdout") > 0, "child ended early");
        if let Some(value) = line.trim_end().strip_prefix(&prefix) {
            return value.to_owned();
        }
    }
}

/// Receives `MESSAGES` messages of `round`; keeps the first if `keep`.
fn receive_round(
    subscriber: &Subscriber<Blob>,
    round: u64,
    keep: bool,
) -> Option<Sample<'_, Blob>> {
    let mut kept = None;
    for k in 0..MESSAGES {
        let sample = subscriber.receive_timeout(DEADLINE).unwrap().expect("a message in time");
        assert!(intact(&sample, round, k), "round {round}, message {k}: {sample:?}");
        if keep && kept.is_none() {
            kept = Some(sample);
        }
    }
    kept
}

/// Lets the subscriber notice dead publishers and read what is left, until `done`.
fn settle(subscriber: &Subscriber<Blob>, mut done: impl FnMut() -> bool) -> bool {
    support::wait_until(DEADLINE, || {
        subscriber.cleanup().unwrap();
        if let Some(sample) = subscriber.try_receive().unwrap() {
            panic!("unexpected message {sample:?}");
        }
        done()
    })
}

#[test]
fn subscriber_unmaps_heaps_of_dead_publishers() {
    let test = "subscriber_unmaps_heaps_of_dead_publishers";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("unmap");
            let out = support::run_role(test, "sub", &domain, &[]);
            support::assert_success("subscriber", &out);
            print!("{}", String::from_utf8_lossy(&out.stdout));
            support::assert_clean(&domain);
        }
        Some("sub") => {
            let domain = ipc_runtime::domain::current().to_owned();
            let subscriber = Subscriber::<Blob>::new("blobs").unwrap();
            #[cfg(target_os = "linux")]
            let (baseline, baseline_mappings) = mapped_heaps(&domain);
            #[cfg(target_os = "linux")]
            println!("baseline: {} heaps, {baseline_mappings} mappings", baseline.len());
            for round in 0..ROUNDS {
                // Even rounds: killed; odd rounds: the publisher exits by itself.
                let kill = round % 2 == 0;
                let mut publisher = support::spawn_held_role(
                    test,
                    "pub",
                    &domain,
                    &[("UNMAP_ROUND", round.to_string()), ("UNMAP_KILL", kill.to_string())],
                );
                let mut out = support::stdout_lines(&mut publisher);
                let heap = u64::from_str_radix(&read_field(&mut out, "heap"), 16).unwrap();
                let held = receive_round(&subscriber, round, round == HELD_ROUND);
                assert!(maps_heap(&domain, heap), "round {round}: the publisher's heap is mapped");
                #[cfg(target_os = "linux")]
                let during = mapped_heaps(&domain);
                if kill {
                    publisher.kill().unwrap();
                    publisher.wait().unwrap();
                } else {
                    let (status, stdout, stderr) = support::finish(publisher, Some(out));
                    assert!(status.success(), "publisher {round}: {stdout}\n{stderr}");
                }
                if let Some(sample) = held {
                    // Its publisher is dead and forgotten: the sample keeps its heap mapped.
                    assert!(settle(&subscriber, || subscriber.publishers_alive() == 0));
                    assert!(maps_heap(&domain, heap), "unmapped under a held sample");
                    assert!(intact(&sample, round, 0), "a held sample changed: {sample:?}");
                    drop(sample);
                }
                assert!(
                    settle(&subscriber, || !maps_heap(&domain, heap)),
                    "round {round}: the heap of dead publisher {heap:016x} is still mapped"
                );
                #[cfg(target_os = "linux")]
                {
                    let after = mapped_heaps(&domain);
                    println!(
                        "round {round} ({}): during {} heaps / {} mappings, after {} / {}",
                        if kill { "killed" } else { "exited" },
                        during.0.len(),
                        during.1,
                        after.0.len(),
                        after.1
                    );
                    assert_eq!(after.0, baseline, "round {round}");
                    assert_eq!(after.1, baseline_mappings, "round {round}");
                }
            }
            assert_eq!(subscriber.borrowed(), 0);
            drop(subscriber);
        }
        Some("pub") => {
            let round: u64 = std::env::var("UNMAP_ROUND").unwrap().parse().unwrap();
            let kill: bool = std::env::var("UNMAP_KILL").unwrap().parse().unwrap();
            let publisher = Publisher::<Blob>::new("blobs").unwrap();
            let heap = ipc_runtime::heap::try_default().expect("the publisher made its heap");
            println!("heap={:016x}", heap.id());
            assert!(support::wait_until(DEADLINE, || publisher.subscriber_count() == 1));
            for k in 0..MESSAGES {
                let bytes = ShmVec::from_slice(&payload(round, k));
                publisher.publish(Blob { round, bytes }).unwrap();
            }
            if kill {
                println!("published");
                support::wait_for_parent(); // killed meanwhile
            }
            // Exits: the publisher finishes once the subscriber has read everything.
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
