//! Binding a message type to a topic: [`Topic`], which `#[shm(topic = "...")]` implements.

use super::options::Options;
use super::{Publisher, Subscriber};
use crate::error::Result;
use crate::message::ShmMessage;

/// A message type bound to a topic name with `#[shm(topic = "...")]`.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// #[derive(ShmMessage)]
/// #[shm(topic = "robot.pose")]
/// #[repr(C)]
/// struct Pose {
///     x: f64,
///     y: f64,
/// }
///
/// assert_eq!(<Pose as Topic>::NAME, "robot.pose");
/// ```
pub trait Topic: ShmMessage {
    /// The topic's name.
    const NAME: &'static str;

    /// The topic-wide options of `#[shm(topic = "...", history = 4, ...)]`; by default none
    /// (every option adopts the topic's, or the defaults for its creator).
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// #[derive(ShmMessage)]
    /// #[shm(topic = "robot/joints", history = 4, capacity = 32, overflow = "block")]
    /// #[repr(C)]
    /// struct Joints {
    ///     angles: [f32; 6],
    /// }
    ///
    /// assert_eq!(Joints::OPTIONS.get_history(), Some(4));
    /// assert_eq!(Joints::OPTIONS.get_subscriber_capacity(), Some(32));
    /// ```
    const OPTIONS: Options = Options::new();

    /// A publisher on this type's topic with [`OPTIONS`](Self::OPTIONS).
    ///
    /// # Errors
    ///
    /// As [`PublisherBuilder::create`](crate::pubsub::PublisherBuilder::create).
    fn publisher() -> Result<Publisher<Self>>
    where
        Self: Send,
    {
        Publisher::builder(Self::NAME).options(Self::OPTIONS).create()
    }

    /// A subscriber on this type's topic with [`OPTIONS`](Self::OPTIONS).
    ///
    /// # Errors
    ///
    /// As [`SubscriberBuilder::create`](crate::pubsub::SubscriberBuilder::create).
    fn subscriber() -> Result<Subscriber<Self>> {
        Subscriber::builder(Self::NAME).options(Self::OPTIONS).create()
    }
}
