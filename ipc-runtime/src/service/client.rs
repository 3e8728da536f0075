//! [`Client`]: sends requests to the service's servers in turn and receives their responses on
//! its own response topic.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::envelope::Envelope;
use super::pending::{Inbox, InboxState, PendingResponse, Stream};
use super::registry::{CLIENT, Membership, Registry, SERVER};
use super::{
    DEFAULT_LIVENESS_INTERVAL, ServiceOptions, end_topic, request_topic, response_topic,
    service_options, tag,
};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::pubsub::{Overflow, Publisher, Subscriber};

/// Sends requests of type `Req` to a service and receives responses of type `Resp`.
///
/// Each request goes to one live server, the servers taking turns (round robin; see the
/// [module docs](crate::service)). A client may have up to `max_pending` requests in flight,
/// from any number of threads.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-client-{}", std::process::id())).unwrap();
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Text {
///     text: ShmString,
/// }
///
/// let server = Server::<Text, u64>::new("length")?;
/// let client = Client::<Text, u64>::new("length")?;
/// let pending = client.request(Text { text: ShmString::from("hello") })?;
/// let request = server.receive_timeout(Duration::from_secs(5))?.expect("a request");
/// let length = request.text.len() as u64;
/// request.respond(length)?;
/// assert_eq!(*pending.receive()?, 5);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct Client<Req: ShmMessage + Send, Resp: ShmMessage> {
    inbox: Inbox<Resp>,
    member: Membership,
    servers: Mutex<Servers<Req>>,
    domain: String,
    max_pending: u32,
}

struct Servers<Req: ShmMessage + Send> {
    links: Vec<ServerLink<Req>>,
    turn: usize,
    epoch: u64,
}

struct ServerLink<Req: ShmMessage + Send> {
    slot: u32,
    generation: u32,
    requests: Arc<Publisher<Envelope<Req>>>,
}

/// Options for a [`Client`]; service-wide options are fixed by the service's first
/// participant.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-clientb-{}", std::process::id())).unwrap();
/// let client = Client::<u32, u32>::builder("echo").max_pending(4).spin(1000).create()?;
/// assert_eq!(client.service(), "echo");
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct ClientBuilder<Req, Resp> {
    service: String,
    domain: Option<String>,
    options: ServiceOptions,
    spin: u32,
    interval: Duration,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> fmt::Debug for ClientBuilder<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("service", &self.service)
            .field("options", &self.options)
            .field("spin", &self.spin)
            .finish()
    }
}

service_options!(ClientBuilder);

impl<Req: ShmMessage + Send, Resp: ShmMessage> ClientBuilder<Req, Resp> {
    /// Polls this many times before sleeping in a blocking receive of a response (default 0).
    pub fn spin(mut self, polls: u32) -> Self {
        self.spin = polls;
        self
    }

    /// Registers the client.
    ///
    /// # Errors
    ///
    /// [`Error::ServiceMismatch`] if the service has other types, [`Error::ServiceFull`],
    /// [`Error::IncompatibleOptions`] naming a service-wide option, and the errors of joining a
    /// topic.
    pub fn create(self) -> Result<Client<Req, Resp>> {
        Client::create(self)
    }
}

impl<Req: ShmMessage + Send, Resp: ShmMessage> Client<Req, Resp> {
    /// A client of `service` with default options (see [`Client::builder`]).
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::create`].
    pub fn new(service: &str) -> Result<Self> {
        Self::builder(service).create()
    }

    /// A builder for a client of `service`.
    pub fn builder(service: &str) -> ClientBuilder<Req, Resp> {
        ClientBuilder {
            service: service.to_owned(),
            domain: None,
            options: ServiceOptions::default(),
            spin: 0,
            interval: DEFAULT_LIVENESS_INTERVAL,
            _types: PhantomData,
        }
    }

    fn create(builder: ClientBuilder<Req, Resp>) -> Result<Self> {
        let domain = match &builder.domain {
            Some(domain) => {
                crate::domain::validate_domain(domain)?;
                domain.clone()
            }
            None => crate::domain::current().to_owned(),
        };
        let service = builder.service.as_str();
        let spin = builder.spin;
        let (registry, member, (responses, ends)) = Registry::join::<Req, Resp, _>(
            &domain,
            service,
            &builder.options,
            CLIENT,
            |registry, index, generation| {
                let limits = registry.limits;
                let responses =
                    Subscriber::<Resp>::builder(&response_topic(service, index, generation))
                        .domain(&domain)
                        .max_publishers(limits.max_servers)
                        .max_subscribers(1)
                        .subscriber_capacity(limits.response_depth)
                        .max_borrowed(limits.response_depth)
                        .overflow(Overflow::Block)
                        .spin(spin)
                        .create()?;
                let ends = Subscriber::<u64>::builder(&end_topic(service, index, generation))
                    .domain(&domain)
                    .max_publishers(limits.max_servers)
                    .max_subscribers(1)
                    .subscriber_capacity(limits.max_pending)
                    .max_borrowed(1)
                    .overflow(Overflow::Block)
                    .create()?;
                Ok((responses, ends))
            },
        )?;
        let max_pending = registry.limits.max_pending;
        let client = Client {
            inbox: Inbox {
                registry,
                responses,
                ends,
                state: Mutex::new(InboxState { next_id: 1, streams: Default::default() }),
                interval: builder.interval,
            },
            member,
            servers: Mutex::new(Servers { links: Vec::new(), turn: 0, epoch: u64::MAX }),
            domain,
            max_pending,
        };
        client.servers.lock().unwrap_or_else(PoisonError::into_inner).refresh(&client, false);
        Ok(client)
    }

    /// Sends `request` to the next live server and returns the way to its responses.
    ///
    /// # Errors
    ///
    /// [`Error::NoServer`] if no server is registered, [`Error::TooManyPending`] with
    /// `max_pending` requests in flight, and the errors of
    /// [`Publisher::publish`](crate::Publisher::publish) (a server's queue staying full).
    pub fn request(&self, request: Req) -> Result<PendingResponse<'_, Resp>> {
        let (server, requests) = {
            let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
            if servers.epoch != self.inbox.registry.epoch() {
                servers.refresh(self, false);
            }
            if servers.links.is_empty() {
                return Err(Error::NoServer {
                    service: self.inbox.registry.service.clone(),
                    context: "to take the request".into(),
                });
            }
            let k = servers.turn % servers.links.len();
            servers.turn = servers.turn.wrapping_add(1);
            let link = &servers.links[k];
            ((link.slot, link.generation), Arc::clone(&link.requests))
        };
        let id = {
            let mut st = self.inbox.lock();
            if st.streams.len() >= self.max_pending as usize {
                return Err(Error::TooManyPending {
                    service: self.inbox.registry.service.clone(),
                    max: self.max_pending,
                });
            }
            let id = st.next_id;
            st.next_id = if st.next_id >= tag::ID_MASK { 1 } else { st.next_id + 1 };
            st.streams.insert(id, Stream::new(server));
            id
        };
        let pending = PendingResponse::new(&self.inbox, id);
        let envelope = Envelope {
            client: self.member.index,
            generation: self.member.generation,
            id,
            body: request,
        };
        requests.publish(envelope)?;
        Ok(pending)
    }

    /// Number of live servers this client sends to (probing them now).
    pub fn servers(&self) -> usize {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers.refresh(self, true);
        servers.links.len()
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.inbox.registry.service
    }

    /// The subscriber responses arrive on (for a wait set: a pending response may have
    /// progress when it has data; the `end` topic is only looked at when receiving).
    #[allow(dead_code)]
    pub(crate) fn response_subscriber(&self) -> &Subscriber<Resp> {
        &self.inbox.responses
    }
}

impl<Req: ShmMessage + Send> Servers<Req> {
    /// Takes in servers that registered, forgets those that left and, if `probe`, those that
    /// died. (Requests do not probe: a request waiting for a dead server finds it dead and
    /// reaps it, which changes the registry's epoch for everyone.)
    fn refresh<Resp: ShmMessage>(&mut self, client: &Client<Req, Resp>, probe: bool) {
        let registry = &client.inbox.registry;
        if probe {
            self.links.retain(|link| registry.present(SERVER, link.slot, link.generation));
        }
        let epoch = registry.epoch();
        if epoch == self.epoch {
            return;
        }
        self.epoch = epoch;
        let present = registry.members(SERVER);
        self.links.retain(|link| present.contains(&(link.slot, link.generation)));
        for (slot, generation) in present {
            if self.links.iter().any(|l| (l.slot, l.generation) == (slot, generation)) {
                continue;
            }
            let requests = Publisher::<Envelope<Req>>::builder(&request_topic(
                &registry.service,
                slot,
                generation,
            ))
            .domain(&client.domain)
            .create();
            match requests {
                Ok(requests) => {
                    self.links.push(ServerLink { slot, generation, requests: Arc::new(requests) })
                }
                Err(err) => {
                    tracing::warn!(service = %registry.service, slot, %err, "cannot send to a server");
                    // Look again next time.
                    self.epoch = u64::MAX;
                }
            }
        }
        self.links.sort_by_key(|l| l.slot);
    }
}

impl<Req: ShmMessage + Send, Resp: ShmMessage> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.inbox.registry.service)
            .field("request", &Req::TYPE_NAME)
            .field("response", &Resp::TYPE_NAME)
            .field("slot", &self.member.index)
            .finish()
    }
}

impl<Req: ShmMessage + Send, Resp: ShmMessage> Drop for Client<Req, Resp> {
    fn drop(&mut self) {
        self.inbox.registry.leave(&mut self.member);
        let links = std::mem::take(
            &mut self.servers.get_mut().unwrap_or_else(PoisonError::into_inner).links,
        );
        drop(links);
    }
}
