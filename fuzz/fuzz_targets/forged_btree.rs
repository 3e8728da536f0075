//! Reads of forged ordered maps and deques: a real `ShmBTreeMap<u64, u64>` of a few hundred
//! entries (height 2) whose header words and whose nodes' memory (any 8-byte word within 16 KiB
//! of the root node: key counts, keys, child pointers, neighbouring nodes) the fuzzer
//! overwrites, and a `ShmVecDeque<u64>` whose five words it forges. The receive-time check, the
//! lookups, iteration from both ends and range queries must neither crash, hang nor read out of
//! bounds; iteration yields at most the length; and a tree that passes the check iterates to
//! exactly its length. Every overwritten word is restored after each input; the forged values
//! are never dropped.
#![no_main]

use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};

use ipc_runtime::prelude::*;
use libfuzzer_sys::fuzz_target;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u64(&mut self) -> Option<u64> {
        if self.0.is_empty() {
            return None;
        }
        let mut bytes = [0u8; 8];
        let n = self.0.len().min(8);
        bytes[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Some(u64::from_le_bytes(bytes))
    }
}

/// Words around the root node that the fuzzer may overwrite (16 KiB either side).
const SPAN: i64 = 2048;

struct Fixture {
    map: ManuallyDrop<ShmBTreeMap<u64, u64>>,
    queue: ManuallyDrop<ShmVecDeque<u64>>,
    root: usize,
}

// SAFETY: used from the fuzzing thread only.
unsafe impl Sync for Fixture {}
// SAFETY: as above.
unsafe impl Send for Fixture {}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        // Quiet the panics the forged reads are allowed to raise (clear messages, caught).
        std::panic::set_hook(Box::new(|_| {}));
        // 64 KiB of our heap before the tree, so every word the fuzzer may touch is inside
        // the heap's mapping.
        let guard = ManuallyDrop::new(ShmVec::from_slice(&[0u8; 64 << 10]));
        let map: ShmBTreeMap<u64, u64> = (0..400u64).map(|i| (i * 2, i)).collect();
        assert!(map.root_ptr().offset() > guard.rel_ptr().offset());
        let root = map.root_ptr().resolve(8, 8).unwrap().as_ptr() as usize;
        let mut queue = ShmVecDeque::new();
        for i in 0..20 {
            queue.push_front(i);
            queue.push_back(i);
        }
        Fixture { map: ManuallyDrop::new(map), queue: ManuallyDrop::new(queue), root }
    })
}

/// Reads `map` every way a reader can. The library may panic (with a clear message: caught by
/// the caller); a broken bound of ours comes back as `Some`.
fn read_all(map: &ShmBTreeMap<u64, u64>, checked: bool) -> Option<String> {
    let len = map.len();
    let n = map.iter().count();
    if n > len || (checked && n != len) {
        return Some(format!("iteration yielded {n} entries for a length of {len}"));
    }
    if map.iter().rev().count() > len {
        return Some("backwards iteration beyond the length".into());
    }
    for k in [0u64, 1, 2, 399, 400, 798, 799, u64::MAX] {
        let _ = map.get(&k);
        if map.range(k..).count() > len || map.range(..=k).rev().count() > len {
            return Some(format!("range around {k} beyond the length"));
        }
    }
    let mut r = map.range(100..600);
    let mut taken = 0;
    while r.next().is_some() | r.next_back().is_some() {
        taken += 1;
        if taken > len {
            return Some("a range from both ends beyond the length".into());
        }
    }
    let _ = (map.first_key_value(), map.last_key_value());
    None
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut input = Input(data);
    let Some(selector) = input.u64() else { return };

    // Header: a copy of the map's four words with some replaced.
    // SAFETY: `ShmBTreeMap` is `repr(C)`: four `u64`s (root segment, root offset, height, len).
    let mut words = unsafe { *(&*f.map as *const ShmBTreeMap<u64, u64>).cast::<[u64; 4]>() };
    for (i, w) in words.iter_mut().enumerate() {
        if selector >> i & 1 == 1 {
            let v = input.u64().unwrap_or(0);
            *w = if i == 2 { v % 40 } else if i == 3 { v % 1000 } else { v };
        }
    }
    // Nodes: up to 8 words near the root overwritten, remembered to be restored.
    let mut saved: Vec<(*mut u64, u64)> = Vec::new();
    for _ in 0..(selector >> 8) % 9 {
        let (Some(at), Some(value)) = (input.u64(), input.u64()) else { break };
        let word = (at as i64).rem_euclid(2 * SPAN) - SPAN;
        let p = (f.root as isize + word as isize * 8) as *mut u64;
        // Anything may change, the allocator's block headers included (nothing is allocated
        // or freed in the shared heap until the word is restored).
        // SAFETY: inside our own heap's writable mapping: the fixture put 64 KiB of the heap
        // before the tree, and the heap is far larger than 16 KiB past the root.
        let old = unsafe { p.read() };
        saved.push((p, old));
        let value = match value % 4 {
            0 => value >> 2,
            1 => old ^ (1 << (value >> 2) % 64),
            2 => old.wrapping_add((value >> 2) % 16).wrapping_sub(8),
            _ => old,
        };
        // SAFETY: as above; restored below.
        unsafe { p.write(value) };
    }

    // SAFETY: four plain words make a `ShmBTreeMap` value; never dropped.
    let forged =
        ManuallyDrop::new(unsafe { std::mem::transmute::<[u64; 4], ShmBTreeMap<u64, u64>>(words) });
    // SAFETY: initialised memory of the type.
    let checked = unsafe { <ShmBTreeMap<u64, u64> as ShmSafe>::check_bits(&*forged) }.is_ok();
    let broken = catch_unwind(AssertUnwindSafe(|| read_all(&forged, checked))).ok().flatten();

    for (p, old) in saved.into_iter().rev() {
        // SAFETY: the word overwritten above.
        unsafe { p.write(old) };
    }
    if let Some(broken) = broken {
        panic!("{broken} (header {words:x?}, checked: {checked})");
    }

    // The deque's five words (segment, offset, front, length, capacity).
    // SAFETY: `ShmVecDeque` is `repr(C)`: five `u64`s.
    let mut dq = unsafe { *(&*f.queue as *const ShmVecDeque<u64>).cast::<[u64; 5]>() };
    for (i, w) in dq.iter_mut().enumerate() {
        if selector >> (40 + i) & 1 == 1 {
            let v = input.u64().unwrap_or(0);
            *w = if i >= 2 { v % 256 } else { v };
        }
    }
    // SAFETY: five plain words make a `ShmVecDeque` value; never dropped.
    let q = ManuallyDrop::new(unsafe { std::mem::transmute::<[u64; 5], ShmVecDeque<u64>>(dq) });
    // SAFETY: initialised memory of the type.
    let checked = unsafe { <ShmVecDeque<u64> as ShmSafe>::check_bits(&*q) }.is_ok();
    let slices = q.try_as_slices();
    assert_eq!(slices.is_ok(), checked, "deque read and check disagree on {dq:x?}");
    if let Ok((a, b)) = slices {
        assert_eq!((a.len() + b.len()) as u64, dq[3]);
        let _sum: u64 = a.iter().chain(b).fold(0, |s, x| s.wrapping_add(*x));
    }
});
