//! The fixed hash function of [`ShmHashMap`](super::ShmHashMap) and
//! [`ShmHashSet`](super::ShmHashSet).
//!
//! The function, and why it was chosen over std's `RandomState` and SipHash with fixed keys,
//! is documented on [`ShmBuildHasher`], which users see.

use core::hash::{BuildHasher, Hasher};

/// Multiplier for absorbing a word.
const M: u64 = 0x5851_f42d_4c95_7f2d;
/// Multiplier of the final fold.
const F: u64 = 0x2d35_8dcc_aa6c_78a5;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let full = (a as u128).wrapping_mul(b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

/// The hasher of the shared hash containers: the same function in every process, build and
/// platform (see [`ShmBuildHasher`] for the function and why it was chosen).
///
/// ```
/// use core::hash::{BuildHasher, Hash, Hasher};
/// use ipc_runtime::containers::ShmBuildHasher;
///
/// let build = ShmBuildHasher::with_seed(7);
/// // A `ShmString` key hashes exactly as the `&str` it holds, so `map.get("key")` finds it.
/// let a = build.hash_one("key");
/// let b = build.hash_one(ipc_runtime::ShmString::from("key"));
/// assert_eq!(a, b);
/// // Fixed: the same value in every process and build.
/// assert_eq!(ShmBuildHasher::with_seed(0).hash_one(1u64), ShmBuildHasher::with_seed(0).hash_one(1u64));
/// ```
#[derive(Debug, Clone)]
pub struct ShmHasher {
    state: u64,
}

impl ShmHasher {
    /// A hasher whose state starts at `seed`.
    #[inline]
    pub const fn with_seed(seed: u64) -> Self {
        ShmHasher { state: seed }
    }

    #[inline(always)]
    fn word(&mut self, x: u64) {
        self.state = fold(self.state ^ x, M);
    }
}

impl Hasher for ShmHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(word));
        }
        self.word(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.word(i as u64);
        self.word((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold(self.state, F)
    }
}

/// Builds [`ShmHasher`]s with one seed: the hash function of a map with that seed, usable with
/// std's `HashMap` too (`HashMap::with_hasher(ShmBuildHasher::with_seed(s))` hashes exactly as
/// a `ShmHashMap` with seed `s`).
///
/// A reader in another process must find the keys the writer put in, so the hash of a key
/// depends on nothing but the key's bytes (as its `Hash` impl feeds them) and the seed in the
/// map's header: not on the process, the build, the platform's word size or its byte order.
///
/// # The function
///
/// A *folded multiply* hasher, the construction of foldhash and wyhash: with
/// `fold(a, b) = lo64(a * b) ^ hi64(a * b)` (a full 64×64→128-bit product),
///
/// * the state starts as the map's 64-bit seed;
/// * every integer write (`u8` … `u64`, `usize`, and `i*` as their bit patterns) is widened to
///   a `u64` and absorbed as `state = fold(state ^ x, M)`; a `u128` is absorbed as its low then
///   its high half; `usize` is always absorbed as a `u64`, so 32- and 64-bit processes agree;
/// * a byte string (`write(&[u8])`, which `str` and slices of bytes use) is absorbed 8 bytes at a
///   time, little-endian, the last 0–7 bytes zero-padded into one more word, then its length
///   as one more word;
/// * `finish()` is `fold(state, F)`.
///
/// `M = 0x5851_f42d_4c95_7f2d` and `F = 0x2d35_8dcc_aa6c_78a5` (odd 64-bit constants of PCG and
/// wyhash). One multiply per word: for `u64` keys a hash costs two multiplies.
///
/// Why this and not SipHash-1-3 with fixed keys: a map in shared memory is rebuilt from keys a
/// process chose itself (or received from a peer that maps its data read-only anyway), and its
/// seed is random per map (see [`ShmHashMap::new`](crate::ShmHashMap::new)), so the attack
/// SipHash defends against — an outsider who picks keys that collide — needs the seed, which
/// only processes mapping the map can read. Against that, the table's lookups are on the
/// subscriber's hot path, and a folded multiply is several times cheaper than SipHash on short
/// keys. The function is not cryptographic; a reader's lookup in a map built with a hostile
/// seed is still bounded (every probe sequence ends after the table's number of groups).
///
/// Keys hash alike in every process only if their `Hash` impls feed the same writes: true for
/// the same type built from the same source (integers, `str`, [`ShmString`](crate::ShmString),
/// which hashes as its `str`, tuples and derived impls of those).
///
/// ```
/// use std::collections::HashMap;
/// use ipc_runtime::containers::ShmBuildHasher;
///
/// let mut m = HashMap::with_hasher(ShmBuildHasher::with_seed(1));
/// m.insert(1u64, "one");
/// assert_eq!(m[&1], "one");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShmBuildHasher {
    seed: u64,
}

impl ShmBuildHasher {
    /// A builder of hashers seeded with `seed`.
    pub const fn with_seed(seed: u64) -> Self {
        ShmBuildHasher { seed }
    }

    /// The seed.
    pub const fn seed(&self) -> u64 {
        self.seed
    }
}

impl BuildHasher for ShmBuildHasher {
    type Hasher = ShmHasher;
    #[inline]
    fn build_hasher(&self) -> ShmHasher {
        ShmHasher::with_seed(self.seed)
    }
}

/// The hash of `key` under `seed`.
#[inline]
pub(super) fn hash_one<Q: core::hash::Hash + ?Sized>(seed: u64, key: &Q) -> u64 {
    let mut h = ShmHasher::with_seed(seed);
    key.hash(&mut h);
    h.finish()
}

/// A fresh seed for a new map: distinct per map and unpredictable from outside the process
/// (a per-thread random start, from std's `RandomState`, stepped and mixed per call).
pub(super) fn fresh_seed() -> u64 {
    use core::cell::Cell;
    thread_local! {
        static NEXT: Cell<u64> = Cell::new(
            std::collections::hash_map::RandomState::new().build_hasher().finish()
        );
    }
    let n = NEXT.with(|next| {
        let n = next.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        next.set(n);
        n
    });
    // splitmix64's output function.
    let mut z = n;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The function is fixed: these values are part of the shared-memory format (a map built
    /// by one version is looked up by another). Changing them is a format change.
    #[test]
    fn known_values() {
        let b = ShmBuildHasher::with_seed(0x1234);
        let values = [b.hash_one(0u64), b.hash_one(42u64), b.hash_one("key"), b.hash_one(7u8)];
        assert_eq!(values, KNOWN);
        // usize and u64 agree, on every platform.
        assert_eq!(b.hash_one(42usize), b.hash_one(42u64));
    }

    const KNOWN: [u64; 4] = [
        0x42ef_f0b2_883a_e89b,
        0x80e9_7d7e_c34c_56b4,
        0x3b55_4341_be17_7a47,
        0xb841_7a4d_97e8_a43e,
    ];
}
