//! A listener as a [`Source`] of a [`WaitSet`](crate::waitset::WaitSet).
//!
//! It registers on and sleeps on its slot's word, as its own waits do, holding the listener's
//! turn to sleep (or napping in 1 ms slices while another thread of it sleeps). A listener that
//! watches its notifiers is also ready when a liveness probe is due or the notifier set
//! changed, so that `try_wait` reports deaths.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Listener;
use crate::wait::WaitBackend;
use crate::waitset::{Plan, Source};

impl<B: WaitBackend> Source<B> for Listener<B> {
    fn is_ready(&self) -> bool {
        if self.any_pending() {
            return true;
        }
        if !self.watch.any() {
            return false;
        }
        let state = self.state();
        let epoch = self.channel.shared().notifier_epoch.load(Ordering::SeqCst);
        match state.last_probe {
            None => true,
            Some(at) => Instant::now() >= at + self.watch.interval || epoch != state.epoch,
        }
    }

    fn plan<'s>(&'s self, plan: &mut Plan<'s, B>) {
        let word = self.slot().word();
        plan.register(word);
        plan.sleep_on(&self.waiter, word);
        if self.watch.any()
            && let Some(at) = self.state().last_probe
        {
            plan.due(at + self.watch.interval);
        }
        match self.gate.try_enter() {
            true => plan.keep(super::Turn(&self.gate)),
            false => plan.sliced(),
        }
    }
}

#[cfg(feature = "tokio")]
impl<B: WaitBackend> crate::aio::AsyncSource<B> for Listener<B> {
    fn async_plan<'s>(&'s self, plan: &mut crate::aio::AsyncPlan<'s, B>) {
        let word = self.slot().word();
        plan.register(word);
        let channel: std::sync::Arc<dyn std::any::Any + Send + Sync> = self.channel.clone();
        // SAFETY: the slot's word lies in the channel's segment, mapped while the channel
        // (held by the plan) lives.
        unsafe { plan.sleep_on(&self.waiter, word, Some(channel)) };
        if self.watch.any()
            && let Some(at) = self.state().last_probe
        {
            plan.due(at + self.watch.interval);
        }
    }
}
