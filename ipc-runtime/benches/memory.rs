//! Memory-layer benchmark: ShmVec vs Vec and the shared heap vs the system allocator, measured
//! side by side in one run (interleaved repetitions, so machine noise hits both alike) and
//! reported as percentiles and ratios.
//!
//! Run: `cargo bench -p ipc-runtime --bench memory` (add `-- --quick` for a smoke run).

use std::alloc::{Layout, alloc, dealloc};
use std::hint::black_box;
use std::time::Instant;

use hdrhistogram::Histogram;
use ipc_runtime::ShmVec;
use ipc_runtime::heap::Heap;
use ipc_runtime::segment::{Access, Segment, SegmentKind, SegmentName};

struct Pair {
    name: &'static str,
    unit: &'static str,
    ours: Histogram<u64>,
    base: Histogram<u64>,
}

impl Pair {
    fn new(name: &'static str, unit: &'static str) -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        Pair { name, unit, ours: h(), base: h() }
    }
}

fn time_ns(f: impl FnOnce()) -> u64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos().max(1) as u64
}

/// Sizes 16 B .. 4 KiB, log-uniform, from a fixed xorshift sequence.
fn mixed_sizes(n: usize) -> Vec<usize> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let shift = 4 + (x % 9) as u32; // 16 .. 4096
            (1usize << shift) + (x >> 20) as usize % (1usize << shift)
        })
        .collect()
}

/// Dereferences `v` (a `&ShmVec` or `&Vec`, both `Deref<Target = [u64]>`) a million times, reading
/// one element each time: what a subscriber pays per access to a vector inside a sample.
fn deref_loop<V: std::ops::Deref<Target = [u64]>>(v: &V) {
    let mut sum = 0u64;
    for i in 0..1_000_000usize {
        let v = black_box(v);
        sum = sum.wrapping_add(v[i & 3]);
    }
    black_box(sum);
}

/// Maps a segment read-only into the segment table, as a subscriber maps a publisher's heap
/// (here a segment of our own, opened a second time read-only). Returns its name.
fn map_a_peer_segment() -> SegmentName {
    let domain = ipc_runtime::domain::current();
    let name =
        SegmentName::new(domain, SegmentKind::Raw, &format!("bench-peer-{}", std::process::id()))
            .expect("name");
    let created = Segment::create(&name, SegmentKind::Raw, 1 << 16).expect("peer segment");
    let read_only = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly).expect("open");
    drop(created);
    ipc_runtime::ptr::table().insert(read_only);
    name
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 5 } else { 60 };
    ipc_runtime::init_heap(256 << 20).expect("heap");

    let mut push = Pair::new("push 10^6 u64", "ms");
    let mut extend = Pair::new("extend_from_slice 1 MiB", "us");
    let mut allocs = Pair::new("alloc+free, mixed 16 B-4 KiB (batch of 64 pairs, per pair)", "ns");
    let mut deref = Pair::new("deref &vec + index, 10^6 times (per deref)", "ns");
    let shm_small = ShmVec::from_slice(&[1u64, 2, 3, 4]);
    let std_small = vec![1u64, 2, 3, 4];
    let slice = vec![7u8; 1 << 20];
    let sizes = mixed_sizes(64 * 1024);
    let heap = Heap::create(64 << 20).expect("bench heap");
    let mut held_ours = Vec::with_capacity(64);
    let mut held_sys = Vec::with_capacity(64);

    for rep in 0..reps {
        // Alternate which side goes first.
        for side in [rep % 2, 1 - rep % 2] {
            if side == 0 {
                push.ours
                    .record(
                        time_ns(|| {
                            let mut v = ShmVec::new();
                            for i in 0..1_000_000u64 {
                                v.push(i);
                            }
                            black_box(&v);
                        }) / 1000,
                    )
                    .unwrap();
                extend
                    .ours
                    .record(time_ns(|| {
                        let mut v = ShmVec::<u8>::new();
                        v.extend_from_slice(&slice);
                        black_box(&v);
                    }))
                    .unwrap();
                for batch in sizes.chunks(64) {
                    let ns = time_ns(|| {
                        for &s in batch {
                            held_ours.push(heap.try_allocate(s, 16).unwrap());
                        }
                        for p in held_ours.drain(..).rev() {
                            heap.free(p);
                        }
                    });
                    allocs.ours.record(ns / 64).unwrap();
                }
                deref.ours.record(time_ns(|| deref_loop(black_box(&shm_small)))).unwrap();
            } else {
                push.base
                    .record(
                        time_ns(|| {
                            let mut v = Vec::new();
                            for i in 0..1_000_000u64 {
                                v.push(i);
                            }
                            black_box(&v);
                        }) / 1000,
                    )
                    .unwrap();
                extend
                    .base
                    .record(time_ns(|| {
                        let mut v = Vec::<u8>::new();
                        v.extend_from_slice(&slice);
                        black_box(&v);
                    }))
                    .unwrap();
                for batch in sizes.chunks(64) {
                    let ns = time_ns(|| {
                        for &s in batch {
                            let layout = Layout::from_size_align(s, 16).unwrap();
                            // SAFETY: non-zero size.
                            held_sys.push((unsafe { alloc(layout) }, layout));
                        }
                        for (p, layout) in held_sys.drain(..).rev() {
                            // SAFETY: allocated just above with this layout.
                            unsafe { dealloc(black_box(p), layout) };
                        }
                    });
                    allocs.base.record(ns / 64).unwrap();
                }
                deref.base.record(time_ns(|| deref_loop(black_box(&std_small)))).unwrap();
            }
        }
    }

    // What a subscriber pays: the same, with another process's segment mapped read-only.
    let mut deref_peer = Pair::new("same, with a peer's segment mapped (per deref)", "ns");
    let peer = map_a_peer_segment();
    for rep in 0..reps {
        for side in [rep % 2, 1 - rep % 2] {
            if side == 0 {
                deref_peer.ours.record(time_ns(|| deref_loop(black_box(&shm_small)))).unwrap();
            } else {
                deref_peer.base.record(time_ns(|| deref_loop(black_box(&std_small)))).unwrap();
            }
        }
    }
    let _ = Segment::unlink(&peer);

    println!("# memory layer: ours vs std, {reps} interleaved repetitions\n");
    println!(
        "| operation | unit | ShmVec/heap p50 | p99 | Vec/malloc p50 | p99 | ratio p50 | ratio p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (pair, scale) in
        [(&push, 1000.0), (&extend, 1000.0), (&allocs, 1.0), (&deref, 1e6), (&deref_peer, 1e6)]
    {
        let (o50, o99) = (pair.ours.value_at_quantile(0.5), pair.ours.value_at_quantile(0.99));
        let (b50, b99) = (pair.base.value_at_quantile(0.5), pair.base.value_at_quantile(0.99));
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            pair.name,
            pair.unit,
            o50 as f64 / scale,
            o99 as f64 / scale,
            b50 as f64 / scale,
            b99 as f64 / scale,
            o50 as f64 / b50 as f64,
            o99 as f64 / b99 as f64,
        );
    }
    let push_ratio =
        push.base.value_at_quantile(0.5) as f64 / push.ours.value_at_quantile(0.5) as f64;
    let alloc_ratio =
        allocs.ours.value_at_quantile(0.5) as f64 / allocs.base.value_at_quantile(0.5) as f64;
    println!();
    println!("ShmVec push throughput = {push_ratio:.2} x Vec (target >= 0.8)");
    println!("heap alloc+free p50 = {alloc_ratio:.2} x system malloc (target <= 1.5)");
    // The deref loops are short: on a loaded machine their minimum is the steadier figure.
    for pair in [&deref, &deref_peer] {
        println!(
            "{}: min {:.2} ns per deref (Vec {:.2} ns)",
            pair.name,
            pair.ours.min() as f64 / 1e6,
            pair.base.min() as f64 / 1e6
        );
    }
    ordered_and_deque::run(quick);
    // ShmHashMap vs std HashMap (block below).
    hash_map_bench(quick);
}

// ---- ShmBTreeMap and ShmVecDeque vs std (issue: maps, sets and a deque in shared memory) ----
mod ordered_and_deque {
    use std::collections::{BTreeMap, VecDeque};
    use std::hint::black_box;

    use ipc_runtime::{ShmBTreeMap, ShmVecDeque};

    use super::{Pair, time_ns};

    const KEYS: usize = 100_000;
    const RANGES: usize = 10_000;
    const RANGE_LEN: u64 = 100;
    const DEQUE_OPS: u64 = 1_000_000;

    fn keys() -> Vec<u64> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..KEYS)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % (KEYS as u64 * 4)
            })
            .collect()
    }

    /// Runs the ordered-map and deque pairs and prints their table and ratios.
    pub fn run(quick: bool) {
        let reps = if quick { 3 } else { 20 };
        let keys = keys();
        let mut insert = Pair::new("ShmBTreeMap<u64,u64> insert 10^5 random (per insert)", "ns");
        let mut get = Pair::new("ShmBTreeMap<u64,u64> get 10^5 random (per get)", "ns");
        let mut range = Pair::new("ShmBTreeMap<u64,u64> range of ~25 keys, 10^4 (per range)", "ns");
        let mut deque = Pair::new("ShmVecDeque<u64> push_back+pop_front 10^6 (per pair)", "ns");
        let mut deque_front =
            Pair::new("ShmVecDeque<u64> push_front+pop_back 10^6 (per pair)", "ns");
        let shm_map: ShmBTreeMap<u64, u64> = keys.iter().map(|&k| (k, k)).collect();
        let std_map: BTreeMap<u64, u64> = keys.iter().map(|&k| (k, k)).collect();
        // Picoseconds per operation (the deque's operations take a few nanoseconds).
        let per = |ns: u64, n: usize| (ns * 1000 / n as u64).max(1);
        for rep in 0..reps {
            for side in [rep % 2, 1 - rep % 2] {
                if side == 0 {
                    insert
                        .ours
                        .record(per(
                            time_ns(|| {
                                let mut m = ShmBTreeMap::new();
                                for &k in &keys {
                                    m.insert(k, k);
                                }
                                black_box(&m);
                            }),
                            KEYS,
                        ))
                        .unwrap();
                    get.ours
                        .record(per(
                            time_ns(|| {
                                let mut sum = 0u64;
                                for &k in &keys {
                                    sum = sum.wrapping_add(*shm_map.get(black_box(&k)).unwrap());
                                }
                                black_box(sum);
                            }),
                            KEYS,
                        ))
                        .unwrap();
                    range
                        .ours
                        .record(per(
                            time_ns(|| {
                                let mut sum = 0u64;
                                for &k in &keys[..RANGES] {
                                    sum = sum.wrapping_add(
                                        shm_map
                                            .range(k..k + RANGE_LEN)
                                            .map(|(_, v)| *v)
                                            .sum::<u64>(),
                                    );
                                }
                                black_box(sum);
                            }),
                            RANGES,
                        ))
                        .unwrap();
                    deque
                        .ours
                        .record(per(
                            time_ns(|| {
                                let mut q = ShmVecDeque::new();
                                let mut sum = 0u64;
                                for i in 0..DEQUE_OPS {
                                    q.push_back(i);
                                    if i % 4 == 3 {
                                        for _ in 0..2 {
                                            sum = sum.wrapping_add(q.pop_front().unwrap());
                                        }
                                    }
                                }
                                while let Some(x) = q.pop_front() {
                                    sum = sum.wrapping_add(x);
                                }
                                black_box(sum);
                            }),
                            DEQUE_OPS as usize,
                        ))
                        .unwrap();
                    deque_front
                        .ours
                        .record(per(
                            time_ns(|| {
                                let mut q = ShmVecDeque::new();
                                let mut sum = 0u64;
                                for i in 0..DEQUE_OPS {
                                    q.push_front(i);
                                    if i % 4 == 3 {
                                        for _ in 0..2 {
                                            sum = sum.wrapping_add(q.pop_back().unwrap());
                                        }
                                    }
                                }
                                while let Some(x) = q.pop_back() {
                                    sum = sum.wrapping_add(x);
                                }
                                black_box(sum);
                            }),
                            DEQUE_OPS as usize,
                        ))
                        .unwrap();
                } else {
                    insert
                        .base
                        .record(per(
                            time_ns(|| {
                                let mut m = BTreeMap::new();
                                for &k in &keys {
                                    m.insert(k, k);
                                }
                                black_box(&m);
                            }),
                            KEYS,
                        ))
                        .unwrap();
                    get.base
                        .record(per(
                            time_ns(|| {
                                let mut sum = 0u64;
                                for &k in &keys {
                                    sum = sum.wrapping_add(*std_map.get(black_box(&k)).unwrap());
                                }
                                black_box(sum);
                            }),
                            KEYS,
                        ))
                        .unwrap();
                    range
                        .base
                        .record(per(
                            time_ns(|| {
                                let mut sum = 0u64;
                                for &k in &keys[..RANGES] {
                                    sum = sum.wrapping_add(
                                        std_map
                                            .range(k..k + RANGE_LEN)
                                            .map(|(_, v)| *v)
                                            .sum::<u64>(),
                                    );
                                }
                                black_box(sum);
                            }),
                            RANGES,
                        ))
                        .unwrap();
                    deque
                        .base
                        .record(per(
                            time_ns(|| {
                                let mut q = VecDeque::new();
                                let mut sum = 0u64;
                                for i in 0..DEQUE_OPS {
                                    q.push_back(i);
                                    if i % 4 == 3 {
                                        for _ in 0..2 {
                                            sum = sum.wrapping_add(q.pop_front().unwrap());
                                        }
                                    }
                                }
                                while let Some(x) = q.pop_front() {
                                    sum = sum.wrapping_add(x);
                                }
                                black_box(sum);
                            }),
                            DEQUE_OPS as usize,
                        ))
                        .unwrap();
                    deque_front
                        .base
                        .record(per(
                            time_ns(|| {
                                let mut q = VecDeque::new();
                                let mut sum = 0u64;
                                for i in 0..DEQUE_OPS {
                                    q.push_front(i);
                                    if i % 4 == 3 {
                                        for _ in 0..2 {
                                            sum = sum.wrapping_add(q.pop_back().unwrap());
                                        }
                                    }
                                }
                                while let Some(x) = q.pop_back() {
                                    sum = sum.wrapping_add(x);
                                }
                                black_box(sum);
                            }),
                            DEQUE_OPS as usize,
                        ))
                        .unwrap();
                }
            }
        }
        println!("\n# ordered map and deque: ours vs std, {reps} interleaved repetitions\n");
        println!(
            "| operation | unit | ours p50 | p99 | std p50 | p99 | throughput ratio p50 (std/ours) |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (pair, target) in
            [(&insert, 0.7), (&get, 0.7), (&range, 0.7), (&deque, 0.8), (&deque_front, 0.8)]
        {
            let (o50, o99) = (pair.ours.value_at_quantile(0.5), pair.ours.value_at_quantile(0.99));
            let (b50, b99) = (pair.base.value_at_quantile(0.5), pair.base.value_at_quantile(0.99));
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} (target >= {target}) |",
                pair.name,
                pair.unit,
                o50 as f64 / 1000.0,
                o99 as f64 / 1000.0,
                b50 as f64 / 1000.0,
                b99 as f64 / 1000.0,
                b50 as f64 / o50 as f64,
            );
        }
    }
}

// ---- ShmHashMap / ShmHashSet benchmark (hash containers) -------------------------------------

/// `ShmHashMap<u64, u64>` against std's `HashMap` with the same hash function
/// (`ShmBuildHasher`, same seed) and with std's default hasher (SipHash-1-3, `RandomState`):
/// insert 10^6 keys into an empty map (growing as it goes), then get each of them once.
/// Repetitions interleaved, the order rotated; times per whole operation.
fn hash_map_bench(quick: bool) {
    use std::collections::HashMap;
    use std::hash::{BuildHasher, RandomState};

    use ipc_runtime::ShmHashMap;
    use ipc_runtime::containers::ShmBuildHasher;

    const N: u64 = 1_000_000;
    let reps = if quick { 3 } else { 20 };
    // Distinct keys spread over the whole range, in a fixed order.
    let keys: Vec<u64> = (0..N).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555).collect();
    let seed = 0x1234_5678;
    let h = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let names = ["ShmHashMap", "std HashMap + ShmBuildHasher", "std HashMap + RandomState"];
    let mut insert = [h(), h(), h()];
    let mut get = [h(), h(), h()];

    fn run_std<S: BuildHasher>(
        keys: &[u64],
        build: S,
        insert: &mut Histogram<u64>,
        get: &mut Histogram<u64>,
    ) {
        let mut m = HashMap::with_hasher(build);
        insert
            .record(time_ns(|| {
                for &k in keys {
                    m.insert(k, k);
                }
            }))
            .unwrap();
        get.record(time_ns(|| {
            let mut sum = 0u64;
            for k in keys {
                sum = sum.wrapping_add(*m.get(black_box(k)).unwrap());
            }
            black_box(sum);
        }))
        .unwrap();
        black_box(&m);
    }

    for rep in 0..reps {
        for turn in 0..3 {
            match (rep + turn) % 3 {
                0 => {
                    let mut m: ShmHashMap<u64, u64> = ShmHashMap::with_seed(seed);
                    insert[0]
                        .record(time_ns(|| {
                            for &k in &keys {
                                m.insert(k, k);
                            }
                        }))
                        .unwrap();
                    get[0]
                        .record(time_ns(|| {
                            let mut sum = 0u64;
                            for k in &keys {
                                sum = sum.wrapping_add(*m.get(black_box(k)).unwrap());
                            }
                            black_box(sum);
                        }))
                        .unwrap();
                    black_box(&m);
                }
                1 => run_std(&keys, ShmBuildHasher::with_seed(seed), &mut insert[1], &mut get[1]),
                _ => run_std(&keys, RandomState::new(), &mut insert[2], &mut get[2]),
            }
        }
    }

    println!(
        "\n# hash maps: u64 -> u64, 10^6 keys, {reps} interleaved repetitions (ms per 10^6)\n"
    );
    println!("| operation | map | p50 | p99 | throughput vs ShmHashMap (p50) |");
    println!("|---|---|---|---|---|");
    for (op, hist) in [("insert 10^6", &insert), ("get 10^6", &get)] {
        for (i, name) in names.iter().enumerate() {
            let (p50, p99) = (hist[i].value_at_quantile(0.5), hist[i].value_at_quantile(0.99));
            println!(
                "| {op} | {name} | {:.2} | {:.2} | {:.2} |",
                p50 as f64 / 1e6,
                p99 as f64 / 1e6,
                hist[0].value_at_quantile(0.5) as f64 / p50 as f64
            );
        }
    }
    println!();
    for (op, hist) in [("insert", &insert), ("get", &get)] {
        let same = hist[1].value_at_quantile(0.5) as f64 / hist[0].value_at_quantile(0.5) as f64;
        let default = hist[2].value_at_quantile(0.5) as f64 / hist[0].value_at_quantile(0.5) as f64;
        println!(
            "ShmHashMap {op} throughput = {same:.2} x std HashMap with the same hasher (target >= 0.7), \
             {default:.2} x std HashMap with RandomState"
        );
    }
}
// ---- end of the hash containers' benchmark ----------------------------------------------------
