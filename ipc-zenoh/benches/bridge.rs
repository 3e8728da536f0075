//! Bridged one-way latency and throughput over loopback, next to plain zenoh, in one run.
//!
//! * **bridged**: a local publisher (this process, domain A) → bridge process A (export) →
//!   zenoh over TCP 127.0.0.1 → bridge process B (import) → a subscriber process in domain B.
//! * **plain zenoh**: a zenoh publisher (this process) → zenoh over TCP 127.0.0.1 → a zenoh
//!   subscriber (callback) in another process, both sessions configured as the bridges'.
//!
//! The message is the quickstart's `Frame` (sequence, send timestamp, `ShmVec<u8>` payload of
//! 8 B or 64 KiB); plain zenoh puts the same 16 header bytes and payload. Latency: paced
//! messages, send timestamp to receipt. Throughput: back-to-back messages with
//! `Overflow::Block` / `CongestionControl::Block` (no loss), first to last receipt.
//!
//! `cargo bench -p ipc-zenoh --bench bridge [-- --quick]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ipc_runtime::prelude::*;
use ipc_runtime::pubsub::Options;
use ipc_zenoh::Bridge;
use ipc_zenoh::zenoh::{self, Wait};
use serde::{Deserialize, Serialize};
use support::{Proc, env, env_opt, free_port, unique_domain};

/// The quickstart's message.
#[derive(ShmMessage, Serialize, Deserialize, Debug)]
#[repr(C)]
struct Frame {
    seq: u64,
    sent: i64,
    #[serde(with = "ipc_runtime::wire::bytes")]
    payload: ShmVec<u8>,
}

const TOPIC: &str = "bench/frames";
const OPTIONS: Options = Options::new().overflow(Overflow::Block).subscriber_capacity(256);
const BENCH: &str = "bridge-bench";

fn endpoint(port: u16) -> String {
    format!("tcp/127.0.0.1:{port}")
}

/// What a sink measured.
struct Measured {
    hist: Histogram<u64>,
    /// First to last receipt.
    span: Duration,
    count: u64,
}

impl Measured {
    fn new() -> Self {
        Measured { hist: Histogram::new(3).unwrap(), span: Duration::ZERO, count: 0 }
    }

    fn print(&self) {
        println!(
            "result {} {} {} {} {} {}",
            self.count,
            self.hist.value_at_quantile(0.5),
            self.hist.value_at_quantile(0.99),
            self.hist.value_at_quantile(0.999),
            self.hist.max(),
            self.span.as_nanos()
        );
    }

    fn parse(line: &str) -> (u64, [u64; 4], Duration) {
        let v: Vec<u64> = line.split(' ').skip(1).map(|x| x.parse().unwrap()).collect();
        (v[0], [v[1], v[2], v[3], v[4]], Duration::from_nanos(v[5]))
    }
}

fn role(role: &str) {
    match role {
        "bridge" => {
            let listen: Vec<String> = env_opt("LISTEN").into_iter().collect();
            let connect: Vec<String> = env_opt("CONNECT").into_iter().collect();
            let listen: Vec<&str> = listen.iter().map(String::as_str).collect();
            let connect: Vec<&str> = connect.iter().map(String::as_str).collect();
            let bridge = Bridge::new(Bridge::peer_config(&listen, &connect).unwrap()).unwrap();
            let key = env("KEY");
            if env_opt("EXPORT").is_some() {
                bridge.export::<Frame>(TOPIC, &key).unwrap();
            } else {
                bridge.import_with::<Frame>(&key, TOPIC, OPTIONS).unwrap();
            }
            println!("ready");
            if env_opt("EXPORT").is_some() {
                assert!(bridge.wait_matched(TOPIC, Duration::from_secs(60)).unwrap());
                println!("matched");
            }
            while support::line_from_parent().is_some() {}
            if let Some(err) = bridge.try_error() {
                panic!("bridge error: {err}");
            }
        }
        "sink" => {
            let n: u64 = env("COUNT").parse().unwrap();
            let subscriber = Subscriber::<Frame>::builder(TOPIC).options(OPTIONS).create().unwrap();
            println!("ready");
            let mut m = Measured::new();
            let mut first = None;
            while m.count < n {
                let frame = subscriber.receive().unwrap();
                let now = ipc_runtime::timestamp();
                first.get_or_insert_with(Instant::now);
                m.hist.record((now - frame.sent).max(0) as u64).unwrap();
                m.count += 1;
            }
            m.span = first.unwrap().elapsed();
            m.print();
        }
        "zsink" => {
            let n: u64 = env("COUNT").parse().unwrap();
            let config = Bridge::peer_config(&[], &[&env("CONNECT")]).unwrap();
            let session = zenoh::open(config).wait().unwrap();
            let (tx, rx) = std::sync::mpsc::sync_channel::<Measured>(1);
            let state = std::sync::Mutex::new((Measured::new(), None::<Instant>, Some(tx)));
            let _subscriber = session
                .declare_subscriber(env("KEY"))
                .callback(move |sample| {
                    let now = ipc_runtime::timestamp();
                    let bytes = sample.payload().to_bytes();
                    let sent = i64::from_le_bytes(bytes[8..16].try_into().unwrap());
                    let mut st = state.lock().unwrap();
                    st.1.get_or_insert_with(Instant::now);
                    st.0.hist.record((now - sent).max(0) as u64).unwrap();
                    st.0.count += 1;
                    if st.0.count == n {
                        st.0.span = st.1.unwrap().elapsed();
                        let m = std::mem::replace(&mut st.0, Measured::new());
                        if let Some(tx) = st.2.take() {
                            tx.send(m).unwrap();
                        }
                    }
                })
                .wait()
                .unwrap();
            println!("ready");
            rx.recv().unwrap().print();
            session.close().wait().unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

/// One measured run: payload size, messages, pace → (count, p50/p99/p99.9/max ns, span).
type Run = fn(usize, u64, Duration) -> (u64, [u64; 4], Duration);

/// Sends `n` frames of `size` bytes over the bridge, `pace` apart (zero: back to back).
fn bridged(size: usize, n: u64, pace: Duration) -> (u64, [u64; 4], Duration) {
    // This process's domain (set once in `main`) is host A; every run gets a new host B.
    let a = ipc_runtime::domain::current().to_owned();
    let b = unique_domain("bench-b");
    let port = free_port();
    let key = format!("ipc-zenoh-bench/{a}");
    let mut sink = Proc::spawn(BENCH, "sink", &b, &[("COUNT", n.to_string())]);
    sink.expect("ready");
    let publisher = Publisher::<Frame>::builder(TOPIC)
        .options(OPTIONS)
        .block_timeout(Duration::from_secs(60))
        .create()
        .unwrap();
    let mut bridge_a = Proc::spawn(
        BENCH,
        "bridge",
        &a,
        &[("LISTEN", endpoint(port)), ("KEY", key.clone()), ("EXPORT", "1".into())],
    );
    bridge_a.expect("ready");
    let mut bridge_b =
        Proc::spawn(BENCH, "bridge", &b, &[("CONNECT", endpoint(port)), ("KEY", key.clone())]);
    bridge_b.expect("ready");
    bridge_a.expect("matched");
    assert!(support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() >= 1));
    let bytes = vec![0xa5u8; size];
    let mut next = Instant::now();
    for seq in 1..=n {
        publisher
            .publish(Frame {
                seq,
                sent: ipc_runtime::timestamp(),
                payload: ShmVec::from_slice(&bytes),
            })
            .unwrap();
        if !pace.is_zero() {
            next += pace;
            while Instant::now() < next {
                std::hint::spin_loop();
            }
        }
    }
    let line = sink.expect_with(|l| l.starts_with("result "), "result");
    sink.finish();
    bridge_a.finish();
    bridge_b.finish();
    drop(publisher);
    Measured::parse(&line)
}

/// The same over plain zenoh: put in this process, subscriber callback in another.
fn plain(size: usize, n: u64, pace: Duration) -> (u64, [u64; 4], Duration) {
    let port = free_port();
    let key = format!("ipc-zenoh-bench/plain/{port}");
    let session =
        zenoh::open(Bridge::peer_config(&[&endpoint(port)], &[]).unwrap()).wait().unwrap();
    let publisher = session
        .declare_publisher(key.clone())
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .wait()
        .unwrap();
    let mut sink = Proc::spawn(
        BENCH,
        "zsink",
        "plain",
        &[("COUNT", n.to_string()), ("KEY", key), ("CONNECT", endpoint(port))],
    );
    sink.expect("ready");
    assert!(support::wait_until(Duration::from_secs(60), || {
        publisher.matching_status().wait().unwrap().matching()
    }));
    let mut buf = vec![0xa5u8; 16 + size];
    let mut next = Instant::now();
    for seq in 1..=n {
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        buf[8..16].copy_from_slice(&ipc_runtime::timestamp().to_le_bytes());
        publisher.put(buf.clone()).wait().unwrap();
        if !pace.is_zero() {
            next += pace;
            while Instant::now() < next {
                std::hint::spin_loop();
            }
        }
    }
    let line = sink.expect_with(|l| l.starts_with("result "), "result");
    sink.finish();
    drop(publisher);
    session.close().wait().unwrap();
    Measured::parse(&line)
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

fn main() {
    if let Some(r) = support::role() {
        return role(&r);
    }
    let quick = std::env::args().any(|a| a == "--quick");
    ipc_runtime::domain::set_current(&unique_domain("bench-a")).unwrap();
    let scale = if quick { 10 } else { 1 };
    println!("| payload | path | p50 µs | p99 µs | p99.9 µs | max µs | msgs/s | MB/s |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for (size, lat_n, pace, tp_n) in [
        (8usize, 5000u64, Duration::from_micros(200), 50_000u64),
        (64 * 1024, 2000, Duration::from_millis(1), 5000),
    ] {
        let (lat_n, tp_n) = (lat_n / scale, tp_n / scale);
        let row = |path: &str, f: Run| {
            let (_, q, _) = f(size, lat_n, pace);
            let (count, _, span) = f(size, tp_n, Duration::ZERO);
            let rate = (count - 1) as f64 / span.as_secs_f64();
            println!(
                "| {size} B | {path} | {} | {} | {} | {} | {:.0} | {:.1} |",
                us(q[0]),
                us(q[1]),
                us(q[2]),
                us(q[3]),
                rate,
                rate * size as f64 / 1e6
            );
            (q[0], rate)
        };
        let (plain_p50, plain_rate) = row("plain zenoh", plain);
        let (bridge_p50, bridge_rate) = row("bridged", bridged);
        ratios.push((size, bridge_p50 as f64 / plain_p50 as f64, bridge_rate / plain_rate));
    }
    println!();
    for (size, lat, tp) in ratios {
        println!(
            "{size} B: bridged p50 = {lat:.2} x plain (target <= 1.3), throughput = {tp:.2} x plain (target >= 0.7)"
        );
    }
}
