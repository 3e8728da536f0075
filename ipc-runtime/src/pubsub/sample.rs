//! Samples: a received message ([`Sample`], a read guard) and a loaned one being built in place
//! ([`SampleMut`]).

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::publisher::Publisher;
use super::ring::INLINE_WORDS;
use super::subscriber::Subscriber;
use crate::error::Result;
use crate::message::ShmMessage;
use crate::wait::{DefaultBackend, WaitBackend};

/// One entry of a publisher's sample pool, in the publisher's heap.
#[repr(C)]
pub(crate) struct SampleSlot<M> {
    pub sequence: u64,
    pub _reserved: u64,
    pub value: MaybeUninit<M>,
}

/// A received message: read access to a sample in the publisher's memory, without a copy.
///
/// While the `Sample` lives, the publisher keeps the message untouched; dropping it returns the
/// slot to the publisher (which then drops the message in its own process). A small message
/// without destructor or padding (at most 48 bytes, see
/// [`ShmSafe::NO_UNINIT`](crate::ShmSafe::NO_UNINIT)) travels inside the ring entry instead,
/// and the `Sample` holds a copy of it: one cache line crosses between the processes, and
/// nothing needs returning.
///
/// ```no_run
/// use ipc_runtime::prelude::*;
///
/// let subscriber = Subscriber::<u64>::new("counter")?;
/// let sample = subscriber.receive()?;
/// println!("#{}: {}", sample.sequence(), *sample);
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct Sample<'a, M: ShmMessage, B: WaitBackend = DefaultBackend> {
    pub(crate) subscriber: &'a Subscriber<M, B>,
    pub(crate) publisher: u32,
    pub(crate) generation: u32,
    pub(crate) sequence: u64,
    pub(crate) held: Held<M>,
}

/// Where a sample's message is.
pub(crate) enum Held<M> {
    /// In a slot of the publisher's pool, returned on drop.
    Slot {
        slot: NonNull<SampleSlot<M>>,
        /// The serial of the connection it came from (process-local, never reused): returns go
        /// only to that connection, and the publisher's heap stays mapped until they do.
        conn: u64,
        index: u32,
    },
    /// A copy of a message that travelled inside its ring entry (no destructor): its payload
    /// words, which hold all of its bytes. Words, not an `M`, so that a `Sample` of a large
    /// message type stays small (it is moved on every receive).
    Copy([u64; INLINE_WORDS]),
}

impl<M: ShmMessage> Held<M> {
    /// Checks the message's bits ([`ShmSafe::check_bits`](crate::ShmSafe::check_bits)) before
    /// anyone sees it as an `M`. Nothing at all for a type without invalid bit patterns
    /// (`MAY_BE_INVALID` is a constant, and this is inlined).
    #[inline(always)]
    pub(crate) fn check(&self) -> std::result::Result<(), crate::message::InvalidValue> {
        if !M::MAY_BE_INVALID {
            return Ok(());
        }
        let at: *const M = match self {
            Held::Slot { slot, .. } => {
                // SAFETY: the slot lies in the mapped pool (checked when the subscriber
                // connected); the projection makes no reference to the value.
                unsafe { std::ptr::addr_of!((*slot.as_ptr()).value) }.cast()
            }
            Held::Copy(words) => words.as_ptr().cast(),
        };
        // SAFETY: `at` points to `size_of::<M>()` readable bytes: a pool slot the publisher
        // delivered to us and leaves alone until we return it, or our copy of the words of an
        // inline message (which hold all of its bytes, `layout::carries_inline`). The bytes are
        // initialised: mapped memory, or our copy of it.
        unsafe { M::check_bits(at) }
    }
}

// SAFETY: a sample gives shared access to an `M` in read-only shared memory; moving it to another
// thread is fine when `M` may be shared (its drop only talks to the subscriber, which is Sync).
unsafe impl<M: ShmMessage + Sync, B: WaitBackend> Send for Sample<'_, M, B> {}
// SAFETY: as above; `&Sample` only hands out `&M`.
unsafe impl<M: ShmMessage + Sync, B: WaitBackend> Sync for Sample<'_, M, B> {}

impl<M: ShmMessage, B: WaitBackend> Sample<'_, M, B> {
    /// The publisher's sequence number of this message (1, 2, 3, … per publisher). A gap means
    /// messages were dropped for this subscriber (`Overflow::DropOldest`).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Index of the publisher slot this message came from (distinguishes the publishers of a
    /// topic alive at one time; their sequences are independent). A publisher that restarts
    /// may get the same index: [`publisher`](Self::publisher) tells them apart.
    pub fn publisher_index(&self) -> u32 {
        self.publisher
    }

    /// Which publisher sent this message: its slot in the topic and the slot's generation.
    /// Every publisher that joins a topic gets an id no earlier publisher of the topic had, so
    /// a new id with a [`sequence`](Self::sequence) back at 1 means a restart (or another
    /// process), not lost messages.
    ///
    /// ```
    /// use ipc_runtime::prelude::*;
    ///
    /// # ipc_runtime::domain::set_current(&format!("doc-pubid-{}", std::process::id())).unwrap();
    /// let subscriber = Subscriber::<u64>::new("doc/restarts")?;
    /// let first = Publisher::<u64>::new("doc/restarts")?;
    /// first.publish(7)?;
    /// let before = subscriber.receive()?.publisher();
    /// drop(first); // the publisher goes away and comes back
    /// let second = Publisher::<u64>::new("doc/restarts")?;
    /// second.publish(8)?;
    /// let sample = subscriber.receive()?;
    /// assert_ne!(sample.publisher(), before);
    /// assert_eq!(sample.sequence(), 1);
    /// # Ok::<(), ipc_runtime::Error>(())
    /// ```
    pub fn publisher(&self) -> PublisherId {
        PublisherId { index: self.publisher, generation: self.generation }
    }
}

/// Identifies one publisher of a topic for its whole life: the slot it holds and the slot's
/// generation, which every new holder bumps. Two samples with equal ids come from the same
/// publisher, in [`sequence`](Sample::sequence) order.
///
/// ```
/// # use ipc_runtime::pubsub::PublisherId;
/// fn describe(id: PublisherId) -> String {
///     format!("{id}: slot {}, generation {}", id.index(), id.generation())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublisherId {
    index: u32,
    generation: u32,
}

impl PublisherId {
    pub(crate) fn new(index: u32, generation: u32) -> Self {
        PublisherId { index, generation }
    }

    /// The publisher's slot in the topic (reused after it leaves).
    pub fn index(self) -> u32 {
        self.index
    }

    /// The slot's generation: bumped for every publisher that takes the slot.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Display for PublisherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "publisher {}.{}", self.index, self.generation)
    }
}

impl<M: ShmMessage, B: WaitBackend> Deref for Sample<'_, M, B> {
    type Target = M;
    fn deref(&self) -> &M {
        match &self.held {
            // SAFETY: the slot lies in the publisher's pool, resolved with bounds checks when
            // the subscriber connected, and stays mapped while this sample lives (its
            // connection, or once that is gone its parked hold, keeps the heap until the sample
            // is released); the publisher initialised the value before delivering
            // the index and leaves it untouched until this sample is returned.
            Held::Slot { slot, .. } => unsafe { slot.as_ref().value.assume_init_ref() },
            // SAFETY: only messages that travel inline are held as words: at most
            // `INLINE_WORDS` words and aligned to at most 8 (`layout::carries_inline`), so the
            // words hold all of the message's bytes at a suitable alignment; the subscriber
            // copied them from a message the publisher wrote and kept the copy only if the
            // entry did not change meanwhile.
            Held::Copy(words) => unsafe { &*words.as_ptr().cast::<M>() },
        }
    }
}

impl<M: ShmMessage + fmt::Debug, B: WaitBackend> fmt::Debug for Sample<'_, M, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sample")
            .field("sequence", &self.sequence)
            .field("publisher", &self.publisher())
            .field("value", &**self)
            .finish()
    }
}

impl<M: ShmMessage, B: WaitBackend> Drop for Sample<'_, M, B> {
    fn drop(&mut self) {
        if let Held::Slot { conn, index, .. } = self.held {
            self.subscriber.release(self.publisher, conn, index);
        }
    }
}

/// A sample slot loaned from a publisher, to build a message in place (no copy at publish).
///
/// Get one from [`Publisher::loan`] (initialised with `M::default()`) or
/// [`Publisher::loan_uninit`] (then [`SampleMut::write`]), modify it through `DerefMut`, and
/// [`publish`](SampleMut::publish) it. Dropping it unpublished returns the slot.
///
/// ```
/// use ipc_runtime::prelude::*;
///
/// # let domain = format!("doc-loan-{}", std::process::id());
/// # ipc_runtime::domain::set_current(&domain).unwrap();
/// #[derive(ShmMessage, Default)]
/// #[repr(C)]
/// struct Image {
///     width: u32,
///     pixels: ShmVec<u8>,
/// }
///
/// let publisher = Publisher::<Image>::new("images")?;
/// let mut sample = publisher.loan()?;
/// sample.width = 4;
/// sample.pixels.extend_from_slice(&[0; 16]);
/// sample.publish()?;
/// # Ok::<(), ipc_runtime::Error>(())
/// ```
pub struct SampleMut<'a, M: ShmMessage + Send, B: WaitBackend = DefaultBackend, T = M> {
    pub(crate) publisher: &'a Publisher<M, B>,
    pub(crate) slot: NonNull<SampleSlot<M>>,
    pub(crate) index: u32,
    pub(crate) initialized: bool,
    pub(crate) _payload: std::marker::PhantomData<T>,
}

impl<'a, M: ShmMessage + Send, B: WaitBackend> SampleMut<'a, M, B, MaybeUninit<M>> {
    /// Initialises the loaned slot with `value`.
    pub fn write(mut self, value: M) -> SampleMut<'a, M, B> {
        // SAFETY: the slot is ours (loaned) and uninitialised.
        unsafe { (*self.slot.as_ptr()).value.write(value) };
        self.initialized = true;
        self.retype()
    }

    /// Declares the slot initialised after writing it through `DerefMut`.
    ///
    /// # Safety
    /// Every byte of the `M` must have been initialised to a valid value.
    pub unsafe fn assume_init(mut self) -> SampleMut<'a, M, B> {
        self.initialized = true;
        self.retype()
    }
}

impl<'a, M: ShmMessage + Send, B: WaitBackend, T> SampleMut<'a, M, B, T> {
    fn retype<U>(self) -> SampleMut<'a, M, B, U> {
        let this = std::mem::ManuallyDrop::new(self);
        SampleMut {
            publisher: this.publisher,
            slot: this.slot,
            index: this.index,
            initialized: this.initialized,
            _payload: std::marker::PhantomData,
        }
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> SampleMut<'_, M, B> {
    /// Publishes the message to every subscriber (zero-copy: they read this very slot).
    ///
    /// # Errors
    /// As [`Publisher::publish`], except that the slot is already taken, so never
    /// [`Error::OutOfSamples`](crate::Error::OutOfSamples).
    pub fn publish(self) -> Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        this.publisher.publish_loaned(this.index)
    }

    /// Publishes with `tag` in place of the sequence number (see `Publisher::publish_tagged`).
    pub(crate) fn publish_tagged(self, tag: u64) -> Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        this.publisher.publish_loaned_tagged(this.index, Some(tag))
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> Deref for SampleMut<'_, M, B> {
    type Target = M;
    fn deref(&self) -> &M {
        // SAFETY: this type state is only reachable with an initialised slot that we own.
        unsafe { self.slot.as_ref().value.assume_init_ref() }
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> DerefMut for SampleMut<'_, M, B> {
    fn deref_mut(&mut self) -> &mut M {
        // SAFETY: as in `deref`; `&mut self` is exclusive and the slot is loaned to us only.
        unsafe { (*self.slot.as_ptr()).value.assume_init_mut() }
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> Deref for SampleMut<'_, M, B, MaybeUninit<M>> {
    type Target = MaybeUninit<M>;
    fn deref(&self) -> &MaybeUninit<M> {
        // SAFETY: the slot is loaned to us; `MaybeUninit` makes no validity claim.
        unsafe { &self.slot.as_ref().value }
    }
}

impl<M: ShmMessage + Send, B: WaitBackend> DerefMut for SampleMut<'_, M, B, MaybeUninit<M>> {
    fn deref_mut(&mut self) -> &mut MaybeUninit<M> {
        // SAFETY: as above, exclusively.
        unsafe { &mut (*self.slot.as_ptr()).value }
    }
}

impl<M: ShmMessage + Send, B: WaitBackend, T> fmt::Debug for SampleMut<'_, M, B, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SampleMut")
            .field("index", &self.index)
            .field("initialized", &self.initialized)
            .finish()
    }
}

impl<M: ShmMessage + Send, B: WaitBackend, T> Drop for SampleMut<'_, M, B, T> {
    fn drop(&mut self) {
        self.publisher.return_loan(self.index, self.initialized);
    }
}
