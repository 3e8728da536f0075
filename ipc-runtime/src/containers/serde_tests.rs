//! serde for the containers: the same encoding as the std types, round trips through postcard
//! and JSON, hostile input, and no leaks (cargo feature `serde`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Debug;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::*;
use crate::heap;

fn in_use() -> u64 {
    heap::default_heap().unwrap();
    heap::tlsf::thread_in_use()
}

/// Runs `f` and checks that this thread's heap bytes are back where they were.
fn leak_checked<R>(f: impl FnOnce() -> R) -> R {
    let _guard = super::tests::serial();
    let before = in_use();
    let r = f();
    assert_eq!(in_use(), before, "heap bytes in use changed: leak or double free");
    r
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

fn post<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).unwrap()
}

/// `shm` encodes as `std` does (JSON and postcard), and decodes back (from both encodings) to a
/// value equal to itself; the decoded values free everything they allocated.
fn same_as_std<S, T>(shm: &S, std: &T)
where
    S: Serialize + DeserializeOwned + PartialEq + Debug,
    T: Serialize + DeserializeOwned + Debug,
{
    assert_eq!(json(shm), json(std), "JSON of {shm:?}");
    assert_eq!(post(shm), post(std), "postcard of {shm:?}");
    leak_checked(|| {
        let from_json: S = serde_json::from_str(&json(std)).unwrap();
        assert_eq!(&from_json, shm);
        let from_post: S = postcard::from_bytes(&post(std)).unwrap();
        assert_eq!(&from_post, shm);
    });
    // And the std type reads what the container wrote.
    let _: T = serde_json::from_str(&json(shm)).unwrap();
    let _: T = postcard::from_bytes(&post(shm)).unwrap();
}

#[test]
fn every_container_encodes_as_its_std_type() {
    same_as_std(&ShmVec::from_slice(&[1u32, 2, 3]), &vec![1u32, 2, 3]);
    same_as_std(&ShmVec::<u8>::new(), &Vec::<u8>::new());
    same_as_std(&ShmString::from("héllo \"x\""), &String::from("héllo \"x\""));
    same_as_std(&ShmString::new(), &String::new());
    same_as_std(&ShmBox::new(7u64), &Box::new(7u64));
    same_as_std(
        &ShmBTreeMap::from([(3u64, 30i8), (1, 10)]),
        &BTreeMap::from([(3u64, 30i8), (1, 10)]),
    );
    same_as_std(&ShmBTreeSet::from([5u16, 1, 3]), &BTreeSet::from([5u16, 1, 3]));
    let mut q = ShmVecDeque::from([2i32, 3]);
    q.push_front(1);
    same_as_std(&q, &VecDeque::from([1i32, 2, 3]));
    // Hash containers: one entry has one order.
    same_as_std(&ShmHashMap::from([(1u8, 2u8)]), &HashMap::from([(1u8, 2u8)]));
    same_as_std(&ShmHashSet::from([9u32]), &HashSet::from([9u32]));
    same_as_std(&ShmHashMap::<u8, u8>::new(), &HashMap::<u8, u8>::new());
}

/// Hash containers with many entries: the same entries as std's, in the map's own order.
#[test]
fn hash_containers_with_many_entries() {
    let m: ShmHashMap<u32, i64> = (0..100).map(|i| (i, -i64::from(i))).collect();
    let std_m: HashMap<u32, i64> = serde_json::from_str(&json(&m)).unwrap();
    assert_eq!(std_m, (0..100).map(|i| (i, -i64::from(i))).collect());
    // postcard: the bytes are those of a map with the same entries in the same order.
    let ordered: Vec<(u32, i64)> = m.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(post(&m), post(&Ordered(&ordered)));
    let back: ShmHashMap<u32, i64> = postcard::from_bytes(&post(&m)).unwrap();
    assert_eq!(back, m);

    let s: ShmHashSet<ShmString> = (0..50).map(|i| ShmString::from(format!("k{i}"))).collect();
    let std_s: HashSet<String> = postcard::from_bytes(&post(&s)).unwrap();
    assert_eq!(std_s, (0..50).map(|i| format!("k{i}")).collect());
    let in_order: Vec<&str> = s.iter().map(|k| k.as_str()).collect();
    assert_eq!(post(&s), post(&in_order));
    let back: ShmHashSet<ShmString> = serde_json::from_str(&json(&s)).unwrap();
    assert_eq!(back, s);
}

/// Entries serialized as a map in the given order.
struct Ordered<'a, K, V>(&'a [(K, V)]);

impl<K: Serialize, V: Serialize> Serialize for Ordered<'_, K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[test]
fn nested_containers_round_trip() {
    let mut m: ShmHashMap<ShmString, ShmVec<f32>> = ShmHashMap::new();
    m.insert("a".into(), ShmVec::from_slice(&[1.0, 2.5]));
    m.insert("b".into(), ShmVec::new());
    let std_m: HashMap<String, Vec<f32>> = serde_json::from_str(&json(&m)).unwrap();
    assert_eq!(std_m, HashMap::from([("a".into(), vec![1.0, 2.5]), ("b".into(), vec![])]));
    leak_checked(|| {
        let back: ShmHashMap<ShmString, ShmVec<f32>> = postcard::from_bytes(&post(&m)).unwrap();
        assert_eq!(back, m);
        let back: ShmHashMap<ShmString, ShmVec<f32>> = serde_json::from_str(&json(&m)).unwrap();
        assert_eq!(back, m);
    });

    let v: ShmVec<ShmString> = ["x", "", "zz"].into_iter().map(ShmString::from).collect();
    same_as_std(&v, &vec![String::from("x"), String::new(), String::from("zz")]);

    let b: ShmBTreeMap<u64, ShmString> =
        [(2, "two".into()), (1, "one".into())].into_iter().collect();
    same_as_std(&b, &BTreeMap::from([(2u64, String::from("two")), (1, String::from("one"))]));

    let q: ShmVecDeque<ShmBox<u32>> = [1, 2, 3].into_iter().map(ShmBox::new).collect();
    same_as_std(&q, &VecDeque::from([Box::new(1u32), Box::new(2), Box::new(3)]));

    let deep: ShmVec<ShmVec<ShmString>> =
        [ShmVec::from_iter([ShmString::from("a")]), ShmVec::new()].into_iter().collect();
    same_as_std(&deep, &vec![vec![String::from("a")], vec![]]);
}

#[derive(crate::ShmMessage, Serialize, Deserialize, Debug, PartialEq)]
#[repr(C)]
struct Frame {
    timestamp: i64,
    label: ShmString,
    pixels: ShmVec<u8>,
    tags: ShmBTreeSet<u16>,
    meta: ShmHashMap<ShmString, ShmString>,
    boxed: ShmBox<f64>,
}

/// What a peer without shared memory would use.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct StdFrame {
    timestamp: i64,
    label: String,
    pixels: Vec<u8>,
    tags: BTreeSet<u16>,
    meta: HashMap<String, String>,
    boxed: Box<f64>,
}

#[test]
fn derived_message_round_trips_and_matches_std() {
    let frame = Frame {
        timestamp: -5,
        label: "cam-0".into(),
        pixels: ShmVec::from_slice(&[0, 1, 255]),
        tags: [3, 1].into_iter().collect(),
        meta: [("k".into(), "v".into())].into_iter().collect(),
        boxed: ShmBox::new(0.5),
    };
    let std_frame = StdFrame {
        timestamp: -5,
        label: "cam-0".into(),
        pixels: vec![0, 1, 255],
        tags: BTreeSet::from([1, 3]),
        meta: HashMap::from([("k".into(), "v".into())]),
        boxed: Box::new(0.5),
    };
    same_as_std(&frame, &std_frame);
}

/// Duplicate map keys: the last value wins, as std's maps; duplicate set elements collapse.
#[test]
fn duplicate_keys_last_wins() {
    leak_checked(|| {
        let text = r#"{"a":"1","a":"2","b":"3"}"#;
        let m: ShmHashMap<ShmString, ShmString> = serde_json::from_str(text).unwrap();
        let s: HashMap<String, String> = serde_json::from_str(text).unwrap();
        assert_eq!((m.len(), m["a"].as_str(), m["b"].as_str()), (2, "2", "3"));
        assert_eq!(s["a"], "2");
        let text = r#"{"1":"x","1":"y"}"#;
        let m: ShmBTreeMap<u32, ShmString> = serde_json::from_str(text).unwrap();
        let s: BTreeMap<u32, String> = serde_json::from_str(text).unwrap();
        assert_eq!((m.len(), m[&1].as_str()), (1, s[&1].as_str()));
        let h: ShmHashSet<u8> = serde_json::from_str("[1,1,2]").unwrap();
        let b: ShmBTreeSet<u8> = serde_json::from_str("[2,1,2]").unwrap();
        assert_eq!((h.len(), b.len()), (2, 2));
    });
}

// ---------------------------------------------------------------------------------------------
// Hostile input

/// A postcard length prefix (a varint) of `n`.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn decode_err<T: DeserializeOwned + Debug>(
    bytes: &[u8],
) -> crate::wire::DecodeError<postcard::Error> {
    leak_checked(|| {
        crate::wire::deserialize::<T, _>(&mut postcard::Deserializer::from_bytes(bytes))
            .expect_err("hostile input decoded")
    })
}

/// A length prefix of 2^60 elements with a few actual elements: an error, and at most the
/// capped preallocation (1 MiB) was ever asked of the heap.
#[test]
fn huge_length_prefix_is_an_error_without_a_huge_allocation() {
    let mut bytes = varint(1 << 60);
    bytes.extend_from_slice(&[1, 2, 3]);
    let high_before = heap::heap_stats().high_water();
    let cap = super::serde_impls::MAX_PREALLOC_BYTES as u64;
    assert!(matches!(decode_err::<ShmVec<u8>>(&bytes), crate::wire::DecodeError::Format(_)));
    assert!(matches!(decode_err::<ShmVec<u64>>(&bytes), crate::wire::DecodeError::Format(_)));
    assert!(matches!(decode_err::<ShmVecDeque<u32>>(&bytes), crate::wire::DecodeError::Format(_)));
    assert!(matches!(
        decode_err::<ShmHashMap<u8, u8>>(&bytes),
        crate::wire::DecodeError::Format(_)
    ));
    assert!(matches!(decode_err::<ShmHashSet<u8>>(&bytes), crate::wire::DecodeError::Format(_)));
    assert!(matches!(
        decode_err::<ShmBTreeMap<u8, u8>>(&bytes),
        crate::wire::DecodeError::Format(_)
    ));
    assert!(matches!(decode_err::<ShmBTreeSet<u8>>(&bytes), crate::wire::DecodeError::Format(_)));
    assert!(matches!(decode_err::<ShmString>(&bytes), crate::wire::DecodeError::Format(_)));
    assert!(matches!(decode_err::<ShmVec<ShmString>>(&bytes), crate::wire::DecodeError::Format(_)));
    // The high-water mark is the whole process's: other tests may raise it too, but by far less
    // than 2^60 elements would.
    let raised = heap::heap_stats().high_water().saturating_sub(high_before);
    assert!(raised < 64 * cap, "the heap's high water rose by {raised} bytes");
    // A length beyond usize: postcard refuses the varint itself.
    let bytes = [0xff; 11];
    assert!(matches!(decode_err::<ShmVec<u8>>(&bytes), crate::wire::DecodeError::Format(_)));
}

#[test]
fn truncated_input_is_an_error() {
    let v: Vec<Vec<String>> = vec![vec!["abc".into(), "defgh".into()], vec!["x".into()]];
    let full = post(&v);
    for cut in 0..full.len() {
        decode_err::<ShmVec<ShmVec<ShmString>>>(&full[..cut]);
    }
    let m: BTreeMap<u64, String> = (0..20).map(|i| (i, format!("v{i}"))).collect();
    let full = post(&m);
    for cut in 0..full.len() {
        decode_err::<ShmBTreeMap<u64, ShmString>>(&full[..cut]);
        decode_err::<ShmHashMap<u64, ShmString>>(&full[..cut]);
    }
    let q: VecDeque<Box<u32>> = (0..10).map(Box::new).collect();
    let full = post(&q);
    for cut in 0..full.len() {
        decode_err::<ShmVecDeque<ShmBox<u32>>>(&full[..cut]);
    }
}

#[test]
fn invalid_utf8_is_an_error() {
    let mut bytes = varint(3);
    bytes.extend_from_slice(&[b'a', 0xff, b'b']);
    let err = decode_err::<ShmString>(&bytes);
    assert!(
        matches!(err, crate::wire::DecodeError::Format(postcard::Error::DeserializeBadUtf8)),
        "{err}"
    );
    // Inside a vector, after a good element: the good one is freed too (leak-checked).
    let mut bytes = varint(2);
    bytes.extend(varint(2));
    bytes.extend_from_slice(b"ok");
    bytes.extend(varint(1));
    bytes.push(0xc3);
    decode_err::<ShmVec<ShmString>>(&bytes);
    // Bytes handed over as bytes (a format that does): checked the same way.
    let err = serde_json::from_str::<ShmString>("[97, 255]");
    assert!(err.is_err());
    use serde::de::IntoDeserializer;
    let d: serde::de::value::BytesDeserializer<'_, serde::de::value::Error> =
        (&b"\xff"[..]).into_deserializer();
    assert!(ShmString::deserialize(d).is_err());
    let d: serde::de::value::BytesDeserializer<'_, serde::de::value::Error> =
        (&b"fine"[..]).into_deserializer();
    assert_eq!(ShmString::deserialize(d).unwrap(), "fine");
}

#[test]
fn cautious_caps_the_hint() {
    use super::serde_impls::cautious;
    assert_eq!(cautious::<u8>(None), 0);
    assert_eq!(cautious::<u8>(Some(10)), 10);
    assert_eq!(cautious::<u8>(Some(usize::MAX)), 1 << 20);
    assert_eq!(cautious::<u64>(Some(usize::MAX)), 1 << 17);
    assert_eq!(cautious::<()>(Some(usize::MAX)), 1 << 20);
}

// ---------------------------------------------------------------------------------------------
// Property: the containers' bytes are the std types', and decode to equal values.

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn prop_same_bytes_as_std(
        v in proptest::collection::vec(any::<u32>(), 0..200),
        strings in proptest::collection::vec(".{0,12}", 0..20),
        map in proptest::collection::btree_map(any::<u64>(), ".{0,8}", 0..40),
        set in proptest::collection::btree_set(any::<i16>(), 0..40),
        deque in proptest::collection::vec_deque(any::<u8>(), 0..100),
        floats in proptest::collection::hash_map(".{0,6}", proptest::collection::vec(-1e6f32..1e6, 0..5), 0..10),
    ) {
        let _guard = super::tests::serial();
        let before = in_use();
        {
            let shm: ShmVec<u32> = postcard::from_bytes(&post(&v)).unwrap();
            prop_assert_eq!(post(&shm), post(&v));
            prop_assert_eq!(shm.as_slice(), v.as_slice());

            let shm: ShmVec<ShmString> = postcard::from_bytes(&post(&strings)).unwrap();
            prop_assert_eq!(post(&shm), post(&strings));
            prop_assert_eq!(json(&shm), json(&strings));

            let shm: ShmBTreeMap<u64, ShmString> = postcard::from_bytes(&post(&map)).unwrap();
            prop_assert_eq!(post(&shm), post(&map));
            let back: BTreeMap<u64, String> = postcard::from_bytes(&post(&shm)).unwrap();
            prop_assert_eq!(&back, &map);

            let shm: ShmBTreeSet<i16> = postcard::from_bytes(&post(&set)).unwrap();
            prop_assert_eq!(post(&shm), post(&set));

            let shm: ShmVecDeque<u8> = postcard::from_bytes(&post(&deque)).unwrap();
            prop_assert_eq!(post(&shm), post(&deque));

            let shm: ShmHashMap<ShmString, ShmVec<f32>> =
                postcard::from_bytes(&post(&floats)).unwrap();
            let back: HashMap<String, Vec<f32>> = postcard::from_bytes(&post(&shm)).unwrap();
            prop_assert_eq!(&back, &floats);
            let ordered: Vec<(&str, &[f32])> =
                shm.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            prop_assert_eq!(post(&shm), post(&Ordered(&ordered)));
            let set: HashSet<i16> = set.iter().copied().collect();
            let shm: ShmHashSet<i16> = postcard::from_bytes(&post(&set)).unwrap();
            let back: HashSet<i16> = postcard::from_bytes(&post(&shm)).unwrap();
            prop_assert_eq!(back, set);
        }
        prop_assert_eq!(in_use(), before, "heap bytes in use changed");
    }
}

// ---------------------------------------------------------------------------------------------
// The size hint's preallocation, observed: an input claiming 2^40 elements whose first element
// notes how many heap bytes this thread holds by then.

/// A sequence (or map) claiming `claimed` elements, holding `actual` (all `7`s); records this
/// thread's heap bytes in use when the first element is asked for.
struct Liar {
    claimed: usize,
    actual: usize,
    map: bool,
    seen: std::rc::Rc<std::cell::Cell<Option<u64>>>,
}

impl<'de> serde::Deserializer<'de> for Liar {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        if self.map { v.visit_map(self) } else { v.visit_seq(self) }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

impl Liar {
    fn next(&mut self) -> bool {
        if self.seen.get().is_none() {
            self.seen.set(Some(in_use()));
        }
        if self.actual == 0 {
            return false;
        }
        self.actual -= 1;
        true
    }
}

impl<'de> serde::de::SeqAccess<'de> for Liar {
    type Error = serde::de::value::Error;

    fn next_element_seed<T: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        use serde::de::IntoDeserializer;
        if !self.next() {
            return Ok(None);
        }
        seed.deserialize(7u64.into_deserializer()).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.claimed)
    }
}

impl<'de> serde::de::MapAccess<'de> for Liar {
    type Error = serde::de::value::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        use serde::de::IntoDeserializer;
        if !self.next() {
            return Ok(None);
        }
        let key = self.actual as u64; // distinct keys
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        use serde::de::IntoDeserializer;
        seed.deserialize(7u64.into_deserializer())
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.claimed)
    }
}

/// Decodes a `T` from a `Liar`; returns the heap bytes held when the first element was read,
/// beyond those before, and the value.
fn preallocated<T: for<'de> Deserialize<'de>>(
    claimed: usize,
    actual: usize,
    map: bool,
) -> (u64, T) {
    let seen = std::rc::Rc::new(std::cell::Cell::new(None));
    let before = in_use();
    let value = T::deserialize(Liar { claimed, actual, map, seen: seen.clone() }).unwrap();
    (seen.get().unwrap() - before, value)
}

#[test]
fn a_size_hint_preallocates_at_most_a_capped_amount() {
    let cap = super::serde_impls::MAX_PREALLOC_BYTES as u64;
    leak_checked(|| {
        // An honest hint preallocates exactly (one allocation, no regrowth).
        let (bytes, v) = preallocated::<ShmVec<u64>>(1000, 1000, false);
        assert!((8000..8000 + 256).contains(&bytes), "{bytes}");
        assert_eq!((v.len(), v.capacity()), (1000, 1000));
        // A lying one: at most the cap, then the value is as long as the input really was.
        let (bytes, v) = preallocated::<ShmVec<u64>>(1 << 40, 3, false);
        assert!(bytes <= cap + 256, "{bytes}");
        assert_eq!(v, [7, 7, 7]);
        let (bytes, q) = preallocated::<ShmVecDeque<u64>>(1 << 40, 2, false);
        assert!(bytes <= cap + 256, "{bytes}");
        assert_eq!(q, [7, 7]);
        let (bytes, s) = preallocated::<ShmHashSet<u64>>(1 << 40, 1, false);
        // A hash table's buckets for the capped number of items: at most about 2.3 times.
        assert!(bytes <= 3 * cap, "{bytes}");
        assert_eq!(s.len(), 1);
        let (bytes, m) = preallocated::<ShmHashMap<u64, u64>>(1 << 40, 2, true);
        assert!(bytes <= 3 * cap, "{bytes}");
        assert_eq!(m.len(), 2);
        let (bytes, b) = preallocated::<ShmBTreeMap<u64, u64>>(1 << 40, 2, true);
        assert_eq!((bytes, b.len()), (0, 2));
        let (bytes, b) = preallocated::<ShmBTreeSet<u64>>(1 << 40, 2, false);
        assert_eq!((bytes, b.len()), (0, 1));
    });
}

// ---------------------------------------------------------------------------------------------
// `wire::bytes`: the encoding of `Vec<u8>` in postcard and JSON, decoded in one copy.

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Blob {
    #[serde(with = "crate::wire::bytes")]
    data: ShmVec<u8>,
    tail: u8,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct StdBlob {
    data: Vec<u8>,
    tail: u8,
}

#[test]
fn bytes_adapter_matches_vec_u8() {
    for len in [0usize, 1, 127, 128, 70_000] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let blob = Blob { data: ShmVec::from_slice(&data), tail: 9 };
        let std_blob = StdBlob { data, tail: 9 };
        assert_eq!(post(&blob), post(&std_blob));
        assert_eq!(json(&blob), json(&std_blob));
        leak_checked(|| {
            let back: Blob = postcard::from_bytes(&post(&std_blob)).unwrap();
            assert_eq!(back, blob);
            let back: Blob = serde_json::from_str(&json(&std_blob)).unwrap();
            assert_eq!(back, blob);
            // Truncated and forged lengths: errors.
            let bytes = post(&std_blob);
            assert!(postcard::from_bytes::<Blob>(&bytes[..bytes.len() - 1]).is_err());
            let mut forged = varint(1 << 60);
            forged.extend_from_slice(&[1, 2]);
            assert!(postcard::from_bytes::<Blob>(&forged).is_err());
        });
    }
}
