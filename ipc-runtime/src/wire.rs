//! Messages to and from bytes with `serde` (cargo feature `serde`): for sending them beyond this
//! machine, and turning received bytes into a loaned local sample.
//!
//! Shared-memory messages hold relocatable pointers into the heap of the process that built
//! them, so their bytes mean nothing on another machine. With the `serde` feature every
//! container implements `serde::Serialize` and `serde::Deserialize`, so a message type that
//! derives them next to `ShmMessage` can be encoded with any serde format (postcard, JSON, ...)
//! and decoded straight into this process's shared heap.
//!
//! # Enabling it
//!
//! ```toml
//! [dependencies]
//! ipc-runtime = { version = "0.1", features = ["serde"] }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! Then derive serde's traits next to `ShmMessage`:
//!
//! ```
//! use ipc_runtime::prelude::*;
//!
//! #[derive(ShmMessage, serde::Serialize, serde::Deserialize)]
//! #[repr(C)]
//! struct Frame {
//!     timestamp: i64,
//!     label: ShmString,
//!     pixels: ShmVec<u8>,
//! }
//!
//! let frame = Frame { timestamp: 1, label: "cam".into(), pixels: ShmVec::from_slice(&[1, 2]) };
//! let json = serde_json::to_string(&frame).unwrap();
//! assert_eq!(json, r#"{"timestamp":1,"label":"cam","pixels":[1,2]}"#);
//! ```
//!
//! # The encoding
//!
//! Each container serializes exactly as the std type it mirrors: `ShmVec<T>` as `Vec<T>`,
//! `ShmString` as `String`, `ShmBox<T>` as `Box<T>` (that is, as `T`), `ShmHashMap` and
//! `ShmBTreeMap` as `HashMap` and `BTreeMap`, `ShmHashSet`, `ShmBTreeSet` and `ShmVecDeque` as
//! `HashSet`, `BTreeSet` and `VecDeque`. A peer may therefore decode into std types (and
//! encode from them): `Frame` above and a struct with `String` and `Vec<u8>` fields have the same
//! bytes. A received [`Sample`] and a loaned [`SampleMut`] serialize as their message (a
//! received sample's containers were checked when it arrived; serializing also reads vectors,
//! strings, boxes, deques and hash maps through their checked accessors, so one that does not
//! resolve is a serialization error rather than a panic).
//!
//! Large byte payloads: a `ShmVec<u8>` decodes like `Vec<u8>`, one element at a time; mark the
//! field `#[serde(with = "ipc_runtime::wire::bytes")]` and it decodes in one copy, with the
//! same bytes on the wire in postcard and JSON (see [`bytes`]).
//!
//! # Where received data goes
//!
//! Deserializing a container allocates in this process's default shared heap (the one
//! [`init_heap`](crate::init_heap) or `IPC_HEAP_SIZE` sizes; see [`crate::heap`]), element by
//! element as the input is read: there is no intermediate `Vec` or `String`. The result is an
//! ordinary container of this process, ready to publish. [`Publisher::loan_deserialize`] goes one
//! step further and decodes a whole message into a loaned sample of the publisher's pool.
//!
//! # Hostile input and out of memory
//!
//! Input from the network is untrusted:
//!
//! * a size hint (postcard's length prefix, for instance) preallocates at most 1 MiB, whatever it
//!   claims; beyond that the container grows as elements actually arrive, so a forged length of
//!   2<sup>60</sup> elements costs nothing before the input runs out;
//! * truncated input, invalid UTF-8 in a string and every other format error are the format's
//!   deserialization error (from [`deserialize`] and [`Publisher::loan_deserialize`]:
//!   [`DecodeError::Format`]);
//! * when the shared heap cannot hold the data, deserialization fails with an error naming the
//!   container and the size it needed (`ShmVec<f32>: the shared heap cannot hold 70000
//!   elements of received data: shared heap ... is out of memory ...`), never a panic or an
//!   abort: [`DecodeError::OutOfMemory`] carries it as a [`HeapFailure`] (also through formats
//!   such as postcard that drop the text of custom errors);
//! * in every failure case the partly built value is dropped, and everything it had allocated
//!   goes back to the heap;
//! * duplicate keys in a map: the last value wins, as when deserializing std's `HashMap` and
//!   `BTreeMap`; duplicate set elements: the first is kept, as for `HashSet` and `BTreeSet`.
//!
//! Deserialization checks only what the format checks (types, lengths, UTF-8): the values
//! themselves are whatever the sender chose, as with std types. Each received hash map or set
//! gets a fresh random seed, but its hash function is a fast one, not a keyed cryptographic
//! hash (see [`ShmBuildHasher`](crate::containers::ShmBuildHasher)): a sender that can make
//! many keys collide can make inserting them slow, as with any such hash. Like
//! `postcard::from_bytes`, decoding one message ignores bytes after it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::containers::serde_impls;
use crate::message::ShmMessage;
use crate::pubsub::{Publisher, Sample, SampleMut};
use crate::wait::WaitBackend;

pub use crate::containers::serde_impls::HeapFailure;

/// Why received bytes did not become a value (or a sample).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError<E> {
    /// No sample could be loaned for the message ([`Publisher::loan_uninit`]'s error); the input
    /// was not read.
    #[error("cannot loan a sample for the received message: {0}")]
    Loan(#[source] crate::Error),
    /// The shared heap could not hold a container of the message.
    #[error(transparent)]
    OutOfMemory(Box<HeapFailure>),
    /// The input is not a valid encoding of the type (truncated, malformed, wrong types,
    /// invalid UTF-8, ...): the format's error.
    #[error("malformed message: {0}")]
    Format(#[source] E),
}

/// Deserializes a `T` whose containers go straight into this process's shared heap, telling an
/// out-of-memory failure ([`DecodeError::OutOfMemory`], with the container and the size it
/// needed) from malformed input ([`DecodeError::Format`]).
///
/// `T::deserialize(deserializer)` does the same work; this function adds the distinction,
/// which formats like postcard lose (they keep no text of a custom error).
///
/// ```
/// use ipc_runtime::ShmVec;
/// use ipc_runtime::wire::{self, DecodeError};
///
/// let bytes = postcard::to_stdvec(&vec![1.5f32, 2.5]).unwrap();
/// let v: ShmVec<f32> = wire::deserialize(&mut postcard::Deserializer::from_bytes(&bytes))?;
/// assert_eq!(v, [1.5, 2.5]);
///
/// let truncated = &bytes[..bytes.len() - 1];
/// let err = wire::deserialize::<ShmVec<f32>, _>(&mut postcard::Deserializer::from_bytes(truncated));
/// assert!(matches!(err, Err(DecodeError::Format(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`DecodeError::OutOfMemory`] when the heap cannot hold a container, [`DecodeError::Format`]
/// for anything else the deserializer reports.
pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, DecodeError<D::Error>>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    serde_impls::clear_failure();
    T::deserialize(deserializer).map_err(|e| match serde_impls::take_failure() {
        Some(failure) => DecodeError::OutOfMemory(Box::new(failure)),
        None => DecodeError::Format(e),
    })
}

impl<M: ShmMessage + Send, B: WaitBackend> Publisher<M, B> {
    /// Loans a sample and fills it with the message `deserializer` reads: received bytes become
    /// a local sample, ready to [`publish`](SampleMut::publish). The message's containers are
    /// built in this process's shared heap as the input is read (see the [`wire`](crate::wire)
    /// module); on any error the loan goes back to the pool and whatever was allocated is freed.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// #[derive(ShmMessage, serde::Serialize, serde::Deserialize)]
    /// #[repr(C)]
    /// struct Reading {
    ///     sensor: ShmString,
    ///     values: ShmVec<f32>,
    /// }
    ///
    /// // What another machine sent (it may use std types: the encoding is the same).
    /// #[derive(serde::Serialize)]
    /// struct Remote { sensor: String, values: Vec<f32> }
    /// let bytes = postcard::to_stdvec(&Remote { sensor: "t0".into(), values: vec![20.5, 21.0] })?;
    ///
    /// let publisher = Publisher::<Reading>::new("doc/wire-readings")?;
    /// let sample = publisher.loan_deserialize(&mut postcard::Deserializer::from_bytes(&bytes))?;
    /// assert_eq!(sample.sensor, "t0");
    /// assert_eq!(sample.values, [20.5, 21.0]);
    /// sample.publish()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DecodeError::Loan`] when no sample can be loaned (as [`loan_uninit`](Self::loan_uninit));
    /// [`DecodeError::OutOfMemory`] when the shared heap cannot hold a container of the message;
    /// [`DecodeError::Format`] for malformed input.
    pub fn loan_deserialize<'de, D>(
        &self,
        deserializer: D,
    ) -> Result<SampleMut<'_, M, B>, DecodeError<D::Error>>
    where
        M: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        // Loan first: with no sample to fill, the input is not even read.
        let slot = self.loan_uninit().map_err(DecodeError::Loan)?;
        let message = deserialize::<M, D>(deserializer)?;
        Ok(slot.write(message))
    }
}

/// `#[serde(with = "ipc_runtime::wire::bytes")]` on a `ShmVec<u8>` field: the bytes as one
/// byte string rather than a sequence of `u8`s, decoded with a single copy into the shared heap.
///
/// In postcard (and in JSON, which writes byte strings as arrays of numbers) this is the very
/// encoding of a `Vec<u8>`, so a peer may still use `Vec<u8>` there; only decoding is faster, as
/// a 64 KiB payload is one copy instead of 65536 steps. Formats with a byte-string type of their
/// own (CBOR, MessagePack) write that type instead; decoding accepts both a byte string and a
/// sequence.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// #[derive(ShmMessage, serde::Serialize, serde::Deserialize)]
/// #[repr(C)]
/// struct Blob {
///     #[serde(with = "ipc_runtime::wire::bytes")]
///     data: ShmVec<u8>,
/// }
///
/// // A peer with a plain `Vec<u8>` writes the same bytes.
/// #[derive(serde::Serialize)]
/// struct Remote { data: Vec<u8> }
/// let bytes = postcard::to_stdvec(&Remote { data: vec![1, 2, 3] })?;
///
/// let blob: Blob = postcard::from_bytes(&bytes)?;
/// assert_eq!(blob.data, [1, 2, 3]);
/// assert_eq!(postcard::to_stdvec(&blob)?, bytes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub mod bytes {
    use serde::{Deserializer, Serializer, ser};

    use crate::containers::ShmVec;

    /// Writes `v` as a byte string.
    ///
    /// # Errors
    /// The serializer's; a vector another process wrote that does not resolve is a custom error.
    pub fn serialize<S: Serializer>(v: &ShmVec<u8>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(v.try_as_slice().map_err(ser::Error::custom)?)
    }

    /// Reads a byte string (or a sequence of `u8`) into a vector in this process's shared heap.
    ///
    /// # Errors
    /// The deserializer's, and a custom error naming `ShmVec<u8>` and the length when the heap
    /// cannot hold it (a [`HeapFailure`](super::HeapFailure) through [`super::deserialize`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ShmVec<u8>, D::Error> {
        deserializer.deserialize_bytes(crate::containers::serde_impls::BytesVisitor)
    }
}

/// A received sample serializes as its message.
impl<M: ShmMessage + Serialize, B: WaitBackend> Serialize for Sample<'_, M, B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        M::serialize(self, serializer)
    }
}

/// A loaned (initialised) sample serializes as its message.
impl<M: ShmMessage + Send + Serialize, B: WaitBackend> Serialize for SampleMut<'_, M, B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        M::serialize(self, serializer)
    }
}
