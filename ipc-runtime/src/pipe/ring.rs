//! The ring's index arithmetic, kept apart from memory so it can be tested on its own.
//!
//! Positions are byte counts since the pipe was created: 64-bit, only ever increasing, never
//! reduced modulo the capacity (2⁶⁴ bytes do not wrap in practice). The writer owns the write
//! position `w`, the reader the read position `r`; bytes `r..w` are readable and
//! `capacity - (w - r)` bytes are free. A position read from the other side is untrusted: it
//! must keep `r <= w <= r + capacity`, or the pipe is corrupt ([`Bad`]).

use std::fmt;

/// A position the other side published that breaks `r <= w <= r + capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// The write position is behind the read position.
    Behind { write: u64, read: u64 },
    /// The write position is more than a capacity ahead of the read position.
    Ahead { write: u64, read: u64, capacity: u64 },
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Bad::Behind { write, read } => {
                write!(f, "write position {write} is behind read position {read}")
            }
            Bad::Ahead { write, read, capacity } => write!(
                f,
                "write position {write} is more than the capacity ({capacity}) ahead of read position {read}"
            ),
        }
    }
}

/// Bytes readable between read position `read` and write position `write`.
pub(crate) fn readable(write: u64, read: u64, capacity: u64) -> Result<u64, Bad> {
    match write.checked_sub(read) {
        None => Err(Bad::Behind { write, read }),
        Some(n) if n > capacity => Err(Bad::Ahead { write, read, capacity }),
        Some(n) => Ok(n),
    }
}

/// Bytes free for the writer.
pub(crate) fn writable(write: u64, read: u64, capacity: u64) -> Result<u64, Bad> {
    readable(write, read, capacity).map(|used| capacity - used)
}

/// Offset in the ring of position `pos` (`capacity` a power of two).
pub(crate) fn offset(pos: u64, capacity: u64) -> usize {
    (pos & (capacity - 1)) as usize
}

/// How a run of `len` bytes from position `pos` falls into the ring without a mirror: the part
/// up to the end, then the part from the start.
pub(crate) fn split(pos: u64, len: usize, capacity: u64) -> (usize, usize) {
    let first = len.min(capacity as usize - offset(pos, capacity));
    (first, len - first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u64 = 1 << 16;

    #[test]
    fn empty_full_and_between() {
        assert_eq!(readable(0, 0, CAP), Ok(0));
        assert_eq!(writable(0, 0, CAP), Ok(CAP));
        assert_eq!(readable(CAP, 0, CAP), Ok(CAP));
        assert_eq!(writable(CAP, 0, CAP), Ok(0));
        assert_eq!(readable(10 * CAP + 5, 10 * CAP, CAP), Ok(5));
        assert_eq!(writable(10 * CAP + 5, 10 * CAP, CAP), Ok(CAP - 5));
        // Near the end of the position space.
        assert_eq!(readable(u64::MAX, u64::MAX - 3, CAP), Ok(3));
    }

    #[test]
    fn bad_positions_are_refused() {
        assert_eq!(readable(4, 5, CAP), Err(Bad::Behind { write: 4, read: 5 }));
        assert_eq!(
            readable(CAP + 1, 0, CAP),
            Err(Bad::Ahead { write: CAP + 1, read: 0, capacity: CAP })
        );
        assert!(writable(u64::MAX, 0, CAP).is_err());
        assert!(writable(0, u64::MAX, CAP).is_err());
        assert!(Bad::Behind { write: 4, read: 5 }.to_string().contains("behind"));
    }

    #[test]
    fn wrap() {
        assert_eq!(offset(0, CAP), 0);
        assert_eq!(offset(CAP, CAP), 0);
        assert_eq!(offset(3 * CAP + 7, CAP), 7);
        assert_eq!(split(0, 100, CAP), (100, 0));
        assert_eq!(split(CAP - 10, 100, CAP), (10, 90));
        assert_eq!(split(5 * CAP - 1, 1, CAP), (1, 0));
        assert_eq!(split(5 * CAP, CAP as usize, CAP), (CAP as usize, 0));
        assert_eq!(split(5 * CAP + 1, CAP as usize, CAP), (CAP as usize - 1, 1));
    }
}
