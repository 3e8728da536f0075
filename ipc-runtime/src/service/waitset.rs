//! Servers and pending responses in a [`WaitSet`](crate::WaitSet): they wait through their
//! inner subscribers.
//!
//! ```
//! use std::time::Duration;
//! use ipc_runtime::prelude::*;
//!
//! # ipc_runtime::domain::set_current(&format!("doc-service-ws-{}", std::process::id())).unwrap();
//! let server = Server::<u64, u64>::new("double")?;
//! let client = Client::<u64, u64>::new("double")?;
//! let pending = client.request(21)?;
//! let waitset = WaitSet::new(); // after what it waits on: it borrows them
//! let requests = waitset.attach(&server);
//! let responses = waitset.attach(&pending);
//! loop {
//!     let ready = waitset.wait_timeout(Duration::from_secs(5))?;
//!     if ready.contains(&requests.id()) {
//!         while let Some(request) = server.try_receive()? {
//!             let doubled = *request * 2;
//!             request.respond(doubled)?;
//!         }
//!     }
//!     if ready.contains(&responses.id()) {
//!         if let Some(response) = pending.try_receive()? {
//!             assert_eq!(*response, 42);
//!             break;
//!         }
//!     }
//! }
//! # Ok::<(), ipc_runtime::Error>(())
//! ```

use super::{PendingResponse, Server};
use crate::message::ShmMessage;
use crate::wait::DefaultBackend;
use crate::waitset::{Plan, Source};

/// Ready when a request may be queued ([`Server::try_receive`] takes it).
impl<Req: ShmMessage, Resp: ShmMessage + Send> Source<DefaultBackend> for Server<Req, Resp> {
    fn is_ready(&self) -> bool {
        Source::<DefaultBackend>::is_ready(self.request_subscriber())
    }

    fn plan<'s>(&'s self, plan: &mut Plan<'s, DefaultBackend>) {
        Source::plan(self.request_subscriber(), plan);
    }
}

/// Ready when a response may have arrived, the stream ended, or the server is due to be
/// probed ([`PendingResponse::try_receive`] then takes the response, or reports the end or
/// [`Error::NoServer`](crate::Error::NoServer)). Responses to other requests of the same client
/// make it ready too; `try_receive` keeps them for their own requests.
impl<Resp: ShmMessage> Source<DefaultBackend> for PendingResponse<'_, Resp> {
    fn is_ready(&self) -> bool {
        let (responses, ends, probe) = self.wait_sources();
        Source::<DefaultBackend>::is_ready(responses)
            || Source::<DefaultBackend>::is_ready(ends)
            || self.has_news()
            || probe.is_none_or(|at| std::time::Instant::now() >= at)
    }

    fn plan<'s>(&'s self, plan: &mut Plan<'s, DefaultBackend>) {
        let (responses, ends, probe) = self.wait_sources();
        Source::plan(responses, plan);
        Source::plan(ends, plan);
        if let Some(at) = probe {
            plan.due(at);
        }
    }
}
