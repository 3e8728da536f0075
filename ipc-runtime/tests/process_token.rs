//! One liveness token per process and domain, shared by all of its participants (issue 18):
//! a process with thousands of topics holds a handful of file descriptors, and a process killed
//! with hundreds of participants is cleaned up through its one token.
//!
//! `pairs_measure` (ignored by default) prints what creating many topic pairs costs:
//! `PAIRS=2000 cargo test --release -p ipc-runtime --test process_token -- --ignored --nocapture`.

mod support;

use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

/// Open file descriptors of this process (the directory handle used to count them excluded).
#[cfg(target_os = "linux")]
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count().saturating_sub(1)
}

/// Lowers this process's soft limit of open files to `soft` (never raising anything).
#[cfg(target_os = "linux")]
fn lower_fd_limit(soft: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    limit.current = Some(soft.min(current));
    setrlimit(Resource::Nofile, limit).expect("lower RLIMIT_NOFILE");
    assert_eq!(getrlimit(Resource::Nofile).current, Some(soft.min(current)));
}

/// Creates `n` publisher + subscriber pairs, one topic each.
fn pairs(n: usize) -> Vec<(Publisher<u64>, Subscriber<u64>)> {
    (0..n)
        .map(|i| {
            let topic = format!("pair/{i}");
            let publisher = Publisher::<u64>::new(&topic)
                .unwrap_or_else(|e| panic!("publisher {i} of {n}: {e}"));
            let subscriber = Subscriber::<u64>::new(&topic)
                .unwrap_or_else(|e| panic!("subscriber {i} of {n}: {e}"));
            (publisher, subscriber)
        })
        .collect()
}

/// Publishes a message on every pair and receives it.
fn exchange(pairs: &[(Publisher<u64>, Subscriber<u64>)]) {
    for (i, (publisher, subscriber)) in pairs.iter().enumerate() {
        publisher.publish(i as u64).unwrap_or_else(|e| panic!("publish on pair {i}: {e}"));
        let sample = subscriber
            .receive_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("receive on pair {i}: {e}"))
            .unwrap_or_else(|| panic!("pair {i}: nothing received"));
        assert_eq!(*sample, i as u64);
    }
}

/// 2,000 topic pairs in one process whose soft limit of open files is 256 (Linux: the limit is
/// lowered with `setrlimit`, nothing is raised; elsewhere 200 pairs without a limit). Every pair
/// exchanges a message, and the process holds at most 32 descriptors with all pairs open.
#[test]
fn thousands_of_pairs_fit_a_small_fd_limit() {
    let test = "thousands_of_pairs_fit_a_small_fd_limit";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("fdlimit");
            let out = support::run_role(test, "pairs", &domain, &[]);
            support::assert_success("the process with many pairs", &out);
            println!("{}", String::from_utf8_lossy(&out.stdout).trim());
            support::assert_clean(&domain);
        }
        Some("pairs") => {
            #[cfg(target_os = "linux")]
            lower_fd_limit(256);
            let n = if cfg!(target_os = "linux") { 2_000 } else { 200 };
            let start = Instant::now();
            let pairs = pairs(n);
            let created = start.elapsed();
            #[cfg(target_os = "linux")]
            {
                let fds = open_fds();
                println!("fds={fds}");
                assert!(fds <= 32, "{fds} descriptors open with {n} pairs");
            }
            exchange(&pairs);
            println!("pairs={n} created_in={created:.2?}");
            drop(pairs);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

/// What `n` pairs cost to create (release builds give meaningful times): wall time, and on
/// Linux descriptors and named OS objects. `PAIRS` sets `n` (default 2,000).
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn pairs_measure() {
    let n: usize = std::env::var("PAIRS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let domain = support::unique_domain("measure");
    ipc_runtime::domain::set_current(&domain).unwrap();
    #[cfg(target_os = "linux")]
    let fds_before = open_fds();
    let objects_before = support::leftovers(&domain).len();
    let start = Instant::now();
    let pairs = pairs(n);
    let created = start.elapsed();
    #[cfg(target_os = "linux")]
    let fds = open_fds() - fds_before;
    #[cfg(not(target_os = "linux"))]
    let fds = 0;
    let objects = support::leftovers(&domain).len() - objects_before;
    exchange(&pairs);
    println!(
        "pairs={n} create={created:.2?} per_pair={:.1}us fds={fds} ({:.2}/pair) named_objects={objects} ({:.2}/pair)",
        created.as_secs_f64() * 1e6 / n as f64,
        fds as f64 / n as f64,
        objects as f64 / n as f64
    );
    drop(pairs);
}

/// Number of topics each killed process holds.
const TOPICS: usize = 100;

/// A process killed with `TOPICS` subscribers holding samples borrowed from this process's
/// publishers, and another killed with `TOPICS` publishers this process's subscribers read:
/// every publisher takes back its samples, every subscriber learns its publisher died (what it
/// received stays readable), and once everyone has left the domain holds nothing — the killed
/// processes' tokens, heaps and slots included.
#[test]
fn killed_processes_with_many_topics_are_cleaned_up() {
    let test = "killed_processes_with_many_topics_are_cleaned_up";
    match support::role().as_deref() {
        None => {
            // The survivor runs the scene and exits; then the domain must be empty.
            let domain = support::unique_domain("kill100");
            let out = support::run_role(test, "survivor", &domain, &[]);
            support::assert_success("the survivor", &out);
            support::assert_clean(&domain);
        }
        Some("survivor") => {
            let domain = ipc_runtime::domain::current().to_owned();
            // Ours: publishers on `out/*`, subscribers on `in/*`.
            let publishers: Vec<Publisher<u64>> = (0..TOPICS)
                .map(|i| {
                    Publisher::<u64>::builder(&format!("out/{i}"))
                        .history(4)
                        .liveness_interval(Duration::from_millis(20))
                        .create()
                        .unwrap()
                })
                .collect();
            for publisher in &publishers {
                publisher.publish(1).unwrap();
            }
            let baseline: Vec<usize> = publishers.iter().map(|p| p.samples_in_use()).collect();
            let subscribers: Vec<Subscriber<u64>> =
                (0..TOPICS).map(|i| Subscriber::<u64>::new(&format!("in/{i}")).unwrap()).collect();

            let mut borrower = spawn_held_role(test, "borrower", &domain, &[]);
            let mut borrower_out = stdout_lines(&mut borrower);
            let mut source = spawn_held_role(test, "source", &domain, &[]);
            let mut source_out = stdout_lines(&mut source);
            if !wait_for_line(&mut borrower_out, "holding") {
                let (_, out, err) = finish(borrower, Some(borrower_out));
                panic!("the borrower did not get going:\n{out}\n{err}");
            }
            if !wait_for_line(&mut source_out, "published") {
                let (_, out, err) = finish(source, Some(source_out));
                panic!("the source did not get going:\n{out}\n{err}");
            }
            for (i, publisher) in publishers.iter().enumerate() {
                assert!(publisher.samples_in_use() > 0, "publisher {i}: nothing borrowed");
            }
            let received: Vec<_> = subscribers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let sample = s.receive_timeout(Duration::from_secs(10)).unwrap();
                    sample.unwrap_or_else(|| panic!("subscriber {i}: nothing from the source"))
                })
                .collect();
            assert!(subscribers.iter().all(|s| s.publishers_alive() == 1));

            borrower.kill().unwrap();
            source.kill().unwrap();
            assert!(!borrower.wait().unwrap().success());
            assert!(!source.wait().unwrap().success());

            for (i, publisher) in publishers.iter().enumerate() {
                let reclaimed = support::wait_until(Duration::from_secs(30), || {
                    publisher.cleanup().unwrap();
                    publisher.subscriber_count() == 0 && publisher.samples_in_use() == baseline[i]
                });
                assert!(
                    reclaimed,
                    "publisher {i}: {} samples in use (baseline {}), {} subscribers",
                    publisher.samples_in_use(),
                    baseline[i],
                    publisher.subscriber_count()
                );
            }
            for (i, subscriber) in subscribers.iter().enumerate() {
                assert_eq!(subscriber.publishers_alive(), 0, "subscriber {i}: publisher alive");
                assert_eq!(*received[i], 1000 + i as u64, "a received sample stays readable");
            }
            drop(received);
            drop(subscribers);
            drop(publishers);
            // What is left is this process's own heap (removed when it exits).
            let left = support::leftovers(&domain);
            assert!(left.iter().all(|n| n.contains(".heap.") || n.contains(".bell.")), "{left:?}");
        }
        Some("borrower") => {
            let subscribers: Vec<Subscriber<u64>> = (0..TOPICS)
                .map(|i| Subscriber::<u64>::builder(&format!("out/{i}")).history(4).create())
                .collect::<Result<_, _>>()
                .unwrap();
            let held: Vec<_> = subscribers
                .iter()
                .map(|s| s.receive_timeout(Duration::from_secs(10)).unwrap().expect("history"))
                .collect();
            println!("holding");
            support::wait_for_parent(); // killed here
            drop(held);
        }
        Some("source") => {
            let publishers: Vec<Publisher<u64>> = (0..TOPICS)
                .map(|i| Publisher::<u64>::new(&format!("in/{i}")))
                .collect::<Result<_, _>>()
                .unwrap();
            for (i, publisher) in publishers.iter().enumerate() {
                assert!(support::wait_until(Duration::from_secs(30), || {
                    publisher.subscriber_count() == 1
                }));
                publisher.publish(1000 + i as u64).unwrap();
            }
            println!("published");
            support::wait_for_parent(); // killed here
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
