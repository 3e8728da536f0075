//! [`Server`]: receives requests from its request topic and answers into each client's
//! response topic.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::active::ActiveRequest;
use super::envelope::Envelope;
use super::registry::{CLIENT, Membership, Registry, SERVER};
use super::{
    DEFAULT_LIVENESS_INTERVAL, ServiceOptions, end_topic, request_topic, response_topic,
    service_options,
};
use crate::error::Result;
use crate::message::ShmMessage;
use crate::pubsub::{Overflow, Publisher, Sample, Subscriber};

/// Answers requests of type `Req` with responses of type `Resp` for a service.
///
/// Several servers may serve one service; each request goes to one of them (the clients take
/// turns, see the [module docs](crate::service)). A server may be shared between threads.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-server-{}", std::process::id())).unwrap();
/// let server = Server::<u32, u64>::new("square")?;
/// let client = Client::<u32, u64>::new("square")?;
/// let pending = client.request(12)?;
/// if let Some(request) = server.receive_timeout(Duration::from_secs(5))? {
///     let n = u64::from(*request);
///     request.respond(n * n)?;
/// }
/// assert_eq!(*pending.receive()?, 144);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct Server<Req: ShmMessage, Resp: ShmMessage + Send> {
    registry: Registry,
    member: Membership,
    requests: Subscriber<Envelope<Req>>,
    links: Mutex<Links<Resp>>,
    /// The registry epoch `links` were last checked against (read without the lock).
    epoch: AtomicU64,
    /// Empty polls since the clock was last looked at.
    idle: AtomicU32,
    response_timeout: Duration,
    interval: Duration,
}

struct Links<Resp: ShmMessage + Send> {
    /// By client slot: our way to the client (which names its generation).
    by_slot: Vec<Option<Arc<ClientLink<Resp>>>>,
    count: usize,
    next_probe: Instant,
}

/// How many empty polls pass between looks at the clock (for the liveness probe) in
/// `try_receive`: a busy-polling server reads no clock per poll.
const POLLS_PER_CLOCK: u32 = 64;

/// One client as a server sees it: publishers on its response and end topics.
pub(crate) struct ClientLink<Resp: ShmMessage + Send> {
    pub service: String,
    pub slot: u32,
    pub generation: u32,
    pub responses: Publisher<Resp>,
    domain: String,
    response_timeout: Duration,
    /// Made when first needed (a stream ended without a last response).
    end: OnceLock<Option<Publisher<u64>>>,
}

impl<Resp: ShmMessage + Send> ClientLink<Resp> {
    /// Tells the client that request `id`'s stream ended (after what was sent).
    pub fn end(&self, id: u64) {
        let end = self.end.get_or_init(|| {
            Publisher::<u64>::builder(&end_topic(&self.service, self.slot, self.generation))
                .domain(&self.domain)
                .block_timeout(self.response_timeout)
                .create()
                .map_err(|err| tracing::warn!(service = %self.service, %err, "cannot tell a client its stream ended"))
                .ok()
        });
        if let Some(end) = end
            && let Err(err) = end.publish(id)
        {
            tracing::warn!(service = %self.service, %err, "cannot tell a client its stream ended");
        }
    }
}

/// Options for a [`Server`]; service-wide options are fixed by the service's first
/// participant.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-serverb-{}", std::process::id())).unwrap();
/// let server = Server::<u32, u32>::builder("echo")
///     .max_clients(4)
///     .max_pending(8)
///     .response_timeout(Duration::from_millis(500))
///     .create()?;
/// assert_eq!(server.service(), "echo");
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct ServerBuilder<Req, Resp> {
    service: String,
    domain: Option<String>,
    options: ServiceOptions,
    max_active: u32,
    response_timeout: Duration,
    interval: Duration,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> fmt::Debug for ServerBuilder<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("service", &self.service)
            .field("options", &self.options)
            .field("max_active", &self.max_active)
            .finish()
    }
}

service_options!(ServerBuilder);

impl<Req: ShmMessage, Resp: ShmMessage + Send> ServerBuilder<Req, Resp> {
    /// How many [`ActiveRequest`]s this server may hold at once (default 16).
    pub fn max_active(mut self, n: u32) -> Self {
        self.max_active = n;
        self
    }

    /// How long sending a response waits for room in a client's full response queue before
    /// failing with [`Error::PublishTimeout`](crate::Error::PublishTimeout) (default 1 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Registers the server and starts taking requests.
    ///
    /// # Errors
    ///
    /// [`Error::ServiceMismatch`](crate::Error::ServiceMismatch) if the service has other
    /// types, [`Error::ServiceFull`](crate::Error::ServiceFull),
    /// [`Error::IncompatibleOptions`](crate::Error::IncompatibleOptions) naming a service-wide
    /// option, and the errors of joining a topic.
    pub fn create(self) -> Result<Server<Req, Resp>> {
        Server::create(self)
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> Server<Req, Resp> {
    /// A server of `service` with default options (see [`Server::builder`]).
    ///
    /// # Errors
    ///
    /// As [`ServerBuilder::create`].
    pub fn new(service: &str) -> Result<Self> {
        Self::builder(service).create()
    }

    /// A builder for a server of `service`.
    pub fn builder(service: &str) -> ServerBuilder<Req, Resp> {
        ServerBuilder {
            service: service.to_owned(),
            domain: None,
            options: ServiceOptions::default(),
            max_active: 16,
            response_timeout: Duration::from_secs(1),
            interval: DEFAULT_LIVENESS_INTERVAL,
            _types: PhantomData,
        }
    }

    fn create(builder: ServerBuilder<Req, Resp>) -> Result<Self> {
        let domain = match &builder.domain {
            Some(domain) => {
                crate::domain::validate_domain(domain)?;
                domain.clone()
            }
            None => crate::domain::current().to_owned(),
        };
        let service = builder.service.as_str();
        let max_active = builder.max_active;
        let (registry, member, requests) = Registry::join::<Req, Resp, _>(
            &domain,
            service,
            &builder.options,
            SERVER,
            |registry, index, generation| {
                let limits = registry.limits;
                Subscriber::<Envelope<Req>>::builder(&request_topic(service, index, generation))
                    .domain(&domain)
                    .max_publishers(limits.max_clients)
                    .max_subscribers(1)
                    .subscriber_capacity(limits.max_pending)
                    .max_borrowed(max_active)
                    .overflow(Overflow::Block)
                    .create()
            },
        )?;
        let epoch = registry.epoch();
        let max_clients = registry.limits.max_clients as usize;
        Ok(Server {
            registry,
            member,
            requests,
            links: Mutex::new(Links {
                by_slot: (0..max_clients).map(|_| None).collect(),
                count: 0,
                next_probe: Instant::now() + builder.interval,
            }),
            epoch: AtomicU64::new(epoch),
            idle: AtomicU32::new(0),
            response_timeout: builder.response_timeout,
            interval: builder.interval,
        })
    }

    /// Takes the next request if one is queued; never blocks. Requests of clients that died
    /// meanwhile are dropped unanswered.
    ///
    /// # Errors
    ///
    /// The errors of [`Subscriber::try_receive`] on the server's request topic (a request
    /// failing its validity check, a client writing garbage).
    pub fn try_receive(&self) -> Result<Option<ActiveRequest<'_, Req, Resp>>> {
        loop {
            let Some(sample) = self.requests.try_receive()? else {
                let idle = self.idle.fetch_add(1, Ordering::Relaxed);
                self.maintain(idle.is_multiple_of(POLLS_PER_CLOCK), false);
                return Ok(None);
            };
            if let Some(active) = self.accept(sample) {
                return Ok(Some(active));
            }
        }
    }

    /// Waits for the next request without spinning.
    ///
    /// # Errors
    ///
    /// As [`try_receive`](Self::try_receive).
    pub fn receive(&self) -> Result<ActiveRequest<'_, Req, Resp>> {
        loop {
            if let Some(active) = self.receive_until(None)? {
                return Ok(active);
            }
        }
    }

    /// Waits up to `timeout` for the next request; `None` if none came.
    ///
    /// # Errors
    ///
    /// As [`try_receive`](Self::try_receive).
    pub fn receive_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<ActiveRequest<'_, Req, Resp>>> {
        self.receive_until(crate::wait::deadline(Some(timeout)))
    }

    fn receive_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<ActiveRequest<'_, Req, Resp>>> {
        loop {
            if let Some(active) = self.try_receive()? {
                return Ok(Some(active));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            // Wake now and then to notice dead clients while idle.
            self.maintain(true, false);
            let slice = deadline.map_or(self.interval, |d| (d - now).min(self.interval));
            if let Some(sample) = self.requests.receive_timeout(slice)?
                && let Some(active) = self.accept(sample)
            {
                return Ok(Some(active));
            }
        }
    }

    /// Turns a received envelope into an active request, or drops it (its client is gone).
    fn accept<'a>(
        &'a self,
        sample: Sample<'a, Envelope<Req>>,
    ) -> Option<ActiveRequest<'a, Req, Resp>> {
        let (slot, generation, id) = (sample.client, sample.generation, sample.id);
        let link = self.link(slot, generation)?;
        Some(ActiveRequest::new(sample, link, &self.registry, id))
    }

    /// The link to client (`slot`, `generation`), made on its first request; `None` if that
    /// client is gone (or never was: the envelope is the client's word).
    fn link(&self, slot: u32, generation: u32) -> Option<Arc<ClientLink<Resp>>> {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let Links { by_slot, count, .. } = &mut *links;
        // A slot beyond the service's clients: the envelope is the client's word, not ours.
        let entry = by_slot.get_mut(slot as usize)?;
        if let Some(link) = entry {
            if link.generation == generation {
                return Some(Arc::clone(link));
            }
            if !self.registry.present(CLIENT, slot, link.generation) {
                *entry = None;
                *count -= 1;
            }
        }
        if !self.registry.present(CLIENT, slot, generation) {
            tracing::debug!(service = %self.registry.service, slot, "dropping a request of a client that is gone");
            return None;
        }
        let service = &self.registry.service;
        let responses = Publisher::<Resp>::builder(&response_topic(service, slot, generation))
            .domain(&self.registry.topic.domain)
            .block_timeout(self.response_timeout)
            .create();
        let responses = match responses {
            Ok(responses) => responses,
            Err(err) => {
                tracing::warn!(service = %service, slot, %err, "cannot answer a client; its request is dropped");
                return None;
            }
        };
        let link = Arc::new(ClientLink {
            service: service.clone(),
            slot,
            generation,
            responses,
            domain: self.registry.topic.domain.clone(),
            response_timeout: self.response_timeout,
            end: OnceLock::new(),
        });
        if entry.replace(Arc::clone(&link)).is_none() {
            *count += 1;
        }
        Some(link)
    }

    /// Forgets clients that left (when the registry changed) or died (probed every
    /// `liveness_interval` when `clock` says to look at the time, or now if `probe`): their
    /// response topics are let go, which gives back everything queued for them.
    fn maintain(&self, clock: bool, probe: bool) {
        let epoch = self.registry.epoch();
        let changed = epoch != self.epoch.load(Ordering::Relaxed);
        if !changed && !clock && !probe {
            return;
        }
        let now = Instant::now();
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let due = probe || (clock && now >= links.next_probe);
        if !changed && !due {
            return;
        }
        self.epoch.store(epoch, Ordering::Relaxed);
        if due {
            links.next_probe = now + self.interval;
        }
        if links.count == 0 {
            return;
        }
        let present = self.registry.members(CLIENT);
        let mut dropped = Vec::new();
        let Links { by_slot, count, .. } = &mut *links;
        for entry in by_slot.iter_mut() {
            let gone = entry.as_ref().is_some_and(|link| {
                !present.contains(&(link.slot, link.generation))
                    || (due && !self.registry.present(CLIENT, link.slot, link.generation))
            });
            if gone {
                dropped.extend(entry.take());
                *count -= 1;
            }
        }
        drop(links);
        // Dropping a publisher whose subscriber is dead takes everything back at once.
        drop(dropped);
    }

    /// Probes every client now and forgets the dead (what receiving does every
    /// `liveness_interval`).
    ///
    /// # Errors
    ///
    /// None at present; kept fallible like the other `cleanup`s.
    pub fn cleanup(&self) -> Result<()> {
        self.maintain(true, true);
        self.requests.cleanup()
    }

    /// Number of clients this server has answered and still knows.
    pub fn clients(&self) -> usize {
        self.links.lock().unwrap_or_else(PoisonError::into_inner).count
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.registry.service
    }

    /// The subscriber requests arrive on (for a wait set: the server has work when it has data).
    pub(crate) fn request_subscriber(&self) -> &Subscriber<Envelope<Req>> {
        &self.requests
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> fmt::Debug for Server<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("service", &self.registry.service)
            .field("request", &Req::TYPE_NAME)
            .field("response", &Resp::TYPE_NAME)
            .field("slot", &self.member.index)
            .finish()
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Send> Drop for Server<Req, Resp> {
    fn drop(&mut self) {
        // Leave first: clients stop sending to us, and those waiting learn we are gone.
        self.registry.leave(&mut self.member);
        let links = std::mem::take(
            &mut self.links.get_mut().unwrap_or_else(PoisonError::into_inner).by_slot,
        );
        drop(links);
    }
}
