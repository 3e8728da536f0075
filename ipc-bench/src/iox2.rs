//! The comparison: [iceoryx2](https://crates.io/crates/iceoryx2) 0.9 (cargo feature `iceoryx2`),
//! measured with the same harness as [`ours`](crate::ours) — same peers, rounds, warm-up,
//! iteration counts and histograms.
//!
//! * **Ping-pong** (one-way = round trip / 2) over two publish-subscribe services, `…ping`
//!   (`[u8; 8]` or `[u8; 65536]`) and `…pong` (a 16-byte [`Ack`]: sequence number and receive
//!   time, what our echo peer sends back). Busy-poll: both sides loop on `Subscriber::receive`
//!   until it yields a sample. Blocking: every direction also has an event service of the same
//!   name; the sender `send`s and then `Notifier::notify`s, the receiver sleeps in
//!   `Listener::blocking_wait_one` and then takes the sample.
//! * **Throughput** 1 → 1, 8 B, busy-poll receiver: like ours, the parent sends as fast as the
//!   publisher lets it, nothing is dropped (`enable_safe_overflow(false)` with the publisher's
//!   `RetryUntilDelivered` back-pressure, the counterpart of our `Overflow::Block`), the peer
//!   checks every sequence number and says `warm` and `done` on stdout.
//!
//! Sends use the zero-copy loan API. What is inside the clock matches ours exactly: an 8-byte
//! message is loaned, written (`loan_uninit` → `write_payload`) and `send` inside the clock, as
//! our 8-byte `publish` by value takes a slot and moves the bytes inside it; a 64 KiB message is
//! loaned and filled in place before the clock starts, so the clock covers `send` only, as ours
//! covers `SampleMut::publish` only. Receivers read the sequence number and the last byte.
//!
//! Queue depths match ours: subscriber buffer 4 for ping-pong (one message is in flight), 64
//! for throughput; no history; one publisher and one subscriber per service. Everything else is
//! iceoryx2's default `ipc::Service` configuration — including its event mechanism (a Unix
//! datagram socket per listener) — except where its files go: the root directory is
//! `$TMPDIR/<domain>.iox2/` (removed by the parent at the end of the run) and the file-name
//! prefix is `<domain>.`, so `/dev/shm` entries carry the run's domain, parallel runs never meet,
//! and the harness's leftover check sees anything iceoryx2 left. Service names are
//! `<domain>/iceoryx2/<case>.r<round>.ping` (and `.pong`). Nodes are created without signal
//! handling, so Ctrl-C still ends the run.
//!
//! Every wait fails after [`TIMEOUT`]: busy-poll loops check a deadline every 4096 empty polls; a
//! receiver blocked in `blocking_wait_one` (which has no deadline) is woken by a [`Watchdog`]
//! thread that notifies its event service after [`TIMEOUT`] without a message.

use std::hint::black_box;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::sample::Sample;
use iceoryx2::sample_mut::SampleMut;
use iceoryx2::service::port_factory::{event, publish_subscribe};

use crate::Result;
use crate::messages::{FILL, PayloadKind, STOP};
use crate::ours::{Mode, TIMEOUT, expect_line};
use crate::peer::{Args, Launcher, ready, say};

/// iceoryx2's default inter-process service flavour.
type Svc = ipc::Service;

/// Subscriber buffer of the ping-pong services (ours: `subscriber_capacity(4)`).
const CAPACITY: usize = 4;
/// Subscriber buffer of the throughput service (ours: `subscriber_capacity(64)`).
const STREAM_CAPACITY: usize = 64;
/// How often the [`Watchdog`] looks for progress.
const WATCHDOG_TICK: Duration = Duration::from_millis(500);

/// The reply to every ping: the same 16 bytes as our `Ack`.
#[derive(Debug, Clone, Copy, ZeroCopySend)]
#[repr(C)]
pub struct Ack {
    /// The sequence number answered.
    pub seq: u64,
    /// When the ping was received (`ipc_runtime::timestamp()`, nanoseconds).
    pub received: i64,
}

/// The run's iceoryx2 root directory: `$TMPDIR/<domain>.iox2`.
pub fn root_dir(domain: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{domain}.iox2"))
}

/// iceoryx2's default configuration with the run's root directory and file-name prefix.
///
/// Fails if the domain is too long for iceoryx2's Unix socket paths (a listener's is
/// `<root>/<prefix><u128 id>.event`, and such a path has at most 107 bytes).
fn config(domain: &str) -> Result<Config> {
    const SOCKET_PATH_MAX: usize = 107;
    let socket_path = root_dir(domain).as_os_str().len() + 1 + domain.len() + 1 + 39 + 6;
    if socket_path > SOCKET_PATH_MAX {
        return Err(format!(
            "iceoryx2: domain `{domain}` too long for iceoryx2's socket paths in {} ({socket_path} \
             of at most {SOCKET_PATH_MAX} bytes): use a shorter --domain",
            std::env::temp_dir().display()
        )
        .into());
    }
    let mut config = Config::default();
    let mut root = root_dir(domain).into_os_string();
    root.push("/");
    config.global.set_root_path(&Path::new(root.as_bytes())?);
    config.global.prefix = FileName::new(format!("{domain}.").as_bytes())?;
    Ok(config)
}

/// A node of this run, named `<domain>.<role>`.
fn node(domain: &str, role: &str) -> Result<Node<Svc>> {
    set_log_level_from_env_or(LogLevel::Warn);
    Ok(NodeBuilder::new()
        .name(&NodeName::new(&format!("{domain}.{role}"))?)
        .config(&config(domain)?)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<Svc>()?)
}

fn service_name(domain: &str, name: &str) -> Result<ServiceName> {
    Ok(ServiceName::new(&format!("{domain}/iceoryx2/{name}"))?)
}

/// End-of-run cleanup, once every iceoryx2 process of the run has ended (also after a failure).
/// Nodes and services remove their own files when dropped; a peer killed on the error path
/// cannot, so the resources of dead nodes are removed first (iceoryx2's own dead-node cleanup).
/// iceoryx2 also keeps one segment per configuration for ever by design (the node counter,
/// `/dev/shm/<prefix><hash>_node.<version>.global_mgmt`, never owned by a node): with the run's
/// prefix it is the run's, and is removed here. Then the root directory goes if only (empty)
/// directories are left in it; anything else stays for the leftover check to report.
pub fn cleanup(domain: &str) {
    if let Ok(config) = config(domain) {
        Node::<Svc>::try_cleanup_dead_nodes(&config);
    }
    let prefix = format!("{domain}.");
    for entry in std::fs::read_dir("/dev/shm").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.contains("_node.") && name.ends_with(".global_mgmt") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    fn remove_empty(dir: &std::path::Path) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        let mut empty = true;
        for entry in entries.flatten() {
            let path = entry.path();
            empty &= path.is_dir() && !path.is_symlink() && remove_empty(&path);
        }
        empty && std::fs::remove_dir(dir).is_ok()
    }
    remove_empty(&root_dir(domain));
}

/// A payload of the comparison: `[u8; N]` with the sequence number in its first 8 bytes.
pub trait Payload: std::fmt::Debug + ZeroCopySend + Sized + 'static {
    /// Builds message `seq`: outside the clock for large payloads (see the module doc).
    fn prepare(publisher: &Publisher<Svc, Self, ()>, seq: u64) -> Result<Outgoing<Self>>;
    /// The sequence number it carries.
    fn seq(&self) -> u64;
    /// The payload's last byte.
    fn last_byte(&self) -> u8;
}

/// A message ready to go.
pub enum Outgoing<P: Payload> {
    /// Loaned, written and sent inside the clock.
    Value(P),
    /// Already loaned and filled in place: only `send` is left.
    Loaned(SampleMut<Svc, P, ()>),
}

impl<P: Payload> Outgoing<P> {
    /// Sends it: the only part of sending that is inside the clock.
    #[inline]
    fn send(self, publisher: &Publisher<Svc, P, ()>) -> Result<()> {
        match self {
            Outgoing::Value(value) => publisher.loan_uninit()?.write_payload(value).send()?,
            Outgoing::Loaned(sample) => sample.send()?,
        };
        Ok(())
    }
}

impl<const N: usize> Payload for [u8; N] {
    #[inline]
    fn prepare(publisher: &Publisher<Svc, Self, ()>, seq: u64) -> Result<Outgoing<Self>> {
        const { assert!(N >= 8, "a payload carries an 8-byte sequence number") };
        if N <= 64 {
            let mut bytes = [FILL; N];
            bytes[..8].copy_from_slice(&seq.to_le_bytes());
            return Ok(Outgoing::Value(bytes));
        }
        let mut slot = publisher.loan_uninit()?;
        let bytes = slot.payload_mut().as_mut_ptr().cast::<u8>();
        // SAFETY: `bytes` points at the loaned sample's `[u8; N]` (alignment 1), which is ours
        // alone until sent; we write all N bytes, the first 8 of them twice.
        unsafe {
            bytes.write_bytes(FILL, N);
            bytes.cast::<[u8; 8]>().write(seq.to_le_bytes());
        }
        // SAFETY: every byte of the payload was initialised just above, and any byte values are
        // a valid `[u8; N]`.
        Ok(Outgoing::Loaned(unsafe { slot.assume_init() }))
    }

    #[inline]
    fn seq(&self) -> u64 {
        let mut head = [0; 8];
        head.copy_from_slice(&self[..8]);
        u64::from_le_bytes(head)
    }

    #[inline]
    fn last_byte(&self) -> u8 {
        self[N - 1]
    }
}

/// Calls `$f::<P>(args…)` with the iceoryx2 payload type of `$kind`.
macro_rules! with_array {
    ($kind:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $kind {
            PayloadKind::Fixed(8) => $f::<[u8; 8]>($($arg),*),
            PayloadKind::Fixed(65536) => $f::<[u8; 65536]>($($arg),*),
            other => Err(format!("no iceoryx2 payload for {other}").into()),
        }
    };
}

/// How a publish-subscribe service is set up (the side that creates it).
#[derive(Clone, Copy)]
struct Qos {
    /// Subscriber buffer.
    buffer: usize,
    /// Whether a full buffer drops its oldest sample (ping-pong: iceoryx2's default; throughput:
    /// no, the publisher retries until delivered, like our `Overflow::Block`).
    safe_overflow: bool,
}

const PING_PONG: Qos = Qos { buffer: CAPACITY, safe_overflow: true };
const STREAM: Qos = Qos { buffer: STREAM_CAPACITY, safe_overflow: false };

/// Creates (`Some(qos)`, the parent) or opens (`None`, the peer) a publish-subscribe service.
fn pubsub<P: std::fmt::Debug + ZeroCopySend>(
    node: &Node<Svc>,
    name: &ServiceName,
    create: Option<Qos>,
) -> Result<publish_subscribe::PortFactory<Svc, P, ()>> {
    let builder = node.service_builder(name).publish_subscribe::<P>();
    Ok(match create {
        Some(qos) => builder
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(qos.buffer)
            .enable_safe_overflow(qos.safe_overflow)
            .create()?,
        None => builder.open()?,
    })
}

/// Creates or opens the event service of the same name (blocking mode only).
fn events(node: &Node<Svc>, name: &ServiceName, create: bool) -> Result<event::PortFactory<Svc>> {
    let builder = node.service_builder(name).event();
    Ok(if create { builder.create()? } else { builder.open()? })
}

/// The sending end of one direction.
struct Tx<P: Payload> {
    service: publish_subscribe::PortFactory<Svc, P, ()>,
    publisher: Publisher<Svc, P, ()>,
    /// Blocking mode: the notifier and its service (kept for the listener count).
    notifier: Option<(event::PortFactory<Svc>, Notifier<Svc>)>,
}

impl<P: Payload> Tx<P> {
    fn new(node: &Node<Svc>, name: &ServiceName, mode: Mode, create: Option<Qos>) -> Result<Self> {
        let service = pubsub::<P>(node, name, create)?;
        let publisher = service.publisher_builder().create()?;
        let notifier = match mode {
            Mode::Busy => None,
            Mode::Blocking => {
                let events = events(node, name, create.is_some())?;
                let notifier = events.notifier_builder().create()?;
                Some((events, notifier))
            }
        };
        Ok(Tx { service, publisher, notifier })
    }

    /// Sends a prepared message and, when blocking, wakes the receiver.
    #[inline]
    fn send(&self, message: Outgoing<P>) -> Result<()> {
        message.send(&self.publisher)?;
        if let Some((_, notifier)) = &self.notifier {
            notifier.notify()?;
        }
        Ok(())
    }

    /// Waits (yielding, with a deadline) until the receiving side's ports exist.
    fn wait_connected(&self) -> Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let subscribed = self.service.dynamic_config().number_of_subscribers() >= 1;
            let listening = self
                .notifier
                .as_ref()
                .is_none_or(|(events, _)| events.dynamic_config().number_of_listeners() >= 1);
            if subscribed && listening {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("iceoryx2: nobody connected to {}", self.service.name()).into());
            }
            std::thread::yield_now();
        }
    }
}

/// The receiving end of one direction.
struct Rx<P: Payload> {
    subscriber: Subscriber<Svc, P, ()>,
    /// Blocking mode: the listener, its service (kept alive) and the watchdog that wakes it.
    listener: Option<(Listener<Svc>, event::PortFactory<Svc>, Watchdog)>,
    /// Messages received (the watchdog's measure of progress; only this thread writes it).
    received: u64,
}

impl<P: Payload> Rx<P> {
    /// Creates (`Some(qos)`) or opens (`None`) the services, with a subscriber buffer of
    /// `buffer` samples.
    fn new(
        node: &Node<Svc>,
        domain: &str,
        name: &ServiceName,
        mode: Mode,
        create: Option<Qos>,
        buffer: usize,
    ) -> Result<Self> {
        let service = pubsub::<P>(node, name, create)?;
        let subscriber = service.subscriber_builder().buffer_size(buffer).create()?;
        let listener = match mode {
            Mode::Busy => None,
            Mode::Blocking => {
                let events = events(node, name, create.is_some())?;
                let listener = events.listener_builder().create()?;
                Some((listener, events, Watchdog::start(domain, *name)))
            }
        };
        Ok(Rx { subscriber, listener, received: 0 })
    }

    /// Waits for the next sample, failing after [`TIMEOUT`].
    #[inline]
    fn recv(&mut self) -> Result<Sample<Svc, P, ()>> {
        match &self.listener {
            None => {
                // The clock is read only every 4096 empty polls, never on the fast path.
                let mut deadline = None;
                let mut polls = 0u32;
                loop {
                    if let Some(sample) = self.subscriber.receive()? {
                        return Ok(sample);
                    }
                    polls = polls.wrapping_add(1);
                    if polls.is_multiple_of(4096) {
                        let now = Instant::now();
                        if now >= *deadline.get_or_insert(now + TIMEOUT) {
                            return Err(self.timed_out());
                        }
                    }
                    std::hint::spin_loop();
                }
            }
            Some((listener, _, watchdog)) => loop {
                listener.blocking_wait_one()?;
                if let Some(sample) = self.subscriber.receive()? {
                    self.received += 1;
                    watchdog.progress(self.received);
                    return Ok(sample);
                }
                if watchdog.fired() {
                    return Err(self.timed_out());
                }
            },
        }
    }

    fn timed_out(&self) -> crate::Error {
        format!("iceoryx2: nothing arrived within {TIMEOUT:?}").into()
    }
}

/// Wakes a receiver blocked in `Listener::blocking_wait_one` (which has no deadline) when no
/// message arrived for [`TIMEOUT`], by notifying its event service from a node of its own; the
/// receiver then sees [`Watchdog::fired`] and fails. Looks every [`WATCHDOG_TICK`] — never while
/// messages flow faster than that — and is stopped (unparked and joined) on drop.
struct Watchdog {
    state: Arc<WatchState>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct WatchState {
    progress: AtomicU64,
    fired: AtomicBool,
    stop: AtomicBool,
}

impl Watchdog {
    fn start(domain: &str, service: ServiceName) -> Watchdog {
        let state = Arc::new(WatchState::default());
        let shared = Arc::clone(&state);
        let domain = domain.to_owned();
        let thread = std::thread::spawn(move || {
            let (mut seen, mut since) = (0, Instant::now());
            while !shared.stop.load(Ordering::Acquire) {
                std::thread::park_timeout(WATCHDOG_TICK);
                let now = shared.progress.load(Ordering::Relaxed);
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() >= TIMEOUT && !shared.stop.load(Ordering::Acquire) {
                    shared.fired.store(true, Ordering::Release);
                    let poke = || -> Result<()> {
                        let node = node(&domain, "watchdog")?;
                        let events = node.service_builder(&service).event().open()?;
                        events.notifier_builder().create()?.notify()?;
                        Ok(())
                    };
                    if let Err(err) = poke() {
                        eprintln!(
                            "ipc-bench: iceoryx2 watchdog could not wake the receiver: {err}"
                        );
                    }
                    return;
                }
            }
        });
        Watchdog { state, thread: Some(thread) }
    }

    /// Records that `received` messages have arrived (a plain store: one writer).
    #[inline]
    fn progress(&self, received: u64) {
        self.state.progress.store(received, Ordering::Relaxed);
    }

    fn fired(&self) -> bool {
        self.state.fired.load(Ordering::Acquire)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// One chunk of iceoryx2 ping-pong with payload `kind` in `mode`: `warmup` untimed round trips,
/// then `iterations` recorded ones.
pub fn pingpong(
    launcher: &Launcher,
    kind: PayloadKind,
    mode: Mode,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    with_array!(kind, pingpong_typed(launcher, kind, mode, round, warmup, iterations, hist))
}

fn pingpong_typed<P: Payload>(
    launcher: &Launcher,
    kind: PayloadKind,
    mode: Mode,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let domain = &launcher.domain;
    let name = format!("pp.{}.{}.r{round}", kind.key(), mode.key());
    let (ping, pong) = (format!("{name}.ping"), format!("{name}.pong"));
    let node = node(domain, "parent")?;
    let tx = Tx::<P>::new(&node, &service_name(domain, &ping)?, mode, Some(PING_PONG))?;
    let pong_name = service_name(domain, &pong)?;
    let mut acks = Rx::<Ack>::new(&node, domain, &pong_name, mode, Some(PING_PONG), CAPACITY)?;
    let peer = launcher.spawn(
        0,
        "iox2-echo",
        &[("payload", kind.key()), ("mode", mode.key().to_owned()), ("ping", ping), ("pong", pong)],
    )?;
    tx.wait_connected()?;
    for i in 0..warmup + iterations {
        let seq = i + 1;
        let message = P::prepare(&tx.publisher, seq)?;
        let start = Instant::now();
        tx.send(message)?;
        let ack = acks.recv()?;
        let rtt = start.elapsed();
        if ack.seq != seq {
            return Err(format!("iceoryx2: ack {} for ping {seq}", ack.seq).into());
        }
        drop(ack);
        if i >= warmup {
            hist.saturating_record((rtt.as_nanos() as u64 / 2).max(1));
        }
    }
    tx.send(P::prepare(&tx.publisher, STOP)?)?;
    while acks.recv()?.seq != STOP {}
    peer.finish()
}

/// The echo peer of iceoryx2 ping-pong.
pub fn echo_peer(args: &Args) -> Result<()> {
    let kind = PayloadKind::parse(args.get("payload")?).ok_or("bad payload")?;
    with_array!(kind, echo_typed(args))
}

fn echo_typed<P: Payload>(args: &Args) -> Result<()> {
    let mode = Mode::parse(args.get("mode")?)?;
    let domain = ipc_runtime::domain::current();
    let node = node(domain, "echo")?;
    let ping_name = service_name(domain, args.get("ping")?)?;
    let mut pings = Rx::<P>::new(&node, domain, &ping_name, mode, None, CAPACITY)?;
    let acks = Tx::<Ack>::new(&node, &service_name(domain, args.get("pong")?)?, mode, None)?;
    ready()?;
    loop {
        let ping = pings.recv()?;
        let received = ipc_runtime::timestamp();
        let seq = ping.seq();
        black_box(ping.last_byte());
        acks.send(Outgoing::Value(Ack { seq, received }))?;
        drop(ping);
        if seq == STOP {
            return Ok(());
        }
    }
}

impl Payload for Ack {
    fn prepare(_: &Publisher<Svc, Self, ()>, seq: u64) -> Result<Outgoing<Self>> {
        Ok(Outgoing::Value(Ack { seq, received: 0 }))
    }

    fn seq(&self) -> u64 {
        self.seq
    }

    fn last_byte(&self) -> u8 {
        self.received.to_le_bytes()[7]
    }
}

/// iceoryx2 throughput one → one with a busy-poll receiver: sends `warmup` then `messages`
/// messages as fast as the publisher lets it (nothing is dropped); returns the time from the
/// first timed send until the peer has received the last one.
pub fn throughput(
    launcher: &Launcher,
    kind: PayloadKind,
    round: u32,
    warmup: u64,
    messages: u64,
) -> Result<Duration> {
    with_array!(kind, throughput_typed(launcher, kind, round, warmup, messages))
}

fn throughput_typed<P: Payload>(
    launcher: &Launcher,
    kind: PayloadKind,
    round: u32,
    warmup: u64,
    messages: u64,
) -> Result<Duration> {
    let domain = &launcher.domain;
    let topic = format!("tp.{}.busy.r{round}", kind.key());
    let node = node(domain, "parent")?;
    let tx = Tx::<P>::new(&node, &service_name(domain, &topic)?, Mode::Busy, Some(STREAM))?;
    let mut peer = launcher.spawn(
        0,
        "iox2-stream",
        &[
            ("payload", kind.key()),
            ("topic", topic),
            ("warmup", warmup.to_string()),
            ("messages", messages.to_string()),
        ],
    )?;
    tx.wait_connected()?;
    for seq in 1..=warmup {
        tx.send(P::prepare(&tx.publisher, seq)?)?;
    }
    expect_line(&mut peer, "warm")?;
    let start = Instant::now();
    for seq in warmup + 1..=warmup + messages {
        tx.send(P::prepare(&tx.publisher, seq)?)?;
    }
    expect_line(&mut peer, "done")?;
    let elapsed = start.elapsed();
    peer.finish()?;
    Ok(elapsed)
}

/// The receiving peer of iceoryx2 throughput.
pub fn stream_peer(args: &Args) -> Result<()> {
    let kind = PayloadKind::parse(args.get("payload")?).ok_or("bad payload")?;
    with_array!(kind, stream_typed(args))
}

fn stream_typed<P: Payload>(args: &Args) -> Result<()> {
    let warmup: u64 = args.parse_of("warmup")?;
    let messages: u64 = args.parse_of("messages")?;
    let domain = ipc_runtime::domain::current();
    let node = node(domain, "stream")?;
    let topic = service_name(domain, args.get("topic")?)?;
    let mut subscriber = Rx::<P>::new(&node, domain, &topic, Mode::Busy, None, STREAM_CAPACITY)?;
    ready()?;
    for i in 0..warmup + messages {
        if i == warmup {
            say("warm")?;
        }
        let sample = subscriber.recv()?;
        if sample.seq() != i + 1 {
            return Err(
                format!("iceoryx2: got message {} where {} was due", sample.seq(), i + 1).into()
            );
        }
        black_box(sample.last_byte());
    }
    if messages == 0 {
        say("warm")?;
    }
    say("done")
}

/// Waits (busy) for `poll` to yield, failing after [`TIMEOUT`] (the clock is read every 4096
/// empty polls only).
#[inline]
fn spin_until<T>(what: &str, mut poll: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let mut deadline = None;
    let mut polls = 0u32;
    loop {
        if let Some(value) = poll()? {
            return Ok(value);
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(4096) {
            let now = Instant::now();
            if now >= *deadline.get_or_insert(now + TIMEOUT) {
                return Err(format!("iceoryx2: no {what} within {TIMEOUT:?}").into());
            }
        }
        std::hint::spin_loop();
    }
}

/// iceoryx2 request/response round trip, busy-poll (`PendingResponse::receive` and
/// `Server::receive` in loops): an `[u8; 8]` request sent with `send_copy`, an [`Ack`] response
/// sent with `send_copy`, one client and one server, default request/response configuration.
/// Recorded as one-way = round trip / 2, like ours ([`crate::reqres`]).
pub fn reqres(
    launcher: &Launcher,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let domain = &launcher.domain;
    let name = format!("rr.busy.r{round}");
    let node = node(domain, "parent")?;
    let service = node
        .service_builder(&service_name(domain, &name)?)
        .request_response::<[u8; 8], Ack>()
        .max_clients(1)
        .max_servers(1)
        .create()?;
    let client = service.client_builder().create()?;
    let peer = launcher.spawn(0, "iox2-rr-server", &[("service", name)])?;
    // A request sent before the server's port is connected goes nowhere: retry the first one.
    let connect = Instant::now() + TIMEOUT;
    loop {
        let pending = client.send_copy(0u64.to_le_bytes())?;
        let tried = Instant::now() + Duration::from_millis(100);
        let mut answered = false;
        while Instant::now() < tried {
            if pending.receive()?.is_some() {
                answered = true;
                break;
            }
            std::hint::spin_loop();
        }
        if answered {
            break;
        }
        if Instant::now() >= connect {
            return Err("iceoryx2: the request/response server did not answer".into());
        }
    }
    for i in 0..warmup + iterations {
        let seq = i + 1;
        let start = Instant::now();
        let pending = client.send_copy(seq.to_le_bytes())?;
        let ack = spin_until("response", || Ok(pending.receive()?))?;
        let rtt = start.elapsed();
        if ack.seq != seq {
            return Err(format!("iceoryx2: response {} to request {seq}", ack.seq).into());
        }
        drop(ack);
        drop(pending);
        if i >= warmup {
            hist.saturating_record((rtt.as_nanos() as u64 / 2).max(1));
        }
    }
    let pending = client.send_copy(STOP.to_le_bytes())?;
    drop(spin_until("response", || Ok(pending.receive()?))?);
    drop(pending);
    peer.finish()
}

/// The server peer of the iceoryx2 request/response round trip.
pub fn rr_server_peer(args: &Args) -> Result<()> {
    let domain = ipc_runtime::domain::current();
    let node = node(domain, "rr-server")?;
    let service = node
        .service_builder(&service_name(domain, args.get("service")?)?)
        .request_response::<[u8; 8], Ack>()
        .open()?;
    let server = service.server_builder().create()?;
    ready()?;
    loop {
        let request = spin_until("request", || Ok(server.receive()?))?;
        let seq = u64::from_le_bytes(*request);
        let received = ipc_runtime::timestamp();
        request.send_copy(Ack { seq, received })?;
        drop(request);
        if seq == STOP {
            return Ok(());
        }
    }
}
