//! Model check of the pub/sub ring protocol (`src/pubsub/ring.rs`, included as is) under loom.
//!
//! Run with `RUSTFLAGS="--cfg ipc_loom" cargo test --release -p ipc-runtime --test loom_ring`
//! (without the cfg this file is empty). Each scenario prints how many executions loom explored
//! and which paths they took (`-- --nocapture`). `LOOM_MAX_PREEMPTIONS` overrides the
//! preemption bound a scenario sets; `LOOM_RING_TRACE=1` prints what both sides did in a failing
//! execution.
//!
//! One publisher (the test's main thread) and one subscriber thread share one pair: a delivery
//! ring and a completion ring. Around `ring.rs` the test keeps a minimal model of the
//! publisher's books (`Pool` and `Holdings` in `publisher/books.rs`, used as `Conn::deliver`
//! and `Conn::drain` in `publisher/conn.rs` use them): a small pool of sample slots with
//! reference counts and a LIFO free list (a released slot is the next one reused), the slots
//! the subscriber holds and its ambiguous revoked positions, with the same rules:
//!
//! * a revoked position that is not ambiguous releases its slot at once;
//! * an ambiguous one keeps it until the subscriber returns the slot or declines the position;
//! * a returned slot is believed only if held (the model's subscriber is honest, so a return of
//!   a slot not held is a protocol bug and fails the check).
//!
//! Each slot's payload is a `loom::cell::UnsafeCell<u64>`: the publisher writes it when it
//! (re)uses the slot, the subscriber reads it while it holds the sample. Should the protocol
//! ever let the publisher reuse a slot the subscriber may still read, loom reports the data race
//! ("Causality violation"). The subscriber also checks that it reads the value published at that
//! position and that positions come in increasing order. At the end (the subscriber saw the
//! publisher done and nothing left, all completions drained) every slot must be free with no
//! reference left, nothing ambiguous, and the newest message must have been received.
//!
//! The asymmetric barriers (`crate::barrier`) are modelled as full fences on both sides (what
//! membarrier guarantees): the model checks the protocol built on them, not the kernel's
//! promise, and so does not check the `fenced` flag's episode logic. Loom treats `SeqCst`
//! accesses as `AcqRel` (the ring uses none that matter) and does not explore load buffering.
#![cfg(ipc_loom)]

mod atomic {
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

    /// The light side's barrier, modelled as the full fence that membarrier guarantees.
    pub(crate) fn light(_flag: &AtomicU32) {
        fence(Ordering::SeqCst)
    }

    /// The heavy side's barrier (it always succeeds here).
    pub(crate) fn heavy() -> bool {
        fence(Ordering::SeqCst);
        true
    }
}

#[path = "../src/pubsub/ring.rs"]
#[allow(dead_code)]
mod ring;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use loom::thread;

use ring::{Completion, Consumer, Delivery, Producer, Receipt, Revoked, Take};

/// The subscriber's key, as the publisher serves it.
const KEY: u64 = 1;
/// The publisher incarnation's key, as the subscriber connected to it.
const PUB_KEY: u64 = 7;
/// A completion-ring value that declines (`ring::DECLINE`).
const DECLINE_BIT: u64 = 1 << 63;

/// What the publisher writes into a slot for `position` (never the initial 0).
fn value(position: u64) -> u64 {
    position + 1
}

thread_local! {
    /// With `LOOM_RING_TRACE` set: what both sides did in the current execution, printed if it
    /// fails (loom runs the model's threads on the test's own thread).
    static TRACE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

fn trace(event: impl FnOnce() -> String) {
    TRACE.with(|t| {
        if let Some(events) = t.borrow_mut().as_mut() {
            events.push(event());
        }
    });
}

/// Starts tracing a new execution if `LOOM_RING_TRACE` is set; the first call installs a panic
/// hook that prints the failing execution's trace.
fn trace_start() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("LOOM_RING_TRACE").is_none() {
        return;
    }
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Loom unwinds the threads of a finished execution with panics of its own payload
            // type; failures carry a message.
            let payload = info.payload();
            if payload.is::<String>() || payload.is::<&str>() {
                let events = TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default();
                eprintln!("execution trace:\n  {}", events.join("\n  "));
            }
            default(info);
        }));
    });
    TRACE.with(|t| *t.borrow_mut() = Some(Vec::new()));
}

/// One pair's shared memory (both sides' ports) and the sample pool.
struct Shared {
    sub_key: AtomicU64,
    pub_key: AtomicU64,
    fenced: AtomicU32,
    floor: AtomicU64,
    completion_head: AtomicU64,
    tail: AtomicU64,
    entries: Vec<AtomicU64>,
    head: AtomicU64,
    completion_tail: AtomicU64,
    completions: Vec<AtomicU64>,
    payload: Vec<UnsafeCell<u64>>,
    /// The publisher wrote its last message (harness only: tells the subscriber when to stop).
    done: AtomicBool,
}

impl Shared {
    fn new(ring_len: usize, completion_len: usize, pool: u32) -> Shared {
        Shared {
            sub_key: AtomicU64::new(KEY),
            pub_key: AtomicU64::new(PUB_KEY),
            fenced: AtomicU32::new(0),
            floor: AtomicU64::new(0),
            completion_head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            entries: (0..ring_len).map(|_| AtomicU64::new(0)).collect(),
            head: AtomicU64::new(0),
            completion_tail: AtomicU64::new(0),
            completions: (0..completion_len).map(|_| AtomicU64::new(0)).collect(),
            payload: (0..pool).map(|_| UnsafeCell::new(0)).collect(),
            done: AtomicBool::new(false),
        }
    }

    fn d(&self) -> Delivery<'_> {
        Delivery {
            sub_key: &self.sub_key,
            pub_key: &self.pub_key,
            fenced: &self.fenced,
            floor: &self.floor,
            completion_head: &self.completion_head,
            tail: &self.tail,
            entries: &self.entries,
        }
    }

    fn r(&self) -> Receipt<'_> {
        Receipt {
            head: &self.head,
            completion_tail: &self.completion_tail,
            completions: &self.completions,
        }
    }
}

/// Which paths the explored executions took, over all executions of one scenario (std atomics:
/// outside the model).
#[derive(Default)]
struct Coverage {
    executions: AtomicUsize,
    revoked: AtomicUsize,
    ambiguous: AtomicUsize,
    ambiguous_returned: AtomicUsize,
    ambiguous_declined: AtomicUsize,
    declines_ignored: AtomicUsize,
    range_declines: AtomicUsize,
    self_drops: AtomicUsize,
    read: AtomicUsize,
    skipped: AtomicUsize,
    full: AtomicUsize,
    out_of_slots: AtomicUsize,
    backed_up: AtomicUsize,
}

fn bump(counter: &AtomicUsize) {
    counter.fetch_add(1, StdOrdering::Relaxed);
}

fn count(counter: &AtomicUsize) -> usize {
    counter.load(StdOrdering::Relaxed)
}

impl Coverage {
    fn report(&self, name: &str) {
        eprintln!(
            "{name}: {} executions; revoked {}, ambiguous {} (returned {}, declined {}), \
             declines ignored {}, range declines {}, dropped unread {}, samples read {}, \
             skipped {}, full {}, out of slots {}, completions backed up {}",
            count(&self.executions),
            count(&self.revoked),
            count(&self.ambiguous),
            count(&self.ambiguous_returned),
            count(&self.ambiguous_declined),
            count(&self.declines_ignored),
            count(&self.range_declines),
            count(&self.self_drops),
            count(&self.read),
            count(&self.skipped),
            count(&self.full),
            count(&self.out_of_slots),
            count(&self.backed_up),
        );
    }
}

/// The publisher's books (`publisher/books.rs`: `Pool`, and `Holdings` for the one subscriber).
struct Books {
    refs: Vec<u32>,
    free: Vec<u32>,
    held: Vec<bool>,
    held_count: u32,
    ambiguous: Vec<(u64, u32)>,
}

impl Books {
    fn new(pool: u32) -> Books {
        Books {
            refs: vec![0; pool as usize],
            free: (0..pool).rev().collect(),
            held: vec![false; pool as usize],
            held_count: 0,
            ambiguous: Vec::new(),
        }
    }

    fn take(&mut self) -> Option<u32> {
        let i = self.free.pop()?;
        assert_eq!(self.refs[i as usize], 0);
        self.refs[i as usize] = 1;
        Some(i)
    }

    fn add_ref(&mut self, i: u32) {
        self.refs[i as usize] += 1;
    }

    fn release(&mut self, i: u32) {
        let refs = &mut self.refs[i as usize];
        assert!(*refs > 0, "slot {i} released more often than referenced");
        *refs -= 1;
        if *refs == 0 {
            self.free.push(i);
        }
    }

    /// Delivered to the subscriber.
    fn add(&mut self, i: u32) {
        assert!(!self.held[i as usize], "slot {i} delivered twice");
        self.held[i as usize] = true;
        self.held_count += 1;
    }

    /// The subscriber no longer holds `i`, if it did: whether it did.
    fn remove(&mut self, i: u32) -> bool {
        if !self.held.get(i as usize).copied().unwrap_or(false) {
            return false;
        }
        self.held[i as usize] = false;
        self.held_count -= 1;
        self.ambiguous.retain(|&(_, slot)| slot != i);
        true
    }

    /// The subscriber declined `from..from + count`: the ambiguous slots in that range.
    fn decline(&mut self, from: u64, count: u64) -> Vec<u32> {
        let end = from.saturating_add(count);
        let mut back = Vec::new();
        self.ambiguous.retain(|&(position, slot)| {
            let declined = position >= from && position < end;
            if declined {
                back.push(slot);
            }
            !declined
        });
        for &slot in &back {
            assert!(self.held[slot as usize], "ambiguous slot {slot} not held");
            self.held[slot as usize] = false;
            self.held_count -= 1;
        }
        back
    }

    /// `Conn::drain`'s handling of one completion.
    fn drained(&mut self, cov: &Coverage, completion: Completion) {
        match completion {
            Completion::Return(slot) => {
                let was_ambiguous = self.ambiguous.iter().any(|&(_, i)| i == slot);
                // The subscriber is honest: a return of a slot it does not hold means the
                // protocol let it take a sample that was already taken back.
                assert!(self.remove(slot), "returned slot {slot} is not held");
                if was_ambiguous {
                    bump(&cov.ambiguous_returned);
                }
                self.release(slot);
            }
            Completion::Decline { from, count } => {
                if count > 1 {
                    bump(&cov.range_declines);
                }
                let back = self.decline(from, count);
                if back.is_empty() {
                    bump(&cov.declines_ignored);
                }
                for slot in back {
                    bump(&cov.ambiguous_declined);
                    self.release(slot);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    Yes,
    Skipped,
    Full,
}

/// The publisher's side: `Producer` and the books, used as `publisher/conn.rs` does.
struct Publisher {
    s: Arc<Shared>,
    producer: Producer,
    books: Books,
    capacity: u64,
    drop_oldest: bool,
    /// `has_room`'s limit: `capacity` under block, `ring_len` under drop-oldest.
    limit: u64,
    allowance: u32,
    cov: std::sync::Arc<Coverage>,
}

impl Publisher {
    /// `Conn::drain`.
    fn drain(&mut self) {
        let s = Arc::clone(&self.s);
        let (d, r) = (s.d(), s.r());
        let (books, cov) = (&mut self.books, &*self.cov);
        self.producer
            .drain(&d, &r, |completion| {
                trace(|| format!("pub: drained {completion:?}"));
                books.drained(cov, completion);
            })
            .expect("the completion ring is consistent");
    }

    /// `Core::take_slot`; where the real publisher reports `OutOfSamples`, the model waits for
    /// the subscriber's returns.
    fn take_slot(&mut self) -> u32 {
        loop {
            if let Some(i) = self.books.take() {
                return i;
            }
            self.drain();
            if let Some(i) = self.books.take() {
                return i;
            }
            bump(&self.cov.out_of_slots);
            thread::yield_now();
        }
    }

    /// `Conn::deliver`.
    fn deliver(&mut self, i: u32) -> Delivered {
        if self.books.held_count >= self.allowance {
            self.drain();
            if self.books.held_count >= self.allowance {
                return Delivered::Skipped;
            }
        }
        let s = Arc::clone(&self.s);
        let (d, r) = (s.d(), s.r());
        let room =
            self.producer.has_room(&r, &d, self.limit, true).expect("the head is consistent");
        if !room {
            if !self.drop_oldest {
                return Delivered::Full;
            }
            let (books, cov) = (&mut self.books, &*self.cov);
            self.producer
                .revoke(&d, &r, true, |rv: Revoked| {
                    trace(|| format!("pub: {rv:?}"));
                    bump(&cov.revoked);
                    if rv.ambiguous {
                        bump(&cov.ambiguous);
                        books.ambiguous.push((rv.position, rv.slot));
                    } else if books.remove(rv.slot) {
                        books.release(rv.slot);
                    }
                })
                .expect("the head is consistent");
        }
        trace(|| format!("pub: write position {} slot {i}", self.producer.tail));
        self.producer.write(&d, i);
        self.books.add(i);
        self.books.add_ref(i);
        Delivered::Yes
    }

    /// `Publisher::publish`: fills a free slot, delivers it (waiting for room under block, as
    /// `wait_for_space` does: drain, then `has_room` with the capacity), drops its own
    /// reference, takes back returns if a queue's worth is accounted to the subscriber.
    fn publish(&mut self) {
        let i = self.take_slot();
        let position = self.producer.tail;
        // SAFETY: the slot was free: nobody else reads it (loom checks this claim).
        self.s.payload[i as usize].with_mut(|p| unsafe { *p = value(position) });
        loop {
            match self.deliver(i) {
                Delivered::Yes => break,
                Delivered::Skipped => {
                    trace(|| format!("pub: skipped slot {i}"));
                    bump(&self.cov.skipped);
                    break;
                }
                Delivered::Full => {
                    bump(&self.cov.full);
                    loop {
                        self.drain();
                        let s = Arc::clone(&self.s);
                        let (d, r) = (s.d(), s.r());
                        let room = self.producer.has_room(&r, &d, self.capacity, true);
                        if room.expect("the head is consistent") {
                            break;
                        }
                        thread::yield_now();
                    }
                }
            }
        }
        self.books.release(i);
        // `Core::publish_slot`, after delivery: take back returns once a queue's worth is
        // accounted to the subscriber (`Conn::needs_drain`).
        if u64::from(self.books.held_count) >= self.capacity {
            self.drain();
        }
    }
}

/// The subscriber's side: `Consumer`, reading and returning each sample at once.
struct Subscriber {
    s: Arc<Shared>,
    consumer: Consumer,
    /// Positions received, in order.
    received: Vec<u64>,
    cov: std::sync::Arc<Coverage>,
}

impl Subscriber {
    /// How many completions it has written (only it writes them).
    fn completions_written(&self) -> u64 {
        // SAFETY: only this thread stores `completion_tail`.
        unsafe { self.s.completion_tail.unsync_load() }
    }

    /// One receive: whether it got a message.
    fn poll(&mut self) -> bool {
        let s = Arc::clone(&self.s);
        let (d, r) = (s.d(), s.r());
        let before = self.completions_written();
        let taken = self.consumer.take(&d, &r, KEY);
        trace(|| format!("sub: {taken:?}, head {}", self.consumer.head));
        let len = s.completions.len() as u64;
        for k in before..self.completions_written() {
            // SAFETY: only this thread stores the completions.
            let written = unsafe { s.completions[(k % len) as usize].unsync_load() };
            if written & DECLINE_BIT == 0 {
                bump(&self.cov.self_drops);
            }
        }
        match taken {
            Take::Message { position, slot } => {
                if let Some(&last) = self.received.last() {
                    assert!(position > last, "position {position} after {last}");
                }
                self.received.push(position);
                // SAFETY: the sample is ours until we return it (loom checks this claim).
                let v = s.payload[slot as usize].with(|p| unsafe { *p });
                assert_eq!(v, value(position), "slot {slot} at position {position}");
                bump(&self.cov.read);
                let before = self.completions_written();
                self.consumer.give_back(&d, &r, Completion::Return(slot));
                if self.completions_written() == before {
                    bump(&self.cov.backed_up);
                }
                true
            }
            Take::Empty => {
                // The real subscriber pushes completions that did not fit with its next return
                // or its `cleanup`; here nothing else would.
                self.consumer.flush(&d, &r);
                false
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Polls until the publisher is done and nothing is left.
    fn run(&mut self) {
        loop {
            let finished = self.s.done.load(Ordering::Acquire);
            if !self.poll() {
                if finished {
                    return;
                }
                thread::yield_now();
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    capacity: u64,
    pool: u32,
    messages: u64,
    /// Published before the subscriber's thread is spawned.
    before: u64,
    drop_oldest: bool,
    /// Entries of the completion ring; 0: as `layout.rs` sizes it.
    completion_len: usize,
    preemptions: usize,
}

impl Scenario {
    const fn new(name: &'static str) -> Scenario {
        Scenario {
            name,
            capacity: 1,
            pool: 4,
            messages: 3,
            before: 0,
            drop_oldest: true,
            completion_len: 0,
            preemptions: 3,
        }
    }

    fn check(self) -> std::sync::Arc<Coverage> {
        let cov = std::sync::Arc::new(Coverage::default());
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(self.preemptions);
        }
        let c = cov.clone();
        builder.check(move || self.once(c.clone()));
        cov.report(self.name);
        cov
    }

    fn once(self, cov: std::sync::Arc<Coverage>) {
        trace_start();
        bump(&cov.executions);
        // As `layout.rs` sizes them, with one sample borrowed at a time.
        let ring_len = (2 * self.capacity as usize).next_power_of_two();
        let allowance = ring_len as u32 + 1;
        let completion_len = match self.completion_len {
            0 => (2 * allowance as usize).next_power_of_two(),
            n => n,
        };
        let s = Arc::new(Shared::new(ring_len, completion_len, self.pool));
        let (d, r) = (s.d(), s.r());
        let producer = Producer::new(&d, self.capacity, 1, true);
        let consumer =
            Consumer::new(&r, PUB_KEY, ring_len, 1, self.capacity, self.drop_oldest, self.pool);
        let mut publisher = Publisher {
            s: s.clone(),
            producer,
            books: Books::new(self.pool),
            capacity: self.capacity,
            drop_oldest: self.drop_oldest,
            limit: if self.drop_oldest { ring_len as u64 } else { self.capacity },
            allowance,
            cov: cov.clone(),
        };
        let mut subscriber = Subscriber { s: s.clone(), consumer, received: Vec::new(), cov };

        for _ in 0..self.before {
            publisher.publish();
        }
        let reader = thread::spawn(move || {
            subscriber.run();
            subscriber
        });
        for _ in self.before..self.messages {
            publisher.publish();
        }
        s.done.store(true, Ordering::Release);
        let mut subscriber = reader.join().unwrap();

        // Both sides are quiet: the subscriber hands over what did not fit, the publisher
        // takes everything back.
        while !subscriber.consumer.flush(&d, &r) {
            publisher.drain();
        }
        publisher.drain();
        let books = &publisher.books;
        assert!(books.ambiguous.is_empty(), "unresolved: {:?}", books.ambiguous);
        assert_eq!(books.held_count, 0, "still held: {:?}", books.held);
        assert!(books.refs.iter().all(|&n| n == 0), "references left: {:?}", books.refs);
        assert_eq!(books.free.len(), self.pool as usize, "slots leaked");

        let tail = publisher.producer.tail;
        assert_eq!(subscriber.consumer.head, tail, "the subscriber looked at every position");
        if tail > 0 {
            assert_eq!(subscriber.received.last(), Some(&(tail - 1)), "the newest is received");
        }
        if !self.drop_oldest {
            let all: Vec<u64> = (0..self.messages).collect();
            assert_eq!(subscriber.received, all, "block: everything received, in order");
        }
    }
}

/// 1. FIFO hand-off with batched completions (taken back after publishing once a queue's
///    worth is accounted to the subscriber, or when the free list is empty): the pool is as
///    small as the ring, so the publisher also has to wait for returns.
#[test]
fn fifo_hand_off_with_batched_completions() {
    let cov = Scenario { pool: 2, messages: 3, preemptions: 3, ..Scenario::new("fifo") }.check();
    assert!(count(&cov.out_of_slots) > 0, "the publisher had to wait for returns");
    assert!(count(&cov.read) > 0);
}

/// 2. Drop-oldest: revocations racing the subscriber's claims, including a claim between the
///    publisher's marker stores and its read of the head (the ambiguous path), resolved both
///    ways (the subscriber took the sample, or saw the marker and declined it).
#[test]
fn revocation_races_claims() {
    let cov = Scenario { messages: 5, preemptions: 2, ..Scenario::new("revocation") }.check();
    assert!(count(&cov.revoked) > 0);
    assert!(count(&cov.ambiguous) > 0, "a claim raced a revocation");
    assert!(count(&cov.ambiguous_returned) > 0, "an ambiguous sample was taken");
    assert!(count(&cov.ambiguous_declined) > 0, "an ambiguous position was declined");
    assert!(count(&cov.declines_ignored) > 0, "a decline of a position taken back");
}

/// 3. A lapped subscriber: it starts after the publisher revoked what it had queued, declines
///    that range, resumes at `floor` and takes the rest while the publisher goes on.
#[test]
fn lapped_subscriber_resumes_at_floor() {
    let cov =
        Scenario { messages: 6, before: 3, preemptions: 2, ..Scenario::new("lapped") }.check();
    assert!(count(&cov.range_declines) > 0, "the lapped range was declined at once");
}

/// 4. Block: no revocation; the publisher waits for room and nothing is lost.
#[test]
fn block_policy_loses_nothing() {
    let cov = Scenario {
        pool: 3,
        messages: 4,
        drop_oldest: false,
        preemptions: 2,
        ..Scenario::new("block")
    }
    .check();
    assert_eq!(count(&cov.revoked), 0);
    assert!(count(&cov.full) > 0, "the publisher had to wait for room");
}

/// 5. Drop-oldest self-drop: two queued for a capacity of one, so the subscriber returns the
///    older one unread, while the publisher goes on.
#[test]
fn subscriber_drops_its_oldest() {
    let cov =
        Scenario { messages: 4, before: 2, preemptions: 3, ..Scenario::new("behind") }.check();
    assert!(count(&cov.self_drops) > 0, "the subscriber dropped its oldest unread");
}

/// 6. A capacity of two (ring of four): revocations of part of the queue, the newest two kept.
#[test]
fn capacity_two_keeps_the_newest_two() {
    let cov =
        Scenario { capacity: 2, pool: 6, messages: 5, preemptions: 2, ..Scenario::new("cap2") }
            .check();
    assert!(count(&cov.revoked) > 0);
    assert!(count(&cov.self_drops) > 0);
}

/// 7. A completion ring of two (smaller than `layout.rs` makes it): completions back up in the
///    subscriber and go out as the publisher publishes how far it read.
#[test]
fn completions_back_up_and_flow_again() {
    let cov = Scenario {
        pool: 3,
        messages: 4,
        completion_len: 2,
        preemptions: 2,
        ..Scenario::new("backed up")
    }
    .check();
    assert!(count(&cov.backed_up) > 0, "the completion ring was full");
}

/// 8. Inline messages (the seqlock in `write_inline` / `take_inline`): the publisher overwrites
///    freely under drop-oldest (a ring of one entry, so every message overwrites the last), so
///    copies race rewrites; the subscriber must never keep a torn copy (every payload word is
///    the published value for the sequence it read), sequences must increase, and the newest
///    message must arrive. Laps and raced copies must both occur. Removing either the
///    publisher's invalidating store or the subscriber's re-check of the stamp makes it fail.
#[test]
fn inline_copies_are_never_torn() {
    const MESSAGES: u64 = 2;
    let torn_or_lapped = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = torn_or_lapped.clone();
    let raced_total = std::sync::Arc::new(AtomicUsize::new(0));
    let raced_outer = raced_total.clone();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(move || {
        let ring_len = 1;
        let shared = Arc::new(Shared::new(ring_len * ring::INLINE_STRIDE, 2, 0));
        let theirs = shared.clone();
        let seen = seen.clone();
        let raced = raced_outer.clone();
        let subscriber = thread::spawn(move || {
            let (d, r) = (theirs.d(), theirs.r());
            let mut c = Consumer::new(&r, PUB_KEY, ring_len, ring::INLINE_STRIDE, 1, true, 1);
            let mut out = [0u64; ring::INLINE_WORDS + 1];
            let mut last = 0;
            loop {
                match c.take_inline(&d, &r, KEY, &mut out) {
                    Take::Inline { position } => {
                        let base = (position as usize % ring_len) * ring::INLINE_STRIDE;
                        if theirs.entries[base].load(Ordering::Relaxed) != ring::entry(position, 0)
                        {
                            bump(&raced);
                        }
                        let sequence = out[0];
                        assert!(
                            out[1..].iter().all(|&w| w == sequence * 10),
                            "torn copy kept: {out:?}"
                        );
                        assert!(sequence > last, "sequence {sequence} after {last}");
                        if position + 1 != sequence {
                            unreachable!("position {position} carries sequence {sequence}");
                        }
                        if sequence > last + 1 {
                            bump(&seen);
                        }
                        last = sequence;
                        if last == MESSAGES {
                            return;
                        }
                    }
                    Take::Empty => {
                        assert!(
                            !(theirs.done.load(Ordering::Acquire) && c.head > MESSAGES),
                            "the newest message never came"
                        );
                        thread::yield_now();
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        });
        let d = shared.d();
        let mut p = Producer::new(&d, 1, ring::INLINE_STRIDE, true);
        for sequence in 1..=MESSAGES {
            p.write_inline(&d, sequence, &[sequence * 10; ring::INLINE_WORDS]);
        }
        shared.done.store(true, Ordering::Release);
        subscriber.join().unwrap();
    });
    assert!(count(&torn_or_lapped) > 0, "the subscriber was lapped in some execution");
    assert!(count(&raced_total) > 0, "a copy raced a rewrite in some execution");
}
