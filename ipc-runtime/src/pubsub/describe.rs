//! The description of a topic's message type that its creator stores in the topic header: the
//! concrete type name (`Stamped<f64>`, not the generic `Stamped<T>`) and its first fields
//! ([`ShmMessage::FIELDS`]), so that a participant with another definition is told what
//! differs instead of two equal names.
//!
//! Everything here is read from memory any participant may write: it is only ever turned into
//! error text, with every length bounded, never used for addressing or decisions (the
//! fingerprint decides).

use std::mem::size_of;

use crate::message::FieldInfo;
#[cfg(doc)]
use crate::message::ShmMessage;

/// Fields described in the header (a mismatch further on is reported without its name).
pub(crate) const DESCRIBED_FIELDS: usize = 16;
const NAME_CAP: usize = 32;
const TYPE_CAP: usize = 40;

/// One described field, as stored in the topic header.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct FieldDesc {
    name: [u8; NAME_CAP],
    type_name: [u8; TYPE_CAP],
    offset: u32,
    size: u32,
    fingerprint: u64,
}

const _: () = assert!(size_of::<FieldDesc>() == 88);

/// The described fields of a type, with how many there are (of [`DESCRIBED_FIELDS`]) and
/// whether the type has more.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Description {
    count: u32,
    truncated: u32,
    fields: [FieldDesc; DESCRIBED_FIELDS],
}

/// `text` cut to at most `N` bytes at a character boundary, NUL-padded.
fn bytes<const N: usize>(text: &str) -> [u8; N] {
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = [0u8; N];
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

/// The text of a NUL-padded field (lossy: it may come from anyone).
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn desc(info: &FieldInfo) -> FieldDesc {
    FieldDesc {
        name: bytes(info.name),
        type_name: bytes(info.type_name),
        offset: u32::try_from(info.offset).unwrap_or(u32::MAX),
        size: u32::try_from(info.size).unwrap_or(u32::MAX),
        fingerprint: info.fingerprint,
    }
}

impl Description {
    /// The description of a type with `fields` ([`ShmMessage::FIELDS`]).
    pub fn of(fields: &[FieldInfo]) -> Self {
        let empty = FieldDesc {
            name: [0; NAME_CAP],
            type_name: [0; TYPE_CAP],
            offset: 0,
            size: 0,
            fingerprint: 0,
        };
        let given = fields;
        let mut fields = [empty; DESCRIBED_FIELDS];
        for (slot, info) in fields.iter_mut().zip(given) {
            *slot = desc(info);
        }
        Description {
            count: given.len().min(DESCRIBED_FIELDS) as u32,
            truncated: u32::from(given.len() > DESCRIBED_FIELDS),
            fields,
        }
    }

    /// What differs between the topic's type (this description) and a type with `fields`, in
    /// words: the first field that differs, by name, type, size and offset.
    pub fn difference(&self, fields: &[FieldInfo], same_name: bool) -> String {
        let theirs = &self.fields[..(self.count as usize).min(DESCRIBED_FIELDS)];
        let ours: Vec<FieldDesc> = fields.iter().take(DESCRIBED_FIELDS).map(desc).collect();
        let show = |f: &FieldDesc| {
            format!(
                "`{}: {}` ({} bytes at offset {})",
                text(&f.name),
                text(&f.type_name),
                f.size,
                f.offset
            )
        };
        if theirs.is_empty() || ours.is_empty() {
            return "their layout fingerprints differ".to_owned();
        }
        for i in 0..theirs.len().max(ours.len()) {
            match (theirs.get(i), ours.get(i)) {
                (Some(a), Some(b)) => {
                    let same = a.name == b.name
                        && a.type_name == b.type_name
                        && (a.offset, a.size, a.fingerprint) == (b.offset, b.size, b.fingerprint);
                    if same {
                        continue;
                    }
                    let what = if a.name == b.name && a.type_name == b.type_name {
                        format!(" (another definition of `{}`)", text(&a.type_name))
                    } else {
                        String::new()
                    };
                    return format!(
                        "field {i} is {} in the topic, {} here{what}",
                        show(a),
                        show(b)
                    );
                }
                (Some(a), None) => {
                    return format!("field {i}, {}, is in the topic's type only", show(a));
                }
                (None, Some(b)) => return format!("field {i}, {}, is in this type only", show(b)),
                (None, None) => unreachable!("i < the longer length"),
            }
        }
        let more = self.truncated != 0 || fields.len() > DESCRIBED_FIELDS;
        if more {
            format!("the first {DESCRIBED_FIELDS} fields agree; a later one differs")
        } else if same_name {
            "the fields agree; the representation or alignment differs".to_owned()
        } else {
            "the fields agree; the type's name, representation or alignment differs".to_owned()
        }
    }
}

/// The concrete name of `M` without module paths: `Stamped<f64>`, `[u8; 8]`,
/// `Pair<Reading, u32>`.
pub(crate) fn concrete_name<M>() -> String {
    let full = std::any::type_name::<M>();
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(word.rsplit("::").next().unwrap_or(word));
        word.clear();
    };
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[derive(ShmMessage)]
    #[repr(C)]
    struct Stamped<T> {
        stamp: i64,
        value: T,
    }

    mod v1 {
        use crate::prelude::*;
        #[derive(ShmMessage)]
        #[repr(C)]
        pub struct Reading {
            pub id: u32,
            pub celsius: f32,
        }
    }

    mod v2 {
        use crate::prelude::*;
        #[derive(ShmMessage)]
        #[repr(C)]
        pub struct Reading {
            pub id: u32,
            pub celsius: f64,
        }
    }

    #[test]
    fn concrete_names_drop_paths_and_keep_arguments() {
        assert_eq!(concrete_name::<Stamped<f64>>(), "Stamped<f64>");
        assert_eq!(concrete_name::<Stamped<v1::Reading>>(), "Stamped<Reading>");
        assert_eq!(concrete_name::<[u8; 8]>(), "[u8; 8]");
        assert_eq!(concrete_name::<ShmVec<ShmString>>(), "ShmVec<ShmString>");
        assert_eq!(concrete_name::<u64>(), "u64");
    }

    #[test]
    fn the_first_differing_field_is_named() {
        let topic = Description::of(Stamped::<f64>::FIELDS);
        assert_eq!(
            topic.difference(Stamped::<f32>::FIELDS, false),
            "field 1 is `value: T` (8 bytes at offset 8) in the topic, `value: T` (4 bytes at \
             offset 8) here (another definition of `T`)"
        );
        let topic = Description::of(v1::Reading::FIELDS);
        assert_eq!(
            topic.difference(v2::Reading::FIELDS, true),
            "field 1 is `celsius: f32` (4 bytes at offset 4) in the topic, `celsius: f64` (8 \
             bytes at offset 8) here"
        );
        assert_eq!(
            Description::of(u64::FIELDS).difference(u32::FIELDS, false),
            "their layout fingerprints differ"
        );
    }

    #[test]
    fn garbage_is_only_text() {
        let mut d = Description::of(v1::Reading::FIELDS);
        d.count = u32::MAX;
        d.fields[0].name = [0xff; NAME_CAP];
        let text = d.difference(v2::Reading::FIELDS, true);
        assert!(text.contains('\u{fffd}'), "{text}");
    }
}
