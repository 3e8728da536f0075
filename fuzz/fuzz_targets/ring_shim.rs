// Shared by the ring targets: `src/pubsub/ring.rs` is included as is (it names nothing of the
// crate but `super::atomic`), with std atomics and the asymmetric barriers as plain fences, as
// `tests/loom_ring.rs` does.

pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

    pub(crate) fn light(_flag: &AtomicU32) {
        fence(Ordering::SeqCst)
    }

    pub(crate) fn heavy() -> bool {
        fence(Ordering::SeqCst);
        true
    }
}

/// Reads fuzz input as a little program: fixed-size fields, zero once exhausted.
pub(crate) struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    pub(crate) fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        for b in &mut bytes {
            *b = self.u8();
        }
        u64::from_le_bytes(bytes)
    }

    /// A value near `base` (most fuzz-chosen positions that matter are close to the real ones).
    pub(crate) fn near(&mut self, base: u64) -> u64 {
        match self.u8() % 4 {
            0 => self.u64(),
            1 => base.wrapping_add(u64::from(self.u8())),
            2 => base.wrapping_sub(u64::from(self.u8())),
            _ => base,
        }
    }
}
