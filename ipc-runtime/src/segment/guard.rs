//! The truncation guard: a peer shrinking a segment under us must not kill this process.
//!
//! # The problem
//!
//! A POSIX shared-memory object is a file (on Linux, in `/dev/shm`). Any process of the same
//! user may `ftruncate` it while others have it mapped; every later access to a page past the
//! new end raises `SIGBUS`, and by default that kills the process. A buggy or hostile peer of
//! the same user could so kill every participant of a topic by shrinking the topic segment or
//! a publisher's heap.
//!
//! # The two ways out, and the one taken
//!
//! * **Sealing** (Linux `memfd_create` with `F_SEAL_SHRINK`): the kernel then refuses to shrink
//!   the object at all. But only memfds can be sealed, never a named `/dev/shm` object, and a
//!   memfd has no name: it is passed around as a descriptor over a Unix socket, and it dies with
//!   the last descriptor and mapping. Segments here are named objects that outlive their
//!   creators (a topic stays while any participant is in it; a heap stays readable after its
//!   publisher exited) and are opened by name by whoever comes later, with no broker to hand
//!   descriptors out. Sealing would need a redesign of discovery around descriptor passing
//!   (and a process that keeps every segment alive), so it is not used.
//! * **Surviving the fault** (this module). Every file-backed mapping made by
//!   [`posix`](super::posix) is registered here, with the identity (device, inode and path) of
//!   its object. A `SIGBUS` handler, installed once per process, looks the faulting address up;
//!   when it lies in a registered mapping *and* the object is now shorter than the faulting
//!   offset (checked with `lstat` on its path, same device and inode), it replaces the lost
//!   part of the mapping (from the object's new end, rounded up to a page, to the end of the
//!   mapping) with private, zero-filled memory of the same protection, records that the mapping
//!   was truncated, and returns: the access is retried and reads zeros. Zeros are just one more
//!   thing a peer could have written: everything read from shared memory is validated already
//!   (a zeroed segment header, topic header, port or ring is refused or taken as "nothing
//!   new"), and [`Segment::was_truncated`](super::Segment::was_truncated) lets the owner of a
//!   mapping name the segment in an error. Every other `SIGBUS` goes to the handler that was
//!   installed before (the Rust runtime's, which lets the fault kill the process), or, where
//!   there was none, kills the process as it always did: a fault in memory this module does not
//!   know, a hardware memory error, a `SIGBUS` sent with `kill`, and a fault in a registered
//!   mapping whose object is *not* shorter (a tmpfs that ran out of space while a sparse heap
//!   page was first touched: returning zeros there would silently lose a publisher's data).
//!
//! Opening a segment still re-validates its size against its header
//! ([`Error::Truncated`](crate::Error::Truncated)), so a segment shrunk *before* it is mapped is
//! refused cleanly.
//!
//! # Residual risks (what a peer of the same user can still do)
//!
//! * **Data goes missing, not the process.** After a truncation, this process no longer shares
//!   the lost range with anyone: its writes there go to private memory and are lost to its
//!   peers, and it reads zeros where the peers' data was. Connections through that memory stop
//!   working (a subscriber sees no new messages from a publisher whose heap was shrunk); they
//!   are reported where [`Segment::was_truncated`](super::Segment::was_truncated) is checked.
//! * **A heap's owner.** A heap keeps its allocator's state in its own segment. If a peer
//!   truncates it, that state reads zeros in the owner too, and the next allocation that walks
//!   into the lost part meets metadata that makes no sense: the allocator's own consistency
//!   checks decide what happens then (it is not turned into an error here). Publishing from
//!   a pool allocated before the truncation goes on without error but reaches nobody; its
//!   subscribers report the truncated heap and stop reading from that publisher.
//! * **Truncate, then remove or replace the name.** The handler can only confirm a truncation
//!   through the object's name. If the peer unlinks the object (or puts another one in its
//!   place) before this process touches the lost range, the fault cannot be told apart from a
//!   full tmpfs and kills the process, as before. Keeping a descriptor of every mapped object
//!   open would close that gap at the cost of one descriptor per mapping; it is not done. So
//!   does a peer that shrinks and then grows the object again within microseconds, while the
//!   handler runs (the object is then not shorter than the faulting offset).
//! * **Contents.** Truncating to zero and growing back, or simply writing, replaces the
//!   contents with zeros or garbage without any fault: that is the untrusted-peer case the
//!   framework validates against anyway. A peer of the same user can also `ptrace` or `kill`
//!   this process; nothing here defends against that.
//! * **Other handlers.** A `SIGBUS` handler installed after this one without chaining to it
//!   disables the guard. The handler runs on the alternate signal stack where the thread has
//!   one (the Rust runtime sets one up for every thread it starts) and otherwise on the
//!   faulting thread's stack, using a few hundred bytes.
//!
//! # Other platforms
//!
//! * **Windows**: a section (file mapping object) backed by the paging file cannot be shrunk by
//!   anyone while it exists; `SetEndOfFile` applies to files, not to the pagefile-backed
//!   sections segments are made of. Nothing to guard.
//! * **Other Unix systems** (macOS, the BSDs): their shared-memory objects have no path the
//!   handler could check, so the guard is not installed and a truncation by a peer of the same
//!   user still raises `SIGBUS` there (macOS refuses to resize a shared-memory object once its
//!   size is set, which closes the hole there).
//! * The in-process backend ([`memory`](super::memory)) and Miri builds need no guard.
//!
//! # How the table works
//!
//! A fixed array of slots (more arrays are chained on, never freed, when it fills up), each
//! with a state word: free, claimed (being filled in by its registering thread), live, or
//! being removed. The handler reads only live slots, with atomics, and never allocates, locks
//! or logs. Its only system calls are `lstat`, `mmap`, `sigaction` and `raise`, and it keeps
//! `errno` as it found it. A mapping is removed from the table *before* it is unmapped, and the
//! removal waits until no handler is running (a counter the handler raises before it looks at
//! the table): so the handler never maps zeros over an address range that was unmapped and
//! reused meanwhile.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Longest path (with its NUL) a slot holds: `/dev/shm/` plus a file name of up to 255 bytes.
const PATH_CAP: usize = 272;

/// Slots per chunk of the table.
const CHUNK: usize = 64;

const FREE: u32 = 0;
const CLAIMED: u32 = 1;
const LIVE: u32 = 2;
const REMOVING: u32 = 3;

/// One registered mapping.
struct Slot {
    state: AtomicU32,
    start: AtomicUsize,
    /// Length rounded up to whole pages (what `mmap` mapped).
    len: AtomicUsize,
    writable: AtomicBool,
    truncated: AtomicBool,
    dev: AtomicU64,
    ino: AtomicU64,
    /// NUL-terminated path of the object.
    path: UnsafeCell<[u8; PATH_CAP]>,
}

// SAFETY: `path` is written only by the thread that claimed the slot (state CLAIMED, which no
// reader looks at) and read only while the slot is LIVE, which a Release store publishes after
// the write; a LIVE slot is freed (and so may be rewritten) only once no signal handler is
// running (`IN_FLIGHT` is 0 after the slot was marked REMOVING). Every other field is atomic.
unsafe impl Sync for Slot {}

impl Slot {
    const fn new() -> Self {
        Slot {
            state: AtomicU32::new(FREE),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            writable: AtomicBool::new(false),
            truncated: AtomicBool::new(false),
            dev: AtomicU64::new(0),
            ino: AtomicU64::new(0),
            path: UnsafeCell::new([0; PATH_CAP]),
        }
    }

    /// Whether this live slot's mapping covers `addr`.
    fn covers(&self, addr: usize) -> bool {
        let start = self.start.load(Ordering::Relaxed);
        addr >= start && addr - start < self.len.load(Ordering::Relaxed)
    }
}

struct Chunk {
    slots: [Slot; CHUNK],
    next: AtomicPtr<Chunk>,
}

impl Chunk {
    const fn new() -> Self {
        Chunk { slots: [const { Slot::new() }; CHUNK], next: AtomicPtr::new(ptr::null_mut()) }
    }

    fn next(&self) -> Option<&'static Chunk> {
        // SAFETY: `next` is null or points to a leaked (never freed) chunk, published with a
        // Release compare-exchange after it was fully built.
        unsafe { self.next.load(Ordering::Acquire).as_ref() }
    }
}

/// The first chunk of the table; later ones hang off it and are never freed.
static TABLE: Chunk = Chunk::new();

/// Signal handlers currently looking at the table (see the module docs).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Whether the handler ever patched a mapping: a cheap first check for hot paths.
static ANY_TRUNCATED: AtomicBool = AtomicBool::new(false);

/// Whether any guarded mapping of this process was found truncated so far.
pub(crate) fn any_truncated() -> bool {
    ANY_TRUNCATED.load(Ordering::Relaxed)
}

/// The page size, set when the handler is installed.
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// The `SIGBUS` disposition before ours, set once before ours is installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Whether our handler is installed (it is installed at most once per process).
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Every slot of the table, chunk after chunk.
fn slots() -> impl Iterator<Item = &'static Slot> {
    std::iter::successors(Some(&TABLE), |chunk| chunk.next()).flat_map(|chunk| chunk.slots.iter())
}

/// A registered mapping; dropping it removes the registration. Drop it *before* unmapping.
pub(crate) struct Guard {
    slot: &'static Slot,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("truncated", &self.truncated()).finish()
    }
}

impl Guard {
    /// Registers the shared mapping of `len` bytes at `start` of the object at `path` (device
    /// `dev`, inode `ino`), mapped from offset 0, writable or not. `None` if the guard cannot
    /// cover it (no handler could be installed, or the path is too long): the mapping is then
    /// unguarded, as every mapping was before this module.
    pub(crate) fn register(
        start: *mut u8,
        len: usize,
        writable: bool,
        path: &Path,
        dev: u64,
        ino: u64,
    ) -> Option<Guard> {
        let bytes = path.as_os_str().as_bytes();
        if len == 0 || bytes.len() >= PATH_CAP || bytes.contains(&0) || !install() {
            return None;
        }
        let page = PAGE.load(Ordering::Relaxed);
        let slot = claim();
        slot.start.store(start as usize, Ordering::Relaxed);
        slot.len.store(len.div_ceil(page) * page, Ordering::Relaxed);
        slot.writable.store(writable, Ordering::Relaxed);
        slot.truncated.store(false, Ordering::Relaxed);
        slot.dev.store(dev, Ordering::Relaxed);
        slot.ino.store(ino, Ordering::Relaxed);
        // SAFETY: we claimed the slot (state CLAIMED): no handler reads its path, and no other
        // thread writes it (see `impl Sync for Slot`).
        let path_buf = unsafe { &mut *slot.path.get() };
        path_buf[..bytes.len()].copy_from_slice(bytes);
        path_buf[bytes.len()] = 0;
        slot.state.store(LIVE, Ordering::Release);
        Some(Guard { slot })
    }

    /// Whether a peer truncated the object under this mapping: part of it now reads zeros and
    /// is no longer shared.
    pub(crate) fn truncated(&self) -> bool {
        self.slot.truncated.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SeqCst pairs with the handler's increment of IN_FLIGHT and its load of the state:
        // either the handler sees REMOVING and leaves the slot alone, or we see it in flight
        // and wait for it to finish (it runs for a few system calls).
        self.slot.state.store(REMOVING, Ordering::SeqCst);
        while IN_FLIGHT.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        self.slot.state.store(FREE, Ordering::Release);
    }
}

/// The chunk of the latest claim: where a free slot is likely (the table fills in order).
static HINT: AtomicPtr<Chunk> = AtomicPtr::new(ptr::null_mut());

/// A free slot, claimed for the caller; grows the table when it is full.
///
/// The search starts at the chunk of the latest claim and wraps around to the first chunk, so
/// a process with many mappings does not look at all of them for each new one; a slot is
/// compare-exchanged only when a plain load says it is free.
fn claim() -> &'static Slot {
    let chunks = |first: &'static Chunk| std::iter::successors(Some(first), |chunk| chunk.next());
    loop {
        // SAFETY: `HINT` is null or points to `TABLE` or a leaked (never freed) chunk.
        let hint = unsafe { HINT.load(Ordering::Acquire).as_ref() }.unwrap_or(&TABLE);
        let mut last = hint;
        for chunk in chunks(hint) {
            last = chunk;
        }
        for chunk in chunks(hint).chain(chunks(&TABLE)) {
            for slot in &chunk.slots {
                if slot.state.load(Ordering::Relaxed) == FREE
                    && slot
                        .state
                        .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    HINT.store(ptr::from_ref(chunk).cast_mut(), Ordering::Release);
                    return slot;
                }
            }
        }
        let fresh = Box::into_raw(Box::new(Chunk::new()));
        if let Err(_other) =
            last.next.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // Another thread added a chunk first: use that one, drop ours.
            // SAFETY: `fresh` came from Box::into_raw above and was never published.
            drop(unsafe { Box::from_raw(fresh) });
        }
    }
}

/// Installs the handler once; whether it is installed.
fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let Ok(page) = usize::try_from(page) else { return false };
        if !page.is_power_of_two() {
            return false;
        }
        PAGE.store(page, Ordering::Relaxed);
        // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask, no flags).
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: querying the current disposition into a valid out-pointer.
        if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut previous) } != 0 {
            return false;
        }
        // Set before ours is installed: our handler only ever sees it set.
        let _ = PREVIOUS.set(previous);
        // SAFETY: as above.
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        ours.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        // SA_SIGINFO: we need the faulting address. SA_ONSTACK: run on the alternate stack
        // where the thread has one, like the Rust runtime's own handler. No SA_NODEFER: a
        // fault inside the handler (there should be none) then kills the process rather than
        // recursing. No SA_RESETHAND: every truncation is handled, not just the first.
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `ours.sa_mask` is a valid signal set to clear.
        unsafe { libc::sigemptyset(&mut ours.sa_mask) };
        // SAFETY: installing a handler that is async-signal-safe (see `on_sigbus`).
        unsafe { libc::sigaction(libc::SIGBUS, &ours, ptr::null_mut()) == 0 }
    })
}

/// The `SIGBUS` handler.
extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: errno is thread-local; we read and restore it so that the interrupted code does
    // not see our system calls' errors.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo (SA_SIGINFO).
    let handled = unsafe { handle(&*info) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
    if !handled {
        // SAFETY: `info` and `context` are what the kernel gave us.
        unsafe { chain(signal, info, context) };
    }
}

/// Handles a fault in a registered mapping whose object was truncated; whether it did.
///
/// # Safety
/// Only from the signal handler, with the kernel's `info`.
unsafe fn handle(info: &libc::siginfo_t) -> bool {
    if info.si_code != libc::BUS_ADRERR {
        return false;
    }
    // SAFETY: for a fault (si_code > 0) the kernel fills in the address.
    let addr = unsafe { info.si_addr() } as usize;
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let slot = slots().find(|slot| slot.state.load(Ordering::SeqCst) == LIVE && slot.covers(addr));
    // SAFETY: the slot is live and cannot be freed while we are in flight.
    let handled = slot.is_some_and(|slot| unsafe { patch(slot, addr) });
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    handled
}

/// Maps zeros over the part of `slot`'s mapping past its object's new end, if the object is
/// indeed shorter than the faulting address `addr`; whether it did.
///
/// # Safety
/// `slot` is live and stays so (we are in flight); `addr` lies in its mapping.
unsafe fn patch(slot: &Slot, addr: usize) -> bool {
    let start = slot.start.load(Ordering::Relaxed);
    let len = slot.len.load(Ordering::Relaxed);
    let page = PAGE.load(Ordering::Relaxed);
    // SAFETY: the slot is live, so its path was written before the Acquire that saw LIVE, and
    // it is not rewritten while we are in flight; it is NUL-terminated.
    let path = unsafe { CStr::from_bytes_until_nul(&*slot.path.get()) };
    let Ok(path) = path else { return false };
    // SAFETY: an all-zero stat is a valid out-value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated, `st` a valid out-pointer; lstat is async-signal-safe
    // and needs no permission on the object itself (so a peer cannot hide a truncation by
    // taking its read permission away), and does not follow a symbolic link planted there.
    if unsafe { libc::lstat(path.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let offset = addr - start;
    let Ok(size) = usize::try_from(st.st_size) else { return false };
    #[allow(clippy::unnecessary_cast)] // dev_t and ino_t are narrower on some targets
    let (dev, ino) = (st.st_dev as u64, st.st_ino as u64);
    if dev != slot.dev.load(Ordering::Relaxed)
        || ino != slot.ino.load(Ordering::Relaxed)
        || size > offset
    {
        // Another object by now, or not shorter than where we fault: not a truncation we can
        // prove (a full tmpfs, say). Let the fault take its course.
        return false;
    }
    // Everything from the page after the new end is gone; the fault lies there (the page
    // holding the new end is still backed by the object).
    let from = (size.div_ceil(page) * page).min(offset / page * page);
    // Say so before the zeros are there: another thread may touch the patched range the
    // moment `mmap` returns (without a fault of its own) and must then find the flag set. If
    // `mmap` fails, the fault kills the process anyway.
    slot.truncated.store(true, Ordering::Release);
    ANY_TRUNCATED.store(true, Ordering::Release);
    let prot = if slot.writable.load(Ordering::Relaxed) {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    // SAFETY: `start + from .. start + len` lies in a mapping that is still ours (registered
    // and not yet unmapped: it is removed from the table before it is unmapped, and that
    // waits for us); replacing it with private zeros changes what it reads, which the module
    // docs accept as the price of a peer's truncation. mmap is a plain system call here.
    let mapped = unsafe {
        libc::mmap(
            (start + from) as *mut libc::c_void,
            len - from,
            prot,
            libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    mapped != libc::MAP_FAILED
}

/// Passes a fault that is not ours on, as if our handler had never been installed.
///
/// # Safety
/// Only from the signal handler, with the kernel's arguments.
unsafe fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(previous) = PREVIOUS.get() else { return };
    let action = previous.sa_sigaction;
    // SAFETY: reading the kernel's siginfo.
    let sent = unsafe { (*info).si_code } <= 0;
    if action == libc::SIG_IGN && sent {
        // Ignored before, ignored now (and the guard stays).
    } else if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // Put the old disposition back. A fault is then raised again when we return, and kills
        // (the kernel does not let a fault be ignored); a signal sent with `kill` is sent again
        // (it is blocked until we return) and kills, as it did before.
        // SAFETY: restoring a disposition we read from the kernel.
        unsafe { libc::sigaction(signal, previous, ptr::null_mut()) };
        if sent {
            // SAFETY: raise is async-signal-safe.
            unsafe { libc::raise(signal) };
        }
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO the handler has this signature; it was installed for SIGBUS.
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(action) };
        handler(signal, info, context);
    } else {
        // SAFETY: without SA_SIGINFO the handler takes the signal number only.
        let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
        handler(signal);
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use crate::segment::{Access, Segment, SegmentKind, SegmentName};

    const PAGE: usize = 4096;

    fn read(segment: &Segment, offset: usize) -> u64 {
        assert!(offset + 8 <= segment.len());
        // SAFETY: in bounds of a readable mapping; volatile since a peer (the test) changes it.
        unsafe { segment.base().as_ptr().add(offset).cast::<u64>().read_volatile() }
    }

    fn write(segment: &Segment, offset: usize, value: u64) {
        assert!(offset + 8 <= segment.len() && segment.access() == Access::ReadWrite);
        // SAFETY: in bounds of a writable mapping.
        unsafe { segment.base().as_ptr().add(offset).cast::<u64>().write_volatile(value) };
    }

    fn truncate(name: &SegmentName, size: u64) {
        let path = std::path::Path::new("/dev/shm").join(name.as_str());
        OpenOptions::new().write(true).open(path).unwrap().set_len(size).unwrap();
    }

    /// Truncating a mapped segment under its writer and a reader: touching the lost part reads
    /// zeros instead of raising SIGBUS, both mappings say they were truncated, the part before
    /// the new end is still shared, and writes into the lost part stay private.
    #[test]
    fn a_truncated_segment_reads_zeros_and_says_so() {
        let domain = format!("ut{}-guard", std::process::id());
        let name = SegmentName::new(&domain, SegmentKind::Raw, "shrunk").unwrap();
        let writer = Segment::create(&name, SegmentKind::Raw, 4 * PAGE).unwrap();
        for page in 1..4 {
            write(&writer, page * PAGE, 0x1111 * page as u64);
        }
        let reader = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly).unwrap();
        assert_eq!(read(&reader, 2 * PAGE), 0x2222);
        assert!(!reader.was_truncated() && !writer.was_truncated());

        truncate(&name, PAGE as u64 + 100);
        // The page holding the new end is still the object's, shared by both.
        write(&writer, PAGE, 7);
        assert_eq!(read(&reader, PAGE), 7);
        assert!(!reader.was_truncated());
        // Past it: zeros, no SIGBUS.
        assert_eq!(read(&reader, 3 * PAGE), 0);
        assert_eq!(read(&reader, 2 * PAGE), 0);
        assert!(reader.was_truncated());
        assert!(!writer.was_truncated(), "each mapping finds out when it touches the lost part");
        write(&writer, 2 * PAGE, 42);
        assert!(writer.was_truncated());
        assert_eq!(read(&writer, 2 * PAGE), 42, "the writer's own (private) memory");
        assert_eq!(read(&reader, 2 * PAGE), 0, "lost to the reader");
        assert!(super::any_truncated());

        // Down to nothing: the header reads zeros too.
        let third = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly);
        assert!(third.is_err(), "a segment shorter than its header says is refused on open");
        truncate(&name, 0);
        assert_eq!(read(&writer, 0), 0);
        drop((writer, reader));
        Segment::unlink(&name).unwrap();
    }

    /// Many mappings come and go (the table grows past its first chunk and slots are reused),
    /// while other threads fault on truncated ones.
    #[test]
    fn many_mappings_and_concurrent_faults() {
        let domain = format!("ut{}-guardmany", std::process::id());
        let names: Vec<SegmentName> = (0..100)
            .map(|i| SegmentName::new(&domain, SegmentKind::Raw, &format!("s{i}")).unwrap())
            .collect();
        let segments: Vec<Segment> = names
            .iter()
            .map(|name| Segment::create(name, SegmentKind::Raw, 8 * PAGE).unwrap())
            .collect();
        for name in names.iter().step_by(2) {
            truncate(name, PAGE as u64);
        }
        std::thread::scope(|scope| {
            for t in 0..4 {
                let segments = &segments;
                scope.spawn(move || {
                    for (i, segment) in segments.iter().enumerate() {
                        for page in 1..8 {
                            write(segment, page * PAGE + t * 8, 1);
                        }
                        assert_eq!(segment.was_truncated(), i % 2 == 0, "segment {i}");
                    }
                });
            }
        });
        drop(segments);
        for name in &names {
            Segment::unlink(name).unwrap();
        }
    }
}
