//! What `ipc` prints: aligned text tables for people, and `serde` documents for `--json`.

use std::fmt::Write as _;

use ipc_runtime::inspect::{CleanReport, DomainInfo, HeapInfo, ParticipantInfo, TopicInfo};
use serde::Serialize;

/// One line of JSON.
pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("the report types serialize without failure")
}

/// Whether a domain has nothing at all in it.
pub fn is_empty(d: &DomainInfo) -> bool {
    d.topics.is_empty()
        && d.unreadable.is_empty()
        && d.heaps.is_empty()
        && d.events.is_empty()
        && d.unreadable_events.is_empty()
}

#[derive(Debug, Serialize)]
pub struct Heap {
    segment: String,
    owner_pid: u32,
    alive: bool,
    bytes_in_use: u64,
    high_water: u64,
    capacity: u64,
}

impl From<&HeapInfo> for Heap {
    fn from(h: &HeapInfo) -> Self {
        Heap {
            segment: h.segment.clone(),
            owner_pid: h.owner_pid,
            alive: h.alive,
            bytes_in_use: h.stats.bytes_in_use(),
            high_water: h.stats.high_water(),
            capacity: h.stats.capacity(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Participant {
    slot: u32,
    pid: u32,
    alive: bool,
    state: &'static str,
    generation: u32,
    /// Messages published (publishers) or received (subscribers).
    count: u64,
    queued: u64,
    heap: Option<Heap>,
}

impl From<&ParticipantInfo> for Participant {
    fn from(p: &ParticipantInfo) -> Self {
        Participant {
            slot: p.slot,
            pid: p.pid,
            alive: p.alive,
            state: p.state,
            generation: p.generation,
            count: p.count,
            queued: p.queued,
            heap: p.heap.as_ref().map(Heap::from),
        }
    }
}

#[derive(Debug, Serialize)]
struct Options {
    subscriber_capacity: u32,
    history: u32,
    max_subscribers: u32,
    max_publishers: u32,
    overflow: String,
    max_borrowed: u32,
}

#[derive(Debug, Serialize)]
pub struct Topic {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    fingerprint: String,
    message_size: u64,
    backend: String,
    options: Options,
    publishers: Vec<Participant>,
    subscribers: Vec<Participant>,
}

impl From<&TopicInfo> for Topic {
    fn from(t: &TopicInfo) -> Self {
        Topic {
            name: t.name.clone(),
            type_name: t.type_name.clone(),
            fingerprint: format!("{:016x}", t.fingerprint),
            message_size: t.message_size,
            backend: t.backend.clone(),
            options: Options {
                subscriber_capacity: t.subscriber_capacity,
                history: t.history,
                max_subscribers: t.max_subscribers,
                max_publishers: t.max_publishers,
                overflow: t.overflow.clone(),
                max_borrowed: t.max_borrowed,
            },
            publishers: t.publishers.iter().map(Participant::from).collect(),
            subscribers: t.subscribers.iter().map(Participant::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Unreadable {
    name: String,
    error: String,
}

fn unreadable(list: &[(String, String)]) -> Vec<Unreadable> {
    list.iter()
        .map(|(name, error)| Unreadable { name: name.clone(), error: error.clone() })
        .collect()
}

#[derive(Debug, Serialize)]
struct Event {
    name: String,
    alive: usize,
    dead: usize,
}

#[derive(Debug, Serialize)]
pub struct Domain {
    domain: String,
    topics: Vec<Topic>,
    unreadable_topics: Vec<Unreadable>,
    heaps: Vec<Heap>,
    events: Vec<Event>,
    unreadable_events: Vec<Unreadable>,
}

impl From<&DomainInfo> for Domain {
    fn from(d: &DomainInfo) -> Self {
        Domain {
            domain: d.domain.clone(),
            topics: d.topics.iter().map(Topic::from).collect(),
            unreadable_topics: unreadable(&d.unreadable),
            heaps: d.heaps.iter().map(Heap::from).collect(),
            events: d
                .events
                .iter()
                .map(|e| Event { name: e.name.clone(), alive: e.alive, dead: e.dead })
                .collect(),
            unreadable_events: unreadable(&d.unreadable_events),
        }
    }
}

#[derive(Debug, Serialize)]
struct Failure {
    object: String,
    reason: String,
}

#[derive(Debug, Serialize)]
pub struct Clean {
    domain: String,
    removed: Vec<String>,
    failed: Vec<Failure>,
}

impl Clean {
    pub fn new(domain: &str, report: &CleanReport) -> Self {
        Clean {
            domain: domain.to_owned(),
            removed: report.removed.clone(),
            failed: report
                .failed
                .iter()
                .map(|(object, reason)| Failure { object: object.clone(), reason: reason.clone() })
                .collect(),
        }
    }
}

fn count(participants: &[ParticipantInfo]) -> (usize, usize) {
    let alive = participants.iter().filter(|p| p.alive).count();
    (alive, participants.len() - alive)
}

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// Renders rows as an aligned text table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "  {}", padded.join("  ").trim_end());
    };
    line(&mut out, header.to_vec());
    for row in rows {
        line(&mut out, row.iter().map(String::as_str).collect());
    }
    out
}

pub fn table_domain(d: &DomainInfo) -> String {
    let mut out = format!("domain `{}`\n\ntopics:\n", d.domain);
    if d.topics.is_empty() && d.unreadable.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let mut rows: Vec<Vec<String>> = d
            .topics
            .iter()
            .map(|t| {
                let (pa, pd) = count(&t.publishers);
                let (sa, sd) = count(&t.subscribers);
                let queued: u64 = t.subscribers.iter().map(|s| s.queued).sum();
                let fill = t.subscribers.len() as u64 * t.subscriber_capacity as u64;
                vec![
                    t.name.clone(),
                    t.type_name.clone(),
                    format!("{pa} alive, {pd} dead"),
                    format!("{sa} alive, {sd} dead"),
                    format!("{queued}/{fill}"),
                    t.backend.clone(),
                ]
            })
            .collect();
        rows.extend(d.unreadable.iter().map(|(name, err)| {
            let mut row = vec![name.clone(), format!("unreadable: {err}")];
            row.resize(6, String::new());
            row
        }));
        out.push_str(&table(
            &["TOPIC", "TYPE", "PUBLISHERS", "SUBSCRIBERS", "QUEUED", "BACKEND"],
            &rows,
        ));
    }
    out.push_str("\nheaps:\n");
    if d.heaps.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = d.heaps.iter().map(heap_row).collect();
        out.push_str(&table(&["SEGMENT", "OWNER", "IN USE", "HIGH WATER", "CAPACITY"], &rows));
    }
    out.push_str("\nevent channels:\n");
    if d.events.is_empty() && d.unreadable_events.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let mut rows: Vec<Vec<String>> = d
            .events
            .iter()
            .map(|e| vec![e.name.clone(), format!("{} alive, {} dead", e.alive, e.dead)])
            .collect();
        rows.extend(
            d.unreadable_events
                .iter()
                .map(|(name, err)| vec![name.clone(), format!("unreadable: {err}")]),
        );
        out.push_str(&table(&["CHANNEL", "PARTICIPANTS"], &rows));
    }
    out
}

fn heap_row(h: &HeapInfo) -> Vec<String> {
    vec![
        h.segment.clone(),
        format!("pid {} ({})", h.owner_pid, if h.alive { "alive" } else { "dead" }),
        bytes(h.stats.bytes_in_use()),
        bytes(h.stats.high_water()),
        bytes(h.stats.capacity()),
    ]
}

fn participant_rows(list: &[ParticipantInfo], publisher: bool) -> Vec<Vec<String>> {
    list.iter()
        .map(|p| {
            let mut row = vec![
                p.slot.to_string(),
                p.pid.to_string(),
                if p.alive { "alive".into() } else { "dead".into() },
                p.state.to_owned(),
                p.generation.to_string(),
                p.count.to_string(),
            ];
            if publisher {
                row.push(p.heap.as_ref().map_or_else(String::new, |h| {
                    format!("{} / {}", bytes(h.stats.bytes_in_use()), bytes(h.stats.capacity()))
                }));
            } else {
                row.push(p.queued.to_string());
            }
            row
        })
        .collect()
}

pub fn table_topic(t: &TopicInfo) -> String {
    let mut out = format!(
        "topic `{}`\n  type {} ({} bytes, fingerprint {:016x}), backend {}\n  \
         capacity {}, history {}, max subscribers {}, max publishers {}, overflow {}, max borrowed {}\n",
        t.name,
        t.type_name,
        t.message_size,
        t.fingerprint,
        t.backend,
        t.subscriber_capacity,
        t.history,
        t.max_subscribers,
        t.max_publishers,
        t.overflow,
        t.max_borrowed
    );
    out.push_str("\npublishers:\n");
    if t.publishers.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&table(
            &["SLOT", "PID", "LIVENESS", "STATE", "GEN", "SEQUENCE", "HEAP"],
            &participant_rows(&t.publishers, true),
        ));
    }
    out.push_str("\nsubscribers:\n");
    if t.subscribers.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&table(
            &["SLOT", "PID", "LIVENESS", "STATE", "GEN", "RECEIVED", "QUEUED"],
            &participant_rows(&t.subscribers, false),
        ));
    }
    out
}
