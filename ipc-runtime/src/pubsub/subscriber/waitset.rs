//! A subscriber as a [`Source`] of a [`WaitSet`](crate::waitset::WaitSet), and
//! [`Subscriber::try_iter`].
//!
//! A subscriber sleeps like its blocking receive does (see `sleep.rs`): it registers in its own
//! port and sleeps on the topic's word and its publishers' words (broadcasting backends), or on
//! its registry word through its own OS object (other backends; then the wait set takes the
//! subscriber's baton, or naps in 1 ms slices while another thread sleeps on that object).

use super::Subscriber;
use crate::barrier;
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::pubsub::Sample;
use crate::wait::WaitBackend;
use crate::waitset::{Plan, Source};

impl<M: ShmMessage, B: WaitBackend> Source<B> for Subscriber<M, B> {
    fn is_ready(&self) -> bool {
        // `has_data` with one lock instead of two (a wait set asks every source, twice per
        // wait).
        let st = self.state.lock();
        self.topic.epoch() != st.epoch || st.pubs.iter().flatten().any(|conn| conn.ready(self.key))
    }

    fn plan<'s>(&'s self, plan: &mut Plan<'s, B>) {
        let sleep = self.port.sleep();
        // As `Sleeper::sleep`: publishers that skip the fence must learn that we may sleep.
        if !barrier::announce(&sleep.may_sleep, barrier::light_side_may_skip()) {
            plan.sliced();
        }
        plan.register(&sleep.word);
        if !B::BROADCAST {
            // Our own word in the registry, the wake kept in our OS object (see `sleep_words`).
            plan.sleep_on(&self.waiter, &self.topic.subscriber(self.index).word);
            match BatonTurn::take(self) {
                Some(turn) => plan.keep(turn),
                None => plan.sliced(),
            }
            return;
        }
        // As `sleep_words`, without its allocations: the topic's word and each publisher's.
        plan.sleep_on(&self.waiter, self.topic.data_word());
        let st = self.state.lock();
        for conn in st.pubs.iter().flatten() {
            plan.sleep_on(&self.waiter, conn.wake);
            // The word lies in the publisher's heap: held while the sleep lasts.
            if let Some(hold) = conn.hold() {
                plan.keep_shared(hold);
            }
        }
    }
}

/// The baton of a non-broadcasting backend's waiter, held by a wait set while it sleeps.
struct BatonTurn<'s>(&'s super::Baton);

impl<'s> BatonTurn<'s> {
    fn take<M: ShmMessage, B: WaitBackend>(sub: &'s Subscriber<M, B>) -> Option<Self> {
        sub.baton.try_take().then_some(BatonTurn(&sub.baton))
    }
}

impl Drop for BatonTurn<'_> {
    fn drop(&mut self) {
        self.0.hand_back();
    }
}

impl<M: ShmMessage, B: WaitBackend> Subscriber<M, B> {
    /// An iterator over the messages queued now: [`try_receive`](Self::try_receive) until it
    /// finds nothing. Never blocks.
    ///
    /// Each item is a sample or an error. After [`Error::InvalidMessage`] (that message went
    /// back unread) the iterator goes on with later messages; after any other error it ends.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-try-iter-{}", std::process::id())).unwrap();
    /// let subscriber = Subscriber::<u32>::new("queued")?;
    /// let publisher = Publisher::<u32>::new("queued")?;
    /// for n in 0..3 {
    ///     publisher.publish(n)?;
    /// }
    /// let mut seen = Vec::new();
    /// for sample in subscriber.try_iter() {
    ///     seen.push(*sample?);
    /// }
    /// assert_eq!(seen, [0, 1, 2]);
    /// assert!(subscriber.try_iter().next().is_none());
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn try_iter(&self) -> impl Iterator<Item = Result<Sample<'_, M, B>>> + '_ {
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            match self.try_receive() {
                Ok(Some(sample)) => Some(Ok(sample)),
                Ok(None) => {
                    done = true;
                    None
                }
                Err(err) => {
                    // A rejected message is skipped; anything else would repeat.
                    done = !matches!(err, Error::InvalidMessage { .. });
                    Some(Err(err))
                }
            }
        })
    }
}

#[cfg(feature = "tokio")]
impl<M: ShmMessage, B: WaitBackend> crate::aio::AsyncSource<B> for Subscriber<M, B> {
    fn async_plan<'s>(&'s self, plan: &mut crate::aio::AsyncPlan<'s, B>) {
        let sleep = self.port.sleep();
        if !barrier::announce(&sleep.may_sleep, barrier::light_side_may_skip()) {
            plan.due(std::time::Instant::now() + std::time::Duration::from_millis(1));
        }
        plan.register(&sleep.word);
        let topic: std::sync::Arc<dyn std::any::Any + Send + Sync> = self.topic.clone();
        if !B::BROADCAST {
            let word = &self.topic.subscriber(self.index).word;
            // SAFETY: the registry word lies in the topic's segment, mapped while the topic
            // (held by the plan) lives.
            unsafe { plan.sleep_on(&self.waiter, word, Some(topic)) };
            return;
        }
        // SAFETY: as above, for the topic's word.
        unsafe { plan.sleep_on(&self.waiter, self.topic.data_word(), Some(topic)) };
        let st = self.state.lock();
        for conn in st.pubs.iter().flatten() {
            let hold = conn.hold().map(|h| h as std::sync::Arc<dyn std::any::Any + Send + Sync>);
            // SAFETY: the publisher's wake word lies in its heap, which the hold keeps mapped;
            // without a hold the port is in our own heap, mapped for the life of the process.
            unsafe { plan.sleep_on(&self.waiter, conn.wake, hold) };
        }
    }
}
