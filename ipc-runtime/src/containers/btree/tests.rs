//! B-tree tests: behaviour, the structural check after every change, leak-freedom, model-based
//! property tests against std's `BTreeMap` / `BTreeSet`, and forged trees.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::ManuallyDrop;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proptest::prelude::*;

use super::node::{CAP, NodePtr, edge};
use super::*;
use crate::containers::ShmString;
use crate::heap;
use crate::message::ShmSafe;
use crate::ptr::RelPtr;

use crate::containers::tests::serial;

/// Heap bytes held by this thread's allocations: tests elsewhere in the crate use the same
/// default heap from their own threads at the same time.
fn in_use() -> u64 {
    heap::default_heap().unwrap();
    heap::tlsf::thread_in_use()
}

/// Runs `f` and checks that the heap holds exactly as many bytes afterwards as before.
fn leak_checked(f: impl FnOnce()) {
    let _guard = serial();
    let before = in_use();
    f();
    assert_eq!(in_use(), before, "heap bytes in use changed: leak or double free");
}

/// Enough entries for a tree of height 2 or more (fewer under Miri, height 1).
fn many() -> u64 {
    if cfg!(miri) { 40 } else { 2000 }
}

#[test]
fn map_basics() {
    leak_checked(|| {
        let mut m: ShmBTreeMap<u64, u64> = ShmBTreeMap::new();
        assert_eq!(size_of::<ShmBTreeMap<u64, u64>>(), 32);
        let n = many();
        // Insert in a scrambled order.
        for i in 0..n {
            let k = (i * 7919) % n;
            assert_eq!(m.insert(k, k * 10), None);
        }
        m.check().unwrap();
        assert_eq!(m.len(), n as usize);
        assert!(m.height >= 1);
        for k in 0..n {
            assert_eq!(m.get(&k), Some(&(k * 10)));
        }
        assert_eq!(m.get(&n), None);
        assert_eq!(m.insert(3, 33), Some(30));
        assert_eq!(m[&3], 33);
        assert_eq!(m.iter().map(|(k, _)| *k).collect::<Vec<_>>(), (0..n).collect::<Vec<_>>());
        assert_eq!(
            m.iter().rev().map(|(k, _)| *k).collect::<Vec<_>>(),
            (0..n).rev().collect::<Vec<_>>()
        );
        assert_eq!(m.first_key_value(), Some((&0, &0)));
        assert_eq!(m.last_key_value(), Some((&(n - 1), &((n - 1) * 10))));
        assert_eq!(m.range(5..8).map(|(k, _)| *k).collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(m.range(5..=8).rev().map(|(k, _)| *k).collect::<Vec<_>>(), [8, 7, 6, 5]);
        assert_eq!(m.range((Bound::Excluded(5), Bound::Unbounded)).next(), Some((&6, &60)));
        assert_eq!(m.range(n..).next(), None);
        // Removing every other key, then the rest: the tree shrinks back to nothing.
        for k in (0..n).step_by(2) {
            assert!(m.remove(&k).is_some());
        }
        m.check().unwrap();
        assert_eq!(m.len(), (n / 2) as usize);
        assert_eq!(m.pop_first(), Some((1, 10)));
        assert_eq!(m.pop_last(), Some((n - 1, (n - 1) * 10)));
        m.retain(|k, _| k % 4 == 1);
        m.check().unwrap();
        assert!(m.keys().all(|k| k % 4 == 1));
        let c = m.clone();
        assert_eq!(c, m);
        m.clear();
        assert!(m.is_empty() && m.root_ptr().is_null());
        m.check().unwrap();
        drop(c);
    });
}

#[test]
fn entries_and_mutation() {
    leak_checked(|| {
        let mut m: ShmBTreeMap<u32, u32> = ShmBTreeMap::new();
        for i in 0..100u32 {
            *m.entry(i % 10).or_insert(0) += 1;
        }
        assert_eq!(m.len(), 10);
        assert!(m.values().all(|&v| v == 10));
        m.entry(3).and_modify(|v| *v = 0).or_insert(99);
        m.entry(30).and_modify(|v| *v = 0).or_insert(99);
        assert_eq!((m[&3], m[&30]), (0, 99));
        assert_eq!(*m.entry(31).or_default(), 0);
        assert_eq!(*m.entry(32).or_insert_with_key(|k| k + 1), 33);
        match m.entry(30) {
            Entry::Occupied(mut e) => {
                assert_eq!((*e.key(), *e.get()), (30, 99));
                assert_eq!(e.insert(98), 99);
                assert_eq!(e.remove_entry(), (30, 98));
            }
            Entry::Vacant(_) => panic!("30 is there"),
        }
        match m.entry(40) {
            Entry::Vacant(e) => assert_eq!(e.into_key(), 40),
            Entry::Occupied(_) => panic!("40 is not there"),
        }
        m.values_mut().for_each(|v| *v += 1);
        m.iter_mut().for_each(|(k, v)| *v += k);
        m.range_mut(..2).for_each(|(_, v)| *v = 1000);
        assert_eq!((m[&0], m[&1], m[&2]), (1000, 1000, 13));
        *m.get_mut(&2).unwrap() = 2;
        assert_eq!(m.get_key_value(&2), Some((&2, &2)));
        assert!(m.contains_key(&31) && !m.contains_key(&30));
        m.check().unwrap();
        let owned: Vec<(u32, u32)> = m.into_iter().collect();
        assert_eq!(owned.len(), 12);
        assert!(owned.windows(2).all(|w| w[0].0 < w[1].0));
    });
}

#[test]
fn nested_values_are_freed() {
    leak_checked(|| {
        let mut m: ShmBTreeMap<u64, ShmString> = ShmBTreeMap::new();
        for i in 0..many() {
            m.insert(i, ShmString::from(format!("value {i}").as_str()));
        }
        m.check().unwrap();
        assert_eq!(m[&7], "value 7");
        assert_eq!(m.remove(&7).unwrap(), "value 7");
        let mut outer: ShmBTreeMap<u32, ShmBTreeMap<u64, ShmString>> = ShmBTreeMap::new();
        outer.insert(1, m.clone());
        outer.insert(2, m);
        assert_eq!(outer[&2][&8], "value 8");
        outer.check().unwrap();
        let mut v = crate::ShmVec::new();
        v.push(outer);
        drop(v);
    });
}

#[test]
fn sets() {
    leak_checked(|| {
        let mut s: ShmBTreeSet<u64> = (0..many()).rev().collect();
        assert_eq!(s.len(), many() as usize);
        assert!(!s.insert(5));
        assert!(s.contains(&5) && s.remove(&5) && !s.contains(&5));
        assert_eq!(s.take(&6), Some(6));
        assert_eq!(s.get(&7), Some(&7));
        assert_eq!((s.first(), s.last()), (Some(&0), Some(&(many() - 1))));
        assert_eq!(s.pop_first(), Some(0));
        assert_eq!(s.pop_last(), Some(many() - 1));
        assert_eq!(s.range(3..10).copied().collect::<Vec<_>>(), [3, 4, 7, 8, 9]);
        s.retain(|x| x % 2 == 0);
        assert!(s.iter().all(|x| x % 2 == 0));
        let t = s.clone();
        assert_eq!(s, t);
        assert_eq!(format!("{:?}", ShmBTreeSet::from([2u8, 1])), "{1, 2}");
        assert_eq!(format!("{:?}", ShmBTreeMap::from([(2u8, 'b'), (1, 'a')])), "{1: 'a', 2: 'b'}");
        s.check_as_map();
        s.clear();
        assert!(s.is_empty());
        assert_eq!(t.into_iter().next(), Some(2));
    });
}

impl<T: ShmSafe> ShmBTreeSet<T> {
    fn check_as_map(&self) {
        self.as_map().check().unwrap();
    }
}

#[test]
fn zero_sized_keys_and_values() {
    leak_checked(|| {
        let mut m: ShmBTreeMap<(), ()> = ShmBTreeMap::new();
        assert_eq!(m.insert((), ()), None);
        assert_eq!(m.insert((), ()), Some(()));
        assert_eq!(m.len(), 1);
        assert_eq!(m.iter().count(), 1);
        m.check().unwrap();
    });
}

#[test]
#[should_panic(expected = "range start is greater than range end")]
fn backwards_range_panics() {
    let m: ShmBTreeMap<u32, u32> = ShmBTreeMap::new();
    let (start, end) = (5, 3);
    let _ = m.range(start..end);
}

// ---- forged trees ----------------------------------------------------------------------------

/// A copy of `m`'s header with some fields changed, never dropped.
fn forged<K: ShmSafe, V: ShmSafe>(
    m: &ShmBTreeMap<K, V>,
    change: impl FnOnce(&mut RelPtr, &mut u64, &mut u64),
) -> ManuallyDrop<ShmBTreeMap<K, V>> {
    // SAFETY: a bitwise copy of plain data; it is never dropped (ManuallyDrop).
    let mut copy = ManuallyDrop::new(unsafe { std::ptr::read(m) });
    let m: &mut ShmBTreeMap<K, V> = &mut copy;
    change(&mut m.root, &mut m.height, &mut m.len);
    copy
}

fn check_err<K: ShmSafe, V: ShmSafe>(m: &ShmBTreeMap<K, V>) -> String {
    m.check().unwrap_err().to_string()
}

fn panic_text(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

/// The root node of our own tree, for forging.
fn root_node<K: ShmSafe, V: ShmSafe>(m: &ShmBTreeMap<K, V>) -> NodePtr<K, V> {
    m.tree().unwrap().root()
}

#[test]
fn forged_headers_are_refused() {
    let _guard = serial();
    let m: ShmBTreeMap<u64, u64> = (0..many()).map(|i| (i, i)).collect();
    let err = check_err(&forged(&m, |_, _, len| *len += 1));
    assert!(err.contains("entries with a length of"), "{err}");
    let err = check_err(&forged(&m, |_, _, len| *len -= 1));
    assert!(err.contains("more entries than its length"), "{err}");
    let err = check_err(&forged(&m, |_, h, _| *h = 1000));
    assert!(err.contains("a height of 1000"), "{err}");
    let f = forged(&m, |_, h, _| *h = 1000);
    assert!(
        panic_text(|| {
            let _ = f.get(&1);
        })
        .contains("height above the maximum")
    );
    let err = check_err(&forged(&m, |root, _, _| *root = RelPtr::NULL));
    assert!(err.contains("no root node"), "{err}");
    let err = check_err(&forged(&m, |root, _, _| *root = RelPtr::new(root.segment(), 1 << 50)));
    assert!(err.contains("does not resolve"), "{err}");
    let f = forged(&m, |root, _, _| *root = RelPtr::new(root.segment(), 1 << 50));
    assert!(
        panic_text(|| {
            let _ = f.get(&1);
        })
        .contains("outside segment")
    );
    let err =
        check_err(&forged(&m, |root, _, _| *root = RelPtr::new(root.segment(), root.offset() + 1)));
    assert!(err.contains("does not resolve"), "{err}");
    // A wrong height: leaves read as internal nodes (their "edges" are whatever follows), or
    // internal nodes as leaves.
    assert!(forged(&m, |_, h, _| *h += 1).check().is_err());
    assert!(forged(&m, |_, h, _| *h -= 1).check().is_err());
    // Reading a tree whose height is one too small is bounded: at most `len` entries.
    let f = forged(&m, |_, h, _| *h -= 1);
    assert!(f.iter().count() <= m.len());
    assert!(f.range(10..20).count() <= m.len());
}

#[test]
fn forged_nodes_are_refused() {
    let _guard = serial();
    let m: ShmBTreeMap<u64, u64> = (0..many()).map(|i| (i, i)).collect();
    let root = root_node(&m);
    // SAFETY: our own tree's root (internal: the tree has height >= 1); each forgery is undone
    // before the next, and the tree is dropped intact.
    unsafe {
        let saved_len = (*root).len;
        let first = *edge(root, 0);
        // A key count beyond the node.
        (*root).len = (CAP + 5) as u64;
        let err = check_err(&m);
        assert!(err.contains(&format!("a node of {} keys", CAP + 5)), "{err}");
        assert!(
            panic_text(|| {
                let _ = m.get(&1);
            })
            .contains("keys (at most 11)")
        );
        assert!(
            panic_text(|| {
                let _ = m.iter().count();
            })
            .contains("keys (at most 11)")
        );
        (*root).len = saved_len;
        // A child pointer outside the heap.
        *edge(root, 0) = RelPtr::new(first.segment(), u64::MAX - 8);
        let err = check_err(&m);
        assert!(err.contains("does not resolve"), "{err}");
        assert!(
            panic_text(|| {
                let _ = m.get(&0);
            })
            .contains("outside segment")
        );
        // A child pointer into another segment that does not exist.
        *edge(root, 0) = RelPtr::new(0x1234_5678, 64);
        assert!(check_err(&m).contains("does not resolve"));
        // A cycle: the first child is the root itself.
        *edge(root, 0) = m.root_ptr();
        let err = check_err(&m);
        assert!(err.contains("reached twice") || err.contains("keys"), "{err}");
        // Reading it anyway stays bounded (by the length) and in bounds.
        assert!(m.iter().count() <= m.len());
        assert!(m.iter().rev().count() <= m.len());
        assert!(m.range(..100).count() <= m.len());
        let _ = m.get(&0);
        // A shared subtree: two edges to the same child.
        *edge(root, 0) = *edge(root, 1);
        let err = check_err(&m);
        assert!(err.contains("reached twice"), "{err}");
        assert!(m.iter().count() <= m.len());
        *edge(root, 0) = first;
        m.check().unwrap();
        // Keys out of order: wrong answers, but safe ones, and bounded.
        let leaf = m.tree().unwrap().child::<u64, u64>(root, 0, 1);
        let (a, b) = (super::node::key(leaf, 0), super::node::key(leaf, 1));
        std::ptr::swap(a, b);
        assert_eq!(m.iter().count(), m.len());
        let _ = m.get(&0);
        let _ = m.range(0..5).count();
        std::ptr::swap(a, b);
        m.check().unwrap();
    }
}

/// A tree header written by a peer (in a segment mapped read-only here) whose root points into
/// *our* heap: the trust rule refuses it, at the check and at every read.
#[test]
fn tree_in_a_peer_segment_resolves_only_into_it() {
    use crate::segment::{Access, Segment, SegmentKind, SegmentName, SharedMemoryOs, memory};
    let _guard = serial();
    let ours: ShmBTreeMap<u64, u64> = (0..10).map(|i| (i, i)).collect();
    let name = SegmentName::new(crate::domain::current(), SegmentKind::Raw, "btree-peer").unwrap();
    let writer =
        Segment::create_with(&memory::Memory, &name, SegmentKind::Raw, 1 << 16, |_| {}).unwrap();
    let reader =
        Segment::open_with(&memory::Memory, &name, SegmentKind::Raw, Access::ReadOnly).unwrap();
    memory::Memory.unlink(name.as_str()).unwrap();
    let peer = crate::ptr::table().insert(reader);
    let own = ours.root_ptr();
    // SAFETY: in bounds of the peer segment, 8-aligned; we play the peer writing a header.
    unsafe {
        writer.base().as_ptr().add(256).cast::<[u64; 4]>().write([
            own.segment(),
            own.offset(),
            0,
            10,
        ]);
    }
    let at = RelPtr::new(peer, 256).resolve(32, 8).unwrap().as_ptr();
    // SAFETY: the segment stays mapped; the header's bytes are plain data; only `&` is formed.
    let forged = unsafe { &*at.cast::<ShmBTreeMap<u64, u64>>() };
    let err = forged.check().unwrap_err().to_string();
    assert!(err.contains("may only point into the segment that holds them"), "{err}");
    let text = panic_text(|| {
        let _ = forged.get(&1);
    });
    assert!(text.contains("may only point into the segment that holds them"), "{text}");
    assert_eq!(ours.get(&1), Some(&1));
    // SAFETY: the reference into the peer segment is not used any more.
    assert!(unsafe { crate::ptr::table().retire(peer) }.unwrap());
    drop(writer);
}

// ---- model tests ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    Get(u16),
    PopFirst,
    PopLast,
    Range(u16, u16, bool, bool),
    EntryAdd(u16, u32),
    Retain(u16),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    // Keys from a small space, so that inserts hit existing keys and removes find them.
    let k = 0u16..300;
    prop_oneof![
        8 => (k.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => k.clone().prop_map(Op::Remove),
        2 => k.clone().prop_map(Op::Get),
        1 => Just(Op::PopFirst),
        1 => Just(Op::PopLast),
        2 => (k.clone(), k.clone(), any::<bool>(), any::<bool>()).prop_map(|(a, b, x, y)| Op::Range(a, b, x, y)),
        2 => (k.clone(), any::<u32>()).prop_map(|(k, v)| Op::EntryAdd(k, v)),
        1 => (1u16..5).prop_map(Op::Retain),
        1 => Just(Op::Clear).prop_filter("rare", |_| true),
    ]
}

fn cases() -> u32 {
    if cfg!(miri) { 2 } else { 256 }
}

fn ops_len() -> std::ops::Range<usize> {
    if cfg!(miri) { 0..25 } else { 0..400 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn map_matches_std_model(ops in proptest::collection::vec(op(), ops_len())) {
        let _guard = serial();
        let before = in_use();
        {
            let mut shm: ShmBTreeMap<u16, u32> = ShmBTreeMap::new();
            let mut model: BTreeMap<u16, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(shm.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(shm.remove(&k), model.remove(&k)),
                    Op::Get(k) => prop_assert_eq!(shm.get(&k), model.get(&k)),
                    Op::PopFirst => prop_assert_eq!(shm.pop_first(), model.pop_first()),
                    Op::PopLast => prop_assert_eq!(shm.pop_last(), model.pop_last()),
                    Op::Range(a, b, inc_a, inc_b) => {
                        let (lo, hi) = (a.min(b), a.max(b));
                        let lo = if inc_a { Bound::Included(lo) } else { Bound::Excluded(lo) };
                        let hi = if inc_b || a == b { Bound::Included(hi) } else { Bound::Excluded(hi) };
                        let got: Vec<_> = shm.range((lo, hi)).collect();
                        let want: Vec<_> = model.range((lo, hi)).collect();
                        prop_assert_eq!(&got, &want);
                        let got: Vec<_> = shm.range((lo, hi)).rev().collect();
                        let want: Vec<_> = model.range((lo, hi)).rev().collect();
                        prop_assert_eq!(got, want);
                        // Both ends at once meet in the middle.
                        let mut r = shm.range((lo, hi));
                        let mut m = model.range((lo, hi));
                        loop {
                            let (x, y) = (r.next(), m.next());
                            prop_assert_eq!(x, y);
                            let (x, y) = (r.next_back(), m.next_back());
                            prop_assert_eq!(x, y);
                            if x.is_none() { break; }
                        }
                    }
                    Op::EntryAdd(k, v) => {
                        let a = shm.entry(k).and_modify(|x| *x = x.wrapping_add(v)).or_insert(v);
                        let b = model.entry(k).and_modify(|x| *x = x.wrapping_add(v)).or_insert(v);
                        prop_assert_eq!(*a, *b);
                    }
                    Op::Retain(m) => {
                        shm.retain(|k, _| k % m != 0);
                        model.retain(|k, _| k % m != 0);
                    }
                    Op::Clear => { shm.clear(); model.clear(); }
                }
                prop_assert_eq!(shm.len(), model.len());
                if let Err(e) = shm.check() {
                    prop_assert!(false, "invariant broken: {}", e);
                }
            }
            prop_assert!(shm.iter().eq(model.iter()));
            prop_assert!(shm.iter().rev().eq(model.iter().rev()));
            prop_assert_eq!(shm.first_key_value(), model.first_key_value());
            prop_assert_eq!(shm.last_key_value(), model.last_key_value());
        }
        prop_assert_eq!(in_use(), before);
    }

    #[test]
    fn set_matches_std_model(ops in proptest::collection::vec((0u8..4, 0u16..200), ops_len())) {
        let _guard = serial();
        let mut shm: ShmBTreeSet<u16> = ShmBTreeSet::new();
        let mut model: BTreeSet<u16> = BTreeSet::new();
        for (what, x) in ops {
            match what {
                0 | 1 => prop_assert_eq!(shm.insert(x), model.insert(x)),
                2 => prop_assert_eq!(shm.remove(&x), model.remove(&x)),
                _ => prop_assert_eq!(shm.range(x..).next(), model.range(x..).next()),
            }
        }
        prop_assert!(shm.iter().eq(model.iter()));
        prop_assert_eq!(shm.first(), model.first());
        prop_assert_eq!(shm.last(), model.last());
    }
}
