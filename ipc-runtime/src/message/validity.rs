//! Bit validity: what [`ShmSafe::check_bits`] reports
//! ([`InvalidValue`]) and the helpers `#[derive(ShmMessage)]` expands to.
//!
//! The checks read a value's bytes through raw pointers, one field at a time, and never create
//! a reference to a value before it is known to be valid. Every helper tests
//! [`MAY_BE_INVALID`](super::ShmSafe::MAY_BE_INVALID) first, a constant, so fields without
//! invalid bit patterns cost nothing.

use core::fmt;
use core::mem::{align_of, size_of};

use super::ShmSafe;
use super::fingerprint::Part;

/// One step of the path from a message to the field that failed its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A struct's or tuple's field (`.name`, `.0`).
    Field(&'static str),
    /// An array's or `ShmVec`'s element (`[3]`).
    Index(u64),
    /// An enum's variant whose field follows (`::Go`).
    Variant(&'static str),
}

/// Why bytes read from shared memory are not a valid value of their type: the path to the
/// field that failed, what it held and what it should have held.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Frame {
///     id: u32,
///     flags: [bool; 4],
/// }
///
/// let bytes: [u8; 8] = [1, 0, 0, 0, /* flags */ 0, 1, 0, 7];
/// // SAFETY: 8 initialised bytes, the size of `Frame`.
/// let err = unsafe { Frame::check_bits(bytes.as_ptr().cast()) }.unwrap_err();
/// assert_eq!(err.path("Frame"), "Frame.flags[3]");
/// assert_eq!(err.found(), "7");
/// assert_eq!(err.expected(), "a `bool` (0 or 1)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// Innermost step first (steps are added as the check returns outwards).
    steps: Vec<Step>,
    found: String,
    expected: String,
}

impl InvalidValue {
    /// A value that holds the bits `found` (shown in decimal below 256, in hex above) where
    /// `expected` (a phrase such as "a `bool` (0 or 1)") was required.
    #[cold]
    pub fn bits(found: impl Into<i128>, expected: impl Into<String>) -> Self {
        let found: i128 = found.into();
        let found = if (0..256).contains(&found) { found.to_string() } else { hex(found) };
        Self::new(found, expected)
    }

    /// A value described by `found` (for example an error resolving a pointer) where `expected`
    /// was required.
    #[cold]
    pub fn new(found: impl Into<String>, expected: impl Into<String>) -> Self {
        InvalidValue { steps: Vec::new(), found: found.into(), expected: expected.into() }
    }

    /// The same failure, one level up: inside field `name` of a struct or tuple.
    #[cold]
    #[must_use]
    pub fn in_field(mut self, name: &'static str) -> Self {
        self.steps.push(Step::Field(name));
        self
    }

    /// The same failure, one level up: inside element `index` of an array or sequence.
    #[cold]
    #[must_use]
    pub fn at_index(mut self, index: usize) -> Self {
        self.steps.push(Step::Index(index as u64));
        self
    }

    /// The same failure, one level up: inside variant `name` of an enum.
    #[cold]
    #[must_use]
    pub fn in_variant(mut self, name: &'static str) -> Self {
        self.steps.push(Step::Variant(name));
        self
    }

    /// The path to the field that failed, starting from `root` (a type name): `Reading.status`,
    /// `Frame.flags[3]`, `Command::Go.speed`; just `root` if the value itself failed.
    pub fn path(&self, root: &str) -> String {
        let mut path = root.to_owned();
        for step in self.steps.iter().rev() {
            match step {
                Step::Field(name) => {
                    path.push('.');
                    path.push_str(name);
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
                Step::Variant(name) => {
                    path.push_str("::");
                    path.push_str(name);
                }
            }
        }
        path
    }

    /// What the field held (`7`, `0xdeadbeef`, or a description).
    pub fn found(&self) -> &str {
        &self.found
    }

    /// What a valid value would have been (``a `bool` (0 or 1)``).
    pub fn expected(&self) -> &str {
        &self.expected
    }
}

impl fmt::Display for InvalidValue {
    /// `` `.flags[3]` holds 7, which is not a `bool` (0 or 1) `` (the path without a root; see
    /// [`InvalidValue::path`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` holds {}, which is not {}", self.path(""), self.found, self.expected)
    }
}

impl std::error::Error for InvalidValue {}

fn hex(v: i128) -> String {
    if v < 0 { format!("-{:#x}", v.unsigned_abs()) } else { format!("{v:#x}") }
}

/// Checks the field of type `F` at `at`, named `name`: nothing at all unless `F` may be
/// invalid.
///
/// # Errors
///
/// `F::check_bits`'s, one level up (in field `name`).
///
/// # Safety
///
/// As for [`ShmSafe::check_bits`] of `F`, at `at`.
#[inline(always)]
pub(crate) unsafe fn check_field<F: ShmSafe>(
    at: *const u8,
    name: &'static str,
) -> Result<(), InvalidValue> {
    if !F::MAY_BE_INVALID {
        return Ok(());
    }
    // SAFETY: the caller's promise, passed on.
    unsafe { F::check_bits(at.cast::<F>()) }.map_err(|e| e.in_field(name))
}

/// Reads an enum's tag: `size` bytes at `at` (1, 2, 4, 8 or 16, maybe unaligned), as an
/// unsigned number (compared with each discriminant [`truncate`]d to `size` bytes).
///
/// # Safety
///
/// `size` initialised bytes are readable at `at`.
#[inline(always)]
pub unsafe fn read_tag(at: *const u8, size: usize) -> u128 {
    // SAFETY: the caller's promise; each read is of at most `size` bytes, unaligned.
    unsafe {
        match size {
            1 => at.read() as u128,
            2 => at.cast::<u16>().read_unaligned() as u128,
            4 => at.cast::<u32>().read_unaligned() as u128,
            8 => at.cast::<u64>().read_unaligned() as u128,
            16 => at.cast::<u128>().read_unaligned(),
            _ => u128::MAX,
        }
    }
}

/// A discriminant as the `size` bytes of its tag hold it (two's complement, truncated), for
/// comparison with [`read_tag`].
#[inline(always)]
pub const fn truncate(discriminant: i128, size: usize) -> u128 {
    if size >= 16 {
        discriminant as u128
    } else {
        (discriminant as u128) & ((1u128 << (size * 8)) - 1)
    }
}

/// The failure of an enum's tag check: the tag held `tag`, not one of `discriminants` of
/// `type_name`.
#[cold]
#[inline(never)]
pub fn bad_tag(tag: u128, type_name: &str, discriminants: &[i128]) -> InvalidValue {
    let mut list: Vec<String> = discriminants.iter().take(8).map(|d| d.to_string()).collect();
    if discriminants.len() > 8 {
        list.push("...".into());
    }
    let expected = if discriminants.is_empty() {
        format!("a value of `{type_name}` (which has no variants)")
    } else {
        format!("a discriminant of `{type_name}` ({})", list.join(", "))
    };
    let found = if tag < 256 { tag.to_string() } else { format!("{tag:#x}") };
    InvalidValue::new(found, expected)
}

/// Checks a sequence in the shared heap (`ShmVec`'s check, and `ShmBox`'s with `len` and
/// `cap` 1) as a reader's deref would find it: `len` within `cap`, and `cap` elements that
/// resolve, bounds-checked and under the same rule
/// ([`RelPtr::resolve_held`](crate::ptr::RelPtr::resolve_held): a pointer held in a peer's
/// memory resolves only into that segment; `holder` is where the container's header lies);
/// then each of the `len` elements if `T` may be invalid. So a forged pointer or length is an
/// invalid message at receive, not a panic at the reader's first deref.
///
/// # Errors
///
/// A length above the capacity, a pointer that does not resolve to `cap` elements, or the
/// first invalid element (with its index if `indexed`).
pub fn elements<T: ShmSafe>(
    holder: *const u8,
    ptr: crate::ptr::RelPtr,
    len: u64,
    cap: u64,
    indexed: bool,
) -> Result<(), InvalidValue> {
    let Some(first) = sequence::<T>(holder, ptr, len, cap)? else { return Ok(()) };
    if !T::MAY_BE_INVALID {
        return Ok(());
    }
    // `sequence` checked that `cap` (so `len`) elements fit `usize`.
    for i in 0..len as usize {
        // SAFETY: `sequence` resolved `cap >= len` elements in a mapped segment at `T`'s
        // alignment; the writer initialised them (a wrong writer leaves bytes that are
        // initialised all the same: they are mapped memory).
        let checked = unsafe { T::check_bits(first.as_ptr().add(i)) };
        checked.map_err(|e| if indexed { e.at_index(i) } else { e })?;
    }
    Ok(())
}

/// `ShmString`'s check: its byte vector as for [`elements`], and its `len` bytes UTF-8.
///
/// # Errors
///
/// As [`elements`], or bytes that are not UTF-8.
pub fn utf8(
    holder: *const u8,
    ptr: crate::ptr::RelPtr,
    len: u64,
    cap: u64,
) -> Result<(), InvalidValue> {
    let Some(first) = sequence::<u8>(holder, ptr, len, cap)? else { return Ok(()) };
    // SAFETY: `sequence` resolved `cap >= len` bytes in a mapped segment (and checked that they
    // fit `usize`); mapped memory is initialised. Another process may change them meanwhile:
    // `from_utf8` reads each byte once and its verdict is only a report (the string's
    // accessors check again on every access to another process's bytes).
    let bytes = unsafe { std::slice::from_raw_parts(first.as_ptr().cast_const(), len as usize) };
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(e) => Err(InvalidValue::new(
            format!("bytes that are not UTF-8 (from byte {})", e.valid_up_to()),
            "UTF-8 text",
        )),
    }
}

/// Resolves the `cap` elements of `T` at `ptr`, held at `holder`, after checking `len <= cap`:
/// `None` when there is nothing to read (zero-sized elements, or no buffer at all).
fn sequence<T>(
    holder: *const u8,
    ptr: crate::ptr::RelPtr,
    len: u64,
    cap: u64,
) -> Result<Option<std::ptr::NonNull<T>>, InvalidValue> {
    if len > cap {
        return Err(InvalidValue::new(
            format!("a length of {len} with a capacity of {cap}"),
            "a length within the capacity",
        ));
    }
    if size_of::<T>() == 0 {
        return Ok(None);
    }
    if ptr.is_null() {
        return if cap == 0 {
            Ok(None)
        } else {
            Err(InvalidValue::new(
                format!("a null pointer with a capacity of {cap}"),
                "a pointer into its publisher's heap",
            ))
        };
    }
    let bytes =
        usize::try_from(cap).ok().and_then(|cap| cap.checked_mul(size_of::<T>())).ok_or_else(
            || InvalidValue::new(format!("a capacity of {cap}"), "a capacity that fits in memory"),
        )?;
    let first = ptr.resolve_held(holder, bytes, align_of::<T>()).map_err(|err| {
        InvalidValue::new(
            format!("a pointer that does not resolve ({err})"),
            "a pointer into its publisher's heap",
        )
    })?;
    Ok(Some(first.cast()))
}

/// The derived `check_bits` of a struct: checks each field that may be invalid, at its offset,
/// from the parts of the struct's fingerprint (which the derive lists once, in
/// [`fingerprint::of`](super::fingerprint::of) order).
///
/// # Errors
///
/// The first invalid field's, inside that field.
///
/// # Safety
///
/// As for [`ShmSafe::check_bits`] of the struct the parts describe, at `base`.
#[inline]
pub unsafe fn check_struct(base: *const u8, parts: &[Part]) -> Result<(), InvalidValue> {
    for part in parts {
        if let Part::Field(name, offset, .., validity) = *part
            && validity.may_be_invalid
        {
            // SAFETY: the field lies at `offset` inside the struct the caller vouches for.
            unsafe { (validity.check)(base.wrapping_add(offset)) }.map_err(|e| e.in_field(name))?;
        }
    }
    Ok(())
}

/// The derived `check_bits` of an enum with `#[repr(C)]`, a primitive representation or both:
/// the tag (`tag_size` bytes at offset 0) must be one of the discriminants, then the fields of
/// that variant are checked at the offsets the representation gives them (`c`: whether it
/// includes `C`). Everything comes from the parts of the enum's
/// fingerprint: name, representation, layout, variant count, then per variant its name,
/// discriminant, field count and fields.
///
/// # Errors
///
/// The tag, if it is no discriminant (the path is the enum itself), or the first invalid field
/// of its variant (`::Variant.field`).
///
/// # Safety
///
/// As for [`ShmSafe::check_bits`] of the enum the parts describe, at `base`; `tag_size` is its
/// tag's size.
#[inline]
pub unsafe fn check_enum(
    base: *const u8,
    parts: &[Part],
    tag_size: usize,
    c: bool,
) -> Result<(), InvalidValue> {
    // SAFETY: the tag is the first `tag_size` bytes of every value of these representations.
    let tag = unsafe { read_tag(base, tag_size) };
    let type_name = match parts.first() {
        Some(Part::Str(name)) => *name,
        _ => "?",
    };
    // The variants: from the fifth part on, each `Str(name), I128(disc), U64(n), fields...`.
    let variants = parts.get(4..).unwrap_or(&[]);
    let mut found = None;
    let mut union_align = 1;
    let mut i = 0;
    while i < variants.len() {
        let (Part::Str(name), Some(Part::I128(disc))) = (variants[i], variants.get(i + 1)) else {
            i += 1;
            continue;
        };
        let start = i + 3;
        let mut end = start;
        while let Some(Part::VariantField(..)) = variants.get(end) {
            end += 1;
        }
        let fields = &variants[start.min(end)..end];
        let mut align = 1;
        for field in fields {
            if let Part::VariantField(_, _, _, a, _) = *field {
                align = align.max(a);
            }
        }
        union_align = union_align.max(align);
        if found.is_none() && truncate(*disc, tag_size) == tag {
            found = Some((name, fields));
        }
        i = end;
    }
    let Some((variant, fields)) = found else {
        let discriminants: Vec<i128> = variants
            .iter()
            .filter_map(|p| if let Part::I128(d) = p { Some(*d) } else { None })
            .collect();
        return Err(bad_tag(tag, type_name, &discriminants));
    };
    // `repr(C)`: a struct of the tag and a union of the variants' structs, so every variant's
    // fields start after the tag at the union's alignment. A primitive representation alone:
    // a union of structs that each start with the tag.
    let start = if c { tag_size.next_multiple_of(union_align) } else { tag_size };
    let mut at = start;
    for field in fields {
        let Part::VariantField(name, _, size, align, validity) = *field else { continue };
        at = at.next_multiple_of(align);
        if validity.may_be_invalid {
            // SAFETY: the tag says this variant is the value's, and its field lies at `at`.
            unsafe { (validity.check)(base.wrapping_add(at)) }
                .map_err(|e| e.in_field(name).in_variant(variant))?;
        }
        at += size;
    }
    Ok(())
}
