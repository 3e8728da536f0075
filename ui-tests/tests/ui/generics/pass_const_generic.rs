// Const generics: `[T; N]` fields and matrix-like types.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Ring<T, const N: usize> {
    head: u32,
    items: [T; N],
}

#[derive(ShmMessage)]
#[repr(C)]
struct Matrix<const R: usize, const C: usize>([[f32; C]; R]);

fn main() {
    assert_eq!(Ring::<u8, 4>::TYPE_NAME, "Ring<T, N>");
    assert_eq!(Matrix::<3, 3>::TYPE_NAME, "Matrix<R, C>");
    assert_ne!(Ring::<u8, 4>::FINGERPRINT, Ring::<u8, 5>::FINGERPRINT);
    assert_ne!(Matrix::<2, 3>::FINGERPRINT, Matrix::<3, 2>::FINGERPRINT);
    let r = Ring { head: 0, items: [0u16; 8] };
    assert_eq!(r.items.len() as u32 + r.head, 8);
    let _ = Matrix::<1, 1>([[0.0]]).0;
}
