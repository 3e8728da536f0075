//! `ShmVecDeque` tests: behaviour, leak-freedom, a model-based property test against std's
//! `VecDeque`, and forged deques.

use std::collections::VecDeque;
use std::mem::ManuallyDrop;

use proptest::prelude::*;

use super::*;
use crate::containers::ShmString;

use crate::containers::tests::serial;

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

#[test]
fn deque_basics() {
    leak_checked(|| {
        let mut q: ShmVecDeque<u64> = ShmVecDeque::new();
        assert_eq!(size_of::<ShmVecDeque<u64>>(), 40);
        for i in 0..10 {
            q.push_back(i);
            q.push_front(100 + i);
        }
        assert_eq!(q.len(), 20);
        assert_eq!(q.front(), Some(&109));
        assert_eq!(q.back(), Some(&9));
        let (a, b) = q.as_slices();
        assert_eq!(a.len() + b.len(), 20);
        let all: Vec<u64> = q.iter().copied().collect();
        let want: Vec<u64> = (100..110).rev().chain(0..10).collect();
        assert_eq!(all, want);
        assert!(q.iter().rev().copied().eq(want.iter().rev().copied()));
        assert_eq!(q[10], 0);
        q[10] = 50;
        *q.front_mut().unwrap() = 1;
        *q.back_mut().unwrap() = 2;
        assert_eq!((q[0], q[10], q[19]), (1, 50, 2));
        assert_eq!(q.pop_front(), Some(1));
        assert_eq!(q.pop_back(), Some(2));
        q.iter_mut().for_each(|x| *x += 1);
        assert_eq!(q[0], 109);
        let c = q.clone();
        assert_eq!(c, q);
        assert_eq!(q.make_contiguous().len(), 18);
        assert_eq!(q, c);
        q.truncate(3);
        assert_eq!(q, [109, 108, 107]);
        assert_eq!(format!("{q:?}"), "[109, 108, 107]");
        q.clear();
        assert!(q.is_empty() && q.capacity() >= 18);
        assert_eq!(q.pop_front(), None);
        let owned: Vec<u64> = c.into_iter().rev().take(2).collect();
        assert_eq!(owned, [9, 8]);
    });
}

#[test]
fn deque_of_strings_frees_them() {
    leak_checked(|| {
        let mut q: ShmVecDeque<ShmString> = ShmVecDeque::with_capacity(4);
        for i in 0..50 {
            if i % 2 == 0 {
                q.push_back(ShmString::from(format!("s{i}").as_str()));
            } else {
                q.push_front(ShmString::from(format!("s{i}").as_str()));
            }
            if i % 7 == 0 {
                drop(q.pop_front());
            }
        }
        q.truncate(20);
        // SAFETY: `q` is a valid deque.
        unsafe { <ShmVecDeque<ShmString> as ShmSafe>::check_bits(&q) }.unwrap();
        let mut nested: ShmVecDeque<ShmVecDeque<ShmString>> = ShmVecDeque::new();
        nested.push_back(q.clone());
        nested.push_front(q);
        drop(nested);
    });
}

#[test]
fn deque_zero_sized() {
    let mut q: ShmVecDeque<()> = ShmVecDeque::new();
    for _ in 0..10 {
        q.push_front(());
        q.push_back(());
    }
    assert_eq!(q.len(), 20);
    assert_eq!(q.iter().count(), 20);
    assert_eq!(q.pop_front(), Some(()));
    assert!(q.rel_ptr().is_null());
}

#[test]
fn deque_try_reserve_reports_overflow() {
    let mut q: ShmVecDeque<u64> = ShmVecDeque::new();
    assert!(q.try_reserve(usize::MAX).is_err());
    assert!(q.try_reserve(8).is_ok() && q.capacity() >= 8);
}

fn forge(
    q: &ShmVecDeque<u64>,
    change: impl FnOnce(&mut [u64; 5]),
) -> ManuallyDrop<ShmVecDeque<u64>> {
    // SAFETY: `ShmVecDeque` is `repr(C)`: five `u64`s (segment, offset, front, length,
    // capacity); the copy is never dropped.
    unsafe {
        let mut words = *(q as *const ShmVecDeque<u64>).cast::<[u64; 5]>();
        change(&mut words);
        ManuallyDrop::new(core::mem::transmute::<[u64; 5], ShmVecDeque<u64>>(words))
    }
}

#[test]
fn forged_deques_are_refused() {
    let _guard = serial();
    let q: ShmVecDeque<u64> = (0..10).collect();
    let cap = q.capacity() as u64;
    for (words, what) in [
        (forge(&q, |w| w[3] = cap + 1), "length above the capacity"),
        (forge(&q, |w| w[2] = cap), "front index outside the buffer"),
        (forge(&q, |w| w[4] = u64::MAX / 2), "capacity"),
        (forge(&q, |w| w[1] = 1 << 50), "outside segment"),
        (forge(&q, |w| w[0] = 0), "null pointer with a capacity"),
    ] {
        let err = words.try_as_slices().unwrap_err().to_string();
        assert!(err.contains(what) || what == "capacity", "{err} ({what})");
        // SAFETY: initialised memory of the type.
        assert!(unsafe { <ShmVecDeque<u64> as ShmSafe>::check_bits(&*words) }.is_err());
        let text = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| words.get(0).copied()))
            .expect_err("a forged deque panics on read");
        assert!(
            text.downcast_ref::<String>()
                .is_some_and(|t| t.contains("ShmVecDeque") || t.contains("outside"))
        );
    }
    // A wrapped ring with a front near the end is fine and checks each element in order.
    let ok = forge(&q, |w| w[2] = cap - 1);
    assert_eq!(ok.iter().count(), 10);
    // SAFETY: as above.
    assert!(unsafe { <ShmVecDeque<u64> as ShmSafe>::check_bits(&*ok) }.is_ok());
}

#[derive(Debug, Clone)]
enum Op {
    PushBack(u32),
    PushFront(u32),
    PopBack,
    PopFront,
    Get(usize),
    Set(usize, u32),
    Truncate(usize),
    Reserve(usize),
    MakeContiguous,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u32>().prop_map(Op::PushBack),
        6 => any::<u32>().prop_map(Op::PushFront),
        3 => Just(Op::PopBack),
        3 => Just(Op::PopFront),
        2 => any::<usize>().prop_map(Op::Get),
        2 => (any::<usize>(), any::<u32>()).prop_map(|(i, v)| Op::Set(i, v)),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => (0usize..40).prop_map(Op::Reserve),
        1 => Just(Op::MakeContiguous),
        1 => Just(Op::Clear),
    ]
}

fn cases() -> u32 {
    if cfg!(miri) { 3 } else { 256 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn deque_matches_std_model(ops in proptest::collection::vec(op(), 0..if cfg!(miri) { 30 } else { 300 })) {
        let _guard = serial();
        let before = in_use();
        {
            let mut shm: ShmVecDeque<u32> = ShmVecDeque::new();
            let mut model: VecDeque<u32> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushBack(v) => { shm.push_back(v); model.push_back(v); }
                    Op::PushFront(v) => { shm.push_front(v); model.push_front(v); }
                    Op::PopBack => prop_assert_eq!(shm.pop_back(), model.pop_back()),
                    Op::PopFront => prop_assert_eq!(shm.pop_front(), model.pop_front()),
                    Op::Get(i) => {
                        let i = i % (model.len() + 1);
                        prop_assert_eq!(shm.get(i), model.get(i));
                    }
                    Op::Set(i, v) => {
                        if !model.is_empty() {
                            let i = i % model.len();
                            shm[i] = v;
                            model[i] = v;
                        }
                    }
                    Op::Truncate(n) => {
                        let n = n % (model.len() + 2);
                        shm.truncate(n);
                        model.truncate(n);
                    }
                    Op::Reserve(n) => { shm.reserve(n); prop_assert!(shm.capacity() >= shm.len() + n); }
                    Op::MakeContiguous => {
                        prop_assert_eq!(&*shm.make_contiguous(), &*model.make_contiguous());
                    }
                    Op::Clear => { shm.clear(); model.clear(); }
                }
                prop_assert_eq!(shm.len(), model.len());
                prop_assert_eq!(shm.front(), model.front());
                prop_assert_eq!(shm.back(), model.back());
            }
            prop_assert!(shm.iter().eq(model.iter()));
            prop_assert!(shm.iter().rev().eq(model.iter().rev()));
            let (a, b) = shm.as_slices();
            prop_assert!(a.iter().chain(b).eq(model.iter()));
        }
        prop_assert_eq!(in_use(), before);
    }
}
