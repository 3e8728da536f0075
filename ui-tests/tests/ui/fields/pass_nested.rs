// Derived types nest: as fields, in arrays, in `Option`, and in the shared containers.
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
#[repr(C)]
struct Shape {
    kind: Kind,
    origin: Point,
    corners: [Point; 4],
    label: Option<Point>,
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
        label: None,
        points: ShmVec::new(),
    };
    let scene = Scene { shapes: ShmVec::new(), focus: shape };
    assert!(matches!(scene.focus.kind, Kind::Polygon));
    assert_eq!(scene.focus.corners[3].x + scene.focus.origin.y, 1.0);
    assert!(scene.shapes.is_empty() && scene.focus.points.is_empty() && scene.focus.label.is_none());
    let _ = (Kind::Line, scene.focus.origin.x, scene.focus.corners[0].y);
    assert_ne!(Scene::FINGERPRINT, Shape::FINGERPRINT);
}
