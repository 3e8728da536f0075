//! Event wake-up latency between two processes, per backend, against a plain Unix-domain-socket
//! ping-pong measured in the same run.
//!
//! Each transport runs a ping-pong between this process and a child (this binary re-executed):
//! the parent notifies `ping`, the child's listener wakes and notifies `pong`, the parent's
//! listener wakes. One-way latency is half the round trip. Both sides block in `wait` (so the
//! figure is a wake-up, not a poll), except for the busy-spin backend, whose waiters spin by
//! design. The baseline does the same with one-byte datagrams on two bound Unix sockets and
//! blocking `recv`. Transports are measured in interleaved rounds (a fresh child pair each), so
//! machine noise hits all of them alike.
//!
//! Run: `cargo bench -p ipc-runtime --bench events` (`-- --quick` for a smoke run: seconds;
//! `-- --only futex,spin` for some transports; the baseline always runs).
//!
//! `-- --busy` keeps every CPU busy with nice-19 spinning threads (in a child process) while
//! measuring. A blocking wake-up on an idle CPU includes leaving the CPU's idle state, which in
//! a VM without guest halt-polling is a VM exit and a host reschedule (tens of microseconds)
//! and swamps the mechanism itself; busy CPUs never idle, and any woken task preempts a nice-19
//! spinner at once, so the figures show the mechanisms. Report both.

#[cfg(not(unix))]
fn main() {
    eprintln!("the events bench needs Unix domain sockets (its baseline); skipped");
}

#[cfg(unix)]
fn main() {
    bench::main();
}

#[cfg(unix)]
mod bench {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixDatagram;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use hdrhistogram::Histogram;
    use ipc_runtime::event::{EventId, Listener, Notifier};
    use ipc_runtime::wait::{Polling, Spin, UnixSocket, WaitBackend};

    const ROLE_ENV: &str = "EVBENCH_ROLE";
    const TRANSPORT_ENV: &str = "EVBENCH_TRANSPORT";
    const PING: EventId = EventId::new(0);
    const STOP: EventId = EventId::new(1);

    /// What is measured, in table order.
    const TRANSPORTS: [&str; 6] =
        ["socket-baseline", "futex", "futex+spin", "unix-socket", "spin", "polling"];

    fn label(transport: &str) -> &'static str {
        match transport {
            "socket-baseline" => "Unix-socket ping-pong (baseline)",
            "futex" => "events, futex backend (default)",
            "futex+spin" => "events, futex backend, spin(200) (~5 µs) before sleeping",
            "unix-socket" => "events, unix-socket backend",
            "spin" => "events, busy-spin backend",
            "polling" => "events, polling backend",
            _ => "?",
        }
    }

    /// Spin count of the listener for a transport (only `futex+spin` spins before sleeping).
    fn spin_of(transport: &str) -> u32 {
        if transport == "futex+spin" { 200 } else { 0 }
    }

    pub fn main() {
        if let Ok(role) = std::env::var(ROLE_ENV) {
            let transport = std::env::var(TRANSPORT_ENV).expect("transport");
            match role.as_str() {
                "echo" => echo(&transport),
                "burner" => burn(),
                other => panic!("unknown role {other}"),
            }
            return;
        }
        let args: Vec<String> = std::env::args().collect();
        let quick = args.iter().any(|a| a == "--quick");
        // `--only futex,spin` measures those (and the baseline) only.
        let only: Option<Vec<String>> = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1))
            .map(|list| list.split(',').map(str::to_owned).collect());
        let busy = args.iter().any(|a| a == "--busy");
        let burner = busy.then(|| {
            Command::new(std::env::current_exe().unwrap())
                .env(ROLE_ENV, "burner")
                .env(TRANSPORT_ENV, "-")
                .spawn()
                .expect("spawn burner")
        });
        let rounds = if quick { 1 } else { 5 };
        let mut results: Vec<(&str, Histogram<u64>)> = TRANSPORTS
            .iter()
            // The futex backend exists on Linux only.
            .filter(|&&t| cfg!(target_os = "linux") || !t.starts_with("futex"))
            .filter(|&&t| {
                t == "socket-baseline" || only.as_ref().is_none_or(|o| o.iter().any(|x| x == t))
            })
            .map(|&t| (t, Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap()))
            .collect();
        for round in 0..rounds {
            for (transport, hist) in &mut results {
                // Polling sleeps 50 µs and more per wake-up: fewer iterations keep the run short.
                let iterations = match (*transport, quick) {
                    ("polling", true) => 200,
                    ("polling", false) => 2_000,
                    (_, true) => 2_000,
                    (_, false) => 40_000,
                };
                run(transport, round, iterations, hist);
            }
        }
        if let Some(mut burner) = burner {
            burner.kill().unwrap();
            burner.wait().unwrap();
        }
        report(&results, quick, busy);
    }

    /// Keeps every CPU busy at the lowest priority until killed.
    fn burn() {
        rustix::process::nice(19).expect("nice");
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads: Vec<_> = (0..cpus)
            .map(|_| {
                std::thread::spawn(|| {
                    loop {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Runs one chunk of `iterations` round trips (after a warm-up) and records one-way latencies.
    fn run(transport: &str, round: u32, iterations: u64, hist: &mut Histogram<u64>) {
        let domain = format!("bench{}-{transport}-{round}", std::process::id()).replace('+', "-");
        match transport {
            "socket-baseline" => socket_parent(&domain, iterations, hist),
            #[cfg(target_os = "linux")]
            "futex" | "futex+spin" => {
                events_parent::<ipc_runtime::wait::Futex>(transport, &domain, iterations, hist)
            }
            "unix-socket" => events_parent::<UnixSocket>(transport, &domain, iterations, hist),
            "spin" => events_parent::<Spin>(transport, &domain, iterations, hist),
            "polling" => events_parent::<Polling>(transport, &domain, iterations, hist),
            other => panic!("unknown transport {other}"),
        }
    }

    fn spawn_echo(transport: &str, domain: &str) -> (Child, BufReader<std::process::ChildStdout>) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE_ENV, "echo")
            .env(TRANSPORT_ENV, transport)
            .env("IPC_DOMAIN", domain)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn echo");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "echo child did not start");
        (child, out)
    }

    fn finish(mut child: Child) {
        let status = child.wait().unwrap();
        assert!(status.success(), "echo child failed: {status}");
    }

    fn warmup(iterations: u64) -> u64 {
        (iterations / 10).max(100)
    }

    fn events_parent<B: WaitBackend>(
        transport: &str,
        domain: &str,
        iterations: u64,
        hist: &mut Histogram<u64>,
    ) {
        let pong = Listener::builder("pong")
            .domain(domain)
            .backend::<B>()
            .spin(spin_of(transport))
            .create()
            .unwrap();
        let (child, _out) = spawn_echo(transport, domain);
        let ping = Notifier::builder("ping").domain(domain).backend::<B>().create().unwrap();
        for i in 0..warmup(iterations) + iterations {
            let start = Instant::now();
            ping.notify(PING).unwrap();
            pong.wait().unwrap();
            let rtt = start.elapsed().as_nanos() as u64;
            if i >= warmup(iterations) {
                hist.record((rtt / 2).max(1)).unwrap();
            }
        }
        ping.notify(STOP).unwrap();
        finish(child);
    }

    fn echo(transport: &str) {
        match transport {
            "socket-baseline" => socket_echo(),
            #[cfg(target_os = "linux")]
            "futex" | "futex+spin" => echo_events::<ipc_runtime::wait::Futex>(transport),
            "unix-socket" => echo_events::<UnixSocket>(transport),
            "spin" => echo_events::<Spin>(transport),
            "polling" => echo_events::<Polling>(transport),
            other => panic!("unknown transport {other}"),
        }
    }

    fn echo_events<B: WaitBackend>(transport: &str) {
        let ping =
            Listener::builder("ping").backend::<B>().spin(spin_of(transport)).create().unwrap();
        let pong = Notifier::builder("pong").backend::<B>().create().unwrap();
        println!("ready");
        std::io::stdout().flush().unwrap();
        loop {
            match ping.wait().unwrap() {
                STOP => break,
                _ => pong.notify(PING).unwrap(),
            }
        }
    }

    fn socket_path(domain: &str, side: &str) -> PathBuf {
        ipc_runtime::liveness::lock_dir().join(format!("{domain}.bench.{side}.sock"))
    }

    fn socket_parent(domain: &str, iterations: u64, hist: &mut Histogram<u64>) {
        let mine = socket_path(domain, "parent");
        let _ = std::fs::remove_file(&mine);
        let socket = UnixDatagram::bind(&mine).unwrap();
        let (child, _out) = spawn_echo("socket-baseline", domain);
        socket.connect(socket_path(domain, "child")).unwrap();
        let mut buf = [0u8; 1];
        for i in 0..warmup(iterations) + iterations {
            let start = Instant::now();
            socket.send(&[0]).unwrap();
            socket.recv(&mut buf).unwrap();
            let rtt = start.elapsed().as_nanos() as u64;
            if i >= warmup(iterations) {
                hist.record((rtt / 2).max(1)).unwrap();
            }
        }
        socket.send(&[1]).unwrap();
        finish(child);
        let _ = std::fs::remove_file(&mine);
    }

    fn socket_echo() {
        let domain = ipc_runtime::domain::current();
        let mine = socket_path(domain, "child");
        let _ = std::fs::remove_file(&mine);
        let socket = UnixDatagram::bind(&mine).unwrap();
        socket.connect(socket_path(domain, "parent")).unwrap();
        println!("ready");
        std::io::stdout().flush().unwrap();
        let mut buf = [0u8; 1];
        loop {
            socket.recv(&mut buf).unwrap();
            if buf[0] == 1 {
                break;
            }
            socket.send(&[0]).unwrap();
        }
        let _ = std::fs::remove_file(&mine);
    }

    fn fmt_ns(ns: u64) -> String {
        if ns >= 10_000 { format!("{:.1} µs", ns as f64 / 1000.0) } else { format!("{ns} ns") }
    }

    fn report(results: &[(&str, Histogram<u64>)], quick: bool, busy: bool) {
        let base =
            results.iter().find(|(t, _)| *t == "socket-baseline").unwrap().1.value_at_quantile(0.5);
        println!();
        println!(
            "Event wake-up latency between two processes, one-way (round trip / 2), CPUs {}{}",
            if busy { "kept busy by nice-19 spinners" } else { "otherwise idle" },
            if quick { " — QUICK smoke run, numbers are rough" } else { "" }
        );
        println!();
        println!("| transport | samples | p50 | p99 | p99.9 | p50 / socket baseline |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (transport, h) in results {
            let p50 = h.value_at_quantile(0.5);
            println!(
                "| {} | {} | {} | {} | {} | {:.2} |",
                label(transport),
                h.len(),
                fmt_ns(p50),
                fmt_ns(h.value_at_quantile(0.99)),
                fmt_ns(h.value_at_quantile(0.999)),
                p50 as f64 / base as f64
            );
        }
        let p50 = |name: &str| {
            results.iter().find(|(t, _)| *t == name).map(|(_, h)| h.value_at_quantile(0.5))
        };
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!();
        if let Some(futex) = p50("futex") {
            println!(
                "Target: futex p50 ≤ 0.5 × socket baseline: {} / {} = {:.2} → {}",
                fmt_ns(futex),
                fmt_ns(base),
                futex as f64 / base as f64,
                verdict(futex * 2 <= base)
            );
        }
        if let Some(spin) = p50("spin") {
            println!("Target: busy-spin p50 ≤ 300 ns: {} → {}", fmt_ns(spin), verdict(spin <= 300));
        }
    }
}
