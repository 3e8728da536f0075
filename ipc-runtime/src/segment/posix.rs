//! POSIX shared memory (`shm_open` + `mmap`), used on Linux and other Unix systems.
//!
//! Objects live in `/dev/shm` on Linux. Creation is exclusive (`O_EXCL`) with mode 0600, and the
//! size is set with `ftruncate`, which on tmpfs reserves address space without committing pages:
//! a 1 GiB heap costs only the pages that are touched.
//!
//! # Whose objects
//!
//! Every object opened is checked with `fstat` on the new descriptor (see `crate::trust`): it
//! must be a regular file of this process's effective uid that neither group nor others may
//! write, or opening fails with an error carrying [`crate::Error::UntrustedObject`] (root too
//! refuses another uid's objects). On Linux, `shm_open` is `open("/dev/shm/<name>")` and would
//! follow a symbolic link planted there (rustix's `shm::open` adds only `O_CLOEXEC`), so this
//! backend opens the path itself with `O_NOFOLLOW | O_CLOEXEC` and creates with
//! `O_CREAT | O_EXCL` (which never follows a link): a link is refused and nothing is created at
//! its target. Elsewhere `shm_open` names are not file-system paths and the same `fstat` check
//! applies. An object of another user that we may not even open (`EACCES`) is refused with its
//! owner and mode looked up for the message.

use std::fs::File;
use std::io;
use std::ptr::NonNull;

use rustix::fs::Mode;
use rustix::shm;

use super::os::{Access, RawMapping, SharedMemoryOs};

/// The POSIX shared-memory mechanism.
#[derive(Debug, Clone, Copy, Default)]
pub struct Posix;

fn os_name(name: &str) -> String {
    format!("/{name}")
}

/// Where `shm_open` keeps object `name` on Linux.
#[cfg(target_os = "linux")]
fn shm_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new("/dev/shm").join(name)
}

/// Opens (or with `create`, creates exclusively, mode 0600) object `name`, never following a
/// symbolic link, and checks that it is ours.
pub(super) fn open_fd(name: &str, flags: shm::OFlags, create: bool) -> io::Result<File> {
    let mode = if create { Mode::RUSR | Mode::WUSR } else { Mode::empty() };
    #[cfg(target_os = "linux")]
    let (fd, object) = {
        use rustix::fs::OFlags;
        let path = shm_path(name);
        let mut oflags =
            OFlags::from_bits_retain(flags.bits()) | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if create {
            oflags |= OFlags::CREATE | OFlags::EXCL;
        }
        let fd = rustix::fs::open(&path, oflags, mode)
            .map_err(|e| crate::trust::explain_open_error(&path, e.into()))?;
        (fd, path.display().to_string())
    };
    #[cfg(not(target_os = "linux"))]
    let (fd, object) = {
        let flags = if create { flags | shm::OFlags::CREATE | shm::OFlags::EXCL } else { flags };
        let fd = shm::open(os_name(name), flags, mode)?;
        (fd, format!("shared-memory object {}", os_name(name)))
    };
    {
        use std::os::fd::AsFd;
        crate::trust::check_fd(fd.as_fd(), &object)?;
    }
    Ok(File::from(fd))
}

fn map(file: &File, len: usize, access: Access) -> io::Result<RawMapping> {
    if len == 0 {
        // Nothing to map; a zero-length view of a dangling, page-aligned address.
        let ptr = NonNull::new(4096 as *mut u8).expect("non-zero");
        // SAFETY: a zero-length view is never dereferenced; 4096 is page-aligned.
        return Ok(unsafe { RawMapping::new(ptr, 0, access, Box::new(())) });
    }
    let mut options = memmap2::MmapOptions::new();
    options.len(len);
    let raw = match access {
        Access::ReadWrite => options.map_raw(file)?,
        Access::ReadOnly => options.map_raw_read_only(file)?,
    };
    let ptr = NonNull::new(raw.as_mut_ptr()).expect("mmap never returns null");
    // SAFETY: `raw` maps `len` bytes of the object with the requested protection until it is
    // dropped, and we keep it alive inside the mapping; mmap returns page-aligned addresses.
    let mapping = unsafe { RawMapping::new(ptr, len, access, Box::new(raw)) };
    #[cfg(all(target_os = "linux", not(miri)))]
    let mapping = mapping.with_guard(guard(file, ptr, len, access));
    Ok(mapping)
}

/// Registers a fresh mapping of `file` with the truncation guard (see `segment::guard`), which
/// finds the object again by its path (`/dev/shm/<name>`, as this process's descriptor shows
/// it) and its device and inode. `None`, and the mapping unguarded, if any of that is unknown.
#[cfg(all(target_os = "linux", not(miri)))]
pub(super) fn guard(
    file: &File,
    ptr: NonNull<u8>,
    len: usize,
    access: Access,
) -> Option<super::guard::Guard> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let meta = file.metadata().ok()?;
    // The name must still lead to this very object (not unlinked meanwhile, which the link
    // would show with a " (deleted)" suffix, nor replaced).
    let named = std::fs::symlink_metadata(&path).ok()?;
    if (named.dev(), named.ino()) != (meta.dev(), meta.ino()) {
        return None;
    }
    super::guard::Guard::register(
        ptr.as_ptr(),
        len,
        access == Access::ReadWrite,
        &path,
        meta.dev(),
        meta.ino(),
    )
}

impl SharedMemoryOs for Posix {
    fn name(&self) -> &'static str {
        "posix"
    }

    fn create(&self, name: &str, size: usize) -> io::Result<RawMapping> {
        let file = open_fd(name, shm::OFlags::RDWR, true)?;
        let sized = file.set_len(size as u64).and_then(|()| map(&file, size, Access::ReadWrite));
        if sized.is_err() {
            // Do not leave a half-made object behind.
            let _ = shm::unlink(os_name(name));
        }
        sized
    }

    fn open(&self, name: &str, access: Access) -> io::Result<RawMapping> {
        let flags = match access {
            Access::ReadWrite => shm::OFlags::RDWR,
            Access::ReadOnly => shm::OFlags::RDONLY,
        };
        let file = open_fd(name, flags, false)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "object larger than memory"))?;
        map(&file, len, access)
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        shm::unlink(os_name(name)).map_err(io::Error::from)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        if !cfg!(target_os = "linux") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "listing shared-memory objects needs /dev/shm (Linux)",
            ));
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir("/dev/shm")? {
            let file_name = entry?.file_name();
            if let Some(name) = file_name.to_str()
                && name.starts_with(prefix)
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}
