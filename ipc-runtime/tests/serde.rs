//! The `serde` feature end to end: received bytes become a loaned sample that a subscriber
//! reads, decoding errors give the loan back, and a heap too small for the received data is an
//! error naming the container with nothing leaked (in a child process with a small heap).
//!
//! These tests measure the whole heap of the process, so they run one at a time.

mod support;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ipc_runtime::prelude::*;
use ipc_runtime::wire::{self, DecodeError};
use serde::{Deserialize, Serialize};

#[derive(ShmMessage, Serialize, Deserialize, Debug, PartialEq)]
#[repr(C)]
struct Reading {
    seq: u64,
    sensor: ShmString,
    values: ShmVec<f32>,
    labels: ShmHashMap<ShmString, ShmVec<f32>>,
    history: ShmBTreeMap<u64, ShmString>,
}

/// The same message as a peer without shared memory writes it.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct StdReading {
    seq: u64,
    sensor: String,
    values: Vec<f32>,
    labels: HashMap<String, Vec<f32>>,
    history: BTreeMap<u64, String>,
}

fn std_reading(seq: u64, n: usize) -> StdReading {
    StdReading {
        seq,
        sensor: format!("sensor-{seq}"),
        values: (0..n).map(|i| i as f32 * 0.5).collect(),
        labels: HashMap::from([("min".into(), vec![0.0]), ("max".into(), vec![n as f32])]),
        history: (0..3).map(|i| (i, format!("h{i}"))).collect(),
    }
}

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn in_use() -> u64 {
    ipc_runtime::heap_stats().bytes_in_use()
}

fn check_heap() {
    ipc_runtime::heap::default_heap().unwrap().check_integrity().unwrap();
}

#[test]
fn received_bytes_become_a_sample_a_subscriber_reads() {
    let _serial = serial();
    let d = support::unique_domain("serde-loan");
    let subscriber = Subscriber::<Reading>::builder("readings").domain(&d).create().unwrap();
    let publisher = Publisher::<Reading>::builder("readings").domain(&d).create().unwrap();
    for seq in 0..20 {
        let remote = std_reading(seq, seq as usize * 100);
        let bytes = postcard::to_stdvec(&remote).unwrap();
        let sample =
            publisher.loan_deserialize(&mut postcard::Deserializer::from_bytes(&bytes)).unwrap();
        // A loaned sample serializes as its message: a std decoder reads back what was sent.
        let again: StdReading =
            postcard::from_bytes(&postcard::to_stdvec(&sample).unwrap()).unwrap();
        assert_eq!(again, remote);
        sample.publish().unwrap();

        let got = subscriber.receive_timeout(Duration::from_secs(10)).unwrap().expect("a sample");
        assert_eq!(got.seq, seq);
        assert_eq!(got.sensor, remote.sensor.as_str());
        assert_eq!(got.values, remote.values);
        assert_eq!(got.labels.len(), 2);
        assert_eq!(got.labels.get("max").unwrap().as_slice(), remote.labels["max"].as_slice());
        assert_eq!(got.history.get(&2).map(|s| s.as_str()), Some("h2"));
        // A received sample serializes as its message too (JSON here).
        let json = serde_json::to_string(&got).unwrap();
        assert_eq!(serde_json::from_str::<StdReading>(&json).unwrap(), remote);
    }
    drop(subscriber);
    publisher.cleanup().unwrap();
    assert_eq!(publisher.samples_in_use(), 0);
    drop(publisher);
    check_heap();
    support::assert_clean(&d);
}

#[test]
fn malformed_bytes_give_the_loan_back() {
    let _serial = serial();
    let d = support::unique_domain("serde-malformed");
    let publisher = Publisher::<Reading>::builder("bad").domain(&d).create().unwrap();
    let bytes = postcard::to_stdvec(&std_reading(1, 1000)).unwrap();
    let baseline = in_use();
    for cut in (0..bytes.len()).step_by(97) {
        let err = publisher
            .loan_deserialize(&mut postcard::Deserializer::from_bytes(&bytes[..cut]))
            .expect_err("a truncated message decoded");
        assert!(matches!(err, DecodeError::Format(_)), "{err}");
        assert_eq!(publisher.samples_in_use(), 0, "the loan was kept after {err}");
    }
    // Not JSON for this type either.
    let err = publisher
        .loan_deserialize(&mut serde_json::Deserializer::from_str(r#"{"seq": "x"}"#))
        .expect_err("decoded");
    assert!(matches!(err, DecodeError::Format(_)), "{err}");
    assert_eq!(in_use(), baseline, "a failed decode left heap bytes behind");
    drop(publisher);
    check_heap();
    support::assert_clean(&d);
}

/// Out of shared heap while decoding: in a child whose heap is 512 KiB.
#[test]
fn out_of_heap_is_an_error_naming_the_container() {
    let test = "out_of_heap_is_an_error_naming_the_container";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("serde-oom");
            let out = support::run_role(
                test,
                "small-heap",
                &domain,
                &[("IPC_HEAP_SIZE", "512K".to_string())],
            );
            support::assert_success("small-heap child", &out);
            assert_eq!(support::field(&out, "small-heap").as_deref(), Some("ok"));
            support::assert_clean(&domain);
        }
        Some("small-heap") => {
            small_heap();
            println!("small-heap=ok");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

/// Decodes `bytes` as `T`, expecting the heap to run out in a container whose name starts with
/// one of `names`; everything allocated on the way is freed.
fn expect_oom<T: serde::de::DeserializeOwned>(bytes: &[u8], names: &[&str]) -> wire::HeapFailure {
    let before = in_use();
    let err = wire::deserialize::<T, _>(&mut postcard::Deserializer::from_bytes(bytes))
        .err()
        .expect("decoded into a heap too small for it");
    let DecodeError::OutOfMemory(failure) = err else { panic!("not out of memory: {err}") };
    assert!(
        names.iter().any(|n| failure.container.starts_with(n)),
        "{failure} (expected one of {names:?})"
    );
    assert!(matches!(failure.source, ipc_runtime::Error::OutOfMemory { .. }), "{failure}");
    let text = failure.to_string();
    assert!(text.contains(&failure.container) && text.contains("IPC_HEAP_SIZE"), "{text}");
    assert_eq!(in_use(), before, "{failure}: the half-built value leaked");
    check_heap();
    *failure
}

fn small_heap() {
    ipc_runtime::heap::default_heap().unwrap();
    let capacity = ipc_runtime::heap_stats().capacity();
    assert!(capacity < 1 << 20, "{capacity}");

    // One big vector: the heap runs out partway.
    let floats: Vec<f32> = (0..300_000).map(|i| i as f32).collect();
    let f = expect_oom::<ShmVec<f32>>(&postcard::to_stdvec(&floats).unwrap(), &["ShmVec<f32>"]);
    assert_eq!(f.unit, "elements");
    assert!(f.size > 1000 && f.size <= floats.len(), "{f}");
    // JSON keeps the text of the error itself.
    let before = in_use();
    let err = serde_json::from_str::<ShmVec<f32>>(&serde_json::to_string(&floats).unwrap())
        .expect_err("decoded");
    assert!(err.to_string().contains("ShmVec<f32>: the shared heap cannot hold"), "{err}");
    assert_eq!(in_use(), before);

    // A string too long for the heap: named with its length in bytes.
    let long = "x".repeat(1 << 20);
    let f = expect_oom::<ShmString>(&postcard::to_stdvec(&long).unwrap(), &["ShmString"]);
    assert_eq!((f.size, f.unit), (1 << 20, "bytes"));

    // Nested: many vectors in a map, many boxes in a deque, a big B-tree, a big hash set.
    let map: HashMap<String, Vec<f32>> =
        (0..40).map(|i| (format!("k{i}"), vec![i as f32; 5000])).collect();
    expect_oom::<ShmHashMap<ShmString, ShmVec<f32>>>(
        &postcard::to_stdvec(&map).unwrap(),
        &["ShmVec<f32>", "ShmHashMap<", "ShmString"],
    );
    let boxes: VecDeque<Box<u64>> = (0..100_000).map(Box::new).collect();
    expect_oom::<ShmVecDeque<ShmBox<u64>>>(
        &postcard::to_stdvec(&boxes).unwrap(),
        &["ShmVecDeque<ShmBox<u64>>", "ShmBox<u64>"],
    );
    let tree: BTreeMap<u64, u64> = (0..100_000).map(|i| (i, i)).collect();
    expect_oom::<ShmBTreeMap<u64, u64>>(&postcard::to_stdvec(&tree).unwrap(), &["ShmBTreeMap"]);
    let set: Vec<u64> = (0..100_000).collect();
    expect_oom::<ShmHashSet<u64>>(&postcard::to_stdvec(&set).unwrap(), &["ShmHashSet<u64>"]);
    expect_oom::<ShmBTreeSet<u64>>(&postcard::to_stdvec(&set).unwrap(), &["ShmBTreeSet<u64>"]);

    // A byte string (`wire::bytes`) too long for the heap.
    #[derive(Deserialize)]
    struct Blob {
        #[serde(with = "ipc_runtime::wire::bytes")]
        _data: ShmVec<u8>,
    }
    let f = expect_oom::<Blob>(&postcard::to_stdvec(&vec![1u8; 1 << 20]).unwrap(), &["ShmVec<u8>"]);
    assert_eq!(f.size, 1 << 20);

    // A forged length of 2^60 elements: the (capped) preallocation does not fit this heap
    // either, which is no error; the input then runs out, which is.
    let mut forged = vec![0x80u8; 8];
    forged.push(0x10); // varint 2^60
    forged.extend_from_slice(&[1, 2, 3]);
    let before = in_use();
    let err = wire::deserialize::<ShmVec<u8>, _>(&mut postcard::Deserializer::from_bytes(&forged))
        .expect_err("decoded");
    assert!(matches!(err, DecodeError::Format(_)), "{err}");
    assert_eq!(in_use(), before);

    // Through a publisher: the loan goes back, and the next message (which fits) goes through.
    let publisher = Publisher::<Reading>::new("oom").unwrap();
    let before = in_use();
    let big = postcard::to_stdvec(&std_reading(1, 300_000)).unwrap();
    let err = publisher
        .loan_deserialize(&mut postcard::Deserializer::from_bytes(&big))
        .expect_err("decoded");
    let DecodeError::OutOfMemory(failure) = &err else { panic!("not out of memory: {err}") };
    assert_eq!(failure.container, "ShmVec<f32>", "{err}");
    assert_eq!(publisher.samples_in_use(), 0);
    assert_eq!(in_use(), before, "{err}: leaked");
    let small = postcard::to_stdvec(&std_reading(2, 10)).unwrap();
    let sample =
        publisher.loan_deserialize(&mut postcard::Deserializer::from_bytes(&small)).unwrap();
    assert_eq!(sample.values.len(), 10);
    drop(sample);
    drop(publisher);
    check_heap();
}
