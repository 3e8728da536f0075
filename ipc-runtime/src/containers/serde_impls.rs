//! `serde` for the containers (cargo feature `serde`; the user-facing docs are in
//! [`crate::wire`]).
//!
//! Serialization is exactly that of the std type each container mirrors (`ShmVec` as `Vec`,
//! `ShmString` as `String`, `ShmBox<T>` as `T`, maps as maps, sets and deques as sequences), read
//! through the containers' checked accessors (`try_as_slice`, `try_as_str`, ...) so a container
//! another process wrote fails with an error rather than a panic.
//!
//! Deserialization allocates in this process's default heap, element by element, with the
//! containers' fallible methods: the input's size hint preallocates at most
//! [`MAX_PREALLOC_BYTES`] (and a failed preallocation is not an error: the container then grows
//! as elements arrive), and running out of heap is a deserialization error naming the container
//! and the size it asked for (also recorded for [`crate::wire`], whose callers get it even
//! through formats that drop custom messages, as postcard does).

use std::cell::RefCell;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::mem::size_of;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::ser::{self, Serialize, Serializer};

use super::{
    ShmBTreeMap, ShmBTreeSet, ShmBox, ShmHashMap, ShmHashSet, ShmString, ShmVec, ShmVecDeque,
};
use crate::message::ShmSafe;

/// The most a size hint from the input may preallocate, in bytes (serde's own cap for std
/// collections, `size_hint::cautious`, is the same 1 MiB).
pub(crate) const MAX_PREALLOC_BYTES: usize = 1 << 20;

/// How many elements of `T` to preallocate for `hint`: never more than
/// [`MAX_PREALLOC_BYTES`] worth, whatever the input claims.
pub(crate) fn cautious<T>(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(MAX_PREALLOC_BYTES / size_of::<T>().max(1))
}

/// A container that the shared heap could not hold while it was being deserialized.
#[derive(Debug)]
#[non_exhaustive]
pub struct HeapFailure {
    /// The container's type, without module paths (`ShmVec<ShmString>`).
    pub container: String,
    /// How many elements (entries for maps, bytes for strings and boxes) it needed room for.
    pub size: usize,
    /// What `size` counts: `"elements"`, `"entries"` or `"bytes"`.
    pub unit: &'static str,
    /// The heap's error ([`Error::OutOfMemory`](crate::Error::OutOfMemory) with the heap's
    /// size, use and the bytes asked for, or [`Error::CapacityOverflow`](crate::Error::CapacityOverflow)).
    pub source: crate::Error,
}

impl fmt::Display for HeapFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the shared heap cannot hold {} {} of received data: {}",
            self.container, self.size, self.unit, self.source
        )
    }
}

impl std::error::Error for HeapFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

thread_local! {
    /// The last heap failure of a deserialization on this thread (read by `crate::wire`).
    static LAST_FAILURE: RefCell<Option<HeapFailure>> = const { RefCell::new(None) };
}

/// Forgets any recorded heap failure (before a deserialization starts).
pub(crate) fn clear_failure() {
    LAST_FAILURE.with(|f| f.borrow_mut().take());
}

/// The heap failure recorded since [`clear_failure`], if any.
pub(crate) fn take_failure() -> Option<HeapFailure> {
    LAST_FAILURE.with(|f| f.borrow_mut().take())
}

/// Records the failure and turns it into the format's error.
#[cold]
fn heap_error<E: de::Error, C: ?Sized>(size: usize, unit: &'static str, source: crate::Error) -> E {
    let failure = HeapFailure { container: short_type_name::<C>(), size, unit, source };
    let err = E::custom(&failure);
    LAST_FAILURE.with(|f| *f.borrow_mut() = Some(failure));
    err
}

/// `type_name` without module paths: `ShmHashMap<ShmString, ShmVec<f32>>`.
fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment = 0; // where the identifier being copied starts in `out`
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(segment);
            continue;
        }
        out.push(c);
        if !(c.is_alphanumeric() || c == '_') {
            segment = out.len();
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Serialize

impl<T: ShmSafe + Serialize> Serialize for ShmVec<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.try_as_slice().map_err(ser::Error::custom)?)
    }
}

impl Serialize for ShmString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.try_as_str().map_err(ser::Error::custom)?)
    }
}

impl<T: ShmSafe + Serialize> Serialize for ShmBox<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.try_get().map_err(ser::Error::custom)?.serialize(serializer)
    }
}

impl<K: ShmSafe + Serialize, V: ShmSafe + Serialize> Serialize for ShmHashMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.try_iter().map_err(ser::Error::custom)?)
    }
}

impl<T: ShmSafe + Serialize> Serialize for ShmHashSet<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<K: ShmSafe + Serialize, V: ShmSafe + Serialize> Serialize for ShmBTreeMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<T: ShmSafe + Serialize> Serialize for ShmBTreeSet<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<T: ShmSafe + Serialize> Serialize for ShmVecDeque<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (a, b) = self.try_as_slices().map_err(ser::Error::custom)?;
        serializer.collect_seq(a.iter().chain(b))
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialize

/// The visitor of every sequence- or map-shaped container.
struct Collect<C>(PhantomData<fn() -> C>);

impl<C> Collect<C> {
    fn new() -> Self {
        Collect(PhantomData)
    }
}

impl<'de, T: ShmSafe + Deserialize<'de>> Visitor<'de> for Collect<ShmVec<T>> {
    type Value = ShmVec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = ShmVec::<T>::new();
        // A failed preallocation is no error: the vector grows as the elements arrive.
        let _ = v.try_reserve_exact(cautious::<T>(seq.size_hint()));
        v.try_extend_with(
            || seq.next_element(),
            |len, e| heap_error::<_, ShmVec<T>>(len, "elements", e),
        )?;
        Ok(v)
    }
}

impl<'de, T: ShmSafe + Deserialize<'de>> Deserialize<'de> for ShmVec<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(Collect::<Self>::new())
    }
}

impl<'de, T: ShmSafe + Deserialize<'de>> Visitor<'de> for Collect<ShmVecDeque<T>> {
    type Value = ShmVecDeque<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut q = ShmVecDeque::<T>::new();
        let _ = q.try_reserve(cautious::<T>(seq.size_hint()));
        while let Some(item) = seq.next_element()? {
            if let Err((item, e)) = q.try_push_back(item) {
                drop(item);
                return Err(heap_error::<_, ShmVecDeque<T>>(q.len() + 1, "elements", e));
            }
        }
        Ok(q)
    }
}

impl<'de, T: ShmSafe + Deserialize<'de>> Deserialize<'de> for ShmVecDeque<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(Collect::<Self>::new())
    }
}

/// Duplicate keys: the last value wins (as std's `HashMap` deserialization).
impl<'de, K, V> Visitor<'de> for Collect<ShmHashMap<K, V>>
where
    K: ShmSafe + Hash + Eq + Deserialize<'de>,
    V: ShmSafe + Deserialize<'de>,
{
    type Value = ShmHashMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut m = ShmHashMap::<K, V>::new();
        let _ = m.try_reserve(cautious::<(K, V)>(map.size_hint()));
        while let Some((k, v)) = map.next_entry()? {
            if let Err((k, v, e)) = m.try_insert(k, v) {
                drop((k, v));
                return Err(heap_error::<_, ShmHashMap<K, V>>(m.len() + 1, "entries", e));
            }
        }
        Ok(m)
    }
}

impl<'de, K, V> Deserialize<'de> for ShmHashMap<K, V>
where
    K: ShmSafe + Hash + Eq + Deserialize<'de>,
    V: ShmSafe + Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Collect::<Self>::new())
    }
}

/// Duplicate elements: the first is kept (as std's `HashSet` deserialization).
impl<'de, T: ShmSafe + Hash + Eq + Deserialize<'de>> Visitor<'de> for Collect<ShmHashSet<T>> {
    type Value = ShmHashSet<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut s = ShmHashSet::<T>::new();
        let _ = s.try_reserve(cautious::<T>(seq.size_hint()));
        while let Some(item) = seq.next_element()? {
            if let Err((item, e)) = s.try_insert(item) {
                drop(item);
                return Err(heap_error::<_, ShmHashSet<T>>(s.len() + 1, "elements", e));
            }
        }
        Ok(s)
    }
}

impl<'de, T: ShmSafe + Hash + Eq + Deserialize<'de>> Deserialize<'de> for ShmHashSet<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(Collect::<Self>::new())
    }
}

/// Duplicate keys: the last value wins (as std's `BTreeMap` deserialization).
impl<'de, K, V> Visitor<'de> for Collect<ShmBTreeMap<K, V>>
where
    K: ShmSafe + Ord + Deserialize<'de>,
    V: ShmSafe + Deserialize<'de>,
{
    type Value = ShmBTreeMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // A B-tree allocates node by node: there is nothing to preallocate.
        let mut m = ShmBTreeMap::<K, V>::new();
        while let Some((k, v)) = map.next_entry()? {
            if let Err((k, v, e)) = m.try_insert(k, v) {
                drop((k, v));
                return Err(heap_error::<_, ShmBTreeMap<K, V>>(m.len() + 1, "entries", e));
            }
        }
        Ok(m)
    }
}

impl<'de, K, V> Deserialize<'de> for ShmBTreeMap<K, V>
where
    K: ShmSafe + Ord + Deserialize<'de>,
    V: ShmSafe + Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Collect::<Self>::new())
    }
}

/// Duplicate elements: the first is kept (as std's `BTreeSet` deserialization).
impl<'de, T: ShmSafe + Ord + Deserialize<'de>> Visitor<'de> for Collect<ShmBTreeSet<T>> {
    type Value = ShmBTreeSet<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut s = ShmBTreeSet::<T>::new();
        while let Some(item) = seq.next_element()? {
            if let Err((item, e)) = s.try_insert(item) {
                drop(item);
                return Err(heap_error::<_, ShmBTreeSet<T>>(s.len() + 1, "elements", e));
            }
        }
        Ok(s)
    }
}

impl<'de, T: ShmSafe + Ord + Deserialize<'de>> Deserialize<'de> for ShmBTreeSet<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(Collect::<Self>::new())
    }
}

/// `ShmString`'s visitor: the text goes from the input straight into the shared heap.
struct StringVisitor;

impl Visitor<'_> for StringVisitor {
    type Value = ShmString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ShmString, E> {
        ShmString::try_from_str(v).map_err(|e| heap_error::<_, ShmString>(v.len(), "bytes", e))
    }

    /// Bytes that are UTF-8 (as std's `String`: some formats hand strings over as bytes).
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ShmString, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::invalid_value(Unexpected::Bytes(v), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for ShmString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(StringVisitor)
    }
}

/// The value is deserialized (its own containers already in the heap), then moved into a heap
/// block of its size, as std's `Box<T>`.
impl<'de, T: ShmSafe + Deserialize<'de>> Deserialize<'de> for ShmBox<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = T::deserialize(deserializer)?;
        ShmBox::try_new(value).map_err(|(value, e)| {
            drop(value);
            heap_error::<_, ShmBox<T>>(size_of::<T>(), "bytes", e)
        })
    }
}

/// The visitor of `crate::wire::bytes`: a byte string copied into the heap in one piece, or a
/// sequence of `u8` (what formats without a bytes type, such as JSON, give).
pub(crate) struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = ShmVec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ShmVec<u8>, E> {
        let mut out = ShmVec::<u8>::try_with_capacity(v.len())
            .map_err(|e| heap_error::<_, ShmVec<u8>>(v.len(), "elements", e))?;
        // No growth: the capacity is there.
        out.extend_from_slice(v);
        Ok(out)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ShmVec<u8>, A::Error> {
        Collect::<ShmVec<u8>>::new().visit_seq(seq)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_type_names() {
        use super::super::*;
        assert_eq!(super::short_type_name::<ShmVec<u8>>(), "ShmVec<u8>");
        assert_eq!(
            super::short_type_name::<ShmHashMap<ShmString, ShmVec<f32>>>(),
            "ShmHashMap<ShmString, ShmVec<f32>>"
        );
        assert_eq!(super::short_type_name::<ShmBox<(u8, ShmString)>>(), "ShmBox<(u8, ShmString)>");
    }
}
