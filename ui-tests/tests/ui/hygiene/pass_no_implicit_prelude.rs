// The expansion uses only fully qualified paths: it compiles without any prelude.
#![no_implicit_prelude]

#[derive(::ipc_runtime::ShmMessage)]
#[shm(topic = "hygiene")]
#[repr(C)]
struct Pose<T> {
    x: f64,
    tag: T,
    label: ::ipc_runtime::ShmString,
}

#[derive(::ipc_runtime::ShmMessage)]
#[repr(C, u8)]
enum Command {
    Stop = 3,
    Go { speed: f32 },
}

fn main() {
    use ::ipc_runtime::{ShmMessage, Topic};
    ::std::assert_eq!(<Pose<u8> as ShmMessage>::TYPE_NAME, "Pose<T>");
    ::std::assert_eq!(<Pose<u8> as Topic>::NAME, "hygiene");
    let _ = (Command::Stop, Command::Go { speed: 1.0 }, Command::FINGERPRINT);
}
