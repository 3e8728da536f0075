//! The wait set across real processes, run against several backends: one process waits on 8
//! subscribers (fed by 8 publisher processes) and a listener (fed by a notifier process) in one
//! `WaitSet`, and sees every message and event exactly once, in order per publisher; then a
//! deadline fires on time with nothing else going on, and a one-second idle wait burns almost
//! no CPU. Every test runs in its own `IPC_DOMAIN` and checks that the domain is empty
//! afterwards.
//!
//! Processes synchronise through their pipes, never through sleeps; the only timing
//! assertions are generous bounds.

mod support;

use support::{Proc, line_from_parent};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipc_runtime::event::{Listener, Notifier};
use ipc_runtime::prelude::*;
use ipc_runtime::wait::WaitBackend;

const BACKEND_ENV: &str = "WS_BACKEND";
const PUBLISHERS: u64 = 8;
const MESSAGES: u64 = 5_000;
const EVENTS: u64 = 1_600;
const IDS: u64 = 16;
const DEADLINE: Duration = Duration::from_millis(300);

macro_rules! with_backend {
    ($name:expr, $f:ident) => {
        match $name {
            #[cfg(target_os = "linux")]
            "futex" => $f::<ipc_runtime::wait::Futex>(),
            #[cfg(unix)]
            "unix-socket" => $f::<ipc_runtime::wait::UnixSocket>(),
            #[cfg(windows)]
            "windows-event" => $f::<ipc_runtime::wait::WindowsEvent>(),
            "polling" => $f::<ipc_runtime::wait::Polling>(),
            other => panic!("unknown backend {other}"),
        }
    };
}

fn parent(test: &str, backend: &str) {
    let domain = support::unique_domain(&format!("ws-{backend}"));
    let env = |extra: Vec<(&'static str, String)>| {
        let mut v = vec![(BACKEND_ENV, backend.to_owned())];
        v.extend(extra);
        v
    };
    let mut waiter = Proc::spawn(test, "waiter", &domain, &env(vec![]));
    waiter.expect("ready");
    let mut feeders: Vec<Proc> = (0..PUBLISHERS)
        .map(|k| Proc::spawn(test, "publisher", &domain, &env(vec![("WS_INDEX", k.to_string())])))
        .collect();
    feeders.push(Proc::spawn(test, "notifier", &domain, &env(vec![])));
    for feeder in feeders {
        let fields = feeder.finish();
        assert!(fields.contains_key("sent"), "{fields:?}");
    }
    waiter.say("feeders-done");
    let fields = waiter.finish();
    let num = |k: &str| fields[k].parse::<u64>().unwrap();
    assert_eq!(num("messages"), PUBLISHERS * MESSAGES, "{backend}");
    assert_eq!(num("events"), EVENTS, "{backend}");
    assert_eq!(fields["per_id"], (EVENTS / IDS).to_string(), "{backend}");
    assert_eq!(fields["afterwards"], "nothing", "{backend}");
    assert_eq!(fields["deadline_only"], "yes", "{backend}");
    let late = num("deadline_late_us");
    assert!(late < 2_000_000, "{backend}: the deadline fired {late} µs late");
    let (wall, cpu) = (num("idle_wall_us"), num("idle_cpu_us"));
    assert!((1_000_000..3_000_000).contains(&wall), "{backend}: idle wait took {wall} µs");
    // Polling naps ~1,000 times a second; under Wine each nap is a round trip to the Wine
    // server (see `event_cross_process.rs`), so it gets a bound that still tells sleeping from
    // spinning.
    let bound = if backend == "polling" && support::under_wine() { 200_000 } else { 50_000 };
    assert!(cpu < bound, "{backend}: burnt {cpu} µs of CPU in a {wall} µs idle wait");
    eprintln!("{backend}: deadline {late} µs late; 1 s idle wait: {wall} µs wall, {cpu} µs CPU");
    support::assert_clean(&domain);
}

fn waiter<B: WaitBackend>() {
    let subs: Vec<Subscriber<u64, B>> = (0..PUBLISHERS)
        .map(|k| {
            Subscriber::<u64>::builder(&format!("ws{k}"))
                .overflow(Overflow::Block)
                .backend::<B>()
                .create()
                .unwrap()
        })
        .collect();
    let listener =
        Listener::builder("ws-ev").max_event_id(IDS - 1).backend::<B>().create().unwrap();
    let waitset = WaitSet::<B>::with_backend();
    let guards: Vec<_> = subs.iter().map(|s| waitset.attach(s)).collect();
    let events_guard = waitset.attach(&listener);
    println!("ready");
    #[derive(Default)]
    struct Tally {
        next: Vec<u64>,
        per_id: BTreeMap<u64, u64>,
        events: u64,
        messages: u64,
    }
    let mut t = Tally { next: vec![0; PUBLISHERS as usize], ..Tally::default() };
    let take = |id: ipc_runtime::waitset::AttachmentId, t: &mut Tally| {
        if id == events_guard.id() {
            while let Some(event) = listener.try_wait().unwrap() {
                *t.per_id.entry(event.value()).or_default() += 1;
                t.events += 1;
            }
            return;
        }
        let k = guards.iter().position(|g| g.id() == id).expect("an attached id");
        for sample in subs[k].try_iter() {
            let value = *sample.unwrap();
            assert_eq!(value, t.next[k], "{}: publisher {k} out of order", B::NAME);
            t.next[k] += 1;
            t.messages += 1;
        }
    };
    while t.messages < PUBLISHERS * MESSAGES || t.events < EVENTS {
        let ready = waitset.wait_timeout(Duration::from_secs(60)).unwrap();
        assert!(!ready.is_empty(), "{}: stuck at {:?}, {} events", B::NAME, t.next, t.events);
        for id in ready {
            take(id, &mut t);
        }
    }
    println!("messages={}", t.messages);
    println!("events={}", t.events);
    let counts: Vec<u64> = t.per_id.values().copied().collect();
    assert_eq!(counts.len() as u64, IDS, "{:?}", t.per_id);
    assert!(counts.iter().all(|&c| c == counts[0]), "{:?}", t.per_id);
    println!("per_id={}", counts[0]);

    // The feeders are gone: what they did to the topics (leaving) is taken in, nothing more
    // comes.
    assert_eq!(line_from_parent(), "feeders-done");
    let before = t.messages + t.events;
    for id in guards.iter().map(|g| g.id()).chain([events_guard.id()]) {
        take(id, &mut t);
    }
    println!("afterwards={}", if t.messages + t.events == before { "nothing" } else { "more" });

    // A deadline with nothing else going on: reported alone, on time.
    let start = Instant::now();
    let deadline = waitset.attach_deadline(start + DEADLINE);
    let ready = waitset.wait().unwrap();
    let late = start.elapsed().checked_sub(DEADLINE).expect("the deadline fired early");
    println!("deadline_only={}", if ready == [deadline.id()] { "yes" } else { "no" });
    println!("deadline_late_us={}", late.as_micros());

    // A one-second idle wait: CPU time of the whole process.
    let (cpu0, start) = (support::cpu_time(), Instant::now());
    let ready = waitset.wait_timeout(Duration::from_secs(1)).unwrap();
    let (wall, cpu) = (start.elapsed(), support::cpu_time() - cpu0);
    assert!(ready.is_empty(), "{}: something was ready: {ready:?}", B::NAME);
    println!("idle_wall_us={}", wall.as_micros());
    println!("idle_cpu_us={}", cpu.as_micros());
}

fn publisher<B: WaitBackend>() {
    let k = support::env("WS_INDEX");
    let publisher = Publisher::<u64>::builder(&format!("ws{k}"))
        .overflow(Overflow::Block)
        .backend::<B>()
        .create()
        .unwrap();
    for n in 0..MESSAGES {
        publisher.publish(n).unwrap();
    }
    // What it queued stays readable after it leaves.
    println!("sent={MESSAGES}");
}

fn notifier<B: WaitBackend>() {
    let notifier = Notifier::builder("ws-ev").backend::<B>().create().unwrap();
    for n in 0..EVENTS {
        notifier.notify(EventId::new(n % IDS)).unwrap();
    }
    println!("sent={EVENTS}");
}

fn run(test: &str, backend: &str) {
    match support::role().as_deref() {
        None => parent(test, backend),
        Some("waiter") => with_backend!(backend, waiter),
        Some("publisher") => with_backend!(backend, publisher),
        Some("notifier") => with_backend!(backend, notifier),
        Some(other) => panic!("unknown role {other}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn waitset_futex() {
    run("waitset_futex", "futex");
}

#[cfg(unix)]
#[test]
fn waitset_unix_socket() {
    run("waitset_unix_socket", "unix-socket");
}

#[cfg(windows)]
#[test]
fn waitset_windows_event() {
    run("waitset_windows_event", "windows-event");
}

#[test]
fn waitset_polling() {
    run("waitset_polling", "polling");
}
