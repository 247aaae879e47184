//! [`Shutdown`]: ends every live stream at an event boundary, so a server can drain.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

use crate::encode;
use crate::event::Event;
use crate::jitter::jittered;

/// A handle that ends every live SSE body it was given to, for graceful shutdown.
///
/// SSE streams often never end by themselves, so a server waiting for its connections to
/// finish (hyper-util's `GracefulShutdown`, `axum::serve(..).with_graceful_shutdown`) would
/// wait forever. Give the same handle to the layer with [`SseLayer::shutdown`] and call
/// [`trigger`](Self::trigger) when the server starts to drain: each body then stops reading
/// its source, sends the optional farewell event and a `retry:` hint picked at random
/// within the reconnect window, and ends. The clients' reconnects spread over that window
/// instead of all landing on the next server at once.
///
/// [`SseLayer::shutdown`]: crate::SseLayer::shutdown
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::{Event, Shutdown, SseLayer};
///
/// let shutdown = Shutdown::new()
///     .farewell(Event::new().event("bye")?.data("server restarting"))
///     .reconnect_window(Duration::from_secs(10));
/// let layer = SseLayer::new().shutdown(shutdown.clone());
///
/// // Later, when the server is asked to stop:
/// shutdown.trigger();
/// assert!(shutdown.is_triggered());
/// # let _ = layer;
/// # Ok::<(), tower_sse::EventError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Shutdown {
    signal: Arc<Signal>,
    farewell: Option<Bytes>,
    reconnect_window: Duration,
}

#[derive(Debug, Default)]
struct Signal {
    triggered: AtomicBool,
    notify: Arc<Notify>,
}

impl Shutdown {
    /// A handle with no farewell event and a 5 s reconnect window.
    pub fn new() -> Self {
        Self {
            signal: Arc::default(),
            farewell: None,
            reconnect_window: Duration::from_secs(5),
        }
    }

    /// Sends `event` to every client before its stream ends, encoded once here.
    pub fn farewell(mut self, event: Event) -> Self {
        self.farewell = Some(event.encode().into_bytes());
        self
    }

    /// Each client is told to reconnect after a random delay within `window` (sent as
    /// `retry:`); a zero window sends no `retry:` hint.
    pub fn reconnect_window(mut self, window: Duration) -> Self {
        self.reconnect_window = window;
        self
    }

    /// Ends every live body at its next event boundary, and every body made after this at
    /// once.
    pub fn trigger(&self) {
        self.signal.triggered.store(true, Ordering::SeqCst);
        self.signal.notify.notify_waiters();
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        self.signal.triggered.load(Ordering::SeqCst)
    }

    /// A future that completes on trigger; made before checking [`is_triggered`], so a
    /// trigger in between is not missed.
    ///
    /// [`is_triggered`]: Self::is_triggered
    pub(crate) fn notified(&self) -> OwnedNotified {
        self.signal.notify.clone().notified_owned()
    }

    /// The frames a body sends when it drains: the farewell, then a jittered `retry:`.
    pub(crate) fn drain_frame(&self) -> Bytes {
        let mut buf = BytesMut::new();
        if let Some(farewell) = &self.farewell {
            buf.extend_from_slice(farewell);
        }
        if !self.reconnect_window.is_zero() {
            let delay = self.reconnect_window - jittered(self.reconnect_window, 1.0);
            encode::put_retry_field(&mut buf, delay);
            encode::end_event(&mut buf);
        }
        buf.freeze()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_frame_has_farewell_then_retry_within_window() {
        let shutdown = Shutdown::new()
            .farewell(Event::new().data("bye"))
            .reconnect_window(Duration::from_millis(1000));
        for _ in 0..50 {
            let frame = shutdown.drain_frame();
            let text = std::str::from_utf8(&frame).unwrap();
            let retry = text
                .strip_prefix("data: bye\n\nretry: ")
                .and_then(|rest| rest.strip_suffix("\n\n"))
                .unwrap();
            assert!(retry.parse::<u64>().unwrap() <= 1000, "{text}");
        }
        let quiet = Shutdown::new().reconnect_window(Duration::ZERO);
        assert!(quiet.drain_frame().is_empty());
    }
}
