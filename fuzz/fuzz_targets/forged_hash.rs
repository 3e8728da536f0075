//! Reads of forged hash maps: a `ShmHashMap<u64, u32>` of this process whose header (pointer,
//! bucket mask, items, room left, seed) and control bytes the fuzzer writes, and a
//! `ShmHashMap<bool, u8>` whose control bytes and keys it writes. The receive-time check,
//! lookups (`try_get`, `get`), iteration and `try_clone` must each end — with an error, a
//! miss, or a value read inside the map's block — and never crash, hang or read out of
//! bounds; a map the check accepts must also be readable without error. The forged maps are
//! never dropped (freeing a forged pointer is a programming error, which panics by design).
#![no_main]

use std::mem::ManuallyDrop;

use ipc_runtime::prelude::*;
use libfuzzer_sys::fuzz_target;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        let n = self.0.len().min(8);
        bytes[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(bytes)
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

/// The map's six header words (segment, offset, mask, items, room left, seed).
fn header<K: ShmSafe, V: ShmSafe>(m: &ShmHashMap<K, V>) -> [u64; 6] {
    // SAFETY: `ShmHashMap` is `repr(C)`: a `RelPtr` (two u64) and four u64.
    unsafe { (m as *const ShmHashMap<K, V>).cast::<[u64; 6]>().read() }
}

fn forge<K: ShmSafe, V: ShmSafe>(m: &mut ShmHashMap<K, V>, words: [u64; 6]) {
    // SAFETY: as in `header`; any bits are valid for each word.
    unsafe { (m as *mut ShmHashMap<K, V>).cast::<[u64; 6]>().write(words) };
}

/// Reads `m` every way a reader can; checks they agree with the receive-time check.
fn read_all<K: ShmSafe + std::hash::Hash + Eq + Clone, V: ShmSafe + Clone>(
    m: &ShmHashMap<K, V>,
    probe: &[K],
) {
    // SAFETY: `m` is initialised memory of its type.
    let checked = unsafe { <ShmHashMap<K, V> as ShmSafe>::check_bits(m) };
    for key in probe {
        let got = m.try_get(key);
        if checked.is_ok() {
            assert!(got.is_ok(), "a map the check accepts fails a lookup");
        }
    }
    if checked.is_ok() {
        let n = m.try_iter().expect("a checked map resolves").count();
        assert_eq!(n, m.len(), "a checked map iterates its items");
        let copy = m.try_clone().expect("a checked map clones");
        assert_eq!(copy.len(), n);
    } else if let Ok(items) = m.try_iter() {
        // It resolves: iteration and cloning end, whatever the control bytes say.
        let _ = items.count();
        if let Ok(copy) = m.try_clone() {
            drop(copy);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let selector = input.u64();
    // A real map of this process, so that some forged headers point into a real block.
    let mut map: ShmHashMap<u64, u32> = ShmHashMap::with_seed(selector >> 8);
    for i in 0..(selector % 40) {
        map.insert(i * 7, i as u32);
    }
    let real = header(&map);
    let mut words = real;
    // Perturb some header words.
    for (i, word) in words.iter_mut().enumerate() {
        if selector >> (16 + i) & 1 == 1 {
            *word = match input.u64() % 4 {
                0 => word.wrapping_add(input.u64() % 64),
                1 => word.wrapping_sub(input.u64() % 64),
                2 => input.u64(),
                _ => 0,
            };
        }
    }
    // Scribble on the real block's control bytes (the map is ours, so this is our memory).
    let buckets = (real[2] + 1) as usize;
    let ctrl_bytes = if real[0] != 0 {
        let block = map.rel_ptr().resolve(buckets * 16 + buckets + 8, 8).unwrap();
        // SAFETY: the block holds `buckets` 16-byte slots, then `buckets + 8` control bytes.
        Some(unsafe {
            std::slice::from_raw_parts_mut(block.as_ptr().add(buckets * 16), buckets + 8)
        })
    } else {
        None
    };
    let saved = ctrl_bytes.as_ref().map(|c| c.to_vec());
    if let Some(ctrl) = ctrl_bytes {
        while let (Some(at), Some(byte)) = (input.byte(), input.byte()) {
            let i = at as usize % ctrl.len();
            ctrl[i] = byte;
        }
    }
    let mut forged = ManuallyDrop::new(ShmHashMap::<u64, u32>::with_seed(0));
    forge(&mut *forged, words);
    read_all(&*forged, &[0, 7, 14, 1, u64::MAX]);
    // Put the block back so that the real map drops cleanly.
    if let (Some(saved), Some(ctrl)) = (saved, ctrl_bytes_again(&map, buckets)) {
        ctrl.copy_from_slice(&saved);
    }
    drop(map);

    // Keys with invalid bit patterns: the check must find a forged `bool` key.
    let mut flags: ShmHashMap<bool, u8> = ShmHashMap::with_seed(selector);
    flags.insert(true, 1);
    flags.insert(false, 0);
    let words = header(&flags);
    let buckets = (words[2] + 1) as usize;
    let block = flags.rel_ptr().resolve(buckets * 2 + buckets + 8, 1).unwrap();
    // SAFETY: `buckets` two-byte slots (key, value), then the control bytes.
    let slots = unsafe { std::slice::from_raw_parts_mut(block.as_ptr(), buckets * 2) };
    let saved: Vec<u8> = slots.to_vec();
    if let Some(b) = input.byte() {
        let i = b as usize % slots.len();
        slots[i] = input.byte().unwrap_or(2);
    }
    // SAFETY: initialised memory of its type (the check reads the key's bits, not as a bool).
    let checked = unsafe { <ShmHashMap<bool, u8> as ShmSafe>::check_bits(&flags) };
    let bad_key = slots.chunks(2).any(|slot| slot[0] > 1);
    if checked.is_ok() {
        // Every full bucket's key is a valid bool: reading them is sound.
        let _ = (flags.get(&true), flags.get(&false), flags.iter().count());
    } else {
        assert!(bad_key, "the check refused a map whose keys are all valid");
    }
    slots.copy_from_slice(&saved);
});

fn ctrl_bytes_again(map: &ShmHashMap<u64, u32>, buckets: usize) -> Option<&mut [u8]> {
    if map.rel_ptr().is_null() {
        return None;
    }
    let block = map.rel_ptr().resolve(buckets * 16 + buckets + 8, 8).ok()?;
    // SAFETY: as above: our own map's control bytes.
    Some(unsafe { std::slice::from_raw_parts_mut(block.as_ptr().add(buckets * 16), buckets + 8) })
}
