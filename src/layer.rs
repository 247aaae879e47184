//! [`SseLayer`]: the configuration, and its [`Layer`] impl.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tower_layer::Layer;

use crate::encode::{self, RETRY};
use crate::error::OnItemError;
use crate::keep_alive::KeepAlive;
use crate::last_event_id::LastEventIdPolicy;
use crate::service::Sse;
use crate::shutdown::Shutdown;

/// Turns an inner service's `Response<impl Stream>` into a `text/event-stream` response.
///
/// Defaults: a keep-alive comment after 15 s of silence, no time limits, no `retry:` hint,
/// items that fail end the stream ([`OnItemError::End`]), ready items coalesced into
/// frames of up to 32 KiB, and `Last-Event-ID` values up to 1 KiB read from the header only.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::{KeepAlive, SseLayer};
///
/// let layer = SseLayer::new()
///     .keep_alive(KeepAlive::new().interval(Duration::from_secs(20)))
///     .max_duration(Duration::from_secs(300))
///     .max_duration_jitter(0.1)
///     .idle_timeout(Duration::from_secs(60))
///     .retry(Duration::from_secs(2));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SseLayer {
    // Shared with every service and body made from it; setters copy it only if shared.
    config: Arc<Config>,
}

/// Shared by the layer and every service and body it makes; cloned once per layer call.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) keep_alive: Option<KeepAlive>,
    pub(crate) max_duration: Option<Duration>,
    pub(crate) max_duration_jitter: f64,
    pub(crate) idle_timeout: Option<Duration>,
    /// The first frame of every stream: the `retry:` hint, or an empty comment.
    pub(crate) opening: Bytes,
    pub(crate) on_item_error: OnItemError,
    pub(crate) max_frame_bytes: usize,
    pub(crate) last_event_id: LastEventIdPolicy,
    pub(crate) shutdown: Option<Shutdown>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            keep_alive: Some(KeepAlive::new()),
            max_duration: None,
            max_duration_jitter: 0.0,
            idle_timeout: None,
            opening: Bytes::from_static(b":\n\n"),
            on_item_error: OnItemError::default(),
            max_frame_bytes: 32 * 1024,
            last_event_id: LastEventIdPolicy::default(),
            shutdown: None,
        }
    }
}

impl SseLayer {
    /// A layer with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the keep-alive comment and its interval.
    pub fn keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        Arc::make_mut(&mut self.config).keep_alive = Some(keep_alive);
        self
    }

    /// Sends no keep-alive comments.
    pub fn no_keep_alive(mut self) -> Self {
        Arc::make_mut(&mut self.config).keep_alive = None;
        self
    }

    /// Ends every stream after `max_duration`, cleanly and at an event boundary.
    ///
    /// The browser then reconnects with `Last-Event-ID`. Bounded lifetimes spread load over
    /// servers and let deploys drain.
    pub fn max_duration(mut self, max_duration: Duration) -> Self {
        Arc::make_mut(&mut self.config).max_duration = Some(max_duration);
        self
    }

    /// Shortens each stream's `max_duration` by a random part of up to `fraction` (0 to 1),
    /// so clients that connected together do not reconnect together.
    pub fn max_duration_jitter(mut self, fraction: f64) -> Self {
        Arc::make_mut(&mut self.config).max_duration_jitter = fraction;
        self
    }

    /// Ends a stream whose source has produced no item for `idle_timeout`.
    ///
    /// Keep-alive comments do not count as items.
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).idle_timeout = Some(idle_timeout);
        self
    }

    /// Sends a `retry:` hint first, telling the browser how long to wait before it
    /// reconnects.
    pub fn retry(mut self, delay: Duration) -> Self {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let mut frame = BytesMut::new();
        encode::put_u64_field(&mut frame, RETRY, millis);
        encode::end_event(&mut frame);
        Arc::make_mut(&mut self.config).opening = frame.freeze();
        self
    }

    /// Sets what happens to an item that fails; see [`OnItemError`].
    pub fn on_item_error(mut self, policy: OnItemError) -> Self {
        Arc::make_mut(&mut self.config).on_item_error = policy;
        self
    }

    /// Sets the frame size at which the body stops coalescing ready events (default 32 KiB).
    ///
    /// The body never waits for more events: it gathers events that are already ready into
    /// one frame until the frame holds at least this many bytes. Events are never split, so
    /// a frame can exceed this by one event.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).max_frame_bytes = bytes;
        self
    }

    /// Sets the longest `Last-Event-ID` accepted (default 1024 bytes); longer ones are
    /// ignored.
    pub fn last_event_id_max_len(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).last_event_id.max_len = bytes;
        self
    }

    /// Also reads the last event id from this query parameter when the header is absent,
    /// for `EventSource` polyfills that cannot set headers.
    pub fn last_event_id_query(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        Arc::make_mut(&mut self.config).last_event_id.query_param = Some(name.into());
        self
    }

    /// Ends every stream at an event boundary when `shutdown` is triggered; see
    /// [`Shutdown`].
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        Arc::make_mut(&mut self.config).shutdown = Some(shutdown);
        self
    }

    /// This configuration for a body made without the service, by the axum response type.
    #[cfg(feature = "axum")]
    pub(crate) fn shared_config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }
}

impl<S> Layer<S> for SseLayer {
    type Service = Sse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Sse::from_config(inner, self.config.clone())
    }
}
