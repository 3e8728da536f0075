//! Container reads of forged values: a `ShmVec<u64>`, a `ShmString` and a `ShmBox<u32>` whose
//! pointer (segment id, offset), length and capacity the fuzzer writes. Every checked access
//! (`try_as_slice`, `try_as_str`, `try_get`) and the receive-time validity check must either
//! fail with an error or give a view that lies inside the process's heap, and agree with each
//! other; nothing may crash or read out of bounds. The forged values are never dropped (freeing
//! a forged pointer is a programming error, which panics by design).
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
}

/// Overwrites the four words of a vector-like value (segment, offset, length, capacity).
fn forge<T>(value: &mut T, words: [u64; 4]) {
    assert_eq!(size_of::<T>(), 32);
    // SAFETY: `ShmVec` (and `ShmString`, a wrapper of one) is four `u64`s, `repr(C)`; any bits
    // are a valid value of each word.
    unsafe { (value as *mut T).cast::<[u64; 4]>().write_unaligned(words) };
}

fuzz_target!(|data: &[u8]| {
    // A real allocation of this process's heap, so that some forged pointers hit it.
    static REAL: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    let &(heap_id, real_offset) = REAL.get_or_init(|| {
        let v = ManuallyDrop::new(ShmVec::from_slice(&[7u64; 64]));
        (v.rel_ptr().segment(), v.rel_ptr().offset())
    });
    let mut input = Input(data);
    let selector = input.u64();
    let segment = match selector % 4 {
        0 => heap_id,
        1 => 0,
        2 => input.u64(),
        _ => heap_id ^ 1,
    };
    let offset = match (selector >> 8) % 3 {
        0 => real_offset.wrapping_add(input.u64() % 4096),
        1 => real_offset.wrapping_sub(input.u64() % 4096),
        _ => input.u64(),
    };
    let (len, cap) = (input.u64() >> (selector >> 16) % 64, input.u64());
    let words = [segment, offset, len, cap];

    let mut vec = ManuallyDrop::new(ShmVec::<u64>::new());
    forge(&mut *vec, words);
    let slice = vec.try_as_slice();
    // SAFETY: `vec` is initialised memory of its type.
    let checked = unsafe { <ShmVec<u64> as ShmSafe>::check_bits(&*vec) };
    if let Ok(slice) = &slice {
        assert_eq!(slice.len() as u64, len);
        let _sum: u64 = slice.iter().fold(0, |a, b| a.wrapping_add(*b));
    }
    assert_eq!(slice.is_ok(), checked.is_ok(), "deref and check disagree on {words:x?}");

    let mut text = ManuallyDrop::new(ShmString::new());
    forge(&mut *text, words);
    // A string held in this process's memory that points into this process's heap is trusted
    // to be UTF-8 (only this process's own code writes either; the forging here is the unsafe
    // code above), so its accessor skips the check the receive-time check makes.
    if segment != heap_id {
        let str = text.try_as_str();
        // SAFETY: as above.
        let checked = unsafe { <ShmString as ShmSafe>::check_bits(&*text) };
        if let Ok(s) = &str {
            assert_eq!(s.len() as u64, len);
            assert!(std::str::from_utf8(s.as_bytes()).is_ok());
        }
        assert_eq!(str.is_ok(), checked.is_ok(), "string deref and check disagree on {words:x?}");
    }

    let mut boxed = ManuallyDrop::new(ShmBox::new(5u32));
    // SAFETY: `ShmBox` is one relocatable pointer (segment, offset), `repr(C)`.
    unsafe {
        (&mut *boxed as *mut ShmBox<u32>).cast::<[u64; 2]>().write_unaligned([segment, offset])
    };
    let value = boxed.try_get().map(|v| *v);
    // SAFETY: as above.
    let checked = unsafe { <ShmBox<u32> as ShmSafe>::check_bits(&*boxed) };
    assert_eq!(value.is_ok(), checked.is_ok(), "box deref and check disagree on {words:x?}");
});
