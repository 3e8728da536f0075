//! One event channel as a participant sees it: the mapped, validated segment, joining and
//! leaving it, and cleaning up after participants that died.
//!
//! The membership protocol is [`crate::membership`]'s, written once for topics and event
//! channels, and [`Channel`] is its [`Registry`] (notifier and listener slots): the channel's
//! lock (`<domain>.lock.event.<name>`), claiming a slot under it, generations, the process
//! token each slot records (its holder's process's, shared by all of that process's
//! participants), reaping slots whose token is no longer held, replacing a segment left
//! half-created by a creator that died, and removal of the segment and the lock file by the
//! last one out.
//!
//! What stays here is what is particular to events:
//!
//! * the `prepare` step of [`Channel::join`], run under the lock after a slot was claimed and
//!   before it is activated (a listener resets its slot and creates its waiter there);
//! * the epochs and counters in [`Shared`] that tell the other participants who came and went
//!   (`listener_epoch`, `notifier_epoch`, `notifier_joins`, `notifier_deaths`);
//! * what a dead participant leaves: a dead listener's wait channel (the backend's cleanup), and
//!   the hint bits a notifier killed mid-notify did not set (restored after reaping it);
//! * replacing a channel whose participants are all dead, and the
//!   [`EventFull`](Error::EventFull) error (through [`Registry::full`]).
//!
//! Every change to who is in the channel, and every token probe, happens under the lock.
//! Notifying and taking events never take it.

use std::fmt;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::EventId;
use super::layout::{Config, Layout, ListenerHead, NotifierSlot, Shared};
use crate::domain;
use crate::error::{Error, Result};
use crate::liveness::FileLock;
use crate::membership::{self, ACTIVE, CLAIMING, Dead, FREE, Member, Presence, Registry, Role};
use crate::segment::{Segment, SegmentKind, SegmentName};
use crate::wait::{WaitBackend, WaitWord};

/// Longest event name: derived lock and token names (`event.<name>.l1023.<generation>`) must
/// stay within the limit for composed names ([`domain::MAX_NAME_LEN`] plus room for suffixes).
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
/// # ipc_runtime::domain::set_current(&format!("doc-default-max-{}", std::process::id())).unwrap();
/// let name = "alarms";
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

/// Notifier slots of a channel.
pub(crate) const NOTIFIER: Role = Role { letter: 'n', plural: "notifiers" };
/// Listener slots of a channel.
pub(crate) const LISTENER: Role = Role { letter: 'l', plural: "listeners" };

/// A participant's claim on a slot, released by [`Channel::leave`].
#[derive(Debug)]
pub(crate) struct Membership {
    pub role: Role,
    pub slot: usize,
    token: Option<Presence>,
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
    /// `event.<name>`: the lock's name and the prefix of token names.
    object: String,
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
            what: "event",
            name: name.to_owned(),
            reason: "is longer than 80 bytes (room is needed for lock and token suffixes)",
        });
    }
    Ok(())
}

/// The channel's name in lock and token names: `event.<encoded name>` (see [`crate::domain`]).
fn object_name(name: &str) -> String {
    format!("event.{}", domain::encode_name(name))
}

impl Registry for Channel {
    fn domain(&self) -> &str {
        &self.domain
    }

    fn object(&self) -> &str {
        &self.object
    }

    fn slots(&self, role: Role) -> u32 {
        // At most `MAX_PARTICIPANTS_LIMIT` (checked by `Layout::new`).
        if role == NOTIFIER {
            self.layout.max_notifiers as u32
        } else {
            self.layout.max_listeners as u32
        }
    }

    fn member(&self, role: Role, index: u32) -> &Member {
        if role == NOTIFIER {
            &self.notifier_slot(index as usize).member
        } else {
            &self.listener(index as usize).head.member
        }
    }

    fn roles(&self) -> &'static [Role] {
        &[NOTIFIER, LISTENER]
    }

    fn full(&self, role: Role) -> Error {
        Error::EventFull {
            event: self.segment.name().to_string(),
            role: role.plural,
            max: self.slots(role),
        }
    }
}

/// Reads and checks the config of event segment `segment` (named `seg_name`).
fn read_config(seg_name: &SegmentName, segment: &Segment) -> Result<(Layout, Config)> {
    let config_ptr = segment.base().as_ptr().wrapping_add(Layout::config_offset());
    if segment.len() < Layout::config_offset() + size_of::<Config>() {
        return Err(Error::Corrupted {
            what: format!("event segment `{seg_name}` is too small for its config"),
        });
    }
    // SAFETY: the mapping is at least config_offset + size_of::<Config>() bytes (checked
    // above), the offset is 64-aligned, and Config is plain data valid for any bits. A volatile
    // copy: another process may be writing garbage right now.
    let config = unsafe { std::ptr::read_volatile(config_ptr.cast::<Config>()) };
    let layout = Layout::from_config(seg_name.as_str(), &config, segment.len())?;
    Ok((layout, config))
}

/// For tools: how many occupied slots of event channel `name` in `domain` have a holder whose
/// process token is held, and how many one whose token is not (a token that is not ours to
/// judge counts as neither). Reads without changing anything.
pub(crate) fn holders(domain: &str, name: &str) -> Result<(usize, usize)> {
    let seg_name = Channel::segment_name(domain, name)?;
    let segment = Segment::open(&seg_name, SegmentKind::Event, crate::segment::Access::ReadOnly)?;
    let (layout, config) = read_config(&seg_name, &segment)?;
    let channel = Channel {
        domain: domain.to_owned(),
        name: name.to_owned(),
        object: object_name(name),
        segment,
        layout,
        backend_name: String::from_utf8_lossy(&config.backend_name).into_owned(),
    };
    let (mut alive, mut dead) = (0, 0);
    for &role in channel.roles() {
        for index in 0..channel.slots(role) {
            if channel.member(role, index).state.load(Ordering::Acquire) == FREE {
                continue;
            }
            match membership::probe_holder(&channel, role, index) {
                crate::liveness::Probe::Alive => alive += 1,
                crate::liveness::Probe::Dead | crate::liveness::Probe::Missing => dead += 1,
                crate::liveness::Probe::Unknown => {}
            }
        }
    }
    Ok((alive, dead))
}

/// For tools, with the channel's lock held: removes an event segment that failed validation
/// with `problem` if nobody can be using it, else fails naming the problem (the rule of
/// [`membership::replace_corrupt`]).
pub(crate) fn remove_corrupt(domain: &str, name: &str, problem: &Error) -> Result<()> {
    let seg_name = Channel::segment_name(domain, name)?;
    membership::replace_corrupt(
        domain,
        &object_name(name),
        &[NOTIFIER, LISTENER],
        &seg_name,
        problem,
    )
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
                domain::validate_domain(d)?;
                d.clone()
            }
            None => domain::current().to_owned(),
        };
        let lock = membership::lock(&domain, &object_name(name))?;
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
        match channel.claim::<B, T>(role, prepare) {
            Ok((joined, value)) => Ok((channel, joined, value)),
            Err(err) => {
                membership::remove_if_unused(&channel, &channel.segment, SegmentKind::Event, lock);
                Err(err)
            }
        }
    }

    fn segment_name(domain: &str, name: &str) -> Result<SegmentName> {
        SegmentName::new(domain, SegmentKind::Event, name)
    }

    /// Opens the segment if one exists that live participants use. A segment left by a creator
    /// that died, a corrupt one no live process holds a token of
    /// ([`membership::open_or_replace`], [`membership::replace_corrupt`]), or one whose
    /// participants are all dead, is removed (the caller creates a fresh one); a corrupt one
    /// that may be in use is an error. Must be called under the channel lock. Compatibility is
    /// checked by the caller.
    fn open_existing<B: WaitBackend>(domain: &str, name: &str) -> Result<Option<Channel>> {
        let seg_name = Self::segment_name(domain, name)?;
        let object = object_name(name);
        let roles = &[NOTIFIER, LISTENER];
        let Some(segment) =
            membership::open_or_replace(&seg_name, SegmentKind::Event, domain, &object, roles)?
        else {
            return Ok(None);
        };
        let (layout, config) = match read_config(&seg_name, &segment) {
            Ok(found) => found,
            Err(err) if membership::is_corruption(&err) => {
                membership::replace_corrupt(domain, &object, roles, &seg_name, &err)?;
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let backend_name =
            String::from_utf8_lossy(&config.backend_name).trim_end_matches('\0').to_owned();
        let channel = Channel {
            domain: domain.to_owned(),
            name: name.to_owned(),
            object,
            segment,
            layout,
            backend_name,
        };
        channel.reap::<B>();
        if !membership::in_use(&channel) {
            tracing::debug!("replacing event segment `{seg_name}`: every participant is gone");
            membership::unlink(&seg_name);
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
            object: object_name(name),
            segment,
            layout,
            backend_name: B::NAME.to_owned(),
        })
    }

    /// Claims a slot of `role` ([`membership::claim`]), runs `prepare` on it and activates it.
    /// Under the lock.
    fn claim<B: WaitBackend, T>(
        &self,
        role: Role,
        prepare: impl FnOnce(&Channel, usize, u32) -> Result<T>,
    ) -> Result<(Membership, T)> {
        let claim = membership::claim(self, role)?;
        if let Some(generation) = claim.replaced {
            // Its holder died after this join's reap: clean up after it as a reap would.
            let mut reaped = Reaped::default();
            let dead = Dead { state: claim.previous, generation };
            self.bury::<B>(role, claim.index, dead, &mut reaped);
            if reaped.notifiers > 0 {
                self.repair_hints();
            }
        }
        let slot = claim.index as usize;
        let value = match prepare(self, slot, claim.generation) {
            Ok(value) => value,
            Err(err) => {
                membership::release(self, role, claim.index);
                drop(claim.token);
                return Err(err);
            }
        };
        membership::activate(self, role, claim.index);
        let shared = self.shared();
        if role == LISTENER {
            shared.listener_epoch.fetch_add(1, Ordering::SeqCst);
        } else {
            shared.notifier_joins.fetch_add(1, Ordering::SeqCst);
            shared.notifier_epoch.fetch_add(1, Ordering::SeqCst);
        }
        Ok((Membership { role, slot, token: Some(claim.token) }, value))
    }

    /// Leaves: frees the slot, reaps the dead, and removes the segment and the lock file when
    /// nobody is left. Errors are logged (this runs in `Drop`). Waits for the lock only briefly
    /// ([`membership::lock_to_leave`]): without it, the slot is still freed and the token
    /// dropped, and reaping and removal are left to the next participant or `ipc clean`.
    pub fn leave<B: WaitBackend>(&self, joined: &mut Membership) {
        let lock = membership::lock_to_leave(&self.domain, &self.object);
        membership::release(self, joined.role, joined.slot as u32);
        let shared = self.shared();
        if joined.role == LISTENER {
            shared.listener_epoch.fetch_add(1, Ordering::SeqCst);
        } else {
            shared.notifier_epoch.fetch_add(1, Ordering::SeqCst);
        }
        // Release the token while holding the lock (if we have it).
        drop(joined.token.take());
        if let Some(lock) = lock {
            self.reap::<B>();
            membership::remove_if_unused(self, &self.segment, SegmentKind::Event, lock);
        }
    }

    /// Takes the channel lock (for probes).
    pub fn lock(&self) -> Result<FileLock> {
        membership::lock(&self.domain, &self.object)
    }

    /// Frees the slots of participants that died ([`membership::reap_dead`]) and cleans up after
    /// them. Must be called under the channel lock.
    pub fn reap<B: WaitBackend>(&self) -> Reaped {
        let mut reaped = Reaped::default();
        let mut probes = membership::Probes::default();
        for &role in self.roles() {
            for index in 0..self.slots(role) {
                if let Some(dead) = membership::reap_dead(self, role, index, &mut probes) {
                    self.bury::<B>(role, index, dead, &mut reaped);
                    continue;
                }
                let state = self.member(role, index).state.load(Ordering::Acquire);
                if state != FREE && state != ACTIVE {
                    tracing::warn!(
                        "event `{}`: {} slot {index} has state {state} but a live holder",
                        self.segment.name(),
                        role.plural
                    );
                }
            }
        }
        if reaped.notifiers > 0 {
            self.repair_hints();
        }
        reaped
    }

    /// What follows freeing the slot of a participant that died: counting it, telling the
    /// others (epochs) and removing a dead listener's wait channel.
    fn bury<B: WaitBackend>(&self, role: Role, index: u32, dead: Dead, reaped: &mut Reaped) {
        if dead.state != ACTIVE && dead.state != CLAIMING {
            tracing::warn!(
                "event `{}`: {} slot {index} had invalid state {}; freed",
                self.segment.name(),
                role.plural,
                dead.state
            );
        }
        let shared = self.shared();
        if role == NOTIFIER {
            // A notifier that died while joining never was one: not a death to report.
            if dead.state == ACTIVE {
                reaped.notifiers += 1;
                shared.notifier_deaths.fetch_add(1, Ordering::SeqCst);
            }
            shared.notifier_epoch.fetch_add(1, Ordering::SeqCst);
        } else {
            reaped.listeners += 1;
            let channel = self.listener_channel(index as usize, dead.generation);
            if let Err(err) = B::cleanup(&channel) {
                tracing::warn!("event `{}`: {err}", self.segment.name());
            }
            shared.listener_epoch.fetch_add(1, Ordering::SeqCst);
        }
        tracing::debug!(
            "event `{}`: reaped dead {} slot {index}",
            self.segment.name(),
            role.plural
        );
    }

    /// Sets the hint bit of every id with a non-zero counter in every active listener slot.
    /// A notifier killed between incrementing a counter and setting its bit leaves an event
    /// no scan would find; this finds it. Called after reaping dead notifiers.
    fn repair_hints(&self) {
        for slot in 0..self.layout.max_listeners {
            let view = self.listener(slot);
            if view.head.member.state.load(Ordering::Acquire) != ACTIVE {
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

    /// Number of active slots of `role`. Under the lock, after a reap: the live ones.
    pub fn active(&self, role: Role) -> usize {
        (0..self.slots(role))
            .filter(|&index| self.member(role, index).state.load(Ordering::Acquire) == ACTIVE)
            .count()
    }

    /// The wait channel of listener slot `slot` in generation `generation`.
    pub fn listener_channel(&self, slot: usize, generation: u32) -> String {
        format!("{}.event.{}.l{slot}.{generation}", self.domain, domain::encode_name(&self.name))
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

    /// State of listener slot `slot` as read now (validated by callers).
    pub fn listener_state(&self, slot: usize) -> (u32, u32) {
        let member = &self.listener(slot).head.member;
        (member.state.load(Ordering::Acquire), member.generation.load(Ordering::Acquire))
    }
}
