//! Message types: what may live in shared memory ([`ShmSafe`]), what may be sent
//! ([`ShmMessage`]), and topic bindings ([`Topic`]).
//!
//! Shared memory is mapped at a different address in every process, and each process has its
//! own allocator, file descriptors and vtables. A type may be placed in shared memory only if its
//! bytes mean the same thing in every process that maps them: that is what [`ShmSafe`] promises.
//! `#[derive(ShmMessage)]` proves it for a user's type at compile time, and computes a layout
//! [fingerprint](ShmMessage::FINGERPRINT) that publishers and subscribers compare at run time so
//! two programs with different definitions of "the same" type never exchange bytes.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::sync::atomic;

/// Types whose bytes mean the same thing in every process that maps them.
///
/// Implemented for integers, floats, `bool`, `char`, `()`, arrays and tuples of `ShmSafe`
/// types, atomics, [`PhantomData`], `Option<T>` of `ShmSafe` types, the shared containers
/// ([`ShmVec`](crate::ShmVec), [`ShmString`](crate::ShmString), [`ShmBox`](crate::ShmBox)), and
/// every `#[derive(ShmMessage)]` type.
///
/// Deliberately *not* implemented for references, raw pointers, `NonNull`, `Box`, `Vec`,
/// `String`, `Rc`, `Arc`, function pointers, trait objects, or anything holding a process-local
/// handle (files, sockets, mutexes).
///
/// # Safety
///
/// Implementing this trait promises that a value of the type, copied byte for byte into another
/// process, is valid there and means the same: it contains no absolute addresses, no
/// process-local handles, and no references to memory outside shared segments (relocatable
/// pointers such as those inside `ShmVec` are fine). Prefer `#[derive(ShmMessage)]`, which
/// checks this for you.
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
/// assert!(!same_layout::<Option<Pose>, ShmVec<Pose>>());
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
pub trait ShmMessage: ShmSafe {
    /// Compile-time hash of the type's name, size, alignment and, for each field, its name,
    /// offset and fingerprint. Publishers and subscribers of one topic must agree on it.
    const FINGERPRINT: u64;
    /// The type's name, for error messages and tools.
    const TYPE_NAME: &'static str;
}

/// A message type bound to a topic name with `#[shm(topic = "...")]`.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// #[derive(ShmMessage)]
/// #[shm(topic = "robot.pose")]
/// #[repr(C)]
/// struct Pose {
///     x: f64,
///     y: f64,
/// }
///
/// assert_eq!(<Pose as Topic>::NAME, "robot.pose");
/// ```
pub trait Topic: ShmMessage {
    /// The topic's name.
    const NAME: &'static str;

    /// A publisher on this type's topic with default options.
    fn publisher() -> crate::Result<crate::Publisher<Self>>
    where
        Self: Send,
    {
        crate::Publisher::new(Self::NAME)
    }

    /// A subscriber on this type's topic with default options.
    fn subscriber() -> crate::Result<crate::Subscriber<Self>> {
        crate::Subscriber::new(Self::NAME)
    }
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
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Part {
        /// A string: the type's name, its representation, a variant's name.
        Str(&'static str),
        /// A number: how many fields or variants follow.
        U64(u64),
        /// An enum discriminant, of whatever primitive type.
        I128(i128),
        /// The type's size and alignment.
        Layout(usize, usize),
        /// A struct field: name, offset and the field type's fingerprint, then its size and
        /// whether it has no uninitialised byte (for [`no_uninit`], not hashed); see [`field`].
        Field(&'static str, usize, u64, usize, bool),
        /// An enum variant's field: name and the field type's fingerprint; see
        /// [`variant_field`].
        VariantField(&'static str, u64),
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
                Part::Field(name, offset, fingerprint, _, _) => {
                    u64(u64(str(h, name), offset as u64), fingerprint)
                }
                Part::VariantField(name, fingerprint) => u64(str(h, name), fingerprint),
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
        Part::Field(name, offset, T::LAYOUT_FINGERPRINT, size_of::<T>(), T::NO_UNINIT)
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
                Part::Field(_, _, _, field_size, field_no_uninit) => {
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
        Part::VariantField(name, T::LAYOUT_FINGERPRINT)
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
        impl ShmMessage for $t {
            const FINGERPRINT: u64 = <$t as ShmSafe>::LAYOUT_FINGERPRINT;
            const TYPE_NAME: &'static str = stringify!($t);
        }
    )*};
}

primitives!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    bool,
    char,
    ()
);

macro_rules! atomics {
    ($($t:ident),* $(,)?) => {$(
        // SAFETY: atomics are plain memory words; they are how processes synchronise.
        unsafe impl ShmSafe for atomic::$t {
            const LAYOUT_FINGERPRINT: u64 = fingerprint::named(
                stringify!($t),
                size_of::<atomic::$t>(),
                align_of::<atomic::$t>(),
            );
        }
    )*};
}

atomics!(
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

// SAFETY: an array of position-independent values is position-independent.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::u64(fingerprint::str(T::LAYOUT_FINGERPRINT, "[;]"), N as u64),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    // Array elements are laid out back to back, with no padding between them.
    const NO_UNINIT: bool = T::NO_UNINIT;
}

// SAFETY: zero-sized; carries no data.
unsafe impl<T: ?Sized + 'static> ShmSafe for PhantomData<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::named("PhantomData", 0, 1);
}

// SAFETY: `Option<T>` stores a `T` or nothing; its tag (or niche) is plain data.
unsafe impl<T: ShmSafe> ShmSafe for Option<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::layout(
        fingerprint::str(T::LAYOUT_FINGERPRINT, "Option"),
        size_of::<Self>(),
        align_of::<Self>(),
    );
}

// SAFETY: `UnsafeCell<T>` has the layout of `T`; interior mutability across processes is
// exactly what shared memory is for, synchronisation being the user's concern.
unsafe impl<T: ShmSafe> ShmSafe for UnsafeCell<T> {
    const LAYOUT_FINGERPRINT: u64 = fingerprint::str(T::LAYOUT_FINGERPRINT, "UnsafeCell");
}

macro_rules! tuples {
    ($(($($name:ident : $idx:tt),+))*) => {$(
        // SAFETY: a tuple of position-independent values is position-independent. Tuples have
        // no guaranteed layout, but the fingerprint hashes every element's offset, so two
        // builds that lay a tuple out differently never agree.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_shm_safe<T: ShmSafe>() {}

    #[test]
    fn builtin_impls_exist() {
        assert_shm_safe::<u8>();
        assert_shm_safe::<[u64; 4]>();
        assert_shm_safe::<(u8, u32, f64)>();
        assert_shm_safe::<Option<u32>>();
        assert_shm_safe::<PhantomData<String>>();
        assert_shm_safe::<atomic::AtomicU64>();
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
            <Option<u32>>::LAYOUT_FINGERPRINT,
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
