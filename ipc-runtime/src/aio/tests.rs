//! The futures within one process, on tokio's two runtimes and several backends. Across
//! processes: `tests/async_cross_process.rs`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::event::{EventId, Listener, Notifier};
use crate::pubsub::{Publisher, Subscriber};
use crate::wait::{DefaultBackend, Polling, WaitBackend};

fn domain(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("ut{}-aio{}-{tag}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Two subscribers and a listener in one `select!` loop, fed by threads: everything arrives,
/// once, in order per publisher.
fn select_loop<B: WaitBackend>(runtime: tokio::runtime::Runtime) {
    const MESSAGES: u64 = 3_000;
    const EVENTS: u64 = 200;
    let d = domain("select");
    let subs: Vec<Subscriber<u64, B>> = (0..2)
        .map(|i| {
            Subscriber::<u64>::builder(&format!("t{i}"))
                .domain(&d)
                .overflow(crate::Overflow::Block)
                .backend::<B>()
                .create()
                .unwrap()
        })
        .collect();
    let listener = Listener::builder("ev").domain(&d).backend::<B>().create().unwrap();
    std::thread::scope(|s| {
        for i in 0..2 {
            let d = &d;
            s.spawn(move || {
                let publisher = Publisher::<u64>::builder(&format!("t{i}"))
                    .domain(d)
                    .overflow(crate::Overflow::Block)
                    .backend::<B>()
                    .create()
                    .unwrap();
                for n in 0..MESSAGES {
                    publisher.publish(n).unwrap();
                }
            });
        }
        let d = &d;
        s.spawn(move || {
            let notifier = Notifier::builder("ev").domain(d).backend::<B>().create().unwrap();
            for n in 0..EVENTS {
                notifier.notify(EventId::new(n % 5)).unwrap();
                if n % 40 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        runtime.block_on(async {
            let mut next = [0u64; 2];
            let mut events = 0;
            let work = async {
                while next.iter().any(|&n| n < MESSAGES) || events < EVENTS {
                    tokio::select! {
                        sample = subs[0].receive_async() => {
                            assert_eq!(*sample.unwrap(), next[0]);
                            next[0] += 1;
                        }
                        sample = subs[1].receive_async() => {
                            assert_eq!(*sample.unwrap(), next[1]);
                            next[1] += 1;
                        }
                        event = listener.wait_async() => {
                            event.unwrap();
                            events += 1;
                        }
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(60), work)
                .await
                .unwrap_or_else(|_| panic!("{}: stuck", B::NAME));
        });
    });
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

#[test]
fn select_current_thread_default() {
    select_loop::<DefaultBackend>(current_thread());
}

#[test]
fn select_multi_thread_default() {
    select_loop::<DefaultBackend>(multi_thread());
}

#[test]
fn select_polling() {
    select_loop::<Polling>(current_thread());
}

#[cfg(all(unix, not(miri)))]
#[test]
fn select_unix_socket() {
    select_loop::<crate::wait::UnixSocket>(multi_thread());
}

/// A receive future polled until pending, then dropped, takes nothing: the message published
/// afterwards is still there.
#[test]
fn dropped_future_loses_nothing() {
    let d = domain("drop");
    let sub = Subscriber::<u64>::builder("t").domain(&d).create().unwrap();
    let publisher = Publisher::<u64>::builder("t").domain(&d).create().unwrap();
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    {
        let mut fut = std::pin::pin!(sub.receive_async());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        publisher.publish(5).unwrap();
        // Dropped without being polled again.
    }
    assert_eq!(*sub.try_receive().unwrap().unwrap(), 5);
    // A future that was pending and is polled again after the publish returns the message.
    let mut fut = std::pin::pin!(sub.receive_async());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    publisher.publish(6).unwrap();
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(sample) => assert_eq!(*sample.unwrap(), 6),
        Poll::Pending => panic!("a published message was not taken"),
    }
}

/// A leaked pending future leaves nothing dangling: the subscriber can go, the waiter keeps
/// working for others.
#[test]
fn leaked_future_is_harmless() {
    let d = domain("leak");
    let runtime = current_thread();
    {
        let sub = Subscriber::<u64>::builder("t").domain(&d).create().unwrap();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut fut = Box::pin(sub.receive_async());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        std::mem::forget(fut);
        let publisher = Publisher::<u64>::builder("t").domain(&d).create().unwrap();
        publisher.publish(1).unwrap();
    }
    let sub = Subscriber::<u64>::builder("u").domain(&d).create().unwrap();
    let publisher = Publisher::<u64>::builder("u").domain(&d).create().unwrap();
    runtime.block_on(async {
        let (got, sent) = tokio::join!(sub.receive_async(), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            publisher.publish(2)
        });
        sent.unwrap();
        assert_eq!(*got.unwrap(), 2);
    });
}
