//! Results of a run, and their reports: markdown tables, the targets, JSON.
//!
//! Every latency row is one-way (round trip / 2 for ping-pongs; publish → last receive for
//! fan-out). A ratio is ours / baseline from the same run: below 1 is better for latency, above
//! 1 is better for throughput.

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
    /// Our fan-out to this many blocking subscribers.
    FanOut(u32),
    /// Diagnostic recorded with [`Case::FanOut`]: how long `publish` itself took.
    FanOutPublish(u32),
    /// Diagnostic: publish → `try_receive` → drop of an 8-byte message in one thread, i.e. the
    /// software cost of one message without any cross-core transfer.
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
}

impl Case {
    /// Machine name, e.g. `busy/fixed-8`, `fanout/16`, `baseline/uds`, `tput/busy/fixed-8`.
    pub fn key(&self) -> String {
        match self {
            Case::PingPong(p, m) => format!("{}/{}", m.key(), p.key()),
            Case::FanOut(n) => format!("fanout/{n}"),
            Case::FanOutPublish(n) => format!("fanout-publish/{n}"),
            Case::InProcess => "diag/in-process".into(),
            Case::RawAtomic => "baseline/raw-atomic".into(),
            Case::Uds => "baseline/uds".into(),
            Case::Pipe => "baseline/pipe".into(),
            Case::Throughput(p, m) => format!("tput/{}/{}", m.key(), p.key()),
            Case::DgramThroughput(n) => format!("tput/uds-dgram/{n}"),
        }
    }

    /// Human name.
    pub fn label(&self) -> String {
        match self {
            Case::PingPong(p, m) => format!("{} {p}", m.label()),
            Case::FanOut(n) => format!("fan-out 1→{n}, blocking, last receiver"),
            Case::FanOutPublish(n) => format!("fan-out 1→{n}: time inside publish() (diagnostic)"),
            Case::InProcess => {
                "one thread: publish → try_receive → drop, [u8; 8 B] (diagnostic, whole message)"
                    .into()
            }
            Case::RawAtomic => "raw atomic flag (floor)".into(),
            Case::Uds => "Unix socket ping-pong".into(),
            Case::Pipe => "pipe ping-pong".into(),
            Case::Throughput(p, m) => format!("throughput {p}, {} receiver", m.label()),
            Case::DgramThroughput(n) => {
                format!("Unix datagram throughput {}", crate::messages::size_label(*n))
            }
        }
    }

    /// Whether the case yields a rate rather than a latency histogram.
    pub fn is_rate(&self) -> bool {
        matches!(self, Case::Throughput(..) | Case::DgramThroughput(_))
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

/// One target with its verdict.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target as stated.
    pub name: String,
    /// How it was computed, with the figures.
    pub measured: String,
    /// The measured ratio.
    pub ratio: f64,
    /// The highest ratio that passes.
    pub limit: f64,
}

impl Target {
    /// Whether it passed.
    pub fn pass(&self) -> bool {
        self.ratio <= self.limit
    }
}

impl Results {
    /// The histogram of `case`, if it ran.
    pub fn hist(&self, case: Case) -> Option<&Histogram<u64>> {
        self.latency.iter().find(|l| l.case == case).map(|l| &l.hist)
    }

    /// The median of `case`, if it ran and recorded anything.
    pub fn p50(&self, case: Case) -> Option<u64> {
        self.hist(case).filter(|h| !h.is_empty()).map(|h| h.value_at_quantile(0.5))
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
        add("p50 pipe ping-pong".into(), self.p50(Case::Pipe), "Unix socket", uds);
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

    /// The targets of issue 7, for those whose cases ran.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let mut add = |name: &str, what: String, ours: Option<u64>, base: Option<u64>, limit| {
            if let (Some(ours), Some(base)) = (ours, base) {
                let ratio = ours as f64 / base.max(1) as f64;
                targets.push(Target {
                    name: name.to_owned(),
                    measured: format!("{} / {} = {ratio:.2}× ({what})", fmt_ns(ours), fmt_ns(base)),
                    ratio,
                    limit,
                });
            }
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
        add(
            "fan-out 16: last-receiver p50 ≤ 2 × single-subscriber p50",
            "fan-out 16 / fan-out 1, blocking".into(),
            self.p50(Case::FanOut(16)),
            self.p50(Case::FanOut(1)),
            2.0,
        );
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
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(s, "\n### Targets (issue 7)\n");
            let _ = writeln!(s, "| target | measured | limit | result |");
            let _ = writeln!(s, "|---|---|---:|---|");
            for t in &targets {
                let _ = writeln!(
                    s,
                    "| {} | {} | ≤ {:.2}× | {} |",
                    t.name,
                    t.measured,
                    t.limit,
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
                    "ratio": t.ratio,
                    "limit": t.limit,
                    "pass": t.pass(),
                })
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

    #[test]
    fn targets_compare_the_right_cases() {
        let meta = Meta {
            domain: "d".into(),
            quick: true,
            pin: None,
            warmup: 1,
            iterations: 1,
            rounds: 1,
            cpus: 2,
            load: (String::new(), String::new()),
            wall: Duration::ZERO,
        };
        let results = Results {
            meta,
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
        assert_eq!(targets.len(), 1, "only the floor target has both cases");
        assert!(!targets[0].pass());
        assert!((targets[0].ratio - 3.0).abs() < 0.01);
        let md = results.markdown(Some("x.svg"));
        assert!(md.contains("| metric | ours | baseline | ratio |"));
        assert!(md.contains("MISS"));
        assert_eq!(fmt_ns(1500), "1.50 µs");
    }
}
