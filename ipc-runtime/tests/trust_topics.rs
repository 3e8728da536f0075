//! Trust boundary, topics and event channels: a process that holds an object's lock file cannot
//! hang the others (joins give up after a bound, `Drop` does not wait for it, and what the
//! leavers could not remove is removed later), and a corrupt topic or channel nobody alive uses
//! is replaced, while one that may be in use is an error, not replaced.
//!
//! Every test runs its roles in processes of their own (this binary re-run, see `support`).

mod support;

use std::io::{BufRead, Write};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use ipc_runtime::Error;
use ipc_runtime::liveness::{self, FileLock};
use ipc_runtime::prelude::*;
use ipc_runtime::segment::{self, Access, RawMapping, Segment, SegmentKind, SegmentName};
use support::spawn_held_role;

/// The lock timeout the joiners of the held-lock test use (through `IPC_LOCK_TIMEOUT_MS`).
const BOUND: Duration = Duration::from_secs(1);

/// A child's stdout, line by line, readable with a deadline.
fn lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line starting with `prefix` within `deadline`.
fn expect_line(rx: &Receiver<String>, prefix: &str, deadline: Duration) -> Option<String> {
    let end = Instant::now() + deadline;
    loop {
        let left = end.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Waits up to `deadline` for `child` to exit; kills it and returns `None` if it does not.
fn wait_with_deadline(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let mut status = None;
    if support::wait_until(deadline, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    }) {
        return status;
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Waits for `child` (with a deadline) and panics with its stderr unless it succeeded.
fn finish_ok(what: &str, mut child: Child, deadline: Duration) {
    use std::io::Read;
    drop(child.stdin.take());
    let status = wait_with_deadline(&mut child, deadline);
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("{what} failed with {status}:\n{err}"),
        None => panic!("{what} did not finish within {deadline:?} (killed):\n{err}"),
    }
}

/// Maps segment `name` of `domain` read-write. On Windows a segment lives only as long as a
/// process maps it, so the parent maps what it will break before its creators die.
fn map(domain: &str, kind: SegmentKind, name: &str) -> RawMapping {
    let seg = SegmentName::new(domain, kind, name).unwrap();
    segment::platform().open(seg.as_str(), Access::ReadWrite).unwrap()
}

/// Writes `bytes` at `offset` into a mapped segment, as a faulty peer would.
fn scribble(map: &RawMapping, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= map.len(), "the segment is only {} bytes", map.len());
    // SAFETY: the range is inside the read-write mapping (asserted); the bytes are plain data.
    // Breaking a segment under whoever else maps it is the point of these tests.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.ptr().as_ptr().add(offset), bytes.len())
    };
}

/// Sets the size of segment `name` of `domain` (Linux: the object is a file in `/dev/shm`).
#[cfg(target_os = "linux")]
fn resize(domain: &str, kind: SegmentKind, name: &str, len: u64) {
    let seg = SegmentName::new(domain, kind, name).unwrap();
    let path = liveness::lock_dir().join(seg.as_str());
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len).unwrap();
}

// ---------------------------------------------------------------------------------------------

#[test]
fn held_lock_bounds_joins_and_never_blocks_drop() {
    let test = "held_lock_bounds_joins_and_never_blocks_drop";
    match support::role().as_deref() {
        None => held_lock_parent(test),
        // Members of topics `t` and `u` and event channel `e`; leave when told to, while the
        // locks are held.
        Some("members") => {
            let publisher = Publisher::<u64>::new("t").unwrap();
            let subscriber = Subscriber::<u64>::new("t").unwrap();
            let other = Subscriber::<u64>::new("u").unwrap();
            let listener = Listener::new("e").unwrap();
            let notifier = Notifier::new("e").unwrap();
            publisher.publish(1).unwrap();
            assert_eq!(*subscriber.receive_timeout(Duration::from_secs(10)).unwrap().unwrap(), 1);
            println!("joined");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "leave");
            let start = Instant::now();
            drop(subscriber);
            drop(publisher);
            drop(other);
            drop(notifier);
            drop(listener);
            println!("dropped in {} ms", start.elapsed().as_millis());
        }
        // Holds the locks of `t`, `u` and `e` until the parent lets go.
        Some("holder") => {
            let domain = ipc_runtime::domain::current();
            let locks: Vec<FileLock> = ["topic.t", "topic.u", "event.e"]
                .iter()
                .map(|name| FileLock::lock(domain, name).unwrap())
                .collect();
            println!("holding");
            support::wait_for_parent();
            drop(locks);
        }
        // Joins while the locks are held: each join gives up with a lock timeout.
        Some("joiner") => {
            assert_eq!(liveness::lock_timeout(), BOUND, "IPC_LOCK_TIMEOUT_MS is honoured");
            let joins: Vec<(&str, Timed)> = vec![
                ("publisher", timed(|| Publisher::<u64>::new("t").map(drop))),
                ("subscriber", timed(|| Subscriber::<u64>::new("t").map(drop))),
                ("listener", timed(|| Listener::new("e").map(drop))),
            ];
            for (what, join) in joins {
                let (took, result) = join.join().unwrap();
                let err = result.expect_err("joined although another process holds the lock");
                match &err {
                    Error::LockTimeout { lock, waited } => {
                        assert!(*waited >= BOUND, "{what}: {err}");
                        assert!(lock.contains(".lock."), "{what}: the error names the lock: {err}");
                    }
                    other => panic!("{what}: expected a lock timeout, got {other}"),
                }
                println!("{what} gave up after {} ms: {err}", took.as_millis());
            }
        }
        // After the holder let go: joins `t` again (replacing what the members left) and works.
        Some("rejoin") => {
            let publisher = Publisher::<u64>::new("t").unwrap();
            let subscriber = Subscriber::<u64>::new("t").unwrap();
            publisher.publish(2).unwrap();
            assert_eq!(*subscriber.receive_timeout(Duration::from_secs(10)).unwrap().unwrap(), 2);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

/// A join running on a thread of its own: how long it took and what it returned.
type Timed = std::thread::JoinHandle<(Duration, Result<(), Error>)>;

fn timed(join: impl FnOnce() -> Result<(), Error> + Send + 'static) -> Timed {
    std::thread::spawn(move || {
        let start = Instant::now();
        let result = join();
        (start.elapsed(), result)
    })
}

fn held_lock_parent(test: &str) {
    let domain = support::unique_domain("held-lock");
    let mut members = spawn_held_role(test, "members", &domain, &[]);
    let members_out = lines(&mut members);
    assert!(expect_line(&members_out, "joined", Duration::from_secs(30)).is_some(), "no join");
    let mut holder = spawn_held_role(test, "holder", &domain, &[]);
    let holder_out = lines(&mut holder);
    assert!(expect_line(&holder_out, "holding", Duration::from_secs(30)).is_some());

    // Joins give up after the bound (the old code waited for as long as the holder held on).
    let bound_ms = BOUND.as_millis().to_string();
    let mut joiner = spawn_held_role(test, "joiner", &domain, &[("IPC_LOCK_TIMEOUT_MS", bound_ms)]);
    let joiner_out = lines(&mut joiner);
    // All three joins run at once and give up after ~1 s: 10 s is only against a loaded machine.
    finish_ok("joiner", joiner, Duration::from_secs(10));
    let said: Vec<String> = joiner_out.try_iter().collect();
    assert_eq!(said.iter().filter(|l| l.contains("gave up after")).count(), 3, "{said:?}");

    // Dropping every participant returns while the holder still holds on: the holder only lets
    // go after the members said they are done.
    members.stdin.as_mut().unwrap().write_all(b"leave\n").unwrap();
    let dropped = expect_line(&members_out, "dropped in", Duration::from_secs(10))
        .expect("dropping the participants waited for the lock holder");
    let ms: u64 =
        dropped.trim_start_matches("dropped in ").trim_end_matches(" ms").parse().unwrap();
    assert!(Duration::from_millis(ms) < liveness::DEFAULT_LOCK_TIMEOUT, "dropping took {ms} ms");
    finish_ok("members", members, Duration::from_secs(10));
    // The members could not remove the topics and the channel without the lock.
    assert!(
        !support::leftovers(&domain).is_empty(),
        "the members removed everything without the lock?"
    );
    finish_ok("holder", holder, Duration::from_secs(10));

    // The lazy path: the next joiner replaces what is left of `t` (and cleans up after itself
    // when it leaves), and `ipc clean` removes `u` and `e`.
    let rejoin = support::run_role(test, "rejoin", &domain, &[]);
    support::assert_success("rejoin", &rejoin);
    let report = ipc_runtime::inspect::clean(&domain).unwrap();
    assert!(report.ok(), "{report:?}");
    // (On Windows the segment went with its last mapping, and only the lock file is left.)
    assert!(report.removed.iter().any(|l| l.contains("topic `u`")), "{report:?}");
    assert!(report.removed.iter().any(|l| l.starts_with("event channel `e`")), "{report:?}");
    support::assert_clean(&domain);
}

// ---------------------------------------------------------------------------------------------

/// The ways a topic segment is broken in the corrupt-topic test: (topic name, what is done).
const CORRUPT_TOPICS: &[&str] = &[
    "bad-magic",
    "bad-version",
    "bad-layout",
    #[cfg(target_os = "linux")]
    "empty",
    #[cfg(target_os = "linux")]
    "truncated",
];

#[test]
fn corrupt_topics_nobody_uses_are_replaced() {
    let test = "corrupt_topics_nobody_uses_are_replaced";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("corrupt");
            // Participants that die without a chance to clean up leave segments and dead tokens.
            let mut crashed = spawn_held_role(test, "crashed", &domain, &[]);
            let out = lines(&mut crashed);
            assert!(expect_line(&out, "ready", Duration::from_secs(30)).is_some());
            let topics: Vec<RawMapping> =
                CORRUPT_TOPICS.iter().map(|name| map(&domain, SegmentKind::Topic, name)).collect();
            let bell = map(&domain, SegmentKind::Event, "bell");
            crashed.kill().unwrap();
            crashed.wait().unwrap();
            for (&name, topic) in CORRUPT_TOPICS.iter().zip(&topics) {
                match name {
                    "bad-magic" => scribble(topic, 0, b"GARBAGE!"),
                    "bad-version" => scribble(topic, 8, &99u32.to_ne_bytes()),
                    "bad-layout" => {
                        scribble(topic, segment::HEADER_SIZE, &0xdead_beefu32.to_ne_bytes())
                    }
                    #[cfg(target_os = "linux")]
                    "empty" => resize(&domain, SegmentKind::Topic, name, 0),
                    #[cfg(target_os = "linux")]
                    "truncated" => resize(&domain, SegmentKind::Topic, name, 100),
                    _ => unreachable!(),
                }
            }
            scribble(&bell, 0, b"GARBAGE!");
            let rejoin = support::run_role(test, "rejoin", &domain, &[]);
            support::assert_success("rejoin", &rejoin);
            let log = String::from_utf8_lossy(&rejoin.stderr);
            let warnings = log.matches("replacing corrupt `").count();
            assert_eq!(warnings, CORRUPT_TOPICS.len() + 1, "one warning per object:\n{log}");
            support::assert_clean(&domain);
        }
        Some("crashed") => {
            let mut keep = Vec::new();
            for &name in CORRUPT_TOPICS {
                let publisher = Publisher::<u64>::new(name).unwrap();
                let subscriber = Subscriber::<u64>::new(name).unwrap();
                publisher.publish(1).unwrap();
                keep.push((publisher, subscriber));
            }
            let listener = Listener::new("bell").unwrap();
            println!("ready");
            support::wait_for_parent();
            drop((keep, listener));
        }
        Some("rejoin") => {
            support::log_to_stderr();
            for &name in CORRUPT_TOPICS {
                let publisher = Publisher::<u64>::new(name)
                    .unwrap_or_else(|e| panic!("publisher on corrupt topic `{name}`: {e}"));
                let subscriber = Subscriber::<u64>::new(name).unwrap();
                publisher.publish(7).unwrap();
                let sample = subscriber.receive_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(*sample.unwrap(), 7, "topic `{name}` works after its replacement");
            }
            let listener = Listener::new("bell").unwrap();
            let notifier = Notifier::new("bell").unwrap();
            notifier.notify(EventId::new(3)).unwrap();
            let event = listener.wait_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(event.map(|e| e.value()), Some(3), "channel works after its replacement");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn corrupt_topic_in_use_is_an_error_not_replaced() {
    let test = "corrupt_topic_in_use_is_an_error_not_replaced";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("corrupt-live");
            let mut live = spawn_held_role(test, "live", &domain, &[]);
            let out = lines(&mut live);
            assert!(expect_line(&out, "ready", Duration::from_secs(30)).is_some());
            // Mapped until the end (on Windows, the last mapping takes the segment with it).
            let busy = map(&domain, SegmentKind::Topic, "busy");
            scribble(&busy, 0, b"GARBAGE!");
            let joiner = support::run_role(test, "joiner", &domain, &[]);
            support::assert_success("joiner", &joiner);
            // Still the live publisher's (corrupt) segment: not replaced under it.
            let name = SegmentName::new(&domain, SegmentKind::Topic, "busy").unwrap();
            let err = Segment::open(&name, SegmentKind::Topic, Access::ReadOnly).unwrap_err();
            assert!(matches!(err, Error::WrongMagic { .. }), "{err}");
            finish_ok("live publisher", live, Duration::from_secs(30));
            // Its last participant gone, the corrupt topic is removed by `clean`.
            let report = ipc_runtime::inspect::clean(&domain).unwrap();
            assert!(report.ok(), "{report:?}");
            assert!(
                report.removed.iter().any(|l| l.starts_with("topic `busy` (corrupt")),
                "{report:?}"
            );
            drop(busy);
            support::assert_clean(&domain);
        }
        Some("live") => {
            let publisher = Publisher::<u64>::new("busy").unwrap();
            publisher.publish(1).unwrap();
            println!("ready");
            support::wait_for_parent();
        }
        Some("joiner") => {
            let err = Subscriber::<u64>::new("busy").expect_err("joined a corrupt topic");
            let text = err.to_string();
            assert!(matches!(err, Error::Corrupted { .. }), "{text}");
            assert!(text.contains("wrong magic"), "the error names the problem: {text}");
            assert!(text.contains("live process"), "and why it was not replaced: {text}");
            let err = Publisher::<u64>::new("busy").expect_err("joined a corrupt topic");
            assert!(matches!(err, Error::Corrupted { .. }), "{err}");
            println!("refused: {text}");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
