//! The bridge across two "hosts": two `IPC_DOMAIN`s on this machine, each with its own bridge
//! process, joined by zenoh over TCP on 127.0.0.1 (multicast scouting off, so nothing leaves
//! the loopback interface). Every participant is a real process: this binary re-executes
//! itself in a role (publisher, subscriber, bridge).
//!
//! Topics use `Overflow::Block` with a 256-deep queue wherever the test needs every message
//! (local publisher → bridge export → zenoh `CongestionControl::Block` → bridge import →
//! local subscriber), so that nothing is lost to a slow reader.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use ipc_runtime::pubsub::Options;
use ipc_zenoh::Bridge;
use serde::{Deserialize, Serialize};
use support::{Proc, env, env_opt, free_port, unique_domain};

/// The test message: who sent it, its number, and text and bytes derived from both.
#[derive(ShmMessage, Serialize, Deserialize, Debug)]
#[repr(C)]
struct Blob {
    origin: u64,
    seq: u64,
    text: ShmString,
    /// Bytes as a byte string (one copy) rather than element by element.
    #[serde(with = "ipc_runtime::wire::bytes")]
    data: ShmVec<u8>,
}

/// Another type, for the mismatch test.
#[derive(ShmMessage, Serialize, Deserialize, Debug)]
#[repr(C)]
struct Other {
    origin: u64,
    value: f64,
}

/// The payload of message `seq` of `origin`: 0–64 KiB of bytes and a short text.
fn content(origin: u64, seq: u64) -> (String, Vec<u8>) {
    let len = ((seq.wrapping_mul(7919) + origin * 131) % (64 * 1024 + 1)) as usize;
    let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ origin;
    let data = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let text = format!("message {seq} from {origin} — é✓ {}", "x".repeat((seq % 97) as usize));
    (text, data)
}

/// How long 10,000 messages of up to 64 KiB may take through a debug build on a loaded machine
/// (postcard encodes and decodes the bytes one by one there).
const SLOW: Duration = Duration::from_secs(600);

/// Options of every lossless topic in these tests.
const LOSSLESS: Options = Options::new().overflow(Overflow::Block).subscriber_capacity(256);

fn lossless() -> bool {
    env_opt("BLOCK").is_some()
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

fn run_role(role: &str) {
    match role {
        "bridge" => bridge_role(),
        "publisher" => publisher_role(),
        "subscriber" => subscriber_role(),
        other => panic!("unknown role {other}"),
    }
}

/// A bridge: `LISTEN`/`CONNECT` endpoints, `EXPORTS` (`topic=key,...`), `IMPORTS`
/// (`key=topic,...`), `TYPE` (`blob` or `other`), `MATCH` (a topic whose export must match a
/// remote subscriber before "matched" is printed). Prints errors as `error: ...` lines; answers
/// `stats` with a `stats ...` line; at the end of stdin prints its stats as `key=value`.
fn bridge_role() {
    let listen: Vec<String> = env_opt("LISTEN").into_iter().collect();
    let connect: Vec<String> = env_opt("CONNECT").into_iter().collect();
    let listen: Vec<&str> = listen.iter().map(String::as_str).collect();
    let connect: Vec<&str> = connect.iter().map(String::as_str).collect();
    let config = Bridge::peer_config(&listen, &connect).unwrap();
    let bridge = Arc::new(Bridge::new(config).unwrap());
    // Debug builds on a loaded machine: a reader may stall for seconds.
    bridge.set_block_timeout(Duration::from_secs(300));
    let other = env_opt("TYPE").as_deref() == Some("other");
    let options = if lossless() { LOSSLESS } else { Options::new() };
    for pair in env_opt("EXPORTS").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        let (topic, key) = pair.split_once('=').unwrap();
        if other {
            bridge.export_with::<Other>(topic, key, options).unwrap();
        } else {
            bridge.export_with::<Blob>(topic, key, options).unwrap();
        }
    }
    for pair in env_opt("IMPORTS").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        let (key, topic) = pair.split_once('=').unwrap();
        if other {
            bridge.import_with::<Other>(key, topic, options).unwrap();
        } else {
            bridge.import_with::<Blob>(key, topic, options).unwrap();
        }
    }
    println!("ready");
    if let Some(topic) = env_opt("MATCH") {
        assert!(bridge.wait_matched(&topic, Duration::from_secs(60)).unwrap(), "no match");
        println!("matched");
    }
    let done = Arc::new(AtomicBool::new(false));
    let errors = {
        let (bridge, done) = (Arc::clone(&bridge), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                if let Some(err) = bridge.error_timeout(Duration::from_millis(50)) {
                    println!("error: {err}");
                }
            }
        })
    };
    while let Some(line) = support::line_from_parent() {
        if line == "stats" {
            let s = bridge.stats();
            println!(
                "stats exported={} imported={} echoes={} refused={} lost={} duplicates={} failed={}",
                s.exported, s.imported, s.echoes_skipped, s.refused, s.lost, s.duplicates, s.failed
            );
        }
    }
    done.store(true, Ordering::Release);
    errors.join().unwrap();
    let s = bridge.stats();
    println!("exported={}", s.exported);
    println!("imported={}", s.imported);
    println!("echoes={}", s.echoes_skipped);
    println!("refused={}", s.refused);
    println!("lost={}", s.lost);
    println!("duplicates={}", s.duplicates);
    println!("failed={}", s.failed);
    drop(bridge);
}

/// Publishes `COUNT` messages (0: until told `stop`, then prints `last=N`) of origin `ORIGIN`
/// on `TOPIC`, after `LOCAL_SUBS` subscribers connected, `PACE_US` apart; prints `done`, then
/// stays until stdin closes (its messages live in its heap).
fn publisher_role() {
    let topic = env("TOPIC");
    let count: u64 = env("COUNT").parse().unwrap();
    let origin: u64 = env("ORIGIN").parse().unwrap();
    let subs: usize = env("LOCAL_SUBS").parse().unwrap();
    let pace = Duration::from_micros(env_opt("PACE_US").map_or(0, |p| p.parse().unwrap()));
    let other = env_opt("TYPE").as_deref() == Some("other");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while let Some(line) = support::line_from_parent() {
                if line == "stop" {
                    stop.store(true, Ordering::Release);
                }
            }
            stop.store(true, Ordering::Release);
        })
    };
    let mut last = 0;
    if other {
        let publisher = Publisher::<Other>::builder(&topic)
            .options(LOSSLESS)
            .block_timeout(Duration::from_secs(300))
            .create()
            .unwrap();
        assert!(
            support::wait_until(Duration::from_secs(60), || publisher.subscriber_count() >= subs)
        );
        while !stop.load(Ordering::Acquire) && (count == 0 || last < count) {
            last += 1;
            publisher.publish(Other { origin, value: last as f64 }).unwrap();
            std::thread::sleep(pace);
        }
    } else {
        let publisher = Publisher::<Blob>::builder(&topic)
            .options(LOSSLESS)
            .block_timeout(Duration::from_secs(300))
            .create()
            .unwrap();
        assert!(
            support::wait_until(Duration::from_secs(60), || publisher.subscriber_count() >= subs)
        );
        while !stop.load(Ordering::Acquire) && (count == 0 || last < count) {
            last += 1;
            let (text, data) = content(origin, last);
            let blob = Blob {
                origin,
                seq: last,
                text: ShmString::from(text),
                data: ShmVec::from_slice(&data),
            };
            publisher.publish(blob).unwrap();
            if !pace.is_zero() {
                std::thread::sleep(pace);
            }
        }
        println!("last={last}");
        println!("done");
        reader.join().unwrap();
        return;
    }
    println!("last={last}");
    println!("done");
    reader.join().unwrap();
}

/// Receives `Blob`s on `TOPIC`, checking each against [`content`] and each origin's order.
/// Completes once it has `EXPECT` messages of each origin in `ORIGINS`, or (with `EXPECT` 0)
/// once the parent said `until ORIGIN SEQ` and that message arrived; prints `n=` progress
/// lines every 100 messages, `complete`, then after stdin closes drains what else is queued
/// and prints its tallies as `key=value`.
fn subscriber_role() {
    let topic = env("TOPIC");
    let expect: u64 = env("EXPECT").parse().unwrap();
    let origins: Vec<u64> = env("ORIGINS").split(',').map(|o| o.parse().unwrap()).collect();
    let subscriber = Subscriber::<Blob>::builder(&topic).options(LOSSLESS).create().unwrap();
    println!("ready");
    let until = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicBool::new(false));
    let reader = {
        let (until, closed) = (Arc::clone(&until), Arc::clone(&closed));
        std::thread::spawn(move || {
            while let Some(line) = support::line_from_parent() {
                if let Some(seq) = line.strip_prefix("until ") {
                    until.store(seq.parse().unwrap(), Ordering::Release);
                }
            }
            closed.store(true, Ordering::Release);
        })
    };
    let mut t = Tally::new(&origins);
    let deadline = Instant::now() + SLOW;
    let complete = |t: &Tally| {
        if expect > 0 {
            t.counts.values().all(|&c| c >= expect)
        } else {
            let until = until.load(Ordering::Acquire);
            until > 0 && t.last[&origins[0]] >= until
        }
    };
    while !complete(&t) && Instant::now() < deadline {
        if let Some(sample) = subscriber.receive_timeout(Duration::from_millis(50)).unwrap() {
            t.check(&sample);
            if t.total.is_multiple_of(100) {
                println!("n={}", t.total);
            }
        }
    }
    println!("complete");
    reader.join().unwrap();
    assert!(closed.load(Ordering::Acquire));
    let before = t.total;
    while let Some(sample) = subscriber.try_receive().unwrap() {
        t.check(&sample);
    }
    println!("extra={}", t.total - before);
    println!("total={}", t.total);
    for (origin, count) in &t.counts {
        println!("count{origin}={count}");
        println!("last{origin}={}", t.last[origin]);
    }
    let Tally { out_of_order, corrupt, foreign, gaps, .. } = t;
    println!("out_of_order={out_of_order}");
    println!("corrupt={corrupt}");
    println!("foreign={foreign}");
    println!("gaps={gaps}");
}

/// What a subscriber saw.
struct Tally {
    last: BTreeMap<u64, u64>,
    counts: BTreeMap<u64, u64>,
    total: u64,
    out_of_order: u64,
    corrupt: u64,
    foreign: u64,
    gaps: u64,
}

impl Tally {
    fn new(origins: &[u64]) -> Self {
        Tally {
            last: origins.iter().map(|&o| (o, 0)).collect(),
            counts: origins.iter().map(|&o| (o, 0)).collect(),
            total: 0,
            out_of_order: 0,
            corrupt: 0,
            foreign: 0,
            gaps: 0,
        }
    }

    fn check(&mut self, blob: &Blob) {
        self.total += 1;
        let Some(prev) = self.last.get_mut(&blob.origin) else {
            self.foreign += 1;
            return;
        };
        if blob.seq <= *prev {
            self.out_of_order += 1;
        } else {
            self.gaps += blob.seq - *prev - 1;
            *prev = blob.seq;
        }
        *self.counts.get_mut(&blob.origin).unwrap() += 1;
        let (text, data) = content(blob.origin, blob.seq);
        if blob.text.as_str() != text || blob.data.as_slice() != data.as_slice() {
            self.corrupt += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

fn num(map: &BTreeMap<String, String>, key: &str) -> u64 {
    map.get(key).unwrap_or_else(|| panic!("no {key} in {map:?}")).parse().unwrap()
}

/// Asks a bridge for its stats; returns them as a map.
fn stats(bridge: &mut Proc) -> BTreeMap<String, String> {
    bridge.say("stats");
    let line = bridge.expect_with(|l| l.starts_with("stats "), "stats");
    line["stats ".len()..]
        .split(' ')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn endpoint(port: u16) -> String {
    format!("tcp/127.0.0.1:{port}")
}

#[test]
fn two_hosts_deliver_every_message_in_order() {
    const TEST: &str = "two_hosts_deliver_every_message_in_order";
    if let Some(role) = support::role() {
        return run_role(&role);
    }
    const N: u64 = 10_000;
    let (a, b) = (unique_domain("a"), unique_domain("b"));
    let key = format!("ipc-zenoh-test/{a}/blob");
    let port = free_port();
    let sub = |n: u64| {
        vec![("TOPIC", "blob".to_owned()), ("EXPECT", n.to_string()), ("ORIGINS", "1".into())]
    };
    let mut sub_b = Proc::spawn(TEST, "subscriber", &b, &sub(N));
    sub_b.expect("ready");
    let mut sub_a = Proc::spawn(TEST, "subscriber", &a, &sub(N));
    sub_a.expect("ready");
    let mut bridge_a = Proc::spawn(
        TEST,
        "bridge",
        &a,
        &[
            ("LISTEN", endpoint(port)),
            ("EXPORTS", format!("blob={key}")),
            ("MATCH", "blob".into()),
            ("BLOCK", "1".into()),
        ],
    );
    bridge_a.expect("ready");
    let mut bridge_b = Proc::spawn(
        TEST,
        "bridge",
        &b,
        &[("CONNECT", endpoint(port)), ("IMPORTS", format!("{key}=blob")), ("BLOCK", "1".into())],
    );
    bridge_b.expect("ready");
    bridge_a.expect("matched");
    let publisher = Proc::spawn(
        TEST,
        "publisher",
        &a,
        &[
            ("TOPIC", "blob".into()),
            ("COUNT", N.to_string()),
            ("ORIGIN", "1".into()),
            ("LOCAL_SUBS", "2".into()),
        ],
    );
    sub_b.expect_within("complete", SLOW);
    sub_a.expect_within("complete", SLOW);
    let got_b = sub_b.finish();
    let got_a = sub_a.finish();
    publisher.finish();
    let stats_a = bridge_a.finish();
    let stats_b = bridge_b.finish();
    for (side, got) in [("B", &got_b), ("A", &got_a)] {
        assert_eq!(num(got, "total"), N, "{side}: {got:?}");
        assert_eq!(num(got, "count1"), N, "{side}: {got:?}");
        assert_eq!(num(got, "last1"), N, "{side}: {got:?}");
        for zero in ["out_of_order", "corrupt", "foreign", "gaps", "extra"] {
            assert_eq!(num(got, zero), 0, "{side} {zero}: {got:?}");
        }
    }
    assert_eq!(num(&stats_a, "exported"), N, "{stats_a:?}");
    assert_eq!(num(&stats_b, "imported"), N, "{stats_b:?}");
    for zero in ["lost", "duplicates", "failed", "refused"] {
        assert_eq!(num(&stats_b, zero), 0, "{zero}: {stats_b:?}");
    }
    support::assert_clean(&a);
    support::assert_clean(&b);
}

#[test]
fn bidirectional_topics_do_not_loop() {
    const TEST: &str = "bidirectional_topics_do_not_loop";
    if let Some(role) = support::role() {
        return run_role(&role);
    }
    const N: u64 = 500;
    let (a, b) = (unique_domain("a"), unique_domain("b"));
    let key = format!("ipc-zenoh-test/{a}/chat");
    let port = free_port();
    let sub =
        vec![("TOPIC", "chat".to_owned()), ("EXPECT", N.to_string()), ("ORIGINS", "1,2".into())];
    let mut subs = Vec::new();
    let mut bridges = Vec::new();
    for (domain, endpoint) in [(&a, ("LISTEN", endpoint(port))), (&b, ("CONNECT", endpoint(port)))]
    {
        let mut s = Proc::spawn(TEST, "subscriber", domain, &sub);
        s.expect("ready");
        subs.push(s);
        let mut bridge = Proc::spawn(
            TEST,
            "bridge",
            domain,
            &[
                endpoint,
                ("EXPORTS", format!("chat={key}")),
                ("IMPORTS", format!("{key}=chat")),
                ("BLOCK", "1".into()),
                ("MATCH", "chat".into()),
            ],
        );
        bridge.expect("ready");
        bridges.push(bridge);
    }
    for bridge in &mut bridges {
        bridge.expect("matched");
    }
    let publishers: Vec<Proc> = [(&a, "1"), (&b, "2")]
        .into_iter()
        .map(|(domain, origin)| {
            Proc::spawn(
                TEST,
                "publisher",
                domain,
                &[
                    ("TOPIC", "chat".into()),
                    ("COUNT", N.to_string()),
                    ("ORIGIN", origin.into()),
                    // the local subscriber and the bridge's export
                    ("LOCAL_SUBS", "2".into()),
                ],
            )
        })
        .collect();
    for s in &mut subs {
        s.expect_within("complete", SLOW);
    }
    // Every imported message reached the other side's export and was skipped there: after
    // this, an echo could only be one that is already queued (counted as `extra` below).
    for bridge in &mut bridges {
        assert!(
            support::wait_until(Duration::from_secs(60), || {
                let s = stats(bridge);
                num(&s, "echoes") >= N && num(&s, "imported") >= N
            }),
            "a bridge never skipped all echoes"
        );
        let s = stats(bridge);
        assert_eq!(
            (num(&s, "exported"), num(&s, "imported"), num(&s, "echoes")),
            (N, N, N),
            "{s:?}"
        );
    }
    let got: Vec<_> = subs.into_iter().map(Proc::finish).collect();
    for p in publishers {
        p.finish();
    }
    for bridge in bridges {
        let s = bridge.finish();
        assert_eq!(num(&s, "exported"), N, "{s:?}");
        assert_eq!(num(&s, "duplicates"), 0, "{s:?}");
    }
    for (side, got) in ["A", "B"].iter().zip(&got) {
        assert_eq!(num(got, "total"), 2 * N, "{side}: {got:?}");
        assert_eq!((num(got, "count1"), num(got, "count2")), (N, N), "{side}: {got:?}");
        for zero in ["out_of_order", "corrupt", "foreign", "gaps", "extra"] {
            assert_eq!(num(got, zero), 0, "{side} {zero}: {got:?}");
        }
    }
    support::assert_clean(&a);
    support::assert_clean(&b);
}

#[test]
fn killed_bridge_restarts_without_duplicates() {
    const TEST: &str = "killed_bridge_restarts_without_duplicates";
    if let Some(role) = support::role() {
        return run_role(&role);
    }
    let (a, b) = (unique_domain("a"), unique_domain("b"));
    let key = format!("ipc-zenoh-test/{a}/blob");
    let port = free_port();
    let mut sub_b = Proc::spawn(
        TEST,
        "subscriber",
        &b,
        &[("TOPIC", "blob".into()), ("EXPECT", "0".into()), ("ORIGINS", "1".into())],
    );
    sub_b.expect("ready");
    let mut bridge_a = Proc::spawn(
        TEST,
        "bridge",
        &a,
        &[
            ("LISTEN", endpoint(port)),
            ("EXPORTS", format!("blob={key}")),
            ("MATCH", "blob".into()),
            ("BLOCK", "1".into()),
        ],
    );
    bridge_a.expect("ready");
    let bridge_b_env =
        [("CONNECT", endpoint(port)), ("IMPORTS", format!("{key}=blob")), ("BLOCK", "1".into())];
    let mut bridge_b = Proc::spawn(TEST, "bridge", &b, &bridge_b_env);
    bridge_b.expect("ready");
    bridge_a.expect("matched");
    let mut publisher = Proc::spawn(
        TEST,
        "publisher",
        &a,
        &[
            ("TOPIC", "blob".into()),
            ("COUNT", "0".into()),
            ("ORIGIN", "1".into()),
            ("LOCAL_SUBS", "1".into()),
            ("PACE_US", "500".into()),
        ],
    );
    let progress = |l: &str| l.strip_prefix("n=").map(|n| n.parse::<u64>().unwrap());
    let seen =
        progress(&sub_b.expect_with(|l| progress(l).is_some_and(|n| n >= 300), "n>=300")).unwrap();
    bridge_b.kill(); // SIGKILL mid-stream
    let mut bridge_b = Proc::spawn(TEST, "bridge", &b, &bridge_b_env);
    bridge_b.expect("ready");
    sub_b.expect_with(|l| progress(l).is_some_and(|n| n >= seen + 300), "300 more after restart");
    publisher.say("stop");
    let last: u64 = publisher.expect_with(|l| l.starts_with("last="), "last=")["last=".len()..]
        .parse()
        .unwrap();
    sub_b.say(&format!("until {last}"));
    sub_b.expect("complete");
    let got = sub_b.finish();
    publisher.finish();
    bridge_a.finish();
    let stats_b = bridge_b.finish();
    assert_eq!(num(&got, "last1"), last, "resumed up to the last message: {got:?}");
    assert_eq!(num(&got, "out_of_order"), 0, "no duplicate, nothing out of order: {got:?}");
    assert_eq!(num(&got, "corrupt"), 0, "{got:?}");
    assert_eq!(num(&got, "count1") + num(&got, "gaps"), last, "every message seen or counted lost");
    assert_eq!(num(&stats_b, "duplicates"), 0, "{stats_b:?}");
    support::assert_clean(&a);
    support::assert_clean(&b);
}

#[test]
fn fingerprint_mismatch_is_refused_with_both_types() {
    const TEST: &str = "fingerprint_mismatch_is_refused_with_both_types";
    if let Some(role) = support::role() {
        return run_role(&role);
    }
    let (a, b) = (unique_domain("a"), unique_domain("b"));
    let key = format!("ipc-zenoh-test/{a}/frames");
    let port = free_port();
    let mut bridge_a = Proc::spawn(
        TEST,
        "bridge",
        &a,
        &[
            ("LISTEN", endpoint(port)),
            ("EXPORTS", format!("frames={key}")),
            ("MATCH", "frames".into()),
            ("BLOCK", "1".into()),
        ],
    );
    bridge_a.expect("ready");
    let mut bridge_b = Proc::spawn(
        TEST,
        "bridge",
        &b,
        &[
            ("CONNECT", endpoint(port)),
            ("IMPORTS", format!("{key}=remote-frames")),
            ("TYPE", "other".into()),
        ],
    );
    bridge_b.expect("ready");
    bridge_a.expect("matched");
    let mut publisher = Proc::spawn(
        TEST,
        "publisher",
        &a,
        &[
            ("TOPIC", "frames".into()),
            ("COUNT", "0".into()),
            ("ORIGIN", "1".into()),
            ("LOCAL_SUBS", "1".into()),
            ("PACE_US", "1000".into()),
        ],
    );
    let error = bridge_b.expect_with(|l| l.starts_with("error: "), "error: ...");
    for part in [key.as_str(), "`remote-frames`", "`Blob`", "`Other`", "refused"] {
        assert!(error.contains(part), "`{part}` missing from {error}");
    }
    publisher.say("stop");
    publisher.finish();
    bridge_a.finish();
    let stats_b = bridge_b.finish();
    assert!(num(&stats_b, "refused") > 0, "{stats_b:?}");
    assert_eq!(num(&stats_b, "imported"), 0, "{stats_b:?}");
    support::assert_clean(&a);
    support::assert_clean(&b);
}
