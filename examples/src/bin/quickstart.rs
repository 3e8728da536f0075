//! One command, the whole story: starts two subscriber processes, publishes 100,000 messages
//! with `ShmVec` payloads (64 B – 4 KiB) to them, and prints how many each received and the
//! publish-to-read latency percentiles.
//!
//! `cargo run --release -p ipc-examples --bin quickstart [messages]`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ipc_examples::Frame;
use ipc_runtime::prelude::*;

const SUBSCRIBERS: usize = 2;
/// Gap between messages, so latency measures transport rather than a backlog.
const PACE: Duration = Duration::from_micros(20);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--subscriber") {
        return subscriber(args[2].parse()?);
    }
    let messages: u64 = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    // A private domain, so several quickstarts (and other programs) never meet.
    let domain = format!("quickstart-{}", std::process::id());
    ipc_runtime::domain::set_current(&domain)?;

    println!("quickstart: 1 publisher -> {SUBSCRIBERS} subscriber processes, {messages} messages");
    let publisher = Publisher::<Frame>::builder(<Frame as Topic>::NAME)
        .overflow(Overflow::Block)
        .max_subscribers(SUBSCRIBERS as u32)
        .subscriber_capacity(256)
        .create()?;
    let mut children = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--subscriber", &messages.to_string()])
            .env("IPC_DOMAIN", &domain)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err(format!("subscriber failed to start: {line}").into());
        }
        children.push((child, out));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.subscriber_count() < SUBSCRIBERS {
        if Instant::now() > deadline {
            return Err("subscribers did not connect".into());
        }
        std::thread::yield_now();
    }

    let start = Instant::now();
    let mut next = Instant::now();
    for seq in 1..=messages {
        let len = 64 + (seq as usize * 7919) % (4096 - 64);
        let mut payload = ShmVec::with_capacity(len);
        payload.resize(len, seq as u8);
        publisher.publish(Frame { seq, sent: ipc_runtime::timestamp(), payload })?;
        next += PACE;
        while Instant::now() < next {
            std::hint::spin_loop();
        }
    }
    let elapsed = start.elapsed();

    println!("published {messages} messages in {elapsed:.2?}\n");
    println!("| subscriber | delivered | p50 | p99 | p99.9 | max |");
    println!("|---|---|---|---|---|---|");
    let mut ok = true;
    for (i, (mut child, out)) in children.into_iter().enumerate() {
        let report: Vec<String> = out.lines().map_while(Result::ok).collect();
        let status = child.wait()?;
        ok &= status.success();
        println!("| {} | {} |", i + 1, report.join(" | "));
    }
    if !ok {
        return Err("a subscriber failed".into());
    }
    Ok(())
}

fn subscriber(messages: u64) -> Result<(), Box<dyn std::error::Error>> {
    let subscriber = Subscriber::<Frame>::builder(<Frame as Topic>::NAME)
        .overflow(Overflow::Block)
        .max_subscribers(SUBSCRIBERS as u32)
        .subscriber_capacity(256)
        .create()?;
    println!("ready");
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut delivered = 0u64;
    while delivered < messages {
        let Some(sample) = subscriber.receive_timeout(Duration::from_secs(10))? else {
            break;
        };
        let now = ipc_runtime::timestamp();
        let intact = sample.payload.iter().all(|&b| b == sample.seq as u8);
        if !intact || sample.sequence() != sample.seq {
            return Err(format!("message {} arrived damaged", sample.seq).into());
        }
        latency.record((now - sample.sent).max(1) as u64)?;
        delivered += 1;
    }
    let us = |q: f64| format!("{:.1} µs", latency.value_at_quantile(q) as f64 / 1000.0);
    println!("{delivered}");
    println!("{}", us(0.5));
    println!("{}", us(0.99));
    println!("{}", us(0.999));
    println!("{:.1} µs", latency.max() as f64 / 1000.0);
    Ok(())
}
