//! trybuild cases for `#[derive(ShmMessage)]` live in `tests/`.
