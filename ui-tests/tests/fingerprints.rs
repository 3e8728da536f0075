//! Layout fingerprints: equal for identical definitions, different as soon as anything a
//! reader depends on changes — a field's name, type, order, the representation, a variant —
//! even when size and alignment stay the same.

use ipc_runtime::prelude::*;

#[test]
fn identical_definitions_in_two_crates_agree() {
    assert_eq!(ipc_ui_fingerprint_a::FINGERPRINTS, ipc_ui_fingerprint_b::FINGERPRINTS);
    // ... and the four types are told apart.
    let fps = ipc_ui_fingerprint_a::FINGERPRINTS;
    for (i, a) in fps.iter().enumerate() {
        for b in &fps[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

/// Declares `mod $name { pub struct Pose ... }` variants of one message.
macro_rules! variant {
    ($name:ident: $($item:tt)*) => {
        #[allow(dead_code)]
        mod $name {
            use ipc_runtime::prelude::*;
            $($item)*
        }
    };
}

variant!(base:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Pose { pub x: f64, pub y: f64, pub id: u32 }
);
variant!(same:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Pose { pub x: f64, pub y: f64, pub id: u32 }
);
variant!(field_renamed:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Pose { pub x: f64, pub z: f64, pub id: u32 }
);
variant!(field_type_same_layout:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Pose { pub x: f64, pub y: i64, pub id: u32 }
);
variant!(field_type_other_layout:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Pose { pub x: f64, pub y: f32, pub id: u32 }
);
variant!(fields_reordered:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Pose { pub y: f64, pub x: f64, pub id: u32 }
);
variant!(field_added:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Pose { pub x: f64, pub y: f64, pub id: u32, pub extra: u32 }
);
variant!(type_renamed:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Position { pub x: f64, pub y: f64, pub id: u32 }
);
variant!(repr_aligned:
    #[derive(ShmMessage)]
    #[repr(C, align(32))]
    pub struct Pose { pub x: f64, pub y: f64, pub id: u32 }
);
variant!(repr_packed:
    #[derive(ShmMessage)]
    #[repr(C, packed)]
    pub struct Pose { pub x: f64, pub y: f64, pub id: u32 }
);

fn pose_fingerprints() -> Vec<(&'static str, u64)> {
    vec![
        ("base", base::Pose::FINGERPRINT),
        ("field renamed", field_renamed::Pose::FINGERPRINT),
        ("field type, same layout", field_type_same_layout::Pose::FINGERPRINT),
        ("field type, other layout", field_type_other_layout::Pose::FINGERPRINT),
        ("fields reordered", fields_reordered::Pose::FINGERPRINT),
        ("field added", field_added::Pose::FINGERPRINT),
        ("type renamed", type_renamed::Position::FINGERPRINT),
        ("repr(C, align(32))", repr_aligned::Pose::FINGERPRINT),
        ("repr(C, packed)", repr_packed::Pose::FINGERPRINT),
    ]
}

#[test]
fn identical_definitions_in_one_crate_agree() {
    assert_eq!(base::Pose::FINGERPRINT, same::Pose::FINGERPRINT);
    assert_eq!(<base::Pose as ShmSafe>::LAYOUT_FINGERPRINT, base::Pose::FINGERPRINT);
}

#[test]
fn every_change_changes_the_fingerprint() {
    let fps = pose_fingerprints();
    for (i, (what_a, a)) in fps.iter().enumerate() {
        for (what_b, b) in &fps[i + 1..] {
            assert_ne!(a, b, "{what_a} and {what_b} have the same fingerprint");
        }
    }
}

#[test]
fn field_name_changes_it() {
    assert_ne!(base::Pose::FINGERPRINT, field_renamed::Pose::FINGERPRINT);
}

#[test]
fn field_type_changes_it_even_with_the_same_layout() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(size_of::<base::Pose>(), size_of::<field_type_same_layout::Pose>());
    assert_eq!(align_of::<base::Pose>(), align_of::<field_type_same_layout::Pose>());
    assert_eq!(offset_of!(base::Pose, y), offset_of!(field_type_same_layout::Pose, y));
    assert_ne!(base::Pose::FINGERPRINT, field_type_same_layout::Pose::FINGERPRINT);
    assert_ne!(base::Pose::FINGERPRINT, field_type_other_layout::Pose::FINGERPRINT);
}

#[test]
fn field_order_changes_it_even_with_the_same_layout() {
    assert_eq!(core::mem::size_of::<base::Pose>(), core::mem::size_of::<fields_reordered::Pose>());
    assert_ne!(base::Pose::FINGERPRINT, fields_reordered::Pose::FINGERPRINT);
}

variant!(one_byte_c:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Flags { pub bits: u8 }
);
variant!(one_byte_packed:
    #[derive(ShmMessage)]
    #[repr(C, packed)]
    pub struct Flags { pub bits: u8 }
);
variant!(one_byte_transparent:
    #[derive(ShmMessage)]
    #[repr(transparent)]
    pub struct Flags { pub bits: u8 }
);

#[test]
fn repr_changes_it() {
    assert_ne!(base::Pose::FINGERPRINT, repr_aligned::Pose::FINGERPRINT);
    assert_ne!(base::Pose::FINGERPRINT, repr_packed::Pose::FINGERPRINT);
    // Even where the representation does not change the layout at all.
    let fps = [
        one_byte_c::Flags::FINGERPRINT,
        one_byte_packed::Flags::FINGERPRINT,
        one_byte_transparent::Flags::FINGERPRINT,
    ];
    assert_ne!(fps[0], fps[1]);
    assert_ne!(fps[0], fps[2]);
    assert_ne!(fps[1], fps[2]);
}

variant!(split_repr:
    #[derive(ShmMessage)]
    #[repr(align(32))]
    #[repr(C)]
    pub struct Pose { pub x: f64, pub y: f64, pub id: u32 }
);

#[test]
fn how_the_repr_is_spelled_does_not_change_it() {
    assert_eq!(split_repr::Pose::FINGERPRINT, repr_aligned::Pose::FINGERPRINT);
}

variant!(enum_base:
    #[derive(ShmMessage)]
    #[repr(u8)]
    pub enum Mode { Idle, Run { speed: f32 } = 4, Stop }
);
variant!(enum_same_values_spelled_out:
    #[derive(ShmMessage)]
    #[repr(u8)]
    pub enum Mode { Idle = 0, Run { speed: f32 } = 4, Stop = 5 }
);
variant!(enum_variant_renamed:
    #[derive(ShmMessage)]
    #[repr(u8)]
    pub enum Mode { Idle, Go { speed: f32 } = 4, Stop }
);
variant!(enum_discriminant_changed:
    #[derive(ShmMessage)]
    #[repr(u8)]
    pub enum Mode { Idle, Run { speed: f32 } = 3, Stop }
);
variant!(enum_repr_changed:
    #[derive(ShmMessage)]
    #[repr(C, u8)]
    pub enum Mode { Idle, Run { speed: f32 } = 4, Stop }
);
variant!(enum_tag_width_changed:
    #[derive(ShmMessage)]
    #[repr(u16)]
    pub enum Mode { Idle, Run { speed: f32 } = 4, Stop }
);
variant!(enum_field_type_changed:
    #[derive(ShmMessage)]
    #[repr(u8)]
    pub enum Mode { Idle, Run { speed: u32 } = 4, Stop }
);
variant!(enum_field_renamed:
    #[derive(ShmMessage)]
    #[repr(u8)]
    pub enum Mode { Idle, Run { velocity: f32 } = 4, Stop }
);
variant!(enum_variants_reordered:
    #[derive(ShmMessage)]
    #[repr(u8)]
    pub enum Mode { Idle, Stop = 5, Run { speed: f32 } = 4 }
);
variant!(enum_field_moved:
    #[derive(ShmMessage)]
    #[repr(u8)]
    pub enum Mode { Idle { speed: f32 }, Run = 4, Stop }
);

#[test]
fn enums_agree_on_equal_discriminants_however_written() {
    assert_eq!(enum_base::Mode::FINGERPRINT, enum_same_values_spelled_out::Mode::FINGERPRINT);
}

#[test]
fn every_enum_change_changes_the_fingerprint() {
    let fps = [
        ("base", enum_base::Mode::FINGERPRINT),
        ("variant renamed", enum_variant_renamed::Mode::FINGERPRINT),
        ("discriminant changed", enum_discriminant_changed::Mode::FINGERPRINT),
        ("repr(C, u8)", enum_repr_changed::Mode::FINGERPRINT),
        ("repr(u16)", enum_tag_width_changed::Mode::FINGERPRINT),
        ("field type changed", enum_field_type_changed::Mode::FINGERPRINT),
        ("field renamed", enum_field_renamed::Mode::FINGERPRINT),
        ("variants reordered", enum_variants_reordered::Mode::FINGERPRINT),
        ("field moved to another variant", enum_field_moved::Mode::FINGERPRINT),
    ];
    for (i, (what_a, a)) in fps.iter().enumerate() {
        for (what_b, b) in &fps[i + 1..] {
            assert_ne!(a, b, "{what_a} and {what_b} have the same fingerprint");
        }
    }
}

variant!(outer_base:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Outer { pub pose: super::base::Pose, pub history: ShmVec<super::base::Pose> }
);
variant!(outer_field_changed_inside:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Outer {
        pub pose: super::field_renamed::Pose,
        pub history: ShmVec<super::base::Pose>,
    }
);
variant!(outer_element_changed_inside:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Outer {
        pub pose: super::base::Pose,
        pub history: ShmVec<super::field_renamed::Pose>,
    }
);

#[test]
fn a_change_deep_inside_changes_the_outer_fingerprint() {
    // Same outer definition, same layout; only a nested type (directly, or as the element of a
    // `ShmVec`) differs.
    let fps = [
        outer_base::Outer::FINGERPRINT,
        outer_field_changed_inside::Outer::FINGERPRINT,
        outer_element_changed_inside::Outer::FINGERPRINT,
    ];
    assert_ne!(fps[0], fps[1]);
    assert_ne!(fps[0], fps[2]);
    assert_ne!(fps[1], fps[2]);
}

variant!(generic:
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Stamped<T> { pub at: i64, pub value: T }
);

#[test]
fn each_instantiation_of_a_generic_type_has_its_own() {
    use generic::Stamped;
    assert_eq!(Stamped::<u32>::FINGERPRINT, Stamped::<u32>::FINGERPRINT);
    assert_ne!(Stamped::<u32>::FINGERPRINT, Stamped::<i32>::FINGERPRINT);
    assert_ne!(Stamped::<base::Pose>::FINGERPRINT, Stamped::<field_renamed::Pose>::FINGERPRINT);
    assert_eq!(Stamped::<u32>::TYPE_NAME, Stamped::<i32>::TYPE_NAME);
}
