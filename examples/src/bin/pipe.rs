//! Streams a file from one process to another through an `ipc_runtime` byte pipe, and prints
//! the throughput and a checksum on both sides.
//!
//! ```sh
//! cargo run --release -p ipc-examples --bin pipe -- FILE          # sends FILE to a child it starts
//! cargo run --release -p ipc-examples --bin pipe -- recv OUT      # terminal 1: receive into OUT
//! cargo run --release -p ipc-examples --bin pipe -- send FILE     # terminal 2: send FILE
//! ```
//!
//! Either side may start first. The receiver writes what it reads to OUT (`-` for nowhere) and
//! stops at the end of the stream, when the sender has closed its end.

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::process::{Command, ExitCode};
use std::time::Instant;

use ipc_runtime::pipe::{PipeReader, PipeWriter};

/// The pipe's name (in the process's domain, `IPC_DOMAIN`).
const PIPE: &str = "example-file";

/// FNV-1a, 64-bit: a checksum both sides compute over the bytes they saw.
#[derive(Clone, Copy)]
struct Checksum(u64);

impl Checksum {
    fn new() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn report(side: &str, bytes: u64, started: Instant, sum: Checksum) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{side}: {bytes} bytes in {secs:.3} s ({:.2} GB/s), checksum {:016x}",
        bytes as f64 / secs / 1e9,
        sum.0
    );
}

fn send(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut file = File::open(path)?;
    let mut writer = PipeWriter::new(PIPE)?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut bytes, mut sum, started) = (0u64, Checksum::new(), Instant::now());
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sum.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    drop(writer); // the receiver sees the end of the stream
    report("send", bytes, started, sum);
    Ok(())
}

fn recv(out: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut out: Box<dyn Write> =
        if out == "-" { Box::new(std::io::sink()) } else { Box::new(File::create(out)?) };
    let mut reader = PipeReader::new(PIPE)?;
    let (mut bytes, mut sum) = (0u64, Checksum::new());
    let mut started = None;
    loop {
        // Straight from shared memory: no copy into a buffer of ours.
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        started.get_or_insert_with(Instant::now);
        sum.update(chunk);
        out.write_all(chunk)?;
        let n = chunk.len();
        bytes += n as u64;
        reader.consume(n);
    }
    out.flush()?;
    report("recv", bytes, started.unwrap_or_else(Instant::now), sum);
    Ok(())
}

fn demo(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?).args(["recv", "-"]).spawn()?;
    send(path)?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the receiver failed: {status}").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["send", file] => send(file),
        ["recv", out] => recv(out),
        [file] => demo(file),
        _ => {
            eprintln!("usage: pipe FILE | pipe send FILE | pipe recv OUT");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pipe: {err}");
            ExitCode::FAILURE
        }
    }
}
