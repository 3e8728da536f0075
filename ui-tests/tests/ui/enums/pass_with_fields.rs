// Enums with fields: `repr(C)`, `repr(C, u8)`, and a primitive representation alone.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Point {
    x: f32,
    y: f32,
}

#[derive(ShmMessage)]
#[repr(C)]
enum Shape {
    Dot(Point),
    Circle { center: Point, radius: f32 },
    Nothing,
}

#[derive(ShmMessage)]
#[repr(C, u8)]
enum Command {
    Stop,
    Go { speed: f32 } = 10,
    Follow(ShmVec<Point>),
    Say(ShmString),
}

#[derive(ShmMessage)]
#[repr(i32)]
enum Reply {
    Ok(u64) = -1,
    Err { code: u16, message: ShmString },
}

fn main() {
    let shapes = [
        Shape::Dot(Point { x: 0.0, y: 0.0 }),
        Shape::Circle { center: Point { x: 1.0, y: 1.0 }, radius: 2.0 },
        Shape::Nothing,
    ];
    assert!(matches!(shapes[1], Shape::Circle { radius, .. } if radius == 2.0));
    let commands = [Command::Stop, Command::Go { speed: 1.0 }, Command::Follow(ShmVec::new())];
    assert!(matches!(commands[1], Command::Go { .. }));
    assert!(matches!(Reply::Ok(3), Reply::Ok(3)));
    assert_ne!(Command::FINGERPRINT, Reply::FINGERPRINT);
    assert_eq!(Command::TYPE_NAME, "Command");
    let _ = Command::Say(ShmString::new());
    let _ = Reply::Err { code: 1, message: ShmString::new() };
}
