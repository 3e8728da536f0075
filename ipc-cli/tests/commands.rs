//! The command line itself: `--version`, per-command help, errors in the user's words (a topic
//! that isn't there, a domain that has nothing), `ipc hz` against a publisher at a known rate,
//! and `ipc list --watch`.

#[path = "../../ipc-runtime/tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use serde_json::Value;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

/// Runs `ipc` with `args`; returns (exit code, stdout, stderr).
fn ipc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipc")).args(args).output().expect("run ipc");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help_per_command() {
    let (code, out, _) = ipc(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("ipc {}", env!("CARGO_PKG_VERSION")));
    for command in ["list", "show", "hz", "clean"] {
        let (code, out, _) = ipc(&[command, "--help"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("Usage: ipc {command}")), "{command}: {out}");
    }
    let (_, out, _) = ipc(&["hz", "--help"]);
    assert!(out.contains("--window <SECS>") && out.contains("<TOPIC>"), "{out}");
    // Usage errors exit with 2 and say what was wrong.
    let (code, _, err) = ipc(&["show"]);
    assert_eq!(code, 2);
    assert!(err.contains("<TOPIC>"), "{err}");
    let (code, _, err) = ipc(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unrecognized subcommand 'frobnicate'"), "{err}");
    let (code, _, err) = ipc(&["list", "--domain", "a.b"]);
    assert_eq!(code, 2);
    assert!(err.contains("a.b"), "{err}");
}

const RATE_TEST: &str = "hz_measures_a_publisher_at_a_known_rate_and_queue_fill";
const HZ: u32 = 100;

#[test]
fn hz_measures_a_publisher_at_a_known_rate_and_queue_fill() {
    if support::role().as_deref() == Some("pub") {
        // A subscriber that never takes anything (its queue fills up) and a publisher at a
        // steady HZ messages per second, until the parent closes stdin.
        let publisher = Publisher::<u64>::new("robot/arm/joints").unwrap();
        let idle = Subscriber::<u64>::builder("robot/arm/joints")
            .subscriber_capacity(16)
            .create()
            .unwrap();
        println!("ready");
        let stop = support::parent_gone_flag();
        let start = Instant::now();
        let mut sent = 0u64;
        while !stop.load(Ordering::Acquire) {
            publisher.publish(sent).unwrap();
            sent += 1;
            // Pacing to a schedule (not waiting for a condition): message n at n / HZ s.
            let next = start + Duration::from_secs(sent) / HZ;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        drop(idle);
        return;
    }
    let domain = support::unique_domain("hz");
    let mut child = spawn_held_role(RATE_TEST, "pub", &domain, &[]);
    let mut out = stdout_lines(&mut child);
    assert!(wait_for_line(&mut out, "ready"));

    let (code, stdout, stderr) = ipc(&[
        "hz",
        "robot/arm/joints",
        "--window",
        "1",
        "--count",
        "2",
        "--json",
        "--domain",
        &domain,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let windows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(windows.len(), 2, "{stdout}");
    let last = &windows[1];
    let rate = last["rate"].as_f64().unwrap();
    // The measurement, not a speed goal: the publisher keeps a 100 Hz schedule, so a 1 s
    // window sees about 100 messages (generous bounds for a loaded machine).
    assert!((50.0..=150.0).contains(&rate), "rate {rate}: {last}");
    assert_eq!(last["publishers"].as_array().unwrap().len(), 1, "{last}");
    let sub = &last["subscribers"][0];
    assert_eq!(sub["capacity"], 16, "{last}");
    assert_eq!(sub["queued"], 16, "the idle subscriber's queue is full: {last}");
    assert_eq!(sub["rate"], 0.0, "{last}");

    // The text form says the same in words.
    let (code, text, _) =
        ipc(&["hz", "robot/arm/joints", "--window", "0.5", "--count", "1", "--domain", &domain]);
    assert_eq!(code, 0);
    assert!(text.contains("topic `robot/arm/joints`:") && text.contains("msg/s"), "{text}");
    assert!(text.contains("queue 16/16 (100 %)"), "{text}");

    // Errors in the user's words: the topic's name, not the OS object's.
    let (code, _, err) = ipc(&["hz", "robot/arm/joint", "--domain", &domain]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "no topic `robot/arm/joint` in domain `{domain}`; its topics: `robot/arm/joints`"
        )),
        "{err}"
    );
    assert!(!err.contains("ipc.topic") && !err.contains("segment"), "{err}");

    // A domain with nothing in it says so, and names the domains that have objects.
    let typo = format!("{domain}-typo");
    let (code, _, err) = ipc(&["show", "robot/arm/joints", "--domain", &typo]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("domain `{typo}` has no topics")), "{err}");
    if cfg!(target_os = "linux") {
        assert!(err.contains(&format!("`{domain}`")), "the live domain is offered: {err}");
    }
    let (code, stdout, err) = ipc(&["list", "--domain", &typo]);
    assert_eq!(code, 0, "an empty domain is not a failure of `list`");
    assert!(stdout.contains("(none)") && err.contains("has no topics"), "{stdout}\n{err}");

    // `list --watch` refreshes: two JSON documents, one per refresh.
    let (code, stdout, stderr) = ipc(&[
        "list",
        "--watch",
        "--interval",
        "0.1",
        "--count",
        "2",
        "--json",
        "--domain",
        &domain,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let docs: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(docs.len(), 2, "{stdout}");
    for doc in &docs {
        assert_eq!(doc["topics"][0]["name"], "robot/arm/joints", "{doc}");
    }

    let (status, stdout, stderr) = finish(child, Some(out));
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    assert!(support::wait_until(Duration::from_secs(10), || support::leftovers(&domain).is_empty()));
}
