//! Several threads of one process receiving from one `Subscriber` at once: a thread in
//! `receive()` (no deadline) must not hold up another thread's `receive_timeout`, two
//! `receive_timeout`s with different timeouts each keep their own, and two threads in
//! `receive()` each get a message when two are published. Every variant runs with the default
//! backend, `UnixSocket` (an OS object per waiter, not broadcasting) and `Polling`.
//!
//! Timing bounds are generous upper bounds only (the tests run on shared, small machines); the
//! lower bound of a timeout is exact (`receive_timeout` may not give up early). Nothing sleeps
//! to "wait long enough": the main thread waits for conditions with deadlines, and whatever goes
//! wrong it publishes until every thread is back, so that a failure fails instead of hanging in
//! the scope's join.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use ipc_runtime::wait::{DefaultBackend, Polling, WaitBackend};
use support::wait_until;

/// How long any single step may take before we call it stuck (generous: shared 2-vCPU VMs).
const STEP: Duration = Duration::from_secs(5);

/// A subscriber and a publisher of `u64` on a topic of their own, in a domain of their own.
fn pair<B: WaitBackend>(domain: &str) -> (Subscriber<u64, B>, Publisher<u64, B>) {
    let subscriber =
        Subscriber::<u64>::builder("threads").domain(domain).backend::<B>().create().unwrap();
    let publisher =
        Publisher::<u64>::builder("threads").domain(domain).backend::<B>().create().unwrap();
    (subscriber, publisher)
}

/// Waits for `all_back()` (every receiving thread has returned), then publishes filler messages
/// until it holds: a thread stuck in `receive()` gets one and comes back. Aborts the process if
/// that does not help, since the scope would otherwise wait forever. Returns how many fillers
/// it published.
fn release_all(
    backend: &str,
    publisher: &Publisher<u64, impl WaitBackend>,
    all_back: impl Fn() -> bool,
) -> u64 {
    // Threads with deadlines come back by themselves: give them time first.
    wait_until(STEP, &all_back);
    let mut fillers = 0;
    while !all_back() {
        if fillers == 10 {
            eprintln!("{backend}: receiving threads still blocked after {fillers} extra messages");
            std::process::abort();
        }
        fillers += 1;
        publisher.publish(1_000_000 + fillers).unwrap();
        wait_until(STEP, &all_back);
    }
    fillers
}

/// One `receive_timeout(timeout)`: what it returned and how long it took.
fn timed_receive<B: WaitBackend>(
    subscriber: &Subscriber<u64, B>,
    timeout: Duration,
) -> (Option<u64>, Duration) {
    let start = Instant::now();
    let got = subscriber.receive_timeout(timeout).unwrap().map(|m| *m);
    (got, start.elapsed())
}

/// Drops both ends and checks the domain kept nothing.
fn finish<B: WaitBackend>(
    domain: &str,
    subscriber: Subscriber<u64, B>,
    publisher: Publisher<u64, B>,
) {
    drop(subscriber);
    drop(publisher);
    support::assert_clean(domain);
}

/// How many `receive_timeout(50 ms)` calls thread B makes while thread A is in `receive()`.
const BESIDE_CALLS: usize = 5;

/// Thread A waits in `receive()` (no deadline) while thread B calls `receive_timeout(50 ms)`
/// several times in a row: each of B's calls returns `None` after 50 ms (< 1 s), then one
/// publish reaches A.
fn receive_timeout_beside_receive<B: WaitBackend>(tag: &str) {
    let name = B::NAME;
    let timeout = Duration::from_millis(50);
    let bound = Duration::from_secs(1);
    let domain = support::unique_domain(tag);
    let (subscriber, publisher) = pair::<B>(&domain);
    let a_entered = AtomicBool::new(false);
    let mut problems = Vec::new();
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            a_entered.store(true, Ordering::SeqCst);
            let sample = subscriber.receive().unwrap();
            (*sample, sample.sequence(), Instant::now())
        });
        // A announces itself just before `receive()`; it then needs microseconds to sleep.
        if !wait_until(STEP, || a_entered.load(Ordering::SeqCst)) {
            problems.push("thread A never started".to_owned());
        }
        let b = s.spawn(|| {
            (0..BESIDE_CALLS).map(|_| timed_receive(&subscriber, timeout)).collect::<Vec<_>>()
        });
        // Nothing is published until B is done (or plainly stuck behind A).
        let b_deadline = BESIDE_CALLS as u32 * bound + STEP;
        if !wait_until(b_deadline, || b.is_finished()) {
            problems.push(format!(
                "thread B's {BESIDE_CALLS} receive_timeout({timeout:?}) calls were not done \
                 after {b_deadline:?} while thread A was in receive()"
            ));
        }
        let published = Instant::now();
        publisher.publish(1).unwrap();
        if !wait_until(STEP, || a.is_finished()) {
            problems.push(format!("thread A's receive() missed the publish for {STEP:?}"));
        }
        let fillers = release_all(name, &publisher, || a.is_finished() && b.is_finished());
        if fillers > 0 {
            problems
                .push(format!("{fillers} extra message(s) were needed to get the threads back"));
        }
        let (value, sequence, at) = a.join().expect("thread A panicked");
        if (value, sequence) != (1, 1) {
            problems.push(format!("thread A received {value} (sequence {sequence}), not 1"));
        }
        let latency = at.saturating_duration_since(published);
        if latency >= STEP {
            problems.push(format!("thread A received the message {latency:?} after the publish"));
        }
        for (i, (got, elapsed)) in b.join().expect("thread B panicked").into_iter().enumerate() {
            if got.is_some() || elapsed < timeout || elapsed >= bound {
                problems.push(format!(
                    "thread B's receive_timeout({timeout:?}) call {i} returned {got:?} after \
                     {elapsed:?} (want None within [{timeout:?}, {bound:?})) while thread A was \
                     in receive()"
                ));
            }
        }
    });
    assert!(problems.is_empty(), "{name}:\n  {}", problems.join("\n  "));
    finish(&domain, subscriber, publisher);
}

/// The long waiter's calls; the short one keeps calling for as long as those last.
const LONG_CALLS: usize = 3;

/// Two threads in `receive_timeout` at once, one with 20 ms and one with 200 ms: each call
/// returns `None` no earlier than its own timeout and not much later. The bound for the 20 ms
/// calls must stay under 200 ms, or a short wait that queued behind the long one would pass.
fn two_receive_timeouts<B: WaitBackend>(tag: &str) {
    let name = B::NAME;
    let (short, long) = (Duration::from_millis(20), Duration::from_millis(200));
    let (short_bound, long_bound) = (Duration::from_millis(150), Duration::from_secs(1));
    let domain = support::unique_domain(tag);
    let (subscriber, publisher) = pair::<B>(&domain);
    let (long_entered, long_done) = (AtomicBool::new(false), AtomicBool::new(false));
    let sub = &subscriber;
    let (long_calls, short_calls) = std::thread::scope(|s| {
        let calls = |timeout| timed_receive(sub, timeout);
        let (long_entered, long_done) = (&long_entered, &long_done);
        let long_thread = s.spawn(move || {
            long_entered.store(true, Ordering::SeqCst);
            let out: Vec<_> = (0..LONG_CALLS).map(|_| calls(long)).collect();
            long_done.store(true, Ordering::SeqCst);
            out
        });
        let short_thread = s.spawn(move || {
            wait_until(STEP, || long_entered.load(Ordering::SeqCst));
            let mut out = Vec::new();
            // At least a handful, and for as long as the long waiter waits (bounded, in case
            // it is stuck).
            while out.len() < 5 || (!long_done.load(Ordering::SeqCst) && out.len() < 500) {
                out.push(calls(short));
            }
            out
        });
        (
            long_thread.join().expect("long waiter panicked"),
            short_thread.join().expect("short waiter panicked"),
        )
    });
    let mut problems = Vec::new();
    for (what, timeout, bound, results) in
        [("long", long, long_bound, &long_calls), ("short", short, short_bound, &short_calls)]
    {
        for (i, (got, elapsed)) in results.iter().enumerate() {
            if got.is_some() || *elapsed < timeout || *elapsed >= bound {
                problems.push(format!(
                    "{what} waiter's receive_timeout({timeout:?}) call {i} returned {got:?} after \
                     {elapsed:?} (want None within [{timeout:?}, {bound:?}))"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{name}:\n  {}", problems.join("\n  "));
    finish(&domain, subscriber, publisher);
}

/// Two threads in `receive()` at once; two publishes, one after the first was received: each
/// thread gets one of the two messages.
fn two_receives<B: WaitBackend>(tag: &str) {
    let name = B::NAME;
    let domain = support::unique_domain(tag);
    let (subscriber, publisher) = pair::<B>(&domain);
    let entered = AtomicUsize::new(0);
    let mut problems = Vec::new();
    let mut got = std::thread::scope(|s| {
        let receiver = || {
            entered.fetch_add(1, Ordering::SeqCst);
            let sample = subscriber.receive().unwrap();
            (*sample, sample.sequence())
        };
        let a = s.spawn(receiver);
        let b = s.spawn(receiver);
        if !wait_until(STEP, || entered.load(Ordering::SeqCst) == 2) {
            problems.push("the receiving threads never started".to_owned());
        }
        publisher.publish(1).unwrap();
        if !wait_until(STEP, || a.is_finished() || b.is_finished()) {
            problems.push(format!("neither receive() returned within {STEP:?} of a publish"));
        }
        // One thread has its message; the other is (still) in receive().
        publisher.publish(2).unwrap();
        if !wait_until(STEP, || a.is_finished() && b.is_finished()) {
            problems.push(format!("the second receive() missed the publish for {STEP:?}"));
        }
        let fillers = release_all(name, &publisher, || a.is_finished() && b.is_finished());
        if fillers > 0 {
            problems
                .push(format!("{fillers} extra message(s) were needed to get the threads back"));
        }
        vec![a.join().expect("thread A panicked"), b.join().expect("thread B panicked")]
    });
    got.sort_unstable();
    if got != [(1, 1), (2, 2)] {
        problems.push(format!("the threads received {got:?} as (value, sequence)"));
    }
    if let Some(extra) = subscriber.try_receive().unwrap() {
        problems.push(format!("message {} was left over", extra.sequence()));
    }
    assert!(problems.is_empty(), "{name}:\n  {}", problems.join("\n  "));
    finish(&domain, subscriber, publisher);
}

#[test]
fn receive_timeout_beside_receive_default_backend() {
    receive_timeout_beside_receive::<DefaultBackend>("beside-default");
}

#[cfg(unix)]
#[test]
fn receive_timeout_beside_receive_unix_socket() {
    receive_timeout_beside_receive::<ipc_runtime::wait::UnixSocket>("beside-socket");
}

#[test]
fn receive_timeout_beside_receive_polling() {
    receive_timeout_beside_receive::<Polling>("beside-polling");
}

#[test]
fn two_receive_timeouts_default_backend() {
    two_receive_timeouts::<DefaultBackend>("timeouts-default");
}

#[cfg(unix)]
#[test]
fn two_receive_timeouts_unix_socket() {
    two_receive_timeouts::<ipc_runtime::wait::UnixSocket>("timeouts-socket");
}

#[test]
fn two_receive_timeouts_polling() {
    two_receive_timeouts::<Polling>("timeouts-polling");
}

#[test]
fn two_receives_default_backend() {
    two_receives::<DefaultBackend>("receives-default");
}

#[cfg(unix)]
#[test]
fn two_receives_unix_socket() {
    two_receives::<ipc_runtime::wait::UnixSocket>("receives-socket");
}

#[test]
fn two_receives_polling() {
    two_receives::<Polling>("receives-polling");
}
