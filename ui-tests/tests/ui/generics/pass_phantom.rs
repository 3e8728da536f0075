// A marker parameter: `PhantomData<T>` is `ShmSafe` for any `T`, but the derive still asks
// `T: ShmSafe` of every parameter, so markers must be `ShmSafe` types themselves (a derived
// unit struct is the usual marker).
use core::marker::PhantomData;
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Meters;

#[derive(ShmMessage)]
#[repr(C)]
struct Length<Unit> {
    value: f64,
    _unit: PhantomData<Unit>,
}

fn main() {
    let l = Length::<Meters> { value: 1.5, _unit: PhantomData };
    assert_eq!(l.value, 1.5);
    let _ = Length::<Meters>::FINGERPRINT;
}
