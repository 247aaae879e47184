//! [`KeySubscription`]: a [`Subscription`] to one key of a registry, which keeps the key's
//! log from being evicted while it lives.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use crate::event::EncodedEvent;
use crate::replay::Subscription;

use super::slot::{Clock, Slot};

/// A stream of one key's events from a [`LogRegistry`](super::LogRegistry): a
/// [`Subscription`] to the key's log that also counts as the key's subscriber.
///
/// While it lives, the key's log is not evicted; dropping it counts as activity, so the
/// idle time starts when the last subscriber goes. Made by
/// [`LogRegistry::subscribe`](super::LogRegistry::subscribe); it yields what the
/// [`Subscription`] yields.
#[must_use = "streams do nothing unless polled"]
pub struct KeySubscription {
    inner: Subscription,
    slot: Arc<Slot>,
    clock: Clock,
}

impl KeySubscription {
    /// `slot`'s subscriber count has been raised for this subscription.
    pub(super) fn new(inner: Subscription, slot: Arc<Slot>, clock: Clock) -> Self {
        Self { inner, slot, clock }
    }

    /// Whether the key's log refused the client's `Last-Event-ID`; see
    /// [`Subscription::is_rejected`].
    pub fn is_rejected(&self) -> bool {
        self.inner.is_rejected()
    }
}

impl Stream for KeySubscription {
    type Item = EncodedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EncodedEvent>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl FusedStream for KeySubscription {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl Drop for KeySubscription {
    fn drop(&mut self) {
        self.slot.unsubscribed(self.clock.now_ms());
    }
}

impl fmt::Debug for KeySubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySubscription")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}
