//! Membership: who is in a shared object (a topic, an event channel), written once for all.
//!
//! A shared object's segment holds a *registry*: a fixed array of [`Member`] slots per role
//! (publishers and subscribers, notifiers and listeners). The protocol:
//!
//! * **Lock for membership changes.** Creating or replacing the segment, claiming a slot and
//!   leaving happen under the object's [`FileLock`] (`<domain>.lock.<object>`). Joins and leaves
//!   are rare; one lock keeps the protocol simple and makes a crash at any point recoverable:
//!   the OS drops the lock with the process.
//! * **Claim.** A joiner takes a slot that is free or whose holder is dead, marks it
//!   [`CLAIMING`], bumps its generation and takes the liveness [`Token`] named after role, slot
//!   and generation (`<object>.<letter><slot>.<generation>`, so a new holder never reuses the
//!   path of an old one's token, which a prober may be removing). It fills in its role's data
//!   and then [`activate`]s the slot. A claimer that dies half-way leaves a `CLAIMING` slot with
//!   a dead token, which the next claimer takes over.
//! * **Liveness** is the OS's word, never a pid: [`alive`] probes the token.
//! * **Reap.** Whoever finds a holder dead frees its slot ([`reap`]) and cleans what it left;
//!   the generation tells the old holder's leftovers from the new one's.
//! * **Replace a dead creator.** A segment left half-created (not marked ready, empty, or with a
//!   zeroed header) by a creator that died is found while holding the lock, which proves the
//!   creator gone: [`open_or_replace`] removes it so the caller creates a fresh one. A segment
//!   whose members are all dead is likewise replaced by the caller.
//! * **Replace a corrupt object.** A segment that fails validation (bad magic, layout version,
//!   kind or size, 0 bytes, truncated, a header no creator could have written: see
//!   [`is_corruption`]) has no registry to trust, so the decision is made on the liveness tokens
//!   that exist for the object ([`replace_corrupt`]): if no token named after the object
//!   (`<object>.<letter><slot>.<generation>`) is held by a live process, nobody can be using
//!   the segment and it is removed (with a `tracing` warning naming the problem) for the caller
//!   to create a fresh one; if one is held, or its liveness cannot be told, the segment may be
//!   in use and joining fails with [`Error::Corrupted`] naming the problem and the token.
//!   Checked under the lock, like everything here.
//! * **Bounded waits.** The lock is taken with a bounded wait ([`FileLock::lock`], failing with
//!   [`Error::LockTimeout`]). Leaving, which runs in `Drop`, waits at most [`LEAVE_WAIT`]
//!   ([`lock_to_leave`]): a member that cannot get the lock still frees its slot and drops its
//!   token (both atomic, and safe without the lock: a claimer only takes a slot whose token is
//!   not held), and leaves removing the segment to whoever comes next: the next joiner
//!   replaces a segment nobody alive uses, the next member to leave removes it, and `ipc clean`
//!   removes it too.
//! * **Leave.** A member frees its slot and drops its token under the lock; the last one out
//!   removes the segment and the lock file ([`remove_if_unused`]).
//!
//! Registry contents are *hints* for discovery, never proof: anyone joined can write them.
//! Decisions that hurt a peer (disconnecting a subscriber, switching to another publisher) are
//! made on the peer's own memory or its token, never on a registry word alone.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::liveness::{self, FileLock, Token};
use crate::segment::{Access, Segment, SegmentKind, SegmentName};

/// Slot is free.
pub(crate) const FREE: u32 = 0;
/// A process holding the lock is filling the slot in; seen by anyone else holding the lock, it
/// means that process died half-way.
pub(crate) const CLAIMING: u32 = 1;
/// In use.
pub(crate) const ACTIVE: u32 = 2;
/// In use, winding down (a publisher dropped with samples still out in other processes).
pub(crate) const CLOSING: u32 = 3;

/// The head of every registry slot.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Member {
    pub state: AtomicU32,
    pub generation: AtomicU32,
    pub pid: AtomicU32,
}

/// One kind of slot in a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Role {
    /// Letter in token names.
    pub letter: char,
    /// Plural noun for messages ("subscribers").
    pub plural: &'static str,
}

/// A shared object with a registry of members.
pub(crate) trait Registry {
    /// The domain the object lives in.
    fn domain(&self) -> &str;
    /// The object's name as used in lock and token names: `topic.<name>`, `event.<name>`.
    fn object(&self) -> &str;
    /// Number of slots of `role`.
    fn slots(&self, role: Role) -> u32;
    /// Slot `index` of `role`; `index < slots(role)`.
    fn member(&self, role: Role, index: u32) -> &Member;
    /// Every role of the registry.
    fn roles(&self) -> &'static [Role];
    /// The error for "every slot of `role` is taken".
    fn full(&self, role: Role) -> Error;
}

/// A claimed slot: [`activate`] it once its role's data is in place, or drop the claim.
#[derive(Debug)]
pub(crate) struct Claim {
    pub index: u32,
    pub generation: u32,
    pub token: Token,
    /// The generation of a dead holder this claim replaced (its leftovers need cleaning).
    pub replaced: Option<u32>,
    /// The slot's state when it was claimed: [`FREE`], or the state a dead holder left (an
    /// [`ACTIVE`] holder died as a member, a [`CLAIMING`] one half-way through joining).
    pub previous: u32,
}

/// A dead holder whose slot [`reap_dead`] freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dead {
    /// The state it left: [`ACTIVE`] (it died as a member), [`CLAIMING`] (half-way through
    /// joining), or anything a faulty peer wrote.
    pub state: u32,
    /// Its generation: which of the slot's holders left the leftovers.
    pub generation: u32,
}

/// The lock serialising membership changes of `object` in `domain` (a bounded wait:
/// [`Error::LockTimeout`] if another process holds it too long).
pub(crate) fn lock(domain: &str, object: &str) -> Result<FileLock> {
    FileLock::lock(domain, object)
}

/// How long leaving (in `Drop`) waits for the lock of the object it leaves. Long enough for
/// another member's join or leave to finish, short enough that a process holding the lock does
/// not hold up everyone's exit.
pub(crate) const LEAVE_WAIT: Duration = Duration::from_millis(250);

/// The lock of `object`, for leaving it: waits at most [`LEAVE_WAIT`]. `None` (logged) when
/// another process holds it longer or it cannot be taken: the caller skips what needs the lock
/// and leaves it to the next joiner, the next member to leave, or `ipc clean`.
pub(crate) fn lock_to_leave(domain: &str, object: &str) -> Option<FileLock> {
    match FileLock::lock_within(domain, object, LEAVE_WAIT) {
        Ok(lock) => Some(lock),
        Err(err) => {
            tracing::warn!(
                object,
                %err,
                "leaving without the lock: removing the segment, if nobody else uses it, is left to the next participant or `ipc clean`"
            );
            None
        }
    }
}

/// Whether `err`, from opening or validating a segment, means its contents are not a valid
/// object of this build (as opposed to "missing", "not ours to open" or an I/O failure).
pub(crate) fn is_corruption(err: &Error) -> bool {
    matches!(
        err,
        Error::WrongMagic { .. }
            | Error::WrongVersion { .. }
            | Error::WrongKind { .. }
            | Error::TooSmall { .. }
            | Error::Truncated { .. }
            | Error::NotReady { .. }
            | Error::Corrupted { .. }
    )
}

/// Whether lock-file name `name` (without the domain prefix) is a liveness token of a member
/// of `object` in one of `roles`: exactly `<object>.<letter><slot>.<generation>`.
fn is_token_of(name: &str, object: &str, roles: &[Role]) -> bool {
    let Some(rest) = name.strip_prefix(object).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    let mut chars = rest.chars();
    let Some(letter) = chars.next() else { return false };
    if !roles.iter().any(|r| r.letter == letter) {
        return false;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    chars
        .as_str()
        .split_once('.')
        .is_some_and(|(slot, generation)| digits(slot) && digits(generation))
}

/// The liveness tokens of `object`'s members (`roles`) that exist now, as lock-file names.
pub(crate) fn tokens(domain: &str, object: &str, roles: &[Role]) -> Result<Vec<String>> {
    Ok(liveness::list(domain)?.into_iter().filter(|t| is_token_of(t, object, roles)).collect())
}

/// Decides about a segment of `object` that failed validation with `problem` (see
/// [`is_corruption`]), under the object's lock: removes it and returns `Ok` if no token of the
/// object is held by a live process (dead tokens are removed on the way), so the caller creates
/// a fresh one; otherwise fails with [`Error::Corrupted`] naming the problem and the token that
/// may still be in use. The rule is the module's ("Replace a corrupt object").
pub(crate) fn replace_corrupt(
    domain: &str,
    object: &str,
    roles: &[Role],
    name: &SegmentName,
    problem: &Error,
) -> Result<()> {
    for token in tokens(domain, object, roles)? {
        let in_use = match liveness::is_alive(domain, &token) {
            Ok(false) => continue,
            Ok(true) => "is held by a live process".to_owned(),
            Err(err) => format!("cannot be probed ({err})"),
        };
        return Err(Error::Corrupted {
            what: format!(
                "`{object}` is corrupt ({problem}); not replaced, as it may still be in use: liveness token `{token}` {in_use}"
            ),
        });
    }
    tracing::warn!(segment = %name, "replacing corrupt `{object}` (no live process uses it): {problem}");
    unlink(name);
    Ok(())
}

/// Name of the liveness token of slot `index` of `role` at `generation`.
pub(crate) fn token_name(object: &str, role: Role, index: u32, generation: u32) -> String {
    format!("{object}.{}{index}.{generation}", role.letter)
}

/// Whether the holder of slot `index` of `role` at `generation` is alive. A probe that fails is
/// logged and answered "alive": wrongly reaping a live member is worse than keeping a dead one.
/// A token that is not ours (another user's, a link: see `crate::trust`) is not alive: no member
/// of ours can hold it, since [`Token::acquire`] refuses such files.
pub(crate) fn alive(reg: &impl Registry, role: Role, index: u32, generation: u32) -> bool {
    let token = token_name(reg.object(), role, index, generation);
    match liveness::is_alive(reg.domain(), &token) {
        Ok(alive) => alive,
        Err(err @ Error::UntrustedObject { .. }) => {
            tracing::warn!(object = reg.object(), %err, "a member's token is not ours; not alive");
            false
        }
        Err(err) => {
            tracing::warn!(object = reg.object(), %err, "liveness probe failed; assuming alive");
            true
        }
    }
}

/// Claims a slot of `role` that is free or whose holder is dead. Call with the lock held.
pub(crate) fn claim(reg: &impl Registry, role: Role) -> Result<Claim> {
    for index in 0..reg.slots(role) {
        let member = reg.member(role, index);
        let state = member.state.load(Ordering::Acquire);
        let generation = member.generation.load(Ordering::Acquire);
        if state != FREE && alive(reg, role, index, generation) {
            continue;
        }
        if member
            .state
            .compare_exchange(state, CLAIMING, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        let next = generation.wrapping_add(1).max(1);
        let token = match Token::acquire(reg.domain(), &token_name(reg.object(), role, index, next))
        {
            Ok(token) => token,
            Err(Error::TokenHeld { token }) => {
                // A live process holds this slot's next generation: the registry was
                // overwritten under it. Give the slot back to that holder.
                tracing::warn!(
                    object = reg.object(),
                    "{} slot {index} reads as takeable but `{token}` is held; skipped",
                    role.plural
                );
                member.state.store(ACTIVE, Ordering::Release);
                continue;
            }
            Err(err) => {
                member.state.store(state, Ordering::Release);
                return Err(err);
            }
        };
        member.generation.store(next, Ordering::Release);
        member.pid.store(std::process::id(), Ordering::Relaxed);
        let replaced = (state != FREE).then_some(generation);
        return Ok(Claim { index, generation: next, token, replaced, previous: state });
    }
    Err(reg.full(role))
}

/// Marks a claimed slot in use.
pub(crate) fn activate(reg: &impl Registry, role: Role, index: u32) {
    reg.member(role, index).state.store(ACTIVE, Ordering::Release);
}

/// Gives up a claim or a membership: frees the slot (the token goes with the caller's value).
pub(crate) fn release(reg: &impl Registry, role: Role, index: u32) {
    reg.member(role, index).state.store(FREE, Ordering::Release);
}

/// Frees slot `index` of `role` if its holder is dead; returns the dead holder's generation
/// (its leftovers are the caller's to clean). Callers hold the lock, or accept that a claimer
/// may be filling the slot in (a `CLAIMING` slot with a live token is never reaped).
pub(crate) fn reap(reg: &impl Registry, role: Role, index: u32) -> Option<u32> {
    reap_dead(reg, role, index).map(|dead| dead.generation)
}

/// Like [`reap`], also telling the state the dead holder left (callers that count deaths tell
/// a member that died from a joiner that died half-way).
pub(crate) fn reap_dead(reg: &impl Registry, role: Role, index: u32) -> Option<Dead> {
    let member = reg.member(role, index);
    let state = member.state.load(Ordering::Acquire);
    let generation = member.generation.load(Ordering::Acquire);
    if state == FREE || alive(reg, role, index, generation) {
        return None;
    }
    member
        .state
        .compare_exchange(state, FREE, Ordering::AcqRel, Ordering::Relaxed)
        .ok()
        .map(|_| Dead { state, generation })
}

/// Whether any slot is held by a live process. Dead holders' tokens are removed as a side
/// effect; their slots are left to [`reap`].
pub(crate) fn anyone_alive(reg: &impl Registry) -> bool {
    reg.roles().iter().any(|&role| {
        (0..reg.slots(role)).any(|index| {
            let member = reg.member(role, index);
            member.state.load(Ordering::Acquire) != FREE
                && alive(reg, role, index, member.generation.load(Ordering::Acquire))
        })
    })
}

/// Whether any slot is not free.
pub(crate) fn in_use(reg: &impl Registry) -> bool {
    reg.roles().iter().any(|&role| {
        (0..reg.slots(role))
            .any(|index| reg.member(role, index).state.load(Ordering::Acquire) != FREE)
    })
}

/// Opens segment `name` of `object` under the object's lock. A missing one is `Ok(None)`, and
/// so is one that fails validation but that no live member uses ([`replace_corrupt`] removes
/// it): the caller creates a fresh one. A segment its creator left half-made (not ready, empty,
/// zeroed header: we hold the lock, and creators hold it until the segment is ready) is the
/// commonest case; its creator had no token yet.
pub(crate) fn open_or_replace(
    name: &SegmentName,
    kind: SegmentKind,
    domain: &str,
    object: &str,
    roles: &[Role],
) -> Result<Option<Segment>> {
    match Segment::open(name, kind, Access::ReadWrite) {
        Ok(segment) => Ok(Some(segment)),
        Err(Error::SegmentNotFound { .. }) => Ok(None),
        Err(err) if is_corruption(&err) => {
            replace_corrupt(domain, object, roles, name, &err)?;
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Removes segment `name`, logging anything but "not found".
pub(crate) fn unlink(name: &SegmentName) {
    match Segment::unlink(name) {
        Ok(()) | Err(Error::SegmentNotFound { .. }) => {}
        Err(err) => tracing::error!(segment = %name, %err, "removing a segment"),
    }
}

/// Under the lock (consumed): removes `segment`'s name and the lock file if no slot is in use,
/// but only while the name still refers to `segment` (a newer incarnation may have replaced
/// it). Returns whether it removed anything.
pub(crate) fn remove_if_unused(
    reg: &impl Registry,
    segment: &Segment,
    kind: SegmentKind,
    lock: FileLock,
) -> bool {
    if in_use(reg) {
        return false;
    }
    match Segment::open(segment.name(), kind, Access::ReadOnly) {
        Ok(current) if current.id() == segment.id() => {
            unlink(segment.name());
            lock.remove();
            true
        }
        Err(Error::SegmentNotFound { .. }) => {
            lock.remove();
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Role = Role { letter: 'p', plural: "publishers" };
    const S: Role = Role { letter: 's', plural: "subscribers" };

    #[test]
    fn token_names_are_matched_exactly() {
        let roles = [P, S];
        assert!(is_token_of("topic.t.p0.1", "topic.t", &roles));
        assert!(is_token_of("topic.t.s12.4000000000", "topic.t", &roles));
        assert!(is_token_of(&token_name("topic.t", S, 3, 7), "topic.t", &roles));
        // The object's lock file, other roles, other objects, and tokens of a topic whose
        // name extends this one's are not this object's tokens.
        assert!(!is_token_of("topic.t", "topic.t", &roles));
        assert!(!is_token_of("topic.t.l0.1", "topic.t", &roles));
        assert!(!is_token_of("topic.tx.p0.1", "topic.t", &roles));
        assert!(!is_token_of("topic.t.p0.s1.2", "topic.t", &roles));
        assert!(!is_token_of("topic.t.p.1", "topic.t", &roles));
        assert!(!is_token_of("topic.t.p0.", "topic.t", &roles));
        assert!(!is_token_of("topic.t.p0.1x", "topic.t", &roles));
    }
}
