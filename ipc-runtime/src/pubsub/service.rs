//! The process's service thread: the one thread (at most) that does publishers' background
//! work, asleep until there is some.
//!
//! A publisher does its bookkeeping on its own calls. Two things cannot wait for its next call:
//!
//! * a subscriber joining a topic whose publisher is idle must get its history (a "latched"
//!   configuration topic may never publish again);
//! * a dropped publisher whose samples are still held elsewhere must finish (free its pool,
//!   leave the topic) when they come back or their holders die.
//!
//! Both are done here. The thread starts with the first publisher and sleeps on the process's
//! *doorbell*: a small segment `<domain>.bell.<heap id>` (named after the process's heap, and
//! removed with it) holding a [`WaitWord`] that other processes may write. A joining or leaving
//! subscriber, and a subscriber returning samples to a closing publisher, [`ring`] the bells
//! of the publishers' processes. While a closing publisher waits for holders, the thread also
//! wakes every 100 ms to probe their liveness; otherwise it never wakes on its own, so an idle
//! process costs nothing. A pass after the bell rang visits every participant (the bell does not
//! say for which topic; a publisher whose topic saw no arrival or departure answers at once); a
//! pass on the timer visits only those that asked to be looked at again (busy or closing), so a
//! publisher busy publishing among thousands of idle ones costs one look, not thousands. After
//! a long pass the thread pauses four times its length, so a burst of joins costs at most a
//! fifth of a core. The doorbell uses the platform's [`DefaultBackend`], whatever the topics'
//! backends are.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::heap::{self, Heap};
use crate::segment::{Access, Segment, SegmentKind, SegmentName};
use crate::wait::{self, DefaultBackend, WaitBackend, WaitWord};

/// What a participant's service pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serve {
    /// Nothing more to do until rung.
    Idle,
    /// Waiting for others (a closing publisher's holders): look again in a while.
    Pending,
    /// Its lock was taken: look again soon.
    Busy,
    /// Finished: forget it.
    Done,
}

/// Something the service thread looks after.
pub(crate) trait Serviced: Send + Sync {
    fn serve(&self) -> Serve;
}

/// How long the thread sleeps while a closing publisher waits for holders.
const PENDING_INTERVAL: Duration = Duration::from_millis(100);
/// How soon it looks again at a participant whose lock was taken.
const BUSY_INTERVAL: Duration = Duration::from_millis(1);
/// A pass over the participants that took longer than this is followed by a pause of
/// [`PAUSE_FACTOR`] times its length before the next one: a process with thousands of
/// publishers, rung by a burst of joins, spends at most a fifth of a core on passes (each
/// visits every participant), and the rings of the burst are served together.
const CHEAP_PASS: Duration = Duration::from_micros(50);
/// See [`CHEAP_PASS`].
const PAUSE_FACTOR: u32 = 4;

struct Bell {
    segment: Segment,
    waker: <DefaultBackend as WaitBackend>::Waker,
}

impl Bell {
    fn word(&self) -> &WaitWord {
        // SAFETY: the segment is at least one page (created so, or checked by `open`), the
        // payload starts 64-aligned, and a WaitWord (two atomics) is valid for any bits.
        unsafe { self.segment.payload().cast::<WaitWord>().as_ref() }
    }

    fn ring(&self) {
        self.word().seq().fetch_add(1, Ordering::SeqCst);
        if let Err(err) = DefaultBackend::wake(&self.waker, self.word()) {
            tracing::debug!(bell = %self.segment.name(), %err, "ringing a doorbell failed");
        }
    }
}

struct Service {
    bell: Bell,
    list: Mutex<Vec<Weak<dyn Serviced>>>,
    /// Participants kept alive for the service (adopted), until they are done.
    adopted: Mutex<Vec<Arc<dyn Serviced>>>,
}

static SERVICE: OnceLock<std::result::Result<Arc<Service>, String>> = OnceLock::new();

fn bell_name(heap: &Heap) -> Result<SegmentName> {
    heap::bell_name(heap.domain(), heap.id())
}

// The default backend's waiter and waker are `()` on Linux, OS objects elsewhere.
#[allow(clippy::let_unit_value)]
fn start(heap: &'static Heap) -> Result<Arc<Service>> {
    let name = bell_name(heap)?;
    let segment = Segment::create(&name, SegmentKind::Bell, 4096)?;
    let channel = name.to_string();
    let cleanup_channel = channel.clone();
    crate::liveness::on_exit(Box::new(move || {
        let _ = DefaultBackend::cleanup(&cleanup_channel);
    }));
    // SAFETY: as in `Bell::word`, on the segment just created.
    let word = unsafe { segment.payload().cast::<WaitWord>().as_ref() };
    let waiter = DefaultBackend::waiter(&channel, word)?;
    let waker = DefaultBackend::waker(&channel, word)?;
    let service = Arc::new(Service {
        bell: Bell { segment, waker },
        list: Mutex::new(Vec::new()),
        adopted: Mutex::new(Vec::new()),
    });
    let running = Arc::clone(&service);
    std::thread::Builder::new()
        .name("ipc-service".into())
        .spawn(move || running.run(waiter))
        .map_err(|e| Error::io("starting the process's ipc service thread", e))?;
    Ok(service)
}

fn service() -> Result<&'static Arc<Service>> {
    let heap = heap::default_heap()?;
    SERVICE
        .get_or_init(|| start(heap).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Unsupported { what: format!("the process's ipc service thread: {e}") })
}

/// Puts `participant` in the service thread's care (starting the thread and the doorbell with
/// the first one). It stays there until its [`Serviced::serve`] says `Done` or it is dropped.
pub(crate) fn enroll(participant: Weak<dyn Serviced>) -> Result<()> {
    let service = service()?;
    service.list.lock().unwrap_or_else(PoisonError::into_inner).push(participant);
    Ok(())
}

/// Hands `participant` to the service thread, which keeps it alive until its
/// [`Serviced::serve`] says `Done` (a dropped publisher whose samples are still out).
pub(crate) fn adopt(participant: Arc<dyn Serviced>) {
    if let Ok(service) = service() {
        service
            .adopted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&participant));
        service
            .list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&participant));
    }
}

/// Wakes this process's service thread (if it runs).
pub(crate) fn poke() {
    if let Some(Ok(service)) = SERVICE.get() {
        service.bell.ring();
    }
}

/// Wakes the service thread of the process owning heap `id` in `domain`. Best effort: a
/// process that is gone has no bell, and one that never published needs no ringing.
pub(crate) fn ring(domain: &str, id: u64) {
    if let Some(heap) = heap::try_default()
        && heap.id() == id
    {
        return poke();
    }
    let Ok(name) = heap::bell_name(domain, id) else { return };
    let segment = match Segment::open(&name, SegmentKind::Bell, Access::ReadWrite) {
        Ok(segment) if segment.len() >= 4096 => segment,
        Ok(_) | Err(Error::SegmentNotFound { .. }) => return,
        Err(err) => {
            tracing::debug!(bell = %name, %err, "cannot open a doorbell");
            return;
        }
    };
    // SAFETY: as in `Bell::word`; the size was checked above.
    let word = unsafe { segment.payload().cast::<WaitWord>().as_ref() };
    match DefaultBackend::waker(name.as_str(), word) {
        Ok(waker) => Bell { segment, waker }.ring(),
        Err(err) => tracing::debug!(bell = %name, %err, "cannot ring a doorbell"),
    }
}

impl Service {
    fn run(&self, waiter: <DefaultBackend as WaitBackend>::Waiter) {
        let word = self.bell.word();
        let mut last_pass = Duration::ZERO;
        // Participants that asked to be looked at again (busy or pending) after the last pass.
        let mut retry: Vec<Weak<dyn Serviced>> = Vec::new();
        // Whether the bell rang since the last pass: then everyone is looked at (the bell does
        // not say for which topic); otherwise only `retry`, so a busy publisher among thousands
        // of idle ones costs one look per interval, not a pass over all of them.
        let mut rung = true;
        loop {
            if last_pass > CHEAP_PASS {
                std::thread::sleep(last_pass * PAUSE_FACTOR);
            }
            let started = Instant::now();
            let observed = word.seq().load(Ordering::SeqCst);
            let participants = if rung {
                self.list.lock().unwrap_or_else(PoisonError::into_inner).clone()
            } else {
                std::mem::take(&mut retry)
            };
            retry.clear();
            let mut next: Option<Duration> = None;
            let mut finished: HashSet<*const ()> = HashSet::new();
            for participant in &participants {
                let status = participant.upgrade().map_or(Serve::Done, |p| p.serve());
                let again = match status {
                    Serve::Idle => None,
                    Serve::Pending => Some(PENDING_INTERVAL),
                    Serve::Busy => Some(BUSY_INTERVAL),
                    Serve::Done => {
                        finished.insert(participant.as_ptr().cast::<()>());
                        None
                    }
                };
                if again.is_some() {
                    retry.push(Weak::clone(participant));
                }
                next = match (next, again) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if !finished.is_empty() {
                let done = |p: *const ()| finished.contains(&p);
                self.list
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|p| !done(p.as_ptr().cast::<()>()));
                self.adopted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|p| !done(Arc::as_ptr(p).cast::<()>()));
            }
            last_pass = started.elapsed();
            let deadline = next.map(|d| Instant::now() + d);
            let woke = wait::wait_until::<DefaultBackend>(&waiter, word, deadline, 0, || {
                word.seq().load(Ordering::SeqCst) != observed
            });
            rung = word.seq().load(Ordering::SeqCst) != observed;
            if let Err(err) = woke {
                tracing::warn!(%err, "the ipc service thread's wait failed");
                rung = true;
                std::thread::sleep(PENDING_INTERVAL);
            }
        }
    }
}
