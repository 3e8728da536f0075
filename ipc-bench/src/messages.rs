//! What crosses between the processes, and how each message is prepared *outside* the clock.
//!
//! * [`Fixed<N>`] — a plain `[u8; N]` (8 B, 1 KiB, 64 KiB). The first 8 bytes carry the sequence
//!   number. Up to 64 B it is published by value (the natural call for a small message; the
//!   8-byte move is inside the clock); larger ones are built in a slot loaned from the
//!   publisher's pool ([`Publisher::loan_uninit`]) before the clock starts, so the clock covers
//!   `SampleMut::publish` only — no 64 KiB stack copy, no fill.
//! * [`Blob`] — a sequence number and a `ShmVec<u8>` of 8 B … 4 MiB, copied from a prefilled
//!   process-local buffer into the publisher's shared heap before the clock starts; the clock
//!   covers `publish` (which moves the 32-byte `Blob`; the bytes stay where they are). Dropping a
//!   returned `Blob` (freeing its 4 MiB) happens in the publisher, inside a later `publish`, as it
//!   would in any application.
//! * [`Ack`] — the 16-byte reply: the sequence number it answers and when it was received
//!   ([`ipc_runtime::timestamp`], comparable across processes). The echoing side never copies or
//!   re-publishes the payload.
//!
//! The receiving side reads the sequence number and the payload's *last* byte (for a `Blob`
//! also its length), which proves the message is mapped and readable without turning the
//! measurement into a memory-bandwidth test.

use std::fmt;

use ipc_runtime::prelude::*;

/// Sequence number that tells an echoing child to stop.
pub const STOP: u64 = u64::MAX;

/// A fixed-size payload of `N` bytes (`N ≥ 8`).
#[derive(ShmMessage)]
#[repr(C)]
pub struct Fixed<const N: usize>(pub [u8; N]);

/// A dynamically sized payload in the publisher's shared heap.
#[derive(ShmMessage)]
#[repr(C)]
pub struct Blob {
    /// Sequence number.
    pub seq: u64,
    /// The payload, prefilled.
    pub data: ShmVec<u8>,
}

/// The reply to every ping.
#[derive(ShmMessage, Debug, Clone, Copy)]
#[repr(C)]
pub struct Ack {
    /// The sequence number answered.
    pub seq: u64,
    /// When the ping was received (`ipc_runtime::timestamp()`, nanoseconds).
    pub received: i64,
}

/// The payloads measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// `Fixed<N>`, `N` bytes.
    Fixed(usize),
    /// `Blob` with a `ShmVec<u8>` of this many bytes.
    Vec(usize),
}

impl PayloadKind {
    /// Every payload of the latency matrix, in table order.
    pub const ALL: [PayloadKind; 7] = [
        PayloadKind::Fixed(8),
        PayloadKind::Fixed(1024),
        PayloadKind::Fixed(64 << 10),
        PayloadKind::Vec(8),
        PayloadKind::Vec(64 << 10),
        PayloadKind::Vec(1 << 20),
        PayloadKind::Vec(4 << 20),
    ];

    /// Payload size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            PayloadKind::Fixed(n) | PayloadKind::Vec(n) => n,
        }
    }

    /// Short machine name: `fixed-8`, `vec-4194304`.
    pub fn key(self) -> String {
        match self {
            PayloadKind::Fixed(n) => format!("fixed-{n}"),
            PayloadKind::Vec(n) => format!("vec-{n}"),
        }
    }

    /// Parses [`key`](Self::key)'s output.
    pub fn parse(key: &str) -> Option<Self> {
        let (kind, n) = key.split_once('-')?;
        let n = n.parse().ok()?;
        match kind {
            "fixed" => Some(PayloadKind::Fixed(n)),
            "vec" => Some(PayloadKind::Vec(n)),
            _ => None,
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PayloadKind::Fixed(n) => write!(f, "[u8; {}]", size_label(n)),
            PayloadKind::Vec(n) => write!(f, "ShmVec<u8> {}", size_label(n)),
        }
    }
}

/// `8 B`, `1 KiB`, `4 MiB`.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// A message ready to go: either a value to move into the pool or a slot already built in place.
pub enum Outgoing<'p, M: ShmMessage + Send> {
    /// Published with [`Publisher::publish`].
    Value(M),
    /// Published with [`SampleMut::publish`].
    Loaned(SampleMut<'p, M>),
}

impl<M: ShmMessage + Send> Outgoing<'_, M> {
    /// Publishes it: the only part of sending that is inside the clock.
    #[inline]
    pub fn send(self, publisher: &Publisher<M>) -> Result<(), Error> {
        match self {
            Outgoing::Value(message) => publisher.publish(message),
            Outgoing::Loaned(sample) => sample.publish(),
        }
    }
}

/// A payload type of the benchmark.
pub trait Payload: ShmMessage + Send + Sync + Sized + 'static {
    /// Process-local data kept between messages (the prefilled bytes of a `ShmVec` payload).
    type Source;

    /// Makes the source for `kind`.
    fn source(kind: PayloadKind) -> Self::Source;

    /// Builds message `seq` (outside the clock).
    fn prepare<'p>(
        publisher: &'p Publisher<Self>,
        seq: u64,
        source: &Self::Source,
    ) -> Result<Outgoing<'p, Self>, Error>;

    /// The sequence number it carries.
    fn seq(&self) -> u64;

    /// Payload length in bytes as the receiver sees it.
    fn payload_len(&self) -> usize;

    /// The payload's last byte.
    fn last_byte(&self) -> u8;
}

/// The byte every payload is filled with.
pub const FILL: u8 = 0xA5;

impl<const N: usize> Payload for Fixed<N> {
    type Source = ();

    fn source(_: PayloadKind) -> Self::Source {}

    #[inline]
    fn prepare<'p>(
        publisher: &'p Publisher<Self>,
        seq: u64,
        (): &(),
    ) -> Result<Outgoing<'p, Self>, Error> {
        const { assert!(N >= 8, "a fixed payload carries an 8-byte sequence number") };
        if N <= 64 {
            let mut bytes = [FILL; N];
            bytes[..8].copy_from_slice(&seq.to_le_bytes());
            return Ok(Outgoing::Value(Fixed(bytes)));
        }
        let mut slot = publisher.loan_uninit()?;
        let bytes = slot.as_mut_ptr().cast::<u8>();
        // SAFETY: `bytes` points at the loaned slot's `Fixed<N>`, which is `repr(C)` around
        // `[u8; N]` (size N, alignment 1) and exclusively ours until published; we write all N
        // bytes, the first 8 of them twice.
        unsafe {
            bytes.write_bytes(FILL, N);
            bytes.cast::<[u8; 8]>().write(seq.to_le_bytes());
        }
        // SAFETY: every byte of the `Fixed<N>` was initialised just above, and any byte values
        // are a valid `[u8; N]`.
        Ok(Outgoing::Loaned(unsafe { slot.assume_init() }))
    }

    #[inline]
    fn seq(&self) -> u64 {
        let mut head = [0; 8];
        head.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(head)
    }

    fn payload_len(&self) -> usize {
        N
    }

    #[inline]
    fn last_byte(&self) -> u8 {
        self.0[N - 1]
    }
}

impl Payload for Blob {
    type Source = Vec<u8>;

    fn source(kind: PayloadKind) -> Vec<u8> {
        vec![FILL; kind.bytes()]
    }

    #[inline]
    fn prepare<'p>(
        _: &'p Publisher<Self>,
        seq: u64,
        source: &Vec<u8>,
    ) -> Result<Outgoing<'p, Self>, Error> {
        let mut data = ShmVec::try_with_capacity(source.len())?;
        data.extend_from_slice(source);
        Ok(Outgoing::Value(Blob { seq, data }))
    }

    #[inline]
    fn seq(&self) -> u64 {
        self.seq
    }

    fn payload_len(&self) -> usize {
        self.data.len()
    }

    #[inline]
    fn last_byte(&self) -> u8 {
        self.data.last().copied().unwrap_or(0)
    }
}

/// Calls `$f::<M>(args…)` with the message type `M` of payload `$kind`.
macro_rules! with_payload {
    ($kind:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $kind {
            $crate::messages::PayloadKind::Fixed(8) => $f::<$crate::messages::Fixed<8>>($($arg),*),
            $crate::messages::PayloadKind::Fixed(1024) => {
                $f::<$crate::messages::Fixed<1024>>($($arg),*)
            }
            $crate::messages::PayloadKind::Fixed(65536) => {
                $f::<$crate::messages::Fixed<65536>>($($arg),*)
            }
            $crate::messages::PayloadKind::Vec(_) => $f::<$crate::messages::Blob>($($arg),*),
            $crate::messages::PayloadKind::Fixed(n) => {
                return Err(format!("no fixed payload type of {n} bytes is compiled in").into())
            }
        }
    };
}

pub(crate) use with_payload;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_labels_read_well() {
        for kind in PayloadKind::ALL {
            assert_eq!(PayloadKind::parse(&kind.key()), Some(kind));
        }
        assert_eq!(PayloadKind::Vec(4 << 20).to_string(), "ShmVec<u8> 4 MiB");
        assert_eq!(PayloadKind::Fixed(1024).to_string(), "[u8; 1 KiB]");
        assert_eq!(size_label(8), "8 B");
    }
}
