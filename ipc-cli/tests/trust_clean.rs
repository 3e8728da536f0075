//! `ipc clean` on a domain with a bad object in it: it reports the object it could not handle
//! (name and reason), cleans the rest of the domain — a dead publisher's heap, its topic, a
//! corrupt topic nobody uses — and exits with a failure status.

#[path = "../../ipc-runtime/tests/support/mod.rs"]
mod support;

use std::process::Command;

use ipc_runtime::prelude::*;
use ipc_runtime::segment::{self, Access, SegmentKind, SegmentName};
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

const TEST: &str = "clean_reports_a_bad_object_and_cleans_the_rest";

/// Runs `ipc clean` on `domain`: (success, stdout, stderr).
fn clean(domain: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipc"))
        .args(["clean", "--domain", domain])
        .output()
        .expect("run ipc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Overwrites the magic bytes of segment `name`, as a faulty peer would.
fn break_magic(domain: &str, kind: SegmentKind, name: &str) {
    let seg = SegmentName::new(domain, kind, name).unwrap();
    let map = segment::platform().open(seg.as_str(), Access::ReadWrite).unwrap();
    assert!(map.len() >= 8);
    // SAFETY: the first 8 bytes are inside the read-write mapping (asserted); they are plain
    // data. Breaking them is the point of the test.
    unsafe { std::ptr::copy_nonoverlapping(b"GARBAGE!".as_ptr(), map.ptr().as_ptr(), 8) };
}

fn heap_owners(domain: &str) -> Vec<u32> {
    ipc_runtime::inspect::domain(domain).unwrap().heaps.iter().map(|h| h.owner_pid).collect()
}

#[test]
fn clean_reports_a_bad_object_and_cleans_the_rest() {
    match support::role().as_deref() {
        None => parent(),
        Some("dead-pub") | Some("live-pub") => {
            let topic =
                if support::role().as_deref() == Some("dead-pub") { "gone" } else { "busy" };
            let publisher = Publisher::<u64>::new(topic).unwrap();
            publisher.publish(1).unwrap();
            println!("ready");
            support::wait_for_parent();
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

fn parent() {
    let domain = support::unique_domain("clean-bad");
    // A live publisher whose topic gets corrupted: that one `clean` must not remove. (Started
    // first: a process creating its heap removes the heaps of dead processes it finds.)
    let mut live = spawn_held_role(TEST, "live-pub", &domain, &[]);
    let mut live_out = stdout_lines(&mut live);
    assert!(wait_for_line(&mut live_out, "ready"));
    // A publisher killed without a chance to clean up: its heap, topic and token stay.
    let mut dead = spawn_held_role(TEST, "dead-pub", &domain, &[]);
    let mut dead_out = stdout_lines(&mut dead);
    assert!(wait_for_line(&mut dead_out, "ready"));
    let dead_pid = dead.id();
    dead.kill().unwrap();
    dead.wait().unwrap();
    break_magic(&domain, SegmentKind::Topic, "busy");
    // A corrupt topic nobody uses (no participant, no token): garbage under a topic's name.
    let junk = SegmentName::new(&domain, SegmentKind::Topic, "junk").unwrap();
    let junk_map = segment::platform().create(junk.as_str(), 4096).unwrap();
    break_magic(&domain, SegmentKind::Topic, "junk");
    assert!(heap_owners(&domain).contains(&dead_pid), "the dead publisher left no heap?");

    let (ok, stdout, stderr) = clean(&domain);
    println!("--- ipc clean, stdout:\n{stdout}--- stderr:\n{stderr}");
    assert!(!ok, "`ipc clean` succeeded although it left the corrupt live topic:\n{stdout}");
    // The bad object is reported by name, with the reason...
    assert!(
        stderr.contains("topic `busy`") && stderr.contains("wrong magic"),
        "failure not reported:\n{stderr}"
    );
    // ...and everything else was cleaned.
    assert!(stdout.contains("topic `gone`"), "dead publisher's topic not removed:\n{stdout}");
    assert!(stdout.contains("topic `junk` (corrupt"), "corrupt topic not removed:\n{stdout}");
    assert!(stdout.contains(&format!("(dead pid {dead_pid})")), "heap not reported:\n{stdout}");
    assert!(!heap_owners(&domain).contains(&dead_pid), "the dead publisher's heap is still there");
    let topics = ipc_runtime::inspect::topics(&domain).unwrap();
    assert_eq!(topics, vec!["busy".to_owned()]);
    drop(junk_map);

    // Once its publisher is gone, the corrupt topic goes too.
    let (status, out, err) = finish(live, Some(live_out));
    assert!(status.success(), "live publisher failed:\n{out}\n{err}");
    let (ok, stdout, stderr) = clean(&domain);
    assert!(ok, "second clean failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("topic `busy` (corrupt"), "{stdout}");
    support::assert_clean(&domain);
}
