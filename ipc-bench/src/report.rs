//! Results of a run, and their reports: markdown tables, the targets, JSON.
//!
//! Every latency row is one-way (round trip / 2 for ping-pongs; publish → last receive for
//! fan-out). A ratio is ours / baseline (or ours / iceoryx2) from the same run: below 1 is better
//! for latency, above 1 is better for throughput.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::messages::PayloadKind;
use crate::ours::Mode;

/// What a case measures (also its key in lookups, JSON and the `--only` filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// Our ping-pong with a payload in a receive mode.
    PingPong(PayloadKind, Mode),
    /// Our request/response round trip (`[u8; 8]` request, `Ack` response) in a receive mode,
    /// recorded as one-way = round trip / 2 like the ping-pong.
    ReqRes(Mode),
    /// Our fan-out to this many blocking subscribers.
    FanOut(u32),
    /// Wake-up latency of a receiver asleep this way (one-way, timestamps).
    Wake(crate::wakeup::WakeMode),
    /// Ping-pong of a `u64` with both sides waiting this way.
    WakePingPong(crate::wakeup::WakeMode),
    /// Diagnostic recorded with [`Case::FanOut`]: how long `publish` itself took.
    FanOutPublish(u32),
    /// Diagnostic: publish → `try_receive` → drop of an 8-byte message in one thread, i.e. the
    /// software cost of one message without any cross-core transfer; timed in batches of
    /// [`IN_PROCESS_BATCH`](crate::ours::IN_PROCESS_BATCH) messages, so no clock read per message
    /// is inside the figure (each sample is a batch's time / its size).
    InProcess,
    /// Baseline: raw atomic-flag ping-pong (busy).
    RawAtomic,
    /// Baseline: Unix-domain-socket ping-pong (blocking).
    Uds,
    /// Baseline: pipe ping-pong (blocking).
    Pipe,
    /// Our throughput one → one.
    Throughput(PayloadKind, Mode),
    /// Baseline: Unix-datagram throughput with this message size.
    DgramThroughput(usize),
    /// Comparison (cargo feature `iceoryx2`): iceoryx2 0.9 ping-pong over two publish-subscribe
    /// services, plus an event service per direction when blocking.
    Iox2PingPong(PayloadKind, Mode),
    /// Comparison (cargo feature `iceoryx2`): iceoryx2 0.9 throughput one → one, busy-poll
    /// receiver.
    Iox2Throughput(PayloadKind),
    /// Comparison (cargo feature `iceoryx2`): iceoryx2 0.9 request/response round trip,
    /// busy-poll, `[u8; 8]` request and 16-byte response.
    Iox2ReqRes,
}

impl Case {
    /// Payload sizes of the iceoryx2 ping-pongs (`[u8; N]`).
    pub const ICEORYX2_SIZES: [usize; 2] = [8, 64 << 10];

    /// Machine name, e.g. `busy/fixed-8`, `fanout/16`, `baseline/uds`, `tput/busy/fixed-8`.
    pub fn key(&self) -> String {
        match self {
            Case::PingPong(p, m) => format!("{}/{}", m.key(), p.key()),
            Case::ReqRes(m) => format!("rr/{}", m.key()),
            Case::FanOut(n) => format!("fanout/{n}"),
            Case::Wake(m) => format!("wake/{}", m.key()),
            Case::WakePingPong(m) => format!("wake-pp/{}", m.key()),
            Case::FanOutPublish(n) => format!("fanout-publish/{n}"),
            Case::InProcess => "diag/in-process".into(),
            Case::RawAtomic => "baseline/raw-atomic".into(),
            Case::Uds => "baseline/uds".into(),
            Case::Pipe => "baseline/pipe".into(),
            Case::Throughput(p, m) => format!("tput/{}/{}", m.key(), p.key()),
            Case::DgramThroughput(n) => format!("tput/uds-dgram/{n}"),
            Case::Iox2PingPong(p, m) => format!("iceoryx2/{}/{}", m.key(), p.key()),
            Case::Iox2Throughput(p) => format!("iceoryx2/tput/busy/{}", p.key()),
            Case::Iox2ReqRes => "iceoryx2/rr/busy".into(),
        }
    }

    /// Human name.
    pub fn label(&self) -> String {
        match self {
            Case::PingPong(p, m) => format!("{} {p}", m.label()),
            Case::ReqRes(m) => format!("{} request/response [u8; 8] → 16 B", m.label()),
            Case::FanOut(n) => format!("fan-out 1→{n}, blocking, last receiver"),
            Case::Wake(m) => format!("wake-up of a sleeping {}, u64", m.label()),
            Case::WakePingPong(m) => format!("ping-pong u64, {} both sides", m.label()),
            Case::FanOutPublish(n) => format!("fan-out 1→{n}: time inside publish() (diagnostic)"),
            Case::InProcess => format!(
                "one thread: publish → try_receive → drop, 8 B, per message in batches of {} \
                 (no clock read per message)",
                crate::ours::IN_PROCESS_BATCH
            ),
            Case::RawAtomic => "raw atomic flag (floor)".into(),
            Case::Uds => "Unix socket ping-pong".into(),
            Case::Pipe => "pipe ping-pong".into(),
            Case::Throughput(p, m) => format!("throughput {p}, {} receiver", m.label()),
            Case::DgramThroughput(n) => {
                format!("Unix datagram throughput {}", crate::messages::size_label(*n))
            }
            Case::Iox2PingPong(p, m) => format!("iceoryx2 {} {p}", m.label()),
            Case::Iox2Throughput(p) => format!("iceoryx2 throughput {p}, busy-poll receiver"),
            Case::Iox2ReqRes => "iceoryx2 busy-poll request/response [u8; 8] → 16 B".into(),
        }
    }

    /// Whether the case yields a rate rather than a latency histogram.
    pub fn is_rate(&self) -> bool {
        matches!(self, Case::Throughput(..) | Case::DgramThroughput(_) | Case::Iox2Throughput(_))
    }
}

/// A latency result.
#[derive(Debug)]
pub struct Latency {
    /// The case.
    pub case: Case,
    /// One-way latencies in nanoseconds.
    pub hist: Histogram<u64>,
}

/// A throughput result.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// The case.
    pub case: Case,
    /// Messages timed.
    pub messages: u64,
    /// Time they took.
    pub elapsed: Duration,
}

impl Rate {
    /// Messages per second.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How the run was made.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The run's domain.
    pub domain: String,
    /// `--quick`.
    pub quick: bool,
    /// `--pin`.
    pub pin: Option<Vec<usize>>,
    /// Warm-up round trips per case and round.
    pub warmup: u64,
    /// Recorded round trips per case (all rounds).
    pub iterations: u64,
    /// Rounds (cases interleaved, a fresh peer each time).
    pub rounds: u32,
    /// CPUs online.
    pub cpus: usize,
    /// `/proc/loadavg` before and after.
    pub load: (String, String),
    /// Wall time of the whole run.
    pub wall: Duration,
}

/// Everything measured in one run.
#[derive(Debug)]
pub struct Results {
    /// How.
    pub meta: Meta,
    /// Latency cases, in plan order.
    pub latency: Vec<Latency>,
    /// Throughput cases, in plan order.
    pub rates: Vec<Rate>,
}

/// One row of the summary table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What.
    pub metric: String,
    /// Our figure (ns, or messages/s for throughput).
    pub ours: f64,
    /// The baseline's name.
    pub baseline: String,
    /// The baseline's figure, same unit.
    pub base: f64,
    /// Whether the figures are rates.
    pub rate: bool,
}

impl Row {
    /// ours / baseline.
    pub fn ratio(&self) -> f64 {
        self.ours / self.base.max(1e-9)
    }
}

/// Which side of its limit a target wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// value ≤ limit (latency).
    AtMost,
    /// value ≥ limit (throughput).
    AtLeast,
}

/// What a target's value and limit are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A ratio of two figures from the same run.
    Ratio,
    /// Nanoseconds.
    Nanos,
}

/// One target with its verdict.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target as stated.
    pub name: String,
    /// How it was computed, with the figures.
    pub measured: String,
    /// The measured value: a ratio, or nanoseconds (see [`Target::unit`]).
    pub value: f64,
    /// The limit, same unit.
    pub limit: f64,
    /// Which side of the limit passes.
    pub bound: Bound,
    /// The unit of value and limit.
    pub unit: Unit,
}

impl Target {
    /// Whether it passed.
    pub fn pass(&self) -> bool {
        match self.bound {
            Bound::AtMost => self.value <= self.limit,
            Bound::AtLeast => self.value >= self.limit,
        }
    }

    /// The limit as printed: `≤ 1.50×`, `≥ 10.00×`, `≤ 40 ns`.
    pub fn limit_text(&self) -> String {
        let op = match self.bound {
            Bound::AtMost => "≤",
            Bound::AtLeast => "≥",
        };
        match self.unit {
            Unit::Ratio => format!("{op} {:.2}×", self.limit),
            Unit::Nanos => format!("{op} {}", fmt_ns(self.limit as u64)),
        }
    }
}

/// The figures of one row of the ours-vs-iceoryx2 table.
#[derive(Debug, Clone, Copy)]
pub enum VersusFigures {
    /// One-way latency percentiles, nanoseconds.
    Latency {
        /// Our p50.
        ours_p50: u64,
        /// iceoryx2's p50.
        theirs_p50: u64,
        /// Our p99.
        ours_p99: u64,
        /// iceoryx2's p99.
        theirs_p99: u64,
    },
    /// Messages per second.
    Rate {
        /// Ours.
        ours: f64,
        /// iceoryx2's.
        theirs: f64,
    },
}

/// One row of the ours-vs-iceoryx2 table: the same measurement made with both.
#[derive(Debug, Clone)]
pub struct Versus {
    /// What, e.g. `busy-poll 8 B`.
    pub what: String,
    /// Our case.
    pub ours: Case,
    /// iceoryx2's case.
    pub theirs: Case,
    /// The figures.
    pub figures: VersusFigures,
}

/// ours / theirs.
fn ratio(ours: f64, theirs: f64) -> f64 {
    ours / theirs.max(1e-9)
}

impl Results {
    /// The histogram of `case`, if it ran.
    pub fn hist(&self, case: Case) -> Option<&Histogram<u64>> {
        self.latency.iter().find(|l| l.case == case).map(|l| &l.hist)
    }

    /// The median of `case`, if it ran and recorded anything.
    pub fn p50(&self, case: Case) -> Option<u64> {
        self.quantile(case, 0.5)
    }

    /// Quantile `q` of `case`, if it ran and recorded anything.
    pub fn quantile(&self, case: Case, q: f64) -> Option<u64> {
        self.hist(case).filter(|h| !h.is_empty()).map(|h| h.value_at_quantile(q))
    }

    fn rate(&self, case: Case) -> Option<&Rate> {
        self.rates.iter().find(|r| r.case == case)
    }

    /// The summary rows: each of ours against its natural baseline.
    pub fn summary(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut add = |metric: String, ours: Option<u64>, baseline: &str, base: Option<u64>| {
            if let (Some(ours), Some(base)) = (ours, base) {
                rows.push(Row {
                    metric,
                    ours: ours as f64,
                    baseline: baseline.to_owned(),
                    base: base as f64,
                    rate: false,
                });
            }
        };
        let floor = self.p50(Case::RawAtomic);
        let uds = self.p50(Case::Uds);
        for mode in [Mode::Busy, Mode::Blocking] {
            for kind in PayloadKind::ALL {
                let case = Case::PingPong(kind, mode);
                let (name, base) = match mode {
                    Mode::Busy => ("raw atomic flag", floor),
                    Mode::Blocking => ("Unix socket", uds),
                };
                add(format!("p50 {}", case.label()), self.p50(case), name, base);
            }
        }
        for mode in [Mode::Busy, Mode::Blocking] {
            let case = Case::ReqRes(mode);
            let base = self.p50(Case::PingPong(PayloadKind::Fixed(8), mode));
            add(format!("p50 {}", case.label()), self.p50(case), "ping-pong [u8; 8]", base);
        }
        add("p50 pipe ping-pong".into(), self.p50(Case::Pipe), "Unix socket", uds);
        {
            use crate::wakeup::WakeMode;
            for case in [Case::Wake, Case::WakePingPong] {
                let blocking = case(WakeMode::Blocking);
                for mode in [WakeMode::WaitSet(1), WakeMode::WaitSet(16), WakeMode::Async] {
                    for (q, name) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")] {
                        add(
                            format!("{name} {}", case(mode).label()),
                            self.quantile(case(mode), q),
                            &format!("blocking receive {name}"),
                            self.quantile(blocking, q),
                        );
                    }
                }
            }
        }
        let single = self.p50(Case::FanOut(1));
        for n in [4, 16] {
            let case = Case::FanOut(n);
            add(format!("p50 {}", case.label()), self.p50(case), "fan-out 1→1", single);
        }
        for mode in [Mode::Busy, Mode::Blocking] {
            for size in [8, 64 << 10] {
                let ours = self.rate(Case::Throughput(PayloadKind::Fixed(size), mode));
                let base = self.rate(Case::DgramThroughput(size));
                if let (Some(ours), Some(base)) = (ours, base) {
                    rows.push(Row {
                        metric: format!("msgs/s {}", ours.case.label()),
                        ours: ours.per_second(),
                        baseline: "Unix datagrams".into(),
                        base: base.per_second(),
                        rate: true,
                    });
                }
            }
        }
        rows
    }

    /// Ours against iceoryx2, for the pairs of cases that both ran (none without the
    /// `iceoryx2` feature): busy-poll and blocking ping-pong of 8 B and 64 KiB, throughput of
    /// 8 B with a busy-poll receiver.
    pub fn versus_iceoryx2(&self) -> Vec<Versus> {
        let mut rows = Vec::new();
        for mode in [Mode::Busy, Mode::Blocking] {
            for size in Case::ICEORYX2_SIZES {
                let kind = PayloadKind::Fixed(size);
                let (ours, theirs) = (Case::PingPong(kind, mode), Case::Iox2PingPong(kind, mode));
                let figures = (|| {
                    Some(VersusFigures::Latency {
                        ours_p50: self.quantile(ours, 0.5)?,
                        theirs_p50: self.quantile(theirs, 0.5)?,
                        ours_p99: self.quantile(ours, 0.99)?,
                        theirs_p99: self.quantile(theirs, 0.99)?,
                    })
                })();
                if let Some(figures) = figures {
                    let what = format!("{} {}", mode.label(), crate::messages::size_label(size));
                    rows.push(Versus { what, ours, theirs, figures });
                }
            }
        }
        let (ours, theirs) = (Case::ReqRes(Mode::Busy), Case::Iox2ReqRes);
        let figures = (|| {
            Some(VersusFigures::Latency {
                ours_p50: self.quantile(ours, 0.5)?,
                theirs_p50: self.quantile(theirs, 0.5)?,
                ours_p99: self.quantile(ours, 0.99)?,
                theirs_p99: self.quantile(theirs, 0.99)?,
            })
        })();
        if let Some(figures) = figures {
            rows.push(Versus {
                what: "request/response busy-poll 8 B".into(),
                ours,
                theirs,
                figures,
            });
        }
        let kind = PayloadKind::Fixed(8);
        let (ours, theirs) = (Case::Throughput(kind, Mode::Busy), Case::Iox2Throughput(kind));
        if let (Some(o), Some(t)) = (self.rate(ours), self.rate(theirs)) {
            rows.push(Versus {
                what: "throughput 8 B, busy-poll receiver".into(),
                ours,
                theirs,
                figures: VersusFigures::Rate { ours: o.per_second(), theirs: t.per_second() },
            });
        }
        rows
    }

    /// The targets (issue 7's, then the iceoryx2 comparison's and the one-thread cost), for
    /// those whose cases ran.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let mut ratio_target =
            |name: &str, what: String, figures: Option<(f64, f64)>, rate: bool, limit| {
                if let Some((ours, base)) = figures {
                    let value = ratio(ours, base);
                    let fmt = |v: f64| if rate { fmt_rate(v) } else { fmt_ns(v as u64) };
                    targets.push(Target {
                        name: name.to_owned(),
                        measured: format!("{} / {} = {value:.2}× ({what})", fmt(ours), fmt(base)),
                        value,
                        limit,
                        bound: if rate { Bound::AtLeast } else { Bound::AtMost },
                        unit: Unit::Ratio,
                    });
                }
            };
        let both = |ours: Option<u64>, base: Option<u64>| Some((ours? as f64, base?.max(1) as f64));
        let mut add = |name: &str, what: String, ours: Option<u64>, base: Option<u64>, limit| {
            ratio_target(name, what, both(ours, base), false, limit);
        };
        let busy8 = Case::PingPong(PayloadKind::Fixed(8), Mode::Busy);
        add(
            "busy-poll one-way p50 (8 B) ≤ 1.5 × raw atomic floor",
            "[u8; 8] busy-poll / raw atomic flag".into(),
            self.p50(busy8),
            self.p50(Case::RawAtomic),
            1.5,
        );
        for mode in [Mode::Busy, Mode::Blocking] {
            add(
                &format!(
                    "size independence ({}): ShmVec 4 MiB p50 ≤ 1.2 × ShmVec 8 B p50",
                    mode.label()
                ),
                "ShmVec<u8> 4 MiB / 8 B".into(),
                self.p50(Case::PingPong(PayloadKind::Vec(4 << 20), mode)),
                self.p50(Case::PingPong(PayloadKind::Vec(8), mode)),
                1.2,
            );
        }
        add(
            "blocking p50 (8 B) ≤ 0.5 × Unix-socket p50",
            "[u8; 8] blocking / Unix socket".into(),
            self.p50(Case::PingPong(PayloadKind::Fixed(8), Mode::Blocking)),
            self.p50(Case::Uds),
            0.5,
        );
        for mode in [Mode::Busy, Mode::Blocking] {
            add(
                &format!("request/response p50 ≤ 1.2 × pub/sub ping-pong p50 ({})", mode.label()),
                "round trip, request/response / ping-pong [u8; 8]".into(),
                self.p50(Case::ReqRes(mode)),
                self.p50(Case::PingPong(PayloadKind::Fixed(8), mode)),
                1.2,
            );
        }
        add(
            "fan-out 16: last-receiver p50 ≤ 2 × single-subscriber p50",
            "fan-out 16 / fan-out 1, blocking".into(),
            self.p50(Case::FanOut(16)),
            self.p50(Case::FanOut(1)),
            2.0,
        );
        {
            use crate::wakeup::WakeMode;
            let blocking = self.p50(Case::Wake(WakeMode::Blocking));
            add(
                "WaitSet with 16 subscribers: wake-up p50 ≤ 1.3 × blocking receive p50",
                "WaitSet-16 / blocking, wake-up of a sleeping receiver".into(),
                self.p50(Case::Wake(WakeMode::WaitSet(16))),
                blocking,
                1.3,
            );
            add(
                "receive_async (tokio): wake-up p50 ≤ 1.5 × blocking receive p50",
                "async / blocking, wake-up of a sleeping receiver".into(),
                self.p50(Case::Wake(WakeMode::Async)),
                blocking,
                1.5,
            );
        }
        let iox_busy8 = Case::Iox2PingPong(PayloadKind::Fixed(8), Mode::Busy);
        add(
            "busy-poll one-way p50 (8 B) ≤ 0.5 × iceoryx2's",
            "[u8; 8] busy-poll, ours / iceoryx2".into(),
            self.p50(busy8),
            self.p50(iox_busy8),
            0.5,
        );
        add(
            "busy-poll one-way p50 (8 B) ≤ 2 × raw atomic floor",
            "[u8; 8] busy-poll / raw atomic flag".into(),
            self.p50(busy8),
            self.p50(Case::RawAtomic),
            2.0,
        );
        add(
            "busy-poll one-way p99 (8 B) ≤ 0.5 × iceoryx2's p99",
            "[u8; 8] busy-poll p99, ours / iceoryx2".into(),
            self.quantile(busy8, 0.99),
            self.quantile(iox_busy8, 0.99),
            0.5,
        );
        let tput8 = self.rate(Case::Throughput(PayloadKind::Fixed(8), Mode::Busy));
        let rates = |base: Option<&Rate>| Some((tput8?.per_second(), base?.per_second()));
        ratio_target(
            "throughput 8 B, busy-poll ≥ 1.5 × iceoryx2's",
            "msgs/s, ours / iceoryx2".into(),
            rates(self.rate(Case::Iox2Throughput(PayloadKind::Fixed(8)))),
            true,
            1.5,
        );
        ratio_target(
            "throughput 8 B, busy-poll ≥ 10 × Unix datagrams",
            "msgs/s, ours / Unix datagrams 8 B".into(),
            rates(self.rate(Case::DgramThroughput(8))),
            true,
            10.0,
        );
        let blocking8 = |case: fn(PayloadKind, Mode) -> Case| {
            self.p50(case(PayloadKind::Fixed(8), Mode::Blocking))
        };
        ratio_target(
            "blocking one-way p50 (8 B) ≤ 0.8 × iceoryx2's blocking p50",
            "[u8; 8] blocking, ours / iceoryx2 (event service)".into(),
            both(blocking8(Case::PingPong), blocking8(Case::Iox2PingPong)),
            false,
            0.8,
        );
        if let Some(cost) = self.p50(Case::InProcess) {
            targets.push(Target {
                name: "one-thread software cost ≤ 40 ns".into(),
                measured: format!(
                    "{} (p50 per message, batches of {})",
                    fmt_ns(cost),
                    crate::ours::IN_PROCESS_BATCH
                ),
                value: cost as f64,
                limit: 40.0,
                bound: Bound::AtMost,
                unit: Unit::Nanos,
            });
        }
        targets
    }

    /// The full report in markdown.
    pub fn markdown(&self, svg: Option<&str>) -> String {
        let mut s = String::new();
        let m = &self.meta;
        let _ = writeln!(
            s,
            "## ipc-bench: one-way latency between processes{}\n",
            if m.quick { " (QUICK smoke run: rough numbers)" } else { "" }
        );
        let _ = writeln!(
            s,
            "{} CPUs, {}; {} recorded round trips per case in {} round(s) (+{} warm-up each); \
             load average before: {}, after: {}; wall time {:.1} s; domain `{}`.\n",
            m.cpus,
            match &m.pin {
                Some(cpus) => format!("pinned to CPUs {cpus:?} (parent first)"),
                None => "not pinned".into(),
            },
            m.iterations,
            m.rounds,
            m.warmup,
            m.load.0,
            m.load.1,
            m.wall.as_secs_f64(),
            m.domain
        );
        let _ = writeln!(s, "### Percentiles (one-way)\n");
        let _ = writeln!(s, "| case | samples | p50 | p90 | p99 | p99.9 | max |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        for l in &self.latency {
            let h = &l.hist;
            if h.is_empty() {
                continue;
            }
            let q = |q: f64| fmt_ns(h.value_at_quantile(q));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                l.case.label(),
                h.len(),
                q(0.5),
                q(0.9),
                q(0.99),
                q(0.999),
                fmt_ns(h.max())
            );
        }
        let _ = writeln!(s, "\n### Ours against the baselines (same run)\n");
        let _ = writeln!(s, "| metric | ours | baseline | ratio |");
        let _ = writeln!(s, "|---|---:|---|---:|");
        for row in self.summary() {
            let fmt = |v: f64| if row.rate { fmt_rate(v) } else { fmt_ns(v as u64) };
            let _ = writeln!(
                s,
                "| {} | {} | {} {} | {:.2}× |",
                row.metric,
                fmt(row.ours),
                row.baseline,
                fmt(row.base),
                row.ratio()
            );
        }
        let _ =
            writeln!(s, "\nLatency ratios: lower is better; throughput ratios: higher is better.");
        let versus = self.versus_iceoryx2();
        if !versus.is_empty() {
            let _ = writeln!(s, "\n### ours vs iceoryx2 (same run)\n");
            let _ = writeln!(
                s,
                "| case | ours p50 (or msgs/s) | iceoryx2 p50 (or msgs/s) | ratio | ours p99 | \
                 iceoryx2 p99 | p99 ratio |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
            for row in &versus {
                match row.figures {
                    VersusFigures::Latency { ours_p50, theirs_p50, ours_p99, theirs_p99 } => {
                        let _ = writeln!(
                            s,
                            "| {} | {} | {} | {:.2}× | {} | {} | {:.2}× |",
                            row.what,
                            fmt_ns(ours_p50),
                            fmt_ns(theirs_p50),
                            ratio(ours_p50 as f64, theirs_p50 as f64),
                            fmt_ns(ours_p99),
                            fmt_ns(theirs_p99),
                            ratio(ours_p99 as f64, theirs_p99 as f64),
                        );
                    }
                    VersusFigures::Rate { ours, theirs } => {
                        let _ = writeln!(
                            s,
                            "| {} | {} | {} | {:.2}× | | | |",
                            row.what,
                            fmt_rate(ours),
                            fmt_rate(theirs),
                            ratio(ours, theirs),
                        );
                    }
                }
            }
            let _ = writeln!(
                s,
                "\nRatio = ours / iceoryx2: below 1 is better for latency (one-way), above 1 for \
                 throughput. iceoryx2 0.9, default `ipc::Service` configuration; blocking uses its \
                 event service."
            );
        }
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(s, "\n### Targets\n");
            let _ = writeln!(s, "| target | measured | limit | result |");
            let _ = writeln!(s, "|---|---|---:|---|");
            for t in &targets {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    t.name,
                    t.measured,
                    t.limit_text(),
                    if t.pass() { "pass" } else { "MISS" }
                );
            }
        }
        if let Some(svg) = svg {
            let _ = writeln!(s, "\nLatency plot: `{svg}`");
        }
        s
    }

    /// The whole run as JSON (nanoseconds and messages per second).
    pub fn json(&self, svg: Option<&str>) -> Value {
        let m = &self.meta;
        let latency: Vec<Value> = self
            .latency
            .iter()
            .filter(|l| !l.hist.is_empty())
            .map(|l| {
                let h = &l.hist;
                json!({
                    "key": l.case.key(),
                    "label": l.case.label(),
                    "samples": h.len(),
                    "p50_ns": h.value_at_quantile(0.5),
                    "p90_ns": h.value_at_quantile(0.9),
                    "p99_ns": h.value_at_quantile(0.99),
                    "p999_ns": h.value_at_quantile(0.999),
                    "max_ns": h.max(),
                    "mean_ns": h.mean(),
                })
            })
            .collect();
        let rates: Vec<Value> = self
            .rates
            .iter()
            .map(|r| {
                json!({
                    "key": r.case.key(),
                    "label": r.case.label(),
                    "messages": r.messages,
                    "elapsed_ns": r.elapsed.as_nanos() as u64,
                    "per_second": r.per_second(),
                })
            })
            .collect();
        let summary: Vec<Value> = self
            .summary()
            .iter()
            .map(|r| {
                json!({
                    "metric": r.metric,
                    "ours": r.ours,
                    "baseline": r.baseline,
                    "baseline_value": r.base,
                    "unit": if r.rate { "msgs/s" } else { "ns" },
                    "ratio": r.ratio(),
                })
            })
            .collect();
        let targets: Vec<Value> = self
            .targets()
            .iter()
            .map(|t| {
                json!({
                    "target": t.name,
                    "measured": t.measured,
                    "value": t.value,
                    "unit": match t.unit { Unit::Ratio => "ratio", Unit::Nanos => "ns" },
                    "ratio": (t.unit == Unit::Ratio).then_some(t.value),
                    "bound": match t.bound { Bound::AtMost => "at_most", Bound::AtLeast => "at_least" },
                    "limit": t.limit,
                    "pass": t.pass(),
                })
            })
            .collect();
        let versus: Vec<Value> = self
            .versus_iceoryx2()
            .iter()
            .map(|row| {
                let mut v = json!({
                    "case": row.what,
                    "ours_key": row.ours.key(),
                    "iceoryx2_key": row.theirs.key(),
                });
                match row.figures {
                    VersusFigures::Latency { ours_p50, theirs_p50, ours_p99, theirs_p99 } => {
                        v["unit"] = "ns".into();
                        v["ours_p50"] = ours_p50.into();
                        v["iceoryx2_p50"] = theirs_p50.into();
                        v["ratio_p50"] = ratio(ours_p50 as f64, theirs_p50 as f64).into();
                        v["ours_p99"] = ours_p99.into();
                        v["iceoryx2_p99"] = theirs_p99.into();
                        v["ratio_p99"] = ratio(ours_p99 as f64, theirs_p99 as f64).into();
                    }
                    VersusFigures::Rate { ours, theirs } => {
                        v["unit"] = "msgs/s".into();
                        v["ours"] = ours.into();
                        v["iceoryx2"] = theirs.into();
                        v["ratio"] = ratio(ours, theirs).into();
                    }
                }
                v
            })
            .collect();
        json!({
            "meta": {
                "domain": m.domain,
                "quick": m.quick,
                "pin": m.pin,
                "warmup": m.warmup,
                "iterations": m.iterations,
                "rounds": m.rounds,
                "cpus": m.cpus,
                "load_before": m.load.0,
                "load_after": m.load.1,
                "wall_s": m.wall.as_secs_f64(),
                "svg": svg,
            },
            "latency": latency,
            "throughput": rates,
            "summary": summary,
            "versus_iceoryx2": versus,
            "targets": targets,
        })
    }
}

/// `412 ns`, `12.34 µs`, `1.23 ms`.
pub fn fmt_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.2} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}

/// `1.23 M/s`, `456.7 k/s`.
pub fn fmt_rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M/s", per_second / 1e6)
    } else {
        format!("{:.1} k/s", per_second / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    fn meta() -> Meta {
        Meta {
            domain: "d".into(),
            quick: true,
            pin: None,
            warmup: 1,
            iterations: 1,
            rounds: 1,
            cpus: 2,
            load: (String::new(), String::new()),
            wall: Duration::ZERO,
        }
    }

    fn rate(case: Case, per_second: u64) -> Rate {
        Rate { case, messages: per_second, elapsed: Duration::from_secs(1) }
    }

    #[test]
    fn targets_compare_the_right_cases() {
        let results = Results {
            meta: meta(),
            latency: vec![
                Latency {
                    case: Case::PingPong(PayloadKind::Fixed(8), Mode::Busy),
                    hist: hist(&[300]),
                },
                Latency { case: Case::RawAtomic, hist: hist(&[100]) },
            ],
            rates: vec![],
        };
        let targets = results.targets();
        assert_eq!(targets.len(), 2, "only the two floor targets have both cases");
        assert!(targets.iter().all(|t| !t.pass()));
        assert!((targets[0].value - 3.0).abs() < 0.01);
        assert_eq!(
            (targets[0].limit_text(), targets[1].limit_text()),
            ("≤ 1.50×".into(), "≤ 2.00×".into())
        );
        assert!(results.versus_iceoryx2().is_empty());
        let md = results.markdown(Some("x.svg"));
        assert!(md.contains("| metric | ours | baseline | ratio |"));
        assert!(md.contains("MISS"));
        assert!(!md.contains("iceoryx2"));
        assert_eq!(fmt_ns(1500), "1.50 µs");
    }

    #[test]
    fn iceoryx2_table_and_targets() {
        let busy8 = PayloadKind::Fixed(8);
        let results = Results {
            meta: meta(),
            latency: vec![
                Latency { case: Case::InProcess, hist: hist(&[30]) },
                Latency { case: Case::PingPong(busy8, Mode::Busy), hist: hist(&[100, 200]) },
                Latency { case: Case::Iox2PingPong(busy8, Mode::Busy), hist: hist(&[400, 800]) },
                Latency { case: Case::PingPong(busy8, Mode::Blocking), hist: hist(&[900]) },
                Latency { case: Case::Iox2PingPong(busy8, Mode::Blocking), hist: hist(&[1000]) },
            ],
            rates: vec![
                rate(Case::Throughput(busy8, Mode::Busy), 3_000_000),
                rate(Case::Iox2Throughput(busy8), 1_000_000),
                rate(Case::DgramThroughput(8), 200_000),
            ],
        };
        let versus = results.versus_iceoryx2();
        let what: Vec<&str> = versus.iter().map(|v| v.what.as_str()).collect();
        assert_eq!(what, ["busy-poll 8 B", "blocking 8 B", "throughput 8 B, busy-poll receiver"]);
        let targets = results.targets();
        let verdict = |name: &str| {
            let t = targets.iter().find(|t| t.name.starts_with(name)).expect(name);
            (t.pass(), (t.value * 100.0).round() / 100.0)
        };
        assert_eq!(verdict("busy-poll one-way p50 (8 B) ≤ 0.5 × iceoryx2"), (true, 0.25));
        assert_eq!(verdict("busy-poll one-way p99 (8 B) ≤ 0.5"), (true, 0.25));
        assert_eq!(verdict("throughput 8 B, busy-poll ≥ 1.5"), (true, 3.0));
        assert_eq!(verdict("throughput 8 B, busy-poll ≥ 10"), (true, 15.0));
        assert_eq!(verdict("blocking one-way p50 (8 B) ≤ 0.8"), (false, 0.9));
        assert_eq!(verdict("one-thread software cost"), (true, 30.0));
        assert_eq!(targets.len(), 6);
        let md = results.markdown(None);
        assert!(md.contains("### ours vs iceoryx2 (same run)"));
        assert!(
            md.contains("| busy-poll 8 B | 100 ns | 400 ns | 0.25× | 200 ns | 800 ns | 0.25× |"),
            "{md}"
        );
        assert!(
            md.contains("| throughput 8 B, busy-poll receiver | 3.00 M/s | 1.00 M/s | 3.00× |"),
            "{md}"
        );
        assert!(md.contains("| ≥ 1.50× | pass |") && md.contains("| ≤ 40 ns | pass |"), "{md}");
        let json = results.json(None);
        assert_eq!(json["versus_iceoryx2"].as_array().unwrap().len(), 3);
        assert_eq!(json["versus_iceoryx2"][2]["ratio"], 3.0);
        assert_eq!(json["targets"].as_array().unwrap().len(), 6);
    }
}
