//! `ipc list`, `ipc show` and `ipc clean` on a domain with live and dead participants.

#[path = "../../ipc-runtime/tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use ipc_runtime::prelude::*;
use serde_json::Value;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

const TEST: &str = "clean_removes_exactly_what_dead_processes_left";

fn ipc(domain: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipc"))
        .args(args)
        .args(["--domain", domain])
        .output()
        .expect("run ipc");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn json(domain: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, text) = ipc(domain, &all);
    assert!(ok, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn pid_line(out: &mut std::io::BufReader<std::process::ChildStdout>) -> u32 {
    use std::io::BufRead;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended before printing its pid");
        if let Some(pid) = line.trim().strip_prefix("pid=") {
            return pid.parse().unwrap();
        }
    }
}

#[test]
fn clean_removes_exactly_what_dead_processes_left() {
    match support::role().as_deref() {
        None => parent(),
        Some("pub") => {
            let publisher = Publisher::<u64>::builder("live").max_subscribers(4).create().unwrap();
            println!("pid={}", std::process::id());
            assert!(
                support::wait_until(Duration::from_secs(10), || publisher.subscriber_count() == 2)
            );
            for i in 0..20 {
                publisher.publish(i).unwrap();
            }
            println!("ready");
            support::wait_for_parent();
            // Still fully working after `ipc clean`: the surviving subscriber gets this.
            publisher.publish(1000).unwrap();
            assert!(support::wait_until(Duration::from_secs(10), || {
                publisher.cleanup().unwrap();
                publisher.subscriber_count() == 0
            }));
        }
        Some("sub") => {
            let subscriber =
                Subscriber::<u64>::builder("live").max_subscribers(4).create().unwrap();
            println!("pid={}", std::process::id());
            let mut held = Vec::new();
            while held.len() < 5 {
                held.push(
                    subscriber.receive_timeout(Duration::from_secs(10)).unwrap().expect("data"),
                );
            }
            println!("ready");
            support::wait_for_parent();
            drop(held);
            // Drain until the publisher's post-clean message arrives.
            loop {
                let sample =
                    subscriber.receive_timeout(Duration::from_secs(10)).unwrap().expect("1000");
                if *sample == 1000 {
                    break;
                }
            }
        }
        Some("lonely-pub") => {
            let publisher = Publisher::<u32>::new("gone").unwrap();
            publisher.publish(1).unwrap();
            println!("pid={}", std::process::id());
            println!("ready");
            support::wait_for_parent();
        }
        Some("listener") => {
            let _listener = Listener::new("bell").unwrap();
            println!("pid={}", std::process::id());
            println!("ready");
            support::wait_for_parent();
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

fn parent() {
    let domain = support::unique_domain("cli");
    let spawn = |role: &str| {
        let mut child = spawn_held_role(TEST, role, &domain, &[]);
        let mut out = stdout_lines(&mut child);
        let pid = pid_line(&mut out);
        (child, out, pid)
    };
    let (publisher, mut pub_out, pub_pid) = spawn("pub");
    let (keeper, mut keeper_out, keeper_pid) = spawn("sub");
    let (victim, mut victim_out, victim_pid) = spawn("sub");
    assert!(wait_for_line(&mut pub_out, "ready"));
    assert!(wait_for_line(&mut keeper_out, "ready"));
    assert!(wait_for_line(&mut victim_out, "ready"));
    let (mut lonely, mut lonely_out, lonely_pid) = spawn("lonely-pub");
    assert!(wait_for_line(&mut lonely_out, "ready"));
    let (mut listener, mut listener_out, listener_pid) = spawn("listener");
    assert!(wait_for_line(&mut listener_out, "ready"));

    for child in [&mut lonely, &mut listener] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut victim = victim;
    victim.kill().unwrap();
    victim.wait().unwrap();

    // `list` reports, and changes nothing.
    let before = support::leftovers(&domain);
    let listing = json(&domain, &["list"]);
    assert_eq!(support::leftovers(&domain), before, "`ipc list` changed the domain");
    let topics = listing["topics"].as_array().unwrap();
    let live = topics.iter().find(|t| t["name"] == "live").expect("topic live");
    assert_eq!(live["type"], "u64");
    let subs = live["subscribers"].as_array().unwrap();
    assert_eq!(subs.iter().filter(|s| s["alive"] == true).count(), 1);
    assert_eq!(subs.iter().filter(|s| s["alive"] == false).count(), 1);
    let gone = topics.iter().find(|t| t["name"] == "gone").expect("topic gone");
    assert_eq!(gone["publishers"][0]["alive"], false);
    assert_eq!(gone["publishers"][0]["pid"], lonely_pid);
    let heaps = listing["heaps"].as_array().unwrap();
    assert!(heaps.iter().any(|h| h["owner_pid"] == pub_pid && h["alive"] == true));
    assert!(heaps.iter().any(|h| h["owner_pid"] == lonely_pid && h["alive"] == false));
    assert_eq!(listing["events"][0]["name"], "bell");
    assert_eq!(listing["events"][0]["alive"], 0);

    let (ok, table) = ipc(&domain, &["list"]);
    assert!(ok && table.contains("live") && table.contains("1 alive, 1 dead"), "{table}");
    let (ok, shown) = ipc(&domain, &["show", "live"]);
    assert!(ok && shown.contains(&victim_pid.to_string()) && shown.contains("dead"), "{shown}");
    let (ok, missing) = ipc(&domain, &["show", "nope"]);
    assert!(
        !ok && missing.contains(&format!("no topic `nope` in domain `{domain}`; its topics:")),
        "{missing}"
    );
    assert!(missing.contains("`gone`") && missing.contains("`live`"), "{missing}");

    // `clean` removes exactly what the dead left, and says so.
    let cleaned = json(&domain, &["clean"]);
    let removed: Vec<String> = cleaned["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mentions = |what: &str| removed.iter().any(|r| r.contains(what));
    assert!(
        mentions(&format!("subscriber 1 of topic `live` (dead pid {victim_pid}")),
        "{removed:#?}"
    );
    assert!(
        mentions(&format!("publisher 0 of topic `gone` (dead pid {lonely_pid}")),
        "{removed:#?}"
    );
    assert!(mentions("topic `gone` (no live participant)"), "{removed:#?}");
    assert!(mentions(&format!("(dead pid {lonely_pid})")), "{removed:#?}");
    assert!(mentions("event channel `bell`"), "{removed:#?}");
    for alive in [pub_pid, keeper_pid] {
        assert!(
            !mentions(&format!("pid {alive}")),
            "removed a live process's object: {removed:#?}"
        );
    }
    let _ = listener_pid;
    let after = json(&domain, &["list"]);
    let names: Vec<&str> =
        after["topics"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["live"]);
    // A subscriber's port lives in its own heap too: the two live processes keep theirs.
    let mut owners: Vec<u64> = after["heaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["owner_pid"].as_u64().unwrap())
        .collect();
    owners.sort_unstable();
    let mut live = [pub_pid as u64, keeper_pid as u64];
    live.sort_unstable();
    assert_eq!(owners, live, "only the live processes' heaps are left");
    assert!(after["events"].as_array().unwrap().is_empty());
    let (ok, again) = ipc(&domain, &["clean"]);
    assert!(ok && again.contains("nothing to clean"), "{again}");

    // The survivors still work, then leave; the domain ends up empty.
    let mut keeper = keeper;
    drop(keeper.stdin.take());
    let (status, stdout, stderr) = finish(publisher, Some(pub_out));
    assert!(status.success(), "{stdout}\n{stderr}");
    let (status, stdout, stderr) = finish(keeper, Some(keeper_out));
    assert!(status.success(), "{stdout}\n{stderr}");
    support::assert_clean(&domain);
}

const DOMAINS: &str = "clean_leaves_other_domains_and_live_topics_alone";

/// Names cannot alias: `ipc clean --domain A` used to match the objects of a domain
/// called `A.lock.x`. Domains cannot hold a `.` any more, and listings decode names instead of
/// matching prefixes: cleaning domain `A` (after a crash in it) leaves a live topic of a domain
/// whose name starts with `A` alone, and keeps `A`'s own live topics, dotted and hierarchical
/// names included, listed under their real names.
#[test]
fn clean_leaves_other_domains_and_live_topics_alone() {
    const LIVE: &str = "robot/arm.v2";
    match support::role().as_deref() {
        None => {}
        Some("live") => {
            let publisher = Publisher::<u64>::new(LIVE).unwrap();
            publisher.publish(1).unwrap();
            println!("pid={}", std::process::id());
            println!("ready");
            support::wait_for_parent();
            return;
        }
        Some("crash") => {
            let publisher = Publisher::<u64>::new("gone.topic.x").unwrap();
            publisher.publish(1).unwrap();
            println!("pid={}", std::process::id());
            println!("ready");
            support::wait_for_parent();
            return;
        }
        Some(other) => panic!("unknown role {other}"),
    }
    let a = support::unique_domain("clean");
    let b = format!("{a}-lock-x");
    assert!(!ipc(&format!("{a}.lock.x"), &["list"]).0, "a domain with `.` was accepted");
    let spawn = |role: &str, domain: &str| {
        let mut child = spawn_held_role(DOMAINS, role, domain, &[]);
        let mut out = stdout_lines(&mut child);
        let pid = pid_line(&mut out);
        assert!(wait_for_line(&mut out, "ready"));
        (child, out, pid)
    };
    let (live_a, live_a_out, live_a_pid) = spawn("live", &a);
    let (live_b, live_b_out, _) = spawn("live", &b);
    let (mut crashed, _crashed_out, crashed_pid) = spawn("crash", &a);
    crashed.kill().unwrap();
    crashed.wait().unwrap();

    let b_before = support::leftovers(&b);
    assert!(!b_before.is_empty());
    let cleaned = json(&a, &["clean"]);
    let removed = cleaned["removed"].to_string();
    assert!(removed.contains("topic `gone.topic.x` (no live participant)"), "{removed}");
    assert!(removed.contains(&format!("dead pid {crashed_pid}")), "{removed}");
    assert!(!removed.contains(&format!("pid {live_a_pid}")), "{removed}");
    assert_eq!(support::leftovers(&b), b_before, "cleaning {a} touched {b}");
    let listing = json(&a, &["list"]);
    let topics = listing["topics"].as_array().unwrap();
    let names: Vec<&str> = topics.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, [LIVE], "{listing}");
    assert_eq!(topics[0]["publishers"][0]["alive"], true);
    let listing = json(&b, &["list"]);
    assert_eq!(listing["topics"][0]["name"], LIVE, "{listing}");

    for (child, out) in [(live_a, live_a_out), (live_b, live_b_out)] {
        let (status, stdout, stderr) = finish(child, Some(out));
        assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    }
    for domain in [&a, &b] {
        assert!(support::wait_until(Duration::from_secs(10), || {
            support::leftovers(domain).is_empty()
        }));
    }
}
