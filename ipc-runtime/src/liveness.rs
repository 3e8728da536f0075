//! Liveness: who is alive, decided by the operating system.
//!
//! Every process holds one [`ProcessToken`] per domain it takes part in: an exclusive lock on a
//! small file in the domain's lock directory (`<domain>.lock.proc.<id>`), taken by its first
//! participant there (publisher, subscriber, notifier, listener, server, client, pipe side),
//! shared by all the others, and released — its file removed — by the last one to go. Each
//! registry slot records the token's id (see `crate::membership`). The OS releases the lock
//! when the process dies, however it dies, so "is the process of token X alive?" is answered by
//! trying to take its lock: success means the holder is gone ([`is_process_alive`],
//! [`probe_process`]). Process ids are never trusted (they are reused): the id is the pid plus
//! a random nonce, and it is the lock that tells. A process with thousands of participants
//! holds one descriptor per domain for its liveness, not one per participant.
//!
//! [`Token`] is the same mechanism under a name of the caller's choice (a heap's owner holds
//! one named after the heap). The same files serve as short-lived mutexes between processes
//! ([`FileLock`]), for example around creating a topic, so that a creator killed half-way never
//! blocks the next one; a `FileLock` is closed when dropped. Waiting for one is bounded
//! ([`lock_timeout`], 5 s by default): a live process that keeps the file locked makes the
//! others fail with [`Error::LockTimeout`] instead of hanging, and code that runs in `Drop`
//! waits only briefly and leaves what needs the lock to whoever comes next.
//!
//! Lock files live in `/dev/shm` on Linux (next to the segments, so one listing shows everything
//! a domain owns) and in `<temp dir>/ipc-rs` elsewhere (created mode 0700 and checked to be
//! ours and not a link on every open), named `<domain>.lock.<name>` (see [`crate::domain`]).
//!
//! Every lock file is opened with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` and checked with
//! `fstat` to be a regular file of this user that nobody else may write, and created with
//! `O_CREAT | O_EXCL` (see `crate::trust`): a symbolic link, a FIFO or another user's file at one
//! of our paths is refused with [`Error::UntrustedObject`], never followed, waited on, joined or
//! removed. A token we may not judge that way reads as [`Probe::Unknown`] — not alive, not
//! dead. Token ids read from shared memory are only ever formatted into
//! `<domain>.lock.proc.<16 hex digits>` ([`process_token_name`]): whatever a peer writes, a
//! probe looks at a file of that form in the lock directory and nowhere else.
//!
//! A probe of this process's own token from this process reads alive: its current token is
//! answered from memory, and a second handle's lock would conflict with the first anyway
//! (`flock` and `LockFileEx` locks belong to the open file, not the process). A child forked
//! without `exec` inherits the descriptor (see [`ProcessToken`], "fork").
//!
//! On Windows, `File::try_lock` is `LockFileEx`: the lock belongs to the handle, so a second
//! handle in the same process is refused like another process, and the kernel releases it when
//! the process ends, `TerminateProcess` included (checked under Wine by the killed-notifier and
//! killed-listener tests). Removing a file that is still open succeeds (std opens files with
//! `FILE_SHARE_DELETE`); the name goes at once with the POSIX delete semantics of Windows 10
//! and later, and with the last handle under Wine (a prober that opens the file in between finds
//! the lock free and removes it again). Systems with only the legacy semantics refuse to open a
//! file pending deletion, which [`is_alive`] would report as an error; they are not tested.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::domain;
use crate::error::{Error, Result};

/// Directory holding lock files.
pub fn lock_dir() -> PathBuf {
    if cfg!(target_os = "linux") {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir().join("ipc-rs")
    }
}

/// Path of lock file `name` in `domain`: `<lock dir>/<domain>.lock.<name>`. Lock names are
/// `.`-separated parts of ASCII letters, digits, `_`, `-`, `,` and `+` (the framework's are
/// composed from [encoded](domain::encode_name) object names, see [`crate::domain`]).
///
/// # Errors
/// [`Error::InvalidName`] for an invalid domain or lock name.
pub fn lock_path(domain: &str, name: &str) -> Result<PathBuf> {
    domain::validate_domain(domain)?;
    // Lock names are composed from a validated object name plus a short suffix.
    domain::validate_lock_name(name, domain::MAX_NAME_LEN + 40)?;
    Ok(lock_dir().join(format!("{domain}.lock.{name}")))
}

/// Makes sure the lock directory exists and, outside Linux (where it is a directory of our
/// own in the shared temp directory), that it is ours, private and not a symbolic link.
fn ensure_lock_dir() -> io::Result<()> {
    let dir = lock_dir();
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        crate::trust::ensure_private_dir(&dir)
    }
    #[cfg(target_os = "linux")]
    {
        let _ = dir; // `/dev/shm`: the system's.
        Ok(())
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

/// Opens lock file `path` read-write, never following a symbolic link, and checks that it is
/// ours (see `crate::trust`). With `create`, a missing file is created, exclusively and owner-only;
/// an existing one is reused (opened first; created with `O_EXCL` only if absent, retried if
/// another process created it in between).
fn open(path: &Path, create: bool) -> io::Result<File> {
    let mut attempts = 0;
    loop {
        if !cfg!(target_os = "linux") {
            ensure_lock_dir()?;
        }
        match open_checked(path, false) {
            Err(e) if create && e.kind() == io::ErrorKind::NotFound && attempts < 100 => {
                attempts += 1;
                ensure_lock_dir()?;
                match open_checked(path, true) {
                    // Someone created it in between: open theirs (and check it).
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    other => return other,
                }
            }
            other => return other,
        }
    }
}

/// One attempt of [`open`]: the existing file, or (with `create_new`) a new one.
fn open_checked(path: &Path, create_new: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(create_new);
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::OpenOptionsExt;
        // std adds O_CLOEXEC. O_NONBLOCK: a FIFO planted at a token's name must not hang the
        // opener (the check below then refuses it, like anything but a regular file).
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        options.mode(0o600).custom_flags(flags.bits() as i32);
        let file = options.open(path).map_err(|e| crate::trust::explain_open_error(path, e))?;
        crate::trust::check_fd(file.as_fd(), &path.display().to_string())?;
        Ok(file)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
        use windows_sys::Win32::Storage::FileSystem::{
            FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_OPEN_REPARSE_POINT,
        };
        // Open a link itself rather than its target, and refuse it.
        options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
        let file = options.open(path)?;
        if file.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(crate::trust::untrusted(
                path.display().to_string(),
                None,
                None,
                "it is a symbolic link or another reparse point (never followed)",
            ));
        }
        Ok(file)
    }
}

/// Whether `err` (from opening a token) means the token is not ours to judge: another user's,
/// a symbolic link, or not openable at all. Such a token is "unknown": never alive, never dead.
fn is_foreign(err: &io::Error) -> bool {
    crate::trust::as_untrusted(err).is_some() || err.kind() == io::ErrorKind::PermissionDenied
}

/// A liveness token: held for as long as this value lives (or the process does).
///
/// ```
/// use ipc_runtime::liveness::{self, Token};
///
/// let domain = format!("doc-live-{}", std::process::id());
/// let token = Token::acquire(&domain, "worker-1").unwrap();
/// assert!(liveness::is_alive(&domain, "worker-1").unwrap());
/// drop(token);
/// assert!(!liveness::is_alive(&domain, "worker-1").unwrap());
/// ```
#[derive(Debug)]
pub struct Token {
    path: PathBuf,
    file: Option<File>,
}

impl Token {
    /// Creates and locks token `name` in `domain`. Fails with [`Error::TokenHeld`] if a live
    /// process holds it already; a token left by a dead process is taken over.
    ///
    /// # Errors
    /// [`Error::TokenHeld`] as above; [`Error::UntrustedObject`] if the file at the token's path
    /// is another user's, writable by others or a symbolic link; [`Error::InvalidName`];
    /// [`Error::Io`] if the file cannot be created or locked.
    pub fn acquire(domain: &str, name: &str) -> Result<Token> {
        let path = lock_path(domain, name)?;
        let file =
            open(&path, true).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(Token { path, file: Some(file) }),
            Err(TryLockError::WouldBlock) => {
                Err(Error::TokenHeld { token: path.display().to_string() })
            }
            Err(TryLockError::Error(e)) => Err(Error::io(format!("locking {}", path.display()), e)),
        }
    }

    /// Where the token's file is.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        // Remove the name first, then release the lock: a checker that opens the file in between
        // finds nothing, which also reads as "not alive" — true, we are leaving.
        let _ = fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

/// Whether the process holding token `name` in `domain` is alive.
///
/// A token whose holder died is removed as a side effect. A token that does not exist is not
/// alive.
///
/// # Errors
/// [`Error::UntrustedObject`] if the token is not ours to judge (another user's, writable by
/// others, a symbolic link, or not openable): it is neither alive nor dead, and it is left in
/// place. [`Error::Io`] if probing fails otherwise; [`Error::InvalidName`].
pub fn is_alive(domain: &str, name: &str) -> Result<bool> {
    let path = lock_path(domain, name)?;
    let file = match open(&path, false) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    match file.try_lock() {
        Err(TryLockError::WouldBlock) => Ok(true),
        Ok(()) => {
            // Nobody holds it: the owner is dead. Clean up while we hold the lock.
            let _ = fs::remove_file(&path);
            Ok(false)
        }
        Err(TryLockError::Error(e)) => Err(Error::io(format!("probing {}", path.display()), e)),
    }
}

/// Name of the process token with id `id`, without the domain prefix: `proc.<id>` with the id
/// in 16 lowercase hexadecimal digits (see [`ProcessToken`]). Made from the number alone, so an
/// id read from a peer's memory always names a file of the domain in the lock directory.
///
/// ```
/// assert_eq!(ipc_runtime::liveness::process_token_name(0xab), "proc.00000000000000ab");
/// ```
pub fn process_token_name(id: u64) -> String {
    format!("proc.{id:016x}")
}

/// The id of process token `name` (a lock-file name without the domain prefix, as [`list`]
/// gives it); `None` for any other lock file.
///
/// ```
/// use ipc_runtime::liveness::{parse_process_token, process_token_name};
///
/// assert_eq!(parse_process_token(&process_token_name(42)), Some(42));
/// assert_eq!(parse_process_token("topic.t"), None);
/// ```
pub fn parse_process_token(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("proc.")?;
    (hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// The process part of a process token id (the high 32 bits: the pid of its taker).
fn pid_of(id: u64) -> u32 {
    (id >> 32) as u32
}

/// This process's liveness token in a domain, shared by all of its participants there.
///
/// The first participant of a process in a domain takes it ([`ProcessToken::acquire`]); the
/// others share it (an [`Arc`](std::sync::Arc)); the last one to go releases it and removes its file. Its id
/// is 64 bits: the taker's pid in the high half and a random, non-zero 32-bit nonce in the low
/// half (never 0 as a whole, so 0 can mean "no token"); its file is
/// `<domain>.lock.proc.<id in hex>` ([`process_token_name`]). The file is created with
/// `O_EXCL` (an id whose file exists, held or left by a dead process, is never reused), opened
/// close-on-exec, and checked after locking to still be the file at that name (a prober that
/// found it unlocked in between may have removed it; then another id is taken). Taking a token
/// also removes the domain's tokens left by processes that died (one listing of the lock
/// directory per process and domain).
///
/// Whether its process lives is [`probe_process`] / [`is_process_alive`]: the OS releases the
/// lock with the process, however it dies. A probe from the process itself reads it alive
/// (a second handle's lock conflicts with the first, `flock` and `LockFileEx` alike; this
/// process's own current token is answered without a system call).
///
/// **fork.** A child forked without `exec` inherits the token's descriptor (and so keeps the
/// lock held while it lives: the parent's participants read alive until the child exits or
/// calls `exec`, which closes it). The child does not use the parent's token: a participant
/// created in the child takes a fresh token of its own (the token remembers its taker's pid),
/// and the child closes its copy of the parent's descriptor then. Participants created before
/// the fork belong to the parent.
///
/// ```
/// use ipc_runtime::liveness::{self, Probe, ProcessToken};
///
/// let domain = format!("doc-proc-{}", std::process::id());
/// let token = ProcessToken::acquire(&domain)?;
/// let again = ProcessToken::acquire(&domain)?;
/// assert_eq!(token.id(), again.id(), "one token per process and domain");
/// assert_eq!(liveness::probe_process(&domain, token.id())?, Probe::Alive);
/// let id = token.id();
/// drop((token, again));
/// assert_eq!(liveness::probe_process(&domain, id)?, Probe::Missing);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
#[derive(Debug)]
pub struct ProcessToken {
    domain: String,
    id: u64,
    path: PathBuf,
    /// The process that took it: a child forked without exec has a copy of this value but not
    /// the token.
    pid: u32,
    file: std::sync::Mutex<Option<File>>,
}

/// The process tokens of this process, by domain (held weakly: the participants own them).
static PROCESS_TOKENS: std::sync::Mutex<Vec<(String, std::sync::Weak<ProcessToken>)>> =
    std::sync::Mutex::new(Vec::new());

fn process_tokens() -> std::sync::MutexGuard<'static, Vec<(String, std::sync::Weak<ProcessToken>)>>
{
    PROCESS_TOKENS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ProcessToken {
    /// This process's token in `domain`: the one its participants there share, or a new one if
    /// it has none (taken now, released when the last holder of the returned [`Arc`](std::sync::Arc) drops it).
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an invalid domain; [`Error::UntrustedObject`] if the lock
    /// directory is not ours (outside Linux); [`Error::Io`] if no token file can be created and
    /// locked.
    pub fn acquire(domain: &str) -> Result<std::sync::Arc<ProcessToken>> {
        domain::validate_domain(domain)?;
        let pid = std::process::id();
        let mut tokens = process_tokens();
        tokens.retain(|(_, token)| token.strong_count() > 0);
        if let Some(at) = tokens.iter().position(|(d, _)| d == domain) {
            if let Some(token) = tokens[at].1.upgrade() {
                if token.pid == pid {
                    return Ok(token);
                }
                // Forked: the parent's token is not ours. Close our copy of its descriptor
                // (the parent keeps its lock); its file stays (see `Drop`).
                let inherited =
                    token.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                drop(inherited);
            }
            tokens.remove(at);
        }
        let token = std::sync::Arc::new(Self::create(domain, pid)?);
        tokens.push((domain.to_owned(), std::sync::Arc::downgrade(&token)));
        drop(tokens);
        sweep_dead_process_tokens(domain);
        Ok(token)
    }

    fn create(domain: &str, pid: u32) -> Result<ProcessToken> {
        let mut last = None;
        for _ in 0..64 {
            let nonce = (crate::segment::fresh_id() as u32).max(1);
            let id = (u64::from(pid) << 32) | u64::from(nonce);
            let path = lock_path(domain, &process_token_name(id))?;
            if !cfg!(target_os = "linux") {
                ensure_lock_dir().map_err(|e| Error::io("preparing the lock directory", e))?;
            }
            let file = match open_checked(&path, true) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
            };
            match file.try_lock() {
                Ok(()) if same_file(&file, &path) => {
                    return Ok(ProcessToken {
                        domain: domain.to_owned(),
                        id,
                        path,
                        pid,
                        file: std::sync::Mutex::new(Some(file)),
                    });
                }
                // Removed by a prober between creation and locking: take another id.
                Ok(()) | Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    let _ = fs::remove_file(&path);
                    last = Some(Error::io(format!("locking {}", path.display()), e));
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::io(
                format!("creating a process token of domain `{domain}`"),
                io::Error::other("every id tried was taken"),
            )
        }))
    }

    /// The token's id (what registry slots record).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The domain it belongs to.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Where its file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProcessToken {
    fn drop(&mut self) {
        let file = self.file.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if self.pid != std::process::id() {
            // A forked child's copy of its parent's token: the file is the parent's.
            return;
        }
        // As `Token`: the name goes first, then the lock.
        let _ = fs::remove_file(&self.path);
        drop(file);
    }
}

/// Removes the files of `domain`'s process tokens whose processes died. Done by each process
/// when it takes its token in a domain: a token is otherwise removed by whoever probes it
/// through a slot that records it, and on Windows a segment goes with its last process, so
/// after everyone in it crashed nobody would find the tokens its slots named. Probing a live
/// token changes nothing; a token being created (not yet locked) that this removes is noticed
/// by its creator, which takes another id (see [`ProcessToken`]).
fn sweep_dead_process_tokens(domain: &str) {
    for name in list(domain).unwrap_or_default() {
        if parse_process_token(&name).is_some() {
            let _ = is_alive(domain, &name);
        }
    }
}

/// Whether `id` is this process's current token in `domain` (no system call).
pub(crate) fn is_own_token(domain: &str, id: u64) -> bool {
    let pid = std::process::id();
    if pid_of(id) != pid {
        return false;
    }
    process_tokens().iter().any(|(d, token)| {
        d == domain && token.upgrade().is_some_and(|t| t.id == id && t.pid == pid)
    })
}

/// Looks at process token `id` of `domain` without changing anything (see [`probe`]). Id 0 is
/// no token ([`Probe::Missing`]). The file probed is always `<domain>.lock.proc.<id>` in the
/// lock directory, whatever the id: an id read from a peer's memory cannot lead elsewhere.
///
/// # Errors
/// As [`probe`].
pub fn probe_process(domain: &str, id: u64) -> Result<Probe> {
    if id == 0 {
        domain::validate_domain(domain)?;
        return Ok(Probe::Missing);
    }
    if is_own_token(domain, id) {
        return Ok(Probe::Alive);
    }
    probe(domain, &process_token_name(id))
}

/// Whether the process that took token `id` of `domain` is alive (see [`is_alive`]: a token
/// left by a dead process is removed as a side effect). Id 0 is no token: not alive.
///
/// # Errors
/// As [`is_alive`].
pub fn is_process_alive(domain: &str, id: u64) -> Result<bool> {
    if id == 0 {
        domain::validate_domain(domain)?;
        return Ok(false);
    }
    if is_own_token(domain, id) {
        return Ok(true);
    }
    is_alive(domain, &process_token_name(id))
}

/// What [`probe`] found about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A live process holds it.
    Alive,
    /// The file exists but nobody holds it: its owner died.
    Dead,
    /// There is no such token.
    Missing,
    /// The token is not ours to judge: it belongs to another user, others may write it, it is
    /// a symbolic link, or it cannot be opened. Neither alive nor dead; never removed.
    Unknown,
}

/// Looks at token `name` in `domain` without changing anything (unlike [`is_alive`], which
/// removes a dead token's file). For tools that only report.
///
/// ```
/// use ipc_runtime::liveness::{self, Probe, Token};
///
/// let domain = format!("doc-probe-{}", std::process::id());
/// assert_eq!(liveness::probe(&domain, "x").unwrap(), Probe::Missing);
/// let token = Token::acquire(&domain, "x").unwrap();
/// assert_eq!(liveness::probe(&domain, "x").unwrap(), Probe::Alive);
/// drop(token);
/// ```
///
/// # Errors
/// [`Error::Io`] if the token exists but probing it fails; [`Error::InvalidName`].
pub fn probe(domain: &str, name: &str) -> Result<Probe> {
    let path = lock_path(domain, name)?;
    let file = match open(&path, false) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Missing),
        Err(e) if is_foreign(&e) => return Ok(Probe::Unknown),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    match file.try_lock() {
        Err(TryLockError::WouldBlock) => Ok(Probe::Alive),
        Ok(()) => {
            let _ = file.unlock();
            Ok(Probe::Dead)
        }
        Err(TryLockError::Error(e)) => Err(Error::io(format!("probing {}", path.display()), e)),
    }
}

/// How long [`FileLock::lock`] waits for another process by default.
///
/// ```
/// assert_eq!(ipc_runtime::liveness::DEFAULT_LOCK_TIMEOUT.as_secs(), 5);
/// ```
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Environment variable setting the lock timeout of a process, in milliseconds (overridden by
/// [`set_lock_timeout`]). An unparsable value is reported through `tracing` and ignored.
pub const LOCK_TIMEOUT_ENV: &str = "IPC_LOCK_TIMEOUT_MS";

/// Timeout set by [`set_lock_timeout`], in milliseconds; `u64::MAX` while unset.
static LOCK_TIMEOUT_MS: AtomicU64 = AtomicU64::new(u64::MAX);

/// How long this process waits for a lock another process holds before it gives up with
/// [`Error::LockTimeout`]: the value given to [`set_lock_timeout`], else `IPC_LOCK_TIMEOUT_MS`,
/// else [`DEFAULT_LOCK_TIMEOUT`].
///
/// Every join of a topic or event channel takes the object's lock, so this bounds how long a
/// stuck (or hostile) process of the same user can hold up `Publisher::new` and friends.
///
/// ```
/// let timeout = ipc_runtime::liveness::lock_timeout();
/// assert!(timeout > std::time::Duration::ZERO);
/// ```
pub fn lock_timeout() -> Duration {
    static FROM_ENV: OnceLock<Duration> = OnceLock::new();
    match LOCK_TIMEOUT_MS.load(Ordering::Relaxed) {
        u64::MAX => *FROM_ENV.get_or_init(|| match std::env::var(LOCK_TIMEOUT_ENV) {
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(ms) if ms < u64::MAX => Duration::from_millis(ms),
                _ => {
                    tracing::error!(
                        "{LOCK_TIMEOUT_ENV}={text} ignored: expected a number of milliseconds; using {DEFAULT_LOCK_TIMEOUT:?}"
                    );
                    DEFAULT_LOCK_TIMEOUT
                }
            },
            Err(_) => DEFAULT_LOCK_TIMEOUT,
        }),
        ms => Duration::from_millis(ms),
    }
}

/// Sets how long this process waits for a lock held by another process (see
/// [`lock_timeout`]); for the whole process, from the next wait on.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::liveness;
///
/// liveness::set_lock_timeout(Duration::from_secs(2));
/// assert_eq!(liveness::lock_timeout(), Duration::from_secs(2));
/// ```
pub fn set_lock_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX - 1).min(u64::MAX - 1);
    LOCK_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// An exclusive lock between processes for a short critical section.
///
/// Taking it waits for another holder only up to a bound ([`lock_timeout`], or the one given to
/// [`FileLock::lock_within`]) and then fails with [`Error::LockTimeout`] naming the lock: a
/// process that keeps the file locked (stuck, paused in a debugger, or doing it on purpose) can
/// delay others, never block them for good. Released on drop, or by the OS if the holder dies.
/// The file stays (it is tiny and reused); [`FileLock::remove`] deletes it when the protected
/// object is gone.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::{Error, liveness::FileLock};
///
/// let domain = format!("doc-flock-{}", std::process::id());
/// let held = FileLock::lock(&domain, "create")?;
/// // A second handle (as another process would be) gives up after the bound.
/// let err = FileLock::lock_within(&domain, "create", Duration::from_millis(20)).unwrap_err();
/// assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
/// held.remove();
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    _file: File,
}

impl FileLock {
    /// Takes lock `name` in `domain`, waiting up to [`lock_timeout`] for another holder.
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`] if another process held it all that time; [`Error::InvalidName`]
    /// for a bad name; [`Error::Io`] if the file cannot be created or locked.
    pub fn lock(domain: &str, name: &str) -> Result<FileLock> {
        Self::lock_within(domain, name, lock_timeout())
    }

    /// Takes lock `name` in `domain`, waiting up to `timeout` for another holder (not at all
    /// for [`Duration::ZERO`]).
    ///
    /// # Errors
    ///
    /// As [`FileLock::lock`].
    pub fn lock_within(domain: &str, name: &str, timeout: Duration) -> Result<FileLock> {
        let path = lock_path(domain, name)?;
        let start = Instant::now();
        // Short sections are the rule: first retry soon, then back off so a long wait costs
        // little CPU (the first retries come within tens of microseconds).
        let mut pause = Duration::from_micros(20);
        let mut file = None;
        loop {
            let current = match file.take() {
                Some(file) => file,
                None => open(&path, true)
                    .map_err(|e| Error::io(format!("creating {}", path.display()), e))?,
            };
            match current.try_lock() {
                // A holder may have removed the file while we waited: then our lock is on an
                // orphan inode, and the next process would lock a fresh file. Retry on the
                // live name (at once: the holder is gone).
                Ok(()) if same_file(&current, &path) => {
                    return Ok(FileLock { path, _file: current });
                }
                Ok(()) => continue,
                Err(TryLockError::WouldBlock) => file = Some(current),
                Err(TryLockError::Error(e)) => {
                    return Err(Error::io(format!("locking {}", path.display()), e));
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout { lock: path.display().to_string(), waited });
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(waited)));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Where the lock's file is.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Removes the lock's file while still holding it (the protected object is gone).
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &PathBuf) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &std::path::Path) -> bool {
    // Windows does not let a file be deleted while another handle has it open without
    // FILE_SHARE_DELETE, so the name always refers to the file we locked.
    path.exists()
}

type ExitHook = Box<dyn FnOnce() + Send>;

static EXIT_HOOKS: std::sync::Mutex<Vec<ExitHook>> = std::sync::Mutex::new(Vec::new());

/// Runs `hook` when the process exits normally (returning from `main` or `std::process::exit`),
/// after hooks registered later (last in, first out). This is how a process removes the names
/// it owns — its heap segment, the tokens of publishers still lingering — on the way out;
/// crashed processes are cleaned up by whoever finds them dead.
pub fn on_exit(hook: ExitHook) {
    EXIT_HOOKS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(hook);
    #[cfg(not(miri))]
    {
        extern "C" fn run_hooks() {
            loop {
                let hook =
                    EXIT_HOOKS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
                match hook {
                    Some(hook) => hook(),
                    None => break,
                }
            }
        }
        unsafe extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        static REGISTER: std::sync::Once = std::sync::Once::new();
        // SAFETY: `atexit` is the C runtime's; the callback is a plain `extern "C" fn` touching
        // only statics, which outlive `exit`.
        REGISTER.call_once(|| unsafe {
            atexit(run_hooks);
        });
    }
}

/// Names of all lock files of `domain` (for tools and tests): what follows `<domain>.lock.` in
/// the lock directory. Since domains contain no `.` (see [`crate::domain`]), another domain's
/// files never match.
///
/// # Errors
/// [`Error::InvalidName`] for an invalid domain; [`Error::Io`] if the directory cannot be read.
pub fn list(domain: &str) -> Result<Vec<String>> {
    domain::validate_domain(domain)?;
    let prefix = format!("{domain}.lock.");
    let mut names = Vec::new();
    let entries = match fs::read_dir(lock_dir()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(Error::io(format!("listing {}", lock_dir().display()), e)),
    };
    for entry in entries.flatten() {
        if let Some(name) = entry.file_name().to_str()
            && let Some(rest) = name.strip_prefix(&prefix)
            && domain::validate_lock_name(rest, usize::MAX).is_ok()
        {
            names.push(rest.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    fn domain(test: &str) -> String {
        format!("ut{}-live-{test}", std::process::id())
    }

    #[test]
    fn token_is_exclusive_and_released_on_drop() {
        let d = domain("excl");
        let token = Token::acquire(&d, "a").unwrap();
        assert!(matches!(Token::acquire(&d, "a"), Err(Error::TokenHeld { .. })));
        assert!(is_alive(&d, "a").unwrap());
        assert_eq!(list(&d).unwrap(), vec!["a".to_owned()]);
        drop(token);
        assert!(!is_alive(&d, "a").unwrap());
        assert!(list(&d).unwrap().is_empty());
    }

    #[test]
    fn abandoned_token_file_reads_as_dead_and_is_removed() {
        let d = domain("stale");
        let path = lock_path(&d, "ghost").unwrap();
        fs::write(&path, b"").unwrap();
        assert!(!is_alive(&d, "ghost").unwrap());
        assert!(!path.exists());
        // And it can be taken over.
        drop(Token::acquire(&d, "ghost").unwrap());
    }

    #[test]
    fn file_lock_serialises_and_can_remove() {
        let d = domain("flock");
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let first = FileLock::lock(&d, "create").unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let (d2, released2) = (d.clone(), Arc::clone(&released));
        let waiter = std::thread::spawn(move || {
            let lock = FileLock::lock(&d2, "create").unwrap();
            // We only get here after the first holder let go.
            assert!(released2.load(Ordering::SeqCst), "two holders at once");
            lock
        });
        released.store(true, Ordering::SeqCst);
        first.remove();
        waiter.join().unwrap().remove();
        assert!(list(&d).unwrap().is_empty());
    }

    #[test]
    fn file_lock_wait_is_bounded_and_names_the_lock() {
        let d = domain("bound");
        let held = FileLock::lock(&d, "busy").unwrap();
        let start = Instant::now();
        let err = FileLock::lock_within(&d, "busy", Duration::from_millis(30)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(30));
        match &err {
            Error::LockTimeout { lock, waited } => {
                assert!(lock.ends_with("busy"), "{err}");
                assert!(*waited >= Duration::from_millis(30), "{err}");
            }
            other => panic!("expected a lock timeout, got {other}"),
        }
        assert!(err.to_string().contains("busy"), "{err}");
        // A zero bound is a try-lock.
        assert!(matches!(
            FileLock::lock_within(&d, "busy", Duration::ZERO),
            Err(Error::LockTimeout { .. })
        ));
        held.remove();
        FileLock::lock_within(&d, "busy", Duration::ZERO).unwrap().remove();
        assert!(list(&d).unwrap().is_empty());
    }
}
