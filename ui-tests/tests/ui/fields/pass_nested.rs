// Derived types nest: as fields, in arrays, in derived enums, and in the shared containers.
use ipc_runtime::prelude::*;

#[derive(ShmMessage)]
#[repr(C)]
struct Point {
    x: f32,
    y: f32,
}

#[derive(ShmMessage)]
#[repr(u8)]
enum Kind {
    Line,
    Polygon,
}

#[derive(ShmMessage)]
#[repr(C, u8)]
enum Maybe<T> {
    Nothing,
    Just(T),
}

#[derive(ShmMessage)]
#[repr(C)]
struct Shape {
    kind: Kind,
    origin: Point,
    corners: [Point; 4],
    label: Maybe<Point>,
    points: ShmVec<Point>,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Scene {
    shapes: ShmVec<Shape>,
    focus: Shape,
}

fn main() {
    // An empty `ShmVec` allocates nothing.
    let shape = Shape {
        kind: Kind::Polygon,
        origin: Point { x: 0.0, y: 0.0 },
        corners: [const { Point { x: 1.0, y: 1.0 } }; 4],
        label: Maybe::Nothing,
        points: ShmVec::new(),
    };
    let scene = Scene { shapes: ShmVec::new(), focus: shape };
    assert!(matches!(scene.focus.kind, Kind::Polygon));
    assert_eq!(scene.focus.corners[3].x + scene.focus.origin.y, 1.0);
    assert!(scene.shapes.is_empty() && scene.focus.points.is_empty() && matches!(scene.focus.label, Maybe::Nothing));
    let _ = (Kind::Line, scene.focus.origin.x, scene.focus.corners[0].y);
    let _ = Maybe::Just(Point { x: 2.0, y: 2.0 });
    assert_ne!(Scene::FINGERPRINT, Shape::FINGERPRINT);
}
