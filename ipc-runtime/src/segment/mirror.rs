//! Mirrored ("doubly mapped") views of a named shared-memory object, for byte rings.
//!
//! A ring of `len` bytes is mapped twice, back to back: bytes `len..2 * len` of the view are
//! bytes `0..len` again. A copy that starts near the end of the ring and runs past it then
//! lands at the start without being split, and a reader can hand out one contiguous slice of
//! whatever is readable (`crate::pipe`).
//!
//! * **Unix** (not Miri): the object (created or opened like every POSIX segment, with the same
//!   owner and mode checks) is mapped `MAP_SHARED | MAP_FIXED` into both halves of a `2 * len`
//!   reservation of `PROT_NONE` address space. On Linux both halves are registered with the
//!   truncation guard like any other mapping (each maps the object from offset 0).
//! * **Windows** and Miri: one plain view ([`Mirror::is_mirrored`] is false); the ring copies in
//!   two parts at the wrap instead. Windows 10's placeholder mappings (`VirtualAlloc2` with
//!   `MEM_RESERVE_PLACEHOLDER`, `MapViewOfFile3` with `MEM_REPLACE_PLACEHOLDER`) could mirror
//!   there too; they are not used yet.
//!
//! Nothing stored in the object is an address: both views, in every process, see the same
//! bytes at the same offsets.

use std::io;
use std::ptr::NonNull;

#[cfg(not(all(unix, not(miri))))]
use super::os::{Access, RawMapping};

/// A (possibly mirrored) read-write view of a whole named object of `len` bytes.
#[derive(Debug)]
pub(crate) struct Mirror {
    ptr: NonNull<u8>,
    len: usize,
    mirrored: bool,
    #[cfg(all(unix, not(miri)))]
    _views: unix::Views,
    #[cfg(not(all(unix, not(miri))))]
    _view: RawMapping,
}

// SAFETY: the view is shared memory owned by this value (unmapped on drop); its contents are
// synchronised by its users (the pipe's atomics), like any segment's.
unsafe impl Send for Mirror {}
// SAFETY: as above.
unsafe impl Sync for Mirror {}

impl Mirror {
    /// Creates object `name` (a full OS name) of `len` bytes, exclusively and owner-only, and
    /// maps it. `len` must be a multiple of the page size (64 KiB on Windows).
    pub(crate) fn create(name: &str, len: usize) -> io::Result<Mirror> {
        #[cfg(all(unix, not(miri)))]
        {
            unix::create(name, len)
        }
        #[cfg(not(all(unix, not(miri))))]
        {
            let view = super::platform().create(name, len)?;
            Ok(Self::single(view))
        }
    }

    /// Opens object `name` and maps it; fails with [`io::ErrorKind::InvalidData`] unless it is
    /// exactly `len` bytes long.
    pub(crate) fn open(name: &str, len: usize) -> io::Result<Mirror> {
        #[cfg(all(unix, not(miri)))]
        {
            unix::open(name, len)
        }
        #[cfg(not(all(unix, not(miri))))]
        {
            let view = super::platform().open(name, Access::ReadWrite)?;
            if view.len() != len {
                return Err(wrong_size(name, view.len() as u64, len));
            }
            Ok(Self::single(view))
        }
    }

    /// Removes object `name`.
    pub(crate) fn unlink(name: &str) -> io::Result<()> {
        super::platform().unlink(name)
    }

    #[cfg(not(all(unix, not(miri))))]
    fn single(view: RawMapping) -> Mirror {
        Mirror { ptr: view.ptr(), len: view.len(), mirrored: false, _view: view }
    }

    /// Start of the view. Bytes `0..len` are readable and writable, and when
    /// [mirrored](Mirror::is_mirrored) so are `len..2 * len`, which are the same bytes again.
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Size of the object (one copy).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the object is mapped twice back to back.
    pub(crate) fn is_mirrored(&self) -> bool {
        self.mirrored
    }

    /// Whether a peer truncated the object under this view (Linux; see `segment::guard`).
    pub(crate) fn was_truncated(&self) -> bool {
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            self._views.truncated()
        }
        #[cfg(not(all(target_os = "linux", not(miri))))]
        {
            false
        }
    }
}

fn wrong_size(name: &str, found: u64, expected: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("shared-memory object `{name}` is {found} bytes, expected {expected}"),
    )
}

#[cfg(all(unix, not(miri)))]
mod unix {
    use std::fs::File;
    use std::io;
    use std::ptr::NonNull;

    use rustix::mm::{MapFlags, ProtFlags};
    use rustix::shm;

    use super::Mirror;
    use crate::segment::posix;

    /// Both halves of a mirrored view: `2 * len` bytes of address space at `base`.
    #[derive(Debug)]
    pub(super) struct Views {
        base: NonNull<u8>,
        len: usize,
        #[cfg(target_os = "linux")]
        guards: [Option<crate::segment::guard::Guard>; 2],
    }

    // SAFETY: the views are shared memory; their contents are synchronised by the ring's
    // atomics, and the struct itself only unmaps on drop.
    unsafe impl Send for Views {}
    // SAFETY: as above.
    unsafe impl Sync for Views {}

    impl Views {
        #[cfg(target_os = "linux")]
        pub(super) fn truncated(&self) -> bool {
            self.guards.iter().flatten().any(crate::segment::guard::Guard::truncated)
        }
    }

    impl Drop for Views {
        fn drop(&mut self) {
            // Leave the truncation guard's table before unmapping (see `RawMapping`'s drop).
            #[cfg(target_os = "linux")]
            for guard in &mut self.guards {
                drop(guard.take());
            }
            // SAFETY: `base..base + 2 * len` is the reservation made in `map`, mapped by us
            // only, and nothing borrows it any more (the `Mirror` owning us is being dropped).
            let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), 2 * self.len) };
        }
    }

    pub(super) fn create(name: &str, len: usize) -> io::Result<Mirror> {
        let file = posix::open_fd(name, shm::OFlags::RDWR, true)?;
        let mapped = file.set_len(len as u64).and_then(|()| map(&file, len));
        if mapped.is_err() {
            let _ = shm::unlink(format!("/{name}"));
        }
        mapped
    }

    pub(super) fn open(name: &str, len: usize) -> io::Result<Mirror> {
        let file = posix::open_fd(name, shm::OFlags::RDWR, false)?;
        let size = file.metadata()?.len();
        if size != len as u64 {
            return Err(super::wrong_size(name, size, len));
        }
        map(&file, len)
    }

    fn map(file: &File, len: usize) -> io::Result<Mirror> {
        // 64 KiB: a multiple of the page size everywhere (and of Windows' granularity).
        let double = len
            .checked_mul(2)
            .filter(|_| len != 0 && len.is_multiple_of(65536))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "ring size must be a non-zero multiple of 64 KiB",
                )
            })?;
        // SAFETY: a fresh anonymous reservation at an address of the kernel's choice; it
        // overlaps nothing of ours.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                double,
                ProtFlags::empty(),
                MapFlags::PRIVATE,
            )
        }?;
        let base = NonNull::new(base.cast::<u8>()).expect("mmap never returns null");
        #[allow(unused_mut)]
        let mut views = Views {
            base,
            len,
            #[cfg(target_os = "linux")]
            guards: [None, None],
        };
        for half in 0..2 {
            // SAFETY: `half * len` is inside the `2 * len` reservation, which we own.
            let at = unsafe { base.as_ptr().add(half * len) };
            // SAFETY: MAP_FIXED replaces part of our own reservation (nothing else lives
            // there); the object is `len` bytes long (set or checked by the caller).
            unsafe {
                rustix::mm::mmap(
                    at.cast(),
                    len,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::SHARED | MapFlags::FIXED,
                    file,
                    0,
                )
            }?;
            #[cfg(target_os = "linux")]
            {
                let at = NonNull::new(at).expect("inside a non-null reservation");
                views.guards[half] = posix::guard(file, at, len, super::super::Access::ReadWrite);
            }
        }
        Ok(Mirror { ptr: base, len, mirrored: true, _views: views })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write through the second copy shows in the first and the other way round.
    #[test]
    fn second_copy_is_the_first() {
        let name = format!("{}.raw.mirror-test", crate::domain::current());
        let _ = Mirror::unlink(&name);
        let len = 64 * 1024;
        let a = Mirror::create(&name, len).unwrap();
        let b = Mirror::open(&name, len).unwrap();
        assert!(Mirror::open(&name, len * 2).is_err());
        Mirror::unlink(&name).unwrap();
        // SAFETY: both views are `len` bytes (twice when mirrored) of the same live object.
        unsafe {
            a.ptr().as_ptr().add(10).write(7);
            assert_eq!(b.ptr().as_ptr().add(10).read(), 7);
            if a.is_mirrored() {
                assert_eq!(a.ptr().as_ptr().add(len + 10).read(), 7);
                b.ptr().as_ptr().add(len + 20).write(9);
                assert_eq!(a.ptr().as_ptr().add(20).read(), 9);
            }
        }
        assert_eq!(a.len(), len);
        assert!(!a.was_truncated());
        assert_eq!(a.is_mirrored(), cfg!(all(unix, not(miri))));
    }
}
