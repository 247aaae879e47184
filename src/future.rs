//! [`ResponseFuture`]: sets the SSE headers and wraps the stream in an [`SseBody`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use pin_project_lite::pin_project;
use tracing::Span;

use crate::body::SseBody;
use crate::compression::{self, AcceptEncoding};
use crate::config::{LayerConfig, SseOptions};
use crate::item::{SseItem, SseStream};
use crate::keep_alive::ConnectionKey;

const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
const TEXT_EVENT_STREAM: &str = "text/event-stream";

pin_project! {
    /// Response future of [`Sse`](crate::Sse).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        config: Option<Arc<LayerConfig>>,
        span: Span,
        request: StreamRequest,
    }
}

/// What the request says about how its stream goes out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamRequest {
    accept: AcceptEncoding,
    connection: Option<ConnectionKey>,
    http2: bool,
}

impl StreamRequest {
    pub(crate) fn read<B>(req: &Request<B>) -> Self {
        Self {
            // Read whether the layer compresses or not: a response's options may turn it on.
            accept: AcceptEncoding::read(req.headers()),
            connection: req.extensions().get::<ConnectionKey>().copied(),
            http2: req.version() == Version::HTTP_2,
        }
    }

    /// Nothing known: no compression, keep-alives in turn, framed as for HTTP/1.1.
    pub(crate) fn unknown() -> Self {
        Self {
            accept: AcceptEncoding::identity(),
            connection: None,
            http2: false,
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // The inner service was called; its response becomes the stream.
        Called { #[pin] inner: F },
        // The client saw its stream's last event: answered without the inner service.
        Ended,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: F,
        config: Arc<LayerConfig>,
        span: Span,
        request: StreamRequest,
    ) -> Self {
        Self {
            state: State::Called { inner },
            config: Some(config),
            span,
            request,
        }
    }

    /// Answers `204 No Content`, which stops `EventSource` for good.
    pub(crate) fn ended(config: Arc<LayerConfig>, span: Span) -> Self {
        Self {
            state: State::Ended,
            config: Some(config),
            span,
            request: StreamRequest::unknown(),
        }
    }
}

impl<F, St, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<St>, E>>,
    St: SseStream,
{
    type Output = Result<Response<SseBody<St>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Polled again after completion is a caller bug; answer with defaults, not a panic.
        let response = match this.state.project() {
            StateProj::Called { inner } => ready!(inner.poll(cx))?,
            StateProj::Ended => {
                let config = this.config.take().unwrap_or_default();
                let span = std::mem::replace(this.span, Span::none());
                let mut response = Response::new(SseBody::empty(config, span));
                *response.status_mut() = StatusCode::NO_CONTENT;
                return Poll::Ready(Ok(response));
            }
        };
        let config = this.config.take().unwrap_or_default();
        let span = std::mem::replace(this.span, Span::none());
        Poll::Ready(Ok(into_encoded_sse_response(
            response,
            config,
            span,
            *this.request,
        )))
    }
}

/// Frames a `200 OK` response's stream as SSE; any other status passes through with an
/// empty body and no SSE headers (so `204 No Content` can tell `EventSource` to stop).
///
/// [`SseOptions`] in the response's extensions are taken out and laid over `config`.
#[cfg(feature = "axum")]
pub(crate) fn into_sse_response<St>(
    response: Response<St>,
    config: Arc<LayerConfig>,
    span: Span,
) -> Response<SseBody<St>>
where
    St: Stream,
    St::Item: SseItem,
{
    into_encoded_sse_response(response, config, span, StreamRequest::unknown())
}

/// [`into_sse_response`] for `request`: compressed when the configuration says so and its
/// `Accept-Encoding` allows it, with keep-alives due with its connection's.
pub(crate) fn into_encoded_sse_response<St>(
    response: Response<St>,
    config: Arc<LayerConfig>,
    span: Span,
    request: StreamRequest,
) -> Response<SseBody<St>>
where
    St: Stream,
    St::Item: SseItem,
{
    let (mut parts, stream) = response.into_parts();
    // Without options this is a check of an empty map, and the layer's config is shared.
    let options = parts.extensions.remove::<SseOptions>();
    if parts.status != StatusCode::OK {
        return Response::from_parts(parts, SseBody::empty(config, span));
    }
    let config = LayerConfig::for_response(config, options.as_ref());
    set_headers(&mut parts.headers, compression::headers_set(&config));
    let encoder = compression::negotiate(&config, request.accept, &mut parts.headers);
    let body = SseBody::new(stream, config, span)
        .with_encoder(encoder)
        .on_connection(request.connection)
        .over_http2(request.http2);
    Response::from_parts(parts, body)
}

/// Sets the SSE headers, with room for `more` that compression sets after them.
fn set_headers(headers: &mut HeaderMap, more: usize) {
    // hyper keeps a response's map for the connection's next response, so for as long as
    // a stream lives: size it for the three headers set below, not the six a first insert
    // reserves (about 330 bytes less per connection).
    if headers.is_empty() {
        headers.reserve(3 + more);
    }
    let is_event_stream = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(TEXT_EVENT_STREAM));
    if !is_event_stream {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(TEXT_EVENT_STREAM),
        );
    }
    // The inner service's own caching and buffering choices win.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    headers
        .entry(X_ACCEL_BUFFERING)
        .or_insert(HeaderValue::from_static("no"));
    // A stream has no length, and hop-by-hop headers are invalid on HTTP/2.
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONNECTION);
}
