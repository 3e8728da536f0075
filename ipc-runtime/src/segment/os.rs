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
    ///
    /// # Errors
    /// Implementations return [`io::ErrorKind::AlreadyExists`] when the name is taken, and the
    /// OS error when the object cannot be created, sized or mapped (no memory, a size the
    /// system refuses); nothing is left under the name then.
    fn create(&self, name: &str, size: usize) -> io::Result<RawMapping>;

    /// Like [`create`](SharedMemoryOs::create), but where the OS distinguishes reserving from
    /// committing memory (Windows), only reserves it: no page may be touched before
    /// [`commit`](SharedMemoryOs::commit) made it usable. For large, sparsely used segments
    /// (heaps). The default is `create`, for mechanisms whose pages cost nothing until touched
    /// anyway (POSIX shared memory on tmpfs).
    ///
    /// # Errors
    /// As [`create`](SharedMemoryOs::create).
    fn create_reserved(&self, name: &str, size: usize) -> io::Result<RawMapping> {
        self.create(name, size)
    }

    /// Makes `[offset, offset + len)` of `mapping` (made by this mechanism) usable, if it was
    /// created reserved; already usable pages stay as they are. Pages committed by the owner
    /// are readable through every other mapping of the object. The default does nothing.
    ///
    /// # Errors
    /// Implementations that commit return [`io::ErrorKind::InvalidInput`] for a range outside
    /// the mapping, and the OS error when the system cannot commit more memory (on Windows,
    /// `VirtualAlloc` at the commit limit). The default never fails.
    fn commit(&self, mapping: &RawMapping, offset: usize, len: usize) -> io::Result<()> {
        let _ = (mapping, offset, len);
        Ok(())
    }

    /// Keeps object `name` in existence for as long as process `pid` lives, even after every
    /// process that mapped it has gone, so that `pid` can still open it by name (until it is
    /// unlinked). For a publisher's heap, whose samples a subscriber may read only after the
    /// publisher exited. POSIX objects outlive their creators anyway, so the default does
    /// nothing; on Windows, where an object dies with its last handle, this gives `pid` one.
    ///
    /// # Errors
    /// Implementations that do something return [`io::ErrorKind::NotFound`] when the object is
    /// gone, and the OS error when process `pid` cannot be opened (it exited, or is not ours to
    /// open) or the handle cannot be handed to it. The default never fails.
    fn keep_alive_for(&self, name: &str, pid: u32) -> io::Result<()> {
        let _ = (name, pid);
        Ok(())
    }

    /// Opens an existing object and maps all of it (its current size, which may be 0).
    ///
    /// # Errors
    /// Implementations return [`io::ErrorKind::NotFound`] when there is no such object (on
    /// Windows also when its name is registered but every process that mapped it has exited);
    /// a `PermissionDenied` error carrying the refusal for an object that is not ours (POSIX:
    /// another user's, writable by others, a symbolic link; the framework reports it as
    /// [`Error::UntrustedObject`](crate::Error::UntrustedObject)); and the OS error when the
    /// object cannot be opened or mapped.
    fn open(&self, name: &str, access: Access) -> io::Result<RawMapping>;

    /// Removes the name. Existing mappings stay valid, and a new object may be created under the
    /// name at once.
    ///
    /// # Errors
    /// Implementations return [`io::ErrorKind::NotFound`] when there is no such object, and the
    /// OS error when the name cannot be removed.
    fn unlink(&self, name: &str) -> io::Result<()>;

    /// Names of the objects that start with `prefix`.
    ///
    /// # Errors
    /// Implementations return the OS error when the objects cannot be listed, and
    /// [`io::ErrorKind::Unsupported`] where there is no way to list them (POSIX shared memory
    /// outside Linux, which has no `/dev/shm` to read).
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
