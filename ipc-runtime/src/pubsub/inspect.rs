//! Reading and tidying a topic from outside: what `ipc list`, `ipc show` and `ipc clean` use.

use std::sync::atomic::Ordering;

use super::layout::{ACTIVE, CLAIMED, CLOSING, FREE};
use super::topic::{Role, Topic};
use crate::error::Result;
use crate::inspect::{ParticipantInfo, TopicInfo};
use crate::liveness::{self, Probe};
use crate::segment::{Access, Segment, SegmentKind, SegmentName};

fn state_name(state: u32) -> &'static str {
    match state {
        FREE => "free",
        CLAIMED => "joining",
        ACTIVE => "active",
        CLOSING => "closing",
        _ => "garbage",
    }
}

fn probe(topic: &Topic, role: Role, index: u32, generation: u32) -> Probe {
    liveness::probe(&topic.domain, &topic.token_name(role, index, generation))
        .unwrap_or(Probe::Alive)
}

/// Everything about topic `name` in `domain`, read without changing anything.
pub(crate) fn topic_info(domain: &str, name: &str) -> Result<TopicInfo> {
    let topic = Topic::open_existing(domain, name)?;
    let header = topic.header();
    let options = topic.layout.options;
    let backend = crate::wait::builtin_backend(header.backend_id)
        .map_or_else(|| format!("user-defined (id {})", header.backend_id), |(n, _)| n.to_owned());
    let mut publishers = Vec::new();
    for p in 0..options.max_publishers {
        let slot = topic.publisher(p);
        let state = slot.state.load(Ordering::Acquire);
        if state == FREE {
            continue;
        }
        let generation = slot.generation.load(Ordering::Acquire);
        let heap_id = slot.heap_id.load(Ordering::Acquire);
        let heap = match (heap_id, topic.publisher_heap_domain(p)) {
            (0, _) | (_, None) => None,
            (id, Some(domain)) => crate::inspect::heap(&domain, id).ok(),
        };
        publishers.push(ParticipantInfo {
            slot: p,
            state: state_name(state),
            generation,
            pid: slot.pid.load(Ordering::Relaxed),
            alive: probe(&topic, Role::Publisher, p, generation) == Probe::Alive,
            count: slot.sequence.load(Ordering::Relaxed),
            queued: 0,
            heap,
        });
    }
    let mut subscribers = Vec::new();
    for s in 0..options.max_subscribers {
        let slot = topic.subscriber(s);
        let state = slot.state.load(Ordering::Acquire);
        if state == FREE {
            continue;
        }
        let generation = slot.generation.load(Ordering::Acquire);
        let queued = (0..options.max_publishers)
            .filter(|&p| topic.pair(p, s).sub_generation.load(Ordering::Acquire) == generation)
            .map(|p| {
                let pair = topic.pair(p, s);
                let tail = pair.delivery_tail.0.load(Ordering::Acquire);
                let head = pair.delivery_head.0.load(Ordering::Acquire);
                tail.wrapping_sub(head).min(options.subscriber_capacity as u64)
            })
            .sum();
        subscribers.push(ParticipantInfo {
            slot: s,
            state: state_name(state),
            generation,
            pid: slot.pid.load(Ordering::Relaxed),
            alive: probe(&topic, Role::Subscriber, s, generation) == Probe::Alive,
            count: slot.received.0.load(Ordering::Relaxed),
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
/// alive uses it; appends a line per removed object to `removed`.
pub(crate) fn clean_topic(domain: &str, name: &str, removed: &mut Vec<String>) -> Result<()> {
    let lock = Topic::lock(domain, name)?;
    let topic = match Topic::open_existing(domain, name) {
        Ok(topic) => topic,
        Err(crate::Error::SegmentNotFound { .. }) => {
            lock.remove();
            removed.push(format!("lock file of topic `{name}` (the topic no longer exists)"));
            return Ok(());
        }
        Err(err) => return Err(err),
    };
    for (role, count) in [
        (Role::Publisher, topic.layout.options.max_publishers),
        (Role::Subscriber, topic.layout.options.max_subscribers),
    ] {
        for index in 0..count {
            let (pid, generation, state) = match role {
                Role::Publisher => {
                    let s = topic.publisher(index);
                    (
                        s.pid.load(Ordering::Relaxed),
                        s.generation.load(Ordering::Acquire),
                        s.state.load(Ordering::Acquire),
                    )
                }
                Role::Subscriber => {
                    let s = topic.subscriber(index);
                    (
                        s.pid.load(Ordering::Relaxed),
                        s.generation.load(Ordering::Acquire),
                        s.state.load(Ordering::Acquire),
                    )
                }
            };
            if state == FREE {
                continue;
            }
            let heap = match role {
                Role::Publisher => heap_segment(&topic, index),
                Role::Subscriber => None,
            };
            let reaped = match role {
                Role::Publisher => topic.reap_publisher(index),
                Role::Subscriber => topic.reap_subscriber(index),
            };
            if reaped {
                let noun = if role == Role::Publisher { "publisher" } else { "subscriber" };
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
    if topic.remove_if_unused()? {
        lock.remove();
        removed.push(format!("topic `{name}` (no live participant)"));
    }
    Ok(())
}

/// The heap segment a publisher slot names, if it exists now.
fn heap_segment(topic: &Topic, index: u32) -> Option<SegmentName> {
    let id = topic.publisher(index).heap_id.load(Ordering::Acquire);
    let domain = topic.publisher_heap_domain(index)?;
    let name = crate::ptr::heap_segment_name(&domain, id).ok()?;
    (id != 0 && heap_segment_exists(&name) == Some(true)).then_some(name)
}

fn heap_segment_exists(name: &SegmentName) -> Option<bool> {
    match Segment::open(name, SegmentKind::Heap, Access::ReadOnly) {
        Ok(_) => Some(true),
        Err(crate::Error::SegmentNotFound { .. }) => Some(false),
        Err(_) => None,
    }
}
