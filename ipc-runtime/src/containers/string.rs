//! [`ShmString`]: a growable UTF-8 string in the shared heap.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::mem::{align_of, size_of};
use core::ops::Deref;
use core::str::Utf8Error;

use crate::error::{Error, Result};
use crate::heap;
use crate::message::{ShmSafe, fingerprint};

use super::ShmVec;

/// A growable UTF-8 string in shared memory, with the feel of [`String`].
///
/// A `ShmString` is a [`ShmVec<u8>`] that holds valid UTF-8. Strings built in this process are
/// valid by construction. A string whose bytes are in another process's heap is checked on every
/// [`as_str`](Self::as_str) (a fast SIMD-friendly scan), because the bytes come from outside this
/// process: invalid UTF-8 there panics with a clear message, and [`try_as_str`](Self::try_as_str)
/// reports it as an error instead.
///
/// Why on every access rather than once per sample: a `ShmString` has nowhere to remember that
/// it was checked (its bytes and header are the writer's read-only memory), and a check made
/// once and trusted later would be only as good as the writer's promise not to change the bytes
/// afterwards. The skip for strings of this process's own heap is sound because a string read
/// from another process's memory can never point into our heap (see
/// [`RelPtr::resolve_held`](crate::ptr::RelPtr::resolve_held)): our heap holds only what we
/// wrote.
///
/// ```
/// use ipc_runtime::ShmString;
///
/// let mut s = ShmString::from("hello");
/// s.push_str(", world");
/// s.push('!');
/// assert_eq!(s, "hello, world!");
/// assert_eq!(s.len(), 13);
/// assert!(s.starts_with("hello"));
/// ```
#[repr(C)]
#[derive(Default, Clone)]
pub struct ShmString {
    bytes: ShmVec<u8>,
}

// SAFETY: a `ShmVec<u8>` holding UTF-8; position-independent like the vector.
unsafe impl ShmSafe for ShmString {
    const LAYOUT_FINGERPRINT: u64 =
        fingerprint::named("ShmString", size_of::<Self>(), align_of::<Self>());
    // A subscriber checks, when it receives a message, that the bytes resolve (as for any
    // vector) and are UTF-8, so a forged string is an invalid message naming its field. The
    // accessors check UTF-8 again on every access to bytes in another process's memory.
    const MAY_BE_INVALID: bool = true;
    unsafe fn check_bits(value: *const Self) -> Result<(), crate::message::InvalidValue> {
        // SAFETY: the caller vouches for the string's bytes; `bytes` is its only field.
        let (ptr, len, cap) = unsafe { ShmVec::raw_parts(core::ptr::addr_of!((*value).bytes)) };
        crate::message::validity::utf8(value.cast(), ptr, len, cap)
    }
}

impl ShmString {
    /// An empty string; allocates nothing.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmString::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        ShmString { bytes: ShmVec::new() }
    }

    /// An empty string with room for `capacity` bytes.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmString::with_capacity(10).capacity() >= 10);
    /// ```
    #[track_caller]
    pub fn with_capacity(capacity: usize) -> Self {
        ShmString { bytes: ShmVec::with_capacity(capacity) }
    }

    /// A copy of `s` in the shared heap, or an error when out of memory.
    ///
    /// ```
    /// assert_eq!(ipc_runtime::ShmString::try_from_str("x").unwrap(), "x");
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfMemory`](crate::Error::OutOfMemory) if the heap cannot hold `s` (saying
    /// which `IPC_HEAP_SIZE` would), and on first use the errors of creating the process's
    /// heap ([`heap::default_heap`](crate::heap::default_heap)).
    pub fn try_from_str(s: &str) -> Result<Self> {
        let mut bytes = ShmVec::try_with_capacity(s.len())?;
        bytes.extend_from_slice(s.as_bytes());
        Ok(ShmString { bytes })
    }

    /// Appends a string slice.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmString::new();
    /// s.push_str("ab");
    /// assert_eq!(s.as_str(), "ab");
    /// ```
    #[track_caller]
    pub fn push_str(&mut self, s: &str) {
        self.bytes.extend_from_slice(s.as_bytes());
    }

    /// Appends a character.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmString::new();
    /// s.push('é');
    /// assert_eq!(s.len(), 2);
    /// ```
    #[track_caller]
    pub fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    /// Removes and returns the last character.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmString::from("ab");
    /// assert_eq!(s.pop(), Some('b'));
    /// assert_eq!(s, "a");
    /// ```
    pub fn pop(&mut self) -> Option<char> {
        let c = self.as_str().chars().next_back()?;
        self.bytes.truncate(self.len() - c.len_utf8());
        Some(c)
    }

    /// Shortens the string to `len` bytes. Panics if `len` is not on a character boundary.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmString::from("hello");
    /// s.truncate(2);
    /// assert_eq!(s, "he");
    /// ```
    #[track_caller]
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            assert!(self.as_str().is_char_boundary(len), "truncate({len}) is not a char boundary");
            self.bytes.truncate(len);
        }
    }

    /// Removes all text, keeping the capacity.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmString::from("x");
    /// s.clear();
    /// assert!(s.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Makes room for `additional` more bytes.
    ///
    /// ```
    /// let mut s = ipc_runtime::ShmString::new();
    /// s.reserve(8);
    /// assert!(s.capacity() >= 8);
    /// ```
    #[track_caller]
    pub fn reserve(&mut self, additional: usize) {
        self.bytes.reserve(additional);
    }

    /// Makes room for `additional` more bytes, or returns an error.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmString::new().try_reserve(8).is_ok());
    /// ```
    ///
    /// # Errors
    /// [`Error::CapacityOverflow`](crate::Error::CapacityOverflow) if the size overflows,
    /// [`Error::OutOfMemory`](crate::Error::OutOfMemory) if the heap cannot hold it.
    pub fn try_reserve(&mut self, additional: usize) -> Result<()> {
        self.bytes.try_reserve(additional)
    }

    /// Length in bytes.
    ///
    /// ```
    /// assert_eq!(ipc_runtime::ShmString::from("abc").len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the string is empty.
    ///
    /// ```
    /// assert!(ipc_runtime::ShmString::from("").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Capacity in bytes.
    ///
    /// ```
    /// assert_eq!(ipc_runtime::ShmString::new().capacity(), 0);
    /// ```
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The raw bytes.
    ///
    /// ```
    /// assert_eq!(ipc_runtime::ShmString::from("hi").as_bytes(), b"hi");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the bytes are in this process's own heap, so were written by this process (and
    /// are therefore valid UTF-8 by construction): a string stored in another process's memory
    /// never resolves into our heap (`ShmVec::try_as_slice` refuses it).
    fn is_local(&self) -> bool {
        let p = self.bytes.rel_ptr();
        p.is_null() || heap::try_default().is_some_and(|h| h.id() == p.segment())
    }

    /// The text, or an error if another process wrote invalid UTF-8 into it (checked on every
    /// call for strings not of this process's heap) or a bad pointer (see
    /// [`ShmVec::try_as_slice`]).
    ///
    /// ```
    /// assert_eq!(ipc_runtime::ShmString::from("ok").try_as_str().unwrap(), "ok");
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming the segment for invalid UTF-8, and the errors of
    /// [`ShmVec::try_as_slice`].
    pub fn try_as_str(&self) -> Result<&str> {
        let bytes = self.bytes.try_as_slice()?;
        if self.is_local() {
            // SAFETY: every method that writes bytes into a string of this process's heap
            // writes valid UTF-8 (push_str/push/from) or cuts at a char boundary; bytes of our
            // heap reached through another process's memory were refused just above.
            Ok(unsafe { core::str::from_utf8_unchecked(bytes) })
        } else {
            core::str::from_utf8(bytes).map_err(|e| self.invalid_utf8(e))
        }
    }

    #[cold]
    fn invalid_utf8(&self, e: Utf8Error) -> Error {
        let p = self.bytes.rel_ptr();
        Error::Corrupted {
            what: format!(
                "ShmString at {}+{:#x} holds invalid UTF-8 written by another process: {e}",
                crate::ptr::table().describe(p.segment()),
                p.offset()
            ),
        }
    }

    /// The text. Panics if another process wrote invalid UTF-8 into it or a bad pointer.
    ///
    /// ```
    /// assert_eq!(ipc_runtime::ShmString::from("ok").as_str(), "ok");
    /// ```
    #[track_caller]
    pub fn as_str(&self) -> &str {
        match self.try_as_str() {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }
}

impl Deref for ShmString {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ShmString {
    fn as_ref(&self) -> &str {
        self
    }
}

impl AsRef<[u8]> for ShmString {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for ShmString {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<&str> for ShmString {
    #[track_caller]
    fn from(s: &str) -> Self {
        let mut out = ShmString::with_capacity(s.len());
        out.push_str(s);
        out
    }
}

impl From<&String> for ShmString {
    #[track_caller]
    fn from(s: &String) -> Self {
        ShmString::from(s.as_str())
    }
}

/// A copy of the string in the shared heap (the `String` is freed: its heap is process-local).
///
/// ```
/// use ipc_runtime::ShmString;
///
/// let name = String::from("robot-") + "arm";
/// assert_eq!(ShmString::from(name), "robot-arm");
/// ```
impl From<String> for ShmString {
    #[track_caller]
    fn from(s: String) -> Self {
        ShmString::from(s.as_str())
    }
}

/// A copy of the string in the shared heap.
///
/// ```
/// use ipc_runtime::ShmString;
///
/// let boxed: Box<str> = "camera-0".into();
/// assert_eq!(ShmString::from(boxed), "camera-0");
/// ```
impl From<Box<str>> for ShmString {
    #[track_caller]
    fn from(s: Box<str>) -> Self {
        ShmString::from(&*s)
    }
}

impl From<char> for ShmString {
    fn from(c: char) -> Self {
        ShmString::from(c.encode_utf8(&mut [0; 4]) as &str)
    }
}

impl From<&ShmString> for String {
    fn from(s: &ShmString) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Display for ShmString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for ShmString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Write for ShmString {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes.try_reserve(s.len()).map_err(|_| fmt::Error)?;
        self.push_str(s);
        Ok(())
    }
}

impl PartialEq for ShmString {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ShmString {}

impl PartialEq<str> for ShmString {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for ShmString {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for ShmString {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<ShmString> for str {
    fn eq(&self, other: &ShmString) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<ShmString> for &str {
    fn eq(&self, other: &ShmString) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialOrd for ShmString {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShmString {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for ShmString {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Extend<char> for ShmString {
    fn extend<I: IntoIterator<Item = char>>(&mut self, iter: I) {
        for c in iter {
            self.push(c);
        }
    }
}

impl<'a> Extend<&'a str> for ShmString {
    fn extend<I: IntoIterator<Item = &'a str>>(&mut self, iter: I) {
        for s in iter {
            self.push_str(s);
        }
    }
}

impl FromIterator<char> for ShmString {
    fn from_iter<I: IntoIterator<Item = char>>(iter: I) -> Self {
        let mut s = ShmString::new();
        s.extend(iter);
        s
    }
}

impl<'a> FromIterator<&'a str> for ShmString {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut s = ShmString::new();
        s.extend(iter);
        s
    }
}
