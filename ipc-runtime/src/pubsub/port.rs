//! Ports: the memory each participant writes and its peers only read.
//!
//! A publisher's port and a subscriber's port are allocations in their owner's heap (see
//! `layout.rs` for what is inside). The owner creates its port ([`PubPort::create`],
//! [`SubPort::create`]); a peer maps it read-only from the heap named in the registry
//! ([`PubPort::map`], [`SubPort::map`]) and validates its header before reading anything else.
//! A mapped port is read-only in the peer's address space, so a peer that tried to write it
//! would fault in its own process.
//!
//! **Lifetime of a peer's memory.** A mapped port keeps a [`PeerHold`] on the peer's heap (a
//! [`SegmentHold`] shared by the port's clones), and the segment table unmaps a peer heap only
//! once its owner is dead and no hold of it is left (see [`PeerHold`]). The views a port hands
//! out (`&'static` references, rings, the pool address a subscriber resolves next to its port)
//! are therefore valid only while the port, or a clone of its hold, lives: whoever keeps a view
//! keeps the port (or the hold) beside it — the connections of both sides, a blocked
//! publisher's `RoomProbe`, a sleeping subscriber's wake words, a subscriber's connection that
//! is forgotten while samples of it are still out. A port in this process's own heap holds
//! nothing: our own heap is never unmapped.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::layout::{
    InLine, Layout, OutComp, OutCtl, PUB_FLAGS, PUB_HEADER, PUB_MAGIC, PUB_STATS, PUB_WAKE,
    PubFlags, PubHeader, PubStats, PubWake, SUB_HEADER, SUB_MAGIC, SUB_SLEEP, SubHeader, SubSleep,
};
use super::options::TopicOptions;
use super::ring::{Delivery, Receipt};
use crate::error::{Error, Result};
use crate::heap::Heap;
use crate::liveness::Probe;
use crate::ptr::{self, RelPtr, SegmentHold};
use crate::wait::WaitWord;

/// A hold on another process's heap, shared by the ports mapped from it (and their clones).
///
/// When the last clone goes, the heap is given back if its owner is dead: it is
/// [retired](ptr::SegmentTable::retire_when_unheld), that is unmapped as soon as no other hold
/// of it is left (a port of another topic, a sample still out). A heap whose owner still lives
/// is remembered and given back by a later [`sweep_dead_peers`] once the owner is found dead.
#[derive(Debug)]
pub(crate) struct PeerHold {
    hold: SegmentHold,
    domain: String,
}

impl PeerHold {
    /// Holds heap `id` of `domain` (mapping it read-only if needed).
    fn new(domain: &str, id: u64) -> Result<Self> {
        ptr::table().register_name(id, ptr::heap_segment_name(domain, id)?);
        Ok(PeerHold { hold: ptr::table().hold(id)?, domain: domain.to_owned() })
    }
}

impl Drop for PeerHold {
    fn drop(&mut self) {
        // Asked while our own hold still counts: if anyone else holds the heap it is only
        // marked, and the last hold (perhaps ours, dropped right after this) unmaps it.
        give_back_if_dead(&self.domain, self.hold.id());
    }
}

/// Peer heaps whose last port went while their owner lived: given back once it is dead.
static UNHELD: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

/// Retires peer heap `id` of `domain` if its owner is dead (returns whether it is); else
/// remembers it for [`sweep_dead_peers`]. A liveness token we cannot judge (another user's)
/// counts as alive: such a heap stays mapped.
fn give_back_if_dead(domain: &str, id: u64) -> bool {
    // `probe`, not `is_alive`: looking must change nothing (tools such as `ipc list` map ports
    // too, and a dead owner's token is for `ipc clean` or the heap sweep to remove).
    let probe = crate::liveness::probe(domain, &crate::heap::token_name(id));
    let dead = matches!(probe, Ok(Probe::Dead | Probe::Missing));
    if !dead {
        let mut unheld = UNHELD.lock().unwrap_or_else(PoisonError::into_inner);
        if !unheld.iter().any(|(d, i)| *i == id && d == domain) {
            unheld.push((domain.to_owned(), id));
        }
        return false;
    }
    // SAFETY: in this process, peer heaps are used only through ports (this module), every
    // port mapped from a peer heap carries a `PeerHold` on it, and every view a port hands out
    // is used only while the port or a clone of its hold lives (module docs); the samples a
    // subscriber hands out keep its connection's hold (`subscriber::State::parked`). Containers
    // inside samples resolve only into the heap that holds them (`RelPtr::resolve_held`), which
    // the sample keeps held. The owner is dead, so nothing new in the heap is to be read.
    if let Err(err) = unsafe { ptr::table().retire_when_unheld(id) } {
        tracing::warn!(heap = %ptr::table().describe(id), %err, "cannot unmap a dead peer's heap");
    }
    true
}

/// Gives back the heaps of peers found dead since their last port here went (see
/// [`PeerHold`]). Cheap when there are none; called when a participant re-reads its topic's
/// registry and by `Subscriber::cleanup`.
pub(crate) fn sweep_dead_peers() {
    let unheld = std::mem::take(&mut *UNHELD.lock().unwrap_or_else(PoisonError::into_inner));
    for (domain, id) in unheld {
        // Alive ones are remembered again.
        give_back_if_dead(&domain, id);
    }
}

/// A port's memory: `len` bytes at `base`, in this process's heap or mapped from a peer's
/// (then `hold` keeps that mapping).
#[derive(Debug, Clone)]
struct Memory {
    base: NonNull<u8>,
    len: usize,
    hold: Option<Arc<PeerHold>>,
}

// SAFETY: the memory is shared memory that stays mapped while this `Memory` lives (our own heap
// is never unmapped; a peer's is held by `hold`); everything in it is accessed through atomics
// or is immutable after creation.
unsafe impl Send for Memory {}
// SAFETY: as above.
unsafe impl Sync for Memory {}

impl Memory {
    /// A reference into the port. `'static` for convenience, but valid only while this memory
    /// (or a clone of its hold) lives: a peer's heap is unmapped once its owner is dead and no
    /// hold is left (module docs). Every holder of a view keeps the port beside it.
    fn at<T>(&self, offset: usize) -> &'static T {
        assert!(offset + size_of::<T>() <= self.len, "port offset out of range");
        // SAFETY: in bounds (asserted); the base is 64-aligned (allocated or resolved with that
        // alignment) and every offset the layout yields is a multiple of 64 or of the type's
        // alignment; the types placed here are atomics or integers, valid for any bits; the
        // mapping lives while the port does, and views are used only while it does (above).
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
        self.zero_prefix(self.len);
    }

    /// Fills the first `len` bytes (at most all) with zeros.
    fn zero_prefix(&self, len: usize) {
        let len = len.min(self.len);
        // SAFETY: the memory is ours (just allocated, writable, nobody else knows it yet), and
        // `len` is within it.
        unsafe { std::ptr::write_bytes(self.base.as_ptr(), 0, len) };
    }
}

/// Maps `len` bytes at `offset` of a peer's heap `(domain, id)`, read-only and bounds-checked,
/// holding the heap for as long as the returned memory (or a clone) lives. A "peer" heap that
/// is in fact ours (a publisher and subscriber in one process) is not held.
fn map_peer(domain: &str, id: u64, offset: u64, len: usize) -> Result<Memory> {
    let own = crate::heap::try_default().is_some_and(|heap| heap.id() == id);
    // Held before resolving: the address is never taken from a mapping nothing holds.
    let hold = if own { None } else { Some(shared_hold(domain, id)?) };
    let base = RelPtr::new(id, offset).resolve(len, 64)?;
    Ok(Memory { base, len, hold })
}

std::thread_local! {
    /// Inside [`sharing_holds`]: the peer heaps held so far, one hold each.
    static SHARED_HOLDS: std::cell::RefCell<Option<Vec<Arc<PeerHold>>>> =
        const { std::cell::RefCell::new(None) };
}

/// A hold on peer heap `id`: a fresh one, or inside [`sharing_holds`] the one already taken.
fn shared_hold(domain: &str, id: u64) -> Result<Arc<PeerHold>> {
    let found = SHARED_HOLDS.with_borrow(|shared| {
        shared.as_ref().and_then(|holds| {
            holds.iter().find(|h| h.hold.id() == id && h.domain == domain).cloned()
        })
    });
    if let Some(hold) = found {
        return Ok(hold);
    }
    let hold = Arc::new(PeerHold::new(domain, id)?);
    SHARED_HOLDS.with_borrow_mut(|shared| {
        if let Some(holds) = shared {
            holds.push(Arc::clone(&hold));
        }
    });
    Ok(hold)
}

/// Runs `f` with the ports it maps on this thread sharing one hold per peer heap, given back
/// when `f` returns: a tool reading thousands of topics asks whether a heap's owner is dead
/// once per heap, not once per port.
pub(crate) fn sharing_holds<R>(f: impl FnOnce() -> R) -> R {
    let outer = SHARED_HOLDS.with_borrow_mut(|shared| shared.replace(Vec::new()));
    let result = f();
    let held = SHARED_HOLDS.with_borrow_mut(|shared| std::mem::replace(shared, outer));
    drop(held);
    result
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
#[derive(Debug, Clone)]
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
        let memory = Memory { base: heap.address(at), len: layout.pub_port, hold: None };
        // The header and every slot's control lines: a slot's key reads 0 (nobody served) until
        // a subscriber is connected there, which resets its ring first (`ring::Producer::new`).
        // The rings of slots never used stay untouched, costing no memory.
        memory.zero_prefix(layout.rings);
        let header = PubHeader {
            magic: PUB_MAGIC,
            key: AtomicU64::new(crate::segment::fresh_id()),
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
        let mut port = PubPort { memory, layout };
        let header = port.header();
        let expected =
            (PUB_MAGIC, slot, generation, layout.ring_len as u32, layout.options.max_subscribers);
        let found =
            (header.magic, header.slot, header.generation, header.ring_len, header.max_subscribers);
        check_header(
            "publisher",
            heap,
            offset,
            "magic, slot, generation, ring, subscribers",
            found,
            expected,
        )?;
        // The pool holds the publisher's history, which a topic may have adopted after we
        // joined (`Options`): any history the queues can hold is fine, and the publisher's
        // own pool size is what its slot indices are checked against.
        let pool_len = header.pool_len;
        let smallest = Layout::new(TopicOptions { history: 0, ..layout.options }, layout.inline);
        let largest = Layout::new(
            TopicOptions { history: layout.options.subscriber_capacity, ..layout.options },
            layout.inline,
        );
        if !(smallest.pool_len..=largest.pool_len).contains(&pool_len) {
            return Err(Error::Corrupted {
                what: format!(
                    "publisher port at {offset:#x} in heap {heap:016x}: pool of {pool_len} slots, \
                     not {}..={}",
                    smallest.pool_len, largest.pool_len
                ),
            });
        }
        port.layout.pool_len = pool_len;
        Ok(port)
    }

    /// The hold on the peer heap this port lies in (`None` for a port in our own heap): keeps
    /// the port's views valid without the port.
    pub fn hold(&self) -> Option<Arc<PeerHold>> {
        self.memory.hold.clone()
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
                .atomics(self.layout.ring(s), self.layout.ring_len * self.layout.stride),
        }
    }
}

/// A subscriber's port.
#[derive(Debug, Clone)]
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
        let memory = Memory { base: heap.address(at), len: layout.sub_port, hold: None };
        memory.zero();
        let header = SubHeader {
            magic: SUB_MAGIC,
            key: AtomicU64::new(crate::segment::fresh_id()),
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
