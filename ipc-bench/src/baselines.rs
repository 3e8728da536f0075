//! Baselines measured in the same run, between the same two kinds of process.
//!
//! * **Raw atomic flag** (the floor): two `AtomicU64`s, 128 bytes apart, in a shared-memory
//!   segment both processes map. The parent stores `seq` into `ping` and spins until `pong`
//!   equals it; the peer spins on `ping` and stores what it saw into `pong`. Both spin with the
//!   same loop as the busy-poll receive (`spin_loop` hint between polls). Nothing is cheaper
//!   between two processes: the figure is the cache-line transfer itself.
//! * **Unix-domain socket**: a connected `SOCK_STREAM` pair; 8 bytes each way with blocking
//!   `write`/`read`.
//! * **Pipe**: the peer's stdin and stdout; 8 bytes each way with blocking `write`/`read`.
//! * **Unix datagram throughput**: `send` of prebuilt 8 B / 64 KiB datagrams as fast as the
//!   socket takes them, blocking `recv` in the peer (message boundaries kept, like ours).
//!
//! Each is a ping-pong whose one-way latency is the round trip / 2, like ours.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ipc_runtime::segment::{Access, Segment, SegmentKind, SegmentName};

use crate::Result;
use crate::messages::STOP;
use crate::ours::{TIMEOUT, expect_line};
use crate::peer::{Args, Launcher, ready, say};

/// The two flags of the floor measurement, in a mapped segment.
struct Flags<'s> {
    ping: &'s AtomicU64,
    pong: &'s AtomicU64,
}

/// Byte offset of `pong` from `ping`: two cache lines, so the adjacent-line prefetcher does not
/// couple them.
const PONG_OFFSET: usize = 128;

impl<'s> Flags<'s> {
    fn new(segment: &'s Segment) -> Result<Flags<'s>> {
        let base = segment.payload().as_ptr();
        if segment.payload_len() < PONG_OFFSET + 8 || !base.cast::<AtomicU64>().is_aligned() {
            return Err("floor segment too small or misaligned".into());
        }
        // SAFETY: both flags lie inside the segment's payload (checked above), are 8-aligned
        // (payload is aligned, the offset is a multiple of 8), live as long as the mapping
        // borrowed for 's, and are only ever accessed atomically, by both processes.
        let (ping, pong) =
            unsafe { (&*base.cast::<AtomicU64>(), &*base.add(PONG_OFFSET).cast::<AtomicU64>()) };
        Ok(Flags { ping, pong })
    }
}

/// Spins until `flag` satisfies `done`, failing after [`TIMEOUT`]; the clock is read only every
/// 4096 polls.
#[inline]
fn spin_until(flag: &AtomicU64, mut done: impl FnMut(u64) -> bool) -> Result<u64> {
    let mut deadline = None;
    let mut polls = 0u32;
    loop {
        let value = flag.load(Ordering::Acquire);
        if done(value) {
            return Ok(value);
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(4096) {
            let now = Instant::now();
            if now >= *deadline.get_or_insert(now + TIMEOUT) {
                return Err("the floor peer stopped answering".into());
            }
        }
        std::hint::spin_loop();
    }
}

fn floor_name(domain: &str, round: u32) -> Result<SegmentName> {
    Ok(SegmentName::new(domain, SegmentKind::Raw, &format!("floor.r{round}"))?)
}

/// Raw atomic-flag ping-pong: the floor.
pub fn raw_atomic(
    launcher: &Launcher,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let name = floor_name(&launcher.domain, round)?;
    let segment = Segment::create(&name, SegmentKind::Raw, 4096)?;
    let flags = Flags::new(&segment)?;
    let peer = launcher.spawn(0, "floor", &[("round", round.to_string())]);
    // Both processes have it mapped (or the peer failed): the name can go.
    Segment::unlink(&name)?;
    let peer = peer?;
    for i in 0..warmup + iterations {
        let seq = i + 1;
        let start = Instant::now();
        flags.ping.store(seq, Ordering::Release);
        spin_until(flags.pong, |v| v == seq)?;
        let rtt = start.elapsed();
        if i >= warmup {
            hist.saturating_record((rtt.as_nanos() as u64 / 2).max(1));
        }
    }
    flags.ping.store(STOP, Ordering::Release);
    spin_until(flags.pong, |v| v == STOP)?;
    peer.finish()
}

/// The floor's peer.
pub fn floor_peer(args: &Args) -> Result<()> {
    let domain = ipc_runtime::domain::current();
    let name = floor_name(domain, args.parse_of("round")?)?;
    let segment = Segment::open(&name, SegmentKind::Raw, Access::ReadWrite)?;
    let flags = Flags::new(&segment)?;
    ready()?;
    let mut last = 0;
    while last != STOP {
        last = spin_until(flags.ping, |v| v != last)?;
        flags.pong.store(last, Ordering::Release);
    }
    Ok(())
}

/// A socket path for this run, in the temporary directory (never in /dev/shm).
fn socket_path(domain: &str, what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{domain}.{what}.sock"))
}

/// Removes a socket path when dropped (also on the error path).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ping_pong_stream(
    mut out: impl Write,
    mut back: impl Read,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let mut buf = [0u8; 8];
    for i in 0..warmup + iterations {
        let seq = i + 1;
        let start = Instant::now();
        out.write_all(&seq.to_le_bytes())?;
        back.read_exact(&mut buf)?;
        let rtt = start.elapsed();
        if u64::from_le_bytes(buf) != seq {
            return Err("stream baseline: reply out of order".into());
        }
        if i >= warmup {
            hist.saturating_record((rtt.as_nanos() as u64 / 2).max(1));
        }
    }
    out.write_all(&STOP.to_le_bytes())?;
    back.read_exact(&mut buf)?;
    Ok(())
}

fn echo_stream(mut input: impl Read, mut output: impl Write) -> Result<()> {
    let mut buf = [0u8; 8];
    loop {
        input.read_exact(&mut buf)?;
        output.write_all(&buf)?;
        if u64::from_le_bytes(buf) == STOP {
            return Ok(());
        }
    }
}

/// Unix-domain-socket (stream) ping-pong, 8 bytes each way.
pub fn uds(
    launcher: &Launcher,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let path = socket_path(&launcher.domain, &format!("uds.r{round}"));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let remove = RemoveOnDrop(path.clone());
    let peer = launcher.spawn(0, "uds", &[("path", path.display().to_string())])?;
    // The peer connected before it said `ready`.
    let (stream, _) = listener.accept()?;
    drop(remove);
    stream.set_read_timeout(Some(TIMEOUT))?;
    ping_pong_stream(&stream, &stream, warmup, iterations, hist)?;
    peer.finish()
}

/// The Unix-socket baseline's peer.
pub fn uds_peer(args: &Args) -> Result<()> {
    let stream = UnixStream::connect(args.get("path")?)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    ready()?;
    echo_stream(&stream, &stream)
}

/// Pipe ping-pong (the peer's stdin and stdout), 8 bytes each way.
pub fn pipe(
    launcher: &Launcher,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let mut peer = launcher.spawn(0, "pipe", &[])?;
    let out = peer.stdin().as_fd().try_clone_to_owned()?;
    let back = peer.stdout().as_fd().try_clone_to_owned()?;
    ping_pong_stream(File::from(out), File::from(back), warmup, iterations, hist)?;
    peer.finish()
}

/// The pipe baseline's peer: echoes stdin to stdout, unbuffered.
pub fn pipe_peer() -> Result<()> {
    let input = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let output = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    ready()?;
    echo_stream(input, output)
}

/// Unix-datagram throughput with `size`-byte messages; returns the time for `messages` of them
/// (after `warmup`) to be received.
pub fn uds_throughput(
    launcher: &Launcher,
    size: usize,
    round: u32,
    warmup: u64,
    messages: u64,
) -> Result<Duration> {
    let path = socket_path(&launcher.domain, &format!("dgram{size}.r{round}"));
    let _ = std::fs::remove_file(&path);
    let remove = RemoveOnDrop(path.clone());
    let mut peer = launcher.spawn(
        0,
        "dgram",
        &[
            ("path", path.display().to_string()),
            ("size", size.to_string()),
            ("warmup", warmup.to_string()),
            ("messages", messages.to_string()),
        ],
    )?;
    let socket = UnixDatagram::unbound()?;
    socket.connect(&path)?;
    drop(remove);
    let buf = vec![crate::messages::FILL; size];
    for _ in 0..warmup {
        socket.send(&buf)?;
    }
    expect_line(&mut peer, "warm")?;
    let start = Instant::now();
    for _ in 0..messages {
        socket.send(&buf)?;
    }
    expect_line(&mut peer, "done")?;
    let elapsed = start.elapsed();
    peer.finish()?;
    Ok(elapsed)
}

/// The datagram-throughput peer.
pub fn dgram_peer(args: &Args) -> Result<()> {
    let path = PathBuf::from(args.get("path")?);
    let size: usize = args.parse_of("size")?;
    let warmup: u64 = args.parse_of("warmup")?;
    let messages: u64 = args.parse_of("messages")?;
    let socket = UnixDatagram::bind(&path)?;
    let _remove = RemoveOnDrop(path);
    socket.set_read_timeout(Some(TIMEOUT))?;
    ready()?;
    let mut buf = vec![0u8; size + 1];
    for i in 0..warmup + messages {
        if i == warmup {
            say("warm")?;
        }
        let n = socket.recv(&mut buf)?;
        if n != size {
            return Err(format!("datagram of {n} bytes, expected {size}").into());
        }
    }
    if messages == 0 {
        say("warm")?;
    }
    say("done")
}
