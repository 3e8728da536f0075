//! Tests of the hash containers: behaviour, leak-freedom, model-based property tests against
//! std's `HashMap` / `HashSet`, the receive-time check, and reads of corrupt tables (which
//! must end with an error or `None`, never a hang or a read out of bounds). Sizes are small
//! under Miri.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::table::{DELETED, EMPTY, GROUP};
use super::*;
use crate::heap;
use crate::message::ShmSafe;
use crate::{ShmString, ShmVec};

/// Tests that compare heap usage before and after run one at a time: they share the heap
/// with the other container tests, so they take the same lock.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    crate::containers::tests::serial()
}

/// Heap bytes held by this thread's allocations: tests elsewhere in the crate use the same
/// default heap from their own threads at the same time.
fn in_use() -> u64 {
    heap::default_heap().unwrap();
    heap::tlsf::thread_in_use()
}

fn leak_checked(f: impl FnOnce()) {
    let _guard = serial();
    let before = in_use();
    f();
    assert_eq!(in_use(), before, "heap bytes in use changed: leak or double free");
}

/// The receive-time check of a map, on a map of this process.
fn check<K: ShmSafe, V: ShmSafe>(m: &ShmHashMap<K, V>) -> Result<(), crate::message::InvalidValue> {
    // SAFETY: `m` is a valid, initialised map.
    unsafe { <ShmHashMap<K, V> as ShmSafe>::check_bits(m) }
}

fn n() -> u32 {
    if cfg!(miri) { 40 } else { 5000 }
}

#[test]
fn map_basics() {
    leak_checked(|| {
        let mut m: ShmHashMap<u32, u64> = ShmHashMap::new();
        assert_eq!(m.capacity(), 0);
        assert!(m.rel_ptr().is_null());
        for i in 0..n() {
            assert_eq!(m.insert(i, u64::from(i) * 3), None);
        }
        assert_eq!(m.len(), n() as usize);
        check(&m).unwrap();
        for i in 0..n() {
            assert_eq!(m.get(&i), Some(&(u64::from(i) * 3)));
        }
        assert_eq!(m.get(&n()), None);
        assert_eq!(m.insert(7, 1), Some(21));
        *m.get_mut(&7).unwrap() += 1;
        assert_eq!(m[&7], 2);
        assert_eq!(m.get_key_value(&7), Some((&7, &2)));
        for i in (0..n()).step_by(2) {
            assert!(m.remove(&i).is_some());
        }
        assert_eq!(m.len(), n() as usize / 2);
        check(&m).unwrap();
        assert!(m.keys().all(|k| k % 2 == 1));
        assert_eq!(m.iter().count(), m.len());
        assert_eq!(m.values().count(), m.len());
        m.values_mut().for_each(|v| *v = 0);
        assert!(m.values().all(|v| *v == 0));
        m.retain(|k, _| k % 3 == 0);
        assert!(m.keys().all(|k| k % 6 == 3));
        check(&m).unwrap();
        let copy = m.clone();
        assert_eq!(copy, m);
        assert_eq!(copy.seed(), m.seed());
        check(&copy).unwrap();
        let cap = m.capacity();
        m.clear();
        assert!(m.is_empty() && m.capacity() == cap);
        check(&m).unwrap();
        m.shrink_to_fit();
        assert_eq!(m.capacity(), 0);
        assert!(m.rel_ptr().is_null());
        check(&m).unwrap();
    });
}

#[test]
fn string_keys_are_found_by_str() {
    leak_checked(|| {
        let mut m: ShmHashMap<ShmString, ShmVec<u32>> = ShmHashMap::new();
        for i in 0..n() / 10 {
            m.insert(ShmString::from(format!("key-{i}").as_str()), (0..i).collect());
        }
        for i in 0..n() / 10 {
            assert_eq!(m.get(format!("key-{i}").as_str()).unwrap().len(), i as usize);
            assert!(m.contains_key(format!("key-{i}").as_str()));
        }
        assert!(m.get("nope").is_none());
        m.entry("key-1".into()).or_default().push(99);
        assert_eq!(m["key-1"], [0, 99]);
        m.entry("new".into()).or_default().push(1);
        assert_eq!(m["new"], [1]);
        assert_eq!(m.remove("new").unwrap(), [1]);
        let copy = m.clone();
        assert_eq!(copy, m);
        let owned: HashMap<String, usize> =
            copy.into_iter().map(|(k, v)| (k.as_str().to_owned(), v.len())).collect();
        assert_eq!(owned.len(), m.len());
        let drained: Vec<_> = m.drain().collect();
        assert_eq!(drained.len(), owned.len());
        assert!(m.is_empty());
        check(&m).unwrap();
        // Dropping a half-consumed owning iterator drops the rest.
        let mut m: ShmHashMap<ShmString, ShmString> =
            (0..20).map(|i| (ShmString::from(i.to_string().as_str()), "v".into())).collect();
        let mut it = m.clone().into_iter();
        it.next();
        drop(it);
        let mut d = m.drain();
        d.next();
        drop(d);
        assert!(m.is_empty());
    });
}

#[test]
fn entry_api() {
    leak_checked(|| {
        let mut m: ShmHashMap<u8, ShmString> = ShmHashMap::new();
        assert_eq!(m.entry(1).key(), &1);
        m.entry(1).or_insert("a".into());
        m.entry(1).or_insert("b".into());
        assert_eq!(m[&1], "a");
        m.entry(2).or_insert_with(|| "c".into());
        m.entry(3).or_insert_with_key(|k| ShmString::from(k.to_string().as_str()));
        assert_eq!(m[&3], "3");
        m.entry(2).and_modify(|v| v.push('!')).or_default();
        assert_eq!(m[&2], "c!");
        match m.entry(2) {
            hash_map_entry::Occupied(mut e) => {
                assert_eq!(e.key(), &2);
                assert_eq!(e.insert("d".into()), "c!");
                assert_eq!(e.get(), "d");
                assert_eq!(e.remove_entry(), (2, "d".into()));
            }
            hash_map_entry::Vacant(_) => panic!("2 is there"),
        }
        match m.entry(9) {
            hash_map_entry::Vacant(e) => {
                assert_eq!(e.key(), &9);
                let o = e.insert_entry("nine".into());
                assert_eq!(o.get(), "nine");
            }
            hash_map_entry::Occupied(_) => panic!("9 is not there"),
        }
        assert_eq!(m.entry(4).insert_entry("x".into()).remove(), "x");
        assert_eq!(m.len(), 3);
        check(&m).unwrap();
        assert_eq!(format!("{:?}", m.entry(1)), "Entry(OccupiedEntry { key: 1, value: \"a\" })");
    });
}

use super::Entry as hash_map_entry;

#[test]
fn set_basics() {
    leak_checked(|| {
        let mut s: ShmHashSet<ShmString> = ShmHashSet::new();
        for i in 0..n() / 10 {
            assert!(s.insert(ShmString::from(i.to_string().as_str())));
        }
        assert!(!s.insert("1".into()));
        assert!(s.contains("1") && !s.contains("x"));
        assert_eq!(s.get("2").unwrap(), "2");
        assert_eq!(s.take("2").unwrap(), "2");
        assert!(!s.remove("2"));
        assert_eq!(s.replace("3".into()).unwrap(), "3");
        s.retain(|v| v.len() == 1);
        assert_eq!(s.len(), (0..n() / 10).filter(|&i| i < 10 && i != 2).count());
        let c = s.clone();
        assert_eq!(c, s);
        let a: ShmHashSet<u32> = (0..10).collect();
        let b: ShmHashSet<u32> = (5..15).collect();
        let sorted = |it: &mut dyn Iterator<Item = &u32>| {
            let mut v: Vec<u32> = it.copied().collect();
            v.sort_unstable();
            v
        };
        assert_eq!(sorted(&mut a.intersection(&b)), (5..10).collect::<Vec<_>>());
        assert_eq!(sorted(&mut a.union(&b)), (0..15).collect::<Vec<_>>());
        assert_eq!(sorted(&mut a.difference(&b)), (0..5).collect::<Vec<_>>());
        assert_eq!(sorted(&mut a.symmetric_difference(&b)).len(), 10);
        assert!(!a.is_disjoint(&b) && !a.is_subset(&b));
        assert_eq!(format!("{:?}", ShmHashSet::from([1u8])), "{1}");
        let mut all: Vec<u32> = a.into_iter().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    });
}

#[test]
fn same_seed_same_layout_and_hash_matches_std_with_the_same_hasher() {
    let _guard = serial();
    let mut a: ShmHashMap<u64, u64> = ShmHashMap::with_seed(5);
    let mut b: ShmHashMap<u64, u64> = ShmHashMap::with_seed(5);
    let mut model = HashMap::with_hasher(a.hasher());
    for i in 0..100 {
        a.insert(i * 7, i);
        b.insert(i * 7, i);
        model.insert(i * 7, i);
    }
    let ka: Vec<_> = a.keys().collect();
    let kb: Vec<_> = b.keys().collect();
    assert_eq!(ka, kb, "same seed, same operations: same order");
    assert!(model.iter().all(|(k, v)| a.get(k) == Some(v)));
    assert_eq!(format!("{:?}", ShmHashMap::<u8, u8>::from([(1, 2)])), "{1: 2}");
}

#[test]
fn try_methods_report_out_of_memory() {
    let _guard = serial();
    let capacity = heap::default_heap().unwrap().stats().capacity() as usize;
    let err = ShmHashMap::<u64, u64>::try_with_capacity(capacity).unwrap_err();
    assert!(matches!(err, crate::Error::OutOfMemory { .. }), "{err}");
    let err = ShmHashMap::<u64, u64>::try_with_capacity(usize::MAX).unwrap_err();
    assert!(matches!(err, crate::Error::CapacityOverflow { .. }), "{err}");
    // Full heap: try_insert gives the key and value back, and the map is unchanged.
    let mut m: ShmHashMap<u64, [u8; 1024]> = ShmHashMap::new();
    let hog = ShmVec::<u8>::try_with_capacity(capacity - (64 << 10)).ok();
    let mut failed = None;
    for i in 0..200u64 {
        match m.try_insert(i, [1; 1024]) {
            Ok(_) => {}
            Err((k, v, e)) => {
                failed = Some((k, v[0], e));
                break;
            }
        }
    }
    drop(hog);
    if let Some((k, v, e)) = failed {
        assert_eq!(v, 1);
        assert!(matches!(e, crate::Error::OutOfMemory { .. }), "{e}");
        assert!(!m.contains_key(&k));
        assert_eq!(m.len() as u64, k);
    }
    check(&m).unwrap();
}

/// The derive accepts the new containers as fields (and nested in `ShmVec`).
#[test]
fn derive_accepts_maps_and_sets() {
    #[derive(crate::ShmMessage)]
    #[repr(C)]
    struct Index {
        by_name: ShmHashMap<ShmString, ShmVec<f32>>,
        tags: ShmHashSet<ShmString>,
        shards: ShmVec<ShmHashMap<u64, bool>>,
    }
    let _guard = serial();
    let mut msg =
        Index { by_name: ShmHashMap::new(), tags: ShmHashSet::new(), shards: ShmVec::new() };
    msg.by_name.insert("a".into(), ShmVec::from_slice(&[1.0]));
    msg.tags.insert("t".into());
    msg.shards.push([(1, true)].into_iter().collect());
    const { assert!(<Index as ShmSafe>::MAY_BE_INVALID) };
    // SAFETY: a valid, initialised message.
    unsafe { <Index as ShmSafe>::check_bits(&msg) }.unwrap();
    // A bool value that is not 0 or 1, in a full bucket of the nested map: named by its path.
    let shard = &mut msg.shards[0];
    let raw = shard.table_mut_for_tests().view_mut().unwrap();
    let i = shard.table_mut_for_tests().iter_mut().next().unwrap().0;
    // SAFETY: bucket `i` of our own map is full; we play a hostile writer scribbling a value.
    unsafe { core::ptr::addr_of_mut!((*raw.slot(i)).value).cast::<u8>().write(7) };
    // SAFETY: as above (the bytes are initialised; only the check reads them).
    let err = unsafe { <Index as ShmSafe>::check_bits(&msg) }.unwrap_err();
    assert_eq!(err.path("Index"), format!("Index.shards[0][{i}].value"));
    assert_eq!(err.found(), "7");
    // Put it back so that the drop is of a valid map.
    // SAFETY: as above.
    unsafe { core::ptr::addr_of_mut!((*raw.slot(i)).value).cast::<u8>().write(1) };
}

/// A map of `u64`s whose block we scribble on, as a hostile writer would: returns the map
/// (never dropped: its drop would free a block whose control bytes were forged — harmless for
/// `u64`s, but the test keeps it simple) and its resolved view.
fn scribbled(len: u64) -> core::mem::ManuallyDrop<ShmHashMap<u64, u64>> {
    let mut m = ShmHashMap::with_seed(1);
    for i in 0..len {
        m.insert(i, i);
    }
    core::mem::ManuallyDrop::new(m)
}

/// Overwrites the five header words of `m` (pointer segment and offset, mask, items, growth).
fn forge_header(m: &mut ShmHashMap<u64, u64>, words: [u64; 5]) {
    // SAFETY: the map is `repr(C)`: a `RelPtr` (two u64) and four u64 (mask, items, growth,
    // seed); any bits are valid for each word.
    unsafe { (m as *mut ShmHashMap<u64, u64>).cast::<[u64; 5]>().write(words) };
}

fn header(m: &ShmHashMap<u64, u64>) -> [u64; 5] {
    // SAFETY: as in `forge_header`.
    unsafe { (m as *const ShmHashMap<u64, u64>).cast::<[u64; 5]>().read() }
}

#[test]
fn forged_headers_are_refused() {
    let _guard = serial();
    let mut m = scribbled(20);
    let good = header(&m);
    let [seg, off, mask, items, growth] = good;
    let cases: [([u64; 5], &str); 8] = [
        ([seg, off, 30, items, growth], "power of two"),
        ([seg, off, 3, items, growth], "power of two"),
        ([seg, off, u64::MAX, items, growth], "power of two"),
        ([seg, off, (1 << 40) - 1, items, growth], "resolve"),
        ([seg, u64::MAX - 8, mask, items, growth], "resolve"),
        ([seg, off, mask, items + 1, growth], "items"),
        ([seg, off, mask, items, growth + 1], "7/8"),
        ([0, 0, mask, items, growth], "empty table"),
    ];
    for (words, what) in cases {
        forge_header(&mut m, words);
        let err = check(&m).unwrap_err();
        assert!(err.to_string().contains(what), "{words:x?}: {err}");
        // Lookups end, with an error or a bounded miss, never out of bounds.
        match m.try_get(&3) {
            Ok(v) => assert!(v.is_none() || v == Some(&3), "{words:x?}"),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    forge_header(&mut m, good);
    check(&m).unwrap();
    assert_eq!(m.get(&3), Some(&3));
    // SAFETY: the header is the map's own again.
    unsafe { core::mem::ManuallyDrop::drop(&mut m) };
}

#[test]
fn forged_control_bytes_are_refused_and_lookups_stay_bounded() {
    let _guard = serial();
    let mut m = scribbled(5);
    let raw = m.table_mut_for_tests().view_mut().unwrap();
    let buckets = raw.buckets();
    let ctrl = raw.ctrl_ptr_for_tests();
    let slots = raw.slot(0).cast::<u8>();
    let len = buckets + GROUP;
    // Writes go through raw pointers into our own block (`buckets` slots of 16 bytes, then
    // `buckets + GROUP` control bytes), never through a `&mut` that reads by the map would
    // invalidate.
    // SAFETY: in bounds of the block, which stays allocated (the map is never dropped before
    // the end of the test); the same for the next closures.
    let set = |i: usize, b: u8| unsafe { ctrl.add(i).write(b) };
    // SAFETY: as above.
    let get = |i: usize| unsafe { ctrl.add(i).read() };
    // SAFETY: as above.
    let fill = |b: u8| unsafe { core::ptr::write_bytes(ctrl, b, len) };
    let saved: Vec<u8> = (0..len).map(get).collect();
    // SAFETY: as above; `saved` holds `len` bytes.
    let restore = || unsafe { core::ptr::copy_nonoverlapping(saved.as_ptr(), ctrl, len) };
    // An invalid control byte.
    set(2, 0x90);
    assert!(check(&m).unwrap_err().to_string().contains("control byte 0x90"));
    restore();
    // A copy that differs from its bucket's byte.
    set(buckets, get(buckets) ^ 0x7f);
    assert!(check(&m).unwrap_err().to_string().contains("copy"));
    restore();
    // No empty bucket anywhere: every bucket "full" with the h2 of every probe, keys zeroed
    // (initialised). Lookups of absent keys end after `buckets / 8` groups.
    // SAFETY: as above, for the slots.
    unsafe { core::ptr::write_bytes(slots, 0, buckets * 16) };
    for h2 in [0u8, 0x11, 0x7f] {
        fill(h2);
        for key in 1..50 {
            assert_eq!(m.get(&key), None);
        }
        // Key 0 is "in" every bucket now: found or not, the lookup ends.
        let _ = m.get(&0);
        assert!(check(&m).is_err());
        // Iteration stops at the end of the block however many items the header claims.
        let mut words = header(&m);
        words[3] = u64::MAX;
        forge_header(&mut m, words);
        assert_eq!(m.iter().count(), buckets);
        words[3] = 5;
        forge_header(&mut m, words);
    }
    // Tombstones everywhere: lookups end too.
    fill(DELETED);
    assert_eq!(m.get(&1), None);
    fill(EMPTY);
    assert_eq!(m.get(&1), None);
    // A clone of a corrupt map is a consistent map of this process (its own counts).
    fill(0);
    let copy = m.try_clone().unwrap();
    assert_eq!(copy.len(), buckets);
    check(&copy).unwrap_or_else(|e| assert!(e.to_string().contains("7/8"), "{e}"));
    drop(copy);
    restore();
    // SAFETY: the control bytes are the map's own again; the keys were zeroed (u64: any bits).
    unsafe { core::mem::ManuallyDrop::drop(&mut m) };
}

/// A map as another process wrote it, in a segment mapped read-only here (the in-memory
/// backend, so this runs under Miri too): lookups work from there, and a header there that
/// points into *our* heap is refused.
#[test]
fn map_in_a_peer_segment_is_read_and_held_to_the_trust_rule() {
    use crate::segment::{Access, Segment, SegmentKind, SegmentName, SharedMemoryOs, memory};
    let _guard = serial();
    let ours: ShmHashMap<u64, u64> = (0..10).map(|i| (i, i * i)).collect();
    let name = SegmentName::new(crate::domain::current(), SegmentKind::Raw, "hash-peer").unwrap();
    let writer =
        Segment::create_with(&memory::Memory, &name, SegmentKind::Raw, 1 << 16, |_| {}).unwrap();
    let reader =
        Segment::open_with(&memory::Memory, &name, SegmentKind::Raw, Access::ReadOnly).unwrap();
    memory::Memory.unlink(name.as_str()).unwrap();
    let peer = crate::ptr::table().insert(reader);
    let [_, _, mask, items, growth] = header(&ours);
    let seed = ours.seed();
    let buckets = mask as usize + 1;
    let block = buckets * 16 + buckets + GROUP;
    let src = ours.rel_ptr().resolve(block, 8).unwrap();
    let at = |offset: usize| writer.base().as_ptr().wrapping_add(offset);
    // SAFETY: in bounds of the 64 KiB peer segment, 8-aligned; we play the peer writing it:
    // at 256 a header of its own block (a copy of ours at 1024), at 320 a header pointing into
    // our heap.
    unsafe {
        core::ptr::copy_nonoverlapping(src.as_ptr(), at(1024), block);
        at(256).cast::<[u64; 6]>().write([peer, 1024, mask, items, growth, seed]);
        let own = ours.rel_ptr();
        at(320).cast::<[u64; 6]>().write([own.segment(), own.offset(), mask, items, growth, seed]);
    }
    let read_only = crate::ptr::RelPtr::new(peer, 256).resolve(128, 8).unwrap().as_ptr();
    // SAFETY: the peer segment stays mapped and holds valid maps' bytes at these offsets; only
    // `&` is formed, and the maps are never dropped.
    let (theirs, forged) = unsafe {
        (
            &*read_only.cast::<ShmHashMap<u64, u64>>(),
            &*read_only.add(64).cast::<ShmHashMap<u64, u64>>(),
        )
    };
    check(theirs).unwrap();
    for i in 0..10 {
        assert_eq!(theirs.get(&i), Some(&(i * i)));
    }
    assert_eq!(theirs.get(&10), None);
    assert_eq!(theirs.iter().count(), 10);
    let copy = theirs.clone();
    assert_ne!(copy.rel_ptr().segment(), peer);
    assert_eq!(&copy, theirs);
    drop(copy);
    let err = forged.try_get(&1).unwrap_err();
    assert!(err.to_string().contains("may only point into the segment that holds them"), "{err}");
    let err = check(forged).unwrap_err();
    assert!(err.to_string().contains("does not resolve"), "{err}");
    // SAFETY: the references into the peer segment are not used any more.
    assert!(unsafe { crate::ptr::table().retire(peer) }.unwrap());
    drop(writer);
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u64),
    Remove(u8),
    Get(u8),
    EntryAdd(u8, u64),
    EntryRemove(u8),
    Retain(u8),
    Clear,
    Reserve(u8),
    Shrink,
    Clone,
    DrainSome(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u64>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => any::<u8>().prop_map(Op::Remove),
        2 => any::<u8>().prop_map(Op::Get),
        2 => (any::<u8>(), any::<u64>()).prop_map(|(k, v)| Op::EntryAdd(k, v)),
        1 => any::<u8>().prop_map(Op::EntryRemove),
        1 => (2u8..5).prop_map(Op::Retain),
        1 => Just(Op::Clear),
        1 => any::<u8>().prop_map(Op::Reserve),
        1 => Just(Op::Shrink),
        1 => Just(Op::Clone),
        1 => any::<u8>().prop_map(Op::DrainSome),
    ]
}

fn cases() -> u32 {
    if cfg!(miri) { 2 } else { 256 }
}

fn ops_len() -> std::ops::Range<usize> {
    if cfg!(miri) { 0..24 } else { 0..300 }
}

fn key(k: u8) -> String {
    format!("k{}", k % 96)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn map_matches_std_model(ops in proptest::collection::vec(op(), ops_len())) {
        let _guard = serial();
        let before = in_use();
        {
            let mut shm: ShmHashMap<ShmString, u64> = ShmHashMap::new();
            let mut model: HashMap<String, u64> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        prop_assert_eq!(shm.insert(key(k).as_str().into(), v), model.insert(key(k), v));
                    }
                    Op::Remove(k) => prop_assert_eq!(shm.remove(key(k).as_str()), model.remove(&key(k))),
                    Op::Get(k) => prop_assert_eq!(shm.get(key(k).as_str()), model.get(&key(k))),
                    Op::EntryAdd(k, v) => {
                        let a = *shm.entry(key(k).as_str().into()).and_modify(|x| *x = x.wrapping_add(v)).or_insert(v);
                        let b = *model.entry(key(k)).and_modify(|x| *x = x.wrapping_add(v)).or_insert(v);
                        prop_assert_eq!(a, b);
                    }
                    Op::EntryRemove(k) => {
                        let a = match shm.entry(key(k).as_str().into()) {
                            Entry::Occupied(e) => Some(e.remove()),
                            Entry::Vacant(_) => None,
                        };
                        prop_assert_eq!(a, model.remove(&key(k)));
                    }
                    Op::Retain(m) => {
                        shm.retain(|_, v| *v % u64::from(m) != 0);
                        model.retain(|_, v| *v % u64::from(m) != 0);
                    }
                    Op::Clear => { shm.clear(); model.clear(); }
                    Op::Reserve(n) => {
                        shm.reserve(n.into());
                        prop_assert!(shm.capacity() >= shm.len() + usize::from(n));
                    }
                    Op::Shrink => shm.shrink_to_fit(),
                    Op::Clone => {
                        let copy = shm.clone();
                        prop_assert!(check(&copy).is_ok());
                        shm = copy;
                    }
                    Op::DrainSome(n) => {
                        let taken: Vec<_> = shm.drain().take(usize::from(n % 4)).collect();
                        for (k, v) in taken {
                            prop_assert_eq!(model.remove(k.as_str()), Some(v));
                        }
                        model.clear();
                    }
                }
                prop_assert_eq!(shm.len(), model.len());
                prop_assert!(shm.capacity() >= shm.len());
                if let Err(e) = check(&shm) {
                    prop_assert!(false, "own map fails its check: {}", e);
                }
            }
            prop_assert_eq!(shm.iter().count(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(shm.get(k.as_str()), Some(v));
            }
        }
        prop_assert_eq!(in_use(), before);
    }

    #[test]
    fn set_matches_std_model(ops in proptest::collection::vec((0u8..4, any::<u8>()), ops_len())) {
        let _guard = serial();
        let before = in_use();
        {
            let mut shm: ShmHashSet<u16> = ShmHashSet::new();
            let mut model: HashSet<u16> = HashSet::new();
            for (what, v) in ops {
                let v = u16::from(v) * 3;
                match what {
                    0 => prop_assert_eq!(shm.insert(v), model.insert(v)),
                    1 => prop_assert_eq!(shm.remove(&v), model.remove(&v)),
                    2 => prop_assert_eq!(shm.contains(&v), model.contains(&v)),
                    _ => {
                        shm.retain(|x| x % 7 != v % 7);
                        model.retain(|x| x % 7 != v % 7);
                    }
                }
                prop_assert_eq!(shm.len(), model.len());
            }
            let mut a: Vec<_> = shm.iter().copied().collect();
            let mut b: Vec<_> = model.into_iter().collect();
            a.sort_unstable();
            b.sort_unstable();
            prop_assert_eq!(a, b);
        }
        prop_assert_eq!(in_use(), before);
    }
}
