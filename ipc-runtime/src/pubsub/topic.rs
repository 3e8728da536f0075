//! A process's handle on a topic segment: joining (create-or-open, validated), the registry of
//! publishers and subscribers, and removal when the last participant leaves. The membership
//! protocol itself is [`crate::membership`]'s.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::describe::{self, Description};
use super::layout::{
    HeapRef, LAYOUT_VERSION, Layout, Line, PublisherEntry, SubscriberEntry, TYPE_NAME_CAP,
    TopicHeader, carries_inline,
};
use super::options::{self, OptionRequest, TopicOptions};
use crate::domain;
use crate::error::{Error, Result};
use crate::liveness::FileLock;
use crate::membership::{self, Claim, FREE, Member, Registry, Role};
use crate::message::ShmMessage;
use crate::segment::{Segment, SegmentKind, SegmentName};
use crate::wait::{WaitBackend, WaitWord};

/// Publisher slots of a topic.
pub(crate) const PUBLISHER: Role = Role { letter: 'p', plural: "publishers" };
/// Subscriber slots of a topic.
pub(crate) const SUBSCRIBER: Role = Role { letter: 's', plural: "subscribers" };

/// Hook for the crate's tests (feature `test-seams`): pause inside topic creation so a test can
/// kill the creator there.
#[cfg(all(feature = "test-seams", not(miri)))]
fn creation_pause_point() {
    if let Ok(path) = std::env::var("IPC_TEST_PAUSE_IN_CREATE") {
        let _ = std::fs::write(&path, b"paused");
        loop {
            std::thread::park();
        }
    }
}

/// What a topic records about its message type.
#[derive(Debug, Clone)]
pub(crate) struct MessageType<'a> {
    pub fingerprint: u64,
    pub size: u64,
    pub align: u64,
    /// The concrete name (`Stamped<f64>`), recorded by a creator and named in mismatches.
    pub name: std::borrow::Cow<'a, str>,
    /// Its fields, recorded (the first few) so that a mismatch can name the one that differs.
    pub fields: &'static [crate::message::FieldInfo],
    /// Whether messages travel inside their ring entries ([`carries_inline`]).
    pub inline: bool,
}

impl MessageType<'static> {
    /// `M`'s.
    pub fn of<M: ShmMessage>() -> Self {
        MessageType {
            fingerprint: M::FINGERPRINT,
            size: size_of::<M>() as u64,
            align: align_of::<M>() as u64,
            name: describe::concrete_name::<M>().into(),
            fields: M::FIELDS,
            inline: carries_inline::<M>(),
        }
    }
}

/// A mapped, validated topic segment.
#[derive(Debug)]
pub(crate) struct TopicSegment {
    pub name: String,
    pub domain: String,
    object: String,
    segment: Segment,
    pub layout: Layout,
    /// The wait backend's cleanup, for channels dead participants left behind.
    cleanup: crate::wait::ChannelCleanup,
}

// SAFETY: all shared state in the segment is accessed through atomics or is plain data written
// before the segment was marked ready; the mapping lives as long as the `TopicSegment`.
unsafe impl Send for TopicSegment {}
// SAFETY: as above.
unsafe impl Sync for TopicSegment {}

fn segment_name(domain: &str, topic: &str) -> Result<SegmentName> {
    SegmentName::new(domain, SegmentKind::Topic, topic)
}

/// A topic's membership lock ([`membership::lock`]). On Unix its file is removed when the
/// lock is let go, so an idle topic is one object (its segment) and not two: a process waiting
/// for the lock on the removed file notices and takes it on a fresh file (see
/// [`FileLock::lock`]). Elsewhere the file stays (a file open in another process cannot be
/// reliably replaced there) and goes with the topic.
#[derive(Debug)]
pub(crate) struct TopicLock(Option<FileLock>);

impl TopicLock {
    /// The lock as [`membership`] takes it.
    fn into_inner(mut self) -> FileLock {
        self.0.take().expect("a topic lock holds its file lock until dropped")
    }

    /// Removes the lock's file while still holding it (the topic is gone).
    pub fn remove(self) {
        self.into_inner().remove();
    }
}

impl From<FileLock> for TopicLock {
    fn from(lock: FileLock) -> Self {
        TopicLock(Some(lock))
    }
}

impl Drop for TopicLock {
    fn drop(&mut self) {
        // Elsewhere the lock is let go with the file kept.
        if let Some(lock) = self.0.take()
            && cfg!(unix)
        {
            lock.remove();
        }
    }
}

/// The topic's name in lock and token names: `topic.<encoded name>` (see [`crate::domain`]).
pub(crate) fn object_name(topic: &str) -> String {
    format!("topic.{}", domain::encode_name(topic))
}

impl Registry for TopicSegment {
    fn domain(&self) -> &str {
        &self.domain
    }

    fn object(&self) -> &str {
        &self.object
    }

    fn slots(&self, role: Role) -> u32 {
        if role == PUBLISHER {
            self.layout.options.max_publishers
        } else {
            self.layout.options.max_subscribers
        }
    }

    fn member(&self, role: Role, index: u32) -> &Member {
        if role == PUBLISHER {
            &self.publisher(index).member
        } else {
            &self.subscriber(index).member
        }
    }

    fn roles(&self) -> &'static [Role] {
        &[PUBLISHER, SUBSCRIBER]
    }

    fn full(&self, role: Role) -> Error {
        Error::TopicFull { topic: self.name.clone(), role: role.plural, max: self.slots(role) }
    }
}

impl TopicSegment {
    /// Opens topic `name` in `domain`, creating it if needed, and checks that message type `M`,
    /// backend `B` and the requested options agree with it. Returns with the topic's lock held,
    /// so the caller can claim a slot before anyone can decide the topic is unused.
    ///
    /// Waiting for the lock is bounded ([`Error::LockTimeout`]). A topic segment that fails
    /// validation is replaced if no live process holds a token of the topic, and is an error
    /// naming the problem otherwise (see [`membership`], "Replace a corrupt object").
    pub fn join<M: ShmMessage, B: WaitBackend>(
        domain: &str,
        name: &str,
        request: &OptionRequest,
    ) -> Result<(TopicSegment, TopicLock)> {
        Self::join_as::<B>(domain, name, request, &MessageType::of::<M>())
    }

    /// [`join`](Self::join) for a message type described at run time (the request/response
    /// registry records both of its types under one name, `crate::service`).
    pub fn join_as<B: WaitBackend>(
        domain: &str,
        name: &str,
        request: &OptionRequest,
        ty: &MessageType<'_>,
    ) -> Result<(TopicSegment, TopicLock)> {
        domain::validate(name, "topic")?;
        request.check_consistent()?;
        let seg_name = segment_name(domain, name)?;
        let object = object_name(name);
        let lock = TopicLock::from(membership::lock(domain, &object)?);
        let roles = &[PUBLISHER, SUBSCRIBER];
        let found = match membership::open_or_replace(
            &seg_name,
            SegmentKind::Topic,
            domain,
            &object,
            roles,
        )? {
            Some(segment) => match Self::from_segment(domain, name, segment, B::cleanup) {
                Ok(existing) => Some(existing),
                Err(err) if membership::is_corruption(&err) => {
                    membership::replace_corrupt(domain, &object, roles, &seg_name, &err)?;
                    None
                }
                Err(err) => return Err(err),
            },
            None => None,
        };
        let topic = match found {
            Some(mut existing) => {
                if membership::anyone_alive(&existing) {
                    existing.check::<B>(request, ty)?;
                    existing
                } else {
                    // Left over from participants that are all gone: start afresh.
                    tracing::info!(
                        topic = name,
                        "replacing a topic whose participants are all gone"
                    );
                    existing.clean_all_dead();
                    membership::unlink(&seg_name);
                    Self::create::<B>(domain, name, &seg_name, request, ty)?
                }
            }
            None => match Self::create::<B>(domain, name, &seg_name, request, ty) {
                Ok(topic) => topic,
                Err(err) => {
                    // Nothing was created: do not leave the lock file behind either.
                    lock.remove();
                    return Err(err);
                }
            },
        };
        Ok((topic, lock))
    }

    fn create<B: WaitBackend>(
        domain: &str,
        name: &str,
        seg_name: &SegmentName,
        request: &OptionRequest,
        ty: &MessageType<'_>,
    ) -> Result<TopicSegment> {
        let options = request.resolve();
        options.validate()?;
        let layout = Layout::new(options, ty.inline);
        let concrete: &str = &ty.name;
        let mut len = concrete.len().min(TYPE_NAME_CAP);
        while !concrete.is_char_boundary(len) {
            len -= 1;
        }
        let mut stored_name = [0u8; TYPE_NAME_CAP];
        stored_name[..len].copy_from_slice(&concrete.as_bytes()[..len]);
        let header = TopicHeader {
            layout_version: LAYOUT_VERSION,
            backend_id: B::ID,
            fingerprint: ty.fingerprint,
            msg_size: ty.size,
            msg_align: ty.align,
            type_name_len: len as u32,
            inline: u32::from(layout.inline),
            type_name: stored_name,
            description: Description::of(ty.fields),
            options: options.to_wire(),
            explicit: request.explicit(),
            history_set: AtomicU32::new(0),
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
                // every registry slot, so only the header needs writing.
                unsafe { seg.base().add(layout.header).cast::<TopicHeader>().write(header) };
                #[cfg(all(feature = "test-seams", not(miri)))]
                creation_pause_point();
            },
        )?;
        Ok(TopicSegment {
            name: name.to_owned(),
            domain: domain.to_owned(),
            object: object_name(name),
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
    ) -> Result<TopicSegment> {
        let corrupted = |what: String| Error::Corrupted { what: format!("topic `{name}`: {what}") };
        if segment.len()
            < Layout::new(TopicOptions::default(), false).header + size_of::<TopicHeader>()
        {
            return Err(corrupted("segment too small for a topic header".into()));
        }
        // SAFETY: the segment is at least header + TopicHeader bytes (checked above) and the
        // header is plain data (atomics and integers), valid for any bit pattern. The fields
        // read here are written once, before the segment was marked ready.
        let header = unsafe {
            segment.base().add(crate::segment::HEADER_SIZE).cast::<TopicHeader>().as_ref()
        };
        if header.layout_version != LAYOUT_VERSION {
            return Err(corrupted(format!(
                "layout version {} (this build uses {LAYOUT_VERSION})",
                header.layout_version
            )));
        }
        let mut options = TopicOptions::from_wire(header.options, name)?;
        match header.history_set.load(Ordering::Acquire) {
            0 => {}
            set if set - 1 <= options.subscriber_capacity => options.history = set - 1,
            set => {
                return Err(corrupted(format!(
                    "adopted history {} exceeds the subscriber capacity {}",
                    set - 1,
                    options.subscriber_capacity
                )));
            }
        }
        let inline = match header.inline {
            0 => false,
            1 => true,
            other => return Err(corrupted(format!("inline flag {other} is not 0 or 1"))),
        };
        let layout = Layout::new(options, inline);
        if segment.len() != layout.total {
            return Err(corrupted(format!(
                "segment is {} bytes, its options need {}",
                segment.len(),
                layout.total
            )));
        }
        Ok(TopicSegment {
            name: name.to_owned(),
            domain: domain.to_owned(),
            object: object_name(name),
            segment,
            layout,
            cleanup,
        })
    }

    /// Opens an existing topic without joining it or checking its type (for tools).
    pub fn open_existing(domain: &str, name: &str) -> Result<TopicSegment> {
        fn no_cleanup(_: &str) -> Result<()> {
            Ok(())
        }
        let seg_name = segment_name(domain, name)?;
        let segment =
            Segment::open(&seg_name, SegmentKind::Topic, crate::segment::Access::ReadWrite)?;
        let mut topic = Self::from_segment(domain, name, segment, no_cleanup)?;
        if let Some((_, cleanup)) = crate::wait::builtin_backend(topic.header().backend_id) {
            topic.cleanup = cleanup;
        }
        Ok(topic)
    }

    /// For tools, with the topic's lock held: removes a topic segment that failed validation
    /// with `problem` if no live process holds a token of the topic, else fails naming the
    /// problem (the rule of [`membership::replace_corrupt`]).
    pub fn remove_corrupt(domain: &str, name: &str, problem: &Error) -> Result<()> {
        let seg_name = segment_name(domain, name)?;
        membership::replace_corrupt(
            domain,
            &object_name(name),
            &[PUBLISHER, SUBSCRIBER],
            &seg_name,
            problem,
        )
    }

    /// The topic's membership lock (for tools that change a topic they did not join).
    pub fn lock(domain: &str, name: &str) -> Result<TopicLock> {
        membership::lock(domain, &object_name(name)).map(TopicLock::from)
    }

    /// Removes the topic's segment (and `lock`'s file) if nobody alive uses it; returns whether
    /// it did. Call with the topic's lock, which this consumes.
    pub fn remove_if_unused(&self, lock: TopicLock) -> bool {
        if membership::anyone_alive(self) {
            return false;
        }
        self.clean_all_dead();
        for role in [PUBLISHER, SUBSCRIBER] {
            for index in 0..self.slots(role) {
                membership::release(self, role, index);
            }
        }
        if membership::in_use(self) {
            // `lock` goes here, and on Unix its file with it.
            return false;
        }
        membership::remove_if_unused(self, &self.segment, SegmentKind::Topic, lock.into_inner())
    }

    /// Checks that message type `ty`, backend `B` and the requested options agree with the
    /// topic (adopting a requested history the creator left unset).
    fn check<B: WaitBackend>(
        &mut self,
        request: &OptionRequest,
        ty: &MessageType<'_>,
    ) -> Result<()> {
        let header = self.header();
        if header.fingerprint != ty.fingerprint
            || header.msg_size != ty.size
            || header.msg_align != ty.align
        {
            let existing = self.type_name();
            let found = ty.name.to_string();
            let difference = header.description.difference(ty.fields, existing == found);
            return Err(Error::TypeMismatch {
                topic: self.name.clone(),
                expected: existing,
                found,
                difference,
            });
        }
        if self.layout.inline != ty.inline {
            return Err(Error::TypeMismatch {
                topic: self.name.clone(),
                expected: self.type_name(),
                found: ty.name.to_string(),
                difference: format!(
                    "carried inside ring entries: {} in the topic, {} here (a different build)",
                    self.layout.inline, ty.inline
                ),
            });
        }
        if header.backend_id != B::ID {
            return Err(Error::IncompatibleOptions {
                topic: self.name.clone(),
                creator: self.creator(),
                option: "wait backend",
                existing: format!("id {}", header.backend_id),
                requested: format!("{} (id {})", B::NAME, B::ID),
            });
        }
        // An adopted history counts as set: later participants must agree with it.
        let adopted = header.history_set.load(Ordering::Acquire) != 0;
        let explicit = header.explicit | if adopted { options::bit::HISTORY } else { 0 };
        let adopt =
            request.reconcile(&self.layout.options, explicit, &self.creator(), &self.name)?;
        if let Some(history) = adopt {
            // Under the topic's lock (the caller holds it): joiners from now on read it.
            self.header().history_set.store(history + 1, Ordering::Release);
            let options = TopicOptions { history, ..self.layout.options };
            self.layout = Layout::new(options, self.layout.inline);
        }
        Ok(())
    }

    /// Who created the topic, for error messages.
    fn creator(&self) -> String {
        format!("pid {}", self.segment.header().creator_pid())
    }

    /// The message type's name as recorded by the topic's creator.
    pub fn type_name(&self) -> String {
        let header = self.header();
        let len = (header.type_name_len as usize).min(TYPE_NAME_CAP);
        String::from_utf8_lossy(&header.type_name[..len]).into_owned()
    }

    fn at<T>(&self, offset: usize) -> &T {
        assert!(offset + size_of::<T>() <= self.segment.len(), "topic offset out of range");
        // SAFETY: in bounds (asserted); every offset comes from `self.layout`, computed from
        // validated options and checked against the segment's size when it was opened; all
        // structures are plain data or atomics, 64-aligned as the layout places them (the
        // mapping is page-aligned), and live as long as `self`.
        unsafe {
            NonNull::new_unchecked(self.segment.base().as_ptr().add(offset)).cast::<T>().as_ref()
        }
    }

    pub fn header(&self) -> &TopicHeader {
        self.at(self.layout.header)
    }

    pub fn publisher(&self, index: u32) -> &PublisherEntry {
        self.at(self.layout.publisher(index))
    }

    pub fn subscriber(&self, index: u32) -> &SubscriberEntry {
        self.at(self.layout.subscriber(index))
    }

    pub fn epoch(&self) -> u64 {
        self.header().connect_epoch.load(Ordering::Acquire)
    }

    pub fn bump_epoch(&self) {
        self.header().connect_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The word every subscriber sleeps on when the backend broadcasts.
    pub fn data_word(&self) -> &WaitWord {
        &self.header().data.0
    }

    /// The wait channel of participant `index` at `generation` (`suffix` tells a participant's
    /// several channels apart).
    pub fn channel(&self, role: Role, index: u32, generation: u32, suffix: &str) -> String {
        // `<domain>.topic.<encoded name>.<letter><index>.<generation><suffix>`.
        format!("{}.{}.{}{index}.{generation}{suffix}", self.domain, self.object, role.letter)
    }

    /// Removes what a participant's wait channels leave behind (socket files and such).
    pub fn clean_channels(&self, role: Role, index: u32, generation: u32) {
        let suffixes: &[&str] = if role == PUBLISHER { &[".space"] } else { &[""] };
        for suffix in suffixes {
            if let Err(err) = (self.cleanup)(&self.channel(role, index, generation, suffix)) {
                tracing::warn!(topic = %self.name, %err, "could not clean a dead participant's wait channel");
            }
        }
    }

    /// Whether the participant in slot `index` at `generation` is alive (the slot still has
    /// that generation and its process token is held).
    pub fn alive(&self, role: Role, index: u32, generation: u32) -> bool {
        membership::alive(self, role, index, generation)
    }

    /// Whether the process of token `token` (read from a peer's slot when it was connected)
    /// is alive.
    pub fn token_alive(&self, token: u64) -> bool {
        membership::token_alive(self, token)
    }

    /// What the OS says about the process token of slot `index`'s holder, changing nothing
    /// (for tools).
    pub fn probe_holder(&self, role: Role, index: u32) -> crate::liveness::Probe {
        membership::probe_holder(self, role, index)
    }

    /// Claims a slot of `role` (call with the topic's lock held), cleaning up after a dead
    /// holder it replaces.
    pub fn claim(&self, role: Role) -> Result<Claim> {
        let claim = membership::claim(self, role)?;
        if let Some(generation) = claim.replaced {
            self.clean_dead(role, claim.index, generation);
        }
        Ok(claim)
    }

    /// Frees slot `index` of `role` if its holder is dead; returns whether it did.
    pub fn reap(&self, role: Role, index: u32) -> bool {
        match membership::reap(self, role, index) {
            Some(generation) => {
                self.clean_dead(role, index, generation);
                self.bump_epoch();
                tracing::info!(topic = %self.name, index, "reclaimed a dead participant's {} slot", role.plural);
                true
            }
            None => false,
        }
    }

    /// What a dead participant leaves besides its slot: wait channels, and its heap once its
    /// process is gone (mappings stay valid where they exist, so samples already received stay
    /// readable).
    fn clean_dead(&self, role: Role, index: u32, generation: u32) {
        self.clean_channels(role, index, generation);
        let heap = if role == PUBLISHER {
            &self.publisher(index).heap
        } else {
            &self.subscriber(index).heap
        };
        if let Some((domain, id)) = read_heap_ref(heap) {
            let ours = crate::heap::try_default().is_some_and(|heap| heap.id() == id);
            if ours {
                // A dead slot naming this very process's heap is garbage (we are alive and
                // did not hold the slot): nothing to remove, and nothing to wait for.
            } else if role == PUBLISHER {
                // A publisher's slot reads dead before its process is gone only in `exit` (it
                // lingered and disowned the slot), so a heap still alive here belongs to a
                // process about to be gone. (A forged
                // slot naming a live heap costs this wait once; the bound keeps it short.)
                crate::heap::remove_once_dead(&domain, id, std::time::Duration::from_secs(2));
            } else {
                crate::heap::remove_if_dead(&domain, id);
            }
        }
    }

    /// Cleans after every dead participant without freeing slots (the topic is being replaced
    /// or removed).
    fn clean_all_dead(&self) {
        for role in [PUBLISHER, SUBSCRIBER] {
            for index in 0..self.slots(role) {
                let member = self.member(role, index);
                if member.state.load(Ordering::Acquire) != FREE {
                    self.clean_dead(role, index, member.generation.load(Ordering::Acquire));
                }
            }
        }
    }

    /// Called by a participant after it released its slot and dropped its token (this runs in
    /// `Drop`): removes the topic if nobody alive uses it any more. Waits for the topic's lock
    /// only briefly ([`membership::lock_to_leave`]); without it, the topic stays for the next
    /// joiner to replace, the next participant to leave or `ipc clean` to remove.
    pub fn leave(&self) {
        if let Some(lock) = membership::lock_to_leave(&self.domain, &self.object) {
            self.remove_if_unused(lock.into());
        }
    }
}

/// Records where this process's heap is, in a registry entry.
pub(crate) fn write_heap_ref(field: &HeapRef, heap: &crate::heap::Heap) {
    let domain = heap.domain().as_bytes();
    let len = domain.len().min(field.domain.len());
    // SAFETY: nobody else writes a slot we claimed (under the lock); the field is `DOMAIN_CAP`
    // bytes and we copy at most that many.
    unsafe {
        let dst = field.domain.as_ptr().cast_mut();
        std::ptr::copy_nonoverlapping(domain.as_ptr(), dst, len);
    }
    field.domain_len.store(len as u32, Ordering::Relaxed);
    field.heap_id.store(heap.id(), Ordering::Release);
}

/// Reads where a participant's heap is; `None` if the entry holds no valid domain or id.
pub(crate) fn read_heap_ref(field: &HeapRef) -> Option<(String, u64)> {
    let id = field.heap_id.load(Ordering::Acquire);
    let len = (field.domain_len.load(Ordering::Relaxed) as usize).min(field.domain.len());
    // A volatile copy: another process may be writing garbage right now.
    let bytes: Vec<u8> = (0..len)
        // SAFETY: `i < len ≤ DOMAIN_CAP`, inside the field.
        .map(|i| unsafe { std::ptr::read_volatile(field.domain.as_ptr().add(i)) })
        .collect();
    let domain = String::from_utf8(bytes).ok()?;
    (id != 0 && domain::validate_domain(&domain).is_ok()).then_some((domain, id))
}
