//! async/await across real processes, on tokio's current-thread and multi-thread runtimes and
//! several backends: one `select!` loop over 4 subscribers (fed by 4 publisher processes, 100,000
//! messages under `Overflow::Block`) and a listener (fed by a notifier process) sees everything
//! exactly once, in order per publisher; and receive futures dropped mid-wait (a `select!`
//! branch losing to a timer, hundreds of times) lose no message. Every test runs in its own
//! `IPC_DOMAIN` and checks that the domain is empty afterwards.
//!
//! Processes synchronise through their pipes, never through sleeps.

mod support;

use support::{Proc, line_from_parent};

use std::time::Duration;

use ipc_runtime::event::{Listener, Notifier};
use ipc_runtime::prelude::*;
use ipc_runtime::wait::WaitBackend;

const BACKEND_ENV: &str = "AS_BACKEND";
const RUNTIME_ENV: &str = "AS_RUNTIME";
const PUBLISHERS: u64 = 4;
const MESSAGES: u64 = 25_000;
const EVENTS: u64 = 1_000;
const PACED: u64 = 3_000;

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

fn runtime() -> tokio::runtime::Runtime {
    match support::env(RUNTIME_ENV).as_str() {
        "current" => tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap(),
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap(),
        other => panic!("unknown runtime {other}"),
    }
}

// ---- 4 subscribers and a listener in one select! loop ---------------------------------------

fn select_parent(test: &str, backend: &str, runtime: &str) {
    let domain = support::unique_domain(&format!("as-{backend}-{runtime}"));
    let env = |extra: Vec<(&'static str, String)>| {
        let mut v = vec![(BACKEND_ENV, backend.to_owned()), (RUNTIME_ENV, runtime.to_owned())];
        v.extend(extra);
        v
    };
    let mut waiter = Proc::spawn(test, "waiter", &domain, &env(vec![]));
    waiter.expect("ready");
    let mut feeders: Vec<Proc> = (0..PUBLISHERS)
        .map(|k| Proc::spawn(test, "publisher", &domain, &env(vec![("AS_INDEX", k.to_string())])))
        .collect();
    feeders.push(Proc::spawn(test, "notifier", &domain, &env(vec![])));
    for feeder in feeders {
        let fields = feeder.finish();
        assert!(fields.contains_key("sent"), "{fields:?}");
    }
    waiter.say("feeders-done");
    let fields = waiter.finish();
    let num = |k: &str| fields[k].parse::<u64>().unwrap();
    assert_eq!(num("messages"), PUBLISHERS * MESSAGES, "{backend} {runtime}");
    assert_eq!(num("events"), EVENTS, "{backend} {runtime}");
    assert_eq!(fields["afterwards"], "nothing", "{backend} {runtime}");
    support::assert_clean(&domain);
}

fn select_waiter<B: WaitBackend>() {
    let subs: Vec<Subscriber<u64, B>> = (0..PUBLISHERS)
        .map(|k| {
            Subscriber::<u64>::builder(&format!("as{k}"))
                .overflow(Overflow::Block)
                .backend::<B>()
                .create()
                .unwrap()
        })
        .collect();
    let listener = Listener::builder("as-ev").backend::<B>().create().unwrap();
    println!("ready");
    let mut next = [0u64; PUBLISHERS as usize];
    let mut events = 0u64;
    fn check<B: WaitBackend>(
        next: &mut [u64],
        k: usize,
        sample: Result<Sample<'_, u64, B>, Error>,
    ) {
        assert_eq!(*sample.unwrap(), next[k], "{}: publisher {k} out of order", B::NAME);
        next[k] += 1;
    }
    runtime().block_on(async {
        let work = async {
            while next.iter().sum::<u64>() < PUBLISHERS * MESSAGES || events < EVENTS {
                tokio::select! {
                    s = subs[0].receive_async() => check(&mut next, 0, s),
                    s = subs[1].receive_async() => check(&mut next, 1, s),
                    s = subs[2].receive_async() => check(&mut next, 2, s),
                    s = subs[3].receive_async() => check(&mut next, 3, s),
                    e = listener.wait_async() => {
                        e.unwrap();
                        events += 1;
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(120), work)
            .await
            .unwrap_or_else(|_| panic!("{}: stuck", B::NAME));
    });
    println!("messages={}", next.iter().sum::<u64>());
    println!("events={events}");
    assert_eq!(line_from_parent(), "feeders-done");
    let mut more = listener.try_wait().unwrap().is_some();
    for sub in &subs {
        more |= sub.try_iter().next().is_some();
    }
    println!("afterwards={}", if more { "more" } else { "nothing" });
}

fn select_publisher<B: WaitBackend>() {
    let k = support::env("AS_INDEX");
    let publisher = Publisher::<u64>::builder(&format!("as{k}"))
        .overflow(Overflow::Block)
        .backend::<B>()
        .create()
        .unwrap();
    for n in 0..MESSAGES {
        publisher.publish(n).unwrap();
    }
    println!("sent={MESSAGES}");
}

fn select_notifier<B: WaitBackend>() {
    let notifier = Notifier::builder("as-ev").backend::<B>().create().unwrap();
    for n in 0..EVENTS {
        notifier.notify(EventId::new(n % 8)).unwrap();
    }
    println!("sent={EVENTS}");
}

fn select(test: &str, backend: &str, runtime: &str) {
    match support::role().as_deref() {
        None => select_parent(test, backend, runtime),
        Some("waiter") => with_backend!(backend, select_waiter),
        Some("publisher") => with_backend!(backend, select_publisher),
        Some("notifier") => with_backend!(backend, select_notifier),
        Some(other) => panic!("unknown role {other}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn select_futex_current_thread() {
    select("select_futex_current_thread", "futex", "current");
}

#[cfg(target_os = "linux")]
#[test]
fn select_futex_multi_thread() {
    select("select_futex_multi_thread", "futex", "multi");
}

#[cfg(unix)]
#[test]
fn select_unix_socket_multi_thread() {
    select("select_unix_socket_multi_thread", "unix-socket", "multi");
}

#[cfg(windows)]
#[test]
fn select_windows_event_current_thread() {
    select("select_windows_event_current_thread", "windows-event", "current");
}

#[cfg(windows)]
#[test]
fn select_windows_event_multi_thread() {
    select("select_windows_event_multi_thread", "windows-event", "multi");
}

#[test]
fn select_polling_current_thread() {
    select("select_polling_current_thread", "polling", "current");
}

// ---- receive futures dropped mid-wait lose nothing ------------------------------------------

fn cancel_parent(test: &str, backend: &str) {
    let domain = support::unique_domain(&format!("ascancel-{backend}"));
    let env = vec![(BACKEND_ENV, backend.to_owned()), (RUNTIME_ENV, "current".to_owned())];
    let mut waiter = Proc::spawn(test, "waiter", &domain, &env);
    waiter.expect("ready");
    let publisher = Proc::spawn(test, "publisher", &domain, &env);
    let fields = publisher.finish();
    assert_eq!(fields["sent"], PACED.to_string());
    let fields = waiter.finish();
    assert_eq!(fields["received"], PACED.to_string(), "{backend}");
    let dropped = fields["dropped"].parse::<u64>().unwrap();
    assert!(dropped > 0, "{backend}: no receive future was dropped mid-wait");
    eprintln!("{backend}: {PACED} messages received whole, {dropped} futures dropped mid-wait");
    support::assert_clean(&domain);
}

/// Races every receive against a 1 ms timer: the losing receive future is dropped while
/// registered with the async waiter (hundreds of times, since the publisher pauses).
fn cancel_waiter<B: WaitBackend>() {
    let sub = Subscriber::<u64>::builder("paced")
        .overflow(Overflow::Block)
        .backend::<B>()
        .create()
        .unwrap();
    println!("ready");
    let (mut next, mut dropped) = (0u64, 0u64);
    runtime().block_on(async {
        let work = async {
            while next < PACED {
                tokio::select! {
                    s = sub.receive_async() => {
                        assert_eq!(*s.unwrap(), next, "{}: a message was lost", B::NAME);
                        next += 1;
                    }
                    () = tokio::time::sleep(Duration::from_micros(500)) => dropped += 1,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(120), work)
            .await
            .unwrap_or_else(|_| panic!("{}: stuck at {next}", B::NAME));
    });
    println!("received={next}");
    println!("dropped={dropped}");
}

fn cancel_publisher<B: WaitBackend>() {
    let publisher = Publisher::<u64>::builder("paced")
        .overflow(Overflow::Block)
        .backend::<B>()
        .create()
        .unwrap();
    for n in 0..PACED {
        publisher.publish(n).unwrap();
        // Pauses of a few milliseconds now and then, so that receives wait and lose races.
        if n % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    println!("sent={PACED}");
}

fn cancel(test: &str, backend: &str) {
    match support::role().as_deref() {
        None => cancel_parent(test, backend),
        Some("waiter") => with_backend!(backend, cancel_waiter),
        Some("publisher") => with_backend!(backend, cancel_publisher),
        Some(other) => panic!("unknown role {other}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn dropped_futures_futex() {
    cancel("dropped_futures_futex", "futex");
}

#[cfg(unix)]
#[test]
fn dropped_futures_unix_socket() {
    cancel("dropped_futures_unix_socket", "unix-socket");
}

#[cfg(windows)]
#[test]
fn dropped_futures_windows_event() {
    cancel("dropped_futures_windows_event", "windows-event");
}
