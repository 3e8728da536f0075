//! `#[derive(ShmMessage)]` in a crate without any prelude: no `Option`, no `u64` import
//! needed, no `core` in scope, no extern prelude (`ipc_runtime` only as `::ipc_runtime`). If
//! the expansion named anything through the user's scope, this crate would not compile.
//! `ipc-ui-tests/tests/hygiene.rs` checks that the fingerprints equal those of the same types
//! defined normally.
#![no_implicit_prelude]

/// The same `Pose` as in `ipc-ui-fingerprint-a`.
#[derive(::ipc_runtime::ShmMessage, ::core::fmt::Debug)]
#[repr(C)]
pub struct Pose {
    /// x
    pub x: f64,
    /// y
    pub y: f64,
    /// frame
    pub frame: ::ipc_runtime::ShmString,
}

/// The same `Command` as in `ipc-ui-fingerprint-a`.
#[derive(::ipc_runtime::ShmMessage, ::core::fmt::Debug)]
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
    Follow(::ipc_runtime::ShmVec<Pose>),
}

/// The same `Stamped` as in `ipc-ui-fingerprint-a`, with a topic.
#[derive(::ipc_runtime::ShmMessage, ::core::fmt::Debug)]
#[shm(topic = "no-prelude.stamped")]
#[repr(C, align(16))]
pub struct Stamped<T> {
    /// at
    pub at: i64,
    /// value
    pub value: T,
}

/// The fingerprints of the types above, in the order of `ipc-ui-fingerprint-a`.
pub const FINGERPRINTS: [u64; 4] = [
    <Pose as ::ipc_runtime::ShmMessage>::FINGERPRINT,
    <Command as ::ipc_runtime::ShmMessage>::FINGERPRINT,
    <Stamped<Pose> as ::ipc_runtime::ShmMessage>::FINGERPRINT,
    <Stamped<[u16; 3]> as ::ipc_runtime::ShmMessage>::FINGERPRINT,
];
