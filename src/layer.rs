//! [`SseLayer`]: the configuration, and its [`Layer`] impl.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use crate::config::{retry_frame, LayerConfig};
use crate::error::OnItemError;
use crate::keep_alive::KeepAlive;
use crate::service::Sse;
use crate::shutdown::Shutdown;

/// Turns an inner service's `Response<impl Stream>` into a `text/event-stream` response.
///
/// One layer can front many routes: an inner service overrides these settings for one
/// response with [`SseOptions`](crate::SseOptions) in the response's extensions.
///
/// Defaults: an opening frame at once, a keep-alive comment after 12 to 15 s of silence
/// ([`KeepAlive`]), no time limits, no `retry:` hint,
/// items that fail end the stream ([`OnItemError::End`]), ready items coalesced into
/// frames of up to 32 KiB, `Last-Event-ID` values up to 1 KiB read from the header only,
/// and no compression (feature `compression`: `SseLayer::compression`).
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
    config: Arc<LayerConfig>,
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
    ///
    /// The hint is the opening frame; with [`no_opening_frame`](Self::no_opening_frame) it
    /// goes out, as its own `retry:` block, in front of the stream's first frame instead
    /// (the first event, or the first keep-alive), or just before the end if the stream
    /// ends first.
    pub fn retry(mut self, delay: Duration) -> Self {
        Arc::make_mut(&mut self.config).retry = Some(retry_frame(delay));
        self
    }

    /// Sends nothing until the stream has something to send.
    ///
    /// By default every stream starts with an opening frame, sent at once: the `retry:`
    /// hint, or an empty comment (`:`). It flushes the response headers and a first byte
    /// through proxies, so the browser's `EventSource.onopen` fires before the first event
    /// exists. Turn it off for clients or proxies that count blocks, or that treat a
    /// comment as an event; a [`retry`](Self::retry) hint then waits for the first frame.
    /// [`SseOptions::opening_frame`](crate::SseOptions::opening_frame) turns it back on for
    /// one response.
    pub fn no_opening_frame(mut self) -> Self {
        Arc::make_mut(&mut self.config).opening_frame = false;
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

    /// Labels the metrics of this layer's streams with the route name `route` (feature
    /// `metrics`), in the `sse.route` label; `"default"` when unset. See
    /// [`tower_sse::metrics`](crate::metrics) for the metrics.
    ///
    /// Give each layer, or each kind of stream, a fixed name of your choosing: labels must
    /// stay few, so never a name taken from the request. One response can carry its own
    /// with [`SseOptions::metrics_route`](crate::SseOptions::metrics_route).
    ///
    /// # Example
    ///
    /// ```
    /// use tower_sse::SseLayer;
    ///
    /// let layer = SseLayer::new().metrics_route("prices");
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics_route(mut self, route: impl Into<Cow<'static, str>>) -> Self {
        let metrics = crate::metrics::RouteMetrics::new(route.into());
        Arc::make_mut(&mut self.config).metrics = Arc::new(metrics);
        self
    }

    /// Compresses every stream whose client accepts it (`Accept-Encoding: gzip`), each frame
    /// flushed as it is sent; see [`Compression`](crate::Compression). Off by default.
    ///
    /// ```
    /// use tower_sse::{Compression, SseLayer};
    ///
    /// let layer = SseLayer::new().compression(Compression::gzip().window_bits(13).hash_bits(12));
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "compression")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compression")))]
    pub fn compression(mut self, compression: crate::Compression) -> Self {
        Arc::make_mut(&mut self.config).compression = Some(compression);
        self
    }

    /// Sends every stream uncompressed (the default);
    /// [`SseOptions::compression`](crate::SseOptions::compression) still turns it on for one
    /// response.
    #[cfg(feature = "compression")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compression")))]
    pub fn no_compression(mut self) -> Self {
        Arc::make_mut(&mut self.config).compression = None;
        self
    }

    /// This configuration for a body made without the service, by the axum response type.
    #[cfg(feature = "axum")]
    pub(crate) fn shared_config(&self) -> Arc<LayerConfig> {
        Arc::clone(&self.config)
    }
}

impl<S> Sse<S> {
    /// A layer that wraps services in `Sse`; the same as [`SseLayer::new`].
    pub fn layer() -> SseLayer {
        SseLayer::new()
    }
}

impl<S> Layer<S> for SseLayer {
    type Service = Sse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Sse::from_config(inner, self.config.clone())
    }
}
