//! What many topics cost (`ipc-bench scale`): one process with N idle publisher+subscriber
//! pairs, message latency next to them, and many processes with many topics in one domain.
//!
//! ```sh
//! cargo run --release -p ipc-bench -- scale                  # 10,000 pairs, 100 × 100 processes
//! cargo run --release -p ipc-bench -- scale --topics 2000    # another N
//! cargo run --release -p ipc-bench -- scale --quick          # smoke run (seconds)
//! ```
//!
//! The command re-executes itself with a fresh `IPC_DOMAIN` (so the process's heap and every
//! object it makes carry the run's domain) and, in that process:
//!
//! 1. lowers its soft fd limit to 1024 (the common default), then creates N pairs with
//!    `Publisher::<u64>::new` and `Subscriber::<u64>::new` (default options) on topics
//!    `scale/t<i>`, and reports whether all were created (or at which pair creation failed and
//!    why), the time, the threads beyond the program's own (`/proc/self/task`), the open fds
//!    (`/proc/self/fd`), the RSS growth (`VmRSS`), the CPU time of the whole process over two
//!    idle intervals (`CLOCK_PROCESS_CPUTIME_ID`: the first right after creation, the second
//!    the steady state), and the new entries in `/dev/shm` carrying the
//!    run's domain (segments, lock and token files), per pair and by kind;
//! 2. measures a `u64` ping-pong with a peer process (blocking receives on both sides, one-way =
//!    round trip / 2) while the N pairs are there, then drops them and measures it again without
//!    them (same run, same peer and topics);
//! 3. spawns `--procs` processes in a second domain, each joining `--per-proc` pairs, publishing
//!    one message on each and receiving it; times the join, `ipc list` of that domain (the
//!    library's [`ipc_runtime::inspect::domain`], and the `ipc` binary when it is built next to
//!    this one), and the leave (until every process has exited).
//!
//! Nothing is asserted; targets are printed with pass/MISS. The run's domains are checked to be
//! empty at the end (an error otherwise).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ipc_runtime::pubsub::{Publisher, Subscriber};

use crate::Result;
use crate::peer::{self, Args, Launcher};
use crate::report::fmt_ns;

/// Set in the measuring process (the re-executed one).
const CHILD_ENV: &str = "IPC_BENCH_SCALE";
/// The fd soft limit the measuring process runs under.
const FD_LIMIT: u64 = 1024;
/// The ping-pong's stop value.
const STOP: u64 = u64::MAX;

#[derive(Debug, Clone)]
struct Plan {
    topics: usize,
    procs: usize,
    per_proc: usize,
    round_trips: u64,
    idle: Duration,
    /// The fd soft limit to run under (1024 unless `--fd-limit` says otherwise: for looking at
    /// what else grows with N, not for headline rows).
    fd_limit: u64,
}

impl Plan {
    fn parse(args: &[String]) -> Result<Plan> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut plan = if quick {
            Plan {
                topics: 200,
                procs: 4,
                per_proc: 10,
                round_trips: 2_000,
                idle: Duration::from_millis(500),
                fd_limit: FD_LIMIT,
            }
        } else {
            Plan {
                topics: 10_000,
                procs: 100,
                per_proc: 100,
                round_trips: 20_000,
                idle: Duration::from_secs(5),
                fd_limit: FD_LIMIT,
            }
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => {}
                "--topics" => plan.topics = value()?.parse()?,
                "--procs" => plan.procs = value()?.parse()?,
                "--per-proc" => plan.per_proc = value()?.parse()?,
                "--round-trips" => plan.round_trips = value()?.parse()?,
                "--idle" => plan.idle = Duration::from_secs_f64(value()?.parse()?),
                "--fd-limit" => plan.fd_limit = value()?.parse()?,
                other => {
                    return Err(format!(
                        "scale: unknown argument {other} (usage: ipc-bench scale [--topics N] \
                         [--procs P] [--per-proc T] [--round-trips R] [--idle SECS] [--fd-limit N] \
                         [--quick])"
                    )
                    .into());
                }
            }
        }
        Ok(plan)
    }
}

/// `ipc-bench scale …`: re-executes itself in a fresh domain, then checks nothing was left.
pub fn main(args: &[String]) -> Result<()> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return measure(&Plan::parse(args)?);
    }
    Plan::parse(args)?;
    let domain = format!("ipcbench-scale-{}", std::process::id());
    let status = Command::new(std::env::current_exe()?)
        .arg("scale")
        .args(args)
        .env("IPC_DOMAIN", &domain)
        .env(CHILD_ENV, "1")
        .status()?;
    let left: Vec<String> =
        [domain.clone(), procs_domain(&domain)].iter().flat_map(|d| shm_entries(d)).collect();
    if !status.success() {
        return Err(format!("the measuring process failed: {status}").into());
    }
    if !left.is_empty() {
        return Err(format!("left behind in /dev/shm: {left:?}").into());
    }
    println!("\nleft behind: nothing");
    Ok(())
}

fn procs_domain(domain: &str) -> String {
    format!("{domain}-procs")
}

/// Entries of `/dev/shm` (segments, and lock and token files on Linux) of `domain`.
fn shm_entries(domain: &str) -> Vec<String> {
    let prefix = format!("{domain}.");
    let mut names: Vec<String> =
        [std::path::PathBuf::from("/dev/shm"), ipc_runtime::liveness::lock_dir()]
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flat_map(|entries| entries.flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&prefix))
            .collect();
    names.sort();
    names.dedup();
    names
}

/// What kind of object a `/dev/shm` entry of the domain is.
fn kind_of(domain: &str, name: &str) -> &'static str {
    let rest = &name[domain.len() + 1..];
    let parts: Vec<&str> = rest.split('.').collect();
    let is_token = parts.len() >= 3
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && parts[parts.len() - 2].len() > 1
        && parts[parts.len() - 2][1..].bytes().all(|b| b.is_ascii_digit());
    match parts.first().copied() {
        Some("lock") if is_token => "liveness token",
        Some("lock") => "lock file",
        Some("topic") => "topic segment",
        Some("heap") => "heap segment",
        Some("bell") => "doorbell segment",
        _ => "other",
    }
}

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    threads: usize,
    fds: usize,
    rss_kib: u64,
    /// Of which shared memory (`RssShmem`): the heap's and the topic segments' pages, counted
    /// once per mapping.
    shmem_kib: u64,
    cpu: Duration,
}

fn snapshot() -> Snapshot {
    let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    };
    Snapshot {
        threads: count("/proc/self/task"),
        fds: count("/proc/self/fd"),
        rss_kib: field("VmRSS:"),
        shmem_kib: field("RssShmem:"),
        cpu: cpu(),
    }
}

fn cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn set_fd_limit(limit: u64) -> String {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let old = getrlimit(Resource::Nofile);
    let soft = old.maximum.map_or(limit, |max| max.min(limit));
    match setrlimit(Resource::Nofile, Rlimit { current: Some(soft), maximum: old.maximum }) {
        Ok(()) => format!("soft fd limit {soft}"),
        Err(err) => format!("soft fd limit unchanged ({err})"),
    }
}

struct Row {
    metric: String,
    value: String,
    target: Option<(String, bool)>,
}

fn row(metric: impl Into<String>, value: impl Into<String>) -> Row {
    Row { metric: metric.into(), value: value.into(), target: None }
}

fn target(metric: impl Into<String>, value: impl Into<String>, limit: &str, ok: bool) -> Row {
    Row { metric: metric.into(), value: value.into(), target: Some((limit.into(), ok)) }
}

fn print_rows(rows: &[Row]) {
    println!("| metric | measured | target | result |");
    println!("|---|---|---|---|");
    for r in rows {
        let (limit, result) = match &r.target {
            Some((limit, ok)) => (limit.as_str(), if *ok { "pass" } else { "MISS" }),
            None => ("", ""),
        };
        println!("| {} | {} | {limit} | {result} |", r.metric, r.value);
    }
}

fn measure(plan: &Plan) -> Result<()> {
    let domain = ipc_runtime::domain::current().to_owned();
    let limit = set_fd_limit(plan.fd_limit);
    println!(
        "## scale: {} publisher+subscriber pairs in one process ({limit}, domain {domain})\n",
        plan.topics
    );
    let before = snapshot();
    let objects_before = shm_entries(&domain);

    let mut pairs = Vec::with_capacity(plan.topics);
    let mut failure = None;
    let start = Instant::now();
    for i in 0..plan.topics {
        let topic = format!("scale/t{i}");
        let pair = Publisher::<u64>::new(&topic)
            .and_then(|p| Subscriber::<u64>::new(&topic).map(|s| (p, s)));
        match pair {
            Ok(pair) => pairs.push(pair),
            Err(err) => {
                failure = Some(format!("pair {i} failed: {err}"));
                break;
            }
        }
    }
    let created_in = start.elapsed();
    let n = pairs.len().max(1);
    let after = snapshot();
    let objects_after = shm_entries(&domain);
    let new_objects: Vec<&String> =
        objects_after.iter().filter(|o| !objects_before.contains(o)).collect();
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for object in &new_objects {
        let kind = kind_of(&domain, object);
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, count)) => *count += 1,
            None => kinds.push((kind, 1)),
        }
    }

    // Idle: nothing happens for `plan.idle`, twice; whatever CPU the process uses is background
    // work. The first window starts right after the last pair was created, so it includes the
    // service thread's last pass over the publishers that the burst of joins asked for; the
    // second is the steady state (the target).
    let idle_window = || {
        let idle_start = snapshot();
        let wall = Instant::now();
        std::thread::sleep(plan.idle);
        let cpu = snapshot().cpu.saturating_sub(idle_start.cpu);
        (cpu, 100.0 * cpu.as_secs_f64() / wall.elapsed().as_secs_f64())
    };
    let (first_cpu, first_pct) = idle_window();
    let (idle_cpu, idle_pct) = idle_window();

    let threads = after.threads.saturating_sub(before.threads);
    let rss_growth = after.rss_kib.saturating_sub(before.rss_kib);
    let rss_per = rss_growth as f64 * 1024.0 / n as f64;
    let per_pair = created_in / n as u32;
    let objects_per = new_objects.len() as f64 / n as f64;
    let all = failure.is_none();
    let rows = vec![
        target(
            "pairs created",
            match &failure {
                None => format!("{} of {}", pairs.len(), plan.topics),
                Some(err) => format!("{} of {} ({err})", pairs.len(), plan.topics),
            },
            "all",
            all,
        ),
        target(
            "creation, total",
            format!("{:.0} ms", created_in.as_secs_f64() * 1e3),
            "≤ 1 s for 10k",
            created_in.as_secs_f64() * 10_000.0 / n as f64 <= 1.0,
        ),
        row("creation, per pair", format!("{:.1} µs", per_pair.as_secs_f64() * 1e6)),
        target(
            "threads beyond the program's own",
            format!("{threads} ({} → {})", before.threads, after.threads),
            "≤ 2",
            threads <= 2,
        ),
        target(
            "open fds",
            format!("{} ({} before)", after.fds, before.fds),
            "≤ 32",
            after.fds <= 32,
        ),
        row(
            "RSS growth",
            format!(
                "{:.1} MiB (shared memory {:.1} MiB)",
                rss_growth as f64 / 1024.0,
                after.shmem_kib.saturating_sub(before.shmem_kib) as f64 / 1024.0
            ),
        ),
        target(
            "RSS per pair",
            format!("{:.1} KiB", rss_per / 1024.0),
            "≤ 16 KiB",
            rss_per <= 16.0 * 1024.0,
        ),
        row(
            format!("CPU in the {:.1} s right after creation", plan.idle.as_secs_f64()),
            format!("{first_pct:.3} % of a core ({:.1} ms)", first_cpu.as_secs_f64() * 1e3),
        ),
        target(
            format!("idle CPU over the next {:.1} s", plan.idle.as_secs_f64()),
            format!("{idle_pct:.3} % of a core ({:.1} ms)", idle_cpu.as_secs_f64() * 1e3),
            "≤ 0.2 %",
            idle_pct <= 0.2,
        ),
        target(
            "OS objects per pair (/dev/shm)",
            format!("{objects_per:.2} ({} new)", new_objects.len()),
            "≤ 2",
            objects_per <= 2.0,
        ),
        row(
            "OS objects by kind",
            kinds.iter().map(|(k, c)| format!("{k} {c}")).collect::<Vec<_>>().join(", "),
        ),
    ];
    print_rows(&rows);

    // Latency with the pairs present, then without them. After a failed creation, a few pairs
    // make room (fds) for the ping-pong and its peer.
    if failure.is_some() {
        pairs.truncate(pairs.len().saturating_sub(16));
    }
    println!(
        "\n## u64 ping-pong with a peer process, blocking receives (one-way = round trip / 2)\n"
    );
    let launcher = Launcher { domain: domain.clone(), cpus: None };
    let echo = launcher.spawn(0, "scale-echo", &[])?;
    let ping = Publisher::<u64>::new("scale-lat/ping")?;
    let pong = Subscriber::<u64>::new("scale-lat/pong")?;
    // Warm up (and wait for both directions to connect).
    round_trips(&ping, &pong, plan.round_trips / 10)?;
    let loaded = round_trips(&ping, &pong, plan.round_trips)?;
    let start = Instant::now();
    let dropped = pairs.len();
    drop(pairs);
    let dropped_in = start.elapsed();
    let none = round_trips(&ping, &pong, plan.round_trips)?;
    ping.publish(STOP)?;
    echo.finish()?;
    println!("| case | samples | p50 | p99 | p99.9 |");
    println!("|---|---|---|---|---|");
    let line = |name: &str, h: &Histogram<u64>| {
        println!(
            "| {name} | {} | {} | {} | {} |",
            h.len(),
            fmt_ns(h.value_at_quantile(0.5)),
            fmt_ns(h.value_at_quantile(0.99)),
            fmt_ns(h.value_at_quantile(0.999))
        )
    };
    line(&format!("with {dropped} idle pairs"), &loaded);
    line("with none", &none);
    let ratio =
        |q: f64| loaded.value_at_quantile(q) as f64 / none.value_at_quantile(q).max(1) as f64;
    println!();
    print_rows(&[
        target(
            "latency ratio p50 (idle pairs / none)",
            format!("{:.2} ×", ratio(0.5)),
            "≤ 1.1 ×",
            ratio(0.5) <= 1.1,
        ),
        row("latency ratio p99", format!("{:.2} ×", ratio(0.99))),
        row("latency ratio p99.9", format!("{:.2} ×", ratio(0.999))),
        row(
            format!("dropping the {dropped} pairs"),
            format!("{:.0} ms", dropped_in.as_secs_f64() * 1e3),
        ),
    ]);

    if plan.procs > 0 {
        procs(plan, &procs_domain(&domain))?;
    }
    Ok(())
}

/// `count` round trips; the histogram holds one-way times (round trip / 2) in ns.
fn round_trips(
    ping: &Publisher<u64>,
    pong: &Subscriber<u64>,
    count: u64,
) -> Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for i in 0..count {
        let start = Instant::now();
        ping.publish(i)?;
        let back =
            pong.receive_timeout(Duration::from_secs(10))?.ok_or("the echo peer went quiet")?;
        let elapsed = start.elapsed();
        if *back != i {
            return Err(format!("echo {} for ping {i}", *back).into());
        }
        h.record((elapsed.as_nanos() as u64 / 2).max(1))?;
    }
    Ok(h)
}

/// The ping-pong's echo peer.
pub fn echo_peer(_args: &Args) -> Result<()> {
    let pings = Subscriber::<u64>::new("scale-lat/ping")?;
    let pongs = Publisher::<u64>::new("scale-lat/pong")?;
    peer::ready()?;
    loop {
        let Some(ping) = pings.receive_timeout(Duration::from_secs(60))? else {
            return Err("no ping for a minute".into());
        };
        let value = *ping;
        drop(ping);
        if value == STOP {
            return Ok(());
        }
        pongs.publish(value)?;
    }
}

/// One of the many processes: joins `topics` pairs, publishes one message on each and receives
/// it, says `joined`, and leaves when its stdin closes.
pub fn proc_peer(args: &Args) -> Result<()> {
    let index: usize = args.parse_of("index")?;
    let topics: usize = args.parse_of("topics")?;
    let mut pairs = Vec::with_capacity(topics);
    for j in 0..topics {
        let topic = format!("many/p{index}/t{j}");
        pairs.push((Publisher::<u64>::new(&topic)?, Subscriber::<u64>::new(&topic)?));
    }
    for (j, (publisher, subscriber)) in pairs.iter().enumerate() {
        publisher.publish(j as u64)?;
        let got = subscriber
            .receive_timeout(Duration::from_secs(10))?
            .ok_or_else(|| format!("topic {j}: the message did not arrive"))?;
        if *got != j as u64 {
            return Err(format!("topic {j}: got {}", *got).into());
        }
    }
    peer::say("joined")?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    drop(pairs);
    Ok(())
}

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Only on the error path (the happy path waits for every child first).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn procs(plan: &Plan, domain: &str) -> Result<()> {
    println!(
        "\n## {} processes × {} pairs each in one domain ({domain})\n",
        plan.procs, plan.per_proc
    );
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let mut children = Vec::with_capacity(plan.procs);
    for k in 0..plan.procs {
        let mut child = Command::new(&exe)
            .args([
                peer::CHILD_FLAG,
                "scale-proc",
                &format!("index={k}"),
                &format!("topics={}", plan.per_proc),
            ])
            .env("IPC_DOMAIN", domain)
            .env_remove(CHILD_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        children.push(Proc { child, stdin, stdout });
    }
    for (k, proc) in children.iter_mut().enumerate() {
        let mut line = String::new();
        proc.stdout.read_line(&mut line)?;
        if line.trim() != "joined" {
            let status = proc.child.wait()?;
            return Err(format!("process {k} did not join ({status}, said {line:?})").into());
        }
    }
    let joined = start.elapsed();

    let listing = Instant::now();
    let info = ipc_runtime::inspect::domain(domain)?;
    let listed_in = listing.elapsed();
    let topics = info.topics.len();
    let cli = exe.with_file_name("ipc");
    let cli_time = if cli.exists() {
        let t = Instant::now();
        let out = Command::new(&cli).args(["list", "--domain", domain]).output()?;
        let elapsed = t.elapsed();
        if !out.status.success() {
            return Err(format!("ipc list failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        format!("{:.0} ms", elapsed.as_secs_f64() * 1e3)
    } else {
        format!("not built ({} missing)", cli.display())
    };
    let cli_ok = cli_time.ends_with(" ms")
        && cli_time.trim_end_matches(" ms").parse::<f64>().is_ok_and(|ms| ms <= 1000.0);

    let leaving = Instant::now();
    for proc in &mut children {
        if let Some(mut stdin) = proc.stdin.take() {
            stdin.write_all(b"leave\n")?;
        }
    }
    for (k, proc) in children.iter_mut().enumerate() {
        let status = proc.child.wait()?;
        if !status.success() {
            return Err(format!("process {k} failed: {status}").into());
        }
    }
    let left = leaving.elapsed();
    let total = start.elapsed();
    let remaining = shm_entries(domain);
    print_rows(&[
        row(
            "spawn + join + publish and receive one message per topic",
            format!("{:.0} ms", joined.as_secs_f64() * 1e3),
        ),
        target(
            "ipc list (inspect::domain)",
            format!("{:.0} ms for {topics} topics", listed_in.as_secs_f64() * 1e3),
            "≤ 1 s",
            listed_in <= Duration::from_secs(1),
        ),
        target("ipc list (the `ipc` binary)", cli_time, "≤ 1 s", cli_ok),
        row("leave (until every process exited)", format!("{:.0} ms", left.as_secs_f64() * 1e3)),
        row("total", format!("{:.0} ms", total.as_secs_f64() * 1e3)),
        target(
            "left in the domain",
            format!("{} objects", remaining.len()),
            "0",
            remaining.is_empty(),
        ),
    ]);
    Ok(())
}
