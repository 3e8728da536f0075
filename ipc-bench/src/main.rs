//! `ipc-bench`: how fast `ipc-runtime` moves messages between **processes**, against baselines
//! measured in the same run and, with the cargo feature `iceoryx2`, against iceoryx2 0.9.
//!
//! ```sh
//! cargo run --release -p ipc-bench                    # full run (15-30 s)
//! cargo run --release -p ipc-bench -- --quick         # smoke run (seconds)
//! cargo run --release -p ipc-bench --features iceoryx2 -- --quick  # with iceoryx2 (what CI runs)
//! cargo run --release -p ipc-bench -- --pin 0,1 --json > bench.json
//! ```
//!
//! The binary re-executes itself for every peer ([`peer`]); each run uses its own `IPC_DOMAIN`
//! and leaves nothing in `/dev/shm` or the temporary directory. Cases ([`report::Case`]):
//!
//! * ping-pong over two topics, one-way latency = round trip / 2, for `[u8; 8]`, `[u8; 1 KiB]`,
//!   `[u8; 64 KiB]` and `ShmVec<u8>` of 8 B, 64 KiB, 1 MiB and 4 MiB, each with a busy-poll and a
//!   blocking (futex) receiver ([`ours`]; what crosses, and what is inside the clock, is
//!   described in [`messages`]);
//! * request/response round trip (`[u8; 8]` request, 16-byte response), busy-poll and blocking
//!   ([`reqres`]), next to the ping-pong of the same mode;
//!   with `--features iceoryx2`, iceoryx2's request/response round trip too (busy-poll);
//! * fan-out 1 → 1, 4, 16 blocking subscribers, latency to the last receiver;
//! * wake-up latency of a sleeping receiver, and ping-pong, through a blocking receive, a
//!   `WaitSet` with 1 and 16 subscribers, and `receive_async` on tokio ([`wakeup`]);
//! * throughput one → one, 8 B and 64 KiB, busy-poll and blocking receiver;
//! * baselines ([`baselines`]): raw atomic-flag ping-pong over shared memory (the floor),
//!   Unix-socket and pipe ping-pong, Unix-datagram throughput;
//! * two diagnostics that say where time goes: the time spent inside `publish` during fan-out
//!   (it wakes every sleeping subscriber), and publish → `try_receive` → drop in one thread (the
//!   software cost of a message with no cache line crossing cores), timed in batches of 100
//!   messages so that no clock read per message is inside the figure;
//! * `ipc-bench pipe`: byte-pipe throughput against an OS pipe and a Unix stream socket, run on
//!   its own ([`pipe`]);
//! * `ipc-bench scale [--topics N] [--quick]`: what many topics cost — creation, threads, fds,
//!   RSS, idle CPU and OS objects with N idle publisher+subscriber pairs in one process, latency
//!   next to them, and 100 processes × 100 topics in one domain with `ipc list` ([`scale`]);
//! * with `--features iceoryx2` (off by default, so the plain build stays light): the same
//!   ping-pong with iceoryx2 0.9 publish-subscribe for `[u8; 8]` and `[u8; 64 KiB]`, busy-poll
//!   (loop on `receive`) and blocking (its event service: `notify` after `send`,
//!   `blocking_wait_one` then `receive`), and its 8-byte throughput with a busy-poll receiver —
//!   same peers, rounds, warm-up, iteration counts and histograms; its own zero-copy loan API,
//!   default `ipc::Service` configuration, files under a per-run prefix and root directory
//!   (`iox2`, compiled in only with the feature).
//!
//! Cases run in interleaved rounds (`--rounds`, a fresh peer each time), so load from other
//! processes on the machine hits them alike; the load average before and after is printed.
//! Output: percentile table, ours-against-baseline table with ratios, the ours-vs-iceoryx2 table
//! (p50 and p99 ratios, throughput ratio) when iceoryx2 ran, the targets with pass/miss
//! ([`report`]), an SVG plot ([`plot`]), optionally JSON with the same data. Numbers are
//! reported, never asserted.

#[cfg(not(unix))]
fn main() {
    eprintln!("ipc-bench needs Unix (its baselines are Unix sockets and pipes); skipped");
}

#[cfg(unix)]
mod baselines;
#[cfg(all(unix, feature = "iceoryx2"))]
mod iox2;
#[cfg(unix)]
mod messages;
#[cfg(unix)]
mod options;
#[cfg(unix)]
mod ours;
#[cfg(unix)]
mod peer;
#[cfg(unix)]
mod pipe;
#[cfg(unix)]
mod plot;
#[cfg(unix)]
mod report;
#[cfg(unix)]
mod reqres;
#[cfg(unix)]
mod scale;
#[cfg(unix)]
mod wakeup;

/// Any error of the benchmark.
#[cfg(unix)]
type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`Error`].
#[cfg(unix)]
type Result<T> = std::result::Result<T, Error>;

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = if args.first().map(String::as_str) == Some(peer::CHILD_FLAG) {
        run::peer_main(&args[1..])
    } else if args.first().map(String::as_str) == Some("pipe") {
        pipe::main(&args[1..])
    } else if args.first().map(String::as_str) == Some("scale") {
        scale::main(&args[1..])
    } else {
        run::main(&args)
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ipc-bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(unix)]
mod run {
    //! The parent's plan and loop, and the peers' dispatch.

    use std::time::{Duration, Instant};

    use hdrhistogram::Histogram;

    use crate::Result;
    use crate::messages::PayloadKind;
    use crate::options::{Options, USAGE};
    use crate::ours::{self, Mode};
    use crate::peer::{self, Args, Launcher};
    use crate::report::{Case, Latency, Meta, Rate, Results};
    use crate::{baselines, plot};

    /// A peer process: dispatches on its role.
    pub fn peer_main(args: &[String]) -> Result<()> {
        peer::pin_from_env()?;
        let role = args.first().ok_or("peer without a role")?;
        let kv = Args::parse(&args[1..])?;
        match role.as_str() {
            "echo" => ours::echo_peer(&kv),
            "rr-server" => crate::reqres::server_peer(&kv),
            "wake" => crate::wakeup::peer(&kv),
            "stream" => ours::stream_peer(&kv),
            "floor" => baselines::floor_peer(&kv),
            "uds" => baselines::uds_peer(&kv),
            "pipe" => baselines::pipe_peer(),
            "dgram" => baselines::dgram_peer(&kv),
            "pipe-sink" => crate::pipe::sink_peer(&kv),
            "scale-echo" => crate::scale::echo_peer(&kv),
            "scale-proc" => crate::scale::proc_peer(&kv),
            #[cfg(feature = "iceoryx2")]
            "iox2-echo" => crate::iox2::echo_peer(&kv),
            #[cfg(feature = "iceoryx2")]
            "iox2-stream" => crate::iox2::stream_peer(&kv),
            #[cfg(feature = "iceoryx2")]
            "iox2-rr-server" => crate::iox2::rr_server_peer(&kv),
            other => Err(format!("unknown peer role {other}").into()),
        }
    }

    /// Every case, in the order a round runs them.
    fn plan(options: &Options) -> Vec<Case> {
        // The iceoryx2 comparison runs when the feature compiled it in.
        let iceoryx2 = cfg!(feature = "iceoryx2");
        let mut cases = vec![Case::RawAtomic, Case::Uds, Case::Pipe, Case::InProcess];
        for mode in [Mode::Busy, Mode::Blocking] {
            cases.extend(PayloadKind::ALL.iter().map(|&kind| Case::PingPong(kind, mode)));
            cases.push(Case::ReqRes(mode));
            if iceoryx2 && mode == Mode::Busy {
                cases.push(Case::Iox2ReqRes);
            }
            if iceoryx2 {
                cases.extend(
                    Case::ICEORYX2_SIZES.map(|n| Case::Iox2PingPong(PayloadKind::Fixed(n), mode)),
                );
            }
        }
        cases.extend([1, 4, 16].map(Case::FanOut));
        cases.extend(crate::wakeup::WakeMode::ALL.map(Case::Wake));
        cases.extend(crate::wakeup::WakeMode::ALL.map(Case::WakePingPong));
        for size in [8, 64 << 10] {
            cases.push(Case::DgramThroughput(size));
            for mode in [Mode::Busy, Mode::Blocking] {
                cases.push(Case::Throughput(PayloadKind::Fixed(size), mode));
            }
            if iceoryx2 && size == 8 {
                cases.push(Case::Iox2Throughput(PayloadKind::Fixed(size)));
            }
        }
        if let Some(only) = &options.only {
            cases.retain(|case| only.iter().any(|o| case.key().starts_with(o.as_str())));
        }
        cases
    }

    /// Messages per round of a throughput case: 20 per iteration at 8 B, 2 at 64 KiB.
    fn stream_messages(size: usize, options: &Options) -> u64 {
        let per_iteration = if size <= 64 { 20 } else { 2 };
        (options.iterations * per_iteration).div_ceil(options.rounds as u64)
    }

    enum Acc {
        Latency(Histogram<u64>),
        /// Fan-out: last-receiver latency and time inside `publish`.
        FanOut(Histogram<u64>, Histogram<u64>),
        Rate {
            messages: u64,
            elapsed: Duration,
        },
    }

    fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "n/a".into())
    }

    /// Names of this run left in /dev/shm and the temporary directory, apart from this
    /// process's own heap (removed when it exits). Both ours and iceoryx2's names start with
    /// `<domain>.` (iceoryx2's file-name prefix, see the `iox2` module); a directory of the run
    /// (iceoryx2's root, `<domain>.iox2`, is removed when empty) is listed with what is in it.
    fn leftovers(domain: &str) -> Vec<String> {
        let own = ipc_runtime::heap::try_default().map(|h| format!("{:016x}", h.id()));
        let prefix = format!("{domain}.");
        let mut found = Vec::new();
        for dir in [
            ipc_runtime::liveness::lock_dir(),
            std::path::PathBuf::from("/dev/shm"),
            std::env::temp_dir(),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = own.as_ref().is_some_and(|id| name.contains(id.as_str()));
                let path = dir.join(&name).display().to_string();
                if !name.starts_with(&prefix) || ours || found.contains(&path) {
                    continue;
                }
                let inside = files_under(&entry.path());
                if inside.is_empty() {
                    found.push(path);
                } else {
                    found.extend(inside);
                }
            }
        }
        found
    }

    /// The files (not directories) under `dir`, recursively; empty if it is not a directory.
    fn files_under(dir: &std::path::Path) -> Vec<String> {
        let mut files = Vec::new();
        if dir.is_symlink() {
            return files;
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                files.extend(files_under(&path));
            } else {
                files.push(path.display().to_string());
            }
        }
        files
    }

    fn run_case(
        launcher: &Launcher,
        case: Case,
        round: u32,
        options: &Options,
        acc: &mut Acc,
    ) -> Result<()> {
        let per_round = options.iterations.div_ceil(options.rounds as u64);
        let warmup = options.warmup;
        match (case, acc) {
            (Case::PingPong(kind, mode), Acc::Latency(h)) => {
                ours::pingpong(launcher, kind, mode, round, warmup, per_round, h)
            }
            (Case::ReqRes(mode), Acc::Latency(h)) => {
                crate::reqres::round_trip(launcher, mode, round, warmup, per_round, h)
            }
            (Case::FanOut(n), Acc::FanOut(h, publish)) => {
                ours::fanout(launcher, n, round, warmup, per_round, h, publish)
            }
            (Case::Wake(mode), Acc::Latency(h)) => {
                crate::wakeup::run(launcher, mode, true, round, warmup, per_round, h)
            }
            (Case::WakePingPong(mode), Acc::Latency(h)) => {
                crate::wakeup::run(launcher, mode, false, round, warmup, per_round, h)
            }
            (Case::RawAtomic, Acc::Latency(h)) => {
                baselines::raw_atomic(launcher, round, warmup, per_round, h)
            }
            (Case::Uds, Acc::Latency(h)) => baselines::uds(launcher, round, warmup, per_round, h),
            (Case::InProcess, Acc::Latency(h)) => ours::in_process(round, warmup, per_round, h),
            (Case::Pipe, Acc::Latency(h)) => baselines::pipe(launcher, warmup, per_round, h),
            (Case::Throughput(kind, mode), Acc::Rate { messages, elapsed }) => {
                let n = stream_messages(kind.bytes(), options);
                *elapsed += ours::throughput(launcher, kind, mode, round, warmup, n)?;
                *messages += n;
                Ok(())
            }
            (Case::DgramThroughput(size), Acc::Rate { messages, elapsed }) => {
                let n = stream_messages(size, options);
                *elapsed += baselines::uds_throughput(launcher, size, round, warmup, n)?;
                *messages += n;
                Ok(())
            }
            #[cfg(feature = "iceoryx2")]
            (Case::Iox2PingPong(kind, mode), Acc::Latency(h)) => {
                crate::iox2::pingpong(launcher, kind, mode, round, warmup, per_round, h)
            }
            #[cfg(feature = "iceoryx2")]
            (Case::Iox2Throughput(kind), Acc::Rate { messages, elapsed }) => {
                let n = stream_messages(kind.bytes(), options);
                *elapsed += crate::iox2::throughput(launcher, kind, round, warmup, n)?;
                *messages += n;
                Ok(())
            }
            #[cfg(feature = "iceoryx2")]
            (Case::Iox2ReqRes, Acc::Latency(h)) => {
                crate::iox2::reqres(launcher, round, warmup, per_round, h)
            }
            #[cfg(not(feature = "iceoryx2"))]
            (Case::Iox2PingPong(..) | Case::Iox2Throughput(_) | Case::Iox2ReqRes, _) => {
                Err("built without the `iceoryx2` feature".into())
            }
            _ => Err("case and accumulator disagree".into()),
        }
    }

    /// The parent: runs the plan, reports.
    pub fn main(args: &[String]) -> Result<()> {
        let options = Options::parse(args)?;
        if options.help {
            print!("{USAGE}");
            return Ok(());
        }
        let started = Instant::now();
        let load_before = load_average();
        // Before pinning, which narrows what the process may use.
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let domain =
            options.domain.clone().unwrap_or_else(|| format!("ipcbench-{}", std::process::id()));
        ipc_runtime::domain::set_current(&domain)?;
        // Room for 4 MiB payloads and 64 KiB pools; reserved sparsely, so it costs what is used.
        ipc_runtime::init_heap(512 << 20)?;
        if let Some(cpus) = &options.pin
            && let Some(&first) = cpus.first()
        {
            peer::pin(first)?;
        }
        let launcher = Launcher { domain: domain.clone(), cpus: options.pin.clone() };
        let cases = plan(&options);
        let mut accs: Vec<(Case, Acc)> = cases
            .iter()
            .map(|&case| {
                let hist = || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
                let acc = match case {
                    _ if case.is_rate() => Acc::Rate { messages: 0, elapsed: Duration::ZERO },
                    Case::FanOut(_) => Acc::FanOut(hist(), hist()),
                    _ => Acc::Latency(hist()),
                };
                (case, acc)
            })
            .collect();
        let mut outcome = Ok(());
        'rounds: for round in 0..options.rounds {
            for (case, acc) in &mut accs {
                let t = Instant::now();
                if let Err(e) = run_case(&launcher, *case, round, &options, acc) {
                    outcome = Err(format!("{} (round {}): {e}", case.key(), round + 1));
                    break 'rounds;
                }
                let so_far = match acc {
                    Acc::Latency(h) | Acc::FanOut(h, _) => {
                        format!("p50 {}", crate::report::fmt_ns(h.value_at_quantile(0.5)))
                    }
                    Acc::Rate { messages, elapsed } => {
                        crate::report::fmt_rate(*messages as f64 / elapsed.as_secs_f64().max(1e-9))
                    }
                };
                eprintln!(
                    "[round {}/{}] {:<55} {so_far:>12}  ({:.2?})",
                    round + 1,
                    options.rounds,
                    case.label(),
                    t.elapsed()
                );
            }
        }
        // Also after a failure: what a killed iceoryx2 peer left is removed here.
        #[cfg(feature = "iceoryx2")]
        crate::iox2::cleanup(&domain);
        outcome?;
        let mut latency = Vec::new();
        let mut rates = Vec::new();
        for (case, acc) in accs {
            match acc {
                Acc::Latency(hist) => latency.push(Latency { case, hist }),
                Acc::FanOut(hist, publish) => {
                    latency.push(Latency { case, hist });
                    if let Case::FanOut(n) = case {
                        latency.push(Latency { case: Case::FanOutPublish(n), hist: publish });
                    }
                }
                Acc::Rate { messages, elapsed } => rates.push(Rate { case, messages, elapsed }),
            }
        }
        let left = leftovers(&domain);
        if !left.is_empty() {
            eprintln!("ipc-bench: WARNING: left behind: {}", left.join(", "));
        }
        let results = Results {
            meta: Meta {
                domain,
                quick: options.quick,
                pin: options.pin.clone(),
                warmup: options.warmup,
                iterations: options.rounds as u64
                    * options.iterations.div_ceil(options.rounds as u64),
                rounds: options.rounds,
                cpus,
                load: (load_before, load_average()),
                wall: started.elapsed(),
            },
            latency,
            rates,
        };
        let svg = options.svg.display().to_string();
        plot::write_svg(&results, &options.svg)?;
        if options.json {
            let mut json = results.json(Some(&svg));
            json["meta"]["left_behind"] = left.into();
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else {
            print!("{}", results.markdown(Some(&svg)));
        }
        Ok(())
    }
}
