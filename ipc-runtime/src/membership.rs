//! Membership: who is in a shared object (a topic, an event channel, a pipe), written once for
//! all.
//!
//! A shared object's segment holds a *registry*: a fixed array of [`Member`] slots per role
//! (publishers and subscribers, notifiers and listeners, writer and reader). A slot records its
//! state, its generation and its holder's *process token* id (pid and nonce, see
//! [`ProcessToken`]). The protocol:
//!
//! * **One token per process.** Liveness is the OS's word, never a pid: every process holds one
//!   [`ProcessToken`] per domain (`<domain>.lock.proc.<id>`), a locked file the OS unlocks when
//!   the process dies, however it dies. Its first participant in the domain takes it, every
//!   other one shares it ([`Presence`]), the last one to leave releases it and removes its
//!   file. A process with thousands of participants holds one token per domain: one
//!   descriptor, one file.
//! * **Lock for membership changes.** Creating or replacing the segment, claiming a slot and
//!   leaving happen under the object's [`FileLock`] (`<domain>.lock.<object>`), taken for the
//!   change and closed after it. Joins and leaves are rare; one lock keeps the protocol simple
//!   and makes a crash at any point recoverable: the OS drops the lock with the process.
//! * **Claim.** A joiner takes a slot that is free or whose holder is dead: it writes its
//!   process token's id into the slot, marks it [`CLAIMING`] (a compare-and-swap from the state
//!   it judged) and bumps its generation, so a new holder's leftovers (wait channels, named
//!   after slot and generation) are never confused with an old one's. It fills in its role's
//!   data and then [`activate`]s the slot. A claimer that dies half-way leaves a `CLAIMING` slot
//!   whose token is dead, which the next claimer takes over; a reaper without the lock that
//!   reads the slot after the token was written finds a live holder and leaves it alone.
//! * **Liveness** of a holder is its process's: [`Probes::alive`] probes the process token the
//!   slot records (id 0, "no token", is dead). A participant that goes away normally frees its
//!   slot itself, so "is this member alive?" is "is its process alive?". A pass over a registry
//!   probes each token once ([`Probes`]): reaping a hundred slots of one dead process costs one
//!   probe. The id comes from shared memory anyone joined may write, so it is used only as a
//!   number: the file probed is always `<domain>.lock.proc.<16 hex digits>` in the lock
//!   directory; a file there that is not a regular file of ours reads as not alive and is never
//!   removed; a probe never waits (non-blocking open and lock). A peer that writes a bogus id
//!   into a slot can make that slot read dead (and be reaped) or alive (and kept), as it can by
//!   writing the state; it cannot make us touch anything else.
//! * **Reap.** Whoever finds a holder dead frees its slot ([`reap`]) and cleans what it left;
//!   the generation tells the old holder's leftovers from the new one's. A dead process's token
//!   file is removed by whoever probes it first.
//! * **Hand over.** A holder that must stay in its slot while its process stops serving it (a
//!   publisher lingering into `exit` with samples out) [`disown`]s it: the slot records no
//!   token and reads dead at once, while the process's token stays held for its other
//!   participants.
//! * **Replace a dead creator.** A segment left half-made (not marked ready, empty, or with a
//!   header of zeros) is found while holding the lock, which proves its creator gone (creators
//!   hold the lock until the segment is ready): [`replace_corrupt`] removes it so the caller
//!   creates a fresh one. A segment whose members are all dead is likewise replaced by the
//!   caller.
//! * **Replace a corrupt object.** Any other segment that fails validation (bad magic, layout
//!   version, kind or size, truncated, a header no creator could have written: see
//!   [`is_corruption`]) has no layout to trust, so [`replace_corrupt`] looks for members in it
//!   without one: it is kept, and joining fails with [`Error::Corrupted`] naming the problem
//!   and the token, if this process has a participant in the object, if a token of the old
//!   per-participant naming (`<object>.<letter><slot>.<generation>`, held by processes of builds
//!   before process tokens, which then get the layout-version error) is held for the object, or
//!   if a live process token of the domain is recorded in the segment: a [`Member`] head at any
//!   8-aligned position (where every registry places its slots) that is not [`FREE`] and names
//!   the token's pid and nonce. Otherwise nobody alive can be using it and it is removed (with a
//!   `tracing` warning naming the problem) for the caller to create a fresh one. A segment whose
//!   slots were wiped or cut off (truncated, emptied) records nobody and is replaced even if a
//!   process still maps it; that process keeps its mapping, and newcomers use the new segment.
//!   Checked under the lock, like everything here.
//! * **Bounded waits.** The lock is taken with a bounded wait ([`FileLock::lock`], failing with
//!   [`Error::LockTimeout`]). Leaving, which runs in `Drop`, waits at most [`LEAVE_WAIT`]
//!   ([`lock_to_leave`]): a member that cannot get the lock still frees its slot and drops its
//!   share of the token (both atomic, and safe without the lock: a claimer only takes a slot
//!   that is free or whose token is not held), and leaves removing the segment to whoever comes
//!   next: the next joiner replaces a segment nobody alive uses, the next member to leave
//!   removes it, and `ipc clean` removes it too.
//! * **Leave.** A member frees its slot and drops its share of the token under the lock; the
//!   last one out removes the segment and the lock file ([`remove_if_unused`]).
//!
//! Registry contents are *hints* for discovery, never proof: anyone joined can write them.
//! Decisions that hurt a peer (disconnecting a subscriber, switching to another publisher) are
//! made on the peer's own memory or on the token id read when it was connected, never on a
//! registry word read later.
//!
//! Residual risk: a thread that panics between claiming a slot and activating or releasing it
//! leaves a `CLAIMING` slot that reads alive until its process exits (a per-participant token
//! died with the unwinding; a process token does not).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::liveness::{self, FileLock, Probe, ProcessToken};
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

/// The head of every registry slot (16 bytes).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Member {
    pub state: AtomicU32,
    pub generation: AtomicU32,
    /// The holder's pid: also the high half of its process token's id.
    pub pid: AtomicU32,
    /// The low half of the holder's process token id; 0 for none (a holder that handed over,
    /// or a slot never held), which reads as dead.
    pub nonce: AtomicU32,
}

impl Member {
    /// The id of the holder's process token as recorded (0: none).
    pub fn token(&self) -> u64 {
        let nonce = self.nonce.load(Ordering::Acquire);
        if nonce == 0 {
            return 0;
        }
        (u64::from(self.pid.load(Ordering::Acquire)) << 32) | u64::from(nonce)
    }

    /// Records `token` as the holder's (its pid half and nonce half).
    fn set_token(&self, token: u64) {
        self.pid.store((token >> 32) as u32, Ordering::Release);
        self.nonce.store(token as u32, Ordering::Release);
    }
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

/// A participant's hold on its process's token ([`ProcessToken`]), taken when it claims a slot
/// and dropped when it leaves; while any is held the process counts as a member of the object
/// (for [`replace_corrupt`]).
#[derive(Debug)]
pub(crate) struct Presence {
    token: Arc<ProcessToken>,
    /// `<domain>/<object>`, counted in [`JOINED`].
    key: String,
}

/// How many participants this process has in each object (`<domain>/<object>`).
static JOINED: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

fn joined() -> std::sync::MutexGuard<'static, Option<HashMap<String, usize>>> {
    JOINED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Presence {
    /// Takes (or shares) this process's token in `domain`, counting a participant in `object`.
    fn new(domain: &str, object: &str) -> Result<Presence> {
        let token = ProcessToken::acquire(domain)?;
        let key = format!("{domain}/{object}");
        *joined().get_or_insert_with(HashMap::new).entry(key.clone()).or_default() += 1;
        Ok(Presence { token, key })
    }

    /// The process token's id (what the slot records).
    pub fn id(&self) -> u64 {
        self.token.id()
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        if let Some(map) = joined().as_mut()
            && let Some(count) = map.get_mut(&self.key)
        {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Whether this process has a participant in `object` of `domain`.
fn joined_here(domain: &str, object: &str) -> bool {
    joined().as_ref().is_some_and(|map| map.contains_key(&format!("{domain}/{object}")))
}

/// A claimed slot: [`activate`] it once its role's data is in place, or drop the claim.
#[derive(Debug)]
pub(crate) struct Claim {
    pub index: u32,
    pub generation: u32,
    pub token: Presence,
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

/// Whether lock-file name `name` (without the domain prefix) is a liveness token of the old,
/// per-participant naming (layout versions before process tokens) of a member of `object` in
/// one of `roles`: exactly `<object>.<letter><slot>.<generation>`. A process of an older build
/// still holds such tokens; [`replace_corrupt`] looks for them so that such a process keeps its
/// object and a newer one gets the version error.
fn is_legacy_token_of(name: &str, object: &str, roles: &[Role]) -> bool {
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

/// Whether `problem` is what a creator that died half-way leaves: a segment not marked ready,
/// an empty object (it died before sizing it) or a header of zeros (before writing it).
/// Creators hold the object's lock until the segment is ready, so whoever finds one of these
/// while holding the lock knows the creator is gone.
fn half_made(problem: &Error) -> bool {
    match problem {
        Error::NotReady { .. } => true,
        Error::TooSmall { size, .. } => *size == 0,
        Error::WrongMagic { found, .. } => *found == [0; 8],
        _ => false,
    }
}

/// Decides about a segment of `object` that failed validation with `problem` (see
/// [`is_corruption`]), under the object's lock: removes it and returns `Ok` when nobody can be
/// using it, so the caller creates a fresh one; otherwise fails with [`Error::Corrupted`]
/// naming the problem and the token that may still be in use. The rule is the module's
/// ("Replace a dead creator", "Replace a corrupt object").
pub(crate) fn replace_corrupt(
    domain: &str,
    object: &str,
    roles: &[Role],
    name: &SegmentName,
    problem: &Error,
) -> Result<()> {
    if half_made(problem) {
        tracing::warn!(segment = %name, "replacing corrupt `{object}` (left half-made by a creator that died): {problem}");
        unlink(name);
        return Ok(());
    }
    let refuse = |token: &str, why: &str| Error::Corrupted {
        what: format!(
            "`{object}` is corrupt ({problem}); not replaced, as it may still be in use: liveness token `{token}` {why}"
        ),
    };
    if joined_here(domain, object) {
        let token = ProcessToken::acquire(domain)?;
        return Err(refuse(
            &liveness::process_token_name(token.id()),
            "is held by a live process (this one, which has a participant in it)",
        ));
    }
    let mut live = Vec::new();
    for token in liveness::list(domain)? {
        if let Some(id) = liveness::parse_process_token(&token) {
            // A token that cannot be probed counts as live.
            if liveness::is_process_alive(domain, id).unwrap_or(true) {
                live.push(id);
            }
        } else if is_legacy_token_of(&token, object, roles) {
            match liveness::is_alive(domain, &token) {
                Ok(false) => {}
                Ok(true) => return Err(refuse(&token, "is held by a live process")),
                Err(err) => return Err(refuse(&token, &format!("cannot be probed ({err})"))),
            }
        }
    }
    if let Some(id) = recorded_holder(name, &live) {
        return Err(refuse(
            &liveness::process_token_name(id),
            "is held by a live process (recorded in the segment as a member)",
        ));
    }
    tracing::warn!(segment = %name, "replacing corrupt `{object}` (no live process uses it): {problem}");
    unlink(name);
    Ok(())
}

/// Which of `tokens` (live process token ids) a registry slot of segment `name` records as a
/// holder, if any: a [`Member`] head anywhere in the segment whose state is not [`FREE`] and
/// whose pid and nonce are one of the tokens. The object's layout is not trusted (the segment
/// failed validation): every 8-aligned position is looked at, as every registry places its
/// slots there, bounded by the segment's real size. A segment that cannot be mapped records
/// nobody.
fn recorded_holder(name: &SegmentName, tokens: &[u64]) -> Option<u64> {
    if tokens.is_empty() {
        return None;
    }
    let map = crate::segment::platform().open(name.as_str(), Access::ReadOnly).ok()?;
    let (base, len) = (map.ptr().as_ptr(), map.len());
    let word = |at: usize| {
        // SAFETY: callers pass `at + 4 <= len`: inside the readable mapping, 4-aligned (the
        // mapping is page-aligned, `at` a multiple of 4); any bits are a valid u32. Volatile:
        // a peer may be writing there.
        unsafe { std::ptr::read_volatile(base.add(at).cast::<u32>()) }
    };
    let mut at = 0;
    while at + size_of::<Member>() <= len {
        let (state, pid, nonce) = (word(at), word(at + 8), word(at + 12));
        let id = (u64::from(pid) << 32) | u64::from(nonce);
        if state != FREE && nonce != 0 && tokens.contains(&id) {
            return Some(id);
        }
        at += 8;
    }
    None
}

/// Liveness answers within one pass over a registry: each process token is probed once, so
/// reaping a hundred slots of one dead process costs one probe of the OS.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    seen: Vec<(u64, bool)>,
    looked: Vec<(u64, Probe)>,
    /// Probes of the OS made (for tests).
    pub made: usize,
}

impl Probes {
    /// What the OS says about process token `token` of `domain`, changing nothing (for tools,
    /// which may share one `Probes` over many slots and objects); a probe that fails reads
    /// [`Probe::Alive`].
    pub fn look(&mut self, domain: &str, token: u64) -> Probe {
        if let Some(&(_, probe)) = self.looked.iter().find(|(t, _)| *t == token) {
            return probe;
        }
        self.made += 1;
        let probe = liveness::probe_process(domain, token).unwrap_or(Probe::Alive);
        self.looked.push((token, probe));
        probe
    }

    /// Whether the process of token `token` (an id read from a slot) is alive. Id 0 is no
    /// token: dead. A probe that fails is logged and answered "alive": wrongly reaping a live
    /// member is worse than keeping a dead one. A token that is not ours (another user's, a
    /// link, not a regular file: see `crate::trust`) is not alive: no process of ours can hold
    /// it, since [`ProcessToken`]s are created exclusively. The file probed is always
    /// `<domain>.lock.proc.<hex id>` in the lock directory, whatever the id.
    pub fn alive(&mut self, domain: &str, object: &str, token: u64) -> bool {
        if token == 0 {
            return false;
        }
        if let Some(&(_, alive)) = self.seen.iter().find(|(t, _)| *t == token) {
            return alive;
        }
        self.made += 1;
        let alive = match liveness::is_process_alive(domain, token) {
            Ok(alive) => alive,
            Err(err @ Error::UntrustedObject { .. }) => {
                tracing::warn!(object, %err, "a member's token is not ours; not alive");
                false
            }
            Err(err) => {
                tracing::warn!(object, %err, "liveness probe failed; assuming alive");
                true
            }
        };
        self.seen.push((token, alive));
        alive
    }

    /// Whether the holder of slot `index` of `role` is alive (its recorded token's process).
    pub fn holder(&mut self, reg: &impl Registry, role: Role, index: u32) -> bool {
        self.alive(reg.domain(), reg.object(), reg.member(role, index).token())
    }
}

/// Whether the process of token `token` of `reg`'s domain is alive (one probe, see
/// [`Probes::alive`]): for a peer whose token was read when it was connected.
pub(crate) fn token_alive(reg: &impl Registry, token: u64) -> bool {
    Probes::default().alive(reg.domain(), reg.object(), token)
}

/// What the OS says about the holder of slot `index` of `role`, changing nothing (for tools).
pub(crate) fn probe_holder(reg: &impl Registry, role: Role, index: u32) -> Probe {
    Probes::default().look(reg.domain(), reg.member(role, index).token())
}

/// Whether the holder of slot `index` of `role` at `generation` is alive: the slot still has
/// that generation and its recorded process token is held (see [`Probes::alive`]).
pub(crate) fn alive(reg: &impl Registry, role: Role, index: u32, generation: u32) -> bool {
    let member = reg.member(role, index);
    member.generation.load(Ordering::Acquire) == generation
        && Probes::default().alive(reg.domain(), reg.object(), member.token())
}

/// Claims a slot of `role` that is free or whose holder is dead. Call with the lock held.
pub(crate) fn claim(reg: &impl Registry, role: Role) -> Result<Claim> {
    let mut probes = Probes::default();
    let mut presence = None;
    for index in 0..reg.slots(role) {
        let member = reg.member(role, index);
        let state = member.state.load(Ordering::Acquire);
        let generation = member.generation.load(Ordering::Acquire);
        if state != FREE && probes.holder(reg, role, index) {
            continue;
        }
        let token = match presence.take() {
            Some(token) => token,
            None => Presence::new(reg.domain(), reg.object())?,
        };
        // Our token first: a reaper that does not hold the lock and reads the slot from now
        // on finds a live holder and leaves it alone.
        member.set_token(token.id());
        if member
            .state
            .compare_exchange(state, CLAIMING, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            presence = Some(token);
            continue;
        }
        let next = generation.wrapping_add(1).max(1);
        member.generation.store(next, Ordering::Release);
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

/// Hands over a slot whose holder stays in it after its process stops serving it (a publisher
/// lingering into `exit` with samples out): the slot keeps its state but records no token, so
/// it reads as dead at once and whoever finds it reaps it and cleans up after it.
pub(crate) fn disown(reg: &impl Registry, role: Role, index: u32) {
    reg.member(role, index).nonce.store(0, Ordering::Release);
}

/// Frees slot `index` of `role` if its holder is dead; returns the dead holder's generation
/// (its leftovers are the caller's to clean). Callers hold the lock, or accept that a claimer
/// may be filling the slot in (a `CLAIMING` slot with a live token is never reaped).
pub(crate) fn reap(reg: &impl Registry, role: Role, index: u32) -> Option<u32> {
    reap_dead(reg, role, index, &mut Probes::default()).map(|dead| dead.generation)
}

/// Like [`reap`], within a pass (`probes`), also telling the state the dead holder left
/// (callers that count deaths tell a member that died from a joiner that died half-way).
pub(crate) fn reap_dead(
    reg: &impl Registry,
    role: Role,
    index: u32,
    probes: &mut Probes,
) -> Option<Dead> {
    let member = reg.member(role, index);
    let state = member.state.load(Ordering::Acquire);
    let generation = member.generation.load(Ordering::Acquire);
    if state == FREE || probes.holder(reg, role, index) {
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
    let mut probes = Probes::default();
    reg.roles().iter().any(|&role| {
        (0..reg.slots(role)).any(|index| {
            reg.member(role, index).state.load(Ordering::Acquire) != FREE
                && probes.holder(reg, role, index)
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
    fn legacy_token_names_are_matched_exactly() {
        let roles = [P, S];
        assert!(is_legacy_token_of("topic.t.p0.1", "topic.t", &roles));
        assert!(is_legacy_token_of("topic.t.s12.4000000000", "topic.t", &roles));
        // The object's lock file, other roles, other objects, and tokens of a topic whose
        // name extends this one's are not this object's tokens; nor are process tokens.
        assert!(!is_legacy_token_of("topic.t", "topic.t", &roles));
        assert!(!is_legacy_token_of("topic.t.l0.1", "topic.t", &roles));
        assert!(!is_legacy_token_of("topic.tx.p0.1", "topic.t", &roles));
        assert!(!is_legacy_token_of("topic.t.p0.s1.2", "topic.t", &roles));
        assert!(!is_legacy_token_of("topic.t.p.1", "topic.t", &roles));
        assert!(!is_legacy_token_of("topic.t.p0.", "topic.t", &roles));
        assert!(!is_legacy_token_of("topic.t.p0.1x", "topic.t", &roles));
        assert!(!is_legacy_token_of("proc.0000000100000001", "topic.t", &roles));
    }

    /// A registry in process memory, for the protocol alone.
    struct Fake {
        domain: String,
        members: Vec<Member>,
    }

    impl Registry for Fake {
        fn domain(&self) -> &str {
            &self.domain
        }
        fn object(&self) -> &str {
            "fake.f"
        }
        fn slots(&self, _role: Role) -> u32 {
            self.members.len() as u32
        }
        fn member(&self, _role: Role, index: u32) -> &Member {
            &self.members[index as usize]
        }
        fn roles(&self) -> &'static [Role] {
            &[P]
        }
        fn full(&self, role: Role) -> Error {
            Error::Unsupported { what: format!("{} full", role.plural) }
        }
    }

    fn fake(test: &str, slots: usize) -> Fake {
        Fake {
            domain: format!("ut{}-member-{test}", std::process::id()),
            members: (0..slots).map(|_| Member::default()).collect(),
        }
    }

    #[cfg(not(miri))]
    #[test]
    fn claims_share_one_process_token_released_by_the_last() {
        let reg = fake("share", 4);
        let a = claim(&reg, P).unwrap();
        activate(&reg, P, a.index);
        let b = claim(&reg, P).unwrap();
        activate(&reg, P, b.index);
        assert_ne!(a.index, b.index);
        assert_eq!(a.token.id(), b.token.id(), "one token per process and domain");
        assert_eq!(reg.members[0].token(), a.token.id());
        assert_eq!((a.token.id() >> 32) as u32, std::process::id());
        // Our own token reads alive from this process, through the OS too.
        assert!(anyone_alive(&reg));
        let name = liveness::process_token_name(a.token.id());
        assert!(liveness::is_alive(&reg.domain, &name).unwrap());
        assert_eq!(liveness::list(&reg.domain).unwrap(), vec![name.clone()]);
        release(&reg, P, a.index);
        drop(a);
        assert!(liveness::list(&reg.domain).unwrap().contains(&name), "b still holds it");
        release(&reg, P, b.index);
        drop(b);
        assert!(liveness::list(&reg.domain).unwrap().is_empty(), "the last one removed it");
    }

    #[cfg(not(miri))]
    #[test]
    fn slots_of_a_dead_process_cost_one_probe_and_are_reaped() {
        let reg = fake("dead", 100);
        // A process that died: its token file is left, nobody holds it.
        let dead = (u64::from(u32::MAX - 7) << 32) | 0x1234_5678;
        let path = liveness::lock_path(&reg.domain, &liveness::process_token_name(dead)).unwrap();
        std::fs::write(&path, b"").unwrap();
        for (i, member) in reg.members.iter().enumerate() {
            member.set_token(dead);
            member.generation.store(i as u32 + 1, Ordering::Relaxed);
            member.state.store(ACTIVE, Ordering::Relaxed);
        }
        let mut probes = Probes::default();
        let reaped: Vec<Dead> =
            (0..100).filter_map(|i| reap_dead(&reg, P, i, &mut probes)).collect();
        assert_eq!(reaped.len(), 100);
        assert_eq!(reaped[7], Dead { state: ACTIVE, generation: 8 });
        assert_eq!(probes.made, 1, "one probe for the hundred slots of one process");
        assert!(!path.exists(), "the dead token's file went with the first probe");
        assert!(!in_use(&reg));
    }

    #[cfg(not(miri))]
    #[test]
    fn corrupt_objects_are_kept_while_a_process_may_use_them() {
        let reg = fake("corrupt", 2);
        let d = reg.domain.clone();
        let name = SegmentName::new(&d, SegmentKind::Raw, "absent").unwrap();
        let old = Error::WrongVersion { segment: "s".into(), found: 4, expected: 5 };
        let replace = |problem: &Error| replace_corrupt(&d, "fake.f", &[P], &name, problem);
        // Nobody: replaced (the segment does not exist; the decision is what counts here).
        replace(&old).unwrap();
        // A process of an older build holds a per-participant token of the object: refused,
        // naming the version and the token.
        let legacy = liveness::Token::acquire(&d, "fake.f.p0.3").unwrap();
        let err = replace(&old).unwrap_err().to_string();
        assert!(err.contains("fake.f.p0.3") && err.contains("version"), "{err}");
        // A creator that died half-way proves itself gone (we would hold the lock).
        replace(&Error::NotReady { segment: "s".into(), creator_pid: 1 }).unwrap();
        replace(&Error::TooSmall { segment: "s".into(), size: 0, min: 64 }).unwrap();
        drop(legacy);
        // Our own process token counts only while we have a participant in the object.
        let elsewhere = ProcessToken::acquire(&d).unwrap();
        replace(&old).unwrap();
        let member = claim(&reg, P).unwrap();
        let err = replace(&old).unwrap_err().to_string();
        assert!(err.contains(&liveness::process_token_name(member.token.id())), "{err}");
        release(&reg, P, member.index);
        drop(member);
        replace(&old).unwrap();
        // A live token recorded in a slot of the segment (found without a layout) keeps it;
        // the same bytes in a free slot do not.
        let seg = SegmentName::new(&d, SegmentKind::Raw, "garbage").unwrap();
        let map = crate::segment::platform().create(seg.as_str(), 4096).unwrap();
        let at = 1000; // 8-aligned, anywhere
        let id = elsewhere.id();
        // SAFETY: bytes `at..at + 16` are inside the fresh 4096-byte read-write mapping,
        // 8-aligned; plain integers.
        unsafe {
            let base = map.ptr().as_ptr().add(at).cast::<u32>();
            base.write_volatile(ACTIVE);
            base.add(2).write_volatile((id >> 32) as u32);
            base.add(3).write_volatile(id as u32);
        }
        let kept = replace_corrupt(&d, "fake.g", &[P], &seg, &old).unwrap_err().to_string();
        assert!(kept.contains(&liveness::process_token_name(id)), "{kept}");
        // SAFETY: as above.
        unsafe { map.ptr().as_ptr().add(at).cast::<u32>().write_volatile(FREE) };
        replace_corrupt(&d, "fake.g", &[P], &seg, &old).unwrap();
        assert!(crate::segment::platform().open(seg.as_str(), Access::ReadOnly).is_err());
        drop(map);
        drop(elsewhere);
        assert!(liveness::list(&d).unwrap().is_empty());
    }

    #[cfg(not(miri))]
    #[test]
    fn bogus_token_ids_touch_nothing_outside_the_domains_token_names() {
        let reg = fake("bogus", 4);
        for member in &reg.members {
            member.state.store(ACTIVE, Ordering::Relaxed);
            member.generation.store(1, Ordering::Relaxed);
        }
        // No token (0), a token nobody ever had, and a hostile peer's pick of an existing
        // token name that is a directory, or a link to a file elsewhere.
        reg.members[0].set_token(0);
        reg.members[1].set_token(0xdead_beef_0000_0001);
        let dir_id = 0x0000_0001_0000_0002u64;
        let dir = liveness::lock_path(&reg.domain, &liveness::process_token_name(dir_id)).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        reg.members[2].set_token(dir_id);
        let target = std::env::temp_dir().join(format!("{}-target", reg.domain));
        std::fs::write(&target, b"precious").unwrap();
        let link_id = 0x0000_0001_0000_0003u64;
        let link =
            liveness::lock_path(&reg.domain, &liveness::process_token_name(link_id)).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &link).unwrap();
        reg.members[3].set_token(link_id);
        let mut probes = Probes::default();
        assert!(!probes.holder(&reg, P, 0), "no token is dead");
        assert!(!probes.holder(&reg, P, 1), "a missing token is dead");
        // A directory cannot be probed: assumed alive (never reaped on a failed probe).
        assert!(probes.holder(&reg, P, 2));
        #[cfg(unix)]
        assert!(!probes.holder(&reg, P, 3), "a link is not ours: not alive");
        assert!(dir.is_dir(), "left alone");
        #[cfg(unix)]
        assert!(link.symlink_metadata().is_ok(), "left alone");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert_eq!(probes.made, 3 + usize::from(cfg!(unix)) - 1);
        std::fs::remove_dir(&dir).unwrap();
        let _ = std::fs::remove_file(&link);
        std::fs::remove_file(&target).unwrap();
    }
}
