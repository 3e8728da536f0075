//! Byte pipes across real processes: 64 MiB in random-sized writes arrive byte-identical; the
//! reader gets end of stream after the writer is dropped or killed; the writer gets
//! `BrokenPipe` after the reader is dropped, and is not left hanging when the reader is
//! killed mid-stream; a second writer or reader is refused; a new pair works on the name after
//! both sides are gone. Every test runs in its own `IPC_DOMAIN` and checks that the domain is
//! empty afterwards.
//!
//! Processes synchronise through their stdio (a child prints a line, the parent reads it),
//! never through sleeps. The only timing assertions are generous bounds on how soon an error
//! arrives.

mod support;

use std::hash::Hasher;
use std::io::{BufRead, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use ipc_runtime::Error;
use ipc_runtime::pipe::{PipeReader, PipeWriter};
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

/// How long an error may take to arrive after the peer is gone (a generous bound: the pipe
/// checks every 50 ms).
const BOUND: Duration = Duration::from_secs(10);

/// A deterministic byte stream cut into random-sized writes.
struct Stream {
    state: u64,
}

impl Stream {
    fn new(seed: u64) -> Stream {
        Stream { state: seed | 1 }
    }
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

fn hash(data: &[u8], hasher: &mut std::hash::DefaultHasher) {
    hasher.write(data);
}

fn total_bytes() -> usize {
    std::env::var("PIPE_TEST_BYTES").ok().and_then(|b| b.parse().ok()).unwrap_or(64 << 20)
}

#[test]
fn sixty_four_mib_in_random_writes_arrive_intact() {
    let test = "sixty_four_mib_in_random_writes_arrive_intact";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("pipe-bulk");
            // The reader comes first, the writer second: either order works.
            let reader = support::spawn_role(test, "reader", &domain, &[]);
            let writer = support::spawn_role(test, "writer", &domain, &[]);
            let writer = writer.wait_with_output().unwrap();
            let reader = reader.wait_with_output().unwrap();
            support::assert_success("writer", &writer);
            support::assert_success("reader", &reader);
            let sent = support::field(&writer, "sent").unwrap();
            let received = support::field(&reader, "received").unwrap();
            assert_eq!(sent, received, "the stream arrived changed");
            assert!(sent.starts_with(&format!("{} ", total_bytes())), "{sent}");
            println!("sent and received {sent}");
            support::assert_clean(&domain);
        }
        Some("writer") => {
            let mut writer = PipeWriter::new("bulk").unwrap();
            let mut data = Stream::new(1);
            let mut sizes = Stream::new(2);
            let mut hasher = std::hash::DefaultHasher::new();
            let mut buf = vec![0u8; 256 * 1024];
            let total = total_bytes();
            let mut sent = 0;
            while sent < total {
                let n = ((sizes.next() % 200_000) as usize + 1).min(total - sent);
                data.fill(&mut buf[..n]);
                hash(&buf[..n], &mut hasher);
                writer.write_all(&buf[..n]).unwrap();
                sent += n;
            }
            drop(writer);
            println!("sent={sent} {:016x}", hasher.finish());
        }
        Some("reader") => {
            let mut reader = PipeReader::new("bulk").unwrap();
            let mut hasher = std::hash::DefaultHasher::new();
            let mut received = 0;
            let mut sizes = Stream::new(3);
            let mut buf = vec![0u8; 256 * 1024];
            // Both ways of reading: BufRead's slices and Read into a buffer of random size.
            loop {
                let n = if sizes.next().is_multiple_of(2) {
                    let slice = reader.fill_buf().unwrap();
                    let n = slice.len();
                    hash(slice, &mut hasher);
                    reader.consume(n);
                    n
                } else {
                    let len = (sizes.next() % buf.len() as u64) as usize + 1;
                    let n = reader.read(&mut buf[..len]).unwrap();
                    hash(&buf[..n], &mut hasher);
                    n
                };
                if n == 0 {
                    break;
                }
                received += n;
            }
            println!("received={received} {:016x}", hasher.finish());
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

/// A writer role: writes `bytes` bytes of the stream, says `written`, and waits for the parent
/// (dropping the writer after, unless killed first).
fn write_and_wait(bytes: usize) {
    let mut writer = PipeWriter::new("p").unwrap();
    let mut buf = vec![0u8; bytes];
    Stream::new(7).fill(&mut buf);
    writer.write_all(&buf).unwrap();
    println!("written");
    support::wait_for_parent();
}

/// Reads the pipe to its end as the parent; checks the bytes and that the end came in time.
fn read_to_end_in_parent(reader: &mut PipeReader, bytes: usize, since: Instant) {
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert!(since.elapsed() < BOUND, "end of stream took {:?}", since.elapsed());
    let mut expected = vec![0u8; bytes];
    Stream::new(7).fill(&mut expected);
    assert!(all == expected, "read {} bytes, not the {bytes} written", all.len());
    assert_eq!(reader.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn end_of_stream_after_the_writer_is_dropped_or_killed() {
    let test = "end_of_stream_after_the_writer_is_dropped_or_killed";
    match support::role().as_deref() {
        None => {
            for kill in [false, true] {
                let domain = support::unique_domain("pipe-eof");
                let mut reader = PipeReader::builder("p").domain(&domain).create().unwrap();
                let mut writer = spawn_held_role(test, "writer", &domain, &[]);
                let mut out = stdout_lines(&mut writer);
                assert!(wait_for_line(&mut out, "written"));
                let since = Instant::now();
                if kill {
                    writer.kill().unwrap();
                    let _ = writer.wait();
                    read_to_end_in_parent(&mut reader, 100_000, since);
                } else {
                    let (status, stdout, stderr) = finish(writer, Some(out));
                    assert!(status.success(), "writer: {stdout}\n{stderr}");
                    read_to_end_in_parent(&mut reader, 100_000, since);
                }
                drop(reader);
                support::assert_clean(&domain);
            }
        }
        Some("writer") => write_and_wait(100_000),
        Some(other) => panic!("unknown role {other}"),
    }
}

/// Writes until an error comes; returns it and how long after `since` it came.
fn write_until_error(writer: &mut PipeWriter, since: Instant) -> (std::io::Error, Duration) {
    let chunk = vec![5u8; 64 * 1024];
    loop {
        if let Err(err) = writer.write(&chunk) {
            return (err, since.elapsed());
        }
        assert!(since.elapsed() < BOUND * 2, "the writer never saw the reader go");
    }
}

#[test]
fn broken_pipe_after_the_reader_is_dropped_or_killed() {
    let test = "broken_pipe_after_the_reader_is_dropped_or_killed";
    match support::role().as_deref() {
        None => {
            for kill in [false, true] {
                let domain = support::unique_domain("pipe-epipe");
                let mut writer = PipeWriter::builder("p").domain(&domain).create().unwrap();
                let mut reader = spawn_held_role(test, "reader", &domain, &[]);
                let mut out = stdout_lines(&mut reader);
                // Fill the ring and more: a writer thread blocks on the full ring while the
                // reader holds still, then the reader goes.
                assert!(wait_for_line(&mut out, "reading"));
                let blocked = std::thread::spawn(move || {
                    let (err, _) = write_until_error(&mut writer, Instant::now());
                    (err, Instant::now())
                });
                let since = Instant::now();
                if kill {
                    reader.kill().unwrap();
                    let _ = reader.wait();
                } else {
                    let (status, stdout, stderr) = finish(reader, Some(out));
                    assert!(status.success(), "reader: {stdout}\n{stderr}");
                }
                let (err, at) = blocked.join().unwrap();
                let waited = at.saturating_duration_since(since);
                assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
                assert!(err.to_string().contains(".pipe.p"), "{err}");
                assert!(waited < BOUND, "BrokenPipe took {waited:?} (killed: {kill})");
                println!("killed={kill}: BrokenPipe {waited:?} after the reader went");
                support::assert_clean(&domain);
            }
        }
        Some("reader") => {
            // Joins, then holds still: the writer fills the ring and blocks.
            let reader = PipeReader::new("p").unwrap();
            println!("reading");
            support::wait_for_parent(); // killed here, or drops the reader
            drop(reader);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn a_second_writer_or_reader_is_refused() {
    let test = "a_second_writer_or_reader_is_refused";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("pipe-busy");
            let writer = PipeWriter::builder("p").domain(&domain).create().unwrap();
            let mut reader = spawn_held_role(test, "reader", &domain, &[]);
            let mut out = stdout_lines(&mut reader);
            assert!(wait_for_line(&mut out, "reading"));
            for role in ["writer", "reader"] {
                let out = support::run_role(test, role, &domain, &[]);
                support::assert_success(role, &out);
                let refused = support::field(&out, "refused").unwrap();
                assert!(
                    refused.contains(&format!("already has a {role}"))
                        && refused.contains(&format!("{domain}.pipe.p")),
                    "{refused}"
                );
            }
            let (status, stdout, stderr) = finish(reader, Some(out));
            assert!(status.success(), "reader: {stdout}\n{stderr}");
            drop(writer);
            support::assert_clean(&domain);
        }
        Some("writer") => {
            let err = PipeWriter::new("p").unwrap_err();
            assert!(matches!(err, Error::PipeBusy { role: "writer", .. }), "{err}");
            println!("refused={err}");
        }
        Some("reader") => {
            // Either the held reader (first) or the second one (refused).
            match PipeReader::new("p") {
                Ok(_reader) => {
                    println!("reading");
                    support::wait_for_parent();
                }
                Err(err) => {
                    assert!(matches!(err, Error::PipeBusy { role: "reader", .. }), "{err}");
                    println!("refused={err}");
                }
            }
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn a_new_pair_works_after_both_sides_are_gone() {
    let test = "a_new_pair_works_after_both_sides_are_gone";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("pipe-restart");
            // Round 1: both sides killed mid-stream. Round 2: both leave cleanly after an
            // exchange. Round 3: a fresh pair finds nothing stale.
            for round in 0..3 {
                let mut writer = spawn_held_role(test, "writer", &domain, &[]);
                let mut w_out = stdout_lines(&mut writer);
                let mut reader = spawn_held_role(test, "reader", &domain, &[]);
                let mut r_out = stdout_lines(&mut reader);
                assert!(wait_for_line(&mut w_out, "written"), "round {round}: writer");
                assert!(wait_for_line(&mut r_out, "read"), "round {round}: reader");
                if round == 0 {
                    writer.kill().unwrap();
                    reader.kill().unwrap();
                    let _ = (writer.wait(), reader.wait());
                } else {
                    let (status, stdout, stderr) = finish(writer, Some(w_out));
                    assert!(status.success(), "writer: {stdout}\n{stderr}");
                    let (status, stdout, stderr) = finish(reader, Some(r_out));
                    assert!(status.success(), "reader: {stdout}\n{stderr}");
                }
            }
            // The killed pair's objects were replaced by the next pair; the last pair cleaned up.
            support::assert_clean(&domain);
        }
        Some("writer") => write_and_wait(1_000_000),
        Some("reader") => {
            let mut reader = PipeReader::new("p").unwrap();
            let mut buf = vec![0u8; 1000];
            reader.read_exact(&mut buf).unwrap();
            let mut expected = vec![0u8; 1000];
            Stream::new(7).fill(&mut expected);
            assert_eq!(buf, expected);
            println!("read");
            support::wait_for_parent();
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
