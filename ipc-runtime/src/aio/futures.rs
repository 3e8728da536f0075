//! The futures and the stream, and the methods that make them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Waiting;
use crate::error::Result;
use crate::event::{EventId, Listener};
use crate::message::ShmMessage;
use crate::pubsub::{Sample, Subscriber};
use crate::wait::WaitBackend;

/// The future of [`Subscriber::receive_async`]: the next sample.
///
/// Cancellation-safe: a sample is taken only in the poll that returns it; dropping the future
/// before loses nothing.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Receive<'a, M: ShmMessage, B: WaitBackend> {
    subscriber: &'a Subscriber<M, B>,
    waiting: Waiting<'a, B>,
}

impl<'a, M: ShmMessage, B: WaitBackend> Receive<'a, M, B> {
    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Result<Sample<'a, M, B>>> {
        loop {
            match self.subscriber.try_receive() {
                Ok(Some(sample)) => {
                    self.waiting.disarm();
                    return Poll::Ready(Ok(sample));
                }
                Ok(None) => {}
                Err(err) => {
                    self.waiting.disarm();
                    return Poll::Ready(Err(err));
                }
            }
            match self.waiting.arm(self.subscriber, cx.waker()) {
                Ok(true) => continue,
                Ok(false) => return Poll::Pending,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl<'a, M: ShmMessage, B: WaitBackend> Future for Receive<'a, M, B> {
    type Output = Result<Sample<'a, M, B>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_take(cx)
    }
}

/// The stream of [`Subscriber::stream`]: every sample, as it comes. Never ends by itself; an
/// item is an error when a receive fails (see [`Subscriber::try_receive`]).
#[must_use = "streams do nothing unless polled"]
#[derive(Debug)]
pub struct SampleStream<'a, M: ShmMessage, B: WaitBackend> {
    next: Receive<'a, M, B>,
}

impl<'a, M: ShmMessage, B: WaitBackend> futures_core::Stream for SampleStream<'a, M, B> {
    type Item = Result<Sample<'a, M, B>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().next.poll_take(cx).map(Some)
    }
}

/// The future of [`Listener::wait_async`]: the next event.
///
/// Cancellation-safe: an event is taken only in the poll that returns it.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct WaitEvent<'a, B: WaitBackend> {
    listener: &'a Listener<B>,
    waiting: Waiting<'a, B>,
}

impl<B: WaitBackend> Future for WaitEvent<'_, B> {
    type Output = Result<EventId>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this.listener.try_wait() {
                Ok(Some(id)) => {
                    this.waiting.disarm();
                    return Poll::Ready(Ok(id));
                }
                Ok(None) => {}
                Err(err) => {
                    this.waiting.disarm();
                    return Poll::Ready(Err(err));
                }
            }
            match this.waiting.arm(this.listener, cx.waker()) {
                Ok(true) => continue,
                Ok(false) => return Poll::Pending,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl<M: ShmMessage, B: WaitBackend> Subscriber<M, B> {
    /// Waits for the next message without blocking the thread: `subscriber.receive_async().await`.
    /// Cancellation-safe (see [`Receive`]); see the [`aio`](crate::aio) module for how it sleeps.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-recv-async-{}", std::process::id())).unwrap();
    /// let subscriber = Subscriber::<u32>::new("async-values")?;
    /// let publisher = Publisher::<u32>::new("async-values")?;
    /// let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    /// let value = runtime.block_on(async {
    ///     let later = tokio::spawn(async move {
    ///         tokio::task::yield_now().await;
    ///         publisher.publish(9)
    ///     });
    ///     let sample = subscriber.receive_async().await?;
    ///     later.await.unwrap()?;
    ///     Ok::<u32, ipc_runtime::Error>(*sample)
    /// })?;
    /// assert_eq!(value, 9);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn receive_async(&self) -> Receive<'_, M, B> {
        Receive { subscriber: self, waiting: Waiting::new() }
    }

    /// Every sample as it comes, as a [`Stream`](futures_core::Stream).
    ///
    /// ```
    /// use std::pin::pin;
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-stream-{}", std::process::id())).unwrap();
    /// let subscriber = Subscriber::<u32>::new("streamed")?;
    /// let publisher = Publisher::<u32>::new("streamed")?;
    /// publisher.publish(1)?;
    /// publisher.publish(2)?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(async {
    ///     let mut stream = pin!(subscriber.stream());
    ///     for expected in [1, 2] {
    ///         let sample = std::future::poll_fn(|cx| {
    ///             futures_core::Stream::poll_next(stream.as_mut(), cx)
    ///         })
    ///         .await
    ///         .expect("never ends")?;
    ///         assert_eq!(*sample, expected);
    ///     }
    ///     Ok::<(), ipc_runtime::Error>(())
    /// })?;
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn stream(&self) -> SampleStream<'_, M, B> {
        SampleStream { next: self.receive_async() }
    }
}

impl<B: WaitBackend> Listener<B> {
    /// Waits for the next event without blocking the thread: `listener.wait_async().await`.
    /// Cancellation-safe (see [`WaitEvent`]).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # let name = format!("doc-wait-async-{}", std::process::id());
    /// let listener = Listener::new(&name)?;
    /// Notifier::new(&name)?.notify(EventId::new(4))?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(runtime.block_on(listener.wait_async())?, EventId::new(4));
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn wait_async(&self) -> WaitEvent<'_, B> {
        WaitEvent { listener: self, waiting: Waiting::new() }
    }
}
