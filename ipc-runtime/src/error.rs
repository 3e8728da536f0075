//! The crate's one error type.
//!
//! Every fallible operation returns [`Error`]. Each variant names *what* went wrong and *where*
//! (the segment, heap or topic concerned), so a log line is enough to act on it.

use std::io;

/// Shorthand for `Result<T, ipc_runtime::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ipc-runtime`.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a catch-all arm.
///
/// ```
/// use ipc_runtime::Error;
///
/// let err = Error::SegmentNotFound { segment: "ipc.heap".into() };
/// assert_eq!(err.to_string(), "shared-memory segment `ipc.heap` does not exist");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name given to the framework cannot be used as an OS object name.
    #[error("invalid {what} name `{name}`: {reason}")]
    InvalidName {
        /// What the name is for: `topic`, `event`, `domain`, `pipe`, `wait channel`, ...
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The process's domain was already fixed (by use or by `IPC_DOMAIN`) to another value.
    #[error("the process's domain is already `{current}`; cannot switch to `{requested}`")]
    DomainAlreadySet {
        /// Domain in effect.
        current: String,
        /// Domain asked for.
        requested: String,
    },

    /// Opening a segment that does not exist.
    #[error("shared-memory segment `{segment}` does not exist")]
    SegmentNotFound {
        /// Full OS name of the segment.
        segment: String,
    },

    /// Creating a segment whose name is already taken.
    #[error("shared-memory segment `{segment}` already exists")]
    SegmentExists {
        /// Full OS name of the segment.
        segment: String,
    },

    /// The segment does not start with this framework's magic bytes: it was written by something
    /// else, or its header was overwritten.
    #[error(
        "shared-memory segment `{segment}` has wrong magic bytes {found:02x?} (not an ipc-runtime segment, or a corrupted header)"
    )]
    WrongMagic {
        /// Full OS name of the segment.
        segment: String,
        /// The first eight bytes found.
        found: [u8; 8],
    },

    /// The segment was written by an incompatible version of the framework.
    #[error(
        "shared-memory segment `{segment}` has format version {found}, this build reads version {expected}"
    )]
    WrongVersion {
        /// Full OS name of the segment.
        segment: String,
        /// Version in the header.
        found: u32,
        /// Version this build understands.
        expected: u32,
    },

    /// The segment holds a different kind of object than the caller expected.
    #[error(
        "shared-memory segment `{segment}` is a {found} segment, expected a {expected} segment"
    )]
    WrongKind {
        /// Full OS name of the segment.
        segment: String,
        /// Kind in the header.
        found: String,
        /// Kind the caller asked for.
        expected: String,
    },

    /// The segment is smaller than its own header: it cannot be one of ours.
    #[error(
        "shared-memory segment `{segment}` is {size} bytes, smaller than the {min}-byte header"
    )]
    TooSmall {
        /// Full OS name of the segment.
        segment: String,
        /// Size of the OS object.
        size: u64,
        /// Minimum size (the header).
        min: u64,
    },

    /// The OS object is shorter than the size its header records (truncated), or the header's
    /// size field was corrupted.
    #[error(
        "shared-memory segment `{segment}` is truncated: header says {expected} bytes, the object has {actual}"
    )]
    Truncated {
        /// Full OS name of the segment.
        segment: String,
        /// Size recorded in the header.
        expected: u64,
        /// Size of the OS object.
        actual: u64,
    },

    /// The segment's creator has not finished initialising it (or died while doing so).
    #[error("shared-memory segment `{segment}` is not initialised yet (creator pid {creator_pid})")]
    NotReady {
        /// Full OS name of the segment.
        segment: String,
        /// Pid recorded by the creator.
        creator_pid: u32,
    },

    /// The segment found under a name is not the one a pointer refers to (the name was reused).
    #[error(
        "shared-memory segment `{segment}` has id {found:016x}, expected {expected:016x} (stale or reused name)"
    )]
    SegmentMismatch {
        /// Full OS name of the segment.
        segment: String,
        /// Id the pointer refers to.
        expected: u64,
        /// Id in the segment's header.
        found: u64,
    },

    /// An offset read from shared memory points outside its segment.
    #[error(
        "offset {offset:#x} (+{len} bytes) is outside segment `{segment}` of {segment_size} bytes"
    )]
    OutOfBounds {
        /// Segment the offset refers to.
        segment: String,
        /// Offending offset.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Size of the segment.
        segment_size: u64,
    },

    /// A shared heap cannot satisfy an allocation.
    #[error(
        "shared heap `{heap}` ({capacity} bytes, {in_use} in use) is out of memory allocating {requested} bytes; {hint}"
    )]
    OutOfMemory {
        /// Heap segment name.
        heap: String,
        /// Bytes requested.
        requested: u64,
        /// Usable capacity of the heap.
        capacity: u64,
        /// Bytes in use when the allocation failed.
        in_use: u64,
        /// What to change: for the default heap, the `IPC_HEAP_SIZE` value that would fit.
        hint: String,
    },

    /// A size computation overflowed (for example `ShmVec::reserve(usize::MAX)`).
    #[error("capacity overflow: {what}")]
    CapacityOverflow {
        /// What was being sized.
        what: &'static str,
    },

    /// The heap was configured twice with different sizes.
    #[error(
        "the shared heap already exists with {existing} bytes; cannot initialise it with {requested} bytes"
    )]
    HeapAlreadyInitialized {
        /// Size of the existing heap.
        existing: u64,
        /// Size requested now.
        requested: u64,
    },

    /// Data read from shared memory violates an invariant (corrupted by a bug or another process).
    #[error("corrupted shared data: {what}")]
    Corrupted {
        /// What was found wrong, and where.
        what: String,
    },

    /// A request the framework does not support.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },

    /// A liveness token is held by a live process.
    #[error("liveness token `{token}` is held by a live process")]
    TokenHeld {
        /// Path of the token's file.
        token: String,
    },

    /// Another process held an inter-process lock for longer than this one would wait (see
    /// [`FileLock`](crate::liveness::FileLock)): a participant stuck or paused in the middle of
    /// joining or leaving, or a process that holds the lock file on purpose.
    #[error(
        "gave up waiting for lock `{lock}` after {waited:?}: another process holds it (stuck, paused, or not an ipc-runtime participant)"
    )]
    LockTimeout {
        /// Path of the lock's file.
        lock: String,
        /// How long this process waited.
        waited: std::time::Duration,
    },

    /// A participant's message type differs from the topic's.
    #[error("topic `{topic}` carries `{expected}`, not `{found}`: {difference}")]
    TypeMismatch {
        /// Topic name.
        topic: String,
        /// Type name recorded by the topic's creator (`Stamped<f64>`).
        expected: String,
        /// This participant's type name.
        found: String,
        /// What differs, in words: the first field that does, or that the layout fingerprints
        /// do.
        difference: String,
    },

    /// A participant asked for a topic-wide option that differs from the topic's.
    #[error(
        "topic `{topic}` was created by {creator} with {option} = {existing}; this participant asked for {requested} (a topic's options are fixed by the participant that creates it: give every participant the same options, or none to adopt the topic's)"
    )]
    IncompatibleOptions {
        /// Topic name.
        topic: String,
        /// Who created the topic (`pid 1234`).
        creator: String,
        /// The option that differs.
        option: &'static str,
        /// Value in effect.
        existing: String,
        /// Value asked for.
        requested: String,
    },

    /// An option value that cannot be used.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// All participant slots of a kind are taken by live processes.
    #[error("topic `{topic}` already has the maximum of {max} {role}")]
    TopicFull {
        /// Topic name.
        topic: String,
        /// "publishers" or "subscribers".
        role: &'static str,
        /// The limit.
        max: u32,
    },

    /// `Overflow::Block`: a subscriber did not make room in time.
    #[error(
        "publishing on topic `{topic}` timed out after {waited:?}: subscriber (pid {subscriber_pid}) did not make room"
    )]
    PublishTimeout {
        /// Topic name.
        topic: String,
        /// Pid of the slow subscriber.
        subscriber_pid: u32,
        /// How long the publisher waited.
        waited: std::time::Duration,
    },

    /// Every slot of the publisher's sample pool is in use (only possible when subscribers
    /// misbehave).
    #[error("publisher on topic `{topic}` has all {pool} sample slots in use")]
    OutOfSamples {
        /// Topic name.
        topic: String,
        /// Pool size.
        pool: u32,
    },

    /// Too many loaned samples at once.
    #[error("publisher on topic `{topic}` already has {max} samples loaned")]
    LoanLimit {
        /// Topic name.
        topic: String,
        /// The limit.
        max: u32,
    },

    /// A subscriber already holds its maximum of received samples.
    #[error(
        "subscriber on topic `{topic}` already holds {max} samples (max_borrowed); drop some first"
    )]
    TooManyBorrowed {
        /// Topic name.
        topic: String,
        /// The limit.
        max: u32,
    },

    /// A publisher sent a message that is not a valid value of the topic's type: a field with
    /// invalid bit patterns (a `bool`, `char`, enum, `NonZero*`, ...) held a value it cannot
    /// have (see [`ShmSafe::check_bits`](crate::ShmSafe::check_bits)). The subscriber did not
    /// hand it out: the sample went back to its publisher, and the next receive goes on with
    /// later messages.
    #[error(
        "topic `{topic}`: publisher {publisher} (pid {pid}) sent an invalid message: `{field}` holds {found}, which is not {expected}; it was returned unread"
    )]
    InvalidMessage {
        /// Topic name.
        topic: String,
        /// The publisher's slot in the topic ([`Sample::publisher_index`](crate::Sample::publisher_index)).
        publisher: u32,
        /// The publisher's process id, as it registered it.
        pid: u32,
        /// The sample's sequence number from that publisher.
        sequence: u64,
        /// Path to the field that failed, from the type's name: `Reading.status`,
        /// `Frame.flags[3]`, `Command::Go.speed`.
        field: String,
        /// What the field held (`7`, `0xdeadbeef`).
        found: String,
        /// What a valid value would have been (``a `bool` (0 or 1)``).
        expected: String,
    },

    /// Every publisher of the topic is dead or gone (when the subscriber asked to be told).
    #[error("topic `{topic}` has no live publisher any more")]
    NoPublisher {
        /// Topic name.
        topic: String,
    },

    /// An OS object (segment, lock or token file, lock directory) is not safe to use: it belongs
    /// to another user, others may write it, or it is a symbolic link or not a regular file.
    /// The framework never uses such an object, root included, and never removes it.
    #[error(
        "refusing `{object}`: {reason}{}{}",
        crate::trust::describe(*.owner, *.mode, *.uid),
        crate::trust::hint(.reason)
    )]
    UntrustedObject {
        /// Path or full OS name of the object.
        object: String,
        /// Its owner's uid, where known.
        owner: Option<u32>,
        /// Its permission bits, where known.
        mode: Option<u32>,
        /// This process's effective uid (`None` on Windows).
        uid: Option<u32>,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the framework was doing.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// An event id beyond the range of the event channel it was sent on.
    #[error("event id {id} is out of range for event `{event}`, which accepts ids 0..={max}")]
    EventIdOutOfRange {
        /// Full name of the event segment.
        event: String,
        /// The id given.
        id: u64,
        /// The channel's largest id.
        max: u64,
    },

    /// Joining an event channel with an option that differs from the one it was created with.
    #[error(
        "event `{event}` exists with {option} = {existing}; this participant asked for {requested}"
    )]
    EventOptionMismatch {
        /// Full name of the event segment.
        event: String,
        /// The option that differs (`max_event_id`, `max_listeners`, `max_notifiers`).
        option: &'static str,
        /// The channel's value.
        existing: u64,
        /// The value asked for.
        requested: u64,
    },

    /// Joining an event channel with a different wait backend than its participants use.
    #[error(
        "event `{event}` uses the `{existing}` wait backend; this participant uses `{requested}`"
    )]
    EventBackendMismatch {
        /// Full name of the event segment.
        event: String,
        /// The channel's backend (name and id).
        existing: String,
        /// The backend of the participant refused (name and id).
        requested: String,
    },

    /// Every slot of the role is taken by a live participant.
    #[error("event `{event}` already has its maximum of {max} {role}")]
    EventFull {
        /// Full name of the event segment.
        event: String,
        /// `listeners` or `notifiers`.
        role: &'static str,
        /// The channel's limit.
        max: u32,
    },

    /// Notifiers of the event died without leaving (reported to listeners that asked for it).
    #[error("{died} notifier(s) of event `{event}` died; {alive} alive")]
    NotifierDied {
        /// Full name of the event segment.
        event: String,
        /// Notifiers found dead since the last report.
        died: u64,
        /// Notifiers alive when the deaths were found.
        alive: u64,
    },

    /// No notifier of the event is alive any more (reported to listeners that asked for it).
    #[error("no notifier of event `{event}` is alive any more")]
    NoNotifiers {
        /// Full name of the event segment.
        event: String,
    },

    /// A byte pipe already has a live participant of this role (one writer and one reader per
    /// pipe).
    #[error("pipe `{pipe}` already has a {role} (pid {pid}); a pipe has one writer and one reader")]
    PipeBusy {
        /// Full name of the pipe's segment.
        pipe: String,
        /// `writer` or `reader`.
        role: &'static str,
        /// Pid of the participant holding the role, as it recorded it.
        pid: u32,
    },

    /// A byte pipe's stream is over for this role: its writer, or its reader, came and went,
    /// and the other side is still attached. A new pair can use the name once both are gone.
    #[error("pipe `{pipe}` cannot take a new {role}: {reason}")]
    PipeClosed {
        /// Full name of the pipe's segment.
        pipe: String,
        /// `writer` or `reader`.
        role: &'static str,
        /// What happened to the stream.
        reason: &'static str,
    },

    /// A request/response participant's types differ from the service's.
    #[error("service `{service}` serves `{expected}`; this participant uses `{found}`")]
    ServiceMismatch {
        /// Service name.
        service: String,
        /// Request and response types recorded by the service's creator (`Req -> Resp`).
        expected: String,
        /// This participant's request and response types (`Req -> Resp`).
        found: String,
    },

    /// No live server could take a request, or the server handling it died or left before
    /// ending its responses.
    #[error("service `{service}` has no live server {context}")]
    NoServer {
        /// Service name.
        service: String,
        /// `to take the request`, or which server went away while the request was in flight.
        context: String,
    },

    /// A client already has its maximum of requests in flight.
    #[error("client of service `{service}` already has its maximum of {max} pending requests")]
    TooManyPending {
        /// Service name.
        service: String,
        /// The service's `max_pending`.
        max: u32,
    },

    /// Every slot of the role is taken by a live participant.
    #[error("service `{service}` already has its maximum of {max} {role}")]
    ServiceFull {
        /// Service name.
        service: String,
        /// `servers` or `clients`.
        role: &'static str,
        /// The limit.
        max: u32,
    },

    /// The server ended the stream of responses to this request; nothing more will come.
    #[error("the responses of service `{service}` to request {request} have ended")]
    ResponsesEnded {
        /// Service name.
        service: String,
        /// The request's number (per client).
        request: u64,
    },
}

impl Error {
    /// Wraps an [`io::Error`] with a sentence saying what was being done.
    ///
    /// An `io::Error` that carries a refused object (see `crate::trust`) becomes
    /// [`Error::UntrustedObject`] instead.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        if let Some(untrusted) = crate::trust::as_untrusted(&source) {
            return untrusted.clone().into_error();
        }
        Error::Io { context: context.into(), source }
    }
}
