//! axum support: [`LastEventId`] as an extractor, and [`SseResponse`] for handlers.
//!
//! An axum app can serve events two ways, with the same configuration ([`SseLayer`]) and
//! the same body ([`SseBody`](crate::SseBody)):
//!
//! - **From a handler**, which returns an [`SseResponse`] made from its stream and,
//!   optionally, an [`SseLayer`] kept in the app state. The handler takes
//!   `Option<LastEventId>` as an extractor; it is `None` on a first connection, and it
//!   rejects only the reconnect after a stream's last event
//!   ([`Event::end_of_stream`](crate::Event::end_of_stream)) with `204 No Content`, as the
//!   layer does, so the handler is not called again for a finished stream.
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
//!     // After `u64::MAX` there is no next id: the stream is empty.
//!     let next = last
//!         .as_ref()
//!         .and_then(|id| id.parse::<u64>().ok())
//!         .map_or(Some(0), |id| id.checked_add(1));
//!     let events = next
//!         .into_iter()
//!         .flat_map(|next| next..next.saturating_add(2))
//!         .map(|seq| Event::new().id_u64(seq).data("tick"));
//!     SseResponse::new(stream::iter(events))
//!         .config(&sse)
//!         .record_last_event_id(last.as_ref())
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

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::extract::OptionalFromRequestParts;
use axum_core::response::{IntoResponse, Response};
use futures_core::Stream;
use http::request::Parts;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Span;

use crate::config::{LayerConfig, SseOptions};
use crate::future::into_sse_response;
use crate::item::SseItem;
use crate::last_event_id::{LastEventId, LastEventIdAbsent, LastEventIdPolicy};
use crate::layer::SseLayer;

/// `Option<LastEventId>` as an axum extractor: `None` on a first connection.
///
/// Behind [`ReadLastEventIdLayer`] (or the [`Sse`](crate::Sse) service) it is the id that
/// layer read with its [`SseLayer`]'s rules: the length cap of
/// [`SseLayer::last_event_id_max_len`] and the query fallback of
/// [`SseLayer::last_event_id_query`], so a handler gets exactly what a layered route gets.
/// Without such a layer in front it reads the `Last-Event-ID` header with the default
/// rules (UTF-8, no NUL, at most 1 KiB; an untrusted value is `None`; no query fallback).
///
/// It rejects one request, with [`StreamEnded`] (`204 No Content`): the reconnect after a
/// stream's last event ([`Event::end_of_stream`](crate::Event::end_of_stream)), as the
/// layer answers it.
impl<S> OptionalFromRequestParts<S> for LastEventId
where
    S: Send + Sync,
{
    type Rejection = StreamEnded;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, StreamEnded> {
        let id = if let Some(id) = parts.extensions.get::<LastEventId>() {
            Some(id.clone())
        } else if parts.extensions.get::<LastEventIdAbsent>().is_some() {
            None
        } else {
            LastEventIdPolicy::default().read(&parts.headers, &parts.uri)
        };
        match id {
            Some(id) if id.is_end_of_stream() => Err(StreamEnded),
            id => Ok(id),
        }
    }
}

/// The `Option<LastEventId>` extractor's rejection when the client saw its stream's last
/// event ([`Event::end_of_stream`](crate::Event::end_of_stream)): answered
/// `204 No Content`, which stops `EventSource` for good.
///
/// ```
/// use axum::{body::Body, routing::get, Router};
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
/// use tower_sse::{EventId, LastEventId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = Router::new().route("/", get(|_: Option<LastEventId>| async { "streaming" }));
/// let request = Request::get("/")
///     .header("last-event-id", EventId::END_OF_STREAM.as_str())
///     .body(Body::empty())
///     .unwrap();
/// assert_eq!(app.oneshot(request).await.unwrap().status(), StatusCode::NO_CONTENT);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamEnded;

impl fmt::Display for StreamEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the stream has ended for good")
    }
}

impl std::error::Error for StreamEnded {}

impl IntoResponse for StreamEnded {
    fn into_response(self) -> Response {
        http::StatusCode::NO_CONTENT.into_response()
    }
}

/// Reads `Last-Event-ID` with an [`SseLayer`]'s rules for axum handlers: apply it with
/// `Router::layer` (or `route_layer`), and the `Option<LastEventId>` extractor gives
/// handlers the id a route behind that `SseLayer` would get.
///
/// It only reads the request; responses pass through untouched, so it fits in front of
/// any router, where `SseLayer` itself cannot go (see the [module docs](self)).
///
/// ```
/// use axum::{body::Body, routing::get, Router};
/// use http::Request;
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
/// use tower_sse::axum::ReadLastEventIdLayer;
/// use tower_sse::{LastEventId, SseLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sse = SseLayer::new().last_event_id_query("lastEventId").last_event_id_max_len(8);
/// let app = Router::new()
///     .route("/", get(|last: Option<LastEventId>| async move { format!("{last:?}") }))
///     .layer(ReadLastEventIdLayer::new(&sse));
///
/// let request = Request::get("/?lastEventId=9").body(Body::empty()).unwrap();
/// let body = app.clone().oneshot(request).await.unwrap().into_body().collect().await;
/// assert_eq!(body.unwrap().to_bytes(), "Some(LastEventId(\"9\"))");
///
/// // Longer than the layer's cap: absent, as behind the layer.
/// let request = Request::get("/").header("last-event-id", "123456789").body(Body::empty());
/// let body = app.oneshot(request.unwrap()).await.unwrap().into_body().collect().await;
/// assert_eq!(body.unwrap().to_bytes(), "None");
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ReadLastEventIdLayer {
    config: Arc<LayerConfig>,
}

impl ReadLastEventIdLayer {
    /// Reads the id with `layer`'s rules (shared, not copied).
    pub fn new(layer: &SseLayer) -> Self {
        Self {
            config: layer.shared_config(),
        }
    }
}

impl<S> Layer<S> for ReadLastEventIdLayer {
    type Service = ReadLastEventId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadLastEventId {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`ReadLastEventIdLayer`] makes: puts the request's [`LastEventId`] in its
/// extensions, read with the layer's rules, then calls the inner service.
#[derive(Debug, Clone)]
#[must_use]
pub struct ReadLastEventId<S> {
    inner: S,
    config: Arc<LayerConfig>,
}

impl<S> ReadLastEventId<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<http::Request<B>> for ReadLastEventId<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let last_event_id = self.config.last_event_id.read(req.headers(), req.uri());
        let extensions = req.extensions_mut();
        match last_event_id {
            Some(id) => {
                extensions.insert(id);
            }
            None => {
                extensions.insert(LastEventIdAbsent);
            }
        }
        self.inner.call(req)
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
    response: http::Response<St>,
    config: Option<Arc<LayerConfig>>,
    span: Span,
}

impl<St> SseResponse<St> {
    /// Serves `stream` with the default configuration.
    pub fn new(stream: St) -> Self {
        Self::from_response(http::Response::new(stream))
    }

    /// Serves a response made for [`SseLayer`]: its status, headers and extensions are kept,
    /// so it answers exactly as a route behind the layer would.
    ///
    /// A status other than `200 OK` passes through with an empty body, as behind the layer:
    /// this is how [`EventLog::response`](crate::replay::EventLog::response) answers `204 No
    /// Content` to an id [`OnUnknownId::NoContent`](crate::replay::OnUnknownId::NoContent)
    /// refused, which tells `EventSource` to stop reconnecting. [`SseOptions`] in its
    /// extensions apply. `From<http::Response<St>>` does the same.
    ///
    /// ```
    /// use axum::response::IntoResponse;
    /// use tower_sse::axum::SseResponse;
    /// use tower_sse::replay::{EventLog, OnUnknownId};
    /// use tower_sse::LastEventId;
    ///
    /// let log = EventLog::builder().on_unknown_id(OnUnknownId::NoContent).build();
    /// let refused = log.response(Some(&LastEventId::new("no-such-id")));
    /// let response = SseResponse::from_response(refused).into_response();
    /// assert_eq!(response.status(), 204);
    /// ```
    pub fn from_response(response: http::Response<St>) -> Self {
        Self {
            response,
            config: None,
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
        self.response.extensions_mut().insert(options);
        self
    }

    /// Records the id the client resumes from in the stream's `tracing` span, as the
    /// service does; `None` records nothing. It only labels the logs: where the stream
    /// resumes is up to the stream the handler made.
    pub fn record_last_event_id(self, id: Option<&LastEventId>) -> Self {
        if let Some(id) = id {
            self.span.record("last_event_id", id.as_str());
        }
        self
    }
}

impl<St> fmt::Debug for SseResponse<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseResponse")
            .field("status", &self.response.status())
            .field("config", &self.config)
            .field("options", &self.response.extensions().get::<SseOptions>())
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
        into_sse_response(self.response, config, self.span).into_response()
    }
}

impl<St> From<http::Response<St>> for SseResponse<St> {
    fn from(response: http::Response<St>) -> Self {
        Self::from_response(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    async fn try_extract(req: Request<()>) -> Result<Option<LastEventId>, StreamEnded> {
        let (mut parts, ()) = req.into_parts();
        <LastEventId as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &()).await
    }

    async fn extract(req: Request<()>) -> Option<LastEventId> {
        try_extract(req).await.expect("not an ended stream")
    }

    #[tokio::test]
    async fn extractor_rejects_only_an_ended_stream() {
        let end = crate::EventId::END_OF_STREAM;
        let req = Request::get("/")
            .header("last-event-id", end.as_str())
            .body(());
        assert_eq!(try_extract(req.unwrap()).await, Err(StreamEnded));
        let mut req = Request::new(());
        req.extensions_mut().insert(LastEventId::new(end.as_str()));
        assert_eq!(try_extract(req).await, Err(StreamEnded));
        let response = StreamEnded.into_response();
        assert_eq!(response.status(), http::StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn extractor_prefers_the_extension() {
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
