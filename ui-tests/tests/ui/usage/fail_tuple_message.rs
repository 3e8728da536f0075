// A tuple is a field, not a message: the error says to wrap it in a struct.
use ipc_runtime::prelude::*;

fn main() {
    let _ = Subscriber::<(u32, f64)>::new("pairs");
}
