//! POSIX shared memory (`shm_open` + `mmap`), used on Linux and other Unix systems.
//!
//! Objects live in `/dev/shm` on Linux. Creation is exclusive (`O_EXCL`) with mode 0600, and the
//! size is set with `ftruncate`, which on tmpfs reserves address space without committing pages:
//! a 1 GiB heap costs only the pages that are touched.

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
fn guard(file: &File, ptr: NonNull<u8>, len: usize, access: Access) -> Option<super::guard::Guard> {
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
        let flags = shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR;
        let fd = shm::open(os_name(name), flags, Mode::RUSR | Mode::WUSR)?;
        let file = File::from(fd);
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
        let fd = shm::open(os_name(name), flags, Mode::empty())?;
        let file = File::from(fd);
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
