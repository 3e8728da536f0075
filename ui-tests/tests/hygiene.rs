//! The hygiene crates compile (they are dependencies of this test), and their expansion means
//! the same as the ordinary one: the same types give the same fingerprints whether the derive
//! runs without a prelude, with the runtime renamed, or through a re-export.

use ipc_runtime::prelude::*;

#[test]
fn no_implicit_prelude_crate_agrees_with_an_ordinary_crate() {
    assert_eq!(ipc_ui_no_prelude::FINGERPRINTS, ipc_ui_fingerprint_a::FINGERPRINTS);
    assert_eq!(<ipc_ui_no_prelude::Stamped<u8> as Topic>::NAME, "no-prelude.stamped");
    assert_eq!(ipc_ui_no_prelude::Stamped::<u8>::TYPE_NAME, "Stamped<T>");
}

#[test]
fn renamed_runtime_crate_agrees_with_an_ordinary_crate() {
    assert_eq!(ipc_ui_renamed_runtime::FINGERPRINTS, ipc_ui_fingerprint_a::FINGERPRINTS);
    assert_eq!(<ipc_ui_renamed_runtime::Stamped<u8> as Topic>::NAME, "renamed.stamped");
    assert_eq!(ipc_ui_renamed_runtime::Command::TYPE_NAME, "Command");
}

#[test]
fn derived_types_of_other_crates_nest() {
    #[derive(ShmMessage)]
    #[repr(C)]
    struct Mixed {
        a: ipc_ui_no_prelude::Pose,
        b: ipc_ui_renamed_runtime::Pose,
        c: ShmVec<ipc_ui_fingerprint_a::Command>,
    }
    assert_ne!(Mixed::FINGERPRINT, 0);
}
