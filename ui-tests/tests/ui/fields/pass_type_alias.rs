// Aliases of `ShmSafe` types are fine: the check is on the type, not on how it is spelled.
use ipc_runtime::prelude::*;

type Timestamp = i64;
type Samples = ShmVec<f32>;

macro_rules! id_type {
    () => {
        u64
    };
}

#[derive(ShmMessage)]
#[repr(C)]
struct Reading {
    at: Timestamp,
    id: id_type!(),
    samples: Samples,
}

fn main() {
    let _ = Reading::FINGERPRINT;
}
