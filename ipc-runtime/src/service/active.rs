//! [`ActiveRequest`]: a received request and the way back to its client; [`ResponseMut`]: a
//! response built in place.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::envelope::Envelope;
use super::registry::{CLIENT, Registry};
use super::server::ClientLink;
use super::tag;
use crate::error::Result;
use crate::message::ShmMessage;
use crate::pubsub::{Sample, SampleMut};

/// A request received by a [`Server`](crate::service::Server): derefs to the request, which is
/// read in place in the client's memory.
///
/// Answer with [`respond`](Self::respond) (the last response), stream with
/// [`send`](Self::send) first, or build a response in place with [`loan`](Self::loan).
/// Dropping it without `respond` ends the stream after what was sent (the client's
/// [`PendingResponse`](crate::service::PendingResponse) then reports it finished). A
/// response to a client that has died meanwhile goes nowhere and is not an error.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-active-{}", std::process::id())).unwrap();
/// let server = Server::<u32, u32>::new("countdown")?;
/// let client = Client::<u32, u32>::new("countdown")?;
/// let pending = client.request(3)?;
///
/// let request = server.receive_timeout(Duration::from_secs(5))?.expect("a request");
/// for n in (1..*request).rev() {
///     request.send(n)?; // intermediate responses
/// }
/// request.respond(0)?; // the last one
///
/// let got: Vec<u32> = std::iter::from_fn(|| pending.try_receive().unwrap().map(|r| *r)).collect();
/// assert_eq!(got, [2, 1, 0]);
/// assert!(pending.is_finished());
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct ActiveRequest<'a, Req: ShmMessage, Resp: ShmMessage + Send> {
    sample: Sample<'a, Envelope<Req>>,
    link: Arc<ClientLink<Resp>>,
    registry: &'a Registry,
    id: u64,
    sent: AtomicU64,
    done: AtomicBool,
}

impl<'a, Req: ShmMessage, Resp: ShmMessage + Send> ActiveRequest<'a, Req, Resp> {
    pub(crate) fn new(
        sample: Sample<'a, Envelope<Req>>,
        link: Arc<ClientLink<Resp>>,
        registry: &'a Registry,
        id: u64,
    ) -> Self {
        ActiveRequest {
            sample,
            link,
            registry,
            id,
            sent: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    fn next_tag(&self, last: bool) -> Result<u64> {
        if self.done.load(Ordering::Acquire) {
            return Err(self.ended());
        }
        let index = self.sent.fetch_add(1, Ordering::AcqRel);
        Ok(tag::encode(self.id, index, last))
    }

    fn ended(&self) -> crate::Error {
        crate::Error::ResponsesEnded { service: self.link.service.clone(), request: self.id }
    }

    /// Sends `response` as the last response and ends the stream.
    ///
    /// # Errors
    ///
    /// [`Error::PublishTimeout`](crate::Error::PublishTimeout) if the client's response queue
    /// stayed full for the server's response timeout, and the other errors of
    /// [`Publisher::publish`](crate::Publisher::publish).
    pub fn respond(self, response: Resp) -> Result<()> {
        let tag = self.next_tag(true)?;
        self.done.store(true, Ordering::Release);
        self.link.responses.publish_tagged(response, tag)
    }

    /// Sends `response` as an intermediate response of a stream (more follow, ended by
    /// [`respond`](Self::respond) or by dropping the request).
    ///
    /// # Errors
    ///
    /// As [`respond`](Self::respond); [`Error::ResponsesEnded`](crate::Error::ResponsesEnded)
    /// after a loaned response was sent as the last.
    pub fn send(&self, response: Resp) -> Result<()> {
        let tag = self.next_tag(false)?;
        self.link.responses.publish_tagged(response, tag)
    }

    /// Loans a response slot initialised with `Resp::default()`, to build the response in
    /// place (in this process's memory, where the client reads it).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-loanresp-{}", std::process::id())).unwrap();
    /// #[derive(ShmMessage, Default)]
    /// #[repr(C)]
    /// struct Bytes {
    ///     data: ShmVec<u8>,
    /// }
    ///
    /// let server = Server::<u32, Bytes>::new("zeros")?;
    /// let client = Client::<u32, Bytes>::new("zeros")?;
    /// let pending = client.request(4)?;
    /// let request = server.receive_timeout(Duration::from_secs(5))?.expect("a request");
    /// let mut response = request.loan()?;
    /// response.data.extend_from_slice(&vec![0; *request as usize]);
    /// response.respond()?;
    /// assert_eq!(pending.receive()?.data.len(), 4);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The errors of [`Publisher::loan`](crate::Publisher::loan).
    pub fn loan(&self) -> Result<ResponseMut<'_, Req, Resp>>
    where
        Resp: Default,
    {
        let sample = self.link.responses.loan()?;
        Ok(ResponseMut { sample, request: self })
    }

    /// The request's number (per client, from 1).
    pub fn request_id(&self) -> u64 {
        self.id
    }

    /// The registry slot of the client that sent the request.
    pub fn client_slot(&self) -> u32 {
        self.link.slot
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> Deref for ActiveRequest<'_, Req, Resp> {
    type Target = Req;
    fn deref(&self) -> &Req {
        &self.sample.body
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> fmt::Debug for ActiveRequest<'_, Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveRequest")
            .field("service", &self.link.service)
            .field("client", &self.link.slot)
            .field("id", &self.id)
            .field("sent", &self.sent.load(Ordering::Relaxed))
            .finish()
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> Drop for ActiveRequest<'_, Req, Resp> {
    fn drop(&mut self) {
        // Tell the client its stream ended, unless it is gone (rare enough to ask the OS).
        if !self.done.load(Ordering::Acquire)
            && self.registry.present(CLIENT, self.link.slot, self.link.generation)
        {
            self.link.end(self.id);
        }
    }
}

/// A response being built in place (see [`ActiveRequest::loan`]): derefs mutably to the
/// response; [`send`](Self::send) or [`respond`](Self::respond) it. Dropping it unsent gives
/// the slot back.
pub struct ResponseMut<'r, Req: ShmMessage, Resp: ShmMessage + Send> {
    sample: SampleMut<'r, Resp>,
    request: &'r ActiveRequest<'r, Req, Resp>,
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> ResponseMut<'_, Req, Resp> {
    /// Sends it as an intermediate response.
    ///
    /// # Errors
    ///
    /// As [`ActiveRequest::send`].
    pub fn send(self) -> Result<()> {
        let tag = self.request.next_tag(false)?;
        self.sample.publish_tagged(tag)
    }

    /// Sends it as the last response; the stream ends (later sends fail with
    /// [`Error::ResponsesEnded`](crate::Error::ResponsesEnded), dropping the request sends
    /// nothing more).
    ///
    /// # Errors
    ///
    /// As [`ActiveRequest::respond`].
    pub fn respond(self) -> Result<()> {
        let tag = self.request.next_tag(true)?;
        self.request.done.store(true, Ordering::Release);
        self.sample.publish_tagged(tag)
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> Deref for ResponseMut<'_, Req, Resp> {
    type Target = Resp;
    fn deref(&self) -> &Resp {
        &self.sample
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> DerefMut for ResponseMut<'_, Req, Resp> {
    fn deref_mut(&mut self) -> &mut Resp {
        &mut self.sample
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> fmt::Debug for ResponseMut<'_, Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseMut").field("request", &self.request.id).finish()
    }
}
