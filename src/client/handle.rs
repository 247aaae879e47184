//! [`Handle`]: reconnect or close an [`EventSource`](super::EventSource) from anywhere.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

const NONE: u8 = 0;
const RECONNECT: u8 = 1;
const CLOSE: u8 = 2;

/// Asks an [`EventSource`](super::EventSource) to reconnect now or to close, from any task
/// or thread. Cheap to clone; [`EventSource::handle`](super::EventSource::handle) gives one.
///
/// A request is acted on at the stream's next poll (the stream is woken for it): a
/// reconnect drops the current connection and yields
/// [`Item::Reconnecting`](super::Item::Reconnecting) with
/// [`Cause::Requested`](super::Cause::Requested) and no delay; a close drops it and yields
/// [`Item::Closed`](super::Item::Closed), then ends. A close wins over a reconnect.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use futures_util::{stream, StreamExt};
/// use http::{Request, Response};
/// use tower::ServiceBuilder;
/// use tower_sse::client::{Closed, EventSource, Item};
/// use tower_sse::{Event, SseLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = ServiceBuilder::new()
///     .layer(SseLayer::new())
///     .service_fn(|_req: Request<()>| async {
///         let events = stream::iter([Event::new().data("a")]).chain(stream::pending());
///         Ok::<_, Infallible>(Response::new(Box::pin(events)))
///     });
/// let mut source = Box::pin(EventSource::new(server, || Request::new(())));
/// let handle = source.handle();
/// while let Some(Ok(item)) = source.next().await {
///     if let Item::Event(_) = item {
///         handle.close(); // from anywhere: another task, a signal handler
///     }
///     if let Item::Closed(why) = item {
///         assert_eq!(why, Closed::Requested);
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    request: AtomicU8,
    waker: Mutex<Option<Waker>>,
}

/// What the stream was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    Reconnect,
    Close,
}

impl Handle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Drops the current connection (or the wait before the next one) and connects again
    /// at once, as after a configuration change.
    pub fn reconnect(&self) {
        // A pending close stays a close.
        let _ = self.shared.request.compare_exchange(
            NONE,
            RECONNECT,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.shared.wake();
    }

    /// Closes the stream: the connection is dropped, the stream yields
    /// [`Item::Closed`](super::Item::Closed) and ends.
    pub fn close(&self) {
        self.shared.request.store(CLOSE, Ordering::Release);
        self.shared.wake();
    }
}

impl Shared {
    /// Takes the pending request, if any: one atomic load when there is none.
    pub(crate) fn take(&self) -> Option<Request> {
        if self.request.load(Ordering::Acquire) == NONE {
            return None;
        }
        match self.request.swap(NONE, Ordering::AcqRel) {
            RECONNECT => Some(Request::Reconnect),
            CLOSE => Some(Request::Close),
            _ => None,
        }
    }

    /// Whether a request waits to be taken.
    pub(crate) fn is_requested(&self) -> bool {
        self.request.load(Ordering::Acquire) != NONE
    }

    /// Remembers the waker of a poll about to return `Pending`.
    pub(crate) fn register(&self, waker: &Waker) {
        // A poisoned lock only means another thread panicked while holding it; the
        // `Option<Waker>` inside is still sound.
        let mut slot = self
            .waker
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match &*slot {
            Some(current) if current.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_wins_over_reconnect() {
        let shared = Arc::new(Shared::default());
        let handle = Handle::new(shared.clone());
        assert_eq!(shared.take(), None);
        handle.reconnect();
        assert_eq!(shared.take(), Some(Request::Reconnect));
        assert_eq!(shared.take(), None);
        handle.close();
        handle.reconnect();
        assert_eq!(shared.take(), Some(Request::Close));
    }
}
