#[derive(ShmMessage)]
#[shm(topic = "robot.pose")]
#[repr(C, align(16))]
pub struct Pose<T, const N: usize>
where
    T: Copy,
{
    pub x: f64,
    pub y: f64,
    pub frame: ShmString,
    pub samples: [T; N],
}
