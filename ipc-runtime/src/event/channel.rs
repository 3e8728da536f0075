//! One event channel as a participant sees it: the mapped, validated segment, and the
//! membership protocol (join, leave, reap the dead) shared by notifiers and listeners.
//!
//! Every change to *who is in* the channel happens under the channel's [`FileLock`]
//! (`<domain>.lock.event.<name>`): creating or replacing the segment, claiming a slot, leaving,
//! and probing tokens. Joins and leaves are rare, so one lock keeps the protocol simple and
//! makes a crash at any point recoverable: the OS drops the lock with the process, and the next
//! holder finds either a slot still `CLAIMING` (its claimer died; reaped) or a segment not
//! marked ready (its creator died; replaced). Probing tokens only under the lock also matters
//! for correctness: a probe that finds a token unlocked removes its file, which must never race
//! with a joiner taking the same token over.
//!
//! Notifying and taking events never take the lock.

use std::fmt;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::EventId;
use super::layout::{ACTIVE, CLAIMING, Config, FREE, Layout, ListenerHead, NotifierSlot, Shared};
use crate::domain;
use crate::error::{Error, Result};
use crate::liveness::{self, FileLock, Token};
use crate::segment::{Access, Segment, SegmentKind, SegmentName};
use crate::wait::{WaitBackend, WaitWord};

/// Longest event name: derived lock and token names (`event.<name>.l1023`) must stay within
/// [`domain::MAX_NAME_LEN`].
///
/// ```
/// use ipc_runtime::event::{Listener, MAX_EVENT_NAME_LEN};
///
/// assert!(Listener::new(&"x".repeat(MAX_EVENT_NAME_LEN + 1)).is_err());
/// ```
pub const MAX_EVENT_NAME_LEN: usize = 80;

/// Default largest event id (ids `0..=1023`).
///
/// ```
/// # let name = format!("doc-default-max-{}", std::process::id());
/// let notifier = ipc_runtime::event::Notifier::new(&name)?;
/// assert_eq!(notifier.max_event_id(), ipc_runtime::event::DEFAULT_MAX_EVENT_ID);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub const DEFAULT_MAX_EVENT_ID: u64 = 1023;
/// Default number of listener slots.
///
/// ```
/// assert_eq!(ipc_runtime::event::DEFAULT_MAX_LISTENERS, 16);
/// ```
pub const DEFAULT_MAX_LISTENERS: u32 = 16;
/// Default number of notifier slots.
///
/// ```
/// assert_eq!(ipc_runtime::event::DEFAULT_MAX_NOTIFIERS, 16);
/// ```
pub const DEFAULT_MAX_NOTIFIERS: u32 = 16;

/// Channel-wide options. `None` means "whatever the channel has, or the default when creating".
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub domain: Option<String>,
    pub max_event_id: Option<u64>,
    pub max_listeners: Option<u32>,
    pub max_notifiers: Option<u32>,
}

/// Which kind of slot a participant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Notifier,
    Listener,
}

impl Role {
    fn letter(self) -> char {
        match self {
            Role::Notifier => 'n',
            Role::Listener => 'l',
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Role::Notifier => "notifiers",
            Role::Listener => "listeners",
        }
    }
}

/// A participant's claim on a slot, released by [`Channel::leave`].
#[derive(Debug)]
pub(crate) struct Membership {
    pub role: Role,
    pub slot: usize,
    token: Option<Token>,
}

/// What a reap found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Reaped {
    pub notifiers: u64,
    pub listeners: u64,
}

/// A listener slot, borrowed from the mapping.
#[derive(Clone, Copy)]
pub(crate) struct ListenerRef<'a> {
    base: NonNull<u8>,
    layout: &'a Layout,
    pub head: &'a ListenerHead,
}

impl<'a> ListenerRef<'a> {
    pub fn word(&self) -> &'a WaitWord {
        &self.head.word
    }

    /// Pending-bit word `w`.
    pub fn bits(&self, w: usize) -> &'a AtomicU64 {
        // SAFETY: `base` is this slot's start inside a live mapping of `layout.size` bytes;
        // `bits_offset` asserts `w < words`, so the 8 bytes are inside the slot, 8-aligned
        // (slot starts are 64-aligned, offsets multiples of 8), and any bit pattern is a valid
        // AtomicU64. The mapping outlives 'a (borrowed from the Channel).
        unsafe { self.base.add(self.layout.bits_offset(w)).cast::<AtomicU64>().as_ref() }
    }

    /// The counter of id index `index`.
    pub fn counter(&self, index: usize) -> &'a AtomicU64 {
        // SAFETY: as for `bits`; `counter_offset` asserts `index < ids`.
        unsafe { self.base.add(self.layout.counter_offset(index)).cast::<AtomicU64>().as_ref() }
    }
}

/// A joined view of one event channel.
pub(crate) struct Channel {
    domain: String,
    name: String,
    segment: Segment,
    layout: Layout,
    backend_name: String,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("segment", &self.segment.name().as_str())
            .field("layout", &self.layout)
            .finish()
    }
}

/// Checks an event name: a valid object name of at most [`MAX_EVENT_NAME_LEN`] bytes.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    domain::validate(name, "event")?;
    if name.len() > MAX_EVENT_NAME_LEN {
        return Err(Error::InvalidName {
            name: format!("event {name}"),
            reason: "is longer than 80 bytes (room is needed for lock and token suffixes)",
        });
    }
    Ok(())
}

fn lock_name(name: &str) -> String {
    format!("event.{name}")
}

fn token_name(name: &str, role: Role, slot: usize) -> String {
    format!("event.{name}.{}{slot}", role.letter())
}

impl Channel {
    /// Joins channel `name` as `role`, creating or replacing the segment when needed.
    ///
    /// `prepare` runs under the lock after a slot was claimed and before it is marked active
    /// (a listener resets its slot and creates its waiter there); its result is returned.
    pub fn join<B: WaitBackend, T>(
        name: &str,
        options: &Options,
        role: Role,
        prepare: impl FnOnce(&Channel, usize, u32) -> Result<T>,
    ) -> Result<(Channel, Membership, T)> {
        validate_name(name)?;
        let domain = match &options.domain {
            Some(d) => {
                domain::validate(d, "domain")?;
                d.clone()
            }
            None => domain::current().to_owned(),
        };
        let lock = FileLock::lock(&domain, &lock_name(name))?;
        // Until a channel is in use, the lock file protects nothing: remove it on failure
        // (removing a held lock's file is safe, see `FileLock::lock`).
        let opened = Self::open_existing::<B>(&domain, name).and_then(|existing| match existing {
            Some(channel) => Ok(channel),
            None => Self::create::<B>(&domain, name, options),
        });
        let channel = match opened {
            Ok(channel) => channel,
            Err(err) => {
                lock.remove();
                return Err(err);
            }
        };
        channel.check_compatible::<B>(options)?;
        match channel.claim::<T>(role, prepare) {
            Ok((membership, value)) => Ok((channel, membership, value)),
            Err(err) => {
                channel.remove_if_unused(lock);
                Err(err)
            }
        }
    }

    fn segment_name(domain: &str, name: &str) -> Result<SegmentName> {
        SegmentName::new(domain, SegmentKind::Event, name)
    }

    /// Opens the segment if one exists that live participants use. A segment left by a creator
    /// that died, or whose participants are all dead, is removed (the caller creates a fresh
    /// one). Must be called under the channel lock. Compatibility is checked by the caller.
    fn open_existing<B: WaitBackend>(domain: &str, name: &str) -> Result<Option<Channel>> {
        let seg_name = Self::segment_name(domain, name)?;
        let segment = match Segment::open(&seg_name, SegmentKind::Event, Access::ReadWrite) {
            Ok(segment) => segment,
            Err(Error::SegmentNotFound { .. }) => return Ok(None),
            // We hold the lock, and creators hold it until the segment is ready: a segment
            // not ready, empty, or with a zeroed header was left by a creator that died.
            Err(
                err @ (Error::NotReady { .. }
                | Error::TooSmall { .. }
                | Error::WrongMagic { found: [0, 0, 0, 0, 0, 0, 0, 0], .. }),
            ) => {
                tracing::warn!("replacing half-created event segment: {err}");
                Self::unlink(&seg_name);
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let config_ptr = segment.base().as_ptr().wrapping_add(Layout::config_offset());
        if segment.len() < Layout::config_offset() + size_of::<Config>() {
            return Err(Error::Corrupted {
                what: format!("event segment `{seg_name}` is too small for its config"),
            });
        }
        // SAFETY: the mapping is at least config_offset + size_of::<Config>() bytes (checked
        // above), the offset is 64-aligned, and Config is plain data valid for any bits. A
        // volatile copy: another process may be writing garbage right now.
        let config = unsafe { std::ptr::read_volatile(config_ptr.cast::<Config>()) };
        let layout = Layout::from_config(seg_name.as_str(), &config, segment.len())?;
        let backend_name =
            String::from_utf8_lossy(&config.backend_name).trim_end_matches('\0').to_owned();
        let channel = Channel {
            domain: domain.to_owned(),
            name: name.to_owned(),
            segment,
            layout,
            backend_name,
        };
        channel.reap::<B>();
        if !channel.in_use() {
            tracing::debug!("replacing event segment `{seg_name}`: every participant is gone");
            Self::unlink(&seg_name);
            return Ok(None);
        }
        Ok(Some(channel))
    }

    fn check_compatible<B: WaitBackend>(&self, options: &Options) -> Result<()> {
        let event = self.segment.name().to_string();
        if self.layout.backend_id != B::ID {
            return Err(Error::EventBackendMismatch {
                event,
                existing: format!("{} (id {})", self.backend_name, self.layout.backend_id),
                requested: format!("{} (id {})", B::NAME, B::ID),
            });
        }
        let checks = [
            ("max_event_id", options.max_event_id, self.layout.max_event_id),
            (
                "max_listeners",
                options.max_listeners.map(u64::from),
                self.layout.max_listeners as u64,
            ),
            (
                "max_notifiers",
                options.max_notifiers.map(u64::from),
                self.layout.max_notifiers as u64,
            ),
        ];
        for (option, requested, existing) in checks {
            if let Some(requested) = requested
                && requested != existing
            {
                return Err(Error::EventOptionMismatch { event, option, existing, requested });
            }
        }
        Ok(())
    }

    fn create<B: WaitBackend>(domain: &str, name: &str, options: &Options) -> Result<Channel> {
        let seg_name = Self::segment_name(domain, name)?;
        let layout = Layout::new(
            seg_name.as_str(),
            B::ID,
            options.max_event_id.unwrap_or(DEFAULT_MAX_EVENT_ID),
            options.max_listeners.unwrap_or(DEFAULT_MAX_LISTENERS),
            options.max_notifiers.unwrap_or(DEFAULT_MAX_NOTIFIERS),
        )?;
        let config = layout.config(B::NAME);
        let segment = Segment::create_with(
            crate::segment::platform(),
            &seg_name,
            SegmentKind::Event,
            layout.size,
            |seg| {
                let ptr = seg.base().as_ptr().wrapping_add(Layout::config_offset());
                // SAFETY: the segment was just created exclusively, is writable and
                // `layout.size` bytes long, which covers the config at its 64-aligned offset;
                // nobody else can see it before it is marked ready.
                unsafe { ptr.cast::<Config>().write(config) };
            },
        )?;
        Ok(Channel {
            domain: domain.to_owned(),
            name: name.to_owned(),
            segment,
            layout,
            backend_name: B::NAME.to_owned(),
        })
    }

    /// Claims a free slot of `role`. Under the lock.
    fn claim<T>(
        &self,
        role: Role,
        prepare: impl FnOnce(&Channel, usize, u32) -> Result<T>,
    ) -> Result<(Membership, T)> {
        let count = self.slot_count(role);
        for slot in 0..count {
            let (state, generation) = self.slot_state(role, slot);
            if state.load(Ordering::Acquire) != FREE {
                continue;
            }
            state.store(CLAIMING, Ordering::SeqCst);
            let token = match Token::acquire(&self.domain, &token_name(&self.name, role, slot)) {
                Ok(token) => token,
                Err(Error::TokenHeld { token }) => {
                    // A live process holds this slot although it reads as free: its state was
                    // overwritten. Give the slot back to its holder and look further.
                    tracing::warn!(
                        "event `{}`: {} slot {slot} reads free but `{token}` is held; skipping",
                        self.segment.name(),
                        role.plural()
                    );
                    state.store(ACTIVE, Ordering::SeqCst);
                    continue;
                }
                Err(err) => {
                    state.store(FREE, Ordering::SeqCst);
                    return Err(err);
                }
            };
            let generation = generation.load(Ordering::Relaxed).wrapping_add(1);
            self.slot_generation(role, slot).store(generation, Ordering::Relaxed);
            self.slot_pid(role, slot).store(std::process::id(), Ordering::Relaxed);
            let value = match prepare(self, slot, generation) {
                Ok(value) => value,
                Err(err) => {
                    state.store(FREE, Ordering::SeqCst);
                    drop(token);
                    return Err(err);
                }
            };
            state.store(ACTIVE, Ordering::SeqCst);
            let shared = self.shared();
            match role {
                Role::Listener => {
                    shared.listener_epoch.fetch_add(1, Ordering::SeqCst);
                }
                Role::Notifier => {
                    shared.notifier_joins.fetch_add(1, Ordering::SeqCst);
                    shared.notifier_epoch.fetch_add(1, Ordering::SeqCst);
                }
            }
            return Ok((Membership { role, slot, token: Some(token) }, value));
        }
        Err(Error::EventFull {
            event: self.segment.name().to_string(),
            role: role.plural(),
            max: count as u32,
        })
    }

    /// Leaves: frees the slot, reaps the dead, and removes the segment and the lock file when
    /// nobody is left. Errors are logged (this runs in `Drop`).
    pub fn leave<B: WaitBackend>(&self, membership: &mut Membership) {
        let lock = match FileLock::lock(&self.domain, &lock_name(&self.name)) {
            Ok(lock) => lock,
            Err(err) => {
                tracing::error!("leaving event `{}`: {err}", self.segment.name());
                return;
            }
        };
        let (state, _) = self.slot_state(membership.role, membership.slot);
        state.store(FREE, Ordering::SeqCst);
        let shared = self.shared();
        match membership.role {
            Role::Listener => shared.listener_epoch.fetch_add(1, Ordering::SeqCst),
            Role::Notifier => shared.notifier_epoch.fetch_add(1, Ordering::SeqCst),
        };
        // Release the token while holding the lock: the next claimer of this slot takes it.
        drop(membership.token.take());
        self.reap::<B>();
        self.remove_if_unused(lock);
    }

    /// Under the lock (consumed): removes the segment and the lock file if no slot is in use.
    fn remove_if_unused(&self, lock: FileLock) {
        if self.in_use() {
            drop(lock);
        } else {
            Self::unlink(self.segment.name());
            lock.remove();
        }
    }

    fn unlink(name: &SegmentName) {
        match Segment::unlink(name) {
            Ok(()) | Err(Error::SegmentNotFound { .. }) => {}
            Err(err) => tracing::error!("removing event segment: {err}"),
        }
    }

    /// Takes the channel lock (for probes).
    pub fn lock(&self) -> Result<FileLock> {
        FileLock::lock(&self.domain, &lock_name(&self.name))
    }

    /// Frees the slots of participants that died. Must be called under the channel lock.
    pub fn reap<B: WaitBackend>(&self) -> Reaped {
        let mut reaped = Reaped::default();
        let shared = self.shared();
        for role in [Role::Notifier, Role::Listener] {
            for slot in 0..self.slot_count(role) {
                let (state, generation) = self.slot_state(role, slot);
                let seen = state.load(Ordering::Acquire);
                if seen == FREE {
                    continue;
                }
                let token = token_name(&self.name, role, slot);
                let alive = match liveness::is_alive(&self.domain, &token) {
                    Ok(alive) => alive,
                    Err(err) => {
                        tracing::warn!("event `{}`: probing {token}: {err}", self.segment.name());
                        true
                    }
                };
                if alive {
                    if seen != ACTIVE {
                        tracing::warn!(
                            "event `{}`: {} slot {slot} has state {seen} but a live holder",
                            self.segment.name(),
                            role.plural()
                        );
                    }
                    continue;
                }
                if seen != ACTIVE && seen != CLAIMING {
                    tracing::warn!(
                        "event `{}`: {} slot {slot} had invalid state {seen}; freed",
                        self.segment.name(),
                        role.plural()
                    );
                }
                match role {
                    Role::Notifier => {
                        if seen == ACTIVE {
                            reaped.notifiers += 1;
                            shared.notifier_deaths.fetch_add(1, Ordering::SeqCst);
                        }
                        state.store(FREE, Ordering::SeqCst);
                        shared.notifier_epoch.fetch_add(1, Ordering::SeqCst);
                    }
                    Role::Listener => {
                        reaped.listeners += 1;
                        let channel =
                            self.listener_channel(slot, generation.load(Ordering::Relaxed));
                        if let Err(err) = B::cleanup(&channel) {
                            tracing::warn!("event `{}`: {err}", self.segment.name());
                        }
                        state.store(FREE, Ordering::SeqCst);
                        shared.listener_epoch.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tracing::debug!(
                    "event `{}`: reaped dead {} slot {slot}",
                    self.segment.name(),
                    role.plural()
                );
            }
        }
        if reaped.notifiers > 0 {
            self.repair_hints();
        }
        reaped
    }

    /// Sets the hint bit of every id with a non-zero counter in every active listener slot.
    /// A notifier killed between incrementing a counter and setting its bit leaves an event
    /// no scan would find; this finds it. Called after reaping dead notifiers.
    fn repair_hints(&self) {
        for slot in 0..self.layout.max_listeners {
            let view = self.listener(slot);
            if view.head.state.load(Ordering::Acquire) != ACTIVE {
                continue;
            }
            for index in 0..self.layout.ids {
                if view.counter(index).load(Ordering::Acquire) != 0 {
                    let mask = 1u64 << (index % 64);
                    if view.bits(index / 64).fetch_or(mask, Ordering::AcqRel) & mask == 0 {
                        tracing::debug!(
                            "event `{}`: restored the hint of id {index} in listener slot {slot}",
                            self.segment.name()
                        );
                    }
                }
            }
        }
    }

    /// Whether any slot is in use (after a reap: held by a live process).
    fn in_use(&self) -> bool {
        [Role::Notifier, Role::Listener].into_iter().any(|role| {
            (0..self.slot_count(role))
                .any(|slot| self.slot_state(role, slot).0.load(Ordering::Acquire) != FREE)
        })
    }

    /// Number of active slots of `role`. Under the lock, after a reap: the live ones.
    pub fn active(&self, role: Role) -> usize {
        (0..self.slot_count(role))
            .filter(|&slot| self.slot_state(role, slot).0.load(Ordering::Acquire) == ACTIVE)
            .count()
    }

    /// The wait channel of listener slot `slot` in generation `generation`.
    pub fn listener_channel(&self, slot: usize, generation: u32) -> String {
        format!("{}.event.{}.l{slot}.{generation}", self.domain, self.name)
    }

    /// Full segment name, for messages.
    pub fn segment_name_str(&self) -> &str {
        self.segment.name().as_str()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The event name (without domain).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks `id` against the channel's range; returns its index.
    pub fn index(&self, id: EventId) -> Result<usize> {
        if id.value() > self.layout.max_event_id {
            return Err(Error::EventIdOutOfRange {
                event: self.segment.name().to_string(),
                id: id.value(),
                max: self.layout.max_event_id,
            });
        }
        Ok(id.value() as usize)
    }

    fn at<T>(&self, offset: usize) -> &T {
        assert!(offset + size_of::<T>() <= self.layout.size, "event layout offset out of range");
        // SAFETY: the segment maps `layout.size` bytes (validated at open, or created so), the
        // range is inside (asserted), every offset the layout yields is aligned for its type,
        // and all types placed here are atomics or plain data valid for any bit pattern. The
        // reference lives no longer than `self`, which owns the mapping.
        unsafe { self.segment.base().add(offset).cast::<T>().as_ref() }
    }

    pub fn shared(&self) -> &Shared {
        self.at(Layout::shared_offset())
    }

    fn notifier_slot(&self, slot: usize) -> &NotifierSlot {
        self.at(self.layout.notifier_offset(slot))
    }

    pub fn listener(&self, slot: usize) -> ListenerRef<'_> {
        let offset = self.layout.listener_offset(slot);
        // Checks that the whole slot (up to the last counter) is inside the mapping.
        let _ = self.at::<AtomicU64>(offset + self.layout.counter_offset(self.layout.ids - 1));
        ListenerRef {
            // SAFETY: `offset` is inside the mapping (checked just above).
            base: unsafe { self.segment.base().add(offset) },
            layout: &self.layout,
            head: self.at(offset),
        }
    }

    fn slot_count(&self, role: Role) -> usize {
        match role {
            Role::Notifier => self.layout.max_notifiers,
            Role::Listener => self.layout.max_listeners,
        }
    }

    fn slot_state(
        &self,
        role: Role,
        slot: usize,
    ) -> (&std::sync::atomic::AtomicU32, &std::sync::atomic::AtomicU32) {
        match role {
            Role::Notifier => {
                let s = self.notifier_slot(slot);
                (&s.state, &s.generation)
            }
            Role::Listener => {
                let s = self.listener(slot).head;
                (&s.state, &s.generation)
            }
        }
    }

    fn slot_generation(&self, role: Role, slot: usize) -> &std::sync::atomic::AtomicU32 {
        self.slot_state(role, slot).1
    }

    fn slot_pid(&self, role: Role, slot: usize) -> &std::sync::atomic::AtomicU32 {
        match role {
            Role::Notifier => &self.notifier_slot(slot).pid,
            Role::Listener => &self.listener(slot).head.pid,
        }
    }

    /// State of listener slot `slot` as read now (validated by callers).
    pub fn listener_state(&self, slot: usize) -> (u32, u32) {
        let head = self.listener(slot).head;
        (head.state.load(Ordering::Acquire), head.generation.load(Ordering::Acquire))
    }
}
