//! The Windows event backend: the waiter sleeps on a named auto-reset event object; wakers set
//! it. The default backend on Windows.
//!
//! `WaitOnAddress` would be the futex analogue, but it only works between threads of one
//! process; named kernel events are the documented way to wake another process.
//!
//! # Objects
//!
//! Channel `c` is the auto-reset event `Local\ipc-rs.wait.<c>` in the session namespace (a
//! channel too long for an object name is shortened to its domain plus a 64-bit hash, as the
//! Unix-socket backend does for socket paths). The waiter *and* every waker open it with
//! `CreateEventW`, which creates the event or opens the existing one, so a waker made before
//! its waiter reaches it, and a waker outliving a waiter reaches the next waiter of the same
//! channel: the name refers to one object for as long as anyone holds a handle to it. The
//! kernel deletes the event with its last handle — including the handles of a process that
//! died — so [`cleanup`](WaitBackend::cleanup) has nothing to do and no file is ever created.
//!
//! # Protocol
//!
//! [`wake`](WaitBackend::wake) is `SetEvent`: it leaves the event signalled if nobody sleeps,
//! and an auto-reset event stays signalled until one wait consumes it, so a wake between the
//! waiter's check of the sequence and its sleep ends that sleep at once. Many wakes while
//! nobody sleeps collapse into one signal, which costs at most one spurious return (callers
//! re-check). [`wait`](WaitBackend::wait) re-checks the sequence, then `WaitForSingleObject`
//! with the timeout rounded up to whole milliseconds.

use std::io;
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Threading::{
    CreateEventW, INFINITE, SetEvent, WaitForMultipleObjects, WaitForSingleObject,
};

use super::{WaitBackend, WaitWord};
use crate::error::{Error, Result};

/// A named auto-reset event per waiter. The default backend on Windows.
///
/// ```
/// use std::time::Duration;
/// use ipc_runtime::wait::{self, WaitBackend, WaitWord, WindowsEvent};
///
/// let channel = format!("{}.doc.event-{}", ipc_runtime::domain::current(), std::process::id());
/// let word = WaitWord::new();
/// let waiter = WindowsEvent::waiter(&channel, &word).unwrap();
/// let waker = WindowsEvent::waker(&channel, &word).unwrap();
/// // Nothing happens: the wait times out.
/// let deadline = wait::deadline(Some(Duration::from_millis(5)));
/// assert!(!wait::wait_until::<WindowsEvent>(&waiter, &word, deadline, 0, || false).unwrap());
/// wait::notify::<WindowsEvent>(&waker, &word).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowsEvent;

/// A handle to a channel's event, closed on drop: the waiting side and the waking side of
/// [`WindowsEvent`] both hold one.
#[derive(Debug)]
pub struct EventHandle {
    handle: HANDLE,
    name: String,
}

// SAFETY: an event handle is valid in every thread of the process, and SetEvent and
// WaitForSingleObject are thread-safe.
unsafe impl Send for EventHandle {}
// SAFETY: as above; only `drop` (which needs `&mut`) closes the handle.
unsafe impl Sync for EventHandle {}

impl Drop for EventHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful CreateEventW and is closed only here.
        unsafe { CloseHandle(self.handle) };
    }
}

/// Longest object name used (the limit is `MAX_PATH`, 260 UTF-16 units).
const MAX_NAME: usize = 200;

/// The object name of `channel`'s event.
fn event_name(channel: &str) -> Result<String> {
    let valid = !channel.is_empty()
        && !channel.starts_with('.')
        // `,` and `+` come from encoded topic names (see `crate::domain`).
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b',' | b'+'));
    if !valid {
        return Err(Error::InvalidName {
            what: "wait channel",
            name: channel.to_owned(),
            reason: "may only contain ASCII letters, digits, `_`, `-`, `,`, `+` and `.` (not first)",
        });
    }
    let full = format!("Local\\ipc-rs.wait.{channel}");
    if full.len() <= MAX_NAME {
        return Ok(full);
    }
    // FNV-1a of the whole channel keeps distinct channels apart.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in channel.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let domain = channel.split('.').next().unwrap_or("ipc");
    Ok(format!("Local\\ipc-rs.wait.{domain}.{hash:016x}"))
}

/// Creates channel `channel`'s event, or opens it if it exists.
fn open_event(channel: &str) -> Result<EventHandle> {
    let name = event_name(channel)?;
    let wide: Vec<u16> = name.encode_utf16().chain(Some(0)).collect();
    // SAFETY: `wide` is NUL-terminated UTF-16 that outlives the call; null attributes mean the
    // default security; FALSE, FALSE = auto-reset, initially not signalled.
    let handle = unsafe { CreateEventW(std::ptr::null(), 0, 0, wide.as_ptr()) };
    if handle.is_null() {
        return Err(Error::io(format!("creating event {name}"), io::Error::last_os_error()));
    }
    Ok(EventHandle { handle, name })
}

/// Most handles one `WaitForMultipleObjects` takes (`MAXIMUM_WAIT_OBJECTS`).
const MAX_HANDLES: usize = 64;

/// `timeout` in whole milliseconds, rounded up (a wait must not end before its timeout),
/// below `INFINITE`.
fn millis(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => INFINITE,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(u128::from(INFINITE - 1)) as u32
        }
    }
}

impl WaitBackend for WindowsEvent {
    const NAME: &'static str = "windows-event";
    const ID: u32 = 4;
    type Waiter = EventHandle;
    type Waker = EventHandle;

    fn waiter(channel: &str, _word: &WaitWord) -> Result<EventHandle> {
        open_event(channel)
    }

    fn waker(channel: &str, _word: &WaitWord) -> Result<EventHandle> {
        open_event(channel)
    }

    fn wait(
        waiter: &EventHandle,
        word: &WaitWord,
        observed: u32,
        timeout: Option<Duration>,
    ) -> Result<()> {
        if word.seq().load(std::sync::atomic::Ordering::SeqCst) != observed {
            return Ok(());
        }
        // SAFETY: the handle is a valid event handle for as long as `waiter` lives.
        match unsafe { WaitForSingleObject(waiter.handle, millis(timeout)) } {
            WAIT_OBJECT_0 | WAIT_TIMEOUT => Ok(()),
            _ => Err(Error::io(format!("waiting on {}", waiter.name), io::Error::last_os_error())),
        }
    }

    /// One `WaitForMultipleObjects` on every entry's event (each once), up to 64 events.
    /// Beyond 64 the first 64 are waited on in slices of at most a millisecond, the words of
    /// the rest looked at in between (the trait's default way).
    fn wait_many(
        entries: &[(&EventHandle, &WaitWord, u32)],
        timeout: Option<Duration>,
    ) -> Result<()> {
        let mut handles: Vec<HANDLE> = Vec::with_capacity(entries.len());
        for (waiter, ..) in entries {
            if !handles.contains(&waiter.handle) {
                handles.push(waiter.handle);
            }
        }
        if handles.is_empty() {
            std::thread::sleep(timeout.unwrap_or(Duration::from_secs(3600)));
            return Ok(());
        }
        if super::any_moved(entries) {
            return Ok(());
        }
        let (handles, ms) = if handles.len() > MAX_HANDLES {
            let slice = Duration::from_millis(1);
            (&handles[..MAX_HANDLES], millis(Some(timeout.map_or(slice, |t| t.min(slice)))))
        } else {
            (&handles[..], millis(timeout))
        };
        // SAFETY: every handle is a valid event handle owned by an entry's waiter, which the
        // caller keeps alive for the call; at most 64 handles; FALSE = wake on any one.
        let got = unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, ms) };
        if got == WAIT_TIMEOUT
            || (WAIT_OBJECT_0..WAIT_OBJECT_0 + handles.len() as u32).contains(&got)
        {
            Ok(())
        } else {
            Err(Error::io("waiting on several events", io::Error::last_os_error()))
        }
    }

    fn wake(waker: &EventHandle, _word: &WaitWord) -> Result<()> {
        // SAFETY: the handle is a valid event handle (with EVENT_MODIFY_STATE, as CreateEventW
        // grants all access) for as long as `waker` lives.
        if unsafe { SetEvent(waker.handle) } == 0 {
            return Err(Error::io(format!("setting {}", waker.name), io::Error::last_os_error()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_channels_are_shortened_and_stay_distinct() {
        let long = format!("dom.event.{}", "x".repeat(300));
        let a = event_name(&long).unwrap();
        let b = event_name(&format!("{long}y")).unwrap();
        assert!(a.len() <= MAX_NAME && a.starts_with("Local\\ipc-rs.wait.dom."), "{a}");
        assert_ne!(a, b);
        assert!(event_name("a\\b").is_err());
        assert!(event_name(".x").is_err());
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(millis(None), INFINITE);
        assert_eq!(millis(Some(Duration::ZERO)), 0);
        assert_eq!(millis(Some(Duration::from_micros(1))), 1);
        assert_eq!(millis(Some(Duration::from_millis(30))), 30);
        assert_eq!(millis(Some(Duration::MAX)), INFINITE - 1);
    }
}
