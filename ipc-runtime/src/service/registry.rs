//! The service's registry: the hidden topic `<service>/_service`, whose publisher slots are the
//! servers and subscriber slots the clients. Only membership (slots, generations, liveness
//! tokens) and the header (types, options) are used; no messages flow there.

use std::sync::atomic::Ordering;

use super::{Limits, ServiceOptions, envelope, registry_topic};
use crate::error::{Error, Result};
use crate::membership::{self, ACTIVE, CLOSING, Presence, Role};
use crate::message::ShmMessage;
use crate::pubsub::options::OptionRequest;
use crate::pubsub::topic::{PUBLISHER, SUBSCRIBER, TopicSegment};
use crate::segment::{SegmentKind, SegmentName};
use crate::wait::DefaultBackend;

/// Server slots.
pub(crate) const SERVER: Role = PUBLISHER;
/// Client slots.
pub(crate) const CLIENT: Role = SUBSCRIBER;

/// A joined registry.
#[derive(Debug)]
pub(crate) struct Registry {
    pub service: String,
    pub topic: TopicSegment,
    pub limits: Limits,
}

/// Our slot in the registry.
#[derive(Debug)]
pub(crate) struct Membership {
    pub role: Role,
    pub index: u32,
    pub generation: u32,
    token: Option<Presence>,
}

impl Registry {
    /// Joins service `service` (creating its registry if needed) as `role`, checking types and
    /// options. `setup(registry, index, generation)` runs between claiming the slot and
    /// activating it (with the registry's lock held), so nobody sees the slot before what it
    /// names exists.
    pub fn join<Req: ShmMessage, Resp: ShmMessage, T>(
        domain: &str,
        service: &str,
        options: &ServiceOptions,
        role: Role,
        setup: impl FnOnce(&Registry, u32, u32) -> Result<T>,
    ) -> Result<(Registry, Membership, T)> {
        super::check_name(service)?;
        let name = envelope::service_type_name::<Req, Resp>();
        let ty = envelope::service_type::<Req, Resp>(&name);
        // Unset options take the topic defaults when the service is created: 2 servers, 8
        // clients, 8 pending requests per client, 16 queued responses per client.
        let request = OptionRequest {
            subscriber_capacity: options.response_depth,
            history: None,
            max_subscribers: options.max_clients,
            max_publishers: options.max_servers,
            overflow: None,
            max_borrowed: options.max_pending,
        };
        let (topic, lock) = TopicSegment::join_as::<DefaultBackend>(
            domain,
            &registry_topic(service),
            &request,
            &ty,
        )
        .map_err(|err| rename(service, err))?;
        let o = topic.layout.options;
        let limits = Limits {
            max_servers: o.max_publishers,
            max_clients: o.max_subscribers,
            max_pending: o.max_borrowed,
            response_depth: o.subscriber_capacity,
        };
        let registry = Registry { service: service.to_owned(), topic, limits };
        let claim = match registry.topic.claim(role) {
            Ok(claim) => claim,
            Err(err) => {
                registry.topic.remove_if_unused(lock);
                return Err(rename(service, err));
            }
        };
        let (index, generation) = (claim.index, claim.generation);
        if let Some(dead) = claim.replaced {
            registry.bury(role, index, dead);
        }
        let made = match setup(&registry, index, generation) {
            Ok(made) => made,
            Err(err) => {
                membership::release(&registry.topic, role, index);
                drop(claim.token);
                registry.topic.remove_if_unused(lock);
                return Err(err);
            }
        };
        membership::activate(&registry.topic, role, index);
        drop(lock);
        registry.topic.bump_epoch();
        let member = Membership { role, index, generation, token: Some(claim.token) };
        Ok((registry, member, made))
    }

    /// Leaves: frees our slot, drops our token and, if we were the last, removes the registry.
    pub fn leave(&self, member: &mut Membership) {
        membership::release(&self.topic, member.role, member.index);
        self.topic.bump_epoch();
        drop(member.token.take());
        self.topic.leave();
    }

    /// Changes whenever someone joins, leaves or is reaped.
    pub fn epoch(&self) -> u64 {
        self.topic.epoch()
    }

    /// The slots of `role` that are in use: (slot, generation).
    pub fn members(&self, role: Role) -> Vec<(u32, u32)> {
        let max = if role == SERVER { self.limits.max_servers } else { self.limits.max_clients };
        (0..max)
            .filter_map(|index| {
                let entry = if role == SERVER {
                    &self.topic.publisher(index).member
                } else {
                    &self.topic.subscriber(index).member
                };
                let state = entry.state.load(Ordering::Acquire);
                let generation = entry.generation.load(Ordering::Acquire);
                (state == ACTIVE && generation != 0).then_some((index, generation))
            })
            .collect()
    }

    /// Whether the participant in `role` slot `index` at `generation` is still there: its slot
    /// is still its own and its token is held (one probe of the OS). A dead holder's slot is
    /// reaped (which tells everyone, through the epoch).
    pub fn present(&self, role: Role, index: u32, generation: u32) -> bool {
        let max = if role == SERVER { self.limits.max_servers } else { self.limits.max_clients };
        if index >= max {
            return false;
        }
        let entry = if role == SERVER {
            &self.topic.publisher(index).member
        } else {
            &self.topic.subscriber(index).member
        };
        let state = entry.state.load(Ordering::Acquire);
        if entry.generation.load(Ordering::Acquire) != generation
            || !(state == ACTIVE || state == CLOSING)
        {
            return false;
        }
        if self.topic.alive(role, index, generation) {
            return true;
        }
        if self.topic.reap(role, index) {
            self.bury(role, index, generation);
        }
        false
    }

    /// Removes the hidden topics of a participant found dead, if nobody alive uses them (what
    /// it would have done on leaving): a server's request topic, a client's response and end
    /// topics. Those still in use are removed by their last user.
    pub fn bury(&self, role: Role, index: u32, generation: u32) {
        let domain = &self.topic.domain;
        if role == SERVER {
            remove_unused(domain, &super::request_topic(&self.service, index, generation));
        } else {
            remove_unused(domain, &super::response_topic(&self.service, index, generation));
            remove_unused(domain, &super::end_topic(&self.service, index, generation));
        }
    }
}

/// Removes topic `name` if it exists and nobody alive uses it.
fn remove_unused(domain: &str, name: &str) {
    let Ok(lock) = TopicSegment::lock(domain, name) else { return };
    match TopicSegment::open_existing(domain, name) {
        Ok(topic) => {
            topic.remove_if_unused(lock);
        }
        Err(Error::SegmentNotFound { .. }) => {
            // Gone with its last user (Windows). A stale name (Windows: its registry file) of an object gone with its users.
            if let Ok(seg_name) = SegmentName::new(domain, SegmentKind::Topic, name) {
                membership::unlink(&seg_name);
            }
            lock.remove();
        }
        Err(err) => {
            tracing::debug!(topic = name, %err, "cannot look at a dead participant's topic");
        }
    }
}

/// Errors of the registry topic, said in the service's terms.
fn rename(service: &str, err: Error) -> Error {
    match err {
        Error::TypeMismatch { expected, found, .. } => {
            Error::ServiceMismatch { service: service.to_owned(), expected, found }
        }
        Error::IncompatibleOptions { option, existing, requested, creator, .. } => {
            let option = match option {
                "max_publishers" => "max_servers",
                "max_subscribers" => "max_clients",
                "max_borrowed" => "max_pending",
                "subscriber_capacity" => "response_depth",
                other => other,
            };
            Error::IncompatibleOptions {
                topic: service.to_owned(),
                option,
                existing,
                requested,
                creator,
            }
        }
        Error::TopicFull { role, max, .. } => Error::ServiceFull {
            service: service.to_owned(),
            role: if role == PUBLISHER.plural { "servers" } else { "clients" },
            max,
        },
        Error::InvalidOption { option, reason } => Error::InvalidOption {
            option: match option {
                "max_publishers" => "max_servers",
                "max_subscribers" => "max_clients",
                "max_borrowed" => "max_pending",
                "subscriber_capacity" => "response_depth",
                other => other,
            },
            reason,
        },
        other => other,
    }
}
