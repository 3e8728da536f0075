//! Wake-up latency through the ways of waiting: plain blocking `receive_timeout`, a `WaitSet`
//! with 1 and with 16 attached subscribers, and `receive_async` on a tokio current-thread
//! runtime; all with the default (futex) backend.
//!
//! Two measurements per way of waiting:
//!
//! * **wake-up** (`wake/…`, the headline): the peer is *asleep* in the way measured when the
//!   message comes. The parent pauses [`GAP`] (so the peer is surely asleep), takes
//!   `ipc_runtime::timestamp()`, publishes it; the peer, woken, takes the time again and
//!   sends the difference back (the parent waits for it with a plain blocking receive, then
//!   pauses again). One-way, from just before `publish` to the woken receiver holding the
//!   sample.
//! * **ping-pong** (`wake-pp/…`): a `u64` back and forth, both sides waiting the same way
//!   (one-way = round trip / 2). The reply often arrives while the receiver is still getting
//!   ready to sleep, so this measures that preparation more than a wake-up: for a WaitSet,
//!   registering with every source and the kernel's setup of a `futex_waitv` on every word.
//!
//! With a WaitSet of 16, the set holds the subscriber that gets the message and 15 others,
//! each connected to an idle publisher of the same process (so the set sleeps on 32 words:
//! every subscriber's topic word and its publisher's word). Async: a current-thread runtime
//! awaits `receive_async`, woken by the process's async waiter thread. The blocking case is
//! measured by the same code, so the ratios compare like with like.

use std::time::Instant;

use hdrhistogram::Histogram;
use ipc_runtime::prelude::*;

use crate::Result;
use crate::ours::TIMEOUT;
use crate::peer::{Args, Launcher, ready};

/// The value that ends a run.
const STOP: u64 = u64::MAX;
/// Pause before each wake-up measurement: the receiver is asleep by then.
pub const GAP: std::time::Duration = std::time::Duration::from_micros(200);
/// Delivery-queue depth (one message is in flight at a time).
const CAPACITY: u32 = 4;

/// How both sides wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WakeMode {
    /// `receive_timeout`.
    Blocking,
    /// A `WaitSet` with this many attached subscribers.
    WaitSet(u32),
    /// `receive_async` on a current-thread tokio runtime.
    Async,
}

impl WakeMode {
    /// Every mode, in the order a round runs them.
    pub const ALL: [WakeMode; 4] =
        [WakeMode::Blocking, WakeMode::WaitSet(1), WakeMode::WaitSet(16), WakeMode::Async];

    /// Short machine name.
    pub fn key(self) -> String {
        match self {
            WakeMode::Blocking => "blocking".into(),
            WakeMode::WaitSet(n) => format!("waitset-{n}"),
            WakeMode::Async => "async".into(),
        }
    }

    fn parse(key: &str) -> Result<WakeMode> {
        match key {
            "blocking" => Ok(WakeMode::Blocking),
            "async" => Ok(WakeMode::Async),
            _ => match key.strip_prefix("waitset-") {
                Some(n) => Ok(WakeMode::WaitSet(n.parse()?)),
                None => Err(format!("unknown wake mode {key}").into()),
            },
        }
    }

    /// Human name.
    pub fn label(self) -> String {
        match self {
            WakeMode::Blocking => "blocking receive_timeout".into(),
            WakeMode::WaitSet(n) => format!("WaitSet with {n} subscriber(s)"),
            WakeMode::Async => "receive_async (tokio current-thread)".into(),
        }
    }
}

fn publisher(topic: &str) -> Result<Publisher<u64>> {
    Ok(Publisher::<u64>::builder(topic)
        .max_subscribers(1)
        .subscriber_capacity(CAPACITY)
        .create()?)
}

fn subscriber(topic: &str) -> Result<Subscriber<u64>> {
    Ok(Subscriber::<u64>::builder(topic)
        .max_subscribers(1)
        .subscriber_capacity(CAPACITY)
        .create()?)
}

/// One side's way of waiting for the next value on `sub`.
struct Waiter<'a> {
    sub: &'a Subscriber<u64>,
    set: Option<WaitSet<'a>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl<'a> Waiter<'a> {
    fn new(mode: WakeMode, sub: &'a Subscriber<u64>, idle: &'a [Subscriber<u64>]) -> Result<Self> {
        let set = match mode {
            WakeMode::WaitSet(_) => Some(WaitSet::new()),
            _ => None,
        };
        let runtime = match mode {
            WakeMode::Async => {
                Some(tokio::runtime::Builder::new_current_thread().enable_time().build()?)
            }
            _ => None,
        };
        let waiter = Waiter { sub, set, runtime };
        if let Some(set) = &waiter.set {
            // Never detached: the set goes with the waiter.
            std::mem::forget(set.attach(sub));
            for s in idle {
                std::mem::forget(set.attach(s));
            }
        }
        Ok(waiter)
    }

    fn next(&self) -> Result<u64> {
        if let Some(set) = &self.set {
            loop {
                if let Some(sample) = self.sub.try_receive()? {
                    return Ok(*sample);
                }
                if set.wait_timeout(TIMEOUT)?.is_empty() {
                    return Err(format!("nothing arrived on `{}`", self.sub.topic()).into());
                }
            }
        }
        if let Some(runtime) = &self.runtime {
            let sample = runtime
                .block_on(async { tokio::time::timeout(TIMEOUT, self.sub.receive_async()).await });
            return match sample {
                Ok(sample) => Ok(*sample?),
                Err(_) => Err(format!("nothing arrived on `{}`", self.sub.topic()).into()),
            };
        }
        let sample = self.sub.receive_timeout(TIMEOUT)?;
        Ok(*sample.ok_or_else(|| format!("nothing arrived on `{}`", self.sub.topic()))?)
    }
}

/// Idle publishers and their subscribers.
type Idle = (Vec<Publisher<u64>>, Vec<Subscriber<u64>>);

/// Idle subscribers for a WaitSet of `mode` (all but the one that gets messages), each
/// connected to an idle publisher of this process.
fn idle(mode: WakeMode, prefix: &str) -> Result<Idle> {
    let n = match mode {
        WakeMode::WaitSet(n) => n.saturating_sub(1),
        _ => 0,
    };
    let mut pubs = Vec::new();
    let mut subs = Vec::new();
    for k in 0..n {
        let topic = format!("{prefix}.idle{k}");
        subs.push(subscriber(&topic)?);
        pubs.push(publisher(&topic)?);
    }
    for s in &subs {
        // Connects the publisher (a new publisher is noticed on the first receive).
        let _ = s.try_receive()?;
    }
    Ok((pubs, subs))
}

/// One chunk in `mode`: `warmup` untimed messages, then `iterations` recorded; wake-ups
/// (`oneway`) or ping-pong.
pub fn run(
    launcher: &Launcher,
    mode: WakeMode,
    oneway: bool,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let name = format!("wake{}.{}.r{round}", if oneway { "" } else { "pp" }, mode.key());
    let (ping, pong) = (format!("{name}.ping"), format!("{name}.pong"));
    let out = publisher(&ping)?;
    let back = subscriber(&pong)?;
    let (_idle_pubs, idle_subs) = idle(mode, &format!("{name}.parent"))?;
    let peer = launcher.spawn(
        0,
        "wake",
        &[
            ("mode", mode.key()),
            ("oneway", oneway.to_string()),
            ("ping", ping),
            ("pong", pong.clone()),
        ],
    )?;
    let deadline = Instant::now() + TIMEOUT;
    while out.subscriber_count() < 1 {
        if Instant::now() >= deadline {
            return Err("the wake peer did not connect".into());
        }
        std::thread::yield_now();
    }
    // Wake-ups: only the peer waits the way measured.
    let waiter = Waiter::new(if oneway { WakeMode::Blocking } else { mode }, &back, &idle_subs)?;
    for i in 0..warmup + iterations {
        if oneway {
            std::thread::sleep(GAP);
            let sent = ipc_runtime::timestamp();
            out.publish(sent as u64)?;
            let latency = waiter.next()?;
            if i >= warmup {
                hist.saturating_record(latency.max(1));
            }
            continue;
        }
        let seq = i + 1;
        let start = Instant::now();
        out.publish(seq)?;
        let got = waiter.next()?;
        let rtt = start.elapsed();
        if got != seq {
            return Err(format!("wake {}: pong {got} for ping {seq}", mode.key()).into());
        }
        if i >= warmup {
            hist.saturating_record((rtt.as_nanos() as u64 / 2).max(1));
        }
    }
    out.publish(STOP)?;
    if waiter.next()? != STOP {
        return Err("the wake peer did not stop".into());
    }
    // The peer stays until our subscriber leaves.
    drop(waiter);
    drop(idle_subs);
    drop(back);
    peer.finish()
}

/// The peer: echoes every value back, waiting in `mode`.
pub fn peer(args: &Args) -> Result<()> {
    let mode = WakeMode::parse(args.get("mode")?)?;
    let oneway: bool = args.parse_of("oneway")?;
    let ping = args.get("ping")?;
    let sub = subscriber(ping)?;
    let back = publisher(args.get("pong")?)?;
    let (_idle_pubs, idle_subs) = idle(mode, &format!("{ping}.peer"))?;
    let waiter = Waiter::new(mode, &sub, &idle_subs)?;
    ready()?;
    loop {
        let value = waiter.next()?;
        if value == STOP {
            back.publish(value)?;
            break;
        }
        if oneway {
            // How long from just before `publish` to holding the sample here.
            let now = ipc_runtime::timestamp();
            back.publish(now.saturating_sub(value as i64).max(0) as u64)?;
        } else {
            back.publish(value)?;
        }
    }
    // Until the parent has the stop back (its subscriber leaves when it is done).
    let deadline = Instant::now() + TIMEOUT;
    while back.subscriber_count() > 0 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    Ok(())
}
