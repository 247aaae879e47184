//! [`Sse`]: the middleware service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use crate::body::SseBody;
use crate::config::LayerConfig;
use crate::future::{ResponseFuture, StreamRequest};
use crate::item::SseStream;
use crate::last_event_id::LastEventId;

/// Middleware that serves an inner service's `Response<impl Stream>` as server-sent events.
///
/// Before calling the inner service it reads the request's
/// [`LastEventId`](crate::LastEventId) into the request extensions. See
/// [`SseLayer`](crate::SseLayer) for the configuration.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use futures_util::stream;
/// use http::{Request, Response};
/// use http_body_util::BodyExt;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_sse::SseLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = ServiceBuilder::new()
///     .layer(SseLayer::new())
///     .service_fn(|_req: Request<()>| async {
///         Ok::<_, Infallible>(Response::new(stream::iter(["a", "b"])))
///     });
///
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(response.headers()["content-type"], "text/event-stream");
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, ":\n\ndata: \"a\"\n\ndata: \"b\"\n\n");
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Sse<S> {
    inner: S,
    config: Arc<LayerConfig>,
}

impl<S> Sse<S> {
    /// Wraps `inner` with the default configuration.
    pub fn new(inner: S) -> Self {
        Self::from_config(inner, Arc::default())
    }

    // `Sse::layer()` lives in layer.rs, so this file never imports the layer above it.

    pub(crate) fn from_config(inner: S, config: Arc<LayerConfig>) -> Self {
        Self { inner, config }
    }

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

impl<S, ReqBody, St> Service<Request<ReqBody>> for Sse<S>
where
    S: Service<Request<ReqBody>, Response = Response<St>>,
    St: SseStream,
{
    type Response = Response<SseBody<St>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let last_event_id = self.config.last_event_id.read(req.headers(), req.uri());
        // One span per stream; the body logs its end inside it.
        let span = tracing::debug_span!(
            "sse",
            last_event_id = last_event_id.as_ref().map(LastEventId::as_str)
        );
        let request = StreamRequest::read(&req);
        if let Some(id) = last_event_id {
            if id.is_end_of_stream() {
                return ResponseFuture::ended(self.config.clone(), span);
            }
            req.extensions_mut().insert(id);
        }
        ResponseFuture::new(self.inner.call(req), self.config.clone(), span, request)
    }
}
