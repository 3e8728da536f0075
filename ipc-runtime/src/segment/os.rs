//! The seam between segments and the operating system: one small trait, one implementation per
//! platform, and one conformance suite (in `segment::tests`) that runs against each.

use std::fmt;
use std::io;
use std::ptr::NonNull;

/// How a process maps a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only: writes fault instead of changing the data.
    ReadOnly,
}

/// A mapped view of a named shared-memory object. The view is unmapped when this is dropped.
pub struct RawMapping {
    ptr: NonNull<u8>,
    len: usize,
    access: Access,
    /// The view's registration with the truncation guard (`segment::guard`), if it has one.
    /// Dropped before `_keep`, which unmaps the view (see `Drop`).
    #[cfg(all(target_os = "linux", not(miri)))]
    guard: Option<super::guard::Guard>,
    /// Whatever the backend needs to keep the view alive (an mmap, a view handle, a buffer).
    _keep: Box<dyn Send + Sync>,
}

impl RawMapping {
    /// Wraps a view that stays valid for `len` bytes at `ptr` as long as `keep` is alive.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be mapped (readable, and writable when `access` is `ReadWrite`) for
    /// as long as `keep` lives, and `ptr` must be aligned to at least 4096 bytes.
    pub(crate) unsafe fn new(
        ptr: NonNull<u8>,
        len: usize,
        access: Access,
        keep: Box<dyn Send + Sync>,
    ) -> Self {
        debug_assert_eq!(ptr.as_ptr() as usize % 4096, 0, "mappings must be page-aligned");
        RawMapping {
            ptr,
            len,
            access,
            #[cfg(all(target_os = "linux", not(miri)))]
            guard: None,
            _keep: keep,
        }
    }

    /// Puts the view under the truncation guard's watch (`segment::guard`).
    #[cfg(all(target_os = "linux", not(miri)))]
    pub(crate) fn with_guard(mut self, guard: Option<super::guard::Guard>) -> Self {
        self.guard = guard;
        self
    }

    /// Whether another process truncated the object under this view, so that part of it now
    /// reads zeros here and is no longer shared with anyone (see `segment::guard`; only POSIX
    /// shared memory on Linux can be truncated and detected, elsewhere this is always false).
    pub fn was_truncated(&self) -> bool {
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            self.guard.as_ref().is_some_and(super::guard::Guard::truncated)
        }
        #[cfg(not(all(target_os = "linux", not(miri))))]
        {
            false
        }
    }

    /// First byte of the view.
    pub fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length of the view: the size of the OS object when it was mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view is empty (the object had size 0 when opened).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How the view was mapped.
    pub fn access(&self) -> Access {
        self.access
    }
}

impl Drop for RawMapping {
    fn drop(&mut self) {
        // Leave the guard's table before the view is unmapped (when `_keep` drops, after this),
        // so that its signal handler never maps zeros over an address that is no longer ours.
        #[cfg(all(target_os = "linux", not(miri)))]
        drop(self.guard.take());
    }
}

impl fmt::Debug for RawMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMapping")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("access", &self.access)
            .field("truncated", &self.was_truncated())
            .finish()
    }
}

// SAFETY: a mapping is a range of shared memory; the framework synchronises all access to its
// contents with atomics or by ownership, and `_keep` is itself `Send + Sync`.
unsafe impl Send for RawMapping {}
// SAFETY: as above.
unsafe impl Sync for RawMapping {}

/// Named shared memory as one operating-system mechanism provides it.
///
/// Names passed here are full object names (`<domain>.<kind>.<name>`), already validated.
pub trait SharedMemoryOs: Send + Sync + fmt::Debug + 'static {
    /// Short name of the mechanism, for diagnostics ("posix", "memory", "windows").
    fn name(&self) -> &'static str;

    /// Creates a new object of `size` bytes, owner-only, mapped read-write and zero-filled.
    /// Fails with [`io::ErrorKind::AlreadyExists`] when the name is taken.
    fn create(&self, name: &str, size: usize) -> io::Result<RawMapping>;

    /// Like [`create`](SharedMemoryOs::create), but where the OS distinguishes reserving from
    /// committing memory (Windows), only reserves it: no page may be touched before
    /// [`commit`](SharedMemoryOs::commit) made it usable. For large, sparsely used segments
    /// (heaps). The default is `create`, for mechanisms whose pages cost nothing until touched
    /// anyway (POSIX shared memory on tmpfs).
    fn create_reserved(&self, name: &str, size: usize) -> io::Result<RawMapping> {
        self.create(name, size)
    }

    /// Makes `[offset, offset + len)` of `mapping` (made by this mechanism) usable, if it was
    /// created reserved; already usable pages stay as they are. Fails if the range is out of
    /// bounds or the system cannot commit more memory. Pages committed by the owner are
    /// readable through every other mapping of the object. The default does nothing.
    fn commit(&self, mapping: &RawMapping, offset: usize, len: usize) -> io::Result<()> {
        let _ = (mapping, offset, len);
        Ok(())
    }

    /// Keeps object `name` in existence for as long as process `pid` lives, even after every
    /// process that mapped it has gone, so that `pid` can still open it by name (until it is
    /// unlinked). For a publisher's heap, whose samples a subscriber may read only after the
    /// publisher exited. POSIX objects outlive their creators anyway, so the default does
    /// nothing; on Windows, where an object dies with its last handle, this gives `pid` one.
    fn keep_alive_for(&self, name: &str, pid: u32) -> io::Result<()> {
        let _ = (name, pid);
        Ok(())
    }

    /// Opens an existing object and maps all of it (its current size, which may be 0).
    /// Fails with [`io::ErrorKind::NotFound`] when there is no such object.
    fn open(&self, name: &str, access: Access) -> io::Result<RawMapping>;

    /// Removes the name. Existing mappings stay valid, and a new object may be created under the
    /// name at once. [`io::ErrorKind::NotFound`] if absent.
    fn unlink(&self, name: &str) -> io::Result<()>;

    /// Names of the objects that start with `prefix`.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
}

/// The mechanism used by default on this platform.
pub fn platform() -> &'static dyn SharedMemoryOs {
    #[cfg(miri)]
    {
        &super::memory::Memory
    }
    #[cfg(all(unix, not(miri)))]
    {
        &super::posix::Posix
    }
    #[cfg(all(windows, not(miri)))]
    {
        &super::windows::Windows
    }
}
