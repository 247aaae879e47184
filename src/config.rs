//! The settings one stream runs with: the layer's shared [`LayerConfig`], and [`SseOptions`], the
//! per-response overrides an inner service can attach to its response.
//!
//! Both live here, below the body, the future and the service, so that every module above
//! reads its settings from one place and imports only run downward. The options sit next
//! to the config because merging them reads the private fields of both.

#[cfg(feature = "metrics")]
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Response;

#[cfg(feature = "compression")]
use crate::compression::Compression;
use crate::encode;
use crate::error::OnItemError;
use crate::keep_alive::KeepAlive;
use crate::last_event_id::LastEventIdPolicy;
#[cfg(feature = "metrics")]
use crate::metrics::RouteMetrics;
use crate::shutdown::Shutdown;

/// Shared by the layer and every service and body it makes; cloned once per layer call,
/// and merged with [`SseOptions`] once per response that carries them.
#[derive(Debug, Clone)]
pub(crate) struct LayerConfig {
    pub(crate) keep_alive: Option<KeepAlive>,
    pub(crate) max_duration: Option<Duration>,
    pub(crate) max_duration_jitter: f64,
    pub(crate) idle_timeout: Option<Duration>,
    /// The `retry:` frame, encoded once.
    pub(crate) retry: Option<Bytes>,
    /// Whether the body sends a frame at once, before the first event exists.
    pub(crate) opening_frame: bool,
    pub(crate) on_item_error: OnItemError,
    pub(crate) max_frame_bytes: usize,
    pub(crate) last_event_id: LastEventIdPolicy,
    pub(crate) shutdown: Option<Shutdown>,
    /// The route name the stream metrics carry, and their handles once looked up.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Arc<RouteMetrics>,
    #[cfg(feature = "compression")]
    pub(crate) compression: Option<Compression>,
}

impl Default for LayerConfig {
    fn default() -> Self {
        Self {
            keep_alive: Some(KeepAlive::new()),
            max_duration: None,
            max_duration_jitter: 0.0,
            idle_timeout: None,
            retry: None,
            opening_frame: true,
            on_item_error: OnItemError::default(),
            max_frame_bytes: 32 * 1024,
            last_event_id: LastEventIdPolicy::default(),
            shutdown: None,
            #[cfg(feature = "metrics")]
            metrics: Arc::default(),
            #[cfg(feature = "compression")]
            compression: None,
        }
    }
}

impl LayerConfig {
    /// The frame sent at once when the stream opens, if any: the `retry:` hint, or an
    /// empty comment.
    pub(crate) fn opening(&self) -> Option<Bytes> {
        self.opening_frame
            .then(|| self.retry.clone().unwrap_or(encode::EMPTY_COMMENT))
    }

    /// The `retry:` hint that waits for the first frame, when there is no opening frame.
    pub(crate) fn deferred_retry(&self) -> Option<&Bytes> {
        self.retry.as_ref().filter(|_| !self.opening_frame)
    }

    /// This configuration with `options` laid over it; what they leave unset stays.
    pub(crate) fn with_options(&self, options: &SseOptions) -> Self {
        let mut config = self.clone();
        options.keep_alive.lay_over(&mut config.keep_alive);
        options.max_duration.lay_over(&mut config.max_duration);
        if let Some(jitter) = options.max_duration_jitter {
            config.max_duration_jitter = jitter;
        }
        options.idle_timeout.lay_over(&mut config.idle_timeout);
        options.retry.lay_over(&mut config.retry);
        if let Some(opening_frame) = options.opening_frame {
            config.opening_frame = opening_frame;
        }
        #[cfg(feature = "metrics")]
        if let Some(route) = &options.metrics_route {
            config.metrics = Arc::new(RouteMetrics::new(route.clone()));
        }
        #[cfg(feature = "compression")]
        options.compression.lay_over(&mut config.compression);
        config
    }

    /// `config` with `options` laid over it, sharing `config` when there are none.
    pub(crate) fn for_response(config: Arc<Self>, options: Option<&SseOptions>) -> Arc<Self> {
        match options {
            Some(options) => Arc::new(config.with_options(options)),
            None => config,
        }
    }
}

/// The `retry:` frame for `delay`, in whole milliseconds.
pub(crate) fn retry_frame(delay: Duration) -> Bytes {
    let mut frame = BytesMut::new();
    encode::put_retry_field(&mut frame, delay);
    encode::end_event(&mut frame);
    frame.freeze()
}

/// Settings for one response, overriding the [`SseLayer`](crate::SseLayer)'s.
///
/// An inner service puts this value in its response's extensions (or a handler passes it
/// to `tower_sse::axum::SseResponse::options`, feature `axum`); the body of that one
/// response then runs with these settings, and with the layer's for everything left unset.
/// So one layer can front many routes: a fast feed without keep-alives, a quiet one with
/// frequent keep-alives, a third with a short lifetime.
///
/// A response without options shares the layer's configuration as is; a response with
/// options costs one merge when its body is made, nothing per event.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use futures_util::stream;
/// use http::{Request, Response};
/// use http_body_util::BodyExt;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_sse::{KeepAlive, SseLayer, SseOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = ServiceBuilder::new()
///     .layer(SseLayer::new().retry(Duration::from_secs(1)))
///     .service_fn(|req: Request<()>| async move {
///         let events = stream::iter(["a", "b"]);
///         let response = match req.uri().path() {
///             // This route: no opening frame, a faster retry, a 5 s keep-alive.
///             "/feed" => SseOptions::new()
///                 .no_opening_frame()
///                 .retry(Duration::from_millis(250))
///                 .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
///                 .response(events),
///             // Every other route: the layer's settings.
///             _ => Response::new(events),
///         };
///         Ok::<_, Infallible>(response)
///     });
///
/// let response = service.clone().oneshot(Request::get("/feed").body(()).unwrap()).await;
/// let body = response.unwrap().into_body().collect().await.unwrap().to_bytes();
/// // Without an opening frame, the retry hint goes out with the first event.
/// assert_eq!(body, "retry: 250\n\ndata: \"a\"\n\ndata: \"b\"\n\n");
///
/// let response = service.oneshot(Request::get("/other").body(()).unwrap()).await;
/// let body = response.unwrap().into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, "retry: 1000\n\ndata: \"a\"\n\ndata: \"b\"\n\n");
/// # }
/// ```
///
/// `Response::builder().extension(options)` works as well, as does
/// `response.extensions_mut().insert(options)`. Setting a field twice keeps the last value.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SseOptions {
    keep_alive: Setting<KeepAlive>,
    max_duration: Setting<Duration>,
    // A value, not a feature that can be off: `None` is the layer's.
    max_duration_jitter: Option<f64>,
    idle_timeout: Setting<Duration>,
    retry: Setting<Bytes>,
    opening_frame: Option<bool>,
    #[cfg(feature = "metrics")]
    metrics_route: Option<Cow<'static, str>>,
    #[cfg(feature = "compression")]
    compression: Setting<Compression>,
}

/// One switchable setting of a response: the layer's, switched off, or its own.
#[derive(Debug, Clone, Default)]
enum Setting<T> {
    #[default]
    Inherit,
    Off,
    Set(T),
}

impl<T: Clone> Setting<T> {
    /// Lays this setting over the layer's `value`.
    fn lay_over(&self, value: &mut Option<T>) {
        match self {
            Self::Inherit => {}
            Self::Off => *value = None,
            Self::Set(own) => *value = Some(own.clone()),
        }
    }
}

impl SseOptions {
    /// Options that override nothing: the response runs with the layer's settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets this response's keep-alive comment, interval and jitter.
    pub fn keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        self.keep_alive = Setting::Set(keep_alive);
        self
    }

    /// Sends no keep-alive comments on this response.
    pub fn no_keep_alive(mut self) -> Self {
        self.keep_alive = Setting::Off;
        self
    }

    /// Ends this response's stream after `max_duration`; see
    /// [`SseLayer::max_duration`](crate::SseLayer::max_duration).
    pub fn max_duration(mut self, max_duration: Duration) -> Self {
        self.max_duration = Setting::Set(max_duration);
        self
    }

    /// This response's stream has no lifetime limit, whatever the layer says.
    pub fn no_max_duration(mut self) -> Self {
        self.max_duration = Setting::Off;
        self
    }

    /// Shortens this stream's `max_duration` by a random part of up to `fraction` (0 to 1);
    /// see [`SseLayer::max_duration_jitter`](crate::SseLayer::max_duration_jitter).
    pub fn max_duration_jitter(mut self, fraction: f64) -> Self {
        self.max_duration_jitter = Some(fraction);
        self
    }

    /// Ends this response's stream when its source produces no item for `idle_timeout`.
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = Setting::Set(idle_timeout);
        self
    }

    /// This response's stream has no idle limit, whatever the layer says.
    pub fn no_idle_timeout(mut self) -> Self {
        self.idle_timeout = Setting::Off;
        self
    }

    /// Sends this `retry:` hint on this response; see [`SseLayer::retry`](crate::SseLayer::retry).
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = Setting::Set(retry_frame(delay));
        self
    }

    /// Sends no `retry:` hint on this response, whatever the layer says.
    pub fn no_retry(mut self) -> Self {
        self.retry = Setting::Off;
        self
    }

    /// Sends the opening frame on this response, even if the layer turned it off.
    pub fn opening_frame(mut self) -> Self {
        self.opening_frame = Some(true);
        self
    }

    /// Sends no opening frame on this response; see
    /// [`SseLayer::no_opening_frame`](crate::SseLayer::no_opening_frame).
    pub fn no_opening_frame(mut self) -> Self {
        self.opening_frame = Some(false);
        self
    }

    /// Labels this response's stream metrics with the route name `route` (feature
    /// `metrics`); see [`SseLayer::metrics_route`](crate::SseLayer::metrics_route).
    ///
    /// The metric handles of a route set here are looked up once per stream, when its body
    /// is made; a layer's are looked up once per layer.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics_route(mut self, route: impl Into<Cow<'static, str>>) -> Self {
        self.metrics_route = Some(route.into());
        self
    }

    /// Compresses this response's stream when the client accepts it, whatever the layer
    /// says; see [`Compression`].
    ///
    /// ```
    /// use futures_util::stream;
    /// use tower_sse::{Compression, SseOptions};
    ///
    /// let response = SseOptions::new()
    ///     .compression(Compression::gzip().window_bits(12))
    ///     .response(stream::iter(["a"]));
    /// # let _ = response;
    /// ```
    #[cfg(feature = "compression")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compression")))]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Setting::Set(compression);
        self
    }

    /// Sends this response's stream uncompressed, whatever the layer says (for a feed of
    /// already compressed or random data, or to save the memory on one route).
    #[cfg(feature = "compression")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compression")))]
    pub fn no_compression(mut self) -> Self {
        self.compression = Setting::Off;
        self
    }

    /// A `200 OK` response streaming `stream` with these options, in one line.
    pub fn response<St>(self, stream: St) -> Response<St> {
        let mut response = Response::new(stream);
        response.extensions_mut().insert(self);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_options_keep_the_layer_settings() {
        let base = LayerConfig {
            retry: Some(retry_frame(Duration::from_millis(1500))),
            idle_timeout: Some(Duration::from_secs(9)),
            ..LayerConfig::default()
        };
        let merged = base.with_options(&SseOptions::new());
        assert_eq!(merged.retry, base.retry);
        assert_eq!(merged.idle_timeout, base.idle_timeout);
        assert!(merged.keep_alive.is_some());
        assert_eq!(merged.opening().unwrap(), "retry: 1500\n\n");
    }

    #[test]
    fn options_override_and_switch_off() {
        let base = LayerConfig {
            retry: Some(retry_frame(Duration::from_millis(1500))),
            max_duration: Some(Duration::from_secs(60)),
            ..LayerConfig::default()
        };
        let options = SseOptions::new()
            .no_keep_alive()
            .no_max_duration()
            .idle_timeout(Duration::from_secs(3))
            .no_retry()
            .no_opening_frame();
        let merged = base.with_options(&options);
        assert!(merged.keep_alive.is_none());
        assert_eq!(merged.max_duration, None);
        assert_eq!(merged.idle_timeout, Some(Duration::from_secs(3)));
        assert_eq!(merged.retry, None);
        assert_eq!(merged.opening(), None);
        assert_eq!(merged.deferred_retry(), None);

        // Off on the layer, on again for one response.
        let base = LayerConfig {
            opening_frame: false,
            ..base
        };
        assert_eq!(base.opening(), None);
        assert_eq!(base.deferred_retry().unwrap(), "retry: 1500\n\n");
        let merged = base.with_options(&SseOptions::new().opening_frame());
        assert_eq!(merged.opening().unwrap(), "retry: 1500\n\n");
        assert_eq!(merged.deferred_retry(), None);
    }

    #[test]
    fn no_options_share_the_layer_config() {
        let config = Arc::new(LayerConfig::default());
        let shared = LayerConfig::for_response(Arc::clone(&config), None);
        assert!(Arc::ptr_eq(&config, &shared));
        let merged = LayerConfig::for_response(Arc::clone(&config), Some(&SseOptions::new()));
        assert!(!Arc::ptr_eq(&config, &merged));
    }
}
