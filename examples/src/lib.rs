//! Building blocks shared by the example programs.
//!
//! | module | what |
//! |---|---|
//! | [`fifo`] | a wait backend written outside the framework: named pipes (Linux) |

#[cfg(target_os = "linux")]
pub mod fifo;
