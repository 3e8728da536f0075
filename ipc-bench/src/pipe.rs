//! Byte-pipe throughput (`ipc-bench pipe`): `ipc_runtime::pipe` against an OS pipe and a Unix
//! stream socket, between two processes, in the same run.
//!
//! ```sh
//! cargo run --release -p ipc-bench -- pipe                       # 3 rounds × 1 GiB each
//! cargo run --release -p ipc-bench -- pipe --bytes 268435456 --rounds 5 --pin 0,1
//! ```
//!
//! The parent writes `--bytes` bytes in 64 KiB `write`s (`--chunk`) to a peer process, which
//! reads until end of stream and says `done <bytes>`; the clock runs from just before the first
//! write to that line. Transports:
//!
//! * `shm-pipe`: [`PipeWriter`] → [`PipeReader`] with default options (1 MiB ring), the reader
//!   copying into its own 64 KiB buffer with `Read::read` (as the baselines do);
//! * `shm-pipe-bufread`: the same, reading zero-copy with `BufRead::fill_buf` (the bytes are
//!   summed, so they are touched);
//! * `os-pipe`: the peer's stdin (an anonymous OS pipe, default capacity; the peer reads the
//!   announced byte count rather than to the end of the stream);
//! * `unix-stream`: a `std::os::unix::net::UnixStream`.
//!
//! Transports run interleaved, one after another in each round, with a fresh peer each time;
//! the report gives the median and best round per transport and the ratios of the medians.

use std::io::{BufRead, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use ipc_runtime::pipe::{PipeReader, PipeWriter};

use crate::Result;
use crate::peer::{self, Args, Launcher};

const TRANSPORTS: [&str; 4] = ["shm-pipe", "shm-pipe-bufread", "os-pipe", "unix-stream"];

fn socket_path(domain: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{domain}.pipebench.sock"))
}

/// The parent: `ipc-bench pipe [--bytes N] [--chunk N] [--rounds N] [--pin a,b]`.
pub fn main(args: &[String]) -> Result<()> {
    let mut bytes: u64 = 1 << 30;
    let mut chunk: usize = 64 << 10;
    let mut rounds: u32 = 3;
    let mut pin: Option<Vec<usize>> = None;
    let mut tuning = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bytes" => bytes = value()?.parse()?,
            "--chunk" => chunk = value()?.parse()?,
            "--rounds" => rounds = value()?.parse()?,
            // Non-default pipe options (not for headline rows): ring bytes, polls before sleeping.
            "--capacity" => tuning.push(("capacity", value()?.clone())),
            "--spin" => tuning.push(("spin", value()?.clone())),
            "--pin" => {
                pin = Some(
                    value()?.split(',').map(str::parse).collect::<std::result::Result<_, _>>()?,
                )
            }
            other => return Err(format!("ipc-bench pipe: unknown argument {other}").into()),
        }
    }
    let domain = format!("ipcbench-pipe-{}", std::process::id());
    if let Some(&first) = pin.as_ref().and_then(|p| p.first()) {
        peer::pin(first)?;
    }
    let launcher = Launcher { domain: domain.clone(), cpus: pin.clone() };
    if !tuning.is_empty() {
        println!("NOT DEFAULT: pipe options {tuning:?}");
    }
    println!(
        "pipe throughput: {bytes} bytes per round in {chunk}-byte writes, {rounds} rounds, two processes{}",
        pin.as_ref().map_or(String::new(), |p| format!(", pinned to {p:?}"))
    );
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); TRANSPORTS.len()];
    for round in 0..rounds {
        for (t, transport) in TRANSPORTS.iter().enumerate() {
            let elapsed = run(&launcher, transport, round, bytes, chunk, &tuning)?;
            times[t].push(elapsed);
        }
    }
    let gbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e9;
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            gbps(t[t.len() / 2])
        })
        .collect();
    println!(
        "{:<18} {:>12} {:>12} {:>10} {:>12}",
        "transport", "median GB/s", "best GB/s", "vs os-pipe", "vs unix-stream"
    );
    for (t, transport) in TRANSPORTS.iter().enumerate() {
        println!(
            "{:<18} {:>12.2} {:>12.2} {:>9.2}x {:>11.2}x",
            transport,
            medians[t],
            gbps(times[t][0]),
            medians[t] / medians[2],
            medians[t] / medians[3]
        );
    }
    let target = medians[0] >= 2.0 * medians[2] && medians[0] >= 2.0 * medians[3];
    println!(
        "target shm-pipe >= 2x os-pipe and >= 2x unix-stream (medians): {}",
        if target { "met" } else { "MISSED" }
    );
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{domain}.")))
        .collect();
    if !left.is_empty() {
        return Err(format!("left behind: {left:?}").into());
    }
    Ok(())
}

/// One round of one transport; returns the time from the first write to the peer's `done`.
fn run(
    launcher: &Launcher,
    transport: &str,
    round: u32,
    bytes: u64,
    chunk: usize,
    tuning: &[(&str, String)],
) -> Result<Duration> {
    let buf = vec![0x5au8; chunk];
    let mut args = vec![
        ("transport", transport.to_owned()),
        ("round", round.to_string()),
        ("bytes", bytes.to_string()),
    ];
    args.extend(tuning.iter().cloned());
    let mut sink = launcher.spawn(0, "pipe-sink", &args)?;
    let write_all = |out: &mut dyn Write| -> Result<Instant> {
        let start = Instant::now();
        let mut left = bytes;
        while left > 0 {
            let n = (chunk as u64).min(left) as usize;
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        Ok(start)
    };
    let start = match transport {
        "shm-pipe" | "shm-pipe-bufread" => {
            let mut builder =
                PipeWriter::builder(&format!("bench{round}")).domain(&launcher.domain);
            for (key, value) in tuning {
                builder = match *key {
                    "capacity" => builder.capacity(value.parse()?),
                    _ => builder.spin(value.parse()?),
                };
            }
            let mut writer = builder.create()?;
            let start = write_all(&mut writer)?;
            drop(writer);
            start
        }
        // The peer's stdin stays open (the harness closes it when the peer is finished), so
        // this peer reads exactly `bytes` bytes instead of to the end of the stream.
        "os-pipe" => write_all(sink.stdin())?,
        "unix-stream" => {
            let mut stream = UnixStream::connect(socket_path(&launcher.domain))?;
            let start = write_all(&mut stream)?;
            stream.shutdown(std::net::Shutdown::Write)?;
            start
        }
        other => return Err(format!("unknown transport {other}").into()),
    };
    let line = sink.read_line()?;
    let elapsed = start.elapsed();
    check_done(&line, bytes)?;
    sink.finish()?;
    Ok(elapsed)
}

fn check_done(line: &str, bytes: u64) -> Result<()> {
    if line != format!("done {bytes}") {
        return Err(format!("the sink said {line:?}, expected `done {bytes}`").into());
    }
    Ok(())
}

/// The peer: reads its transport to the end, says `done <bytes>`.
pub fn sink_peer(args: &Args) -> Result<()> {
    let transport = args.get("transport")?;
    let round: u32 = args.parse_of("round")?;
    let bytes: u64 = args.parse_of("bytes")?;
    let mut buf = vec![0u8; 64 << 10];
    let mut total: u64 = 0;
    let reader = || -> Result<PipeReader> {
        let mut builder = PipeReader::builder(&format!("bench{round}"));
        if let Ok(capacity) = args.parse_of::<usize>("capacity") {
            builder = builder.capacity(capacity);
        }
        if let Ok(spin) = args.parse_of::<u32>("spin") {
            builder = builder.spin(spin);
        }
        Ok(builder.create()?)
    };
    let mut drain = |input: &mut dyn Read| -> Result<()> {
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            total += n as u64;
        }
    };
    match transport {
        "shm-pipe" => {
            let mut reader = reader()?;
            peer::ready()?;
            drain(&mut reader)?;
        }
        "shm-pipe-bufread" => {
            let mut reader = reader()?;
            peer::ready()?;
            let mut sum: u64 = 0;
            loop {
                let slice = reader.fill_buf()?;
                if slice.is_empty() {
                    break;
                }
                sum = slice.chunks(8).fold(sum, |s, c| s.wrapping_add(c[0] as u64));
                let n = slice.len();
                total += n as u64;
                reader.consume(n);
            }
            std::hint::black_box(sum);
        }
        "os-pipe" => {
            peer::ready()?;
            drain(&mut std::io::stdin().lock().take(bytes))?;
        }
        "unix-stream" => {
            let path = socket_path(ipc_runtime::domain::current());
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path)?;
            peer::ready()?;
            let (mut stream, _) = listener.accept()?;
            let _ = std::fs::remove_file(&path);
            drain(&mut stream)?;
        }
        other => return Err(format!("unknown transport {other}").into()),
    }
    peer::say(&format!("done {total}"))
}
