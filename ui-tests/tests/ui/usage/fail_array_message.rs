// An array is a field, not a message: the error says to wrap it in a struct.
use ipc_runtime::prelude::*;

fn main() {
    let _ = Publisher::<[f32; 3]>::new("points");
}
