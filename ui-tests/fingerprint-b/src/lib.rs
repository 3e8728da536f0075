//! Message definitions, byte for byte identical in `ipc-ui-fingerprint-a` and
//! `ipc-ui-fingerprint-b`: two separately compiled crates must compute the same fingerprints
//! for them, as two separately built programs must. Checked in
//! `ipc-ui-tests/tests/fingerprints.rs`.

use ipc_runtime::prelude::*;

/// A plain struct with a container field.
#[derive(ShmMessage, Debug)]
#[repr(C)]
pub struct Pose {
    /// x
    pub x: f64,
    /// y
    pub y: f64,
    /// frame
    pub frame: ShmString,
}

/// An enum with fields and an explicit discriminant.
#[derive(ShmMessage, Debug)]
#[repr(C, u8)]
pub enum Command {
    /// stop
    Stop,
    /// go
    Go {
        /// speed
        speed: f32,
    } = 5,
    /// follow
    Follow(ShmVec<Pose>),
}

/// A generic struct.
#[derive(ShmMessage, Debug)]
#[repr(C, align(16))]
pub struct Stamped<T> {
    /// at
    pub at: i64,
    /// value
    pub value: T,
}

/// The fingerprints of the types above.
pub const FINGERPRINTS: [u64; 4] = [
    Pose::FINGERPRINT,
    Command::FINGERPRINT,
    Stamped::<Pose>::FINGERPRINT,
    Stamped::<[u16; 3]>::FINGERPRINT,
];
