//! Crash recovery across real processes killed with SIGKILL: nothing leaks, nobody blocks, and
//! stale state never stops a restart.
//!
//! `IPC_STRESS_KILLS` raises the number of kills of the first test (see `scripts/stress-kills.sh`).

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

#[derive(ShmMessage)]
#[repr(C)]
struct Reading {
    seq: u64,
    samples: ShmVec<u32>,
    note: ShmString,
}

fn reading(seq: u64) -> Reading {
    let n = (seq % 200) as u32;
    Reading {
        seq,
        samples: (0..n).map(|i| i ^ seq as u32).collect(),
        note: ShmString::from("still valid"),
    }
}

fn intact(r: &Reading) -> bool {
    r.samples.len() == (r.seq % 200) as usize
        && r.samples.iter().enumerate().all(|(i, &v)| v == i as u32 ^ r.seq as u32)
        && r.note == "still valid"
}

#[test]
fn killed_subscribers_leak_nothing_and_never_block_the_publisher() {
    let test = "killed_subscribers_leak_nothing_and_never_block_the_publisher";
    let kills: usize =
        std::env::var("IPC_STRESS_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(200);
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("kill-sub");
            let mut publisher = spawn_held_role(test, "pub", &domain, &[]);
            let mut pub_out = stdout_lines(&mut publisher);
            assert!(wait_for_line(&mut pub_out, "publishing"));
            let start = Instant::now();
            for round in 0..kills {
                let mut sub = spawn_held_role(test, "sub", &domain, &[]);
                let mut out = stdout_lines(&mut sub);
                if !wait_for_line(&mut out, "holding") {
                    sub.kill().unwrap();
                    let (_, stdout, stderr) = finish(sub, Some(out));
                    panic!("subscriber {round} did not start:\n{stdout}\n{stderr}");
                }
                sub.kill().unwrap();
                let status = sub.wait().unwrap();
                assert!(!status.success());
            }
            let killing = start.elapsed();
            let (status, stdout, stderr) = finish(publisher, Some(pub_out));
            assert!(status.success(), "publisher failed: {stdout}\n{stderr}");
            println!("{kills} subscribers killed in {killing:.2?}; publisher: {}", stdout.trim());
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let stop = support::parent_gone_flag();
            let publisher = Publisher::<Reading>::builder("readings")
                .max_subscribers(4)
                .liveness_interval(Duration::from_millis(20))
                .create()
                .unwrap();
            publisher.cleanup().unwrap();
            let (baseline_heap, baseline_slots) =
                (ipc_runtime::heap_stats().bytes_in_use(), publisher.samples_in_use());
            println!("publishing");
            let mut seq = 0;
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Acquire) {
                seq += 1;
                let start = Instant::now();
                publisher.publish(reading(seq)).expect("publishing never fails");
                slowest = slowest.max(start.elapsed());
                std::thread::yield_now();
            }
            // Everything the killed subscribers held must come back.
            assert!(
                support::wait_until(Duration::from_secs(30), || {
                    publisher.cleanup().unwrap();
                    publisher.subscriber_count() == 0
                        && publisher.samples_in_use() == baseline_slots
                }),
                "slots not reclaimed: {} in use, {} subscribers",
                publisher.samples_in_use(),
                publisher.subscriber_count()
            );
            let heap = ipc_runtime::heap_stats().bytes_in_use();
            assert_eq!(heap, baseline_heap, "heap bytes leaked");
            println!(
                "published={seq} slowest_publish={slowest:?} heap_in_use={heap} (baseline {baseline_heap})"
            );
        }
        Some("sub") => {
            let subscriber =
                Subscriber::<Reading>::builder("readings").max_subscribers(4).create().unwrap();
            // Borrow as much as allowed and keep it, with more queued behind.
            let mut held = Vec::new();
            while held.len() < 8 {
                if let Some(sample) = subscriber.receive_timeout(Duration::from_secs(10)).unwrap() {
                    assert!(intact(&sample));
                    held.push(sample);
                }
            }
            println!("holding");
            support::wait_for_parent(); // killed here
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn killed_publisher_is_noticed_and_replaced() {
    let test = "killed_publisher_is_noticed_and_replaced";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("kill-pub");
            let mut sub = spawn_held_role(test, "sub", &domain, &[]);
            let mut sub_out = stdout_lines(&mut sub);
            assert!(wait_for_line(&mut sub_out, "ready"));
            let mut first = spawn_held_role(test, "pub", &domain, &[]);
            let mut first_out = stdout_lines(&mut first);
            assert!(wait_for_line(&mut first_out, "publishing"));
            assert!(wait_for_line(&mut sub_out, "receiving"));
            let killed_at = Instant::now();
            first.kill().unwrap();
            first.wait().unwrap();
            assert!(wait_for_line(&mut sub_out, "publisher-dead"), "subscriber never noticed");
            let noticed = killed_at.elapsed();
            assert!(noticed < Duration::from_secs(5), "took {noticed:?} to notice");
            assert!(wait_for_line(&mut sub_out, "held-sample-still-valid"));
            // A new publisher on the same topic works.
            let mut second = spawn_held_role(test, "pub", &domain, &[]);
            let mut second_out = stdout_lines(&mut second);
            assert!(wait_for_line(&mut second_out, "publishing"));
            assert!(wait_for_line(&mut sub_out, "second-publisher-ok"));
            let (status, stdout, stderr) = finish(second, Some(second_out));
            assert!(status.success(), "{stdout}\n{stderr}");
            let (status, stdout, stderr) = finish(sub, Some(sub_out));
            assert!(status.success(), "{stdout}\n{stderr}");
            println!("dead publisher noticed after {noticed:?}");
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let stop = support::parent_gone_flag();
            let publisher = Publisher::<Reading>::new("stream").unwrap();
            assert!(
                support::wait_until(Duration::from_secs(10), || publisher.subscriber_count() == 1)
            );
            println!("publishing");
            let mut seq = 0;
            while !stop.load(Ordering::Acquire) {
                seq += 1;
                publisher.publish(reading(seq)).unwrap();
                std::thread::sleep(Duration::from_micros(200)); // pacing, not synchronisation
            }
        }
        Some("sub") => {
            let subscriber = Subscriber::<Reading>::builder("stream")
                .fail_without_publishers(Duration::from_millis(50))
                .create()
                .unwrap();
            println!("ready");
            let mut held = None;
            let mut announced = false;
            let mut first_generation_done = false;
            loop {
                match subscriber.receive_timeout(Duration::from_secs(20)) {
                    Ok(Some(sample)) => {
                        assert!(intact(&sample));
                        if first_generation_done {
                            // From the second publisher: its sequence starts again.
                            if sample.sequence() >= 10 {
                                println!("second-publisher-ok");
                                break;
                            }
                            continue;
                        }
                        if !announced {
                            println!("receiving");
                            announced = true;
                        }
                        held = Some(sample);
                    }
                    Err(Error::NoPublisher { .. }) if !first_generation_done => {
                        println!("publisher-dead");
                        let sample = held.take().expect("held a sample");
                        assert!(intact(&sample), "a sample of a dead publisher changed");
                        println!("held-sample-still-valid");
                        drop(sample);
                        first_generation_done = true;
                    }
                    Err(Error::NoPublisher { .. }) => {}
                    Ok(None) => panic!("stalled"),
                    Err(other) => panic!("{other}"),
                }
            }
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn creator_killed_mid_creation_does_not_block_the_next() {
    let test = "creator_killed_mid_creation_does_not_block_the_next";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("kill-create");
            let marker = std::env::temp_dir().join(format!("{domain}.paused"));
            let _ = std::fs::remove_file(&marker);
            let mut creator = support::spawn_role(
                test,
                "creator",
                &domain,
                &[("IPC_TEST_PAUSE_IN_CREATE", marker.display().to_string())],
            );
            assert!(
                support::wait_until(Duration::from_secs(10), || marker.exists()),
                "creator never paused"
            );
            creator.kill().unwrap();
            creator.wait().unwrap();
            let _ = std::fs::remove_file(&marker);
            let next = support::run_role(test, "next", &domain, &[]);
            support::assert_success("next creator", &next);
            support::assert_clean(&domain);
        }
        Some("creator") => {
            let _ = Publisher::<u64>::builder("half").history(1).create();
            unreachable!("the pause point never returns");
        }
        Some("next") => {
            // Different options than the dead creator asked for: the half-made topic is
            // replaced, not validated against.
            let publisher = Publisher::<u64>::builder("half").history(2).create().unwrap();
            let subscriber = Subscriber::<u64>::builder("half").history(2).create().unwrap();
            publisher.publish(5).unwrap();
            assert_eq!(*subscriber.try_receive().unwrap().unwrap(), 5);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn topic_of_dead_processes_is_replaced_on_restart() {
    let test = "topic_of_dead_processes_is_replaced_on_restart";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("restart");
            // Both ends die without any chance to clean up.
            let mut p = spawn_held_role(test, "pub", &domain, &[]);
            let mut p_out = stdout_lines(&mut p);
            assert!(wait_for_line(&mut p_out, "ready"));
            let mut s = spawn_held_role(test, "sub", &domain, &[]);
            let mut s_out = stdout_lines(&mut s);
            assert!(wait_for_line(&mut s_out, "ready"));
            p.kill().unwrap();
            s.kill().unwrap();
            p.wait().unwrap();
            s.wait().unwrap();
            assert!(
                !support::leftovers(&domain).is_empty(),
                "the crash left nothing to recover from"
            );
            // A restart with another message type and other options starts afresh.
            let next = support::run_role(test, "restart", &domain, &[]);
            support::assert_success("restart", &next);
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let publisher = Publisher::<Reading>::builder("plant").history(1).create().unwrap();
            publisher.publish(reading(1)).unwrap();
            println!("ready");
            support::wait_for_parent();
        }
        Some("sub") => {
            let subscriber = Subscriber::<Reading>::builder("plant").history(1).create().unwrap();
            let _held = subscriber.receive_timeout(Duration::from_secs(10)).unwrap().unwrap();
            println!("ready");
            support::wait_for_parent();
        }
        Some("restart") => {
            let publisher =
                Publisher::<u32>::builder("plant").subscriber_capacity(4).create().unwrap();
            let subscriber = Subscriber::<u32>::new("plant").unwrap();
            publisher.publish(9).unwrap();
            assert_eq!(*subscriber.try_receive().unwrap().unwrap(), 9);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
