//! Message types: what may live in shared memory ([`ShmSafe`]), what may be sent
//! ([`ShmMessage`]); binding a type to a topic is [`Topic`](crate::Topic), in `pubsub`.
//!
//! Shared memory is mapped at a different address in every process, and each process has its
//! own allocator, file descriptors and vtables. A type may be placed in shared memory only if its
//! bytes mean the same thing in every process that maps them: that is what [`ShmSafe`] promises.
//! `#[derive(ShmMessage)]` proves it for a user's type at compile time, and computes a layout
//! [fingerprint](ShmMessage::FINGERPRINT) that publishers and subscribers compare at run time so
//! two programs with different definitions of "the same" type never exchange bytes.
//!
//! # Readers never trust the writer
//!
//! A subscriber reads a message in memory that another process wrote and that it maps
//! read-only. Two rules keep that sound whatever the writer did:
//!
//! - **No interior mutability.** Atomics, `Cell`, `RefCell`, `OnceCell` and `UnsafeCell` are
//!   not [`ShmSafe`], so no message type (derived or built from the impls here) contains one,
//!   however deeply nested. A reader could otherwise write through `&self` into its read-only
//!   mapping (a `fetch_add` on a received `AtomicU64` faults), and a value that may change under
//!   a `&T` breaks what `&T` promises. The compiler says so at the field:
//!
//! ```compile_fail,E0277
//! use ipc_runtime::prelude::*;
//! use std::sync::atomic::AtomicU64;
//!
//! #[derive(ShmMessage)]
//! #[repr(C)]
//! struct Counter {
//!     hits: AtomicU64, // error: `AtomicU64` has interior mutability: a subscriber maps messages read-only ...
//! }
//! ```
//!
//! - **Bit validity is checked.** Types with invalid bit patterns (`bool`, `char`, enums,
//!   `NonZero*`, and arrays, tuples, structs and containers holding them) say so in
//!   [`ShmSafe::MAY_BE_INVALID`] and check a value's bytes in [`ShmSafe::check_bits`], which
//!   `#[derive(ShmMessage)]` generates. A subscriber runs the check on every sample before its
//!   reader sees it; a sample that fails is returned to its publisher and
//!   [`Subscriber::try_receive`](crate::Subscriber::try_receive) reports
//!   [`Error::InvalidMessage`](crate::Error::InvalidMessage), naming the topic, the publisher,
//!   the field (`Reading.status`, `Frame.flags[3]`) and the value found. For a type without
//!   invalid bit patterns `MAY_BE_INVALID` is `false` and the check compiles to nothing.
//!   Elements of a [`ShmVec`](crate::ShmVec) and the value of a [`ShmBox`](crate::ShmBox) are
//!   checked too, at receive, through the same bounds-checked pointer resolution as a deref.
//!   (A message that travels inside its ring entry is checked on the subscriber's own copy. One
//!   in a pool slot is checked in place: a publisher that breaks the protocol by rewriting a
//!   slot after delivering it, in its own memory, can still change it after the check.)
//!
//! `Option<T>` is `ShmSafe` only where Rust guarantees its layout (`Option<NonZero*>`): the
//! layout of any other `Option` is unspecified, so no reader can check its tag. Use an enum
//! with `#[repr(C, u8)]` instead (`enum Maybe<T> { Nothing, Just(T) }`).

use core::cell::{Cell, OnceCell, RefCell, UnsafeCell};
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::num::NonZero;
use core::sync::atomic;

pub use validity::InvalidValue;

/// Types whose bytes mean the same thing in every process that maps them.
///
/// Implemented for integers, floats, `bool`, `char`, `()`, `NonZero*`, arrays and tuples of
/// `ShmSafe` types, [`PhantomData`], `Option<NonZero*>`, the shared containers
/// ([`ShmVec`](crate::ShmVec), [`ShmString`](crate::ShmString), [`ShmBox`](crate::ShmBox)), and
/// every `#[derive(ShmMessage)]` type.
///
/// Deliberately *not* implemented for references, raw pointers, `NonNull`, `Box`, `Vec`,
/// `String`, `Rc`, `Arc`, function pointers, trait objects, or anything holding a process-local
/// handle (files, sockets, mutexes); nor for types with interior mutability (atomics, `Cell`,
/// `RefCell`, `OnceCell`, `UnsafeCell`), which a reader of a read-only mapping must not have;
/// nor for `Option<T>` other than `Option<NonZero*>`, whose layout Rust leaves unspecified (see
/// [the module documentation](self)).
///
/// # Safety
///
/// Implementing this trait promises that a value of the type, copied byte for byte into another
/// process, is valid there and means the same: it contains no absolute addresses, no
/// process-local handles, and no references to memory outside shared segments (relocatable
/// pointers such as those inside `ShmVec` are fine). It also promises:
///
/// - no interior mutability: no `UnsafeCell` anywhere in the type (atomics and cells contain
///   one), since readers map messages read-only and hold `&Self` while the writer may not
///   change the value;
/// - bit validity is checked: if any bit pattern of the bytes a value keeps initialised is not a
///   valid value, [`MAY_BE_INVALID`](Self::MAY_BE_INVALID) is `true` and
///   [`check_bits`](Self::check_bits) accepts exactly the valid ones.
///
/// Prefer `#[derive(ShmMessage)]`, which checks all of this for you.
///
/// ```compile_fail,E0277
/// use ipc_runtime::prelude::*;
///
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Bad {
///     name: String, // error: `String` cannot be placed in shared memory
/// }
/// ```
///
/// Generic code asks for `T: ShmSafe` to accept anything that may live in shared memory:
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// fn same_layout<A: ShmSafe, B: ShmSafe>() -> bool {
///     A::LAYOUT_FINGERPRINT == B::LAYOUT_FINGERPRINT
/// }
///
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Pose {
///     x: f64,
/// }
///
/// assert!(same_layout::<Pose, Pose>());
/// assert!(!same_layout::<Pose, [f64; 1]>());
/// assert!(!same_layout::<[Pose; 1], ShmVec<Pose>>());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be placed in shared memory",
    label = "`{Self}` is not `ShmSafe`",
    note = "shared memory is mapped at a different address in every process, so pointers, references, heap handles (`Box`, `Vec`, `String`, `Rc`, `Arc`) and OS handles mean nothing there",
    note = "use `ShmVec<T>`, `ShmString` or `ShmBox<T>` for dynamically sized data, and `#[derive(ShmMessage)]` with `#[repr(C)]` for your own types"
)]
pub unsafe trait ShmSafe: Sized + 'static {
    /// A hash of the type's layout, combined into the fingerprints of types containing it.
    ///
    /// The default covers size and alignment only; the built-in impls also hash the type's name,
    /// and derived types use their full [`ShmMessage::FINGERPRINT`].
    const LAYOUT_FINGERPRINT: u64 =
        fingerprint::layout(fingerprint::START, size_of::<Self>(), align_of::<Self>());

    /// Whether every byte of every value is initialised: no padding, no uninitialised space
    /// (bytemuck's `NoUninit`). Such a value can be copied as machine words, which is how
    /// publish/subscribe carries small messages inside a ring entry.
    ///
    /// The default is `false`; `true` is part of the unsafe contract. Integers, floats,
    /// `bool`, `char` and `()` are `true`, arrays of such types too, and
    /// `#[derive(ShmMessage)]` computes it for structs (all fields `true` and no padding
    /// between or after them).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Tight {
    ///     a: u32,
    ///     b: u32,
    /// }
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Padded {
    ///     a: u8,
    ///     b: u32,
    /// }
    ///
    /// assert!(<Tight as ShmSafe>::NO_UNINIT);
    /// assert!(!<Padded as ShmSafe>::NO_UNINIT);
    /// assert!(<[f64; 3] as ShmSafe>::NO_UNINIT);
    /// ```
    const NO_UNINIT: bool = false;

    /// Whether some bit patterns are not valid values of the type (`bool`, `char`, enums,
    /// `NonZero*`, or anything containing one), so that bytes written by another process must
    /// pass [`check_bits`](Self::check_bits) before they are read as a `Self`.
    ///
    /// The default is `false`, which is part of the unsafe contract: every bit pattern of the
    /// initialised bytes is a valid value. Readers test it before calling `check_bits`, so for
    /// such types the check costs nothing (the branch is removed at compile time).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Plain {
    ///     x: f64,
    ///     id: [u32; 2],
    /// }
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Flagged {
    ///     x: f64,
    ///     ok: bool,
    /// }
    ///
    /// assert!(!<Plain as ShmSafe>::MAY_BE_INVALID);
    /// assert!(<Flagged as ShmSafe>::MAY_BE_INVALID);
    /// assert!(<[char; 4] as ShmSafe>::MAY_BE_INVALID);
    /// ```
    const MAY_BE_INVALID: bool = false;

    /// Checks that the bytes at `value` are a valid `Self`, without creating a reference to
    /// them: reads go through raw pointers, field by field, and only the bytes of fields with
    /// invalid bit patterns (and, for enums, the tag) are read at all.
    ///
    /// Returns which field failed and what it held (see [`InvalidValue`]). The default accepts
    /// everything, which is right exactly when [`MAY_BE_INVALID`](Self::MAY_BE_INVALID) is
    /// `false`. `#[derive(ShmMessage)]` generates it for structs (every field) and enums (the
    /// tag must be one of the discriminants, then the fields of that variant).
    ///
    /// # Errors
    ///
    /// [`InvalidValue`] naming the path to the first invalid field below `Self` and what it held.
    ///
    /// # Safety
    ///
    /// `value` points to `size_of::<Self>()` bytes that stay readable during the call (they
    /// need not be aligned: fields of packed structs are not), and every byte that a value of
    /// `Self` keeps initialised (all but padding) is initialised, whatever its value.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(u32)]
    /// enum Status {
    ///     Idle,
    ///     Busy,
    /// }
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Reading {
    ///     value: f32,
    ///     status: Status,
    /// }
    ///
    /// // What a faulty or hostile publisher might have written: status 0xdeadbeef.
    /// let bytes: [u32; 2] = [1.5f32.to_bits(), 0xdead_beef];
    /// // SAFETY: 8 initialised bytes, the size of `Reading`.
    /// let err = unsafe { Reading::check_bits(bytes.as_ptr().cast()) }.unwrap_err();
    /// assert_eq!(err.path("Reading"), "Reading.status");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "`.status` holds 0xdeadbeef, which is not a discriminant of `Status` (0, 1)"
    /// );
    ///
    /// let bytes: [u32; 2] = [1.5f32.to_bits(), 1];
    /// // SAFETY: as above.
    /// assert!(unsafe { Reading::check_bits(bytes.as_ptr().cast()) }.is_ok());
    /// ```
    unsafe fn check_bits(value: *const Self) -> Result<(), InvalidValue> {
        let _ = value;
        Ok(())
    }
}

/// A type that can be sent through a topic: [`ShmSafe`] plus a layout fingerprint and a name.
///
/// Implemented by `#[derive(ShmMessage)]` and for the primitive types. The derive (see
/// [its documentation](derive@crate::ShmMessage)) checks the type's representation and fields at
/// compile time and computes [`FINGERPRINT`](Self::FINGERPRINT) from the type's name,
/// representation, size and alignment and each field's name, offset and own fingerprint:
/// identical definitions agree in every crate and program, and any change a reader would
/// notice changes it.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Pose {
///     x: f64,
///     y: f64,
/// }
///
/// assert_eq!(Pose::TYPE_NAME, "Pose");
/// assert_ne!(Pose::FINGERPRINT, <[f64; 2] as ShmSafe>::LAYOUT_FINGERPRINT);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a message type: derive `ShmMessage` for it, or wrap it in a struct that does",
    label = "`{Self}` is not a `ShmMessage`",
    note = "a topic carries a named type with a layout fingerprint; arrays and tuples are fields, not messages: `#[derive(ShmMessage)] #[repr(C)] struct Point([f32; 3]);`"
)]
pub trait ShmMessage: ShmSafe {
    /// Compile-time hash of the type's name, size, alignment and, for each field, its name,
    /// offset and fingerprint. Publishers and subscribers of one topic must agree on it.
    const FINGERPRINT: u64;
    /// The type's name, for error messages and tools.
    const TYPE_NAME: &'static str;
    /// The fields of a struct, in declaration order, as the derive describes them: what a
    /// topic records, so that a participant with another definition of the type is told the
    /// first field that differs. Empty for enums and the primitive types.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Reading {
    ///     stamp: i64,
    ///     values: ShmVec<f32>,
    /// }
    ///
    /// let values = &Reading::FIELDS[1];
    /// assert_eq!((values.name, values.type_name, values.offset), ("values", "ShmVec<f32>", 8));
    /// ```
    const FIELDS: &'static [FieldInfo] = &[];
}

/// One field of a message type, as `#[derive(ShmMessage)]` describes it in
/// [`ShmMessage::FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The field's name (`0`, `1`, ... for tuple structs).
    pub name: &'static str,
    /// The field's type as written in the source (`ShmVec<f32>`, `T`).
    pub type_name: &'static str,
    /// Offset in the message, in bytes.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// The field type's layout fingerprint ([`ShmSafe::LAYOUT_FINGERPRINT`]).
    pub fingerprint: u64,
}

/// Compile-time FNV-1a hashing used for layout fingerprints.
///
/// Public because `#[derive(ShmMessage)]` expands to calls of these functions; the exact values
/// are not a stable interface across versions of this crate (the segment format version is).
pub mod fingerprint {
    /// Initial state of a fingerprint.
    pub const START: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// Hashes `bytes` into `h`.
    pub const fn bytes(mut h: u64, bytes: &[u8]) -> u64 {
        let mut i = 0;
        while i < bytes.len() {
            h ^= bytes[i] as u64;
            h = h.wrapping_mul(PRIME);
            i += 1;
        }
        h
    }

    /// Hashes a string, length-prefixed so that `("ab", "c")` and `("a", "bc")` differ.
    pub const fn str(h: u64, s: &str) -> u64 {
        bytes(u64(h, s.len() as u64), s.as_bytes())
    }

    /// Hashes a 64-bit value.
    pub const fn u64(h: u64, value: u64) -> u64 {
        bytes(h, &value.to_le_bytes())
    }

    /// Hashes a size and an alignment.
    pub const fn layout(h: u64, size: usize, align: usize) -> u64 {
        u64(u64(h, size as u64), align as u64)
    }

    /// Fingerprint of a named type of the given layout.
    pub const fn named(name: &str, size: usize, align: usize) -> u64 {
        layout(str(START, name), size, align)
    }

    /// Hashes a signed 128-bit value (an enum discriminant, of whatever primitive type).
    pub const fn i128(h: u64, value: i128) -> u64 {
        bytes(h, &value.to_le_bytes())
    }

    /// One part of a derived type's fingerprint: `#[derive(ShmMessage)]` expands to a list of
    /// parts folded by [`of`], one part per line, with no local variables (so nothing in the
    /// user's scope can capture a name of the expansion) and no nesting.
    #[derive(Clone, Copy, Debug)]
    pub enum Part {
        /// A string: the type's name, its representation, a variant's name.
        Str(&'static str),
        /// A number: how many fields or variants follow.
        U64(u64),
        /// An enum discriminant, of whatever primitive type.
        I128(i128),
        /// The type's size and alignment.
        Layout(usize, usize),
        /// A struct field: name, offset and the field type's fingerprint, then its size,
        /// whether it has no uninitialised byte (for [`no_uninit`]) and its validity check (for
        /// [`may_be_invalid`] and the derived `check_bits`), which are not hashed; see [`field`].
        Field(&'static str, usize, u64, usize, bool, Validity),
        /// An enum variant's field: name and the field type's fingerprint, then its size,
        /// alignment and validity check (not hashed); see [`variant_field`].
        VariantField(&'static str, u64, usize, usize, Validity),
    }

    /// The [`FieldInfo`](super::FieldInfo)s of a struct from its fingerprint's `parts` (the
    /// `N` [`Part::Field`]s, in order) and its fields' types as written: what the derive emits
    /// as [`ShmMessage::FIELDS`](super::ShmMessage::FIELDS).
    ///
    /// ```
    /// use ipc_runtime::message::fingerprint::{self, Part};
    ///
    /// let parts = [Part::Str("Pair"), fingerprint::field::<u32>("a", 0), fingerprint::field::<u64>("b", 8)];
    /// let [a, b] = fingerprint::field_infos(&parts, ["u32", "u64"]);
    /// assert_eq!((a.name, a.size, b.offset, b.type_name), ("a", 4, 8, "u64"));
    /// ```
    ///
    /// # Panics
    ///
    /// At compile time (in a const) if `parts` has fewer than `N` fields.
    pub const fn field_infos<const N: usize>(
        parts: &[Part],
        types: [&'static str; N],
    ) -> [super::FieldInfo; N] {
        let empty =
            super::FieldInfo { name: "", type_name: "", offset: 0, size: 0, fingerprint: 0 };
        let mut out = [empty; N];
        let (mut i, mut n) = (0, 0);
        while i < parts.len() {
            if let Part::Field(name, offset, fingerprint, size, _, _) = parts[i] {
                assert!(n < N, "more fields than field types");
                out[n] = super::FieldInfo { name, type_name: types[n], offset, size, fingerprint };
                n += 1;
            }
            i += 1;
        }
        assert!(n == N, "fewer fields than field types");
        out
    }

    /// The fingerprint of a derived type: all `parts`, in order, hashed from [`START`].
    ///
    /// ```
    /// use ipc_runtime::message::fingerprint::{self, Part};
    ///
    /// #[repr(C)]
    /// struct Pose {
    ///     x: f64,
    /// }
    ///
    /// const FP: u64 = fingerprint::of(&[
    ///     Part::Str("Pose"),
    ///     Part::Str("C"),
    ///     Part::Layout(size_of::<Pose>(), align_of::<Pose>()),
    ///     Part::U64(1),
    ///     fingerprint::field::<f64>("x", core::mem::offset_of!(Pose, x)),
    /// ]);
    /// assert_ne!(FP, fingerprint::of(&[Part::Str("Pose")]));
    /// ```
    pub const fn of(parts: &[Part]) -> u64 {
        let mut h = START;
        let mut i = 0;
        while i < parts.len() {
            h = match parts[i] {
                Part::Str(s) => str(h, s),
                Part::U64(value) => u64(h, value),
                Part::I128(value) => i128(h, value),
                Part::Layout(size, align) => layout(h, size, align),
                Part::Field(name, offset, fingerprint, ..) => {
                    u64(u64(str(h, name), offset as u64), fingerprint)
                }
                Part::VariantField(name, fingerprint, ..) => u64(str(h, name), fingerprint),
            };
            i += 1;
        }
        h
    }

    /// A struct field's part: its name, its offset and its type's
    /// [`LAYOUT_FINGERPRINT`](super::ShmSafe::LAYOUT_FINGERPRINT).
    ///
    /// The bound `T: ShmSafe` is also the derive's proof that the field may live in shared
    /// memory: `#[derive(ShmMessage)]` calls `field::<FieldType>(..)` with the field type's own
    /// span, so a field that is not `ShmSafe` fails to compile right at that type, with the
    /// message of [`ShmSafe`](super::ShmSafe)'s `#[diagnostic::on_unimplemented]`.
    pub const fn field<T: super::ShmSafe>(name: &'static str, offset: usize) -> Part {
        Part::Field(
            name,
            offset,
            T::LAYOUT_FINGERPRINT,
            size_of::<T>(),
            T::NO_UNINIT,
            Validity::of::<T>(),
        )
    }

    /// A field type's validity: whether it may be invalid
    /// ([`ShmSafe::MAY_BE_INVALID`](super::ShmSafe::MAY_BE_INVALID)) and its
    /// [`check_bits`](super::ShmSafe::check_bits), on untyped bytes.
    #[derive(Clone, Copy)]
    pub struct Validity {
        /// `MAY_BE_INVALID` of the field's type.
        pub may_be_invalid: bool,
        /// `check_bits` of the field's type.
        pub check: unsafe fn(*const u8) -> Result<(), super::InvalidValue>,
    }

    impl Validity {
        /// The validity of `T`.
        pub const fn of<T: super::ShmSafe>() -> Self {
            Validity { may_be_invalid: T::MAY_BE_INVALID, check: check_erased::<T> }
        }
    }

    impl core::fmt::Debug for Validity {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Validity").field("may_be_invalid", &self.may_be_invalid).finish()
        }
    }

    /// `T::check_bits` on untyped bytes.
    ///
    /// # Safety
    ///
    /// As for [`ShmSafe::check_bits`](super::ShmSafe::check_bits) of `T`, at `at`.
    unsafe fn check_erased<T: super::ShmSafe>(at: *const u8) -> Result<(), super::InvalidValue> {
        // SAFETY: the caller's promise, passed on.
        unsafe { T::check_bits(at.cast::<T>()) }
    }

    /// [`ShmSafe::MAY_BE_INVALID`](super::ShmSafe::MAY_BE_INVALID) of a struct, from the parts
    /// of its fingerprint (like [`no_uninit`]): whether any field may be invalid.
    pub const fn may_be_invalid(parts: &[Part]) -> bool {
        let mut i = 0;
        while i < parts.len() {
            match parts[i] {
                Part::Field(.., validity) | Part::VariantField(.., validity)
                    if validity.may_be_invalid =>
                {
                    return true;
                }
                _ => {}
            }
            i += 1;
        }
        false
    }

    /// [`ShmSafe::NO_UNINIT`](super::ShmSafe::NO_UNINIT) of a struct, from the parts of its
    /// fingerprint (the derive passes the same parts, so a field type that is not `ShmSafe` is
    /// reported once): every field has no uninitialised byte and the fields' sizes add up to
    /// the struct's (the [`Part::Layout`]); a variant field means an enum, which says no.
    ///
    /// The representations the derive accepts for structs (`C`, `transparent`, `packed`) lay
    /// fields out without overlap, so sizes adding up leave no room for padding.
    ///
    /// ```
    /// use ipc_runtime::message::fingerprint::{self, Part};
    ///
    /// #[repr(C)]
    /// struct Padded {
    ///     a: u8,
    ///     b: u32,
    /// }
    ///
    /// let parts = [
    ///     Part::Layout(size_of::<Padded>(), align_of::<Padded>()),
    ///     fingerprint::field::<u8>("a", 0),
    ///     fingerprint::field::<u32>("b", 4),
    /// ];
    /// assert!(!fingerprint::no_uninit(&parts));
    /// assert!(fingerprint::no_uninit(&[Part::Layout(4, 4), fingerprint::field::<u32>("b", 0)]));
    /// ```
    pub const fn no_uninit(parts: &[Part]) -> bool {
        let mut size = None;
        let mut total = 0;
        let mut i = 0;
        while i < parts.len() {
            match parts[i] {
                Part::Layout(s, _) if size.is_none() => size = Some(s),
                Part::Field(_, _, _, field_size, field_no_uninit, _) => {
                    if !field_no_uninit {
                        return false;
                    }
                    total += field_size;
                }
                Part::VariantField(..) => return false,
                _ => {}
            }
            i += 1;
        }
        match size {
            Some(size) => total == size,
            None => false,
        }
    }

    /// An enum variant's field's part: its name and its type's
    /// [`LAYOUT_FINGERPRINT`](super::ShmSafe::LAYOUT_FINGERPRINT).
    ///
    /// Offsets of variant fields cannot be taken on stable Rust (`offset_of!` on enums is
    /// unstable); for the `repr(C)` and primitive representations they follow from the
    /// representation and the fields' sizes and alignments, which the fingerprint covers. The
    /// bound is the derive's proof of `ShmSafe`, as for [`field`].
    pub const fn variant_field<T: super::ShmSafe>(name: &'static str) -> Part {
        Part::VariantField(
            name,
            T::LAYOUT_FINGERPRINT,
            size_of::<T>(),
            align_of::<T>(),
            Validity::of::<T>(),
        )
    }
}

macro_rules! primitives {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: plain values without pointers or handles; every process reads the same bytes
        // the same way.
        #[diagnostic::do_not_recommend]
        unsafe impl ShmSafe for $t {
            const LAYOUT_FINGERPRINT: u64 =
                fingerprint::named(stringify!($t), size_of::<$t>(), align_of::<$t>());
            const NO_UNINIT: bool = true;
        }
        #[diagnostic::do_not_recommend]
        impl ShmMessage for $t {
            const FINGERPRINT: u64 = <$t as ShmSafe>::LAYOUT_FINGERPRINT;
            const TYPE_NAME: &'static str = stringify!($t);
        }
    )*};
}

primitives!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, ());

/// A primitive with invalid bit patterns: `$t` read as `$raw`, valid when `$valid`.
macro_rules! checked_primitives {
    ($($t:ty: $raw:ty, $expected:literal, |$v:ident| $valid:expr;)*) => {$(
        // SAFETY: plain values without pointers or handles; `check_bits` accepts exactly the
        // valid bit patterns (`$valid`).
        #[diagnostic::do_not_recommend]
        unsafe impl ShmSafe for $t {
            const LAYOUT_FINGERPRINT: u64 =
                fingerprint::named(stringify!($t), size_of::<$t>(), align_of::<$t>());
            const NO_UNINIT: bool = true;
            const MAY_BE_INVALID: bool = true;
            #[inline]
            unsafe fn check_bits(value: *const Self) -> Result<(), InvalidValue> {
                // SAFETY: the caller guarantees `size_of::<$t>()` readable, initialised bytes
                // (maybe unaligned); any bit pattern is a valid `$raw` of the same size.
                let $v = unsafe { value.cast::<$raw>().read_unaligned() };
                if $valid { Ok(()) } else { Err(InvalidValue::bits($v as i128, $expected)) }
            }
        }
        #[diagnostic::do_not_recommend]
        impl ShmMessage for $t {
            const FINGERPRINT: u64 = <$t as ShmSafe>::LAYOUT_FINGERPRINT;
            const TYPE_NAME: &'static str = stringify!($t);
        }
    )*};
}

checked_primitives! {
    bool: u8, "a `bool` (0 or 1)", |v| v <= 1;
    char: u32, "a `char` (a Unicode scalar value: at most 0x10ffff, not 0xd800..=0xdfff)",
        |v| char::from_u32(v).is_some();
    NonZero<u8>: u8, "a `NonZero<u8>`", |v| v != 0;
    NonZero<u16>: u16, "a `NonZero<u16>`", |v| v != 0;
    NonZero<u32>: u32, "a `NonZero<u32>`", |v| v != 0;
    NonZero<u64>: u64, "a `NonZero<u64>`", |v| v != 0;
    NonZero<u128>: u128, "a `NonZero<u128>`", |v| v != 0;
    NonZero<usize>: usize, "a `NonZero<usize>`", |v| v != 0;
    NonZero<i8>: i8, "a `NonZero<i8>`", |v| v != 0;
    NonZero<i16>: i16, "a `NonZero<i16>`", |v| v != 0;
    NonZero<i32>: i32, "a `NonZero<i32>`", |v| v != 0;
    NonZero<i64>: i64, "a `NonZero<i64>`", |v| v != 0;
    NonZero<i128>: i128, "a `NonZero<i128>`", |v| v != 0;
    NonZero<isize>: isize, "a `NonZero<isize>`", |v| v != 0;
}

/// Implemented by nothing, ever: the `ShmSafe` impls of the types with interior mutability
/// require `Refused: InteriorMutability<T>`, so they never apply, and the compiler's error for
/// a message with such a field is this trait's message, at the field, saying why.
///
/// (A missing impl would give `ShmSafe`'s generic message instead. The trait's `Self` is a type
/// of this crate and the trait is this crate's, so no other crate can add an impl.)
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{T}` has interior mutability: a subscriber maps messages read-only, so it cannot be part of a message",
    label = "`{T}` has interior mutability",
    note = "a reader holds `&Message` in memory it maps read-only: writing through `&self` (`fetch_add`, `set`, `replace`, ...) would fault, and a writer changing the value under a `&` is undefined behaviour",
    note = "send plain values instead (`u64` for an `AtomicU64`, `u32` for a `Cell<u32>`): the publisher sets them before publishing; to signal between processes use a topic or an `Event`"
)]
pub trait InteriorMutability<T: ?Sized> {}

#[doc(hidden)]
#[derive(Debug)]
pub enum Refused {}

macro_rules! interior_mutability {
    ($($t:ident),* $(,)?) => {$(
        // SAFETY: never applies (see `InteriorMutability`): `Refused` implements nothing. The
        // bound is higher-ranked only because a bound on concrete types must be provable.
        unsafe impl ShmSafe for atomic::$t where for<'a> Refused: InteriorMutability<atomic::$t> {}
    )*};
}

interior_mutability!(
    AtomicBool,
    AtomicU8,
    AtomicU16,
    AtomicU32,
    AtomicU64,
    AtomicUsize,
    AtomicI8,
    AtomicI16,
    AtomicI32,
    AtomicI64,
    AtomicIsize
);

macro_rules! interior_mutability_generic {
    ($($t:ident),* $(,)?) => {$(
        // SAFETY: never applies (see `InteriorMutability`): `Refused` implements nothing.
        unsafe impl<T: 'static> ShmSafe for $t<T> where Refused: InteriorMutability<$t<T>> {}
    )*};
}

interior_mutability_generic!(Cell, RefCell, OnceCell, UnsafeCell);

// SAFETY: an array of position-independent values is position-independent.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::u64(fingerprint::str(T::LAYOUT_FINGERPRINT, "[;]"), N as u64),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    // Array elements are laid out back to back, with no padding between them.
    const NO_UNINIT: bool = T::NO_UNINIT;
    const MAY_BE_INVALID: bool = T::MAY_BE_INVALID;
    #[inline]
    unsafe fn check_bits(value: *const Self) -> Result<(), InvalidValue> {
        if !T::MAY_BE_INVALID {
            return Ok(());
        }
        let first = value.cast::<T>();
        for i in 0..N {
            // SAFETY: element `i` lies inside the array the caller vouches for (elements are
            // `size_of::<T>()` apart), with the same (perhaps missing) alignment.
            unsafe { T::check_bits(first.wrapping_add(i)) }.map_err(|e| e.at_index(i))?;
        }
        Ok(())
    }
}

// SAFETY: zero-sized; carries no data.
unsafe impl<T: ?Sized + 'static> ShmSafe for PhantomData<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::named("PhantomData", 0, 1);
}

/// Implemented for the types `T` whose `Option<T>` has a layout Rust guarantees: `NonZero*`,
/// for which `None` is all zeros and `Some(x)` the bytes of `x`. Every other `Option<T>` has an
/// unspecified layout (where its tag is, and which values mean `None`), so that two builds may
/// disagree on it and no reader can check it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`Option<{T}>` cannot be placed in shared memory: its layout is unspecified",
    label = "`Option<{T}>` has no stable layout",
    note = "Rust fixes the layout of `Option<T>` only for a few `T` (here: `NonZero*`); for others, where the tag is and which values mean `None` may differ between builds, and a reader cannot check it",
    note = "use an enum that derives `ShmMessage` with `#[repr(C, u8)]`, such as `enum Maybe<T>` with variants `Nothing` and `Just(T)`: its tag is checked when a subscriber receives it"
)]
pub trait OptionLayout<T: ?Sized> {
    /// `LAYOUT_FINGERPRINT` of `T`.
    const INNER: u64;
}

macro_rules! option_layout {
    ($($t:ty),* $(,)?) => {$(
        impl OptionLayout<NonZero<$t>> for Refused {
            const INNER: u64 = <NonZero<$t> as ShmSafe>::LAYOUT_FINGERPRINT;
        }
    )*};
}

option_layout!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

// SAFETY: only for `NonZero*` (`OptionLayout`): `Option<NonZero<T>>` has the layout of `T`,
// with `None` as zero, so every bit pattern is valid, means the same everywhere, and no byte
// is uninitialised.
unsafe impl<T: 'static> ShmSafe for Option<T>
where
    Refused: OptionLayout<T>,
{
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::str(<Refused as OptionLayout<T>>::INNER, "Option"),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    const NO_UNINIT: bool = true;
}

macro_rules! tuples {
    ($(($($name:ident : $idx:tt),+))*) => {$(
        // SAFETY: a tuple of position-independent values is position-independent. Tuples have
        // no guaranteed layout, but the fingerprint hashes every element's offset, so two
        // builds that lay a tuple out differently never agree.
        //
        // Not `#[diagnostic::do_not_recommend]`: it would only take the tuples out of rustc's
        // "the following other types implement `ShmSafe`" list, whose next entries are the
        // atomics' never-applying impls, which read as if atomics were accepted.
        unsafe impl<$($name: ShmSafe),+> ShmSafe for ($($name,)+) {
            const LAYOUT_FINGERPRINT: u64 = {
                let h = fingerprint::str(fingerprint::START, "tuple");
                $(
                    let h = fingerprint::u64(h, $name::LAYOUT_FINGERPRINT);
                    let h = fingerprint::u64(h, core::mem::offset_of!(Self, $idx) as u64);
                )+
                fingerprint::layout(h, size_of::<Self>(), align_of::<Self>())
            };
            // Elements never overlap: sizes adding up to the tuple's leave no padding.
            const NO_UNINIT: bool =
                $($name::NO_UNINIT &&)+ (0 $(+ size_of::<$name>())+) == size_of::<Self>();
            const MAY_BE_INVALID: bool = $($name::MAY_BE_INVALID ||)+ false;
            #[inline]
            unsafe fn check_bits(value: *const Self) -> Result<(), InvalidValue> {
                $(
                    // SAFETY: the element lies at its offset inside the tuple the caller
                    // vouches for.
                    unsafe {
                        validity::check_field::<$name>(
                            value.cast::<u8>().wrapping_add(core::mem::offset_of!(Self, $idx)),
                            stringify!($idx),
                        )
                    }?;
                )+
                Ok(())
            }
        }
    )*};
}

tuples! {
    (A: 0)
    (A: 0, B: 1)
    (A: 0, B: 1, C: 2)
    (A: 0, B: 1, C: 2, D: 3)
    (A: 0, B: 1, C: 2, D: 3, E: 4)
    (A: 0, B: 1, C: 2, D: 3, E: 4, F: 5)
    (A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6)
    (A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7)
}

pub mod validity;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_shm_safe<T: ShmSafe>() {}

    #[test]
    fn builtin_impls_exist() {
        assert_shm_safe::<u8>();
        assert_shm_safe::<[u64; 4]>();
        assert_shm_safe::<(u8, u32, f64)>();
        assert_shm_safe::<Option<NonZero<u32>>>();
        assert_shm_safe::<PhantomData<String>>();
        assert_shm_safe::<NonZero<i64>>();
        assert_shm_safe::<crate::ShmVec<crate::ShmString>>();
    }

    #[test]
    fn fingerprints_tell_types_apart() {
        let fps = [
            u32::LAYOUT_FINGERPRINT,
            i32::LAYOUT_FINGERPRINT,
            f32::LAYOUT_FINGERPRINT,
            <[u32; 2]>::LAYOUT_FINGERPRINT,
            <[u32; 3]>::LAYOUT_FINGERPRINT,
            <(u32, u32)>::LAYOUT_FINGERPRINT,
            <Option<NonZero<u32>>>::LAYOUT_FINGERPRINT,
            <NonZero<u32>>::LAYOUT_FINGERPRINT,
        ];
        for (i, a) in fps.iter().enumerate() {
            for b in &fps[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            fingerprint::str(fingerprint::START, "x"),
            fingerprint::str(fingerprint::START, "x")
        );
        assert_ne!(
            fingerprint::str(fingerprint::str(fingerprint::START, "ab"), "c"),
            fingerprint::str(fingerprint::str(fingerprint::START, "a"), "bc")
        );
    }
}
