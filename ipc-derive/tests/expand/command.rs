#[derive(ShmMessage)]
#[repr(C, u8)]
pub enum Command {
    Stop,
    Go { speed: f32 } = 10,
    Follow(ShmVec<u32>),
}
