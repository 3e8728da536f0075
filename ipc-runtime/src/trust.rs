//! Whose objects we use: every segment and lock file the framework opens must belong to this
//! process's user, be writable by nobody else, and be what its name says (a regular file, not a
//! symbolic link).
//!
//! * Files are opened with `O_NOFOLLOW` and created with `O_CREAT | O_EXCL` (which never
//!   follows a link either), so a link planted at one of our names is refused and nothing is
//!   ever created at its target.
//! * Owner and mode are read with `fstat` on the descriptor just opened, never `stat` on the
//!   path, so what is checked is what is used.
//! * The check is the same for root: an object of another uid is refused, not joined.
//! * A refusal is an [`Error::UntrustedObject`] naming the object, its owner and mode. The
//!   OS-level backends (which speak [`io::Error`]) carry it inside an `io::Error`
//!   ([`untrusted`]), and [`Error::io`] turns it back into the specific variant.
//!
//! Windows: lock files are opened with `FILE_FLAG_OPEN_REPARSE_POINT` and a reparse point
//! (symbolic link, junction) is refused; owner and ACL are not checked there (objects live in
//! the user's session namespace and temp directory, see `segment::windows`).

use std::fmt;
use std::io;
#[cfg(unix)]
use std::path::Path;

use crate::error::Error;

/// A refused OS object, as carried inside an [`io::Error`] (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Untrusted {
    pub object: String,
    pub owner: Option<u32>,
    pub mode: Option<u32>,
    pub reason: &'static str,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing `{}`: {}", self.object, self.reason)
    }
}

impl std::error::Error for Untrusted {}

impl Untrusted {
    pub(crate) fn into_error(self) -> Error {
        Error::UntrustedObject {
            object: self.object,
            owner: self.owner,
            mode: self.mode,
            uid: current_uid(),
            reason: self.reason,
        }
    }
}

/// An [`io::Error`] (kind `PermissionDenied`) carrying a refusal.
pub(crate) fn untrusted(
    object: impl Into<String>,
    owner: Option<u32>,
    mode: Option<u32>,
    reason: &'static str,
) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        Untrusted { object: object.into(), owner, mode, reason },
    )
}

/// The refusal inside `err`, if it carries one.
pub(crate) fn as_untrusted(err: &io::Error) -> Option<&Untrusted> {
    err.get_ref().and_then(|inner| inner.downcast_ref::<Untrusted>())
}

/// This process's effective uid (`None` where there are no uids).
pub(crate) fn current_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        Some(rustix::process::geteuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Checks the object open as `fd`: a regular file of our effective uid that neither group nor
/// others may write. `object` names it in the error.
#[cfg(unix)]
pub(crate) fn check_fd(fd: std::os::fd::BorrowedFd<'_>, object: &str) -> io::Result<()> {
    use rustix::fs::FileType;
    let stat = rustix::fs::fstat(fd)?;
    let mode = stat.st_mode as u32 & 0o7777;
    let owner = stat.st_uid;
    let regular = FileType::from_raw_mode(stat.st_mode as _) == FileType::RegularFile;
    let kind = (!regular).then_some("it is not a regular file");
    match judge(kind, owner, mode) {
        None => Ok(()),
        Some(reason) => Err(untrusted(object, Some(owner), Some(mode), reason)),
    }
}

/// Why an object of owner `owner` and permission bits `mode` is not ours to use, if it is not:
/// `wrong_kind` (not the kind of file expected) first, then another owner, then write access
/// for group or others.
#[cfg(unix)]
fn judge(wrong_kind: Option<&'static str>, owner: u32, mode: u32) -> Option<&'static str> {
    if wrong_kind.is_some() {
        wrong_kind
    } else if Some(owner) != current_uid() {
        Some(OTHER_USER)
    } else if mode & 0o022 != 0 {
        Some("other users may write it (it is group- or world-writable)")
    } else {
        None
    }
}

const OTHER_USER: &str = "it belongs to another user";

/// Turns an error from opening `path` with `O_NOFOLLOW` into a refusal where it is one: a
/// symbolic link (`ELOOP`; `EMLINK` on FreeBSD), or an object we may not open (`EACCES`,
/// `EPERM`: ours are always openable, so it is someone else's). Other errors pass unchanged.
/// The path is looked at (`lstat`) only to describe the refusal, never to decide it.
#[cfg(unix)]
pub(crate) fn explain_open_error(path: &Path, err: io::Error) -> io::Error {
    use std::os::unix::fs::MetadataExt;
    let errno = err.raw_os_error().map(rustix::io::Errno::from_raw_os_error);
    let symlink_errno = errno == Some(rustix::io::Errno::LOOP)
        || (!cfg!(target_os = "linux") && errno == Some(rustix::io::Errno::MLINK));
    let denied = matches!(errno, Some(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM));
    if !symlink_errno && !denied {
        return err;
    }
    let meta = std::fs::symlink_metadata(path).ok();
    let owner = meta.as_ref().map(MetadataExt::uid);
    let mode = meta.as_ref().map(|m| m.mode() & 0o7777);
    let reason = if meta.as_ref().is_some_and(|m| m.file_type().is_symlink()) {
        "it is a symbolic link (never followed)"
    } else if symlink_errno {
        return err;
    } else if owner.is_some() && owner != current_uid() {
        OTHER_USER
    } else {
        "it cannot be opened (permission denied), so it is not one of ours"
    };
    untrusted(path.display().to_string(), owner, mode, reason)
}

/// Checks that directory `dir` (the lock directory outside Linux) is ours, not writable by
/// others and not a symbolic link, creating it with mode 0700 if it does not exist.
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // `lstat`: a link here is refused, not followed. A directory in the sticky temp directory
    // cannot be replaced by another user once it is ours.
    let meta = std::fs::symlink_metadata(dir)?;
    let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
    let kind = if meta.file_type().is_symlink() {
        Some("it is a symbolic link (never followed)")
    } else if !meta.is_dir() {
        Some("it is not a directory")
    } else {
        None
    };
    match judge(kind, owner, mode) {
        None => Ok(()),
        Some(reason) => Err(untrusted(dir.display().to_string(), Some(owner), Some(mode), reason)),
    }
}

/// The hint appended to refusals of objects of another user.
pub(crate) fn hint(reason: &str) -> &'static str {
    if reason == OTHER_USER || reason.starts_with("it cannot be opened") {
        "; another user may be squatting the name: only its owner or an administrator can \
         remove it from the shared directory (sticky /dev/shm), so use another domain \
         (IPC_DOMAIN)"
    } else {
        ""
    }
}

/// `owner uid N, mode 0NNN`, or what of it is known, for messages.
pub(crate) fn describe(owner: Option<u32>, mode: Option<u32>, uid: Option<u32>) -> String {
    let mut parts = Vec::new();
    if let Some(owner) = owner {
        parts.push(format!("owner uid {owner}"));
    }
    if let Some(mode) = mode {
        parts.push(format!("mode {mode:04o}"));
    }
    if let Some(uid) = uid {
        parts.push(format!("this process runs as uid {uid}"));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
}
