//! A peer of the same user shrinks a live segment with `ftruncate`: the
//! participants that map it must not die of `SIGBUS` (see `segment/guard.rs`).
//!
//! Each scenario runs a publisher and a subscriber (this binary re-run in roles, in a domain of
//! its own) that exchange messages with vectors in the publisher's heap; once the subscriber
//! has received some, a third process truncates (a) the topic segment to 0 bytes, or (b) the
//! publisher's heap to two pages. Both participants must survive; the subscriber must either
//! keep receiving (a: the pair talks through the heaps, not through the topic segment) or get
//! an error naming the truncated segment (b), within a deadline; both then exit normally. A
//! last test checks that the guard does not swallow a `SIGBUS` in memory it does not know.
//!
//! Linux only: elsewhere the guard is not installed (see the module docs of `segment`).
#![cfg(target_os = "linux")]

mod support;

use std::io::{BufRead, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use ipc_runtime::segment::{SegmentKind, SegmentName};
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

const TOPIC: &str = "shrink";
const SIGBUS: i32 = 7;

/// How long the subscriber has to notice, after the truncation.
const DEADLINE: Duration = Duration::from_secs(20);

/// Messages the subscriber must still receive after a truncation that leaves the pair intact.
const AFTER: u64 = 200;

/// Too big to travel inside a ring entry: it lives in a slot of the publisher's pool, in its
/// heap, and the subscriber reads it there. (No `ShmVec`: allocating from a heap whose
/// allocator state was truncated away is not what this test is about; see the report.)
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Reading {
    seq: u64,
    values: [u64; 15],
}

fn reading(seq: u64) -> Reading {
    Reading { seq, values: std::array::from_fn(|i| seq ^ i as u64) }
}

fn intact(r: &Reading) -> bool {
    r.values.iter().enumerate().all(|(i, &v)| v == r.seq ^ i as u64)
}

/// Publishes one message a millisecond until told to stop; errors are printed, not fatal (a
/// publisher whose heap was shrunk may find out).
fn publisher_role() {
    support::log_to_stderr();
    let stop = support::parent_gone_flag();
    let publisher = Publisher::<Reading>::new(TOPIC).expect("create the publisher");
    let heap = ipc_runtime::heap::default_heap().expect("the default heap");
    println!("heap={}", heap.name());
    assert!(
        support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() >= 1),
        "the subscriber did not connect"
    );
    println!("publishing");
    let (mut seq, mut errors) = (0u64, 0u64);
    while !stop.load(Ordering::Acquire) {
        seq += 1;
        if let Err(err) = publisher.publish(reading(seq)) {
            errors += 1;
            if errors == 1 {
                println!("publish_error={err}");
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("published={seq} errors={errors}");
    drop(publisher);
    println!("publisher_done");
}

/// Receives until the parent says the segment was truncated, then until: an error, the
/// publisher looks gone, or [`AFTER`] more messages came; gives up after [`DEADLINE`].
fn subscriber_role() {
    support::log_to_stderr();
    let subscriber = Subscriber::<Reading>::new(TOPIC).expect("create the subscriber");
    println!("ready");
    let truncated = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&truncated);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if line.is_ok_and(|l| l == "truncated") {
                flag.store(true, Ordering::Release);
            }
        }
    });
    let (mut received, mut garbled, mut after) = (0u64, 0u64, None::<(Instant, u64)>);
    let outcome = loop {
        if after.is_none() && truncated.load(Ordering::Acquire) {
            after = Some((Instant::now(), received));
        }
        if let Some((since, at)) = after {
            if received >= at + AFTER {
                break "receiving".to_owned();
            }
            if since.elapsed() > DEADLINE {
                break "stalled".to_owned();
            }
            if subscriber.publishers_alive() == 0 {
                break "disconnected".to_owned();
            }
        }
        match subscriber.receive_timeout(Duration::from_millis(20)) {
            Ok(Some(sample)) => {
                received += 1;
                if received == 1 {
                    println!("first");
                }
                if !intact(&sample) {
                    garbled += 1;
                }
            }
            Ok(None) => {}
            Err(err) => break format!("error: {err}"),
        }
    };
    println!("outcome={outcome}");
    println!("received={received} garbled={garbled}");
    support::wait_for_parent();
    drop(subscriber);
    println!("subscriber_done");
}

/// Truncates `TRUNCATE_PATH` to `TRUNCATE_SIZE` bytes, as any process of the same user may.
fn truncator_role() {
    let path = std::env::var("TRUNCATE_PATH").unwrap();
    let size: u64 = std::env::var("TRUNCATE_SIZE").unwrap().parse().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(size).unwrap();
    println!("truncated {path} to {size}");
}

/// Reads lines until one starts with `prefix`; returns the rest of it.
fn read_field(
    reader: &mut std::io::BufReader<std::process::ChildStdout>,
    prefix: &str,
) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return Some(rest.to_owned());
        }
    }
}

/// Which segment the third process shrinks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Topic,
    PublisherHeap,
}

fn scenario(test: &str, target: Target) {
    match support::role().as_deref() {
        Some("pub") => return publisher_role(),
        Some("sub") => return subscriber_role(),
        Some("truncator") => return truncator_role(),
        Some(other) => panic!("unknown role {other}"),
        None => {}
    }
    let domain = support::unique_domain("shrink");
    let mut sub = spawn_held_role(test, "sub", &domain, &[]);
    let mut sub_out = stdout_lines(&mut sub);
    assert!(wait_for_line(&mut sub_out, "ready"), "the subscriber did not start");
    let mut publisher = spawn_held_role(test, "pub", &domain, &[]);
    let mut pub_out = stdout_lines(&mut publisher);
    let heap = read_field(&mut pub_out, "heap=").expect("the publisher's heap");
    assert!(wait_for_line(&mut pub_out, "publishing"), "the publisher did not start");
    assert!(wait_for_line(&mut sub_out, "first"), "the subscriber received nothing");

    let (name, size) = match target {
        Target::Topic => {
            (SegmentName::new(&domain, SegmentKind::Topic, TOPIC).unwrap().to_string(), 0)
        }
        Target::PublisherHeap => (heap, 8192),
    };
    let path = ipc_runtime::liveness::lock_dir().join(&name);
    assert!(path.exists(), "no segment {}", path.display());
    let out = support::run_role(
        test,
        "truncator",
        &domain,
        &[("TRUNCATE_PATH", path.display().to_string()), ("TRUNCATE_SIZE", size.to_string())],
    );
    support::assert_success("the truncator", &out);
    writeln!(sub.stdin.as_mut().unwrap(), "truncated").unwrap();

    // The subscriber decides (within its deadline) and says how.
    let outcome = read_field(&mut sub_out, "outcome=").unwrap_or_default();
    let (pub_status, pub_stdout, pub_stderr) = finish(publisher, Some(pub_out));
    let (sub_status, sub_stdout, sub_stderr) = finish(sub, Some(sub_out));
    let report = format!(
        "subscriber: {sub_status}, {outcome}\n{sub_stdout}\n{sub_stderr}\n\
         publisher: {pub_status}\n{pub_stdout}\n{pub_stderr}"
    );
    for (who, status) in [("subscriber", sub_status), ("publisher", pub_status)] {
        assert_ne!(status.signal(), Some(SIGBUS), "the {who} died of SIGBUS\n{report}");
        assert!(status.success(), "the {who} failed\n{report}");
    }
    assert!(sub_stdout.contains("subscriber_done"), "{report}");
    assert!(pub_stdout.contains("publisher_done"), "{report}");
    match target {
        // The pair talks through the heaps, so it may carry on; a subscriber that looks at the
        // (zeroed) registry sees no publisher any more.
        Target::Topic => assert!(
            outcome == "receiving" || outcome == "disconnected" || outcome.starts_with("error: "),
            "{report}"
        ),
        // The publisher's ring and samples are gone: the subscriber must say so.
        Target::PublisherHeap => assert!(
            outcome.starts_with("error: ") && outcome.contains(&name) || outcome == "disconnected",
            "{report}"
        ),
    }
    println!("{test}: the subscriber's outcome: {outcome}");

    // A topic segment of 0 bytes no longer opens as a segment, so the last one out leaves it
    // (and its lock file) for `ipc clean`; remove what is left so that the machine stays clean.
    for name in support::leftovers(&domain) {
        println!("  left behind: {name}");
        let _ = std::fs::remove_file(ipc_runtime::liveness::lock_dir().join(name));
    }
    support::assert_clean(&domain);
}

#[test]
fn truncating_the_topic_segment_kills_nobody() {
    scenario("truncating_the_topic_segment_kills_nobody", Target::Topic);
}

#[test]
fn truncating_the_publishers_heap_kills_nobody() {
    scenario("truncating_the_publishers_heap_kills_nobody", Target::PublisherHeap);
}

/// The guard handles faults in the framework's own segments only: a truncated mapping it does
/// not know still kills the process with SIGBUS, as it did before (here after the guard was
/// installed by a segment of our own).
#[test]
fn a_foreign_sigbus_still_kills() {
    let test = "a_foreign_sigbus_still_kills";
    if support::role().as_deref() == Some("foreign") {
        let domain = std::env::var("IPC_DOMAIN").unwrap();
        let name = SegmentName::new(&domain, SegmentKind::Raw, "ours").unwrap();
        // Installs the guard.
        let ours = ipc_runtime::segment::Segment::create(&name, SegmentKind::Raw, 8192).unwrap();
        ipc_runtime::segment::Segment::unlink(&name).unwrap();
        let path = std::env::temp_dir().join(format!("{domain}.foreign"));
        let file =
            std::fs::File::options().read(true).write(true).create_new(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file.set_len(8192).unwrap();
        let map = memmap2::MmapOptions::new().len(8192).map_raw(&file).unwrap();
        file.set_len(0).unwrap();
        println!("touching");
        std::io::stdout().flush().unwrap();
        // SAFETY: in bounds of the mapping; the object behind it is gone, so this raises SIGBUS.
        let value = unsafe { map.as_ptr().add(4096).read_volatile() };
        println!("survived, read {value}");
        drop(ours);
        return;
    }
    let domain = support::unique_domain("foreign");
    let out = support::run_role(test, "foreign", &domain, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("touching"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.signal(), Some(SIGBUS), "{}: {stdout}", out.status);
    support::assert_clean(&domain);
}
