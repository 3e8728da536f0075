use std::io::{BufRead, ErrorKind, Read, Write};
use std::sync::atomic::Ordering;

use super::*;
use crate::Error;

fn name(test: &str) -> String {
    format!("ut-pipe-{test}")
}

/// A write across the end of the ring reads back as one contiguous slice (mirrored), or as
/// the part up to the end and then the rest (split).
#[test]
fn write_across_the_wrap_reads_back_contiguous() {
    let name = name("wrap");
    let mut writer = PipeWriter::builder(&name).capacity(MIN_CAPACITY).create().unwrap();
    let mut reader = PipeReader::new(&name).unwrap();
    let cap = MIN_CAPACITY;
    // Move both positions to 100 bytes before the end.
    writer.write_all(&vec![0u8; cap - 100]).unwrap();
    let mut sink = vec![0u8; cap - 100];
    reader.read_exact(&mut sink).unwrap();
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(writer.write(&data).unwrap(), 1000);
    let mirrored = reader.is_mirrored();
    let slice = reader.fill_buf().unwrap();
    if mirrored {
        assert_eq!(slice, &data[..]);
    } else {
        assert_eq!(slice, &data[..100]);
    }
    let n = slice.len();
    reader.consume(n);
    let mut rest = Vec::new();
    if n < data.len() {
        rest.extend_from_slice(reader.fill_buf().unwrap());
        assert_eq!(rest, &data[n..]);
    }
    assert_eq!(mirrored, cfg!(all(unix, not(miri))));
}

#[test]
fn full_empty_eof_and_broken_pipe() {
    let name = name("full");
    let mut writer = PipeWriter::builder(&name).capacity(MIN_CAPACITY).create().unwrap();
    let mut reader = PipeReader::new(&name).unwrap();
    // A write larger than the ring writes what fits.
    assert_eq!(writer.write(&vec![1u8; 3 * MIN_CAPACITY]).unwrap(), MIN_CAPACITY);
    assert_eq!(reader.fill_buf().unwrap().len(), MIN_CAPACITY);
    reader.consume(10);
    assert_eq!(writer.write(&[2u8; 100]).unwrap(), 10);
    drop(writer);
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), MIN_CAPACITY);
    assert_eq!(&all[all.len() - 10..], &[2u8; 10]);
    assert_eq!(reader.read(&mut [0u8; 10]).unwrap(), 0);
    drop(reader);

    // Reader gone: BrokenPipe.
    let mut writer = PipeWriter::new(&name).unwrap();
    let reader = PipeReader::new(&name).unwrap();
    writer.write_all(b"x").unwrap();
    drop(reader);
    assert_eq!(writer.write(b"y").unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[test]
fn one_writer_one_reader() {
    let name = name("busy");
    let writer = PipeWriter::new(&name).unwrap();
    let err = PipeWriter::new(&name).unwrap_err();
    assert!(matches!(err, Error::PipeBusy { role: "writer", .. }), "{err}");
    assert!(err.to_string().contains("ut-pipe-busy"), "{err}");
    let reader = PipeReader::new(&name).unwrap();
    assert!(matches!(PipeReader::new(&name), Err(Error::PipeBusy { role: "reader", .. })));
    // A stream whose writer went is over while its reader stays.
    drop(writer);
    let err = PipeWriter::new(&name).unwrap_err();
    assert!(matches!(err, Error::PipeClosed { .. }), "{err}");
    // Both gone: a new pair works.
    drop(reader);
    let mut writer = PipeWriter::new(&name).unwrap();
    let mut reader = PipeReader::new(&name).unwrap();
    writer.write_all(b"again").unwrap();
    let mut buf = [0u8; 5];
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again");
    // A capacity other than the pipe's is refused.
    drop(reader);
    let err = PipeReader::builder(&name).capacity(MIN_CAPACITY).create().unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "capacity", .. }), "{err}");
    assert!(PipeWriter::builder("x").capacity(1000).create().is_err());
}

/// Positions written by a hostile peer give InvalidData naming the pipe, never a bad access.
#[test]
fn bad_positions_are_invalid_data() {
    let name = name("hostile");
    let mut writer = PipeWriter::new(&name).unwrap();
    let mut reader = PipeReader::new(&name).unwrap();
    writer.write_all(b"abc").unwrap();
    let control: *const layout::Control = writer.side_channel().control();
    // SAFETY: the control block lives as long as `writer`, which outlives every use below.
    let control = unsafe { &*control };
    control.write_pos.0.store(u64::MAX, Ordering::SeqCst);
    // The reader knows 3 readable bytes already only after it looks; it looks now.
    let err = reader.fill_buf().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("ut-pipe-hostile") && err.to_string().contains("ahead"),
        "{err}"
    );
    control.read_pos.0.store(1 << 40, Ordering::SeqCst);
    let err = writer.write(&vec![0u8; DEFAULT_CAPACITY]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    control.write_pos.0.store(3, Ordering::SeqCst);
}

/// Bytes go through in order between threads, with small and large writes.
#[test]
fn threads_stream_in_order() {
    let name = name("threads");
    let mut writer = PipeWriter::builder(&name).capacity(MIN_CAPACITY).create().unwrap();
    let mut reader = PipeReader::new(&name).unwrap();
    let total = 4 << 20;
    let producer = std::thread::spawn(move || {
        let mut sent = 0usize;
        let mut size = 1usize;
        while sent < total {
            let n = size.min(total - sent);
            let chunk: Vec<u8> = (sent..sent + n).map(|i| (i % 253) as u8).collect();
            writer.write_all(&chunk).unwrap();
            sent += n;
            size = (size * 7 + 3) % 100_000 + 1;
        }
    });
    let mut got = 0usize;
    loop {
        let slice = reader.fill_buf().unwrap();
        if slice.is_empty() {
            break;
        }
        for (i, b) in slice.iter().enumerate() {
            assert_eq!(*b, ((got + i) % 253) as u8, "byte {}", got + i);
        }
        let n = slice.len();
        got += n;
        reader.consume(n);
    }
    producer.join().unwrap();
    assert_eq!(got, total);
}
