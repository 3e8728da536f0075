//! Introspection and cleanup of a domain from outside, for tools (the `ipc` command) and tests.
//!
//! [`domain`] and [`topic`] only read: liveness is probed without side effects
//! ([`liveness::probe`]). [`clean`] removes what belongs to dead processes — their participant
//! slots (publishers take back what dead subscribers held themselves, on their next
//! housekeeping), their heap segments, their tokens, the wait channels they left, and topics and
//! event channels nobody alive uses, corrupt ones included — and reports each object it removed
//! and each one it could not handle, with the reason; one bad object never stops the rest of
//! the domain from being cleaned.

use crate::error::{Error, Result};
pub use crate::heap::HeapInfo;
use crate::liveness::{self, FileLock, Probe};
pub use crate::pubsub::{ParticipantInfo, TopicInfo};
use crate::segment::{self, Segment, SegmentKind, SegmentName};

/// An event channel and how many of its participants are alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInfo {
    /// Channel name.
    pub name: String,
    /// Participants whose process token is held.
    pub alive: usize,
    /// Participants whose process token is not held (their process died).
    pub dead: usize,
}

/// Everything in a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    /// The domain.
    pub domain: String,
    /// Topics.
    pub topics: Vec<TopicInfo>,
    /// Topics that could not be read, with the reason.
    pub unreadable: Vec<(String, String)>,
    /// Heap segments.
    pub heaps: Vec<HeapInfo>,
    /// Event channels.
    pub events: Vec<EventInfo>,
    /// Event channels whose participants could not be probed, with the reason.
    pub unreadable_events: Vec<(String, String)>,
}

/// What [`clean`] did in a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// A line per removed object, saying what it was and why it went.
    pub removed: Vec<String>,
    /// Objects that could not be cleaned (and were left as they are): the object and the
    /// reason.
    pub failed: Vec<(String, String)>,
}

impl CleanReport {
    /// Whether every object that needed cleaning was cleaned.
    ///
    /// ```
    /// assert!(ipc_runtime::inspect::CleanReport::default().ok());
    /// ```
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// The (decoded) names of the objects of `kind` in `domain`. Only names that are exactly
/// `<domain>.<kind>.<encoded name>` count (see [`crate::domain`]): a topic's tokens and sockets,
/// which carry suffixes, and other domains' objects never do.
fn objects(domain: &str, kind: SegmentKind) -> Result<Vec<String>> {
    let [found] = objects_of(domain, [kind])?;
    Ok(found)
}

/// [`objects`] for several kinds with one listing of the shared-memory objects.
fn objects_of<const N: usize>(domain: &str, kinds: [SegmentKind; N]) -> Result<[Vec<String>; N]> {
    crate::domain::validate_domain(domain)?;
    let prefix = match kinds.as_slice() {
        [kind] => format!("{domain}.{}.", kind.as_str()),
        _ => format!("{domain}."),
    };
    let names = segment::platform().list(&prefix).map_err(|e| {
        Error::io(format!("listing the shared-memory objects of domain `{domain}`"), e)
    })?;
    let mut found = [(); N].map(|()| Vec::new());
    for (d, k, name) in names.iter().filter_map(|n| crate::domain::parse_object_name(n)) {
        if d != domain {
            continue;
        }
        if let Some(i) = kinds.iter().position(|kind| kind.as_str() == k) {
            found[i].push(name);
        }
    }
    Ok(found)
}

/// The lock name of event channel `name`: `event.<encoded name>`.
fn event_object(name: &str) -> String {
    format!("event.{}", crate::domain::encode_name(name))
}

/// Names of the topics in `domain`.
///
/// ```
/// let none = ipc_runtime::inspect::topics(&format!("doc-empty-{}", std::process::id())).unwrap();
/// assert!(none.is_empty());
/// ```
///
/// # Errors
///
/// [`Error::InvalidName`] for an invalid domain name; [`Error::Io`] when the shared-memory
/// objects cannot be listed (always on Unix systems other than Linux, whose POSIX shared
/// memory has no directory to read).
pub fn topics(domain: &str) -> Result<Vec<String>> {
    objects(domain, SegmentKind::Topic)
}

/// The domains that have shared-memory objects on this machine, sorted, each once: what a
/// tool offers when asked about a domain that has none.
///
/// ```
/// let domain = format!("doc-domains-{}", std::process::id());
/// ipc_runtime::domain::set_current(&domain)?;
/// let publisher = ipc_runtime::Publisher::<u32>::new("doc.domains")?;
/// match ipc_runtime::inspect::domains() {
///     Ok(domains) => assert!(domains.contains(&domain)),
///     // Only Linux has a directory of shared-memory objects to list.
///     Err(err) => assert!(!cfg!(target_os = "linux"), "{err}"),
/// }
/// # drop(publisher);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Io`] when the shared-memory objects cannot be listed (always on Unix systems other
/// than Linux, whose POSIX shared memory has no directory to read).
pub fn domains() -> Result<Vec<String>> {
    let names = segment::platform()
        .list("")
        .map_err(|e| Error::io("listing the shared-memory objects of every domain", e))?;
    let mut domains: Vec<String> = names
        .iter()
        .filter_map(|n| crate::domain::parse_object_name(n))
        .map(|(domain, _, _)| domain.to_owned())
        .collect();
    domains.sort();
    domains.dedup();
    Ok(domains)
}

/// Everything about topic `name`, read without changing anything.
///
/// # Errors
///
/// [`Error::InvalidName`] for an invalid domain or topic name; [`Error::SegmentNotFound`] if
/// the topic does not exist; the errors of [`Segment::open`] for a segment that cannot be
/// opened ([`Error::UntrustedObject`], [`Error::Io`]) or fails validation
/// ([`Error::WrongMagic`], [`Error::NotReady`] and the like); [`Error::Corrupted`] if the
/// topic's own header is invalid (layout version, options, size). Participants whose ports
/// cannot be read are reported with zero counts, not as errors.
pub fn topic(domain: &str, name: &str) -> Result<TopicInfo> {
    crate::pubsub::inspect::topic_info(domain, name)
}

/// Usage of heap segment `id` in `domain` (mapped read-only for the moment of reading); see
/// [`heap::info`](crate::heap::info).
///
/// # Errors
///
/// [`Error::InvalidName`] for an invalid domain name; [`Error::SegmentNotFound`] if there is
/// no heap segment with that id; the other errors of [`Segment::open`]
/// ([`Error::UntrustedObject`], [`Error::Io`], and validation errors such as
/// [`Error::WrongKind`]); [`Error::Io`] if the owner's liveness token exists but cannot be
/// probed.
pub fn heap(domain: &str, id: u64) -> Result<HeapInfo> {
    crate::heap::info(domain, id)
}

fn heap_ids(domain: &str) -> Result<Vec<u64>> {
    Ok(objects(domain, SegmentKind::Heap)?
        .into_iter()
        .filter_map(|id| u64::from_str_radix(&id, 16).ok())
        .collect())
}

fn event_info(domain: &str, name: &str) -> Result<EventInfo> {
    let (alive, dead) = crate::event::channel::holders(domain, name)?;
    Ok(EventInfo { name: name.to_owned(), alive, dead })
}

/// Everything in `domain`, read without changing anything.
///
/// # Errors
///
/// Only when the domain cannot be looked at at all: as [`topics`] ([`Error::InvalidName`] for
/// an invalid domain name, [`Error::Io`] when the shared-memory objects cannot be listed).
/// Problems with single objects are in [`DomainInfo::unreadable`] and
/// [`DomainInfo::unreadable_events`] (a heap that cannot be read is left out).
pub fn domain(domain: &str) -> Result<DomainInfo> {
    let mut info = DomainInfo {
        domain: domain.to_owned(),
        topics: Vec::new(),
        unreadable: Vec::new(),
        heaps: Vec::new(),
        events: Vec::new(),
        unreadable_events: Vec::new(),
    };
    // One listing of the domain's objects; each heap read once however many topics use it,
    // and each peer heap held once while the topics' ports are read.
    let [topics, heaps, events] =
        objects_of(domain, [SegmentKind::Topic, SegmentKind::Heap, SegmentKind::Event])?;
    let mut heap_infos = crate::pubsub::inspect::HeapInfos::new();
    crate::pubsub::inspect::sharing_holds(|| {
        for name in topics {
            match crate::pubsub::inspect::topic_info_in(domain, &name, &mut heap_infos) {
                Ok(t) => info.topics.push(t),
                Err(err) => info.unreadable.push((name, err.to_string())),
            }
        }
    });
    for id in heaps.iter().filter_map(|id| u64::from_str_radix(id, 16).ok()) {
        let cached = heap_infos.remove(&(domain.to_owned(), id));
        if let Some(h) = cached.unwrap_or_else(|| heap(domain, id).ok()) {
            info.heaps.push(h);
        }
    }
    for name in events {
        match event_info(domain, &name) {
            Ok(e) => info.events.push(e),
            Err(err) => info.unreadable_events.push((name, err.to_string())),
        }
    }
    Ok(info)
}

/// Removes what belongs to dead processes in `domain` and reports each object it removed and
/// each one it could not handle (with the reason), going on with the rest of the domain after a
/// failure.
///
/// Topics whose segment fails validation (bad magic, layout version or size, 0 bytes) are
/// removed when no live process holds one of their liveness tokens, and reported as failures
/// otherwise; a topic or channel whose lock another process holds longer than
/// [`liveness::lock_timeout`] is reported and left alone.
///
/// ```
/// let domain = format!("doc-clean-{}", std::process::id());
/// let report = ipc_runtime::inspect::clean(&domain)?;
/// assert!(report.removed.is_empty() && report.ok());
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
///
/// # Errors
///
/// Only when the domain cannot be looked at at all: an invalid domain name, or the directory
/// of shared-memory objects cannot be listed. Problems with single objects are in
/// [`CleanReport::failed`].
pub fn clean(domain: &str) -> Result<CleanReport> {
    let mut report = CleanReport::default();
    for name in topics(domain)? {
        if let Err(err) = crate::pubsub::inspect::clean_topic(domain, &name, &mut report.removed) {
            report.failed.push((format!("topic `{name}`"), err.to_string()));
        }
    }
    for id in heap_ids(domain)? {
        let pid = heap(domain, id).map(|h| h.owner_pid).unwrap_or(0);
        if crate::heap::remove_if_dead(domain, id) {
            report.removed.push(format!("heap segment {domain}.heap.{id:016x} (dead pid {pid})"));
        }
    }
    for name in objects(domain, SegmentKind::Event)? {
        match clean_event(domain, &name) {
            Ok(true) => {
                report.removed.push(format!("event channel `{name}` (no live participant)"))
            }
            Ok(false) => {}
            Err(err) => report.failed.push((format!("event channel `{name}`"), err.to_string())),
        }
    }
    // Tokens of dead processes, and creation locks whose object is gone (a lock file nobody
    // holds reads as dead). Creation locks of topics and channels that exist stay.
    let mut keep: Vec<String> = topics(domain)?
        .into_iter()
        .map(|t| format!("topic.{}", crate::domain::encode_name(&t)))
        .collect();
    keep.extend(objects(domain, SegmentKind::Event)?.iter().map(|e| event_object(e)));
    for token in liveness::list(domain)? {
        if keep.contains(&token) {
            continue;
        }
        let dead = liveness::probe(domain, &token)
            .and_then(|probe| Ok(probe == Probe::Dead && !liveness::is_alive(domain, &token)?));
        match dead {
            Ok(true) => report.removed.push(format!("lock file `{token}` (its process is dead)")),
            Ok(false) => {}
            Err(err) => report.failed.push((format!("lock file `{token}`"), err.to_string())),
        }
    }
    Ok(report)
}

/// Removes event channel `name` if no participant of it is alive; returns whether it did.
fn clean_event(domain: &str, name: &str) -> Result<bool> {
    let lock = FileLock::lock(domain, &event_object(name))?;
    match crate::event::channel::holders(domain, name) {
        Ok((alive, _)) if alive > 0 => return Ok(false),
        Ok(_) | Err(Error::SegmentNotFound { .. }) => {
            match Segment::unlink(&SegmentName::new(domain, SegmentKind::Event, name)?) {
                Ok(()) | Err(Error::SegmentNotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Err(err) if crate::membership::is_corruption(&err) => {
            crate::event::channel::remove_corrupt(domain, name, &err)?;
        }
        Err(err) => return Err(err),
    }
    lock.remove();
    Ok(true)
}
