//! Reading and tidying a topic from outside: what `ipc list`, `ipc show` and `ipc clean` use.
//!
//! Counters live in the participants' ports (in their heaps); a port that cannot be mapped
//! (its process is gone and its heap removed) reads as zero.

use std::sync::atomic::Ordering;

pub(crate) use super::port::sharing_holds;
use super::port::{PubPort, SubPort};
use super::topic::{PUBLISHER, SUBSCRIBER, TopicSegment, read_heap_ref};
use crate::error::Result;
use crate::heap::HeapInfo;
use crate::liveness::Probe;
use crate::membership::{self, ACTIVE, CLAIMING, CLOSING, FREE, Registry, Role};
use crate::segment::{Access, Segment, SegmentKind, SegmentName};

/// A participant (publisher or subscriber slot) of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantInfo {
    /// Slot index.
    pub slot: u32,
    /// `active`, `joining`, `closing` (a dropped publisher with samples still out) or `garbage`.
    pub state: &'static str,
    /// Incarnation of the slot.
    pub generation: u32,
    /// Process id recorded by the participant.
    pub pid: u32,
    /// Whether its liveness token is held.
    pub alive: bool,
    /// Publishers: last sequence number published. Subscribers: samples received.
    pub count: u64,
    /// Subscribers: samples queued for it now. Publishers: 0.
    pub queued: u64,
    /// Publishers: their heap.
    pub heap: Option<HeapInfo>,
}

/// A topic: its message type, options and participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Message type name recorded by the creator.
    pub type_name: String,
    /// Layout fingerprint of the message type.
    pub fingerprint: u64,
    /// `size_of` the message type.
    pub message_size: u64,
    /// Wait backend name.
    pub backend: String,
    /// Queue depth per subscriber.
    pub subscriber_capacity: u32,
    /// History for late joiners.
    pub history: u32,
    /// Subscriber slots.
    pub max_subscribers: u32,
    /// Publisher slots.
    pub max_publishers: u32,
    /// Overflow policy.
    pub overflow: String,
    /// Samples a subscriber may hold.
    pub max_borrowed: u32,
    /// Occupied publisher slots.
    pub publishers: Vec<ParticipantInfo>,
    /// Occupied subscriber slots.
    pub subscribers: Vec<ParticipantInfo>,
}

fn state_name(state: u32) -> &'static str {
    match state {
        FREE => "free",
        CLAIMING => "joining",
        ACTIVE => "active",
        CLOSING => "closing",
        _ => "garbage",
    }
}

fn probe(topic: &TopicSegment, role: Role, index: u32, _generation: u32) -> Probe {
    topic.probe_holder(role, index)
}

fn pub_port(topic: &TopicSegment, p: u32, generation: u32) -> Option<PubPort> {
    let entry = topic.publisher(p);
    let (domain, heap) = read_heap_ref(&entry.heap)?;
    let offset = entry.port.load(Ordering::Acquire);
    PubPort::map(&domain, heap, offset, topic.layout, p, generation).ok()
}

fn sub_port(topic: &TopicSegment, s: u32, generation: u32) -> Option<SubPort> {
    let entry = topic.subscriber(s);
    let (domain, heap) = read_heap_ref(&entry.heap)?;
    let offset = entry.port.load(Ordering::Acquire);
    SubPort::map(&domain, heap, offset, topic.layout, s, generation).ok()
}

/// Heaps' usage read once for a listing of many topics (their publishers share a few heaps).
pub(crate) type HeapInfos = std::collections::HashMap<(String, u64), Option<HeapInfo>>;

/// Everything about topic `name` in `domain`, read without changing anything.
pub(crate) fn topic_info(domain: &str, name: &str) -> Result<TopicInfo> {
    topic_info_in(domain, name, &mut HeapInfos::new())
}

/// [`topic_info`], reading each heap's usage once per `heaps` (a listing of many topics).
pub(crate) fn topic_info_in(domain: &str, name: &str, heaps: &mut HeapInfos) -> Result<TopicInfo> {
    let topic = TopicSegment::open_existing(domain, name)?;
    let header = topic.header();
    let options = topic.layout.options;
    let backend = crate::wait::builtin_backend(header.backend_id)
        .map_or_else(|| format!("user-defined (id {})", header.backend_id), |(n, _)| n.to_owned());
    let mut pub_ports = Vec::new();
    let mut publishers = Vec::new();
    for p in 0..options.max_publishers {
        let member = topic.member(PUBLISHER, p);
        let state = member.state.load(Ordering::Acquire);
        if state == FREE {
            continue;
        }
        let generation = member.generation.load(Ordering::Acquire);
        let port = pub_port(&topic, p, generation);
        let heap = read_heap_ref(&topic.publisher(p).heap).and_then(|(domain, id)| {
            heaps
                .entry((domain, id))
                .or_insert_with_key(|(domain, id)| crate::heap::info(domain, *id).ok())
                .clone()
        });
        publishers.push(ParticipantInfo {
            slot: p,
            state: state_name(state),
            generation,
            pid: member.pid.load(Ordering::Relaxed),
            alive: probe(&topic, PUBLISHER, p, generation) == Probe::Alive,
            count: port.as_ref().map_or(0, |port| port.stats().sequence.load(Ordering::Relaxed)),
            queued: 0,
            heap,
        });
        if let Some(port) = port {
            pub_ports.push((p, port));
        }
    }
    let mut subscribers = Vec::new();
    for s in 0..options.max_subscribers {
        let member = topic.member(SUBSCRIBER, s);
        let state = member.state.load(Ordering::Acquire);
        if state == FREE {
            continue;
        }
        let generation = member.generation.load(Ordering::Acquire);
        let (mut count, mut queued) = (0, 0);
        if let Some(port) = sub_port(&topic, s, generation) {
            let key = port.header().key.load(Ordering::Acquire);
            for &(p, ref publisher) in &pub_ports {
                let line = port.input(p);
                count += line.received.load(Ordering::Relaxed);
                if publisher.ctl(s).sub_key.load(Ordering::Acquire) == key
                    && line.pub_key.load(Ordering::Acquire)
                        == publisher.header().key.load(Ordering::Acquire)
                {
                    let tail = publisher.comp(s).tail.load(Ordering::Acquire);
                    let head = line.head.load(Ordering::Acquire);
                    // A lapped drop-oldest subscriber resumes `capacity` behind the tail: it
                    // never has more than that to take.
                    queued += tail.saturating_sub(head).min(options.subscriber_capacity as u64);
                }
            }
        }
        subscribers.push(ParticipantInfo {
            slot: s,
            state: state_name(state),
            generation,
            pid: member.pid.load(Ordering::Relaxed),
            alive: probe(&topic, SUBSCRIBER, s, generation) == Probe::Alive,
            count,
            queued,
            heap: None,
        });
    }
    Ok(TopicInfo {
        name: name.to_owned(),
        type_name: topic.type_name(),
        fingerprint: header.fingerprint,
        message_size: header.msg_size,
        backend,
        subscriber_capacity: options.subscriber_capacity,
        history: options.history,
        max_subscribers: options.max_subscribers,
        max_publishers: options.max_publishers,
        overflow: options.overflow.to_string(),
        max_borrowed: options.max_borrowed,
        publishers,
        subscribers,
    })
}

/// Reclaims the slots of dead participants of topic `name` and removes the topic if nobody
/// alive uses it; appends a line per removed object to `removed`. A topic that fails validation
/// is removed if no live process holds one of its tokens, else reported as an error (see
/// [`crate::membership`], "Replace a corrupt object"); so is a lock held too long by another
/// process.
pub(crate) fn clean_topic(domain: &str, name: &str, removed: &mut Vec<String>) -> Result<()> {
    let lock = TopicSegment::lock(domain, name)?;
    let topic = match TopicSegment::open_existing(domain, name) {
        Ok(topic) => topic,
        Err(crate::Error::SegmentNotFound { .. }) => {
            // On Windows the name of a segment whose last process died may still be listed
            // (its registry entry): remove it with the lock file.
            if let Ok(name) = SegmentName::new(domain, SegmentKind::Topic, name) {
                membership::unlink(&name);
            }
            lock.remove();
            removed.push(format!("lock file of topic `{name}` (the topic no longer exists)"));
            return Ok(());
        }
        Err(err) if membership::is_corruption(&err) => {
            TopicSegment::remove_corrupt(domain, name, &err)?;
            lock.remove();
            removed.push(format!("topic `{name}` (corrupt, no live participant: {err})"));
            return Ok(());
        }
        Err(err) => return Err(err),
    };
    for role in [PUBLISHER, SUBSCRIBER] {
        for index in 0..topic.slots(role) {
            let member = topic.member(role, index);
            let (pid, generation) =
                (member.pid.load(Ordering::Relaxed), member.generation.load(Ordering::Acquire));
            if member.state.load(Ordering::Acquire) == FREE {
                continue;
            }
            let heap = heap_segment(&topic, role, index);
            if topic.reap(role, index) {
                let noun = if role == PUBLISHER { "publisher" } else { "subscriber" };
                removed.push(format!(
                    "{noun} {index} of topic `{name}` (dead pid {pid}, generation {generation})"
                ));
                if let Some(heap) = heap
                    && heap_segment_exists(&heap) == Some(false)
                {
                    removed.push(format!("heap segment {heap} (dead pid {pid})"));
                }
            }
        }
    }
    if topic.remove_if_unused(lock) {
        removed.push(format!("topic `{name}` (no live participant)"));
    }
    Ok(())
}

/// The heap segment a registry slot names, if it exists now.
fn heap_segment(topic: &TopicSegment, role: Role, index: u32) -> Option<SegmentName> {
    let heap = if role == PUBLISHER {
        &topic.publisher(index).heap
    } else {
        &topic.subscriber(index).heap
    };
    let (domain, id) = read_heap_ref(heap)?;
    let name = crate::ptr::heap_segment_name(&domain, id).ok()?;
    (heap_segment_exists(&name) == Some(true)).then_some(name)
}

fn heap_segment_exists(name: &SegmentName) -> Option<bool> {
    match Segment::open(name, SegmentKind::Heap, Access::ReadOnly) {
        Ok(_) => Some(true),
        Err(crate::Error::SegmentNotFound { .. }) => Some(false),
        Err(_) => None,
    }
}
