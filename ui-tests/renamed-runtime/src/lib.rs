//! `#[derive(ShmMessage)]` with the runtime renamed to `rt` in `Cargo.toml`, so `::ipc_runtime`
//! does not exist here: `#[shm(crate = "rt")]` tells the derive, and also a re-export path works.
//! `ipc-ui-tests/tests/hygiene.rs` checks that the fingerprints equal those of the same types
//! defined normally.

use rt::prelude::*;

/// A path to the runtime through a re-export, as a facade crate would offer.
pub mod facade {
    pub use rt as ipc;
}

/// The same `Pose` as in `ipc-ui-fingerprint-a`.
#[derive(ShmMessage, Debug)]
#[shm(crate = "rt")]
#[repr(C)]
pub struct Pose {
    /// x
    pub x: f64,
    /// y
    pub y: f64,
    /// frame
    pub frame: ShmString,
}

/// The same `Command` as in `ipc-ui-fingerprint-a`, through the facade.
#[derive(ShmMessage, Debug)]
#[shm(crate = "crate::facade::ipc")]
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

/// The same `Stamped` as in `ipc-ui-fingerprint-a`, with a topic.
#[derive(ShmMessage, Debug)]
#[shm(crate = "::rt", topic = "renamed.stamped")]
#[repr(C, align(16))]
pub struct Stamped<T> {
    /// at
    pub at: i64,
    /// value
    pub value: T,
}

/// The fingerprints of the types above, in the order of `ipc-ui-fingerprint-a`.
pub const FINGERPRINTS: [u64; 4] = [
    Pose::FINGERPRINT,
    Command::FINGERPRINT,
    Stamped::<Pose>::FINGERPRINT,
    Stamped::<[u16; 3]>::FINGERPRINT,
];
