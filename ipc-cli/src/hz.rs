//! `ipc hz TOPIC`: how fast a topic's publishers publish and how full its subscribers' queues
//! are, from the counters in the topic's memory (read-only; the tool joins nothing).
//!
//! Each window reads the topic twice, `window` apart. A publisher's rate is how far its
//! sequence counter moved; a publisher that appeared during the window (a new process, or the
//! same slot with a new generation after a restart) counts from zero.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ipc_runtime::inspect::{self, ParticipantInfo, TopicInfo};
use serde::Serialize;

/// Who a participant is across two readings: a restarted one is a different participant.
type Key = (u32, u32, u32);

fn key(p: &ParticipantInfo) -> Key {
    (p.slot, p.pid, p.generation)
}

#[derive(Debug, Serialize)]
struct PublisherRate {
    slot: u32,
    pid: u32,
    generation: u32,
    /// Messages per second over the window.
    rate: f64,
    /// The publisher's sequence counter at the end of the window.
    sequence: u64,
}

#[derive(Debug, Serialize)]
struct SubscriberFill {
    slot: u32,
    pid: u32,
    generation: u32,
    /// Messages received per second over the window.
    rate: f64,
    queued: u64,
    capacity: u32,
}

#[derive(Debug, Serialize)]
struct Window {
    topic: String,
    seconds: f64,
    /// Messages per second, all live publishers together.
    rate: f64,
    publishers: Vec<PublisherRate>,
    subscribers: Vec<SubscriberFill>,
}

fn rate(before: &HashMap<Key, u64>, p: &ParticipantInfo, seconds: f64) -> f64 {
    let start = before.get(&key(p)).copied().unwrap_or(0);
    p.count.saturating_sub(start) as f64 / seconds
}

fn counts(list: &[ParticipantInfo]) -> HashMap<Key, u64> {
    list.iter().filter(|p| p.alive).map(|p| (key(p), p.count)).collect()
}

fn window(topic: &str, before: &TopicInfo, after: &TopicInfo, seconds: f64) -> Window {
    let (pubs, subs) = (counts(&before.publishers), counts(&before.subscribers));
    let publishers: Vec<PublisherRate> = after
        .publishers
        .iter()
        .filter(|p| p.alive)
        .map(|p| PublisherRate {
            slot: p.slot,
            pid: p.pid,
            generation: p.generation,
            rate: rate(&pubs, p, seconds),
            sequence: p.count,
        })
        .collect();
    let subscribers = after
        .subscribers
        .iter()
        .filter(|s| s.alive)
        .map(|s| SubscriberFill {
            slot: s.slot,
            pid: s.pid,
            generation: s.generation,
            rate: rate(&subs, s, seconds),
            queued: s.queued,
            capacity: after.subscriber_capacity,
        })
        .collect();
    Window {
        topic: topic.to_owned(),
        seconds,
        rate: publishers.iter().map(|p| p.rate).sum(),
        publishers,
        subscribers,
    }
}

fn text(w: &Window) -> String {
    let mut out = format!(
        "topic `{}`: {:.1} msg/s from {} live publisher(s) over {:.2} s\n",
        w.topic,
        w.rate,
        w.publishers.len(),
        w.seconds
    );
    let mut rows: Vec<Vec<String>> = w
        .publishers
        .iter()
        .map(|p| {
            vec![
                "publisher".into(),
                p.slot.to_string(),
                p.pid.to_string(),
                format!("{:.1}/s", p.rate),
                format!("sequence {}", p.sequence),
            ]
        })
        .collect();
    rows.extend(w.subscribers.iter().map(|s| {
        let percent =
            if s.capacity == 0 { 0.0 } else { 100.0 * s.queued as f64 / s.capacity as f64 };
        vec![
            "subscriber".into(),
            s.slot.to_string(),
            s.pid.to_string(),
            format!("{:.1}/s", s.rate),
            format!("queue {}/{} ({percent:.0} %)", s.queued, s.capacity),
        ]
    }));
    if !rows.is_empty() {
        out.push_str(&crate::report::table(&["ROLE", "SLOT", "PID", "RATE", "STATE"], &rows));
    }
    out
}

/// Measures `count` windows (`None`: until interrupted), printing one report per window.
pub fn run(
    domain: &str,
    topic: &str,
    window_length: Duration,
    count: Option<u64>,
    json: bool,
) -> Result<(), String> {
    let read = || {
        inspect::topic(domain, topic)
            .map_err(|err| format!("topic `{topic}` in domain `{domain}`: {err}"))
    };
    let mut before = read()?;
    let mut since = Instant::now();
    let mut done = 0u64;
    while count.is_none_or(|n| done < n) {
        std::thread::sleep(window_length);
        let after = read()?;
        let now = Instant::now();
        let w = window(topic, &before, &after, now.duration_since(since).as_secs_f64());
        if json {
            println!("{}", crate::report::json(&w));
        } else {
            print!("{}", text(&w));
        }
        (before, since) = (after, now);
        done += 1;
    }
    Ok(())
}
