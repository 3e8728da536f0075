//! Ports: the memory each participant writes and its peers only read.
//!
//! A publisher's port and a subscriber's port are allocations in their owner's heap (see
//! `layout.rs` for what is inside). The owner creates its port ([`PubPort::create`],
//! [`SubPort::create`]); a peer maps it read-only from the heap named in the registry
//! ([`PubPort::map`], [`SubPort::map`]) and validates its header before reading anything else.
//! A mapped port is read-only in the peer's address space, so a peer that tried to write it
//! would fault in its own process.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::{
    InLine, Layout, OutComp, OutCtl, PUB_FLAGS, PUB_HEADER, PUB_MAGIC, PUB_STATS, PUB_WAKE,
    PubFlags, PubHeader, PubStats, PubWake, SUB_HEADER, SUB_MAGIC, SUB_SLEEP, SubHeader, SubSleep,
};
use super::ring::{Delivery, Receipt};
use crate::error::{Error, Result};
use crate::heap::Heap;
use crate::ptr::{self, RelPtr};
use crate::wait::WaitWord;

/// A port's memory: `len` bytes at `base`, in this process's heap or mapped from a peer's.
#[derive(Debug, Clone, Copy)]
struct Memory {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the memory is shared memory mapped for the life of the process (heaps are never
// unmapped); everything in it is accessed through atomics or is immutable after creation.
unsafe impl Send for Memory {}
// SAFETY: as above.
unsafe impl Sync for Memory {}

impl Memory {
    /// A reference into the port. `'static`: heaps stay mapped for the rest of the process
    /// (this process's own heap, and every peer heap the segment table mapped), so the memory
    /// outlives any view of it; once a port is given up, nothing reads it through a view.
    fn at<T>(&self, offset: usize) -> &'static T {
        assert!(offset + size_of::<T>() <= self.len, "port offset out of range");
        // SAFETY: in bounds (asserted); the base is 64-aligned (allocated or resolved with that
        // alignment) and every offset the layout yields is a multiple of 64 or of the type's
        // alignment; the types placed here are atomics or integers, valid for any bits; the
        // mapping lives as long as the process (see above).
        unsafe { self.base.add(offset).cast::<T>().as_ref() }
    }

    fn atomics(&self, offset: usize, count: usize) -> &'static [AtomicU64] {
        assert!(offset + 8 * count <= self.len, "port ring out of range");
        // SAFETY: as in `at`; `count` consecutive 8-aligned `AtomicU64`s inside the memory.
        unsafe {
            std::slice::from_raw_parts(self.base.add(offset).cast::<AtomicU64>().as_ptr(), count)
        }
    }

    /// Fills the memory with zeros (a fresh allocation may hold an old block's bytes).
    fn zero(&self) {
        // SAFETY: the memory is ours (just allocated, writable, nobody else knows it yet).
        unsafe { std::ptr::write_bytes(self.base.as_ptr(), 0, self.len) };
    }
}

/// Maps `len` bytes at `offset` of a peer's heap `(domain, id)`, read-only and bounds-checked.
fn map_peer(domain: &str, id: u64, offset: u64, len: usize) -> Result<Memory> {
    ptr::table().register_name(id, ptr::heap_segment_name(domain, id)?);
    let base = RelPtr::new(id, offset).resolve(len, 64)?;
    Ok(Memory { base, len })
}

/// Refuses a peer's port whose header is not what the registry and the layout say.
fn check_header<T: PartialEq + std::fmt::Debug>(
    whose: &str,
    heap: u64,
    offset: u64,
    fields: &str,
    found: T,
    expected: T,
) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    Err(Error::Corrupted {
        what: format!(
            "{whose} port at {heap:016x}+{offset:#x}: header ({fields}) is {found:x?}, expected {expected:x?}"
        ),
    })
}

/// A publisher's port.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PubPort {
    memory: Memory,
    pub layout: Layout,
}

impl PubPort {
    /// Allocates and initialises this publisher's port in `heap`; returns it and its offset.
    pub fn create(
        heap: &Heap,
        layout: Layout,
        slot: u32,
        generation: u32,
        light: bool,
    ) -> Result<(PubPort, RelPtr)> {
        let at = heap.try_allocate(layout.pub_port, 64)?;
        let memory = Memory { base: heap.address(at), len: layout.pub_port };
        memory.zero();
        let header = PubHeader {
            magic: PUB_MAGIC,
            key: AtomicU64::new(crate::ptr::fresh_segment_id()),
            generation,
            pool_len: layout.pool_len,
            ring_len: layout.ring_len as u32,
            max_subscribers: layout.options.max_subscribers,
            light: u32::from(light),
            slot,
        };
        // SAFETY: the header's place is inside our fresh, writable allocation, 64-aligned.
        unsafe { memory.base.add(PUB_HEADER).cast::<PubHeader>().write(header) };
        Ok((PubPort { memory, layout }, at))
    }

    /// Maps a peer publisher's port and checks it describes publisher `slot`, generation
    /// `generation`, of a topic with `layout`.
    pub fn map(
        domain: &str,
        heap: u64,
        offset: u64,
        layout: Layout,
        slot: u32,
        generation: u32,
    ) -> Result<PubPort> {
        let memory = map_peer(domain, heap, offset, layout.pub_port)?;
        let port = PubPort { memory, layout };
        let header = port.header();
        let expected = (
            PUB_MAGIC,
            slot,
            generation,
            layout.pool_len,
            layout.ring_len as u32,
            layout.options.max_subscribers,
        );
        let found = (
            header.magic,
            header.slot,
            header.generation,
            header.pool_len,
            header.ring_len,
            header.max_subscribers,
        );
        check_header(
            "publisher",
            heap,
            offset,
            "magic, slot, generation, pool, ring, subscribers",
            found,
            expected,
        )?;
        Ok(port)
    }

    /// What its subscribers sleep on.
    pub fn wake(&self) -> &'static WaitWord {
        &self.memory.at::<PubWake>(PUB_WAKE).word
    }

    pub fn header(&self) -> &'static PubHeader {
        self.memory.at(PUB_HEADER)
    }

    pub fn flags(&self) -> &'static PubFlags {
        self.memory.at(PUB_FLAGS)
    }

    pub fn stats(&self) -> &'static PubStats {
        self.memory.at(PUB_STATS)
    }

    pub fn ctl(&self, s: u32) -> &'static OutCtl {
        self.memory.at(self.layout.out(s))
    }

    pub fn comp(&self, s: u32) -> &'static OutComp {
        self.memory.at(self.layout.out(s) + 64)
    }

    /// The delivery ring towards subscriber slot `s`.
    pub fn delivery(&self, s: u32) -> Delivery<'static> {
        let ctl = self.ctl(s);
        Delivery {
            sub_key: &ctl.sub_key,
            fenced: &ctl.fenced,
            floor: &ctl.floor,
            pub_key: &self.header().key,
            completion_head: &self.comp(s).completion_head,
            tail: &self.comp(s).tail,
            entries: self
                .memory
                .atomics(self.layout.out(s) + 128, self.layout.ring_len * self.layout.stride),
        }
    }
}

/// A subscriber's port.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubPort {
    memory: Memory,
    pub layout: Layout,
}

impl SubPort {
    /// Allocates and initialises this subscriber's port in `heap`; returns it and its offset.
    pub fn create(
        heap: &Heap,
        layout: Layout,
        slot: u32,
        generation: u32,
        light: bool,
    ) -> Result<(SubPort, RelPtr)> {
        let at = heap.try_allocate(layout.sub_port, 64)?;
        let memory = Memory { base: heap.address(at), len: layout.sub_port };
        memory.zero();
        let header = SubHeader {
            magic: SUB_MAGIC,
            key: AtomicU64::new(crate::ptr::fresh_segment_id()),
            generation,
            max_publishers: layout.options.max_publishers,
            completion_len: layout.completion_len as u32,
            light: u32::from(light),
            state: super::layout::PORT_ACTIVE.into(),
            pid: std::process::id(),
            slot,
        };
        // SAFETY: the header's place is inside our fresh, writable allocation, 64-aligned.
        unsafe { memory.base.add(SUB_HEADER).cast::<SubHeader>().write(header) };
        Ok((SubPort { memory, layout }, at))
    }

    /// Maps a peer subscriber's port and checks it describes subscriber `slot`, generation
    /// `generation`, of a topic with `layout`.
    pub fn map(
        domain: &str,
        heap: u64,
        offset: u64,
        layout: Layout,
        slot: u32,
        generation: u32,
    ) -> Result<SubPort> {
        let memory = map_peer(domain, heap, offset, layout.sub_port)?;
        let port = SubPort { memory, layout };
        let header = port.header();
        let expected = (
            SUB_MAGIC,
            slot,
            generation,
            layout.options.max_publishers,
            layout.completion_len as u32,
        );
        let found = (
            header.magic,
            header.slot,
            header.generation,
            header.max_publishers,
            header.completion_len,
        );
        check_header(
            "subscriber",
            heap,
            offset,
            "magic, slot, generation, publishers, completions",
            found,
            expected,
        )?;
        Ok(port)
    }

    pub fn header(&self) -> &'static SubHeader {
        self.memory.at(SUB_HEADER)
    }

    /// Test seam: fills the whole port with values from `next` (see
    /// `Subscriber::debug_scribble_port`).
    pub fn scribble(&self, next: &mut impl FnMut() -> u64) {
        for word in self.memory.atomics(0, self.memory.len / 8) {
            word.store(next(), Ordering::Relaxed);
        }
    }

    /// Whether the subscriber with key `key` left: it said so, or its port is no longer its
    /// (given up, and perhaps reused by the heap).
    pub fn left(&self, key: u64) -> bool {
        let header = self.header();
        header.state.load(Ordering::Acquire) != super::layout::PORT_ACTIVE
            || header.key.load(Ordering::Acquire) != key
    }

    pub fn sleep(&self) -> &'static SubSleep {
        self.memory.at(SUB_SLEEP)
    }

    pub fn input(&self, p: u32) -> &'static InLine {
        self.memory.at(self.layout.input(p))
    }

    /// The subscriber's side of the pair with publisher slot `p`.
    pub fn receipt(&self, p: u32) -> Receipt<'static> {
        let line = self.input(p);
        Receipt {
            head: &line.head,
            completion_tail: &line.completion_tail,
            completions: self.memory.atomics(self.layout.input(p) + 64, self.layout.completion_len),
        }
    }
}
