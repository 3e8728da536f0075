//! One pipe as a participant sees it: the control segment and the ring, mapped and checked;
//! joining as the writer or the reader, and leaving.
//!
//! Membership follows [`crate::membership`] like topics and event channels: the pipe's lock
//! (`<domain>.lock.pipe.<name>`), one slot per role recording its holder's process token and
//! generation, a segment left half-made or with only dead members replaced, the last one out
//! removing the segments and the lock file.

use std::fmt;
use std::io;
use std::mem::size_of;
use std::sync::atomic::Ordering;

use super::layout::{CONFIG_OFFSET, CONTROL_OFFSET, CONTROL_SIZE, Config, Control, check_capacity};
use crate::domain;
use crate::error::{Error, Result};
use crate::liveness::{self, Probe};
use crate::membership::{self, ACTIVE, FREE, Member, Presence, Registry, Role};
use crate::segment::mirror::Mirror;
use crate::segment::{Segment, SegmentKind, SegmentName};
use crate::wait::{DefaultBackend, WaitBackend};

/// Longest pipe name (room is needed for lock and token suffixes).
pub const MAX_PIPE_NAME_LEN: usize = 80;

/// The writer's slot.
pub(crate) const WRITER: Role = Role { letter: 'w', plural: "writers" };
/// The reader's slot.
pub(crate) const READER: Role = Role { letter: 'r', plural: "readers" };

/// Options of a pipe; `None` means "whatever the pipe has, or the default when creating".
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub domain: Option<String>,
    pub capacity: Option<usize>,
}

/// A joined pipe.
pub(crate) struct Channel {
    domain: String,
    /// `pipe.<encoded name>`: the lock's name and the prefix of token names.
    object: String,
    segment: Segment,
    ring: Mirror,
    ring_name: String,
    capacity: usize,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("segment", &self.segment.name().as_str())
            .field("capacity", &self.capacity)
            .field("mirrored", &self.ring.is_mirrored())
            .finish()
    }
}

/// A claimed role, given back by [`Channel::leave`].
#[derive(Debug)]
pub(crate) struct Membership {
    pub role: Role,
    pub generation: u32,
    token: Option<Presence>,
}

fn role_word(role: Role) -> &'static str {
    if role == WRITER { "writer" } else { "reader" }
}

impl Registry for Channel {
    fn domain(&self) -> &str {
        &self.domain
    }
    fn object(&self) -> &str {
        &self.object
    }
    fn slots(&self, _role: Role) -> u32 {
        1
    }
    fn member(&self, role: Role, _index: u32) -> &Member {
        let control = self.control();
        if role == WRITER { &control.writer.0 } else { &control.reader.0 }
    }
    fn roles(&self) -> &'static [Role] {
        &[WRITER, READER]
    }
    fn full(&self, role: Role) -> Error {
        Error::PipeBusy {
            pipe: self.segment.name().to_string(),
            role: role_word(role),
            pid: self.member(role, 0).pid.load(Ordering::Relaxed),
        }
    }
}

fn validate_name(name: &str) -> Result<()> {
    domain::validate(name, "pipe")?;
    if name.len() > MAX_PIPE_NAME_LEN {
        return Err(Error::InvalidName {
            what: "pipe",
            name: name.to_owned(),
            reason: "is longer than 80 bytes (room is needed for lock and token suffixes)",
        });
    }
    Ok(())
}

impl Channel {
    /// Joins pipe `name` as `role`, creating or replacing its segments when needed.
    pub fn join(name: &str, options: &Options, role: Role) -> Result<(Channel, Membership)> {
        validate_name(name)?;
        if let Some(capacity) = options.capacity {
            check_capacity(capacity)?;
        }
        let domain = match &options.domain {
            Some(d) => {
                domain::validate_domain(d)?;
                d.clone()
            }
            None => domain::current().to_owned(),
        };
        let object = format!("pipe.{}", domain::encode_name(name));
        let lock = membership::lock(&domain, &object)?;
        let seg_name = SegmentName::new(&domain, SegmentKind::Pipe, name)?;
        let opened =
            Self::open_existing(&domain, &object, &seg_name).and_then(|existing| match existing {
                Some(channel) => Ok(channel),
                None => Self::create(&domain, &object, &seg_name, options),
            });
        let channel = match opened {
            Ok(channel) => channel,
            Err(err) => {
                lock.remove();
                return Err(err);
            }
        };
        if let Some(requested) = options.capacity
            && requested != channel.capacity
        {
            let err = Error::InvalidOption {
                option: "capacity",
                reason: format!(
                    "pipe `{seg_name}` exists with a capacity of {} bytes; {requested} requested",
                    channel.capacity
                ),
            };
            channel.remove_if_unused(lock);
            return Err(err);
        }
        match channel.claim(role) {
            Ok(joined) => Ok((channel, joined)),
            Err(err) => {
                channel.remove_if_unused(lock);
                Err(err)
            }
        }
    }

    fn ring_name(seg_name: &SegmentName) -> String {
        format!("{seg_name}.ring")
    }

    /// Opens the pipe if live participants use it; removes a half-made, corrupt-and-unused or
    /// abandoned one (the caller creates a fresh one). Under the lock.
    fn open_existing(
        domain: &str,
        object: &str,
        seg_name: &SegmentName,
    ) -> Result<Option<Channel>> {
        let roles = &[WRITER, READER];
        let ring_name = Self::ring_name(seg_name);
        let Some(segment) =
            membership::open_or_replace(seg_name, SegmentKind::Pipe, domain, object, roles)?
        else {
            return Ok(None);
        };
        let read_config = || {
            if segment.len() < CONFIG_OFFSET + size_of::<Config>() {
                return Err(Error::Corrupted {
                    what: format!("pipe `{seg_name}` is too small for its config"),
                });
            }
            // SAFETY: the mapping holds the config (checked above) at a 64-aligned offset, and
            // Config is plain data valid for any bits. A volatile copy: a peer may be writing
            // garbage into it right now.
            let config = unsafe {
                std::ptr::read_volatile(segment.base().as_ptr().add(CONFIG_OFFSET).cast::<Config>())
            };
            let capacity = config.check(seg_name.as_str(), segment.len())?;
            if config.backend_id != DefaultBackend::ID {
                return Err(Error::InvalidOption {
                    option: "wait backend",
                    reason: format!(
                        "pipe `{seg_name}` uses the `{}` wait backend (id {}); this build uses `{}` (id {})",
                        config.backend_name(),
                        config.backend_id,
                        DefaultBackend::NAME,
                        DefaultBackend::ID
                    ),
                });
            }
            Ok(capacity)
        };
        let capacity = match read_config() {
            Ok(capacity) => capacity,
            Err(err) if membership::is_corruption(&err) => {
                membership::replace_corrupt(domain, object, roles, seg_name, &err)?;
                let _ = Mirror::unlink(&ring_name);
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let ring = match Mirror::open(&ring_name, capacity) {
            Ok(ring) => ring,
            Err(err) => {
                // Without its ring the control segment is useless; replace both if unused.
                let problem = Error::Corrupted {
                    what: format!(
                        "pipe `{seg_name}`: its ring `{ring_name}` cannot be used: {err}"
                    ),
                };
                membership::replace_corrupt(domain, object, roles, seg_name, &problem)?;
                let _ = Mirror::unlink(&ring_name);
                return Ok(None);
            }
        };
        let channel = Channel {
            domain: domain.to_owned(),
            object: object.to_owned(),
            segment,
            ring,
            ring_name,
            capacity,
        };
        channel.reap();
        if !membership::in_use(&channel) {
            tracing::debug!("replacing pipe `{seg_name}`: both sides are gone");
            membership::unlink(seg_name);
            let _ = Mirror::unlink(&channel.ring_name);
            return Ok(None);
        }
        Ok(Some(channel))
    }

    fn create(
        domain: &str,
        object: &str,
        seg_name: &SegmentName,
        options: &Options,
    ) -> Result<Channel> {
        let capacity = options.capacity.unwrap_or(super::DEFAULT_CAPACITY);
        let ring_name = Self::ring_name(seg_name);
        // A ring whose control segment is gone is a leftover (we hold the lock).
        let _ = Mirror::unlink(&ring_name);
        let ring = Mirror::create(&ring_name, capacity).map_err(|err| {
            Error::io(format!("creating the ring of pipe `{seg_name}` ({capacity} bytes)"), err)
        })?;
        let config = Config::new(capacity, DefaultBackend::ID, DefaultBackend::NAME);
        let created = Segment::create_with(
            crate::segment::platform(),
            seg_name,
            SegmentKind::Pipe,
            CONTROL_SIZE,
            |seg| {
                // SAFETY: the segment was just created exclusively, is writable and
                // CONTROL_SIZE bytes long, which covers the config at its 64-aligned offset;
                // nobody else sees it before it is marked ready.
                unsafe { seg.base().as_ptr().add(CONFIG_OFFSET).cast::<Config>().write(config) };
            },
        );
        let segment = match created {
            Ok(segment) => segment,
            Err(err) => {
                let _ = Mirror::unlink(&ring_name);
                return Err(err);
            }
        };
        Ok(Channel {
            domain: domain.to_owned(),
            object: object.to_owned(),
            segment,
            ring,
            ring_name,
            capacity,
        })
    }

    /// Claims `role`. Under the lock. A role whose previous holder came and went while the
    /// other side stayed is refused: the stream it belonged to is over.
    fn claim(&self, role: Role) -> Result<Membership> {
        let claim = membership::claim(self, role)?;
        let status = &self.control().status.0;
        let (joined, reason) = if role == WRITER {
            (&status.writer_joined, "its writer has gone and the reader still reads that stream")
        } else {
            (&status.reader_joined, "its reader has gone and the writer still holds that stream")
        };
        if joined.load(Ordering::Acquire) != 0 {
            membership::release(self, role, 0);
            return Err(Error::PipeClosed {
                pipe: self.segment.name().to_string(),
                role: role_word(role),
                reason,
            });
        }
        if let Some(generation) = claim.replaced {
            self.bury(role, generation);
        }
        joined.store(1, Ordering::Release);
        membership::activate(self, role, 0);
        Ok(Membership { role, generation: claim.generation, token: Some(claim.token) })
    }

    /// Leaves: frees the role and removes the pipe when nobody is left. Runs in `Drop`.
    pub fn leave(&self, joined: &mut Membership) {
        let lock = membership::lock_to_leave(&self.domain, &self.object);
        membership::release(self, joined.role, 0);
        drop(joined.token.take());
        if let Some(lock) = lock {
            self.reap();
            self.remove_if_unused(lock);
        }
    }

    fn remove_if_unused(&self, lock: crate::liveness::FileLock) {
        if membership::remove_if_unused(self, &self.segment, SegmentKind::Pipe, lock) {
            let _ = Mirror::unlink(&self.ring_name);
        }
    }

    /// Frees the slot of a participant that died. Under the lock.
    fn reap(&self) {
        for &role in self.roles() {
            if let Some(generation) = membership::reap(self, role, 0) {
                self.bury(role, generation);
            }
        }
    }

    fn bury(&self, role: Role, generation: u32) {
        if let Err(err) = DefaultBackend::cleanup(&self.wait_channel(role, generation)) {
            tracing::warn!("pipe `{}`: {err}", self.segment.name());
        }
        tracing::debug!("pipe `{}`: reaped its dead {}", self.segment.name(), role_word(role));
    }

    /// Whether the other side of `me` is gone for good: it left, or its process died (its
    /// token no longer held). False while it has not joined yet. Probes change nothing.
    pub fn peer_gone(&self, me: Role) -> bool {
        let peer = if me == WRITER { READER } else { WRITER };
        let status = &self.control().status.0;
        let (joined, closed) = if peer == WRITER {
            (&status.writer_joined, &status.writer_closed)
        } else {
            (&status.reader_joined, &status.reader_closed)
        };
        if closed.load(Ordering::Acquire) != 0 {
            return true;
        }
        if joined.load(Ordering::Acquire) == 0 {
            return false;
        }
        let member = self.member(peer, 0);
        let state = member.state.load(Ordering::Acquire);
        if state == FREE {
            return true;
        }
        if state != ACTIVE {
            return false;
        }
        matches!(
            liveness::probe_process(&self.domain, member.token()),
            Ok(Probe::Dead | Probe::Missing)
        )
    }

    /// The wait channel of `role`'s holder at `generation`.
    pub fn wait_channel(&self, role: Role, generation: u32) -> String {
        format!("{}.{}.{}{generation}", self.domain, self.object, role.letter)
    }

    /// Generation of the current holder of `role` (as recorded; used only in channel names).
    pub fn generation(&self, role: Role) -> u32 {
        self.member(role, 0).generation.load(Ordering::Acquire)
    }

    pub fn control(&self) -> &Control {
        // SAFETY: the segment is CONTROL_SIZE bytes (created so, or checked by
        // `Config::check`), which holds `Control` at CONTROL_OFFSET (asserted in `layout`);
        // the base is page-aligned, so the offset is 128-aligned; Control is all atomics,
        // valid for any bits. The reference lives no longer than `self`, owning the mapping.
        unsafe { self.segment.base().add(CONTROL_OFFSET).cast::<Control>().as_ref() }
    }

    pub fn ring(&self) -> &Mirror {
        &self.ring
    }

    pub fn capacity(&self) -> usize {
        debug_assert_eq!(self.ring.len(), self.capacity);
        self.capacity
    }

    /// Full name of the control segment, for messages.
    pub fn name(&self) -> &str {
        self.segment.name().as_str()
    }

    /// An `InvalidData` error naming the pipe.
    pub fn corrupt(&self, what: impl fmt::Display) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("pipe `{}`: {what}", self.name()))
    }

    /// Whether a peer truncated the control segment or the ring under us.
    pub fn truncated(&self) -> bool {
        self.segment.was_truncated() || self.ring.was_truncated()
    }
}
