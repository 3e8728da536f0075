//! [`PendingResponse`]: the responses to one request, routed out of its client's response
//! topic (which all of the client's requests share).

use std::collections::VecDeque;
use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::registry::{Registry, SERVER};
use super::tag;
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::pubsub::Subscriber;
use crate::pubsub::sample::{Held, Sample};

/// How long a blocked receive sleeps at most before looking at the `end` topic and at
/// responses another thread took for it: the bound on noticing a stream that ended without a
/// last response.
const SLICE: Duration = Duration::from_millis(10);

/// A client's receiving side: its response and end topics and the streams in flight.
pub(crate) struct Inbox<Resp: ShmMessage> {
    pub registry: Registry,
    pub responses: Subscriber<Resp>,
    pub ends: Subscriber<u64>,
    pub state: Mutex<InboxState<Resp>>,
    pub interval: Duration,
}

pub(crate) struct InboxState<Resp: ShmMessage> {
    pub next_id: u64,
    pub streams: Streams<Resp>,
}

/// The requests in flight by number: at most `max_pending` (a few), so a vector scanned
/// linearly beats hashing.
pub(crate) struct Streams<Resp: ShmMessage>(Vec<(u64, Stream<Resp>)>);

impl<Resp: ShmMessage> Default for Streams<Resp> {
    fn default() -> Self {
        Streams(Vec::new())
    }
}

impl<Resp: ShmMessage> Streams<Resp> {
    pub fn get(&self, id: &u64) -> Option<&Stream<Resp>> {
        self.0.iter().find(|(k, _)| k == id).map(|(_, s)| s)
    }

    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Stream<Resp>> {
        self.0.iter_mut().find(|(k, _)| k == id).map(|(_, s)| s)
    }

    pub fn insert(&mut self, id: u64, stream: Stream<Resp>) {
        self.0.push((id, stream));
    }

    pub fn remove(&mut self, id: &u64) -> Option<Stream<Resp>> {
        let at = self.0.iter().position(|(k, _)| k == id)?;
        Some(self.0.swap_remove(at).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<Resp: ShmMessage> IntoIterator for Streams<Resp> {
    type Item = (u64, Stream<Resp>);
    type IntoIter = std::vec::IntoIter<(u64, Stream<Resp>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// One request in flight.
pub(crate) struct Stream<Resp: ShmMessage> {
    /// The server it went to: (slot, generation).
    pub server: (u32, u32),
    /// Responses that arrived while another request was being waited for.
    queue: VecDeque<Parked<Resp>>,
    /// The server said the stream ended; what it sent before is in the response ring.
    end_seen: bool,
    finished: bool,
    lost: bool,
    /// When `try_receive` next asks whether the server is still there (`None`: one interval
    /// after the first look).
    next_probe: Option<Instant>,
}

impl<Resp: ShmMessage> Stream<Resp> {
    pub fn new(server: (u32, u32)) -> Self {
        Stream {
            server,
            queue: VecDeque::new(),
            end_seen: false,
            finished: false,
            lost: false,
            next_probe: None,
        }
    }
}

/// A received sample taken apart, to keep it in a queue (a `Sample` borrows the subscriber,
/// which lives next to the queue).
struct Parked<M> {
    publisher: u32,
    generation: u32,
    sequence: u64,
    last: bool,
    held: Held<M>,
}

// SAFETY: a parked sample is a sample (see `Sample`'s `Send`): it points into a publisher's
// heap held mapped until it is given back, and only ever gives shared access to an `M`.
unsafe impl<M: ShmMessage + Sync> Send for Parked<M> {}

enum Polled<'a, Resp: ShmMessage> {
    Got(Sample<'a, Resp>),
    Finished,
    /// Its server was found gone.
    Lost((u32, u32)),
    Nothing,
}

impl<Resp: ShmMessage> Inbox<Resp> {
    pub fn lock(&self) -> MutexGuard<'_, InboxState<Resp>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn park(sample: Sample<'_, Resp>, last: bool) -> Parked<Resp> {
        let sample = ManuallyDrop::new(sample);
        // SAFETY: `held` is read out exactly once and the sample is never used or dropped
        // again (ManuallyDrop), so the slot it holds has exactly one owner: the parked copy.
        let held = unsafe { std::ptr::read(&sample.held) };
        Parked {
            publisher: sample.publisher,
            generation: sample.generation,
            sequence: sample.sequence,
            last,
            held,
        }
    }

    fn unpark(&self, parked: Parked<Resp>) -> Sample<'_, Resp> {
        Sample {
            subscriber: &self.responses,
            publisher: parked.publisher,
            generation: parked.generation,
            sequence: parked.sequence,
            held: parked.held,
        }
    }

    /// Gives a response to its stream: returns it if it is for `want`, parks it if it is for
    /// another request in flight, drops it otherwise (a request given up on).
    fn route<'a>(
        &self,
        st: &mut InboxState<Resp>,
        mut sample: Sample<'a, Resp>,
        want: u64,
    ) -> Option<Sample<'a, Resp>> {
        let (id, index, last) = tag::decode(sample.sequence);
        sample.sequence = index + 1;
        let stream = st.streams.get_mut(&id)?;
        if id == want {
            stream.finished |= last;
            return Some(sample);
        }
        stream.queue.push_back(Self::park(sample, last));
        None
    }

    fn poll(&self, id: u64) -> Result<Polled<'_, Resp>> {
        let mut st = self.lock();
        let Some(stream) = st.streams.get_mut(&id) else { return Ok(Polled::Finished) };
        if let Some(parked) = stream.queue.pop_front() {
            stream.finished |= parked.last;
            return Ok(Polled::Got(self.unpark(parked)));
        }
        if stream.finished {
            return Ok(Polled::Finished);
        }
        if let Some(sample) = self.drain(&mut st, id)? {
            return Ok(Polled::Got(sample));
        }
        // Nothing for us: did a stream end without a last response? What its server sent
        // before the marker is in the response ring by the time we see the marker, so look
        // there once more after a marker for us.
        let mut ours = false;
        while let Some(marker) = self.ends.try_receive()? {
            let ended = *marker & tag::ID_MASK;
            ours |= ended == id;
            if let Some(stream) = st.streams.get_mut(&ended) {
                stream.end_seen = true;
            }
        }
        if ours && let Some(sample) = self.drain(&mut st, id)? {
            return Ok(Polled::Got(sample));
        }
        let Some(stream) = st.streams.get_mut(&id) else { return Ok(Polled::Finished) };
        if stream.end_seen && stream.queue.is_empty() {
            stream.finished = true;
            return Ok(Polled::Finished);
        }
        if let Some(parked) = stream.queue.pop_front() {
            stream.finished |= parked.last;
            return Ok(Polled::Got(self.unpark(parked)));
        }
        if stream.lost {
            return Ok(Polled::Lost(stream.server));
        }
        Ok(Polled::Nothing)
    }

    /// Takes responses until one for `id` comes (returned) or none is left (others are parked).
    fn drain<'a>(&'a self, st: &mut InboxState<Resp>, id: u64) -> Result<Option<Sample<'a, Resp>>> {
        while let Some(sample) = self.responses.try_receive()? {
            if let Some(sample) = self.route(st, sample, id) {
                return Ok(Some(sample));
            }
        }
        Ok(None)
    }

    fn wait(&self, id: u64, deadline: Option<Instant>) -> Result<Option<Sample<'_, Resp>>> {
        let mut next_probe = Instant::now() + self.interval;
        loop {
            match self.poll(id)? {
                Polled::Got(sample) => return Ok(Some(sample)),
                Polled::Finished => return Ok(None),
                Polled::Lost(server) => return Err(self.no_server(id, server)),
                Polled::Nothing => {}
            }
            let now = Instant::now();
            if now >= next_probe {
                next_probe = now + self.interval;
                self.check_server(id)?;
            }
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            let until = deadline.map_or(next_probe, |d| d.min(next_probe)).min(now + SLICE);
            if let Some(sample) = self.responses.receive_timeout(until - now)? {
                let mut st = self.lock();
                if let Some(sample) = self.route(&mut st, sample, id) {
                    return Ok(Some(sample));
                }
            }
        }
    }

    /// When stream `id`'s server is next due to be probed (`None`: the stream is over).
    fn next_probe(&self, id: u64) -> Option<Instant> {
        let mut st = self.lock();
        let stream = st.streams.get_mut(&id)?;
        Some(*stream.next_probe.get_or_insert_with(|| Instant::now() + self.interval))
    }

    /// Whether there is something for stream `id` without taking it from a ring: a parked
    /// response, an end, a lost server.
    fn has_news(&self, id: u64) -> bool {
        self.lock().streams.get(&id).is_none_or(|s| !s.queue.is_empty() || s.finished || s.lost)
    }

    /// For non-blocking takes: probes stream `id`'s server once its interval has passed.
    fn probe_if_due(&self, id: u64) -> Result<()> {
        let now = Instant::now();
        if self.next_probe(id).is_some_and(|at| now >= at) {
            if let Some(stream) = self.lock().streams.get_mut(&id) {
                stream.next_probe = Some(now + self.interval);
            }
            self.check_server(id)?;
        }
        Ok(())
    }

    /// Fails the stream with [`Error::NoServer`] if its server is gone (after one more look
    /// for what it sent before going).
    fn check_server(&self, id: u64) -> Result<()> {
        let server = match self.lock().streams.get(&id) {
            Some(stream) if stream.lost => return Err(self.no_server(id, stream.server)),
            Some(stream) => stream.server,
            None => return Ok(()),
        };
        if self.registry.present(SERVER, server.0, server.1) {
            return Ok(());
        }
        if let Some(stream) = self.lock().streams.get_mut(&id) {
            stream.lost = true;
        }
        Err(self.no_server(id, server))
    }

    fn no_server(&self, id: u64, server: (u32, u32)) -> Error {
        Error::NoServer {
            service: self.registry.service.clone(),
            context: format!(
                "any more: server {} (generation {}) went away with request {id} in flight",
                server.0, server.1
            ),
        }
    }

    /// Forgets stream `id`, giving back what it had parked.
    fn forget(&self, id: u64) {
        let stream = self.lock().streams.remove(&id);
        if let Some(stream) = stream {
            for parked in stream.queue {
                drop(self.unpark(parked));
            }
        }
    }
}

impl<Resp: ShmMessage> Drop for Inbox<Resp> {
    fn drop(&mut self) {
        let streams = std::mem::take(&mut self.lock().streams);
        for (_, stream) in streams {
            for parked in stream.queue {
                drop(self.unpark(parked));
            }
        }
    }
}

/// The responses to one request of a [`Client`](crate::service::Client), in the order the
/// server sent them.
///
/// Receive with [`try_receive`](Self::try_receive), [`receive`](Self::receive) or
/// [`receive_timeout`](Self::receive_timeout); each response is a [`Sample`] read in place in
/// the server's memory, whose [`sequence`](Sample::sequence) is its place in the stream (1, 2,
/// …). Once the stream has ended (the server's last response was received, or it dropped the
/// request), `try_receive` and `receive_timeout` return `None` at once and
/// [`is_finished`](Self::is_finished) is true. If the server dies or leaves before ending the
/// stream, receiving fails with [`Error::NoServer`] within the client's liveness interval.
///
/// Dropping it gives up on the request: later responses to it are dropped when they arrive.
pub struct PendingResponse<'a, Resp: ShmMessage> {
    inbox: &'a Inbox<Resp>,
    id: u64,
}

impl<'a, Resp: ShmMessage> PendingResponse<'a, Resp> {
    pub(crate) fn new(inbox: &'a Inbox<Resp>, id: u64) -> Self {
        PendingResponse { inbox, id }
    }

    /// Takes the next response if one has arrived; never blocks.
    ///
    /// # Errors
    ///
    /// [`Error::NoServer`] if the server was already found gone; the errors of
    /// [`Subscriber::try_receive`] on the client's response topic.
    pub fn try_receive(&self) -> Result<Option<Sample<'a, Resp>>> {
        match self.inbox.poll(self.id)? {
            Polled::Got(sample) => Ok(Some(sample)),
            Polled::Finished => Ok(None),
            Polled::Nothing => self.inbox.probe_if_due(self.id).map(|()| None),
            Polled::Lost(server) => Err(self.inbox.no_server(self.id, server)),
        }
    }

    /// Waits up to `timeout` for the next response; `None` if none came or the stream has
    /// ended ([`is_finished`](Self::is_finished) tells which).
    ///
    /// # Errors
    ///
    /// [`Error::NoServer`] if the server died or left before ending the stream; as
    /// [`try_receive`](Self::try_receive).
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Option<Sample<'a, Resp>>> {
        self.inbox.wait(self.id, crate::wait::deadline(Some(timeout)))
    }

    /// Waits for the next response.
    ///
    /// # Errors
    ///
    /// [`Error::ResponsesEnded`] if the stream has ended; [`Error::NoServer`] if the server
    /// died or left before ending it; as [`try_receive`](Self::try_receive).
    pub fn receive(&self) -> Result<Sample<'a, Resp>> {
        match self.inbox.wait(self.id, None)? {
            Some(sample) => Ok(sample),
            None => Err(Error::ResponsesEnded {
                service: self.inbox.registry.service.clone(),
                request: self.id,
            }),
        }
    }

    /// Whether the stream has ended and every response of it was received.
    pub fn is_finished(&self) -> bool {
        self.inbox.lock().streams.get(&self.id).is_none_or(|s| s.finished && s.queue.is_empty())
    }

    /// The request's number (per client, from 1).
    pub fn request_id(&self) -> u64 {
        self.id
    }

    /// What a wait set sleeps on for this request: the client's response subscriber (a
    /// response arrived), its `end` subscriber (a stream ended without a last response), and
    /// when the server is next due to be probed (`try_receive` probes it then).
    pub(crate) fn wait_sources(
        &self,
    ) -> (&'a Subscriber<Resp>, &'a Subscriber<u64>, Option<Instant>) {
        (&self.inbox.responses, &self.inbox.ends, self.inbox.next_probe(self.id))
    }

    /// Whether something for this request is known without a ring: parked, ended, lost.
    pub(crate) fn has_news(&self) -> bool {
        self.inbox.has_news(self.id)
    }
}

impl<Resp: ShmMessage> fmt::Debug for PendingResponse<'_, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingResponse")
            .field("service", &self.inbox.registry.service)
            .field("id", &self.id)
            .finish()
    }
}

impl<Resp: ShmMessage> Drop for PendingResponse<'_, Resp> {
    fn drop(&mut self) {
        self.inbox.forget(self.id);
    }
}
