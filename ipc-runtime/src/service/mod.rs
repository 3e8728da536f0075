//! Request/response between processes: [`Server`] and [`Client`], zero-copy both ways.
//!
//! ```
//! use std::time::Duration;
//! use ipc_runtime::prelude::*;
//!
//! # ipc_runtime::domain::set_current(&format!("doc-service-{}", std::process::id())).unwrap();
//! #[derive(ShmMessage)]
//! #[repr(C)]
//! struct Sum {
//!     values: ShmVec<u32>,
//! }
//!
//! let server = Server::<Sum, u64>::new("adder")?; //   in one process
//! let client = Client::<Sum, u64>::new("adder")?; //   in another
//! let pending = client.request(Sum { values: ShmVec::from_slice(&[1, 2, 3]) })?;
//!
//! let request = server.receive_timeout(Duration::from_secs(5))?.expect("a request");
//! let total = request.values.iter().map(|&v| u64::from(v)).sum();
//! request.respond(total)?;
//!
//! let response = pending.receive_timeout(Duration::from_secs(5))?.expect("a response");
//! assert_eq!(*response, 6);
//! # Ok::<(), ipc_runtime::Error>(())
//! ```
//!
//! # How it is built
//!
//! Entirely on publish/subscribe ([`crate::pubsub`]): its rings, membership, liveness and
//! reclaiming of the dead. A service `S` is
//!
//! * a **registry**: the hidden topic `S/_service`, whose header records the fingerprints of
//!   both types (`Req -> Resp`) and the service-wide options, and whose publisher slots are
//!   the servers and subscriber slots the clients (membership and liveness tokens only: no
//!   messages flow there);
//! * per server (slot `s`, generation `g`), a **request topic** `S/_requests/s<s>-<g>` that the
//!   server subscribes to and every client publishes into (one ring per client);
//! * per client, a **response topic** `S/_responses/c<c>-<g>` that the client subscribes to
//!   and every server publishes into, and next to it `…/end` for "this stream ended" markers.
//!
//! Topic names carry the participant's generation, so a restarted server or client never
//! receives what was meant for its predecessor. Requests travel as an envelope (the client's
//! slot and generation, a request number, then the request); a response carries the request
//! number, its place in the stream and a "last" flag where its sequence number would be, so it
//! is exactly a `Resp` in the server's memory and the client gets a plain [`Sample<Resp>`].
//! Both topics use [`Overflow::Block`](crate::Overflow::Block): nothing is dropped.
//!
//! # Which server takes a request
//!
//! **Round robin over the live servers** the client knows. It needs no shared state (each
//! client keeps its own turn), costs nothing on the hot path, and spreads equal servers
//! evenly; a server that is busy still queues the request (its ring towards this client holds
//! `max_pending`). Least-pending would need counters every client writes, against the
//! single-writer rule the rings are built on.
//!
//! # Streams
//!
//! [`ActiveRequest::send`] sends an intermediate response, [`ActiveRequest::respond`] the last
//! one. Dropping an [`ActiveRequest`] without `respond` ends the stream (the client's
//! [`PendingResponse`] then reports it finished). A `PendingResponse` yields the responses in
//! order; [`PendingResponse::is_finished`] tells an ended stream from a late one.
//!
//! # Crashes
//!
//! * A client that dies: servers drop the requests it still had queued (its token is dead), and
//!   let go of its response topic, which returns every sample they had queued for it: their
//!   memory goes back to what it was (found within the server's `liveness_interval`, on its
//!   receive calls).
//! * A server that dies or leaves with requests in flight: the clients waiting on them get
//!   [`Error::NoServer`] within their `liveness_interval` (default
//!   100 ms) after the responses it did send; they forget it, and a restarted server is taken
//!   into the turn as soon as it registers.
//!
//! # Waiting on many sources
//!
//! A [`Server`] waits on one subscriber (its request topic) and a [`PendingResponse`] on its
//! client's response subscriber (and, rarely, the `end` topic): crate-private accessors
//! `Server::request_subscriber` and `Client::response_subscriber` hand them to a wait set.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | names of the hidden topics, the response tag, options |
//! | `envelope.rs` | what a request carries besides the request; the registry's type record |
//! | `registry.rs` | joining and leaving the registry; who serves, who is alive |
//! | `server.rs` | [`Server`], its links to clients |
//! | `active.rs` | [`ActiveRequest`], [`ResponseMut`] |
//! | `client.rs` | [`Client`], its links to servers, the round robin |
//! | `pending.rs` | [`PendingResponse`], routing responses to their requests |

mod active;
mod client;
mod envelope;
mod pending;
mod registry;
mod server;
mod waitset;

use std::time::Duration;

pub use active::{ActiveRequest, ResponseMut};
pub use client::{Client, ClientBuilder};
pub use pending::PendingResponse;
pub use server::{Server, ServerBuilder};

use crate::error::{Error, Result};
#[allow(unused_imports)]
use crate::pubsub::Sample;

/// The longest service name: the hidden topics add up to 30 bytes to it, and topic names are
/// at most 100.
pub const MAX_SERVICE_NAME: usize = 64;

/// Default period of liveness probes (servers probing clients, clients probing the server of a
/// request they wait for).
pub(crate) const DEFAULT_LIVENESS_INTERVAL: Duration = Duration::from_millis(100);

fn check_name(service: &str) -> Result<()> {
    crate::domain::validate(service, "service")?;
    if service.len() > MAX_SERVICE_NAME {
        return Err(Error::InvalidName {
            what: "service",
            name: service.to_owned(),
            reason: "is longer than 64 bytes",
        });
    }
    Ok(())
}

fn registry_topic(service: &str) -> String {
    format!("{service}/_service")
}

fn request_topic(service: &str, slot: u32, generation: u32) -> String {
    format!("{service}/_requests/s{slot}-{generation}")
}

fn response_topic(service: &str, slot: u32, generation: u32) -> String {
    format!("{service}/_responses/c{slot}-{generation}")
}

fn end_topic(service: &str, slot: u32, generation: u32) -> String {
    format!("{service}/_responses/c{slot}-{generation}/end")
}

/// A response's tag (carried where its sequence number would be): bits 0..40 the request
/// number, 40..63 its place in the stream (saturating), bit 63 "last".
mod tag {
    pub(super) const ID_BITS: u32 = 40;
    pub(super) const ID_MASK: u64 = (1 << ID_BITS) - 1;
    const INDEX_MAX: u64 = (1 << 23) - 1;
    const LAST: u64 = 1 << 63;

    pub(super) fn encode(id: u64, index: u64, last: bool) -> u64 {
        (id & ID_MASK) | (index.min(INDEX_MAX) << ID_BITS) | if last { LAST } else { 0 }
    }

    /// (request number, place in the stream, last).
    pub(super) fn decode(tag: u64) -> (u64, u64, bool) {
        (tag & ID_MASK, (tag >> ID_BITS) & INDEX_MAX, tag & LAST != 0)
    }
}

/// Service-wide options (fixed by the service's first participant, checked against later
/// ones that set them).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServiceOptions {
    pub max_servers: Option<u32>,
    pub max_clients: Option<u32>,
    pub max_pending: Option<u32>,
    pub response_depth: Option<u32>,
}

/// The values in effect once the registry is joined.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_servers: u32,
    pub max_clients: u32,
    pub max_pending: u32,
    pub response_depth: u32,
}

macro_rules! service_options {
    ($builder:ident) => {
        impl<Req, Resp> $builder<Req, Resp> {
            /// Maximum number of servers (service-wide; default 2, at most 64).
            pub fn max_servers(mut self, n: u32) -> Self {
                self.options.max_servers = Some(n);
                self
            }

            /// Maximum number of clients (service-wide; default 8, at most 64).
            pub fn max_clients(mut self, n: u32) -> Self {
                self.options.max_clients = Some(n);
                self
            }

            /// How many requests one client may have in flight (service-wide; default 8).
            pub fn max_pending(mut self, n: u32) -> Self {
                self.options.max_pending = Some(n);
                self
            }

            /// How many responses may wait in one client's queue (service-wide; default 16);
            /// a server sending into a full queue waits for room up to its response timeout.
            pub fn response_depth(mut self, n: u32) -> Self {
                self.options.response_depth = Some(n);
                self
            }

            /// The domain to use instead of the process's (`IPC_DOMAIN`).
            pub fn domain(mut self, domain: &str) -> Self {
                self.domain = Some(domain.to_owned());
                self
            }

            /// How often liveness of peers is probed while waiting (default 100 ms): the bound
            /// on noticing a dead server (client) or a dead client (server).
            pub fn liveness_interval(mut self, interval: std::time::Duration) -> Self {
                self.interval = interval.max(std::time::Duration::from_millis(1));
                self
            }
        }
    };
}
pub(crate) use service_options;
