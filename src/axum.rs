//! axum support: [`LastEventId`] as an extractor, and [`SseResponse`] for handlers.
//!
//! An axum app can serve events two ways, with the same configuration ([`SseLayer`]) and
//! the same body ([`SseBody`](crate::SseBody)):
//!
//! - **From a handler**, which returns an [`SseResponse`] made from its stream and,
//!   optionally, an [`SseLayer`] kept in the app state. The handler takes
//!   `Option<LastEventId>` as an extractor; it is `None` on a first connection and never
//!   rejects the request.
//! - **As a service**, mounted with `Router::route_service` (or `get_service`):
//!   `SseLayer::new().layer(service_fn(..))`, whose inner function answers
//!   `Response<impl Stream>` and finds the [`LastEventId`] in the request's extensions.
//!   This needs no cargo feature: axum serves any `Response<B>` whose body has `Bytes` data.
//!
//! `Router::layer(SseLayer::new())` does not compile, and that is deliberate: an axum route
//! answers `Response<Body>` with its bytes already made, not a stream of items, so there is
//! nothing left for the layer to frame. Use one of the two ways above for the SSE route;
//! tower-http's layers (trace, CORS, timeouts) go around the router as usual.
//!
//! # Example: a handler
//!
//! ```
//! use std::time::Duration;
//! use axum::{body::Body, extract::State, routing::get, Router};
//! use futures_util::{stream, Stream};
//! use http::Request;
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//! use tower_sse::axum::SseResponse;
//! use tower_sse::{Event, LastEventId, SseLayer};
//!
//! async fn ticks(
//!     State(sse): State<SseLayer>,
//!     last: Option<LastEventId>,
//! ) -> SseResponse<impl Stream<Item = Event>> {
//!     let next = last
//!         .as_ref()
//!         .and_then(|id| id.parse::<u64>().ok())
//!         .map_or(0, |id| id + 1);
//!     let events = (next..next + 2).map(|seq| Event::new().id_u64(seq).data("tick"));
//!     SseResponse::new(stream::iter(events))
//!         .config(&sse)
//!         .last_event_id(last.as_ref())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/ticks", get(ticks))
//!     .with_state(SseLayer::new().retry(Duration::from_secs(1)));
//!
//! let request = Request::get("/ticks").header("last-event-id", "41").body(Body::empty());
//! let response = app.oneshot(request.unwrap()).await.unwrap();
//! assert_eq!(response.headers()["content-type"], "text/event-stream");
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, "retry: 1000\n\nid: 42\ndata: tick\n\nid: 43\ndata: tick\n\n");
//! # }
//! ```
//!
//! # Example: a service
//!
//! ```
//! use std::convert::Infallible;
//! use axum::{body::Body, Router};
//! use futures_util::stream;
//! use http::{Request, Response};
//! use http_body_util::BodyExt;
//! use tower::{service_fn, Layer, ServiceExt};
//! use tower_sse::{Event, LastEventId, SseLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let ticks = SseLayer::new().layer(service_fn(|req: Request<Body>| async move {
//!     let last = req.extensions().get::<LastEventId>().cloned();
//!     let resumed = last.map_or_else(|| "from the start".to_owned(), |id| format!("after {id}"));
//!     Ok::<_, Infallible>(Response::new(stream::iter([Event::new().data(resumed)])))
//! }));
//! let app = Router::new().route_service("/ticks", ticks);
//!
//! let request = Request::get("/ticks").header("last-event-id", "7").body(Body::empty());
//! let response = app.oneshot(request.unwrap()).await.unwrap();
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, ":\n\ndata: after 7\n\n");
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use axum_core::extract::OptionalFromRequestParts;
use axum_core::response::{IntoResponse, Response};
use futures_core::Stream;
use http::request::Parts;
use tracing::Span;

use crate::config::{LayerConfig, SseOptions};
use crate::future::into_sse_response;
use crate::item::SseItem;
use crate::last_event_id::{LastEventId, LastEventIdPolicy};
use crate::layer::SseLayer;

/// `Option<LastEventId>` as an axum extractor: `None` on a first connection, never a
/// rejection.
///
/// It takes the id the [`Sse`](crate::Sse) service put in the request's extensions when
/// that service is in front; otherwise it reads the `Last-Event-ID` header with the layer's
/// default rules (UTF-8, no NUL, at most 1 KiB; an untrusted value is `None`). The query
/// parameter fallback of [`SseLayer::last_event_id_query`] is only read by the service.
impl<S> OptionalFromRequestParts<S> for LastEventId
where
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Infallible> {
        if let Some(id) = parts.extensions.get::<LastEventId>() {
            return Ok(Some(id.clone()));
        }
        Ok(LastEventIdPolicy::default().read(&parts.headers, &parts.uri))
    }
}

/// A handler's `text/event-stream` response: a stream of [`SseItem`]s framed by the same
/// body, with the same configuration, as [`SseLayer`].
///
/// It sends the SSE headers and the opening frame, and applies the keep-alive, time limits,
/// `retry:` hint, item error policy and [`Shutdown`](crate::Shutdown) of the layer given to
/// [`config`](Self::config), or the layer's defaults, with the [`SseOptions`] given to
/// [`options`](Self::options) laid over them: the same options type, with the same
/// effect, as on a route behind the layer. Each response logs its end in a
/// `tracing` span named `sse`, as the service does.
///
/// See the [module docs](self) for an example.
#[must_use]
pub struct SseResponse<St> {
    stream: St,
    config: Option<Arc<LayerConfig>>,
    options: Option<SseOptions>,
    span: Span,
}

impl<St> SseResponse<St> {
    /// Serves `stream` with the default configuration.
    pub fn new(stream: St) -> Self {
        Self {
            stream,
            config: None,
            options: None,
            span: tracing::debug_span!("sse", last_event_id = tracing::field::Empty),
        }
    }

    /// Serves the stream with `layer`'s configuration instead of the defaults.
    ///
    /// Shares the layer's configuration (a reference count, no copy); keep the layer in the
    /// app state and pass it per request.
    pub fn config(mut self, layer: &SseLayer) -> Self {
        self.config = Some(layer.shared_config());
        self
    }

    /// Overrides the configuration's settings for this response, as an inner service
    /// behind [`SseLayer`] does by putting `options` in its response's extensions.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::response::IntoResponse;
    /// use futures_util::stream;
    /// use http_body_util::BodyExt;
    /// use tower_sse::axum::SseResponse;
    /// use tower_sse::{Event, SseLayer, SseOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = SseLayer::new().retry(Duration::from_secs(3));
    /// let options = SseOptions::new().no_opening_frame().no_retry();
    /// let response = SseResponse::new(stream::iter([Event::new().data("hi")]))
    ///     .config(&layer)
    ///     .options(options)
    ///     .into_response();
    /// let body = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(body, "data: hi\n\n");
    /// # }
    /// ```
    pub fn options(mut self, options: SseOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// Records the id the client resumes from in the stream's `tracing` span, as the
    /// service does; `None` records nothing.
    pub fn last_event_id(self, id: Option<&LastEventId>) -> Self {
        if let Some(id) = id {
            self.span.record("last_event_id", id.as_str());
        }
        self
    }
}

impl<St> fmt::Debug for SseResponse<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseResponse")
            .field("config", &self.config)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<St> IntoResponse for SseResponse<St>
where
    St: Stream + Send + 'static,
    St::Item: SseItem,
{
    fn into_response(self) -> Response {
        let config = self.config.unwrap_or_default();
        let mut response = http::Response::new(self.stream);
        if let Some(options) = self.options {
            response.extensions_mut().insert(options);
        }
        into_sse_response(response, config, self.span).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    async fn extract(req: Request<()>) -> Option<LastEventId> {
        let (mut parts, ()) = req.into_parts();
        let extracted =
            <LastEventId as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await;
        match extracted {
            Ok(id) => id,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn extractor_prefers_the_extension_and_never_rejects() {
        assert_eq!(extract(Request::new(())).await, None);

        let req = Request::get("/").header("last-event-id", "41").body(());
        assert_eq!(extract(req.unwrap()).await, Some(LastEventId::new("41")));

        // Untrusted values are absent, as with the layer.
        let req = Request::get("/").header("last-event-id", vec![b'9'; 1025]);
        assert_eq!(extract(req.body(()).unwrap()).await, None);

        // What the service put there wins over the raw header.
        let mut req = Request::get("/")
            .header("last-event-id", "raw")
            .body(())
            .unwrap();
        req.extensions_mut().insert(LastEventId::new("from-query"));
        assert_eq!(extract(req).await, Some(LastEventId::new("from-query")));
    }
}
