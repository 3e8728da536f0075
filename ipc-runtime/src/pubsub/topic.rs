//! A process's handle on a topic segment: joining (create-or-open, validated), participant slots
//! and their liveness, and removal when the last participant leaves.
//!
//! Joining and leaving take the topic's [`FileLock`], so a creator killed half-way never leaves a
//! half-initialised topic in anyone's way: the next joiner finds the segment not ready while
//! holding the lock, which proves its creator is gone, and replaces it. A topic whose
//! participants are all dead is likewise replaced, so stale state never blocks a restart.

use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use super::layout::{
    CLAIMED, FREE, LAYOUT_VERSION, Layout, Line, PairHeader, PublisherSlot, SubscriberSlot,
    TYPE_NAME_CAP, TopicHeader,
};
use super::options::{OptionRequest, TopicOptions};
use super::ring::{Completion, Delivery};
use crate::domain;
use crate::error::{Error, Result};
use crate::liveness::{self, FileLock, Token};
use crate::message::ShmMessage;
use crate::segment::{Access, Segment, SegmentKind, SegmentName};
use crate::wait::{WaitBackend, WaitWord};

/// Which side of a topic a participant is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Publisher,
    Subscriber,
}

impl Role {
    pub(crate) fn letter(self) -> char {
        match self {
            Role::Publisher => 'p',
            Role::Subscriber => 's',
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Role::Publisher => "publishers",
            Role::Subscriber => "subscribers",
        }
    }
}

/// Hook for tests: pause inside topic creation so a test can kill the creator there.
#[cfg(not(miri))]
fn creation_pause_point() {
    if let Ok(path) = std::env::var("IPC_TEST_PAUSE_IN_CREATE") {
        let _ = std::fs::write(&path, b"paused");
        loop {
            std::thread::park();
        }
    }
}

/// A mapped, validated topic segment.
#[derive(Debug)]
pub(crate) struct Topic {
    pub name: String,
    pub domain: String,
    segment: Segment,
    pub layout: Layout,
    /// The wait backend's cleanup, for channels dead participants left behind.
    cleanup: crate::wait::ChannelCleanup,
}

// SAFETY: all shared state in the segment is accessed through atomics; the mapping lives as long
// as the `Topic`.
unsafe impl Send for Topic {}
// SAFETY: as above.
unsafe impl Sync for Topic {}

fn segment_name(domain: &str, topic: &str) -> Result<SegmentName> {
    SegmentName::new(domain, SegmentKind::Topic, topic)
}

fn lock_name(topic: &str) -> String {
    format!("topic.{topic}")
}

impl Topic {
    /// Opens topic `name` in `domain`, creating it if needed, and checks that message type `M`,
    /// backend `B` and the requested options agree with it. Returns with the topic's lock held,
    /// so the caller can claim a slot before anyone can decide the topic is unused.
    pub fn join<M: ShmMessage, B: WaitBackend>(
        domain: &str,
        name: &str,
        request: &OptionRequest,
    ) -> Result<(Topic, FileLock)> {
        domain::validate(name, "topic")?;
        let seg_name = segment_name(domain, name)?;
        let lock = FileLock::lock(domain, &lock_name(name))?;
        let topic = match Segment::open(&seg_name, SegmentKind::Topic, Access::ReadWrite) {
            Ok(segment) => {
                let existing = Self::from_segment(domain, name, segment, B::cleanup)?;
                if existing.anyone_alive()? {
                    existing.check::<M, B>(request)?;
                    existing
                } else {
                    // Left over from participants that are all gone: start afresh.
                    tracing::info!(
                        topic = name,
                        "replacing a topic whose participants are all gone"
                    );
                    Segment::unlink(&seg_name)?;
                    Self::create::<M, B>(domain, name, &seg_name, request)?
                }
            }
            Err(Error::SegmentNotFound { .. }) => {
                match Self::create::<M, B>(domain, name, &seg_name, request) {
                    Ok(topic) => topic,
                    Err(err) => {
                        // Nothing was created: do not leave the lock file behind either.
                        lock.remove();
                        return Err(err);
                    }
                }
            }
            Err(Error::NotReady { creator_pid, .. }) => {
                // We hold the lock its creator held while creating: the creator died half-way.
                tracing::warn!(
                    topic = name,
                    creator_pid,
                    "replacing a topic whose creator died while creating it"
                );
                Segment::unlink(&seg_name)?;
                Self::create::<M, B>(domain, name, &seg_name, request)?
            }
            Err(other) => return Err(other),
        };
        Ok((topic, lock))
    }

    fn create<M: ShmMessage, B: WaitBackend>(
        domain: &str,
        name: &str,
        seg_name: &SegmentName,
        request: &OptionRequest,
    ) -> Result<Topic> {
        let options = request.resolve();
        options.validate()?;
        let layout = Layout::new(options);
        let type_name = M::TYPE_NAME.as_bytes();
        let len = type_name.len().min(TYPE_NAME_CAP);
        let mut stored_name = [0u8; TYPE_NAME_CAP];
        stored_name[..len].copy_from_slice(&type_name[..len]);
        let header = TopicHeader {
            layout_version: LAYOUT_VERSION,
            backend_id: B::ID,
            fingerprint: M::FINGERPRINT,
            msg_size: size_of::<M>() as u64,
            msg_align: align_of::<M>() as u64,
            type_name_len: len as u32,
            _pad: 0,
            type_name: stored_name,
            options: options.to_wire(),
            connect_epoch: Default::default(),
            data: Line(WaitWord::new()),
        };
        let segment = Segment::create_with(
            crate::segment::platform(),
            seg_name,
            SegmentKind::Topic,
            layout.total,
            |seg| {
                // SAFETY: the fresh segment is `layout.total` bytes, writable, zero-filled and
                // page-aligned; the header offset is 64-aligned. Zero is the initial state of
                // every slot and queue, so only the header needs writing.
                unsafe { seg.base().add(layout.header).cast::<TopicHeader>().write(header) };
                #[cfg(not(miri))]
                creation_pause_point();
            },
        )?;
        Ok(Topic {
            name: name.to_owned(),
            domain: domain.to_owned(),
            segment,
            layout,
            cleanup: B::cleanup,
        })
    }

    fn from_segment(
        domain: &str,
        name: &str,
        segment: Segment,
        cleanup: crate::wait::ChannelCleanup,
    ) -> Result<Topic> {
        let corrupted = |what: String| Error::Corrupted { what: format!("topic `{name}`: {what}") };
        if segment.len() < Layout::new(TopicOptions::default()).header + size_of::<TopicHeader>() {
            return Err(corrupted("segment too small for a topic header".into()));
        }
        // SAFETY: the segment is at least header + TopicHeader bytes (checked above) and the
        // header is plain data (atomics and integers), valid for any bit pattern.
        let header = unsafe {
            segment.base().add(crate::segment::HEADER_SIZE).cast::<TopicHeader>().as_ref()
        };
        if header.layout_version != LAYOUT_VERSION {
            return Err(corrupted(format!(
                "layout version {} (this build uses {LAYOUT_VERSION})",
                header.layout_version
            )));
        }
        let options = TopicOptions::from_wire(header.options, name)?;
        let layout = Layout::new(options);
        if segment.len() != layout.total {
            return Err(corrupted(format!(
                "segment is {} bytes, its options need {}",
                segment.len(),
                layout.total
            )));
        }
        Ok(Topic { name: name.to_owned(), domain: domain.to_owned(), segment, layout, cleanup })
    }

    /// Opens an existing topic without joining it or checking its type (for tools).
    pub fn open_existing(domain: &str, name: &str) -> Result<Topic> {
        fn no_cleanup(_: &str) -> Result<()> {
            Ok(())
        }
        let seg_name = segment_name(domain, name)?;
        let segment = Segment::open(&seg_name, SegmentKind::Topic, Access::ReadWrite)?;
        let mut topic = Self::from_segment(domain, name, segment, no_cleanup)?;
        if let Some((_, cleanup)) = crate::wait::builtin_backend(topic.header().backend_id) {
            topic.cleanup = cleanup;
        }
        Ok(topic)
    }

    /// The topic's creation lock (for tools that change a topic they did not join).
    pub fn lock(domain: &str, name: &str) -> Result<FileLock> {
        FileLock::lock(domain, &lock_name(name))
    }

    /// Removes the topic's segment if nobody alive uses it; returns whether it did.
    /// Call with the topic's lock held.
    pub fn remove_if_unused(&self) -> Result<bool> {
        if self.anyone_alive()? {
            return Ok(false);
        }
        Segment::unlink(&segment_name(&self.domain, &self.name)?)?;
        Ok(true)
    }

    /// Checks that `M`, `B` and the requested options agree with the topic.
    fn check<M: ShmMessage, B: WaitBackend>(&self, request: &OptionRequest) -> Result<()> {
        let header = self.header();
        if header.fingerprint != M::FINGERPRINT
            || header.msg_size != size_of::<M>() as u64
            || header.msg_align != align_of::<M>() as u64
        {
            let existing = self.type_name();
            let found = if existing == M::TYPE_NAME {
                format!("{} (a different definition)", M::TYPE_NAME)
            } else {
                M::TYPE_NAME.to_owned()
            };
            return Err(Error::TypeMismatch {
                topic: self.name.clone(),
                expected: existing,
                found,
            });
        }
        if header.backend_id != B::ID {
            return Err(Error::IncompatibleOptions {
                topic: self.name.clone(),
                option: "wait backend",
                existing: format!("id {}", header.backend_id),
                requested: format!("{} (id {})", B::NAME, B::ID),
            });
        }
        request.check(&self.layout.options, &self.name)
    }

    /// The message type's name as recorded by the topic's creator.
    pub fn type_name(&self) -> String {
        let header = self.header();
        let len = (header.type_name_len as usize).min(TYPE_NAME_CAP);
        String::from_utf8_lossy(&header.type_name[..len]).into_owned()
    }

    fn at<T>(&self, offset: usize) -> &T {
        debug_assert!(offset + size_of::<T>() <= self.segment.len());
        // SAFETY: every offset comes from `self.layout`, computed from validated options and
        // checked against the segment's size when it was opened; all structures are plain data
        // or atomics, 4/8/64-aligned as the layout places them, and live as long as `self`.
        unsafe {
            NonNull::new_unchecked(self.segment.base().as_ptr().add(offset)).cast::<T>().as_ref()
        }
    }

    fn atomics_u32(&self, offset: usize, len: usize) -> &[std::sync::atomic::AtomicU32] {
        debug_assert!(offset + 4 * len <= self.segment.len());
        // SAFETY: as in `at`; the ring entries are `len` consecutive 4-byte atomics.
        unsafe { std::slice::from_raw_parts(self.segment.base().as_ptr().add(offset).cast(), len) }
    }

    pub fn header(&self) -> &TopicHeader {
        self.at(self.layout.header)
    }

    pub fn publisher(&self, index: u32) -> &PublisherSlot {
        self.at(self.layout.publisher(index))
    }

    pub fn subscriber(&self, index: u32) -> &SubscriberSlot {
        self.at(self.layout.subscriber(index))
    }

    pub fn pair(&self, publisher: u32, subscriber: u32) -> &PairHeader {
        self.at(self.layout.pair(publisher, subscriber))
    }

    pub fn delivery(&self, publisher: u32, subscriber: u32) -> Delivery<'_> {
        let pair = self.pair(publisher, subscriber);
        Delivery {
            head: &pair.delivery_head.0,
            tail: &pair.delivery_tail.0,
            entries: self.atomics_u32(
                self.layout.delivery_entries(publisher, subscriber),
                self.layout.delivery_len,
            ),
            capacity: self.layout.options.subscriber_capacity as u64,
        }
    }

    pub fn completion(&self, publisher: u32, subscriber: u32) -> Completion<'_> {
        let pair = self.pair(publisher, subscriber);
        Completion {
            head: &pair.completion_head.0,
            tail: &pair.completion_tail.0,
            entries: self.atomics_u32(
                self.layout.completion_entries(publisher, subscriber),
                self.layout.completion_len,
            ),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.header().connect_epoch.load(Ordering::Acquire)
    }

    /// The word every subscriber sleeps on when the backend broadcasts
    /// ([`TopicHeader::data`]).
    pub fn data_word(&self) -> &WaitWord {
        &self.header().data.0
    }

    pub fn bump_epoch(&self) {
        self.header().connect_epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn slots(&self, role: Role) -> u32 {
        match role {
            Role::Publisher => self.layout.options.max_publishers,
            Role::Subscriber => self.layout.options.max_subscribers,
        }
    }

    fn slot_state(&self, role: Role, index: u32) -> (&std::sync::atomic::AtomicU32, u32) {
        match role {
            Role::Publisher => {
                let s = self.publisher(index);
                (&s.state, s.generation.load(Ordering::Acquire))
            }
            Role::Subscriber => {
                let s = self.subscriber(index);
                (&s.state, s.generation.load(Ordering::Acquire))
            }
        }
    }

    /// The wait channel of participant `index` at `generation` (`suffix` tells a participant's
    /// several channels apart).
    pub fn channel(&self, role: Role, index: u32, generation: u32, suffix: &str) -> String {
        format!("{}.topic.{}.{}{index}.{generation}{suffix}", self.domain, self.name, role.letter())
    }

    /// Removes what a participant's wait channels leave behind (socket files and such): for
    /// dead participants, and for a publisher that finished while its waiters still exist.
    pub fn clean_channels(&self, role: Role, index: u32, generation: u32) {
        let suffixes: &[&str] = match role {
            Role::Publisher => &[".service", ".space"],
            Role::Subscriber => &[""],
        };
        for suffix in suffixes {
            if let Err(err) = (self.cleanup)(&self.channel(role, index, generation, suffix)) {
                tracing::warn!(topic = %self.name, %err, "could not clean a dead participant's wait channel");
            }
        }
    }

    /// Name of the liveness token of participant `index` (generation `generation`).
    pub fn token_name(&self, role: Role, index: u32, generation: u32) -> String {
        format!("topic.{}.{}{index}.{generation}", self.name, role.letter())
    }

    /// Whether the participant in slot `index` at `generation` is alive.
    pub fn participant_alive(&self, role: Role, index: u32, generation: u32) -> bool {
        match liveness::is_alive(&self.domain, &self.token_name(role, index, generation)) {
            Ok(alive) => alive,
            Err(err) => {
                tracing::warn!(topic = %self.name, %err, "liveness probe failed; assuming alive");
                true
            }
        }
    }

    /// Claims a free slot (or one whose holder is dead) and takes its liveness token. Call with
    /// the topic's lock held.
    pub fn claim(&self, role: Role) -> Result<(u32, u32, Token)> {
        for index in 0..self.slots(role) {
            let (state, generation) = self.slot_state(role, index);
            let current = state.load(Ordering::Acquire);
            let takeable = current == FREE || !self.participant_alive(role, index, generation);
            if !takeable
                || state
                    .compare_exchange(current, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            if current != FREE {
                self.clean_channels(role, index, generation);
                if role == Role::Publisher {
                    self.release_dead_publisher_heap(index);
                }
            }
            let generation = match role {
                Role::Publisher => self.publisher(index).generation.fetch_add(1, Ordering::AcqRel),
                Role::Subscriber => {
                    self.subscriber(index).generation.fetch_add(1, Ordering::AcqRel)
                }
            }
            .wrapping_add(1)
            .max(1);
            let token =
                match Token::acquire(&self.domain, &self.token_name(role, index, generation)) {
                    Ok(token) => token,
                    Err(err) => {
                        state.store(FREE, Ordering::Release);
                        return Err(err);
                    }
                };
            return Ok((index, generation, token));
        }
        Err(Error::TopicFull { topic: self.name.clone(), role: role.noun(), max: self.slots(role) })
    }

    /// Frees publisher slot `index` if its holder is dead; returns whether it was dead.
    pub fn reap_publisher(&self, index: u32) -> bool {
        let slot = self.publisher(index);
        let state = slot.state.load(Ordering::Acquire);
        let generation = slot.generation.load(Ordering::Acquire);
        if state == FREE || self.participant_alive(Role::Publisher, index, generation) {
            return false;
        }
        if slot.state.compare_exchange(state, FREE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            self.release_dead_publisher_heap(index);
            self.clean_channels(Role::Publisher, index, generation);
            self.bump_epoch();
            tracing::info!(topic = %self.name, publisher = index, "reclaimed a dead publisher's slot");
        }
        true
    }

    /// Removes a dead publisher's heap segment if its process is gone (mappings stay valid in
    /// the processes that have them, so samples already received stay readable).
    fn release_dead_publisher_heap(&self, index: u32) {
        let slot = self.publisher(index);
        let id = slot.heap_id.load(Ordering::Acquire);
        if id == 0 {
            return;
        }
        let Some(domain) = self.publisher_heap_domain(index) else { return };
        // A publisher's token dies before its process only in `exit` (the slot is freed first
        // otherwise), so a heap still alive here belongs to a process about to be gone.
        crate::heap::remove_once_dead(&domain, id, std::time::Duration::from_secs(2));
    }

    /// The domain of publisher `index`'s heap, as it recorded it.
    pub fn publisher_heap_domain(&self, index: u32) -> Option<String> {
        let slot = self.publisher(index);
        let len =
            (slot.heap_domain_len.load(Ordering::Acquire) as usize).min(slot.heap_domain.len());
        let domain = std::str::from_utf8(&slot.heap_domain[..len]).ok()?.to_owned();
        domain::validate(&domain, "domain").ok().map(|()| domain)
    }

    /// Frees subscriber slot `index` if its holder is dead; returns whether it was dead.
    pub fn reap_subscriber(&self, index: u32) -> bool {
        let slot = self.subscriber(index);
        let state = slot.state.load(Ordering::Acquire);
        let generation = slot.generation.load(Ordering::Acquire);
        if state == FREE || self.participant_alive(Role::Subscriber, index, generation) {
            return false;
        }
        if slot.state.compare_exchange(state, FREE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            self.clean_channels(Role::Subscriber, index, generation);
            self.bump_epoch();
            tracing::info!(topic = %self.name, subscriber = index, "reclaimed a dead subscriber's slot");
        }
        true
    }

    /// Whether any participant (other than free slots) is alive. Dead ones' tokens are removed
    /// as a side effect.
    fn anyone_alive(&self) -> Result<bool> {
        for role in [Role::Publisher, Role::Subscriber] {
            for index in 0..self.slots(role) {
                let (state, generation) = self.slot_state(role, index);
                if state.load(Ordering::Acquire) != FREE
                    && self.participant_alive(role, index, generation)
                {
                    return Ok(true);
                }
                if state.load(Ordering::Acquire) != FREE {
                    self.clean_channels(role, index, generation);
                    if role == Role::Publisher {
                        self.release_dead_publisher_heap(index);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Called by a participant after it released its slot: removes the topic if nobody alive
    /// uses it any more.
    pub fn leave(&self) {
        let lock = match FileLock::lock(&self.domain, &lock_name(&self.name)) {
            Ok(lock) => lock,
            Err(err) => {
                tracing::warn!(topic = %self.name, %err, "could not lock the topic to leave it");
                return;
            }
        };
        match self.anyone_alive() {
            Ok(false) => {
                // Remove the segment only if the name still refers to ours; remove the lock
                // file too unless a newer incarnation of the topic exists (another participant
                // that left at the same time may have removed the segment already).
                let Ok(name) = segment_name(&self.domain, &self.name) else { return };
                match Segment::open(&name, SegmentKind::Topic, Access::ReadOnly) {
                    Ok(current) if current.id() == self.segment.id() => {
                        let _ = Segment::unlink(&name);
                        lock.remove();
                    }
                    Ok(_) => {}
                    Err(Error::SegmentNotFound { .. }) => lock.remove(),
                    Err(_) => {}
                }
            }
            Ok(true) => {}
            Err(err) => tracing::warn!(topic = %self.name, %err, "liveness scan failed"),
        }
    }
}
