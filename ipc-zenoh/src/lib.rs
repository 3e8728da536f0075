//! Bridges `ipc-runtime` topics to [zenoh](https://zenoh.io) key expressions, so the same topics
//! reach other machines.
//!
//! A [`Bridge`] is one zenoh session plus the topics a program registers with it:
//!
//! * [`Bridge::export`] subscribes to a local topic and puts every message to a zenoh key
//!   expression;
//! * [`Bridge::import`] subscribes to a zenoh key expression and publishes every message on a
//!   local topic.
//!
//! Run one bridge per machine (or per domain) for the topics that cross: local publishers and
//! subscribers do not change, they do not know about the bridge.
//!
//! ```no_run
//! use ipc_runtime::prelude::*;
//! use ipc_zenoh::Bridge;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(ShmMessage, Serialize, Deserialize)]
//! #[repr(C)]
//! struct Reading {
//!     sensor: u32,
//!     celsius: f64,
//! }
//!
//! // On this host: listen for the other bridge, send our readings, receive its commands.
//! let bridge = Bridge::new(Bridge::peer_config(&["tcp/0.0.0.0:7447"], &[])?)?;
//! bridge.export::<Reading>("readings", "site-a/readings")?;
//! bridge.import::<Reading>("site-b/readings", "remote-readings")?;
//! # Ok::<(), ipc_zenoh::BridgeError>(())
//! ```
//!
//! # Wire format
//!
//! The payload of a zenoh sample is the message in [postcard](https://docs.rs/postcard), through
//! the message type's `serde` implementations. Postcard rather than zenoh's own serializer
//! (`zenoh-ext`): postcard works through `serde`, so a message type needs nothing but
//! `#[derive(Serialize, Deserialize)]` (ipc-runtime's containers implement both with its `serde`
//! feature, deserializing straight into the shared heap), while zenoh-ext's serializer has its
//! own traits that every container and every user type would have to implement again. Postcard
//! is compact (variable-length integers, no field names), has a stable, documented format
//! (1.x), and reports malformed input as an error rather than panicking. For byte payloads, mark
//! the field `#[serde(with = "ipc_runtime::wire::bytes")]`: it is then copied in one piece
//! rather than byte by byte (the bytes on the wire are the same).
//!
//! The zenoh attachment of every sample carries, little-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 0 | format version ([`FORMAT_VERSION`]) |
//! | 1..9 | the type's [`ShmMessage::FINGERPRINT`] |
//! | 9..17 | the origin: the sending bridge's [`Bridge::id`] |
//! | 17..21, 21..25 | the local publisher's slot and generation ([`PublisherId`]) |
//! | 25..33 | the local publisher's sequence number ([`Sample::sequence`](ipc_runtime::Sample::sequence)) |
//! | 33.. | the type's [`ShmMessage::TYPE_NAME`], UTF-8 |
//!
//! An importing bridge refuses a sample whose version or fingerprint differs from its own: the
//! message is dropped, and a [`BridgeError::TypeMismatch`] naming the key expression, the
//! local topic and both type names is reported (once per key expression and remote type)
//! through [`Bridge::try_error`]/[`Bridge::error_timeout`] and `tracing::warn!`.
//!
//! # No echo
//!
//! A message imported from zenoh is never exported back: the exporting side skips local
//! messages sent by the bridge's own importing publishers (by [`PublisherId`]), zenoh
//! subscribers only take samples from other sessions (`Locality::Remote`) and publishers only
//! send to other sessions. So a topic exported *and* imported on two hosts delivers each
//! message exactly once on each side.
//!
//! # Quality of service and reliability
//!
//! * An exported topic whose [`Overflow`] is `Block` is put with zenoh
//!   `CongestionControl::Block`: when the network or the remote side is slow, the bridge's
//!   put waits, the bridge stops taking from its local subscriber, and the local publisher
//!   blocks in turn (up to its block timeout). A `DropOldest` topic is put with
//!   `CongestionControl::Drop`: zenoh drops samples it cannot queue, as the local topic drops
//!   the oldest.
//! * An import publishes into the local topic from zenoh's receive callback; into a `Block`
//!   topic that publish waits for the slowest local subscriber, which holds back zenoh's
//!   reception from that peer (and, through TCP, the remote sender).
//! * Reliability is zenoh's default, `Reliable`, on TCP links: no loss while a link is up and
//!   nothing is dropped by congestion control. Messages in flight when a link or a bridge
//!   dies are lost, not repeated: the importing side counts gaps in the sender's sequence
//!   numbers ([`BridgeStats::lost`]) and drops a sample it has seen already
//!   ([`BridgeStats::duplicates`]), so loss is visible and a duplicate is never delivered.
//!
//! # Threads
//!
//! One thread takes from all exported topics (one [`WaitSet`]
//! over their subscribers); imports publish from zenoh's callbacks. Zenoh runs its own
//! (tokio) threads.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipc_runtime::pubsub::{Options, Overflow, PublisherId};
use ipc_runtime::waitset::{Source, WaitSet};
use ipc_runtime::wire::DecodeError;
use ipc_runtime::{Publisher, ShmMessage, Subscriber};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zenoh::Wait;
use zenoh::qos::CongestionControl;
use zenoh::sample::Locality;

/// The zenoh version this crate is built with, re-exported so that a program configures the
/// same one (`ipc_zenoh::zenoh::Config`).
pub use zenoh;

/// Version of the attachment layout and payload encoding (see the [crate docs](crate)).
pub const FORMAT_VERSION: u8 = 1;

/// Bytes of the attachment before the type name.
const HEADER_LEN: usize = 33;

/// How often the export thread looks for new exports or a stop while nothing arrives.
const EXPORT_POLL: Duration = Duration::from_millis(20);

/// Errors reported by a [`Bridge`]: returned by its methods, or reported later through
/// [`Bridge::try_error`] / [`Bridge::error_timeout`] (and `tracing::warn!`) for what goes
/// wrong while messages flow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The local side (`ipc-runtime`) failed for a topic.
    #[error("local topic `{topic}`: {source}")]
    Local {
        /// The local topic.
        topic: String,
        /// What went wrong (boxed: `ipc_runtime::Error` is large).
        #[source]
        source: Box<ipc_runtime::Error>,
    },
    /// Zenoh failed (opening the session, declaring, putting).
    #[error("zenoh ({what}): {message}")]
    Zenoh {
        /// What the bridge was doing: `open`, `config`, a key expression, ...
        what: String,
        /// Zenoh's error.
        message: String,
    },
    /// A remote message of another type (or format version) arrived on an imported key
    /// expression: it was dropped.
    #[error(
        "key `{key}` (local topic `{topic}`): remote message type `{remote_type}` \
         (fingerprint {remote_fingerprint:#018x}, format {remote_version}) differs from local \
         type `{local_type}` (fingerprint {local_fingerprint:#018x}, format {FORMAT_VERSION}); \
         refused"
    )]
    TypeMismatch {
        /// The zenoh key of the sample.
        key: String,
        /// The local topic it was meant for.
        topic: String,
        /// The type the local topic carries.
        local_type: &'static str,
        /// Its fingerprint.
        local_fingerprint: u64,
        /// The type name the sender sent.
        remote_type: String,
        /// The sender's fingerprint.
        remote_fingerprint: u64,
        /// The sender's format version.
        remote_version: u8,
    },
    /// A remote sample could not be read (no or short attachment, undecodable payload): it was
    /// dropped.
    #[error("key `{key}` (local topic `{topic}`): malformed sample: {what}")]
    Malformed {
        /// The zenoh key of the sample.
        key: String,
        /// The local topic it was meant for.
        topic: String,
        /// What was wrong.
        what: String,
    },
    /// A remote message could not be built in this process's shared heap (out of memory): it
    /// was dropped.
    #[error("key `{key}` (local topic `{topic}`): cannot deliver a message: {what}")]
    Deliver {
        /// The zenoh key of the sample.
        key: String,
        /// The local topic it was meant for.
        topic: String,
        /// What failed.
        what: String,
    },
    /// The operating system failed the bridge (starting its thread).
    #[error("{what}: {source}")]
    Io {
        /// What the bridge was doing.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A local message could not be encoded (its `Serialize` failed).
    #[error("local topic `{topic}`: cannot encode a message: {what}")]
    Encode {
        /// The local topic.
        topic: String,
        /// Postcard's error.
        what: String,
    },
}

impl BridgeError {
    fn zenoh(what: impl Into<String>, err: impl fmt::Display) -> Self {
        BridgeError::Zenoh { what: what.into(), message: err.to_string() }
    }
}

/// Counters of a bridge since it started (see [`Bridge::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Local messages put to zenoh.
    pub exported: u64,
    /// Remote messages published locally.
    pub imported: u64,
    /// Local messages not exported because this bridge imported them (no echo).
    pub echoes_skipped: u64,
    /// Remote messages refused (other type or format, malformed).
    pub refused: u64,
    /// Remote messages missing: gaps in a sender's sequence numbers.
    pub lost: u64,
    /// Remote messages dropped because one with the same origin, publisher and sequence (or a
    /// later one) had arrived already.
    pub duplicates: u64,
    /// Failed puts to zenoh or local publishes.
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    exported: AtomicU64,
    imported: AtomicU64,
    echoes_skipped: AtomicU64,
    refused: AtomicU64,
    lost: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
}

/// What the bridge's threads and callbacks share.
struct Shared {
    id: u64,
    counters: Counters,
    errors: Mutex<std::collections::VecDeque<BridgeError>>,
    errors_cv: Condvar,
    /// Per local topic, the ids of this bridge's importing publishers (their messages are not
    /// exported again).
    own: Mutex<HashMap<String, Arc<Mutex<Vec<PublisherId>>>>>,
}

/// Errors kept for [`Bridge::try_error`] at most; older ones are dropped.
const MAX_ERRORS: usize = 1024;

impl Shared {
    fn report(&self, err: BridgeError) {
        tracing::warn!(bridge = self.id, "{err}");
        let mut q = lock(&self.errors);
        if q.len() == MAX_ERRORS {
            q.pop_front();
        }
        q.push_back(err);
        self.errors_cv.notify_all();
    }

    fn own(&self, topic: &str) -> Arc<Mutex<Vec<PublisherId>>> {
        Arc::clone(lock(&self.own).entry(topic.to_owned()).or_default())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The attachment of a sample (see the [crate docs](crate)).
fn header<M: ShmMessage>(origin: u64, publisher: PublisherId, sequence: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN + M::TYPE_NAME.len());
    h.push(FORMAT_VERSION);
    h.extend_from_slice(&M::FINGERPRINT.to_le_bytes());
    h.extend_from_slice(&origin.to_le_bytes());
    h.extend_from_slice(&publisher.index().to_le_bytes());
    h.extend_from_slice(&publisher.generation().to_le_bytes());
    h.extend_from_slice(&sequence.to_le_bytes());
    h.extend_from_slice(M::TYPE_NAME.as_bytes());
    h
}

/// A parsed attachment.
struct Header {
    version: u8,
    fingerprint: u64,
    origin: u64,
    publisher: u64,
    sequence: u64,
    type_name: String,
}

fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("attachment of {} bytes, expected at least {HEADER_LEN}", bytes.len()));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    Ok(Header {
        version: bytes[0],
        fingerprint: u64_at(1),
        origin: u64_at(9),
        publisher: u64_at(17),
        sequence: u64_at(25),
        type_name: String::from_utf8_lossy(&bytes[HEADER_LEN..]).into_owned(),
    })
}

/// A new bridge id: random enough that two bridges (or one restarted) never share one.
fn new_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// One exported topic, as the export thread sees it.
trait ExportTask: Send {
    fn source(&self) -> &dyn Source<ipc_runtime::wait::DefaultBackend>;
    fn drain(&self, shared: &Shared);
}

struct Export<M: ShmMessage> {
    subscriber: Subscriber<M>,
    zenoh: Arc<zenoh::pubsub::Publisher<'static>>,
    key: String,
    own: Arc<Mutex<Vec<PublisherId>>>,
}

impl<M> ExportTask for Export<M>
where
    M: ShmMessage + Serialize + Send + Sync + 'static,
{
    fn source(&self) -> &dyn Source<ipc_runtime::wait::DefaultBackend> {
        &self.subscriber
    }

    fn drain(&self, shared: &Shared) {
        for sample in self.subscriber.try_iter() {
            let sample = match sample {
                Ok(sample) => sample,
                Err(source) => {
                    shared.report(BridgeError::Local {
                        topic: self.subscriber.topic().to_owned(),
                        source: Box::new(source),
                    });
                    break;
                }
            };
            let publisher = sample.publisher();
            if lock(&self.own).contains(&publisher) {
                shared.counters.echoes_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let payload = match postcard::to_allocvec(&*sample) {
                Ok(payload) => payload,
                Err(err) => {
                    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                    shared.report(BridgeError::Encode {
                        topic: self.subscriber.topic().to_owned(),
                        what: err.to_string(),
                    });
                    continue;
                }
            };
            let attachment = header::<M>(shared.id, publisher, sample.sequence());
            // The message is copied out: give the slot back before a put that may wait.
            drop(sample);
            match self.zenoh.put(payload).attachment(attachment).wait() {
                Ok(()) => {
                    shared.counters.exported.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) => {
                    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                    shared.report(BridgeError::zenoh(format!("put to `{}`", self.key), err));
                }
            }
        }
    }
}

enum Command {
    Add(Box<dyn ExportTask>, mpsc::Sender<()>),
    Stop,
}

fn export_thread(commands: mpsc::Receiver<Command>, pending: Arc<AtomicBool>, shared: Arc<Shared>) {
    let mut tasks: Vec<Box<dyn ExportTask>> = Vec::new();
    loop {
        pending.store(false, Ordering::Release);
        loop {
            match commands.try_recv() {
                Ok(Command::Add(task, ack)) => {
                    tasks.push(task);
                    let _ = ack.send(());
                }
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        let waitset = WaitSet::new();
        let attached: Vec<_> = tasks.iter().map(|t| waitset.attach(t.source())).collect();
        // Whatever arrived before the task was attached.
        for task in &tasks {
            task.drain(&shared);
        }
        while !pending.load(Ordering::Acquire) {
            match waitset.wait_timeout(EXPORT_POLL) {
                Ok(ready) => {
                    for id in ready {
                        if let Some(i) = attached.iter().position(|a| a.id() == id) {
                            tasks[i].drain(&shared);
                        }
                    }
                }
                Err(source) => {
                    shared.report(BridgeError::Local {
                        topic: "(export wait set)".into(),
                        source: Box::new(source),
                    });
                    std::thread::sleep(EXPORT_POLL);
                }
            }
        }
    }
}

/// One imported key expression, as the bridge keeps it.
trait ImportHandle: Send + Sync {
    /// Drops the local publisher (after the zenoh subscriber is gone).
    fn close(&self);
}

struct Import<M: ShmMessage + Send> {
    publisher: Mutex<Option<Publisher<M>>>,
    /// Per (origin, sender's publisher id): the last sequence number delivered.
    last: Mutex<HashMap<(u64, u64), u64>>,
    /// (key, remote fingerprint) pairs already reported as mismatches.
    reported: Mutex<std::collections::HashSet<(String, u64, u8)>>,
    topic: String,
}

impl<M: ShmMessage + Send + Sync> ImportHandle for Import<M> {
    fn close(&self) {
        drop(lock(&self.publisher).take());
    }
}

impl<M> Import<M>
where
    M: ShmMessage + DeserializeOwned + Send + Sync + 'static,
{
    fn receive(&self, shared: &Shared, sample: &zenoh::sample::Sample) {
        let key = sample.key_expr().as_str();
        let refuse = |what: String| {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            shared.report(BridgeError::Malformed {
                key: key.to_owned(),
                topic: self.topic.clone(),
                what,
            });
        };
        let Some(attachment) = sample.attachment() else {
            return refuse("no attachment (not sent by an ipc-zenoh bridge?)".into());
        };
        let header = match parse_header(&attachment.to_bytes()) {
            Ok(header) => header,
            Err(what) => return refuse(what),
        };
        if header.version != FORMAT_VERSION || header.fingerprint != M::FINGERPRINT {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            let first =
                lock(&self.reported).insert((key.to_owned(), header.fingerprint, header.version));
            if first {
                shared.report(BridgeError::TypeMismatch {
                    key: key.to_owned(),
                    topic: self.topic.clone(),
                    local_type: M::TYPE_NAME,
                    local_fingerprint: M::FINGERPRINT,
                    remote_type: header.type_name,
                    remote_fingerprint: header.fingerprint,
                    remote_version: header.version,
                });
            }
            return;
        }
        if header.origin == shared.id {
            // Our own put came back (zenoh's locality filter makes this impossible; kept as
            // a guard).
            shared.counters.echoes_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let guard = lock(&self.publisher);
        let Some(publisher) = guard.as_ref() else { return };
        {
            let mut last = lock(&self.last);
            let seen = last.entry((header.origin, header.publisher)).or_insert(0);
            if header.sequence <= *seen {
                shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // A gap after the first message seen from this sender (what it sent before we
            // subscribed is not counted).
            if *seen != 0 {
                shared.counters.lost.fetch_add(header.sequence - *seen - 1, Ordering::Relaxed);
            }
            *seen = header.sequence;
        }
        // Decoded straight into a loaned sample: the containers are built in our shared heap.
        let payload = sample.payload().to_bytes();
        let loaned = publisher.loan_deserialize(&mut postcard::Deserializer::from_bytes(&payload));
        let failed = |err: BridgeError| {
            shared.counters.failed.fetch_add(1, Ordering::Relaxed);
            shared.report(err);
        };
        match loaned {
            Ok(sample) => match sample.publish() {
                Ok(()) => {
                    shared.counters.imported.fetch_add(1, Ordering::Relaxed);
                }
                Err(source) => failed(BridgeError::Local {
                    topic: self.topic.clone(),
                    source: Box::new(source),
                }),
            },
            Err(DecodeError::Format(err)) => {
                refuse(format!("payload does not decode as `{}`: {err}", M::TYPE_NAME));
            }
            Err(DecodeError::Loan(source)) => {
                failed(BridgeError::Local { topic: self.topic.clone(), source: Box::new(source) });
            }
            Err(err) => failed(BridgeError::Deliver {
                key: key.to_owned(),
                topic: self.topic.clone(),
                what: err.to_string(),
            }),
        }
    }
}

/// An import: its zenoh subscriber and what its callback uses.
type ImportEntry = (zenoh::pubsub::Subscriber<()>, Arc<dyn ImportHandle>);

/// Bridges local topics to zenoh and back. See the [crate docs](crate) for the wire format,
/// echo suppression and quality of service.
///
/// Dropping the bridge stops its export thread, undeclares its zenoh subscribers, drops its
/// local publishers and subscribers and closes the zenoh session.
pub struct Bridge {
    session: zenoh::Session,
    shared: Arc<Shared>,
    commands: Mutex<mpsc::Sender<Command>>,
    pending: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    imports: Mutex<Vec<ImportEntry>>,
    exports: Mutex<HashMap<String, Arc<zenoh::pubsub::Publisher<'static>>>>,
    block_timeout: Mutex<Option<Duration>>,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("id", &format_args!("{:016x}", self.shared.id))
            .field("zid", &self.session.zid())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Bridge {
    /// Opens a zenoh session with `config` and starts the bridge's export thread.
    ///
    /// Build `config` with [`Bridge::peer_config`], or read it from a JSON5 file with
    /// `zenoh::Config::from_file`.
    ///
    /// ```
    /// use ipc_zenoh::Bridge;
    ///
    /// // A bridge alone on the loopback interface (port chosen by the system).
    /// let bridge = Bridge::new(Bridge::peer_config(&["tcp/127.0.0.1:0"], &[])?)?;
    /// assert_eq!(bridge.stats().exported, 0);
    /// # Ok::<(), ipc_zenoh::BridgeError>(())
    /// ```
    ///
    /// # Errors
    /// [`BridgeError::Zenoh`] if zenoh cannot open the session (an endpoint it cannot listen
    /// on, for one), [`BridgeError::Io`] if the export thread cannot be started.
    pub fn new(config: zenoh::Config) -> Result<Bridge, BridgeError> {
        let session = zenoh::open(config).wait().map_err(|e| BridgeError::zenoh("open", e))?;
        let shared = Arc::new(Shared {
            id: new_id(),
            counters: Counters::default(),
            errors: Mutex::new(Default::default()),
            errors_cv: Condvar::new(),
            own: Mutex::new(HashMap::new()),
        });
        let (tx, rx) = mpsc::channel();
        let pending = Arc::new(AtomicBool::new(false));
        let thread = {
            let (pending, shared) = (Arc::clone(&pending), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("ipc-zenoh-export".into())
                .spawn(move || export_thread(rx, pending, shared))
                .map_err(|source| BridgeError::Io { what: "starting the export thread", source })?
        };
        Ok(Bridge {
            session,
            shared,
            commands: Mutex::new(tx),
            pending,
            thread: Mutex::new(Some(thread)),
            imports: Mutex::new(Vec::new()),
            exports: Mutex::new(HashMap::new()),
            block_timeout: Mutex::new(None),
        })
    }

    /// A zenoh configuration for a peer that listens on `listen` and connects to `connect`
    /// (endpoints such as `tcp/192.168.1.10:7447`), with multicast scouting off: it talks to
    /// the endpoints given and to what they tell it about, and sends nothing else to the
    /// network.
    ///
    /// ```
    /// let config = ipc_zenoh::Bridge::peer_config(&["tcp/127.0.0.1:0"], &["tcp/127.0.0.1:7447"])?;
    /// assert_eq!(config.get_json("scouting/multicast/enabled").unwrap(), "false");
    /// # Ok::<(), ipc_zenoh::BridgeError>(())
    /// ```
    ///
    /// # Errors
    /// [`BridgeError::Zenoh`] if an endpoint is not a valid zenoh endpoint.
    pub fn peer_config(listen: &[&str], connect: &[&str]) -> Result<zenoh::Config, BridgeError> {
        let mut config = zenoh::Config::default();
        let list = |items: &[&str]| json_list(items);
        let set = |config: &mut zenoh::Config, key: &str, value: String| {
            config
                .insert_json5(key, &value)
                .map_err(|e| BridgeError::zenoh(format!("config {key}"), e))
        };
        set(&mut config, "mode", "\"peer\"".into())?;
        set(&mut config, "listen/endpoints", list(listen))?;
        set(&mut config, "connect/endpoints", list(connect))?;
        set(&mut config, "scouting/multicast/enabled", "false".into())?;
        Ok(config)
    }

    /// How long the local publishers of imports made from now on wait for room in an
    /// `Overflow::Block` topic before the message is dropped and reported
    /// ([`PublisherBuilder::block_timeout`](ipc_runtime::pubsub::PublisherBuilder::block_timeout),
    /// 5 s by default). While it waits, zenoh's reception from that peer waits too.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let bridge = ipc_zenoh::Bridge::new(ipc_zenoh::Bridge::peer_config(&["tcp/127.0.0.1:0"], &[])?)?;
    /// bridge.set_block_timeout(Duration::from_secs(30));
    /// # Ok::<(), ipc_zenoh::BridgeError>(())
    /// ```
    pub fn set_block_timeout(&self, timeout: Duration) {
        *lock(&self.block_timeout) = Some(timeout);
    }

    /// This bridge's id: the origin of the messages it exports (new for every bridge).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The zenoh session (to declare more on it, or to read its id).
    pub fn session(&self) -> &zenoh::Session {
        &self.session
    }

    /// Exports local topic `local_topic` to zenoh key expression `key_expr`: every message
    /// published there by a local publisher (not by this bridge) is put to `key_expr`.
    ///
    /// The bridge subscribes to the topic (creating it with default options if it does not
    /// exist yet); messages published from now on are exported. The topic's overflow policy
    /// picks zenoh's congestion control (`Block` → `Block`, `DropOldest` → `Drop`).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    /// use ipc_zenoh::Bridge;
    ///
    /// #[derive(ShmMessage, serde::Serialize, serde::Deserialize)]
    /// #[repr(C)]
    /// struct Tick { n: u64 }
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-export-{}", std::process::id())).unwrap();
    /// let bridge = Bridge::new(Bridge::peer_config(&["tcp/127.0.0.1:0"], &[])?)?;
    /// bridge.export::<Tick>("ticks", "demo/ticks")?;
    /// # Ok::<(), ipc_zenoh::BridgeError>(())
    /// ```
    ///
    /// # Errors
    /// [`BridgeError::Local`] if the bridge cannot subscribe to the topic (another message type
    /// on it, no free subscriber slot, ...), [`BridgeError::Zenoh`] for an invalid key
    /// expression, [`BridgeError::Io`] if the export thread has stopped.
    pub fn export<M>(&self, local_topic: &str, key_expr: &str) -> Result<(), BridgeError>
    where
        M: ShmMessage + Serialize + Send + Sync + 'static,
    {
        self.export_with::<M>(local_topic, key_expr, Options::new())
    }

    /// [`export`](Self::export), with topic options for the bridge's local subscriber (used
    /// if it creates the topic, checked against the topic's otherwise).
    ///
    /// # Errors
    /// As [`export`](Self::export); also [`BridgeError::Local`] if an option given differs
    /// from the topic's.
    pub fn export_with<M>(
        &self,
        local_topic: &str,
        key_expr: &str,
        options: Options,
    ) -> Result<(), BridgeError>
    where
        M: ShmMessage + Serialize + Send + Sync + 'static,
    {
        let subscriber =
            Subscriber::<M>::builder(local_topic).options(options).create().map_err(|source| {
                BridgeError::Local { topic: local_topic.to_owned(), source: Box::new(source) }
            })?;
        let congestion = match subscriber.overflow() {
            Overflow::Block => CongestionControl::Block,
            Overflow::DropOldest => CongestionControl::Drop,
        };
        let zenoh = self
            .session
            .declare_publisher(key_expr.to_owned())
            .congestion_control(congestion)
            .allowed_destination(Locality::Remote)
            .wait()
            .map_err(|e| BridgeError::zenoh(format!("declaring publisher `{key_expr}`"), e))?;
        let zenoh = Arc::new(zenoh);
        lock(&self.exports).insert(local_topic.to_owned(), Arc::clone(&zenoh));
        let task = Export {
            subscriber,
            zenoh,
            key: key_expr.to_owned(),
            own: self.shared.own(local_topic),
        };
        let (ack_tx, ack_rx) = mpsc::channel();
        lock(&self.commands).send(Command::Add(Box::new(task), ack_tx)).map_err(|_| stopped())?;
        self.pending.store(true, Ordering::Release);
        ack_rx.recv().map_err(|_| stopped())
    }

    /// Imports zenoh key expression `key_expr` into local topic `local_topic`: every message
    /// another bridge puts there is published on `local_topic` by this bridge's publisher
    /// (which joins the topic, or creates it with default options).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    /// use ipc_zenoh::Bridge;
    ///
    /// #[derive(ShmMessage, serde::Serialize, serde::Deserialize)]
    /// #[repr(C)]
    /// struct Tick { n: u64 }
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-import-{}", std::process::id())).unwrap();
    /// let bridge = Bridge::new(Bridge::peer_config(&["tcp/127.0.0.1:0"], &[])?)?;
    /// bridge.import::<Tick>("demo/ticks", "remote-ticks")?;
    /// # Ok::<(), ipc_zenoh::BridgeError>(())
    /// ```
    ///
    /// # Errors
    /// As [`import_with`](Self::import_with).
    pub fn import<M>(&self, key_expr: &str, local_topic: &str) -> Result<(), BridgeError>
    where
        M: ShmMessage + DeserializeOwned + Send + Sync + 'static,
    {
        self.import_with::<M>(key_expr, local_topic, Options::new())
    }

    /// [`import`](Self::import), with topic options for the bridge's local publisher (used
    /// if it creates the topic, checked against the topic's otherwise).
    ///
    /// # Errors
    /// [`BridgeError::Local`] if the bridge cannot publish on the topic (another message type
    /// on it, options that differ, no free publisher slot, ...), [`BridgeError::Zenoh`] for an
    /// invalid key expression.
    pub fn import_with<M>(
        &self,
        key_expr: &str,
        local_topic: &str,
        options: Options,
    ) -> Result<(), BridgeError>
    where
        M: ShmMessage + DeserializeOwned + Send + Sync + 'static,
    {
        let mut builder = Publisher::<M>::builder(local_topic).options(options);
        if let Some(timeout) = *lock(&self.block_timeout) {
            builder = builder.block_timeout(timeout);
        }
        let publisher = builder.create().map_err(|source| BridgeError::Local {
            topic: local_topic.to_owned(),
            source: Box::new(source),
        })?;
        // Known before the first import is published: the export side never sees one of ours
        // without knowing it is ours.
        lock(&self.shared.own(local_topic)).push(publisher.id());
        let import = Arc::new(Import::<M> {
            publisher: Mutex::new(Some(publisher)),
            last: Mutex::new(HashMap::new()),
            reported: Mutex::new(Default::default()),
            topic: local_topic.to_owned(),
        });
        let (callback_import, shared) = (Arc::clone(&import), Arc::clone(&self.shared));
        let subscriber = self
            .session
            .declare_subscriber(key_expr.to_owned())
            .allowed_origin(Locality::Remote)
            .callback(move |sample| callback_import.receive(&shared, &sample))
            .wait()
            .map_err(|e| BridgeError::zenoh(format!("declaring subscriber `{key_expr}`"), e))?;
        lock(&self.imports).push((subscriber, import));
        Ok(())
    }

    /// Whether a remote zenoh subscriber (another bridge's import, or any zenoh program)
    /// matches the key expression `local_topic` is exported to; waits up to `timeout` for one.
    /// Lets a program (or a test) start sending once the other side listens.
    ///
    /// # Errors
    /// [`BridgeError::Zenoh`] if zenoh cannot tell.
    pub fn wait_matched(&self, local_topic: &str, timeout: Duration) -> Result<bool, BridgeError> {
        let Some(publisher) = lock(&self.exports).get(local_topic).cloned() else {
            return Ok(false);
        };
        let end = Instant::now() + timeout;
        loop {
            let status = publisher
                .matching_status()
                .wait()
                .map_err(|e| BridgeError::zenoh("matching status", e))?;
            if status.matching() {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Counters since the bridge started.
    pub fn stats(&self) -> BridgeStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BridgeStats {
            exported: get(&c.exported),
            imported: get(&c.imported),
            echoes_skipped: get(&c.echoes_skipped),
            refused: get(&c.refused),
            lost: get(&c.lost),
            duplicates: get(&c.duplicates),
            failed: get(&c.failed),
        }
    }

    /// The oldest error reported while messages flowed (type mismatches, malformed samples,
    /// failed puts or publishes), if any. The bridge keeps the last 1024.
    pub fn try_error(&self) -> Option<BridgeError> {
        lock(&self.shared.errors).pop_front()
    }

    /// As [`try_error`](Self::try_error), waiting up to `timeout` for one.
    pub fn error_timeout(&self, timeout: Duration) -> Option<BridgeError> {
        let end = Instant::now() + timeout;
        let mut q = lock(&self.shared.errors);
        loop {
            if let Some(err) = q.pop_front() {
                return Some(err);
            }
            let left = end.checked_duration_since(Instant::now())?;
            q = self.shared.errors_cv.wait_timeout(q, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

fn stopped() -> BridgeError {
    BridgeError::Io {
        what: "handing an export to the export thread",
        source: std::io::Error::other("the export thread stopped"),
    }
}

fn json_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(","))
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = lock(&self.commands).send(Command::Stop);
        self.pending.store(true, Ordering::Release);
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        let imports = std::mem::take(&mut *lock(&self.imports));
        for (subscriber, import) in imports {
            let _ = subscriber.undeclare().wait();
            import.close();
        }
        lock(&self.exports).clear();
        let _ = self.session.close().wait();
    }
}
