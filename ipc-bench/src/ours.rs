//! The framework's side: ping-pong, fan-out and throughput over `ipc-runtime` publish/subscribe.
//!
//! * **Ping-pong** (one-way = round trip / 2): the parent publishes message `seq` on topic
//!   `…ping`; the echo peer receives it, reads its sequence number and last byte, and publishes
//!   an [`Ack`] on `…pong`; the parent's clock stops when it holds the ack. Busy-poll: both
//!   sides loop on `try_receive` (with the default futex backend nobody registers as a sleeper,
//!   so `publish` makes no system call). Blocking: both sides sleep in `receive_timeout` (the
//!   default futex backend; `receive` plus a deadline).
//! * **Fan-out** 1 → N (blocking): N echo peers subscribe to one ping topic and each publishes
//!   its `Ack` (with the time it received the ping) on a pong topic with N publishers. The
//!   latency of a ping is the *last* receiver's receive time minus the parent's time just
//!   before `publish` (`ipc_runtime::timestamp`, comparable across processes). The next ping
//!   goes out after every ack is back, so nothing queues.
//! * **Throughput** 1 → 1: the parent publishes as fast as it can with `Overflow::Block` (so
//!   nothing is dropped); the peer receives (busy-poll or blocking) and says `done` on stdout
//!   when it has them all. For 64 KiB every message is written in full into its loaned slot
//!   inside the clock: a stream has no "outside".

use std::hint::black_box;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ipc_runtime::prelude::*;

use crate::Result;
use crate::messages::{Ack, Fixed, Payload, PayloadKind, STOP, with_payload};
use crate::peer::{Args, Launcher, ready, say};

/// How long any single wait may take before the run is declared broken.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Delivery-queue depth of the latency topics (one message is in flight at a time).
const CAPACITY: u32 = 4;
/// Delivery-queue depth of the throughput topic.
const STREAM_CAPACITY: u32 = 64;

/// How a receiver waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `try_receive` in a loop.
    Busy,
    /// `receive_timeout`: sleeps on the futex.
    Blocking,
}

impl Mode {
    /// Short machine name.
    pub fn key(self) -> &'static str {
        match self {
            Mode::Busy => "busy",
            Mode::Blocking => "blocking",
        }
    }

    /// Parses [`key`](Self::key)'s output.
    pub fn parse(key: &str) -> Result<Mode> {
        match key {
            "busy" => Ok(Mode::Busy),
            "blocking" => Ok(Mode::Blocking),
            other => Err(format!("unknown mode {other}").into()),
        }
    }

    /// Human name.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Busy => "busy-poll",
            Mode::Blocking => "blocking",
        }
    }
}

/// Waits for the next message in `mode`, failing after [`TIMEOUT`].
#[inline]
pub fn recv<M: ShmMessage>(subscriber: &Subscriber<M>, mode: Mode) -> Result<Sample<'_, M>> {
    match mode {
        Mode::Busy => {
            // The clock is read only every 4096 empty polls, never on the fast path.
            let mut deadline = None;
            let mut polls = 0u32;
            loop {
                if let Some(sample) = subscriber.try_receive()? {
                    return Ok(sample);
                }
                polls = polls.wrapping_add(1);
                if polls.is_multiple_of(4096) {
                    let now = Instant::now();
                    if now >= *deadline.get_or_insert(now + TIMEOUT) {
                        return Err(timed_out(subscriber.topic()));
                    }
                }
                std::hint::spin_loop();
            }
        }
        Mode::Blocking => {
            subscriber.receive_timeout(TIMEOUT)?.ok_or_else(|| timed_out(subscriber.topic()))
        }
    }
}

fn timed_out(topic: &str) -> crate::Error {
    format!("nothing arrived on `{topic}` within {TIMEOUT:?}").into()
}

/// Waits (yielding, with a deadline) until `publisher` has `n` subscribers connected.
fn wait_connected<M: ShmMessage + Send>(publisher: &Publisher<M>, n: usize) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while publisher.subscriber_count() < n {
        if Instant::now() >= deadline {
            return Err(format!("subscribers did not connect to `{}`", publisher.topic()).into());
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// Waits (yielding, with a deadline) until every sample `publisher` sent is back, so that it can
/// be dropped without lingering and the process can exit leaving nothing behind.
fn wait_returned<M: ShmMessage + Send>(publisher: &Publisher<M>) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        publisher.cleanup()?;
        if publisher.samples_in_use() == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("samples of `{}` did not come back", publisher.topic()).into());
        }
        std::thread::yield_now();
    }
}

fn ping_publisher<M: ShmMessage + Send>(topic: &str, subscribers: u32) -> Result<Publisher<M>> {
    Ok(Publisher::<M>::builder(topic)
        .max_subscribers(subscribers)
        .subscriber_capacity(CAPACITY)
        .create()?)
}

fn ping_subscriber<M: ShmMessage>(topic: &str, subscribers: u32) -> Result<Subscriber<M>> {
    Ok(Subscriber::<M>::builder(topic)
        .max_subscribers(subscribers)
        .subscriber_capacity(CAPACITY)
        .create()?)
}

fn ack_publisher(topic: &str, publishers: u32) -> Result<Publisher<Ack>> {
    Ok(Publisher::<Ack>::builder(topic)
        .max_publishers(publishers)
        .max_subscribers(1)
        .subscriber_capacity(CAPACITY)
        .create()?)
}

fn ack_subscriber(topic: &str, publishers: u32) -> Result<Subscriber<Ack>> {
    Ok(Subscriber::<Ack>::builder(topic)
        .max_publishers(publishers)
        .max_subscribers(1)
        .subscriber_capacity(CAPACITY)
        .create()?)
}

/// Sends the stop message and collects the `n` acks for it.
fn stop<M: Payload>(
    publisher: &Publisher<M>,
    acks: &Subscriber<Ack>,
    source: &M::Source,
    n: usize,
) -> Result<()> {
    M::prepare(publisher, STOP, source)?.send(publisher)?;
    let mut stopped = 0;
    while stopped < n {
        if recv(acks, Mode::Blocking)?.seq == STOP {
            stopped += 1;
        }
    }
    wait_returned(publisher)
}

/// One chunk of ping-pong with payload `kind` in `mode`: `warmup` untimed round trips, then
/// `iterations` recorded ones.
pub fn pingpong(
    launcher: &Launcher,
    kind: PayloadKind,
    mode: Mode,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    with_payload!(kind, pingpong_typed(launcher, kind, mode, round, warmup, iterations, hist))
}

fn pingpong_typed<M: Payload>(
    launcher: &Launcher,
    kind: PayloadKind,
    mode: Mode,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let name = format!("pp.{}.{}.r{round}", kind.key(), mode.key());
    let (ping, pong) = (format!("{name}.ping"), format!("{name}.pong"));
    let publisher = ping_publisher::<M>(&ping, 1)?;
    let acks = ack_subscriber(&pong, 1)?;
    let peer = launcher.spawn(
        0,
        "echo",
        &[
            ("payload", kind.key()),
            ("mode", mode.key().to_owned()),
            ("ping", ping),
            ("pong", pong),
            ("fanout", "1".to_owned()),
        ],
    )?;
    wait_connected(&publisher, 1)?;
    let source = M::source(kind);
    for i in 0..warmup + iterations {
        let seq = i + 1;
        let message = M::prepare(&publisher, seq, &source)?;
        let start = Instant::now();
        message.send(&publisher)?;
        let ack = recv(&acks, mode)?;
        let rtt = start.elapsed();
        if ack.seq != seq {
            return Err(format!("ack {} for ping {seq}", ack.seq).into());
        }
        drop(ack);
        if i >= warmup {
            hist.saturating_record((rtt.as_nanos() as u64 / 2).max(1));
        }
    }
    stop(&publisher, &acks, &source, 1)?;
    peer.finish()
}

/// One chunk of fan-out to `n` blocking subscribers: records the latency to the last receiver
/// in `hist`, and how long the `publish` call itself took in `publish_hist` (it wakes every
/// sleeping subscriber).
pub fn fanout(
    launcher: &Launcher,
    n: u32,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
    publish_hist: &mut Histogram<u64>,
) -> Result<()> {
    type M = Fixed<8>;
    let name = format!("fan{n}.r{round}");
    let (ping, pong) = (format!("{name}.ping"), format!("{name}.pong"));
    let publisher = ping_publisher::<M>(&ping, n)?;
    let acks = ack_subscriber(&pong, n)?;
    let mut peers = Vec::new();
    for k in 0..n {
        peers.push(launcher.spawn(
            k as usize,
            "echo",
            &[
                ("payload", PayloadKind::Fixed(8).key()),
                ("mode", Mode::Blocking.key().to_owned()),
                ("ping", ping.clone()),
                ("pong", pong.clone()),
                ("fanout", n.to_string()),
            ],
        )?);
    }
    wait_connected(&publisher, n as usize)?;
    for i in 0..warmup + iterations {
        let seq = i + 1;
        let message = M::prepare(&publisher, seq, &())?;
        let sent = ipc_runtime::timestamp();
        message.send(&publisher)?;
        let published = ipc_runtime::timestamp();
        let mut last = i64::MIN;
        for _ in 0..n {
            let ack = recv(&acks, Mode::Blocking)?;
            if ack.seq != seq {
                return Err(format!("ack {} for ping {seq}", ack.seq).into());
            }
            last = last.max(ack.received);
        }
        if i >= warmup {
            hist.saturating_record((last - sent).max(1) as u64);
            publish_hist.saturating_record((published - sent).max(1) as u64);
        }
    }
    stop(&publisher, &acks, &(), n as usize)?;
    for peer in peers {
        peer.finish()?;
    }
    Ok(())
}

/// Messages per timed batch of [`in_process`].
pub const IN_PROCESS_BATCH: u64 = 100;

/// Diagnostic: the software cost of one message — publish, `try_receive`, drop — with publisher
/// and subscriber in this thread, so no cache line crosses cores. The clock is read around
/// batches of [`IN_PROCESS_BATCH`] messages, not around each one (a clock read costs about as
/// much as the message), and each batch records its time / [`IN_PROCESS_BATCH`]: `warmup` and
/// `iterations` count batches, and the percentiles are of the per-message cost within a batch.
pub fn in_process(
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    type M = Fixed<8>;
    let topic = format!("inproc.r{round}");
    let publisher = ping_publisher::<M>(&topic, 1)?;
    let subscriber = ping_subscriber::<M>(&topic, 1)?;
    wait_connected(&publisher, 1)?;
    let mut seq = 0;
    for i in 0..warmup + iterations {
        let start = Instant::now();
        for _ in 0..IN_PROCESS_BATCH {
            seq += 1;
            M::prepare(&publisher, seq, &())?.send(&publisher)?;
            let sample =
                subscriber.try_receive()?.ok_or("in-process: the message did not arrive")?;
            black_box(sample.last_byte());
            drop(sample);
        }
        let elapsed = start.elapsed();
        if i >= warmup {
            hist.saturating_record((elapsed.as_nanos() as u64 / IN_PROCESS_BATCH).max(1));
        }
    }
    wait_returned(&publisher)
}

/// The echo peer of ping-pong and fan-out.
pub fn echo_peer(args: &Args) -> Result<()> {
    let kind = PayloadKind::parse(args.get("payload")?).ok_or("bad payload")?;
    with_payload!(kind, echo_typed(kind, args))
}

fn echo_typed<M: Payload>(kind: PayloadKind, args: &Args) -> Result<()> {
    let mode = Mode::parse(args.get("mode")?)?;
    let fanout: u32 = args.parse_of("fanout")?;
    let pings = ping_subscriber::<M>(args.get("ping")?, fanout)?;
    let acks = ack_publisher(args.get("pong")?, fanout)?;
    ready()?;
    loop {
        let ping = recv(&pings, mode)?;
        let received = ipc_runtime::timestamp();
        let seq = ping.seq();
        if seq != STOP && ping.payload_len() != kind.bytes() {
            return Err(format!("ping {seq} has {} bytes", ping.payload_len()).into());
        }
        black_box(ping.last_byte());
        acks.publish(Ack { seq, received })?;
        drop(ping);
        if seq == STOP {
            break;
        }
    }
    wait_returned(&acks)
}

/// Publishes `warmup` then `messages` messages as fast as `Overflow::Block` lets it; returns the
/// time from the first timed publish until the peer has received the last one.
pub fn throughput(
    launcher: &Launcher,
    kind: PayloadKind,
    mode: Mode,
    round: u32,
    warmup: u64,
    messages: u64,
) -> Result<Duration> {
    with_payload!(kind, throughput_typed(launcher, kind, mode, round, warmup, messages))
}

fn stream_options<M, B>(
    builder: ipc_runtime::pubsub::PublisherBuilder<M, B>,
) -> ipc_runtime::pubsub::PublisherBuilder<M, B> {
    builder.overflow(Overflow::Block).max_subscribers(1).subscriber_capacity(STREAM_CAPACITY)
}

fn throughput_typed<M: Payload>(
    launcher: &Launcher,
    kind: PayloadKind,
    mode: Mode,
    round: u32,
    warmup: u64,
    messages: u64,
) -> Result<Duration> {
    let topic = format!("tp.{}.{}.r{round}", kind.key(), mode.key());
    let publisher = stream_options(Publisher::<M>::builder(&topic)).create()?;
    let mut peer = launcher.spawn(
        0,
        "stream",
        &[
            ("payload", kind.key()),
            ("mode", mode.key().to_owned()),
            ("topic", topic),
            ("warmup", warmup.to_string()),
            ("messages", messages.to_string()),
        ],
    )?;
    wait_connected(&publisher, 1)?;
    let source = M::source(kind);
    for seq in 1..=warmup {
        M::prepare(&publisher, seq, &source)?.send(&publisher)?;
    }
    expect_line(&mut peer, "warm")?;
    let start = Instant::now();
    for seq in warmup + 1..=warmup + messages {
        M::prepare(&publisher, seq, &source)?.send(&publisher)?;
    }
    expect_line(&mut peer, "done")?;
    let elapsed = start.elapsed();
    wait_returned(&publisher)?;
    peer.finish()?;
    Ok(elapsed)
}

/// Reads the peer's next line and checks it is `expected`.
pub fn expect_line(peer: &mut crate::peer::Peer, expected: &str) -> Result<()> {
    let line = peer.read_line()?;
    if line != expected {
        return Err(format!("peer said {line:?}, expected {expected:?}").into());
    }
    Ok(())
}

/// The receiving peer of the throughput test.
pub fn stream_peer(args: &Args) -> Result<()> {
    let kind = PayloadKind::parse(args.get("payload")?).ok_or("bad payload")?;
    with_payload!(kind, stream_typed(args))
}

fn stream_typed<M: Payload>(args: &Args) -> Result<()> {
    let mode = Mode::parse(args.get("mode")?)?;
    let warmup: u64 = args.parse_of("warmup")?;
    let messages: u64 = args.parse_of("messages")?;
    let builder = Subscriber::<M>::builder(args.get("topic")?);
    let subscriber = builder
        .overflow(Overflow::Block)
        .max_subscribers(1)
        .subscriber_capacity(STREAM_CAPACITY)
        .create()?;
    ready()?;
    for i in 0..warmup + messages {
        if i == warmup {
            say("warm")?;
        }
        let sample = recv(&subscriber, mode)?;
        if sample.seq() != i + 1 {
            return Err(format!("got message {} where {} was due", sample.seq(), i + 1).into());
        }
        black_box(sample.last_byte());
    }
    if messages == 0 {
        say("warm")?;
    }
    say("done")
}
