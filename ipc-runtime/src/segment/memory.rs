//! An in-process stand-in for shared memory: named, zero-filled, page-aligned buffers in a
//! process-wide table.
//!
//! It exists so that the heap and the containers can run under Miri (which cannot call
//! `shm_open`), and so the segment conformance suite has a reference implementation. Read-only
//! access is recorded but cannot be enforced.

use std::alloc::{self, Layout};
use std::collections::HashMap;
use std::io;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::os::{Access, RawMapping, SharedMemoryOs};

/// The in-memory mechanism.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory;

struct Buffer {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer is plain memory owned by this struct; access is synchronised by its users
// exactly as for real shared memory.
unsafe impl Send for Buffer {}
// SAFETY: as above.
unsafe impl Sync for Buffer {}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: allocated in `create` with this very layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
        }
    }
}

fn objects() -> MutexGuard<'static, HashMap<String, Arc<Buffer>>> {
    static OBJECTS: OnceLock<Mutex<HashMap<String, Arc<Buffer>>>> = OnceLock::new();
    OBJECTS.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner)
}

fn view(buffer: &Arc<Buffer>, access: Access) -> RawMapping {
    let (ptr, len) = if buffer.layout.size() == 0 {
        (NonNull::new(4096 as *mut u8).expect("non-zero"), 0)
    } else {
        (buffer.ptr, buffer.layout.size())
    };
    // SAFETY: the buffer stays allocated while the `Arc` kept in the mapping lives; its layout is
    // 4096-aligned; a zero-length view is never dereferenced.
    unsafe { RawMapping::new(ptr, len, access, Box::new(Arc::clone(buffer))) }
}

impl SharedMemoryOs for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn create(&self, name: &str, size: usize) -> io::Result<RawMapping> {
        let mut objects = objects();
        if objects.contains_key(name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let layout = Layout::from_size_align(size, 4096)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "size too large"))?;
        let ptr = if size == 0 {
            NonNull::new(4096 as *mut u8).expect("non-zero")
        } else {
            // SAFETY: the layout has a non-zero size.
            NonNull::new(unsafe { alloc::alloc_zeroed(layout) })
                .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?
        };
        let buffer = Arc::new(Buffer { ptr, layout });
        objects.insert(name.to_owned(), Arc::clone(&buffer));
        Ok(view(&buffer, Access::ReadWrite))
    }

    fn open(&self, name: &str, access: Access) -> io::Result<RawMapping> {
        let objects = objects();
        let buffer = objects.get(name).ok_or(io::ErrorKind::NotFound)?;
        Ok(view(buffer, access))
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        objects().remove(name).map(drop).ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut names: Vec<String> =
            objects().keys().filter(|name| name.starts_with(prefix)).cloned().collect();
        names.sort();
        Ok(names)
    }
}
