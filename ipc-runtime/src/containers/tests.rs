//! Container tests: behaviour, nesting, leak-freedom, and model-based property tests against
//! `Vec` / `String`.

use std::sync::{Mutex, MutexGuard, PoisonError};

use proptest::prelude::*;

use super::*;
use crate::heap;

/// Tests that compare heap usage before and after run one at a time (they share the heap; the
/// hash map, B-tree and deque tests take this lock too).
pub(super) fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    heap::default_heap().unwrap().check_integrity().unwrap();
}

#[test]
fn vec_basics() {
    leak_checked(|| {
        let mut v: ShmVec<u64> = ShmVec::new();
        assert_eq!(v.capacity(), 0);
        for i in 0..1000 {
            v.push(i);
        }
        assert_eq!(v.len(), 1000);
        assert_eq!(v[999], 999);
        assert_eq!(v.iter().sum::<u64>(), 999 * 1000 / 2);
        v.insert(0, 42);
        assert_eq!(v.remove(0), 42);
        v.truncate(10);
        assert_eq!(v, (0..10).collect::<Vec<_>>());
        v.retain(|x| x % 2 == 1);
        assert_eq!(v, [1, 3, 5, 7, 9]);
        v.resize(7, 0);
        assert_eq!(v, [1, 3, 5, 7, 9, 0, 0]);
        assert_eq!(v.swap_remove(0), 1);
        assert_eq!(v.first(), Some(&0));
        v.sort_unstable();
        assert_eq!(v, [0, 0, 3, 5, 7, 9]);
        let w = v.clone();
        assert_eq!(v, w);
        assert_eq!(format!("{w:?}"), "[0, 0, 3, 5, 7, 9]");
        let owned: Vec<u64> = w.into_iter().collect();
        assert_eq!(owned, [0, 0, 3, 5, 7, 9]);
    });
}

#[test]
fn vec_zero_sized_elements() {
    leak_checked(|| {
        let mut v: ShmVec<()> = ShmVec::new();
        for _ in 0..100 {
            v.push(());
        }
        assert_eq!(v.len(), 100);
        assert!(v.rel_ptr().is_null());
        assert_eq!(v.pop(), Some(()));
    });
}

#[test]
fn vec_high_alignment_elements() {
    #[repr(C, align(4096))]
    #[derive(Clone, Copy, PartialEq, Debug)]
    struct Page([u8; 4096]);
    // SAFETY: plain bytes.
    unsafe impl crate::ShmSafe for Page {}

    leak_checked(|| {
        let mut v = ShmVec::new();
        for i in 0..3u8 {
            v.push(Page([i; 4096]));
        }
        assert_eq!(v.as_ptr() as usize % 4096, 0);
        assert_eq!(v[2].0[100], 2);
    });
}

#[test]
fn nested_containers_free_everything() {
    leak_checked(|| {
        let mut names: ShmVec<ShmString> = ShmVec::new();
        for i in 0..200 {
            names.push(ShmString::from(format!("name-{i}").as_str()));
        }
        let boxed: ShmBox<ShmVec<u64>> = ShmBox::new((0..5000).collect());
        let mut deep: ShmVec<ShmVec<ShmString>> = ShmVec::new();
        deep.push(names.clone());
        deep.push(ShmVec::from_slice(&names[..10]));
        assert_eq!(deep[0][199], "name-199");
        assert_eq!(deep[1].len(), 10);
        assert_eq!(boxed.iter().copied().sum::<u64>(), 4999 * 5000 / 2);
        assert_eq!(names, deep[0]);
        drop(deep);
        let inner = ShmBox::into_inner(boxed);
        assert_eq!(inner.len(), 5000);
    });
}

#[test]
fn string_basics() {
    leak_checked(|| {
        let mut s = ShmString::new();
        s.push_str("grüß");
        s.push(' ');
        s.push('🦀');
        assert_eq!(s, "grüß 🦀");
        assert_eq!(s.len(), "grüß 🦀".len());
        assert_eq!(s.pop(), Some('🦀'));
        s.truncate(4);
        assert_eq!(s.as_str(), "grü");
        assert_eq!(s.to_uppercase(), "GRÜ");
        assert_eq!(format!("{s}|{s:?}"), "grü|\"grü\"");
        let collected: ShmString = ["a", "b"].into_iter().collect();
        assert_eq!(collected, "ab");
        use std::fmt::Write;
        write!(s, "-{}", 7).unwrap();
        assert_eq!(s, "grü-7");
        let mut set = std::collections::HashSet::new();
        set.insert(s.clone());
        assert!(set.contains("grü-7"));
    });
}

#[test]
#[should_panic(expected = "truncate(1) is not a char boundary")]
fn string_truncate_inside_char_panics() {
    let _guard = serial();
    let mut s = ShmString::from("é");
    s.truncate(1);
}

#[test]
fn box_basics() {
    leak_checked(|| {
        let mut b = ShmBox::new([1u32; 64]);
        b[3] = 7;
        assert_eq!(b[3], 7);
        let c = b.clone();
        assert_eq!(b, c);
        let unit = ShmBox::new(());
        assert_eq!(*unit, ());
        assert!(unit.rel_ptr().is_null());
    });
}

#[test]
#[should_panic(expected = "is outside segment")]
fn corrupted_length_is_a_clear_panic() {
    let _guard = serial();
    let mut v: ShmVec<u64> = ShmVec::with_capacity(4);
    v.push(1);
    // Simulate another process scribbling a huge capacity and length into the vector.
    // SAFETY: ShmVec is repr(C) { ptr: RelPtr (16 bytes), len: u64, cap: u64 }.
    unsafe {
        let words = (&mut v as *mut ShmVec<u64>).cast::<u64>();
        words.add(2).write(1 << 40);
        words.add(3).write(1 << 40);
    }
    let total: u64 = v.iter().sum();
    std::mem::forget(v);
    unreachable!("read {total} from a corrupted vector");
}

#[test]
fn out_of_bounds_offset_is_an_error() {
    let _guard = serial();
    let v = ShmVec::from_slice(&[1u8]);
    let p = v.rel_ptr();
    let past_end = crate::ptr::RelPtr::new(p.segment(), u64::MAX - 3);
    let err = past_end.resolve(8, 1).unwrap_err();
    assert!(matches!(err, crate::Error::OutOfBounds { .. }), "{err}");
    let unknown = crate::ptr::RelPtr::new(0x1234_5678, 64).resolve(8, 1).unwrap_err();
    assert!(matches!(unknown, crate::Error::SegmentNotFound { .. }), "{unknown}");
}

#[test]
fn try_methods_report_out_of_memory() {
    let _guard = serial();
    let capacity = heap::default_heap().unwrap().stats().capacity() as usize;
    let err = ShmVec::<u8>::try_with_capacity(capacity * 2).unwrap_err();
    assert!(matches!(err, crate::Error::OutOfMemory { .. }), "{err}");
    assert!(err.to_string().contains("out of memory"), "{err}");
    // It says what to set, to a value that would fit: twice what was needed, rounded up.
    let crate::Error::OutOfMemory { in_use, requested, .. } = err else { unreachable!() };
    let fits = (2 * (in_use + requested)).div_ceil(1 << 20).next_power_of_two();
    let size = if fits >= 1024 { format!("{}G", fits / 1024) } else { format!("{fits}M") };
    assert!(err.to_string().contains(&format!("set IPC_HEAP_SIZE={size}")), "{err}");
    let mut v = ShmVec::<u64>::new();
    assert!(matches!(v.try_reserve(usize::MAX / 2), Err(crate::Error::CapacityOverflow { .. })));
    let (value, err) = ShmBox::try_new([0u8; 1 << 16])
        .map(drop)
        .err()
        .map_or((0, None), |e| (e.0.len(), Some(e.1)));
    assert!(err.is_none() || value == 1 << 16);
}

#[test]
#[should_panic(expected = "is out of memory allocating")]
fn infallible_allocation_panics_naming_the_heap() {
    let _guard = serial();
    let capacity = heap::default_heap().unwrap().stats().capacity() as usize;
    let _v = ShmVec::<u8>::with_capacity(capacity * 2);
}

#[derive(Debug, Clone)]
enum VecOp {
    Push(u64),
    Pop,
    Insert(usize, u64),
    Remove(usize),
    Truncate(usize),
    Extend(Vec<u64>),
    Clone,
    Clear,
    Reserve(usize),
    SwapRemove(usize),
}

fn vec_op() -> impl Strategy<Value = VecOp> {
    prop_oneof![
        4 => any::<u64>().prop_map(VecOp::Push),
        2 => Just(VecOp::Pop),
        2 => (any::<usize>(), any::<u64>()).prop_map(|(i, v)| VecOp::Insert(i, v)),
        2 => any::<usize>().prop_map(VecOp::Remove),
        1 => any::<usize>().prop_map(VecOp::Truncate),
        2 => proptest::collection::vec(any::<u64>(), 0..40).prop_map(VecOp::Extend),
        1 => Just(VecOp::Clone),
        1 => Just(VecOp::Clear),
        1 => (0usize..200).prop_map(VecOp::Reserve),
        1 => any::<usize>().prop_map(VecOp::SwapRemove),
    ]
}

#[derive(Debug, Clone)]
enum StrOp {
    PushStr(String),
    Push(char),
    Pop,
    Truncate(usize),
    Clone,
    Clear,
}

fn str_op() -> impl Strategy<Value = StrOp> {
    prop_oneof![
        3 => ".{0,12}".prop_map(StrOp::PushStr),
        3 => any::<char>().prop_map(StrOp::Push),
        2 => Just(StrOp::Pop),
        1 => any::<usize>().prop_map(StrOp::Truncate),
        1 => Just(StrOp::Clone),
        1 => Just(StrOp::Clear),
    ]
}

fn cases() -> u32 {
    if cfg!(miri) { 4 } else { 256 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn vec_matches_std_model(ops in proptest::collection::vec(vec_op(), 0..60)) {
        let _guard = serial();
        let before = in_use();
        {
            let mut shm: ShmVec<u64> = ShmVec::new();
            let mut model: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    VecOp::Push(v) => { shm.push(v); model.push(v); }
                    VecOp::Pop => prop_assert_eq!(shm.pop(), model.pop()),
                    VecOp::Insert(i, v) => {
                        let i = i % (model.len() + 1);
                        shm.insert(i, v);
                        model.insert(i, v);
                    }
                    VecOp::Remove(i) if !model.is_empty() => {
                        let i = i % model.len();
                        prop_assert_eq!(shm.remove(i), model.remove(i));
                    }
                    VecOp::SwapRemove(i) if !model.is_empty() => {
                        let i = i % model.len();
                        prop_assert_eq!(shm.swap_remove(i), model.swap_remove(i));
                    }
                    VecOp::Remove(_) | VecOp::SwapRemove(_) => {}
                    VecOp::Truncate(n) => {
                        let n = n % (model.len() + 2);
                        shm.truncate(n);
                        model.truncate(n);
                    }
                    VecOp::Extend(items) => {
                        shm.extend_from_slice(&items);
                        model.extend_from_slice(&items);
                    }
                    VecOp::Clone => {
                        let copy = shm.clone();
                        prop_assert_eq!(&copy[..], &model[..]);
                        shm = copy;
                    }
                    VecOp::Clear => { shm.clear(); model.clear(); }
                    VecOp::Reserve(n) => {
                        shm.reserve(n);
                        prop_assert!(shm.capacity() >= shm.len() + n);
                    }
                }
                prop_assert_eq!(&shm[..], &model[..]);
                prop_assert!(shm.capacity() >= shm.len());
            }
        }
        prop_assert_eq!(in_use(), before);
    }

    #[test]
    fn string_matches_std_model(ops in proptest::collection::vec(str_op(), 0..60)) {
        let _guard = serial();
        let before = in_use();
        {
            let mut shm = ShmString::new();
            let mut model = String::new();
            for op in ops {
                match op {
                    StrOp::PushStr(s) => { shm.push_str(&s); model.push_str(&s); }
                    StrOp::Push(c) => { shm.push(c); model.push(c); }
                    StrOp::Pop => prop_assert_eq!(shm.pop(), model.pop()),
                    StrOp::Truncate(n) => {
                        let mut n = n % (model.len() + 1);
                        while !model.is_char_boundary(n) { n -= 1; }
                        shm.truncate(n);
                        model.truncate(n);
                    }
                    StrOp::Clone => { let copy = shm.clone(); shm = copy; }
                    StrOp::Clear => { shm.clear(); model.clear(); }
                }
                prop_assert_eq!(shm.as_str(), model.as_str());
            }
        }
        prop_assert_eq!(in_use(), before);
    }
}

#[test]
fn vec_holds_no_address_of_this_process() {
    let _guard = serial();
    assert_eq!(core::mem::size_of::<ShmVec<u64>>(), 32);
    let mut v: ShmVec<u64> = ShmVec::new();
    for i in 0..100 {
        v.push(i);
    }
    let address = v.as_ptr() as u64;
    let p = v.rel_ptr();
    // SAFETY: `ShmVec` is `repr(C)`: four `u64`s (segment, offset, length, capacity).
    let words = unsafe { *(&v as *const ShmVec<u64>).cast::<[u64; 4]>() };
    assert_eq!(words, [p.segment(), p.offset(), 100, v.capacity() as u64]);
    assert!(!words.contains(&address), "the buffer's address is in shared memory");
}

/// Containers as another process wrote them, in a segment mapped read-only here (the
/// in-memory backend, so this runs under Miri too); the cross-process version is in
/// `tests/trust_heap.rs`.
#[test]
fn containers_in_a_peer_segment_resolve_only_into_it() {
    use crate::segment::{Access, Segment, SegmentKind, SegmentName, SharedMemoryOs, memory};
    let _guard = serial();
    let ours = ShmVec::from_slice(b"ours, not the peer's");
    let name =
        SegmentName::new(crate::domain::current(), SegmentKind::Raw, "containers-peer").unwrap();
    let writer =
        Segment::create_with(&memory::Memory, &name, SegmentKind::Raw, 1 << 16, |_| {}).unwrap();
    let reader =
        Segment::open_with(&memory::Memory, &name, SegmentKind::Raw, Access::ReadOnly).unwrap();
    memory::Memory.unlink(name.as_str()).unwrap();
    let peer = crate::ptr::table().insert(reader);
    // What the peer writes: at 256 a vector pointing into *our* heap, at 320 a string
    // pointing to its own bytes at 1024 that are not UTF-8, at 384 a vector with a capacity
    // too large for any platform.
    let own = ours.rel_ptr();
    let at = |offset: usize| writer.base().as_ptr().wrapping_add(offset).cast::<u64>();
    // SAFETY: in bounds of the 64 KiB peer segment, 8-aligned; we play the peer writing it.
    unsafe {
        for (offset, words) in [
            (256, [own.segment(), own.offset(), ours.len() as u64, ours.len() as u64]),
            (320, [peer, 1024, 4, 4]),
            (384, [peer, 1024, 4, u64::MAX / 2]),
        ] {
            at(offset).cast::<[u64; 4]>().write(words);
        }
        at(1024).cast::<[u8; 4]>().write([b'o', b'k', 0xff, 0xfe]);
    }
    let read_only = crate::ptr::RelPtr::new(peer, 256).resolve(192, 8).unwrap().as_ptr();
    // SAFETY: the peer segment stays mapped (entered into the table) and holds valid bit
    // patterns for these plain-data types at these 8-aligned offsets; only `&` is formed.
    let (forged, bad_utf8, huge) = unsafe {
        (
            &*read_only.cast::<ShmVec<u8>>(),
            &*read_only.add(64).cast::<ShmString>(),
            &*read_only.add(128).cast::<ShmVec<u64>>(),
        )
    };
    let err = forged.try_as_slice().unwrap_err();
    assert!(err.to_string().contains("may only point into the segment that holds them"), "{err}");
    let err = bad_utf8.try_as_str().unwrap_err();
    assert!(err.to_string().contains("invalid UTF-8"), "{err}");
    assert_eq!(bad_utf8.as_bytes(), &[b'o', b'k', 0xff, 0xfe]);
    let err = huge.try_as_slice().unwrap_err();
    assert!(err.to_string().contains("capacity too large for this platform"), "{err}");
    assert_eq!(huge.capacity(), usize::try_from(u64::MAX / 2).unwrap_or(usize::MAX));
    // Our own vector, read from our memory, is untouched by all this.
    assert_eq!(&ours[..], b"ours, not the peer's");
    // SAFETY: the references into the peer segment are not used any more.
    assert!(unsafe { crate::ptr::table().retire(peer) }.unwrap());
    drop(writer);
}

/// A forged vector with no buffer but a length and capacity (found by `fuzz/`'s
/// `forged_containers`): reading it is an error, not a slice over a dangling pointer; and the
/// receive-time check agrees with the reader.
#[test]
fn forged_vector_without_buffer_is_refused() {
    use crate::message::ShmSafe;
    let _guard = serial();
    let mut v = core::mem::ManuallyDrop::new(ShmVec::<u64>::new());
    // SAFETY: `ShmVec` is `repr(C)`: four `u64`s (segment, offset, length, capacity); the
    // vector is never dropped or written through.
    unsafe { (&mut *v as *mut ShmVec<u64>).cast::<[u64; 4]>().write([0, 0, 5, 5]) };
    let err = v.try_as_slice().unwrap_err().to_string();
    assert!(err.contains("null pointer with a capacity"), "{err}");
    // SAFETY: `v` is initialised memory of its type.
    let checked = unsafe { <ShmVec<u64> as ShmSafe>::check_bits(&*v) }.unwrap_err();
    assert!(checked.to_string().contains("a null pointer with a capacity of 5"), "{checked}");
    // A length above the capacity, likewise.
    // SAFETY: as above.
    unsafe { (&mut *v as *mut ShmVec<u64>).cast::<[u64; 4]>().write([0, 0, 6, 0]) };
    assert!(v.try_as_slice().is_err());
    // SAFETY: as above.
    assert!(unsafe { <ShmVec<u64> as ShmSafe>::check_bits(&*v) }.is_err());
}
