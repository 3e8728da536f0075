//! Windows named file mappings: pagefile-backed sections in the session's `Local\` namespace.
//!
//! # Names: kernel objects plus a registry of names
//!
//! A named section lives exactly as long as some process holds a handle or a view of it, and
//! its name cannot be removed while it lives. POSIX shared memory is the other way round: the
//! name lives until `shm_unlink`, independently of the mappings. [`SharedMemoryOs`] promises the
//! POSIX behaviour (the upper layers rely on "unlink, then create afresh under the same name
//! while old mappings stay valid"), so this backend separates the two:
//!
//! * The **kernel object** of a segment is named `Local\ipc-rs.<name>.<nonce>`, with a random
//!   64-bit nonce per incarnation, so a new incarnation never collides with an old one that
//!   still has mappings.
//! * The **name** is a small *registry file* `<name>.seg` in the lock directory
//!   ([`liveness::lock_dir`], `%TEMP%\ipc-rs`), holding the kernel object's name and the
//!   segment's exact size. It plays the role of the `/dev/shm` entry: `create` writes it,
//!   `unlink` removes it, `list` reads the directory, and tests check the directory for
//!   leftovers like they check `/dev/shm` on Linux.
//!
//! `create` and `unlink` of one name are serialised by a named kernel mutex
//! (`Local\ipc-rs.mutex.<name>`, released by the kernel if its holder dies); the registry file
//! appears atomically (written aside, then renamed into place), so `open` needs no lock.
//!
//! # Differences from POSIX (documented, deliberate)
//!
//! * **A name whose object died is gone.** When every process that mapped a segment has exited
//!   (crashed or not) without unlinking it, the kernel has deleted the object; the registry
//!   file is left behind like a stale `/dev/shm` entry, but `open` reports
//!   [`io::ErrorKind::NotFound`] (there is nothing to map) and `create` replaces the entry.
//!   On Linux the stale object could still be opened with its old contents. The framework's
//!   layers treat both the same way (a segment whose participants all died is replaced).
//! * **Sizes.** A view is rounded up to whole pages; the exact size comes from the registry
//!   file (capped at the real view size, so a wrong entry yields a validation error, never an
//!   out-of-bounds read). A section cannot be empty, so an empty object is a one-page section
//!   whose entry says 0 bytes.
//! * **Security.** Objects get the default security of the creating process's token (the user,
//!   SYSTEM and administrators) and live in the creator's logon session, the closest match to
//!   POSIX mode `0600`. Registry files inherit the ACL of the user's temp directory.
//!
//! * **Outliving the creator.** A publisher's heap must stay readable for its subscribers
//!   after the publisher exits, as a POSIX object does until it is unlinked.
//!   [`keep_alive_for`](SharedMemoryOs::keep_alive_for) duplicates a read-only handle to the
//!   section into the subscriber's process (`DuplicateHandle`), where it stays until that
//!   process exits; so the section, and its name, live as long as some process may still read
//!   it.
//!
//! # Sparse segments
//!
//! [`create`](SharedMemoryOs::create) makes an ordinary `SEC_COMMIT` section: every page is
//! charged against the system's commit limit up front, though (pagefile-backed) none takes RAM
//! before it is touched. [`create_reserved`](SharedMemoryOs::create_reserved) makes a
//! `SEC_RESERVE` section instead, whose pages cost nothing until
//! [`commit`](SharedMemoryOs::commit)ted; touching a page that is not committed is an access
//! violation. Heaps use it and commit on demand (see [`crate::heap`]). Commitment belongs to the
//! section, so pages the owner commits are readable in every other process's view.

use std::ffi::c_void;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use windows_sys::Win32::Foundation::{
    CloseHandle, DuplicateHandle, ERROR_ALREADY_EXISTS, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
    WAIT_ABANDONED, WAIT_OBJECT_0,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_READ, FILE_MAP_WRITE, MEM_COMMIT, MEM_FREE,
    MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFile, OpenFileMappingW,
    PAGE_READWRITE, SEC_COMMIT, SEC_RESERVE, UnmapViewOfFile, VirtualAlloc, VirtualQuery,
};
use windows_sys::Win32::System::Threading::{
    CreateMutexW, GetCurrentProcess, INFINITE, OpenProcess, PROCESS_DUP_HANDLE, ReleaseMutex,
    WaitForSingleObject,
};

use super::os::{Access, RawMapping, SharedMemoryOs};
use crate::liveness;

/// Named, pagefile-backed file mappings in the session namespace, with a registry of names in
/// the lock directory (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Windows;

/// Prefix of every kernel object this backend names.
const KERNEL_PREFIX: &str = "Local\\ipc-rs.";

/// Suffix of registry files.
const ENTRY_SUFFIX: &str = ".seg";

/// First line of every registry file: what it is, and its format version.
const ENTRY_MAGIC: &str = "ipc-rs segment 1";

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

fn entry_path(name: &str) -> PathBuf {
    liveness::lock_dir().join(format!("{name}{ENTRY_SUFFIX}"))
}

/// What a registry file says about a segment.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kernel: String,
    size: usize,
}

impl Entry {
    fn to_text(&self) -> String {
        format!("{ENTRY_MAGIC}\n{}\n{}\n", self.kernel, self.size)
    }

    fn parse(text: &str) -> Option<Entry> {
        let mut lines = text.lines();
        if lines.next()? != ENTRY_MAGIC {
            return None;
        }
        let kernel = lines.next()?;
        let size = lines.next()?.parse().ok()?;
        let valid = kernel.starts_with(KERNEL_PREFIX)
            && kernel.len() < 512
            && !kernel[KERNEL_PREFIX.len()..].contains(['\\', '\0']);
        valid.then(|| Entry { kernel: kernel.to_owned(), size })
    }

    /// Reads the registry file of `name`: `NotFound` if there is none, `InvalidData` if it is
    /// not one of ours.
    fn read(name: &str) -> io::Result<Entry> {
        let path = entry_path(name);
        let text = retry_sharing(|| fs::read_to_string(&path))?;
        Entry::parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a segment registry entry", path.display()),
            )
        })
    }
}

/// A mapped view and the section handle, unmapped and closed on drop.
///
/// The handle is kept although the view alone would keep the section's memory alive: the
/// object manager removes an object's *name* when its last handle closes, so without it the
/// segment could no longer be opened while it is mapped.
struct View {
    address: MEMORY_MAPPED_VIEW_ADDRESS,
    _section: Handle,
}

// SAFETY: a view is an address range valid in the whole process until unmapped, and a handle is
// valid in every thread; nothing about either is tied to the thread that made it.
unsafe impl Send for View {}
// SAFETY: as above; `View` only unmaps in `drop`, which needs `&mut`.
unsafe impl Sync for View {}

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: the address came from a successful MapViewOfFile and is unmapped only here.
        unsafe { UnmapViewOfFile(self.address) };
    }
}

/// An owned kernel handle, closed on drop.
struct Handle(HANDLE);

// SAFETY: a kernel handle is valid in every thread of the process; `Handle` only closes it in
// `drop`.
unsafe impl Send for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is valid (checked when wrapped) and closed only here.
        unsafe { CloseHandle(self.0) };
    }
}

/// A named kernel mutex held by this thread, released (and closed) on drop. The kernel releases
/// it if the holder dies; the next waiter then gets it as "abandoned", which is fine here: the
/// critical sections below leave the registry consistent at every step.
struct NamedMutex(Handle, std::marker::PhantomData<*const ()>);

impl NamedMutex {
    fn lock(name: &str) -> io::Result<NamedMutex> {
        let name = wide(&format!("{KERNEL_PREFIX}mutex.{name}"));
        // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the call; null security
        // attributes mean the default security descriptor.
        let raw = unsafe { CreateMutexW(std::ptr::null(), 0, name.as_ptr()) };
        if raw.is_null() {
            return Err(io::Error::last_os_error());
        }
        let handle = Handle(raw);
        // SAFETY: `handle` is a valid mutex handle.
        match unsafe { WaitForSingleObject(handle.0, INFINITE) } {
            WAIT_OBJECT_0 | WAIT_ABANDONED => Ok(NamedMutex(handle, std::marker::PhantomData)),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

impl Drop for NamedMutex {
    fn drop(&mut self) {
        // SAFETY: this thread owns the mutex: it was acquired in `lock`, and the guard is not
        // `Send` (the `PhantomData` of a raw pointer), so it is dropped on the acquiring thread.
        unsafe { ReleaseMutex(self.0.0) };
    }
}

/// Length of the view starting at `base`: the sum of the regions of its allocation (a view of a
/// `SEC_RESERVE` section is several regions, committed and reserved).
fn view_len(base: *const u8) -> usize {
    let mut len = 0usize;
    loop {
        // SAFETY: MEMORY_BASIC_INFORMATION is plain data; all-zero is a valid value.
        let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        let size = size_of::<MEMORY_BASIC_INFORMATION>();
        // SAFETY: VirtualQuery only inspects the address space; `info` is writable and `size`
        // bytes long. `wrapping_add` keeps the address computation free of UB.
        let got = unsafe { VirtualQuery(base.wrapping_add(len).cast(), &mut info, size) };
        if got == 0
            || info.AllocationBase.cast_const() != base.cast::<c_void>()
            || info.State == MEM_FREE
            || info.RegionSize == 0
        {
            return len;
        }
        len += info.RegionSize;
    }
}

/// Bytes of `[ptr, ptr + len)` that are committed (readable without a fault). For tests and
/// diagnostics of sparse segments.
pub fn committed_bytes(ptr: NonNull<u8>, len: usize) -> usize {
    let start = ptr.as_ptr() as usize;
    let end = start.saturating_add(len);
    let mut at = start;
    let mut committed = 0;
    while at < end {
        // SAFETY: as in `view_len`.
        let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        let size = size_of::<MEMORY_BASIC_INFORMATION>();
        // SAFETY: VirtualQuery only inspects the address space.
        let got = unsafe { VirtualQuery(at as *const c_void, &mut info, size) };
        if got == 0 || info.RegionSize == 0 {
            break;
        }
        let region_end = (info.BaseAddress as usize).saturating_add(info.RegionSize).min(end);
        if info.State == MEM_COMMIT {
            committed += region_end - at;
        }
        at = region_end;
    }
    committed
}

/// Maps all of the section `handle` and wraps the view as `len` bytes (at most the view).
fn map(handle: Handle, len: Option<usize>, access: Access) -> io::Result<RawMapping> {
    let desired = match access {
        Access::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
        Access::ReadOnly => FILE_MAP_READ,
    };
    // SAFETY: `handle` is a valid section handle; offset 0 and length 0 map the whole section.
    let addr = unsafe { MapViewOfFile(handle.0, desired, 0, 0, 0) };
    let Some(ptr) = NonNull::new(addr.Value.cast::<u8>()) else {
        return Err(io::Error::last_os_error());
    };
    let view = View { address: addr, _section: handle };
    let full = view_len(ptr.as_ptr());
    let len = len.map_or(full, |len| len.min(full));
    // SAFETY: the view maps at least `len` bytes (`len <= full`) with the requested access for
    // as long as `view` lives, and we keep it inside the mapping; views are aligned to the
    // allocation granularity (64 KiB), so to 4096.
    Ok(unsafe { RawMapping::new(ptr, len, access, Box::new(view)) })
}

/// Retries `op` while it fails with `PermissionDenied`, which on Windows is how a file that
/// another process has open for an instant (reading a registry entry) refuses to be replaced
/// or removed under legacy delete semantics. Bounded; the last error is returned.
fn retry_sharing<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut attempts = 0;
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && attempts < 1000 => {
                attempts += 1;
                std::thread::yield_now();
            }
            other => return other,
        }
    }
}

/// Whether the kernel object an entry names still exists.
fn object_exists(entry: &Entry) -> io::Result<bool> {
    let kernel = wide(&entry.kernel);
    // SAFETY: `kernel` is NUL-terminated UTF-16 and outlives the call.
    let raw = unsafe { OpenFileMappingW(FILE_MAP_READ, 0, kernel.as_ptr()) };
    if raw.is_null() {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::NotFound { Ok(false) } else { Err(err) };
    }
    drop(Handle(raw));
    Ok(true)
}

impl Windows {
    fn create_section(&self, name: &str, size: usize, reserve: bool) -> io::Result<RawMapping> {
        let dir = liveness::lock_dir();
        fs::create_dir_all(&dir)?;
        let _guard = NamedMutex::lock(name)?;
        let path = entry_path(name);
        match Entry::read(name) {
            Ok(entry) if object_exists(&entry)? => return Err(io::ErrorKind::AlreadyExists.into()),
            // Every process that mapped it is gone: the name is free again (replaced below).
            Ok(_) => tracing::debug!("replacing stale segment entry {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Not ours: refuse rather than overwrite something we do not understand.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            Err(e) => return Err(e),
        }
        // A section cannot be empty: an empty object (what a creator killed right after
        // `shm_open` leaves on Linux) is one page, recorded as 0 bytes in the registry.
        let size64 = size.max(1) as u64;
        let flags = PAGE_READWRITE | if reserve { SEC_RESERVE } else { SEC_COMMIT };
        let (handle, kernel) = loop {
            let kernel = format!("{KERNEL_PREFIX}{name}.{:016x}", crate::segment::fresh_id());
            let wide_kernel = wide(&kernel);
            // SAFETY: INVALID_HANDLE_VALUE asks for a pagefile-backed section; the name is
            // NUL-terminated UTF-16 that outlives the call; null attributes = default security.
            let raw = unsafe {
                CreateFileMappingW(
                    INVALID_HANDLE_VALUE,
                    std::ptr::null(),
                    flags,
                    (size64 >> 32) as u32,
                    size64 as u32,
                    wide_kernel.as_ptr(),
                )
            };
            if raw.is_null() {
                return Err(io::Error::last_os_error());
            }
            let handle = Handle(raw);
            // SAFETY: reads the calling thread's last-error value, set by the call above.
            if unsafe { GetLastError() } != ERROR_ALREADY_EXISTS {
                break (handle, kernel);
            }
            // A 64-bit nonce collided with a live object: draw another.
        };
        let mapping = map(handle, Some(size), Access::ReadWrite)?;
        if mapping.len() != size {
            return Err(io::Error::other(format!(
                "mapped {} bytes of a {size}-byte section",
                mapping.len()
            )));
        }
        let entry = Entry { kernel, size };
        let aside = dir.join(format!(".{name}.{:016x}.new", crate::segment::fresh_id()));
        fs::write(&aside, entry.to_text())?;
        if let Err(e) = retry_sharing(|| fs::rename(&aside, &path)) {
            let _ = fs::remove_file(&aside);
            return Err(e);
        }
        Ok(mapping)
    }
}

impl SharedMemoryOs for Windows {
    fn name(&self) -> &'static str {
        "windows"
    }

    fn create(&self, name: &str, size: usize) -> io::Result<RawMapping> {
        self.create_section(name, size, false)
    }

    fn create_reserved(&self, name: &str, size: usize) -> io::Result<RawMapping> {
        self.create_section(name, size, true)
    }

    fn commit(&self, mapping: &RawMapping, offset: usize, len: usize) -> io::Result<()> {
        let end = offset.checked_add(len).filter(|&end| end <= mapping.len());
        if end.is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "commit out of bounds"));
        }
        if len == 0 || mapping.access() != Access::ReadWrite {
            return Ok(());
        }
        // SAFETY: the range lies inside the live view (checked above); MEM_COMMIT on a view of
        // a SEC_RESERVE section commits those pages of the section (already committed pages
        // are left as they are) and touches nothing else.
        let got = unsafe {
            VirtualAlloc(
                mapping.ptr().as_ptr().add(offset).cast_const().cast(),
                len,
                MEM_COMMIT,
                PAGE_READWRITE,
            )
        };
        if got.is_null() { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    fn open(&self, name: &str, access: Access) -> io::Result<RawMapping> {
        let entry = Entry::read(name)?;
        let desired = match access {
            Access::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
            Access::ReadOnly => FILE_MAP_READ,
        };
        let kernel = wide(&entry.kernel);
        // SAFETY: `kernel` is NUL-terminated UTF-16 and outlives the call.
        let raw = unsafe { OpenFileMappingW(desired, 0, kernel.as_ptr()) };
        if raw.is_null() {
            // NotFound when every process that mapped it has gone (see the module docs).
            return Err(io::Error::last_os_error());
        }
        let handle = Handle(raw);
        map(handle, Some(entry.size), access)
    }

    fn keep_alive_for(&self, name: &str, pid: u32) -> io::Result<()> {
        if pid == std::process::id() {
            return Ok(());
        }
        let entry = Entry::read(name)?;
        let kernel = wide(&entry.kernel);
        // SAFETY: `kernel` is NUL-terminated UTF-16 and outlives the call.
        let raw = unsafe { OpenFileMappingW(FILE_MAP_READ, 0, kernel.as_ptr()) };
        if raw.is_null() {
            return Err(io::Error::last_os_error());
        }
        let section = Handle(raw);
        // SAFETY: plain call; a null result is checked below.
        let raw = unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, pid) };
        if raw.is_null() {
            return Err(io::Error::last_os_error());
        }
        let process = Handle(raw);
        let mut theirs: HANDLE = std::ptr::null_mut();
        // SAFETY: both handles are valid; the copy (read-only access, not inheritable) is
        // created in the target process and written to `theirs`, which is a valid out-pointer.
        // The copy is left there on purpose: it keeps the section (and its name) alive until
        // that process exits.
        let ok = unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                section.0,
                process.0,
                &mut theirs,
                FILE_MAP_READ,
                0,
                0,
            )
        };
        if ok == 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        let _guard = NamedMutex::lock(name)?;
        retry_sharing(|| fs::remove_file(entry_path(name)))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        let entries = match fs::read_dir(liveness::lock_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let file_name = entry?.file_name();
            if let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(ENTRY_SUFFIX))
                && name.starts_with(prefix)
                && !name.starts_with('.')
                && is_file(&liveness::lock_dir().join(file_name.as_os_str()))
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

fn is_file(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_reject_garbage() {
        let entry = Entry { kernel: format!("{KERNEL_PREFIX}d.raw.x.0123"), size: 8192 };
        assert_eq!(Entry::parse(&entry.to_text()), Some(entry));
        for bad in [
            "",
            "ipc-rs segment 1\n",
            "ipc-rs segment 2\nLocal\\ipc-rs.a\n4096\n",
            "ipc-rs segment 1\nGlobal\\x\n4096\n",
            "ipc-rs segment 1\nLocal\\ipc-rs.a\\b\n4096\n",
            "ipc-rs segment 1\nLocal\\ipc-rs.a\n-1\n",
        ] {
            assert_eq!(Entry::parse(bad), None, "{bad:?}");
        }
    }

    fn name(test: &str) -> String {
        format!("ut{}-win-{test}.raw.x", std::process::id())
    }

    /// A registry entry whose object died (every mapping gone) reads as absent and is replaced.
    #[test]
    fn stale_entries_are_not_found_and_replaced() {
        let os = Windows;
        let name = name("stale");
        drop(os.create(&name, 4096).unwrap());
        // Nobody maps it any more: the kernel deleted the object, the entry remains.
        assert!(entry_path(&name).exists());
        assert_eq!(os.open(&name, Access::ReadOnly).unwrap_err().kind(), io::ErrorKind::NotFound);
        let again = os.create(&name, 8192).unwrap();
        assert_eq!(os.open(&name, Access::ReadOnly).unwrap().len(), 8192);
        drop(again);
        os.unlink(&name).unwrap();
        assert!(!entry_path(&name).exists());
    }

    /// A registry file that is not ours is never overwritten nor mapped.
    #[test]
    fn foreign_entries_are_refused() {
        let os = Windows;
        let name = name("foreign");
        fs::create_dir_all(liveness::lock_dir()).unwrap();
        fs::write(entry_path(&name), "something else").unwrap();
        assert_eq!(os.create(&name, 4096).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            os.open(&name, Access::ReadOnly).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        os.unlink(&name).unwrap();
    }

    /// The mapping reports the exact size, not the page-rounded view, and an entry claiming
    /// more than the section holds is capped at the view.
    #[test]
    fn sizes_are_exact_and_capped_by_the_view() {
        let os = Windows;
        let name = name("size");
        let created = os.create(&name, 5000).unwrap();
        assert_eq!(created.len(), 5000);
        assert_eq!(os.open(&name, Access::ReadOnly).unwrap().len(), 5000);
        let mut entry = Entry::read(&name).unwrap();
        entry.size = 1 << 30;
        fs::write(entry_path(&name), entry.to_text()).unwrap();
        assert_eq!(os.open(&name, Access::ReadOnly).unwrap().len(), 8192);
        os.unlink(&name).unwrap();
    }

    /// A reserved section costs no commitment until committed; commits are visible to other
    /// views of the same section.
    #[test]
    fn reserved_sections_commit_on_request() {
        let os = Windows;
        let name = name("reserve");
        let size = 64 << 20;
        let owner = os.create_reserved(&name, size).unwrap();
        assert_eq!(owner.len(), size);
        assert_eq!(committed_bytes(owner.ptr(), size), 0);
        os.commit(&owner, 0, 1).unwrap();
        os.commit(&owner, 3 << 20, 8192).unwrap();
        assert_eq!(committed_bytes(owner.ptr(), size), 3 * 4096);
        // SAFETY: page 0 was committed just above; the view is writable.
        unsafe { owner.ptr().as_ptr().write(42) };
        let reader = os.open(&name, Access::ReadOnly).unwrap();
        // SAFETY: page 0 is committed in the section, so readable in this view too.
        assert_eq!(unsafe { reader.ptr().as_ptr().read() }, 42);
        assert!(os.commit(&owner, size - 1, 2).is_err());
        os.unlink(&name).unwrap();
    }
}
