//! Events within one process (threads): semantics, validation, membership and cleanup, and one
//! suite run against every backend. Across processes: `tests/event_*.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::layout::Layout;
use super::*;
use crate::error::Error;
use crate::membership::ACTIVE;
use crate::segment::{self, Access, Segment, SegmentKind, SegmentName};
use crate::wait::{Polling, Spin, WaitBackend};

/// A domain of its own for each test, so it can check what it leaves behind.
fn domain(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("ut{}-ev{}-{tag}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn listener<B: WaitBackend>(d: &str, name: &str) -> ListenerBuilder<B> {
    Listener::builder(name).domain(d).backend::<B>()
}

fn notifier<B: WaitBackend>(d: &str, name: &str) -> NotifierBuilder<B> {
    Notifier::builder(name).domain(d).backend::<B>()
}

/// Everything of domain `d` in the segment and lock directories.
fn leftovers(d: &str) -> Vec<String> {
    let prefix = format!("{d}.");
    let mut found = Vec::new();
    for dir in [std::path::PathBuf::from("/dev/shm"), crate::liveness::lock_dir()] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

fn assert_clean(d: &str) {
    let left = leftovers(d);
    assert!(left.is_empty(), "domain {d} left {left:?}");
}

/// Runs `$f::<B>()` for every built-in backend of this platform.
macro_rules! every_backend {
    ($f:ident) => {{
        #[cfg(target_os = "linux")]
        $f::<crate::wait::Futex>();
        #[cfg(unix)]
        $f::<crate::wait::UnixSocket>();
        #[cfg(windows)]
        $f::<crate::wait::WindowsEvent>();
        $f::<crate::wait::Spin>();
        $f::<crate::wait::Polling>();
    }};
}

fn id(n: u64) -> EventId {
    EventId::new(n)
}

// ---- semantics -------------------------------------------------------------------------------

#[test]
fn counts_every_notify_and_takes_round_robin() {
    let d = domain("count");
    let l = listener::<Spin>(&d, "e").create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    for _ in 0..5 {
        n.notify(id(3)).unwrap();
    }
    n.notify(id(1)).unwrap();
    n.notify(id(9)).unwrap();
    // Round-robin from id 0: 1, 3, 9, then back to 3 (only 3 is left).
    let taken: Vec<u64> =
        std::iter::from_fn(|| l.try_wait().unwrap()).map(EventId::value).collect();
    assert_eq!(taken, [1, 3, 9, 3, 3, 3, 3]);
    drop((l, n));
    assert_clean(&d);
}

#[test]
fn a_busy_id_does_not_starve_others() {
    let d = domain("fair");
    let l = listener::<Spin>(&d, "e").create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    for _ in 0..100 {
        n.notify(id(0)).unwrap();
    }
    n.notify(id(1000)).unwrap();
    assert_eq!(l.try_wait().unwrap(), Some(id(0)));
    assert_eq!(l.try_wait().unwrap(), Some(id(1000)), "id 1000 waited behind 99 more of id 0");
}

#[test]
fn drain_returns_ids_with_counts() {
    let d = domain("drain");
    let l = listener::<Spin>(&d, "e").create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    for i in [7, 0, 7, 1023, 7] {
        n.notify(id(i)).unwrap();
    }
    let mut out = vec![(id(99), 99)];
    assert_eq!(l.try_wait_all(&mut out).unwrap(), 3);
    assert_eq!(out, [(id(99), 99), (id(0), 1), (id(7), 3), (id(1023), 1)]);
    assert_eq!(l.try_wait_all(&mut out).unwrap(), 0);
    assert_eq!(l.try_wait().unwrap(), None);
}

#[test]
fn every_listener_sees_every_event_sent_while_it_is_a_member() {
    let d = domain("bcast");
    let early = listener::<Spin>(&d, "e").create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    n.notify(id(1)).unwrap();
    let late = listener::<Spin>(&d, "e").create().unwrap();
    n.notify(id(2)).unwrap();
    assert_eq!(early.try_wait().unwrap(), Some(id(1)));
    assert_eq!(early.try_wait().unwrap(), Some(id(2)));
    assert_eq!(late.try_wait().unwrap(), Some(id(2)), "late listener got an event from before");
    assert_eq!(late.try_wait().unwrap(), None);
    // A second notifier reaches both.
    let n2 = notifier::<Spin>(&d, "e").create().unwrap();
    n2.notify(id(5)).unwrap();
    assert_eq!(early.try_wait().unwrap(), Some(id(5)));
    assert_eq!(late.try_wait().unwrap(), Some(id(5)));
    drop((early, late, n, n2));
    assert_clean(&d);
}

#[test]
fn notify_without_listeners_succeeds() {
    let d = domain("nobody");
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    n.notify(id(0)).unwrap();
    assert_eq!(n.listeners_alive().unwrap(), 0);
}

// ---- validation ------------------------------------------------------------------------------

#[test]
fn ids_out_of_range_are_refused_with_the_channel_named() {
    let d = domain("range");
    let n = notifier::<Spin>(&d, "e").max_event_id(9).create().unwrap();
    let err = n.notify(id(10)).unwrap_err();
    assert!(matches!(err, Error::EventIdOutOfRange { id: 10, max: 9, .. }), "{err}");
    assert!(err.to_string().contains(&format!("{d}.event.e")), "{err}");
    n.notify(id(9)).unwrap();
}

#[test]
fn options_and_backends_must_match_the_channel() {
    let d = domain("mismatch");
    let n = notifier::<Spin>(&d, "e").max_event_id(15).max_listeners(2).create().unwrap();
    let err = listener::<Spin>(&d, "e").max_event_id(16).create().unwrap_err();
    assert!(
        matches!(
            err,
            Error::EventOptionMismatch { option: "max_event_id", existing: 15, requested: 16, .. }
        ),
        "{err}"
    );
    let err = listener::<Polling>(&d, "e").create().unwrap_err();
    assert!(matches!(err, Error::EventBackendMismatch { .. }), "{err}");
    assert!(err.to_string().contains("spin") && err.to_string().contains("polling"), "{err}");
    // Unspecified options adopt the channel's.
    let l = listener::<Spin>(&d, "e").create().unwrap();
    assert_eq!(l.max_event_id(), 15);
    drop((l, n));
    assert_clean(&d);
}

#[test]
fn slots_run_out_with_a_clear_error_and_come_back() {
    let d = domain("full");
    let a = listener::<Spin>(&d, "e").max_listeners(1).create().unwrap();
    let err = listener::<Spin>(&d, "e").create().unwrap_err();
    assert!(matches!(err, Error::EventFull { role: "listeners", max: 1, .. }), "{err}");
    drop(a);
    let b = listener::<Spin>(&d, "e").create().unwrap();
    drop(b);
    assert_clean(&d);
}

#[test]
fn bad_names_and_options_are_refused() {
    let d = domain("names");
    assert!(matches!(listener::<Spin>(&d, "/a/b").create(), Err(Error::InvalidName { .. })));
    assert!(matches!(
        listener::<Spin>(&d, &"x".repeat(81)).create(),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        listener::<Spin>(&d, "e").max_event_id(MAX_EVENT_ID_LIMIT + 1).create(),
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        listener::<Spin>(&d, "e").max_listeners(0).create(),
        Err(Error::Unsupported { .. })
    ));
    assert_clean(&d);
}

/// Maps the channel's segment raw, as a buggy or hostile participant would.
fn raw(d: &str, name: &str) -> (Segment, Layout) {
    let seg_name = SegmentName::new(d, SegmentKind::Event, name).unwrap();
    let seg = Segment::open(&seg_name, SegmentKind::Event, Access::ReadWrite).unwrap();
    // SAFETY: the test keeps the mapping alive; the config is plain data at a valid offset.
    let config = unsafe {
        seg.base().as_ptr().add(Layout::config_offset()).cast::<layout::Config>().read_volatile()
    };
    let layout = Layout::from_config(seg_name.as_str(), &config, seg.len()).unwrap();
    (seg, layout)
}

fn raw_u64(seg: &Segment, offset: usize) -> &AtomicU64 {
    assert!(offset + 8 <= seg.len() && offset.is_multiple_of(8));
    // SAFETY: in bounds and aligned (asserted); the mapping lives as long as `seg`.
    unsafe { seg.base().add(offset).cast::<AtomicU64>().as_ref() }
}

fn raw_u32(seg: &Segment, offset: usize) -> &AtomicU32 {
    assert!(offset + 4 <= seg.len() && offset.is_multiple_of(4));
    // SAFETY: in bounds and aligned (asserted); the mapping lives as long as `seg`.
    unsafe { seg.base().add(offset).cast::<AtomicU32>().as_ref() }
}

#[test]
fn garbage_pending_bits_are_an_error_naming_the_slot_and_are_cleared() {
    let d = domain("garbage");
    let l = listener::<Spin>(&d, "e").max_event_id(9).create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    let (seg, layout) = raw(&d, "e");
    // A bit for id 40 (beyond 9) and a real event for id 2.
    raw_u64(&seg, layout.listener_offset(0) + layout.bits_offset(0))
        .fetch_or(1 << 40, Ordering::SeqCst);
    n.notify(id(2)).unwrap();
    let err = l.try_wait().unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("listener slot 0") && msg.contains("ids 40"), "{msg}");
    // The garbage is gone; the real event is still there.
    assert_eq!(l.try_wait().unwrap(), Some(id(2)));
    raw_u64(&seg, layout.listener_offset(0) + layout.bits_offset(0))
        .fetch_or(1 << 63, Ordering::SeqCst);
    assert!(matches!(l.try_wait_all(&mut Vec::new()), Err(Error::Corrupted { .. })));
    assert_eq!(l.try_wait().unwrap(), None);
}

#[test]
fn a_hint_without_a_count_is_ignored() {
    let d = domain("hint");
    let l = listener::<Spin>(&d, "e").create().unwrap();
    let (seg, layout) = raw(&d, "e");
    raw_u64(&seg, layout.listener_offset(0) + layout.bits_offset(1))
        .fetch_or(1 << 3, Ordering::SeqCst);
    assert_eq!(l.try_wait().unwrap(), None);
    assert_eq!(
        raw_u64(&seg, layout.listener_offset(0) + layout.bits_offset(1)).load(Ordering::SeqCst),
        0
    );
    assert_eq!(l.wait_timeout(Duration::from_millis(5)).unwrap(), None);
}

#[test]
fn a_garbage_listener_state_is_not_notified() {
    let d = domain("state");
    let l = listener::<Spin>(&d, "e").max_listeners(2).create().unwrap();
    let (seg, layout) = raw(&d, "e");
    raw_u32(&seg, layout.listener_offset(1)).store(0xdead, Ordering::SeqCst);
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    n.notify(id(1)).unwrap();
    assert_eq!(l.try_wait().unwrap(), Some(id(1)));
    // Leaving reaps the garbage slot (nobody holds its token), so nothing stays behind.
    drop((l, n));
    assert_clean(&d);
}

#[test]
fn a_foreign_segment_under_the_name_is_replaced_when_nobody_uses_it() {
    let d = domain("foreign");
    let name = SegmentName::new(&d, SegmentKind::Event, "e").unwrap();
    let seg = Segment::create(&name, SegmentKind::Event, 4096).unwrap();
    // No live process holds a token of the channel: the garbage is replaced.
    let l = listener::<Spin>(&d, "e").create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    n.notify(id(1)).unwrap();
    assert_eq!(l.try_wait().unwrap(), Some(id(1)));
    drop((seg, l, n));
    assert_clean(&d);
}

#[test]
fn a_corrupt_channel_in_use_is_an_error_not_destroyed() {
    let d = domain("corrupt-live");
    let l = listener::<Spin>(&d, "e").create().unwrap();
    let (seg, _) = raw(&d, "e");
    raw_u64(&seg, Layout::config_offset()).store(0x0bad_c0de, Ordering::SeqCst);
    let err = listener::<Spin>(&d, "e").create().unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains(seg.name().as_str()), "{err}");
    assert!(err.to_string().contains("live process"), "{err}");
    // Still there for its live listener, which removes it when it leaves.
    drop(seg);
    drop(l);
    assert_clean(&d);
}

// ---- membership, liveness and cleanup --------------------------------------------------------

#[test]
fn half_created_segments_are_replaced() {
    for size in [0, 4096] {
        let d = domain("half");
        // What a creator killed after shm_open (size 0) or after sizing (zeroed header) leaves.
        let name = SegmentName::new(&d, SegmentKind::Event, "e").unwrap();
        drop(segment::platform().create(name.as_str(), size).unwrap());
        let l = listener::<Spin>(&d, "e").create().unwrap();
        let n = notifier::<Spin>(&d, "e").create().unwrap();
        n.notify(id(1)).unwrap();
        assert_eq!(l.try_wait().unwrap(), Some(id(1)));
        drop((l, n));
        assert_clean(&d);
    }
}

#[test]
fn dead_notifiers_are_reaped_and_reported() {
    let d = domain("dead");
    let l = listener::<Spin>(&d, "e").report_dead_notifiers(true).create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    assert_eq!(l.notifiers_alive().unwrap(), 1);
    // Forge a notifier that died: its slot reads active, nobody holds its token.
    let (seg, layout) = raw(&d, "e");
    raw_u32(&seg, layout.notifier_offset(5)).store(ACTIVE, Ordering::SeqCst);
    n.notify(id(4)).unwrap();
    // A probe finds (and reaps) the dead one; the next wait reports it before the event.
    assert_eq!(l.notifiers_alive().unwrap(), 1);
    let err = l.wait().unwrap_err();
    assert!(matches!(err, Error::NotifierDied { died: 1, alive: 1, .. }), "{err}");
    // Reported once; the event is still there.
    assert_eq!(l.wait().unwrap(), id(4));
    assert_eq!(l.notifiers_alive().unwrap(), 1);
    assert_eq!(l.try_wait().unwrap(), None);
    drop((l, n));
    assert_clean(&d);
}

#[test]
fn stale_channels_whose_participants_all_died_are_replaced() {
    let d = domain("stale");
    // Copy a real channel's bytes, then recreate them under the name with slots that read
    // active and no process behind them: what a channel whose processes were all killed is.
    let l = listener::<Spin>(&d, "e").max_event_id(5).create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    let (seg, layout) = raw(&d, "e");
    // SAFETY: the mapping is `seg.len()` bytes and stays alive while we copy.
    let bytes = unsafe { std::slice::from_raw_parts(seg.base().as_ptr(), seg.len()) }.to_vec();
    drop((seg, l, n));
    assert_clean(&d);
    let name = SegmentName::new(&d, SegmentKind::Event, "e").unwrap();
    let forged =
        Segment::create_with(segment::platform(), &name, SegmentKind::Event, bytes.len(), |seg| {
            let payload = segment::HEADER_SIZE;
            // SAFETY: fresh writable mapping of `bytes.len()` bytes; we write past the header only.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes[payload..].as_ptr(),
                    seg.base().as_ptr().add(payload),
                    bytes.len() - payload,
                )
            };
        })
        .unwrap();
    raw_u32(&forged, layout.listener_offset(0)).store(ACTIVE, Ordering::SeqCst);
    raw_u32(&forged, layout.notifier_offset(0)).store(ACTIVE, Ordering::SeqCst);
    drop(forged);
    // The next participant replaces it, with its own options.
    let l = listener::<Spin>(&d, "e").max_event_id(50).create().unwrap();
    assert_eq!(l.max_event_id(), 50);
    assert_eq!(l.notifiers_alive().unwrap(), 0);
    drop(l);
    assert_clean(&d);
}

#[test]
fn no_notifiers_is_reported_once_when_the_last_one_leaves() {
    let d = domain("none");
    let l = listener::<Spin>(&d, "e").report_no_notifiers(true).create().unwrap();
    // No notifier ever seen: a wait just times out.
    assert_eq!(l.wait_timeout(Duration::from_millis(5)).unwrap(), None);
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let start = Instant::now();
            (l.wait(), start.elapsed())
        });
        n.notify(id(1)).unwrap();
        assert_eq!(waiter.join().unwrap().0.unwrap(), id(1));
        let waiter = s.spawn(|| l.wait());
        drop(n);
        let err = waiter.join().unwrap().unwrap_err();
        assert!(matches!(err, Error::NoNotifiers { .. }), "{err}");
    });
    // Edge-triggered: the next wait waits (for a new notifier).
    assert_eq!(l.wait_timeout(Duration::from_millis(5)).unwrap(), None);
    drop(l);
    assert_clean(&d);
}

#[test]
fn a_recycled_listener_slot_gets_fresh_state_and_wakes() {
    fn check<B: WaitBackend>() {
        let d = domain("recycle");
        let n = notifier::<B>(&d, "e").create().unwrap();
        let first = listener::<B>(&d, "e").create().unwrap();
        n.notify(id(1)).unwrap();
        drop(first); // leaves with an event pending
        let second = listener::<B>(&d, "e").create().unwrap();
        assert_eq!(second.try_wait().unwrap(), None, "{}: inherited an event", B::NAME);
        std::thread::scope(|s| {
            let t = s.spawn(|| second.wait_timeout(Duration::from_secs(30)));
            n.notify(id(2)).unwrap();
            assert_eq!(t.join().unwrap().unwrap(), Some(id(2)), "{}", B::NAME);
        });
        drop((second, n));
        assert_clean(&d);
    }
    every_backend!(check);
}

// ---- one suite, every backend ----------------------------------------------------------------

/// Two notifier threads, a listener shared by three waiting threads and a second listener that
/// drains: every event is taken exactly once per listener.
fn threads_account_for_every_event<B: WaitBackend>() {
    const PER_NOTIFIER: u64 = 3_000;
    let d = domain("threads");
    let shared = listener::<B>(&d, "e").max_event_id(63).create().unwrap();
    let drainer = listener::<B>(&d, "e").create().unwrap();
    let notifiers =
        [notifier::<B>(&d, "e").create().unwrap(), notifier::<B>(&d, "e").create().unwrap()];
    let total = AtomicU64::new(0);
    let taken: Vec<BTreeMap<u64, u64>> = std::thread::scope(|s| {
        let mut takers = Vec::new();
        for _ in 0..3 {
            let (shared, total) = (&shared, &total);
            takers.push(s.spawn(move || {
                let mut mine = BTreeMap::new();
                while total.load(Ordering::SeqCst) < 2 * PER_NOTIFIER {
                    if let Some(e) = shared.wait_timeout(Duration::from_millis(20)).unwrap() {
                        *mine.entry(e.value()).or_insert(0) += 1;
                        total.fetch_add(1, Ordering::SeqCst);
                    }
                }
                mine
            }));
        }
        let drain = s.spawn(|| {
            let mut mine = BTreeMap::new();
            let (mut got, mut buf) = (0, Vec::new());
            while got < 2 * PER_NOTIFIER {
                buf.clear();
                drainer.wait_all_timeout(&mut buf, Duration::from_secs(30)).unwrap();
                for &(e, c) in &buf {
                    *mine.entry(e.value()).or_insert(0) += c;
                    got += c;
                }
            }
            mine
        });
        for (k, n) in notifiers.iter().enumerate() {
            s.spawn(move || {
                for i in 0..PER_NOTIFIER {
                    n.notify(id(k as u64 * 32 + i % 32)).unwrap();
                }
            });
        }
        let mut shared_counts = BTreeMap::new();
        for t in takers {
            for (k, v) in t.join().unwrap() {
                *shared_counts.entry(k).or_insert(0) += v;
            }
        }
        vec![shared_counts, drain.join().unwrap()]
    });
    let expected: BTreeMap<u64, u64> =
        (0..64).map(|i| (i, PER_NOTIFIER / 32 + u64::from(i % 32 < PER_NOTIFIER % 32))).collect();
    for (who, counts) in ["shared listener", "draining listener"].iter().zip(&taken) {
        assert_eq!(counts, &expected, "{}: {who} miscounted", B::NAME);
    }
    assert_eq!(shared.try_wait().unwrap(), None);
    assert_eq!(drainer.try_wait().unwrap(), None);
    drop((shared, drainer, notifiers));
    assert_clean(&d);
}

/// `wait_timeout` with nothing coming returns `None`, not early and not very late.
fn times_out_on_time<B: WaitBackend>() {
    let d = domain("timeout");
    let l = listener::<B>(&d, "e").create().unwrap();
    let start = Instant::now();
    assert_eq!(l.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(50), "{}: returned after {took:?}", B::NAME);
    assert!(took < Duration::from_secs(5), "{}: returned after {took:?}", B::NAME);
    drop(l);
    assert_clean(&d);
}

#[test]
fn every_backend_accounts_for_every_event() {
    every_backend!(threads_account_for_every_event);
}

#[test]
fn every_backend_times_out_on_time() {
    every_backend!(times_out_on_time);
}

/// Threads blocked on one listener take turns sleeping; every event wakes one of them and none
/// sleeps through a pending event (a lost hand-over shows as a 30 s timeout).
fn threads_share_a_listener<B: WaitBackend>() {
    let d = domain("share");
    let l = listener::<B>(&d, "e").create().unwrap();
    let n = notifier::<B>(&d, "e").create().unwrap();
    for round in 0..50u64 {
        std::thread::scope(|s| {
            let waiting: Vec<_> = (0..3)
                .map(|_| s.spawn(|| l.wait_timeout(Duration::from_secs(30)).unwrap()))
                .collect();
            for k in 0..3 {
                n.notify(id(round % 7 + k)).unwrap();
            }
            for w in waiting {
                assert!(w.join().unwrap().is_some(), "{}: round {round}: a waiter slept", B::NAME);
            }
        });
    }
    assert_eq!(l.try_wait().unwrap(), None);
}

#[test]
fn every_backend_shares_a_listener_between_threads() {
    every_backend!(threads_share_a_listener);
}

/// A notifier killed between counting an event and setting its bit: the event is found again,
/// by the next notify of that id or by reaping the dead notifier.
#[test]
fn an_event_counted_without_its_bit_is_recovered() {
    let d = domain("torn");
    let l = listener::<Spin>(&d, "e").create().unwrap();
    let n = notifier::<Spin>(&d, "e").create().unwrap();
    let (seg, layout) = raw(&d, "e");
    let slot = layout.listener_offset(0);
    // Torn notify of id 70 (bit word 1), then an intact notify of the same id.
    raw_u64(&seg, slot + layout.counter_offset(70)).fetch_add(1, Ordering::SeqCst);
    assert_eq!(l.try_wait().unwrap(), None, "nothing visible yet");
    n.notify(id(70)).unwrap();
    assert_eq!(l.try_wait().unwrap(), Some(id(70)));
    assert_eq!(l.try_wait().unwrap(), Some(id(70)), "the torn event was lost");
    // Torn notify of id 2 by a notifier that then died (its slot reads active, no token).
    raw_u64(&seg, slot + layout.counter_offset(2)).fetch_add(1, Ordering::SeqCst);
    raw_u32(&seg, layout.notifier_offset(7)).store(ACTIVE, Ordering::SeqCst);
    assert_eq!(l.try_wait().unwrap(), None);
    assert_eq!(l.notifiers_alive().unwrap(), 1); // probes: reaps slot 7, repairs the bit
    assert_eq!(l.try_wait().unwrap(), Some(id(2)));
    assert_eq!(l.try_wait().unwrap(), None);
}
