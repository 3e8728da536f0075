//! A hostile publisher's containers, across real processes: pointers into the subscriber's own
//! heap are refused (the subscriber never reads its own bytes as if the publisher sent them),
//! and a `ShmString` with invalid UTF-8 in the publisher's heap is an error, not a `&str`.
//!
//! The subscriber allocates a secret in its heap and says where it is; the publisher forges a
//! message whose `ShmVec` and `ShmString` point exactly there, then one whose string holds bytes
//! that are not UTF-8, then a valid one. The subscriber's receive reports the first two as
//! invalid messages naming the field (the reader never gets them), then receives the third.
//! (How a reader's deref of such containers refuses them is tested in the containers' unit
//! tests: `containers_in_a_peer_segment_resolve_only_into_it`.) Each test runs in its own
//! `IPC_DOMAIN` and checks that it is clean afterwards.

mod support;

use std::io::BufRead;
use std::time::Duration;

use ipc_runtime::prelude::*;
use support::{finish, spawn_held_role, stdout_lines};

const SECRET: &[u8] = b"SECRET-of-the-subscriber-0123456789";

#[derive(ShmMessage)]
#[repr(C)]
struct Forged {
    kind: u64,
    data: ShmVec<u8>,
    text: ShmString,
}

/// Points `v` at `(segment, offset)` with `len` elements, as a hostile publisher can write any
/// bytes into its own message.
fn forge(v: &mut ShmVec<u8>, segment: u64, offset: u64, len: u64) {
    // SAFETY: `ShmVec` is `repr(C)` and starts with its pointer (segment, offset), length and
    // capacity, four `u64`s; the vector is ours and is only read (never freed: see the caller).
    unsafe {
        let words = (v as *mut ShmVec<u8>).cast::<u64>();
        words.write(segment);
        words.add(1).write(offset);
        words.add(2).write(len);
        words.add(3).write(len);
    }
}

#[test]
fn hostile_publisher_cannot_point_into_the_subscriber_heap_or_send_bad_utf8() {
    let test = "hostile_publisher_cannot_point_into_the_subscriber_heap_or_send_bad_utf8";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("trustheap");
            let mut sub = spawn_held_role(test, "sub", &domain, &[]);
            let mut lines = stdout_lines(&mut sub);
            let mut secret_at = None;
            let mut line = String::new();
            while secret_at.is_none() {
                line.clear();
                assert!(lines.read_line(&mut line).unwrap() > 0, "the subscriber did not start");
                secret_at = line.trim_end().strip_prefix("secret=").map(str::to_owned);
            }
            let secret_at = secret_at.unwrap();
            let publisher =
                spawn_held_role(test, "pub", &domain, &[("TRUST_SECRET_AT", secret_at)]);
            let (status, stdout, stderr) = finish(sub, Some(lines));
            let (pub_status, pub_out, pub_err) = finish(publisher, None);
            assert!(pub_status.success(), "publisher failed: {pub_out}\n{pub_err}");
            assert!(status.success(), "subscriber failed:\n{stdout}\n{stderr}");
            let secret = String::from_utf8_lossy(SECRET).into_owned();
            assert!(!stdout.contains(&secret), "the subscriber read its own secret:\n{stdout}");
            for line in [
                "invalid: Forged.data: may only point into the segment that holds them",
                "invalid: Forged.text: bytes that are not UTF-8",
                "received 3: data \"fine\" text \"fine\"",
            ] {
                assert!(stdout.lines().any(|l| l == line), "missing {line:?} in:\n{stdout}");
            }
            support::assert_clean(&domain);
        }
        Some("sub") => {
            // The secret lives in our own heap, where only we write.
            let secret = ShmVec::from_slice(SECRET);
            let p = secret.rel_ptr();
            let subscriber = Subscriber::<Forged>::new("trust").unwrap();
            println!("secret={:x}:{:x}:{}", p.segment(), p.offset(), SECRET.len());
            // Three messages: two forged ones the receive refuses, then a valid one.
            let mut received = false;
            while !received {
                match subscriber.receive_timeout(Duration::from_secs(30)) {
                    Ok(Some(sample)) => {
                        println!(
                            "received {}: data {:?} text {:?}",
                            sample.kind,
                            String::from_utf8_lossy(&sample.data),
                            sample.text.as_str()
                        );
                        received = true;
                    }
                    Ok(None) => panic!("the publisher's messages did not arrive"),
                    Err(Error::InvalidMessage { field, found, .. }) => {
                        let key = [
                            "may only point into the segment that holds them",
                            "bytes that are not UTF-8",
                        ]
                        .into_iter()
                        .find(|key| found.contains(key))
                        .unwrap_or(&found);
                        println!("invalid: {field}: {key}");
                    }
                    Err(other) => panic!("unexpected error {other}"),
                }
            }
            assert_eq!(subscriber.borrowed(), 0);
            drop(secret);
        }
        Some("pub") => {
            let at = support::env("TRUST_SECRET_AT");
            let mut parts = at.split(':');
            let mut next = |radix| u64::from_str_radix(parts.next().unwrap(), radix).unwrap();
            let (segment, offset, len) = (next(16), next(16), next(10));
            let publisher = Publisher::<Forged>::new("trust").unwrap();
            assert!(
                support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() >= 1),
                "the subscriber did not connect"
            );
            // 1: both containers point at the subscriber's secret.
            let mut data = ShmVec::from_slice(&[0u8; 64]);
            let mut text = ShmVec::from_slice(&[b'x'; 64]);
            // The real buffers are leaked on purpose: the forged pointers replace them.
            let leaked = (data.rel_ptr(), text.rel_ptr());
            forge(&mut data, segment, offset, len);
            forge(&mut text, segment, offset, len);
            // SAFETY: `ShmString` is a `repr(C)` wrapper of one `ShmVec<u8>`.
            let text = unsafe { std::mem::transmute::<ShmVec<u8>, ShmString>(text) };
            publisher.publish(Forged { kind: 1, data, text }).unwrap();
            // 2: a string whose bytes (in our own heap) are not UTF-8.
            let bad = ShmVec::from_slice(&[b'o', b'k', 0xff, 0xfe]);
            // SAFETY: as above.
            let text = unsafe { std::mem::transmute::<ShmVec<u8>, ShmString>(bad) };
            let data = ShmVec::from_slice(&[b'o', b'k', 0xff, 0xfe]);
            publisher.publish(Forged { kind: 2, data, text }).unwrap();
            // 3: a valid one.
            let data = ShmVec::from_slice(b"fine");
            publisher.publish(Forged { kind: 3, data, text: ShmString::from("fine") }).unwrap();
            // Stay until the parent says the subscriber is done (closes our stdin).
            let mut rest = String::new();
            let _ = std::io::stdin().read_line(&mut rest);
            std::hint::black_box(leaked);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
