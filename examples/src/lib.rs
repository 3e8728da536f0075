//! Shared pieces of the example programs.
//!
//! * `broadcaster` / `client`: the seed's pair. Each line typed into the broadcaster becomes a
//!   [`Message`] whose `data` is a `ShmVec<u8>`; the client prints the latency and the text;
//!   `exit` ends both.
//! * `quickstart`: one command that starts a publisher and two subscriber processes, sends
//!   100,000 messages with `ShmVec` payloads and prints delivered counts and latency
//!   percentiles.
//! * `waitset`: one thread waits on a topic, a shutdown event and a 1 s tick in one `WaitSet`;
//!   `async_select` does the same with tokio's `select!`.
//! * `custom_backend`: a wait backend written outside the framework ([`fifo`], named pipes on
//!   Linux) driving a `Notifier`/`Listener` pair.

use ipc_runtime::prelude::*;

#[cfg(target_os = "linux")]
pub mod fifo;

/// The seed's message: a timestamp and a dynamically sized byte vector, bound to topic
/// `my_id` (the seed's topic name).
#[derive(ShmMessage, Debug)]
#[shm(topic = "my_id")]
#[repr(C)]
pub struct Message {
    /// When the message was built ([`ipc_runtime::timestamp`], nanoseconds).
    pub timestamp: i64,
    /// The text, as bytes in shared memory.
    pub data: ShmVec<u8>,
}

impl Message {
    /// A message holding `text`, stamped now.
    pub fn new(text: &str) -> Self {
        Message { timestamp: ipc_runtime::timestamp(), data: ShmVec::from_slice(text.as_bytes()) }
    }

    /// The text (lossy if not UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The quickstart's message: a sequence number, a send timestamp and a payload.
#[derive(ShmMessage, Debug)]
#[shm(topic = "quickstart")]
#[repr(C)]
pub struct Frame {
    /// 1, 2, 3, …
    pub seq: u64,
    /// Send time ([`ipc_runtime::timestamp`]).
    pub sent: i64,
    /// Payload of varying size; its bytes are `seq as u8`.
    pub payload: ShmVec<u8>,
}
