//! The sending side: [`Notifier`] and its builder.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};

use super::EventId;
use super::channel::{Channel, LISTENER, Membership, NOTIFIER, Options};
use crate::error::Result;
use crate::membership::{ACTIVE, CLAIMING, FREE};
use crate::wait::{self, DefaultBackend, WaitBackend};

/// Sends event ids to every [`Listener`](super::Listener) of a channel.
///
/// Any number of notifiers (up to the channel's `max_notifiers`) may share a channel, in any
/// processes. `notify` never blocks on listeners: it increments a counter per listener and wakes
/// the ones that sleep. All methods take `&self`; a notifier can be shared between threads.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// # ipc_runtime::domain::set_current(&format!("doc-notifier-{}", std::process::id())).unwrap();
/// let name = "alarms";
/// let notifier = Notifier::new(&name)?;
/// let listener = Listener::new(&name)?;
/// notifier.notify(EventId::new(1))?;
/// assert_eq!(listener.try_wait()?, Some(EventId::new(1)));
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
///
/// The backend is the type parameter; `Notifier::new` uses the default one. Pick another with
/// [`Notifier::with_backend`] or [`NotifierBuilder::backend`] — all participants of a channel
/// must use the same one:
///
/// ```
/// use ipc_runtime::event::{EventId, Listener, Notifier};
/// use ipc_runtime::wait::Spin;
///
/// # ipc_runtime::domain::set_current(&format!("doc-notifier-spin-{}", std::process::id())).unwrap();
/// let name = "alarms";
/// let notifier = Notifier::<Spin>::with_backend(&name)?;
/// let listener = Listener::builder(&name).backend::<Spin>().create()?;
/// notifier.notify(EventId::new(0))?;
/// assert_eq!(listener.wait()?, EventId::new(0));
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct Notifier<B: WaitBackend = DefaultBackend> {
    channel: Channel,
    membership: Membership,
    targets: Mutex<Targets<B>>,
}

/// The listeners this notifier wakes, as of listener epoch `epoch`.
struct Targets<B: WaitBackend> {
    epoch: u64,
    list: Vec<Target<B>>,
}

struct Target<B: WaitBackend> {
    slot: usize,
    generation: u32,
    /// `None` while the backend failed to make one (retried at each notify).
    waker: Option<B::Waker>,
}

impl Notifier {
    /// Joins event channel `name` in the process's domain as a notifier, with the default
    /// backend, creating the channel (with default options) if needed.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-notifier-new-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::new(&name)?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`NotifierBuilder::create`].
    pub fn new(name: &str) -> Result<Notifier> {
        Notifier::with_backend(name)
    }

    /// A builder for a notifier with options (domain, sizes, backend).
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-notifier-builder-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::builder(&name)
    ///     .max_event_id(15)
    ///     .max_listeners(4)
    ///     .create()?;
    /// assert_eq!(notifier.max_event_id(), 15);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn builder(name: &str) -> NotifierBuilder {
        NotifierBuilder::new(name)
    }
}

impl<B: WaitBackend> Notifier<B> {
    /// Like [`Notifier::new`], with backend `B`.
    ///
    /// ```
    /// use ipc_runtime::event::Notifier;
    /// use ipc_runtime::wait::Polling;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-notifier-with-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = Notifier::<Polling>::with_backend(&name)?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`NotifierBuilder::create`].
    pub fn with_backend(name: &str) -> Result<Notifier<B>> {
        NotifierBuilder::<B>::new(name).create()
    }

    /// Sends `id` to every current listener of the channel. With no listener, the event goes
    /// nowhere and `notify` succeeds.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-notify-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = Notifier::builder(&name).max_event_id(9).create()?;
    /// notifier.notify(EventId::new(9))?;
    /// assert!(matches!(notifier.notify(EventId::new(10)), Err(Error::EventIdOutOfRange { .. })));
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::EventIdOutOfRange`](crate::Error::EventIdOutOfRange) for an id beyond the
    /// channel's `max_event_id` (nothing is sent). The backend's error (usually
    /// [`Error::Io`](crate::Error::Io)) if a listener could not be woken, or no waker for it
    /// could be made: the first such error is returned, after every listener got the event
    /// counted and every other one was woken.
    pub fn notify(&self, id: EventId) -> Result<()> {
        let index = self.channel.index(id)?;
        let (word_index, mask) = (index / 64, 1u64 << (index % 64));
        let epoch = self.channel.shared().listener_epoch.load(Ordering::SeqCst);
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        if targets.epoch != epoch {
            self.refresh(&mut targets, epoch);
        }
        let mut failure = None;
        for target in &mut targets.list {
            let slot = self.channel.listener(target.slot);
            // Counter first, then the hint bit: a listener that sees the bit finds the count.
            // The bit is set even when the counter was not 0 (where a listener cannot have
            // cleared it): that costs little, since the line is usually ours already, and it
            // repairs a bit lost by a notifier killed between these two steps.
            slot.counter(index).fetch_add(1, Ordering::AcqRel);
            slot.bits(word_index).fetch_or(mask, Ordering::AcqRel);
            if target.waker.is_none() {
                let channel = self.channel.listener_channel(target.slot, target.generation);
                match B::waker(&channel, slot.word()) {
                    Ok(waker) => target.waker = Some(waker),
                    Err(err) => {
                        failure.get_or_insert(err);
                        continue;
                    }
                }
            }
            if let Some(waker) = &target.waker
                && let Err(err) = wait::notify::<B>(waker, slot.word())
            {
                failure.get_or_insert(err);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Rebuilds the list of listeners to wake, reusing wakers of listeners still there.
    fn refresh(&self, targets: &mut Targets<B>, epoch: u64) {
        let mut old = std::mem::take(&mut targets.list);
        for slot in 0..self.channel.layout().max_listeners {
            let (state, generation) = self.channel.listener_state(slot);
            match state {
                ACTIVE => {}
                FREE | CLAIMING => continue,
                other => {
                    tracing::warn!(
                        "event `{}`: listener slot {slot} has invalid state {other}; not notified",
                        self.channel.segment_name_str()
                    );
                    continue;
                }
            }
            if let Some(pos) = old.iter().position(|t| t.slot == slot && t.generation == generation)
            {
                targets.list.push(old.swap_remove(pos));
                continue;
            }
            // A listener we cannot wake still gets its events counted; `notify` retries the
            // waker and reports the failure.
            let channel = self.channel.listener_channel(slot, generation);
            let waker = B::waker(&channel, self.channel.listener(slot).word())
                .inspect_err(|err| {
                    tracing::warn!(
                        "event `{}`: cannot wake listener slot {slot}: {err}",
                        self.channel.segment_name_str()
                    )
                })
                .ok();
            targets.list.push(Target { slot, generation, waker });
        }
        targets.list.sort_by_key(|t| t.slot);
        targets.epoch = epoch;
    }

    /// Number of listeners alive now (probes their liveness tokens, reaping dead ones).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-listeners-alive-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = Notifier::new(&name)?;
    /// assert_eq!(notifier.listeners_alive()?, 0);
    /// let listener = Listener::new(&name)?;
    /// assert_eq!(notifier.listeners_alive()?, 1);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// The errors of taking the channel's lock, which probing needs:
    /// [`Error::LockTimeout`](crate::Error::LockTimeout) if another process holds it longer
    /// than the [lock timeout](crate::liveness::lock_timeout), and
    /// [`Error::UntrustedObject`](crate::Error::UntrustedObject) or
    /// [`Error::Io`](crate::Error::Io) if its file is not ours or cannot be opened or locked.
    pub fn listeners_alive(&self) -> Result<usize> {
        let lock = self.channel.lock()?;
        self.channel.reap::<B>();
        let alive = self.channel.active(LISTENER);
        drop(lock);
        Ok(alive)
    }

    /// The channel's name (without the domain).
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-notifier-name-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::new(&name)?;
    /// assert_eq!(notifier.name(), name);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.channel.name()
    }

    /// The largest id the channel accepts.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-notifier-max-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::new(&name)?;
    /// assert_eq!(notifier.max_event_id(), ipc_runtime::event::DEFAULT_MAX_EVENT_ID);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn max_event_id(&self) -> u64 {
        self.channel.layout().max_event_id
    }
}

impl<B: WaitBackend> Drop for Notifier<B> {
    fn drop(&mut self) {
        self.channel.leave::<B>(&mut self.membership);
        // Wake every listener: those watching for notifiers to go learn it now, not at their
        // next liveness probe.
        let epoch = self.channel.shared().listener_epoch.load(Ordering::SeqCst);
        let targets = self.targets.get_mut().unwrap_or_else(PoisonError::into_inner);
        let mut targets = std::mem::replace(targets, Targets { epoch: u64::MAX, list: Vec::new() });
        self.refresh(&mut targets, epoch);
        for target in &targets.list {
            if let Some(waker) = &target.waker {
                let _ = wait::notify::<B>(waker, self.channel.listener(target.slot).word());
            }
        }
    }
}

impl<B: WaitBackend> fmt::Debug for Notifier<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("event", &self.channel.segment_name_str())
            .field("backend", &B::NAME)
            .field("slot", &self.membership.slot)
            .finish()
    }
}

/// Options for a [`Notifier`]: the domain, the channel's sizes (used when this notifier creates
/// the channel, checked against it otherwise) and the backend.
///
/// ```
/// use ipc_runtime::event::Notifier;
///
/// # ipc_runtime::domain::set_current(&format!("doc-notifier-b-{}", std::process::id())).unwrap();
/// let name = "alarms";
/// let notifier = Notifier::builder(&name)
///     .max_event_id(255)
///     .max_listeners(8)
///     .max_notifiers(2)
///     .create()?;
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct NotifierBuilder<B: WaitBackend = DefaultBackend> {
    name: String,
    options: Options,
    _backend: PhantomData<fn() -> B>,
}

impl<B: WaitBackend> NotifierBuilder<B> {
    pub(crate) fn new(name: &str) -> Self {
        NotifierBuilder {
            name: name.to_owned(),
            options: Options::default(),
            _backend: PhantomData,
        }
    }

    /// Uses domain `domain` instead of the process's (`IPC_DOMAIN`).
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-nb-domain-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::builder(&name).domain("robot-a").create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn domain(mut self, domain: &str) -> Self {
        self.options.domain = Some(domain.to_owned());
        self
    }

    /// Largest id of the channel (ids `0..=max`; at most
    /// [`MAX_EVENT_ID_LIMIT`](super::MAX_EVENT_ID_LIMIT)). Fixed by the creator; a different
    /// value for an existing channel is an error.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-nb-max-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::builder(&name).max_event_id(63).create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn max_event_id(mut self, max: u64) -> Self {
        self.options.max_event_id = Some(max);
        self
    }

    /// Number of listener slots of the channel. Fixed by the creator.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-nb-listeners-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::builder(&name).max_listeners(2).create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn max_listeners(mut self, max: u32) -> Self {
        self.options.max_listeners = Some(max);
        self
    }

    /// Number of notifier slots of the channel. Fixed by the creator.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-nb-notifiers-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::builder(&name).max_notifiers(1).create()?;
    /// assert!(ipc_runtime::event::Notifier::new(&name).is_err()); // the one slot is taken
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn max_notifiers(mut self, max: u32) -> Self {
        self.options.max_notifiers = Some(max);
        self
    }

    /// Uses backend `B2` to wake listeners (all participants of a channel must agree).
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-nb-backend-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::builder(&name)
    ///     .backend::<ipc_runtime::wait::Spin>()
    ///     .create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn backend<B2: WaitBackend>(self) -> NotifierBuilder<B2> {
        NotifierBuilder { name: self.name, options: self.options, _backend: PhantomData }
    }

    /// Joins (creating if needed) the channel.
    ///
    /// ```
    /// # ipc_runtime::domain::set_current(&format!("doc-nb-create-{}", std::process::id())).unwrap();
    /// let name = "alarms";
    /// let notifier = ipc_runtime::event::Notifier::builder(&name).create()?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// * [`Error::InvalidName`](crate::Error::InvalidName) for an invalid event name (or one
    ///   longer than [`MAX_EVENT_NAME_LEN`](super::MAX_EVENT_NAME_LEN)) or domain.
    /// * [`Error::LockTimeout`](crate::Error::LockTimeout) if another process holds the
    ///   channel's lock longer than the [lock timeout](crate::liveness::lock_timeout).
    /// * When this notifier creates the channel:
    ///   [`Error::Unsupported`](crate::Error::Unsupported) for a `max_event_id` above
    ///   [`MAX_EVENT_ID_LIMIT`](super::MAX_EVENT_ID_LIMIT), or a `max_listeners` or
    ///   `max_notifiers` outside `1..=`[`MAX_PARTICIPANTS_LIMIT`](super::MAX_PARTICIPANTS_LIMIT).
    /// * When the channel exists:
    ///   [`Error::EventBackendMismatch`](crate::Error::EventBackendMismatch) if it uses another
    ///   backend than `B`, [`Error::EventOptionMismatch`](crate::Error::EventOptionMismatch) if
    ///   a size set on this builder differs from the channel's, and
    ///   [`Error::EventFull`](crate::Error::EventFull) if live processes hold every notifier
    ///   slot.
    /// * [`Error::Corrupted`](crate::Error::Corrupted) if the channel's segment is corrupt and a
    ///   live process may still use it (a corrupt segment nobody uses is replaced).
    /// * [`Error::UntrustedObject`](crate::Error::UntrustedObject) if the segment, the lock file
    ///   or a token file is not ours (another user's, writable by others, a symbolic link), and
    ///   [`Error::Io`](crate::Error::Io) if the OS fails to create, open or lock one of them.
    pub fn create(self) -> Result<Notifier<B>> {
        let (channel, membership, ()) =
            Channel::join::<B, ()>(&self.name, &self.options, NOTIFIER, |_, _, _| Ok(()))?;
        Ok(Notifier {
            channel,
            membership,
            targets: Mutex::new(Targets { epoch: u64::MAX, list: Vec::new() }),
        })
    }
}

impl<B: WaitBackend> fmt::Debug for NotifierBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifierBuilder")
            .field("name", &self.name)
            .field("options", &self.options)
            .field("backend", &B::NAME)
            .finish()
    }
}
