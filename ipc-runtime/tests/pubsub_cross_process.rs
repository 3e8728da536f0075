//! Publish/subscribe across real processes. Each test re-runs this binary in roles, in its own
//! `IPC_DOMAIN`, and checks the domain is clean afterwards.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use support::{field, finish, spawn_held_role, stdout_lines, wait_for_line};

/// A message with a variable-length payload and a string.
#[derive(ShmMessage)]
#[repr(C)]
struct Payload {
    seq: u64,
    offset: u32,
    len: u32,
    data: ShmVec<u8>,
    label: ShmString,
}

/// A 128 KiB pseudo-random pattern; payloads are slices of it, so receivers can check content
/// with one comparison.
fn pattern() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..128 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn payload_shape(seq: u64) -> (u32, u32) {
    let h = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 20) as u32 % (64 * 1024), (h >> 40) as u32 % (64 * 1024 + 1))
}

fn label(seq: u64, len: u32) -> String {
    format!("message {seq} carries {len} bytes")
}

fn build(pattern: &[u8], seq: u64) -> Payload {
    let (offset, len) = payload_shape(seq);
    let data = ShmVec::from_slice(&pattern[offset as usize..(offset + len) as usize]);
    Payload { seq, offset, len, data, label: ShmString::from(label(seq, len).as_str()) }
}

fn check(pattern: &[u8], p: &Payload) {
    let (offset, len) = payload_shape(p.seq);
    assert_eq!((p.offset, p.len), (offset, len), "header of message {}", p.seq);
    assert_eq!(
        &p.data[..],
        &pattern[offset as usize..(offset + len) as usize],
        "payload of {}",
        p.seq
    );
    assert_eq!(p.label.as_str(), label(p.seq, len));
}

/// (publisher id, sequence)
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Tagged(u64, u64);

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set"))
}

fn wait_for_subscribers<M: ShmMessage + Send, B: ipc_runtime::wait::WaitBackend>(
    publisher: &Publisher<M, B>,
    n: usize,
) {
    assert!(
        support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() >= n),
        "subscribers did not connect"
    );
}

/// Messages of the fan-out test in the default suite; `IPC_STRESS_MESSAGES` overrides it
/// (`scripts/stress-block.sh` runs 10^7 in release mode).
const FANOUT_MESSAGES: u64 = 100_000;

/// The fan-out test's message count: `IPC_STRESS_MESSAGES`, or [`FANOUT_MESSAGES`].
fn fanout_messages() -> u64 {
    match std::env::var("IPC_STRESS_MESSAGES") {
        Ok(n) => {
            let n: u64 = n.trim().parse().unwrap_or_else(|_| panic!("IPC_STRESS_MESSAGES={n}"));
            assert!(n > 0, "IPC_STRESS_MESSAGES must be at least 1");
            n
        }
        Err(_) => FANOUT_MESSAGES,
    }
}

#[test]
fn fan_out_to_four_processes_with_block_has_no_gaps() {
    let test = "fan_out_to_four_processes_with_block_has_no_gaps";
    let messages = fanout_messages();
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("fanout");
            // Children inherit the environment anyway; passing the count explicitly makes the
            // roles use exactly the parent's value.
            let envs = [("IPC_STRESS_MESSAGES", messages.to_string())];
            let mut subs: Vec<_> =
                (0..4).map(|_| spawn_held_role(test, "sub", &domain, &envs)).collect();
            let mut readers: Vec<_> = subs.iter_mut().map(stdout_lines).collect();
            for reader in &mut readers {
                assert!(wait_for_line(reader, "ready"), "subscriber did not start");
            }
            let start = Instant::now();
            let publisher = support::spawn_role(test, "pub", &domain, &envs);
            let out = publisher.wait_with_output().unwrap();
            support::assert_success("publisher", &out);
            for (sub, reader) in subs.into_iter().zip(readers) {
                let (status, stdout, stderr) = finish(sub, Some(reader));
                assert!(status.success(), "subscriber failed: {stdout}\n{stderr}");
                assert!(stdout.contains(&format!("received={messages}\n")), "{stdout}");
            }
            let elapsed = start.elapsed();
            println!(
                "fan-out: {messages} messages to 4 subscribers in {:.2} s = {:.0} msgs/s",
                elapsed.as_secs_f64(),
                messages as f64 / elapsed.as_secs_f64()
            );
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let pattern = pattern();
            let publisher = Publisher::<Payload>::builder("fanout")
                .overflow(Overflow::Block)
                .max_subscribers(4)
                .subscriber_capacity(16)
                .max_borrowed(4)
                .block_timeout(Duration::from_secs(60))
                .create()
                .unwrap();
            wait_for_subscribers(&publisher, 4);
            for seq in 1..=messages {
                publisher.publish(build(&pattern, seq)).unwrap();
            }
        }
        Some("sub") => {
            let pattern = pattern();
            let subscriber = Subscriber::<Payload>::builder("fanout")
                .overflow(Overflow::Block)
                .max_subscribers(4)
                .subscriber_capacity(16)
                .max_borrowed(4)
                .create()
                .unwrap();
            println!("ready");
            let mut received = 0;
            while received < messages {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(60)).unwrap().expect("stalled");
                received += 1;
                // Strictly consecutive from 1: nothing lost, duplicated or reordered.
                assert_eq!(sample.sequence(), received, "gap under Overflow::Block");
                assert_eq!(sample.seq, received);
                check(&pattern, &sample);
            }
            // The publisher sent exactly `messages`: anything more would be a duplicate.
            if let Some(extra) = subscriber.try_receive().unwrap() {
                panic!("message {} delivered after all {messages}", extra.sequence());
            }
            println!("received={received}");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn drop_oldest_never_blocks_and_leaks_nothing() {
    let test = "drop_oldest_never_blocks_and_leaks_nothing";
    const N: u64 = 20_000;
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("dropoldest");
            let mut slow = spawn_held_role(test, "slow", &domain, &[]);
            let mut slow_out = stdout_lines(&mut slow);
            assert!(wait_for_line(&mut slow_out, "ready"));
            let publisher = support::spawn_role(test, "pub", &domain, &[]);
            let out = publisher.wait_with_output().unwrap();
            support::assert_success("publisher", &out);
            let (status, stdout, stderr) = finish(slow, Some(slow_out));
            assert!(status.success(), "slow subscriber failed: {stdout}\n{stderr}");
            let gaps: u64 = field_in(&stdout, "gaps").parse().unwrap();
            assert!(gaps > 0, "the slow subscriber saw every message: {stdout}");
            println!(
                "publish rate with a stalled subscriber vs none: {} vs {} msgs/s",
                field(&out, "rate_slow").unwrap(),
                field(&out, "rate_alone").unwrap()
            );
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let pattern = pattern();
            // Baseline: publish rate with no subscriber at all.
            let alone = Publisher::<Payload>::new("calibrate").unwrap();
            let start = Instant::now();
            for seq in 1..=N {
                alone.publish(build(&pattern, seq)).unwrap();
            }
            println!("rate_alone={:.0}", N as f64 / start.elapsed().as_secs_f64());
            drop(alone);

            let publisher = Publisher::<Payload>::new("slow").unwrap();
            let control = Publisher::<u32>::new("control").unwrap();
            wait_for_subscribers(&publisher, 1);
            publisher.cleanup().unwrap();
            let baseline = ipc_runtime::heap_stats().bytes_in_use();
            // The slow subscriber does not read anything until we are done: if publishing
            // ever blocked on it, this loop would never finish.
            let start = Instant::now();
            for seq in 1..=N {
                publisher.publish(build(&pattern, seq)).unwrap();
            }
            println!("rate_slow={:.0}", N as f64 / start.elapsed().as_secs_f64());
            control.publish(1).unwrap();
            // The subscriber drains what is left, drops everything and leaves.
            assert!(support::wait_until(Duration::from_secs(30), || {
                publisher.cleanup().unwrap();
                publisher.subscriber_count() == 0 && publisher.samples_in_use() == 0
            }));
            assert_eq!(ipc_runtime::heap_stats().bytes_in_use(), baseline, "heap bytes leaked");
        }
        Some("slow") => {
            let pattern = pattern();
            let subscriber = Subscriber::<Payload>::new("slow").unwrap();
            let control = Subscriber::<u32>::new("control").unwrap();
            // Hold a few samples the whole time, like a consumer that is stuck.
            println!("ready");
            control.receive_timeout(Duration::from_secs(60)).unwrap().expect("publisher finished");
            let (mut last, mut gaps, mut count) = (0, 0, 0);
            while let Some(sample) = subscriber.try_receive().unwrap() {
                check(&pattern, &sample);
                if sample.sequence() != last + 1 {
                    gaps += 1;
                }
                last = sample.sequence();
                count += 1;
            }
            assert_eq!(last, N, "the newest message survives DropOldest");
            assert!(count <= 16, "more than the queue capacity was kept: {count}");
            println!("gaps={gaps}");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

fn field_in(stdout: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
        .to_owned()
}

#[test]
fn late_joiner_receives_exactly_the_history() {
    let test = "late_joiner_receives_exactly_the_history";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("history");
            let mut publisher = spawn_held_role(test, "pub", &domain, &[]);
            let mut pub_out = stdout_lines(&mut publisher);
            assert!(wait_for_line(&mut pub_out, "published"));
            let sub = support::run_role(test, "sub", &domain, &[]);
            support::assert_success("subscriber", &sub);
            let (status, stdout, stderr) = finish(publisher, Some(pub_out));
            assert!(status.success(), "publisher failed: {stdout}\n{stderr}");
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let publisher = Publisher::<u64>::builder("history").history(5).create().unwrap();
            for value in 1..=10 {
                publisher.publish(value * 100).unwrap();
            }
            println!("published");
            // Stay idle (no further publish) until the parent is done with the subscriber.
            support::wait_for_parent();
        }
        Some("sub") => {
            let subscriber = Subscriber::<u64>::builder("history").history(5).create().unwrap();
            let mut got = Vec::new();
            for _ in 0..5 {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(10)).unwrap().expect("history");
                got.push((sample.sequence(), *sample));
            }
            assert_eq!(got, (6..=10).map(|i| (i, i * 100)).collect::<Vec<_>>());
            assert!(subscriber.receive_timeout(Duration::from_millis(200)).unwrap().is_none());
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

/// A publisher that publishes and exits before its subscriber has read anything (the seed's
/// broadcaster typing `exit`): the subscriber still receives every message, `ShmVec` payloads
/// included, from the departed publisher's heap. On Windows that heap lives only because the
/// publisher handed the subscriber's process a handle to it when it connected.
#[test]
fn samples_outlive_the_publisher_process() {
    let test = "samples_outlive_the_publisher_process";
    const N: u64 = 20;
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("outlive");
            let mut sub = spawn_held_role(test, "sub", &domain, &[]);
            let mut sub_out = stdout_lines(&mut sub);
            assert!(wait_for_line(&mut sub_out, "ready"));
            let publisher = support::run_role(test, "pub", &domain, &[]);
            support::assert_success("publisher", &publisher);
            // The publisher has exited; only now does the subscriber look.
            let (status, stdout, stderr) = finish(sub, Some(sub_out));
            assert!(status.success(), "subscriber failed: {stdout}\n{stderr}");
            assert!(stdout.contains(&format!("received={N}")), "{stdout}");
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let pattern = pattern();
            let publisher =
                Publisher::<Payload>::builder("outlive").subscriber_capacity(32).create().unwrap();
            wait_for_subscribers(&publisher, 1);
            for seq in 1..=N {
                publisher.publish(build(&pattern, seq)).unwrap();
            }
        }
        Some("sub") => {
            let pattern = pattern();
            let subscriber =
                Subscriber::<Payload>::builder("outlive").subscriber_capacity(32).create().unwrap();
            println!("ready");
            support::wait_for_parent();
            for seq in 1..=N {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(30)).unwrap().expect("lost");
                assert_eq!(sample.sequence(), seq);
                check(&pattern, &sample);
            }
            println!("received={N}");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

/// The window between a lingering publisher handing over in `exit` (its token gone) and its
/// process being gone: a subscriber that leaves right then must still remove the publisher's
/// heap (it waits for the process to finish dying), or nobody would.
#[test]
fn subscriber_leaving_while_the_publisher_exits_leaves_nothing() {
    let test = "subscriber_leaving_while_the_publisher_exits_leaves_nothing";
    const N: u64 = 5;
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("exitrace");
            let marker = std::env::temp_dir().join(format!("exit-pause-{domain}"));
            let _ = std::fs::remove_file(&marker);
            let mut sub = spawn_held_role(test, "sub", &domain, &[]);
            let mut sub_out = stdout_lines(&mut sub);
            assert!(wait_for_line(&mut sub_out, "ready"));
            let publisher = support::spawn_role(
                test,
                "pub",
                &domain,
                &[("IPC_TEST_PAUSE_IN_EXIT", marker.display().to_string())],
            );
            assert!(
                support::wait_until(Duration::from_secs(30), || marker.exists()),
                "the publisher never reached its exit pause"
            );
            // The publisher is in `exit`, its token gone: now the subscriber reads and leaves.
            let stdin = sub.stdin.as_mut().unwrap();
            writeln!(stdin, "go").unwrap();
            stdin.flush().unwrap();
            assert!(wait_for_line(&mut sub_out, "leaving"), "subscriber did not get to leave");
            std::fs::remove_file(&marker).unwrap();
            let out = publisher.wait_with_output().unwrap();
            support::assert_success("publisher", &out);
            let (status, stdout, stderr) = finish(sub, Some(sub_out));
            assert!(status.success(), "subscriber failed: {stdout}\n{stderr}");
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let publisher =
                Publisher::<Tagged>::builder("exitrace").subscriber_capacity(8).create().unwrap();
            wait_for_subscribers(&publisher, 1);
            for seq in 1..=N {
                publisher.publish(Tagged(1, seq)).unwrap();
            }
            // Dropped with every sample still queued: the publisher lingers into `exit`.
        }
        Some("sub") => {
            let subscriber =
                Subscriber::<Tagged>::builder("exitrace").subscriber_capacity(8).create().unwrap();
            println!("ready");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            for seq in 1..=N {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(30)).unwrap().expect("lost");
                assert_eq!(sample.1, seq);
            }
            println!("leaving");
            drop(subscriber);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn two_publishers_one_subscriber() {
    let test = "two_publishers_one_subscriber";
    const N: u64 = 2_000;
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("twopub");
            let mut sub = spawn_held_role(test, "sub", &domain, &[]);
            let mut sub_out = stdout_lines(&mut sub);
            assert!(wait_for_line(&mut sub_out, "ready"));
            // Both publishers hold their slots before either publishes, and until the
            // subscriber has everything: otherwise the first may be done and gone before the
            // second starts (process start-up is slow under Wine), and the second would reuse
            // its slot.
            let mut pubs: Vec<_> = (1..=2u64)
                .map(|id| spawn_held_role(test, "pub", &domain, &[("PUB_ID", id.to_string())]))
                .collect();
            let mut pub_outs: Vec<_> = pubs.iter_mut().map(stdout_lines).collect();
            for out in &mut pub_outs {
                assert!(wait_for_line(out, "ready"), "publisher did not start");
            }
            for p in &mut pubs {
                let stdin = p.stdin.as_mut().unwrap();
                writeln!(stdin, "go").unwrap();
                stdin.flush().unwrap();
            }
            let (status, stdout, stderr) = finish(sub, Some(sub_out));
            assert!(status.success(), "subscriber failed: {stdout}\n{stderr}");
            for (p, out) in pubs.into_iter().zip(pub_outs) {
                let (status, stdout, stderr) = finish(p, Some(out)); // closes stdin: exit
                assert!(status.success(), "publisher failed: {stdout}\n{stderr}");
            }
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let id: u64 = env("PUB_ID").parse().unwrap();
            let publisher =
                Publisher::<Tagged>::builder("two").overflow(Overflow::Block).create().unwrap();
            println!("ready");
            let mut go = String::new();
            std::io::stdin().read_line(&mut go).unwrap();
            assert_eq!(go.trim_end(), "go");
            wait_for_subscribers(&publisher, 1);
            for seq in 1..=N {
                publisher.publish(Tagged(id, seq)).unwrap();
            }
            support::wait_for_parent();
        }
        Some("sub") => {
            let subscriber =
                Subscriber::<Tagged>::builder("two").overflow(Overflow::Block).create().unwrap();
            println!("ready");
            let mut next = [1u64; 3];
            let mut by_slot = std::collections::HashMap::new();
            for _ in 0..2 * N {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(30)).unwrap().expect("stalled");
                let Tagged(id, seq) = *sample;
                assert_eq!(seq, next[id as usize], "publisher {id} out of order");
                assert_eq!(sample.sequence(), seq);
                next[id as usize] += 1;
                by_slot.insert(id, sample.publisher_index());
            }
            assert_eq!(next[1..], [N + 1, N + 1]);
            assert_ne!(by_slot[&1], by_slot[&2], "two publisher slots");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

mod program_a {
    use ipc_runtime::prelude::*;

    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Reading {
        pub value: u32,
    }
}

mod program_b {
    use ipc_runtime::prelude::*;

    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Reading {
        pub value: u64,
    }
}

#[derive(ShmMessage)]
#[repr(C)]
struct Stamped<T> {
    stamp: i64,
    value: T,
}

#[test]
fn fingerprint_mismatch_between_programs_is_refused() {
    let test = "fingerprint_mismatch_between_programs_is_refused";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("mismatch");
            let mut a = spawn_held_role(test, "a", &domain, &[]);
            let mut a_out = stdout_lines(&mut a);
            assert!(wait_for_line(&mut a_out, "ready"));
            let b = support::run_role(test, "b", &domain, &[]);
            support::assert_success("program b", &b);
            let message = field(&b, "error").unwrap();
            assert_eq!(
                message,
                "topic `readings` carries `Reading`, not `Reading`: field 0 is `value: u32` (4 bytes \
                 at offset 0) in the topic, `value: u64` (8 bytes at offset 0) here"
            );
            let (status, _, stderr) = finish(a, Some(a_out));
            assert!(status.success(), "{stderr}");
            support::assert_clean(&domain);
        }
        Some("a") => {
            let _subscriber = Subscriber::<program_a::Reading>::new("readings").unwrap();
            let _stamped = Subscriber::<Stamped<f64>>::new("stamped").unwrap();
            println!("ready");
            support::wait_for_parent();
        }
        Some("b") => {
            let err = Publisher::<program_b::Reading>::new("readings").unwrap_err();
            assert!(matches!(err, Error::TypeMismatch { .. }));
            println!("error={err}");
            let err = Subscriber::<u64>::new("readings").unwrap_err();
            assert_eq!(
                err.to_string(),
                "topic `readings` carries `Reading`, not `u64`: their layout fingerprints differ"
            );
            // A generic type is named with its arguments, and the field that differs.
            let err = Publisher::<Stamped<f32>>::new("stamped").unwrap_err();
            assert_eq!(
                err.to_string(),
                "topic `stamped` carries `Stamped<f64>`, not `Stamped<f32>`: field 1 is `value: T` \
                 (8 bytes at offset 8) in the topic, `value: T` (4 bytes at offset 8) here \
                 (another definition of `T`)"
            );
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn receive_timeout_sleeps_without_burning_cpu() {
    let test = "receive_timeout_sleeps_without_burning_cpu";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("sleep");
            let out = support::run_role(test, "sub", &domain, &[]);
            support::assert_success("subscriber", &out);
            support::assert_clean(&domain);
        }
        Some("sub") => {
            let subscriber = Subscriber::<u64>::new("quiet").unwrap();
            let cpu = support::cpu_time();
            let start = Instant::now();
            let got = subscriber.receive_timeout(Duration::from_secs(1)).unwrap();
            let (elapsed, cpu) = (start.elapsed(), support::cpu_time() - cpu);
            assert!(got.is_none());
            assert!(elapsed >= Duration::from_secs(1), "returned early: {elapsed:?}");
            assert!(elapsed < Duration::from_secs(3), "returned late: {elapsed:?}");
            assert!(cpu < Duration::from_millis(50), "burnt {cpu:?} of CPU while waiting");
            println!("cpu={cpu:?} elapsed={elapsed:?}");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn garbage_in_a_completion_queue_is_rejected() {
    let test = "garbage_in_a_completion_queue_is_rejected";
    const N: u64 = 2_000;
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("garbage");
            let mut good = spawn_held_role(test, "good", &domain, &[]);
            let mut good_out = stdout_lines(&mut good);
            assert!(wait_for_line(&mut good_out, "ready"));
            let mut bad = spawn_held_role(test, "bad", &domain, &[]);
            let mut bad_out = stdout_lines(&mut bad);
            assert!(wait_for_line(&mut bad_out, "ready"));
            let publisher = support::spawn_role(test, "pub", &domain, &[]);
            let out = publisher.wait_with_output().unwrap();
            support::assert_success("publisher", &out);
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(
                log.contains("garbage in subscriber's completion queue: it does not hold"),
                "not logged: {log}"
            );
            assert!(
                log.contains("garbage in subscriber's completion queue: its completion tail"),
                "not logged: {log}"
            );
            assert!(log.contains("; disconnecting it"), "not logged: {log}");
            let (status, stdout, stderr) = finish(good, Some(good_out));
            assert!(status.success(), "good subscriber failed: {stdout}\n{stderr}");
            let (status, _, stderr) = finish(bad, Some(bad_out));
            assert!(status.success(), "{stderr}");
            support::assert_clean(&domain);
        }
        Some("pub") => {
            support::log_to_stderr();
            let publisher =
                Publisher::<u64>::builder("garbage").overflow(Overflow::Block).create().unwrap();
            wait_for_subscribers(&publisher, 2);
            for seq in 1..=N {
                publisher.publish(seq).unwrap();
                if seq % 100 == 0 {
                    publisher.cleanup().unwrap();
                }
            }
            assert!(support::wait_until(Duration::from_secs(30), || {
                publisher.cleanup().unwrap();
                publisher.subscriber_count() <= 1
            }));
        }
        Some("good") => {
            let subscriber =
                Subscriber::<u64>::builder("garbage").overflow(Overflow::Block).create().unwrap();
            println!("ready");
            for seq in 1..=N {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(30)).unwrap().expect("stalled");
                assert_eq!(*sample, seq, "the good subscriber lost a message");
            }
        }
        Some("bad") => {
            let subscriber =
                Subscriber::<u64>::builder("garbage").overflow(Overflow::Block).create().unwrap();
            println!("ready");
            // Take one real sample, then return garbage: indices out of range, indices we never
            // held, and finally indices that make no sense at all.
            let first =
                subscriber.receive_timeout(Duration::from_secs(30)).unwrap().expect("first");
            let (publisher, scribbled_at) = (first.publisher_index(), first.sequence());
            drop(first);
            subscriber.debug_scribble_completion(publisher, &[u32::MAX, 1_000_000, 3, 3, 3], false);
            // At the scribble, at most 16 samples (up to `scribbled_at + 16`) were published
            // for us. The publisher takes returns back lazily but runs `cleanup` every 100
            // messages, so receiving `scribbled_at + 117` proves one ran after the scribble.
            loop {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(30)).unwrap().expect("more");
                if sample.sequence() > scribbled_at + 116 {
                    break;
                }
            }
            subscriber.debug_scribble_completion(publisher, &[], true);
            support::wait_for_parent();
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

/// Any wait backend plugs into pub/sub: here Unix domain sockets instead of the futex.
#[cfg(unix)]
#[test]
fn unix_socket_backend_across_processes() {
    use ipc_runtime::wait::UnixSocket;
    let test = "unix_socket_backend_across_processes";
    const N: u64 = 1_000;
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("socket");
            let mut sub = spawn_held_role(test, "sub", &domain, &[]);
            let mut sub_out = stdout_lines(&mut sub);
            assert!(wait_for_line(&mut sub_out, "ready"));
            let publisher = support::spawn_role(test, "pub", &domain, &[]);
            support::assert_success("publisher", &publisher.wait_with_output().unwrap());
            let (status, stdout, stderr) = finish(sub, Some(sub_out));
            assert!(status.success(), "subscriber failed: {stdout}\n{stderr}");
            support::assert_clean(&domain);
        }
        Some("pub") => {
            let publisher = Publisher::<u64>::builder("sock")
                .overflow(Overflow::Block)
                .backend::<UnixSocket>()
                .create()
                .unwrap();
            wait_for_subscribers(&publisher, 1);
            for seq in 1..=N {
                publisher.publish(seq).unwrap();
            }
        }
        Some("sub") => {
            let subscriber = Subscriber::<u64>::builder("sock")
                .overflow(Overflow::Block)
                .backend::<UnixSocket>()
                .create()
                .unwrap();
            println!("ready");
            for seq in 1..=N {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(30)).unwrap().expect("stalled");
                assert_eq!(*sample, seq);
            }
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
