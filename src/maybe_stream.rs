//! [`MaybeStream`]: one response type for an inner service that streams on some requests
//! and answers others with a plain status.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use http::{Response, StatusCode};
use pin_project_lite::pin_project;

pin_project! {
    /// A stream, or nothing: lets an inner service behind [`SseLayer`](crate::SseLayer)
    /// answer `204`, `401` or `404` without building an empty stream of its stream's type.
    ///
    /// The layer frames only `200 OK` responses; any other status passes through with an
    /// empty body and no SSE headers. [`status`](Self::status) makes such a response, and
    /// [`response`](Self::response) the streaming one, both of type
    /// `Response<MaybeStream<St>>`, so the branches of a handler agree. A `MaybeStream`
    /// without a stream sent with `200 OK` is a stream that ends at once.
    ///
    /// # Example
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use futures_util::stream;
    /// use http::{Request, StatusCode};
    /// use http_body_util::BodyExt;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_sse::{Event, MaybeStream, SseLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let service = ServiceBuilder::new()
    ///     .layer(SseLayer::new())
    ///     .service_fn(|req: Request<()>| async move {
    ///         if !req.headers().contains_key("authorization") {
    ///             return Ok::<_, Infallible>(MaybeStream::status(StatusCode::UNAUTHORIZED));
    ///         }
    ///         Ok(MaybeStream::response(stream::iter([Event::new().data("secret")])))
    ///     });
    ///
    /// let response = service.clone().oneshot(Request::new(())).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    /// assert!(response.headers().get("content-type").is_none());
    /// assert!(response.into_body().collect().await.unwrap().to_bytes().is_empty());
    ///
    /// let request = Request::get("/").header("authorization", "yes").body(()).unwrap();
    /// let response = service.oneshot(request).await.unwrap();
    /// let body = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(body, ":\n\ndata: secret\n\n");
    /// # }
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct MaybeStream<St> {
        #[pin]
        stream: Option<St>,
    }
}

impl<St> MaybeStream<St> {
    /// Wraps `stream`.
    pub fn new(stream: St) -> Self {
        Self {
            stream: Some(stream),
        }
    }

    /// No stream: ends at once.
    pub fn none() -> Self {
        Self { stream: None }
    }

    /// A `200 OK` response streaming `stream`; with per-response settings, write
    /// [`options.response(MaybeStream::new(stream))`](crate::SseOptions::response).
    pub fn response(stream: St) -> Response<Self> {
        Response::new(Self::new(stream))
    }

    /// A response with `status` and nothing to stream, which the layer passes through with
    /// an empty body. Add headers through `headers_mut` (say `WWW-Authenticate` on a 401).
    pub fn status(status: StatusCode) -> Response<Self> {
        let mut response = Response::new(Self::none());
        *response.status_mut() = status;
        response
    }

    /// Whether there is a stream (until it has been polled to its end, or not).
    pub fn is_some(&self) -> bool {
        self.stream.is_some()
    }
}

impl<St> Default for MaybeStream<St> {
    fn default() -> Self {
        Self::none()
    }
}

impl<St> From<St> for MaybeStream<St> {
    fn from(stream: St) -> Self {
        Self::new(stream)
    }
}

impl<St: Stream> Stream for MaybeStream<St> {
    type Item = St::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.project().stream.as_pin_mut() {
            Some(stream) => stream.poll_next(cx),
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.stream {
            Some(stream) => stream.size_hint(),
            None => (0, Some(0)),
        }
    }
}

impl<St> fmt::Debug for MaybeStream<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaybeStream")
            .field("is_some", &self.stream.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn none_ends_at_once_and_some_delegates() {
        let mut none = MaybeStream::<futures_util::stream::Iter<std::vec::IntoIter<u8>>>::none();
        assert_eq!(none.size_hint(), (0, Some(0)));
        assert_eq!(none.next().await, None);

        let mut some = MaybeStream::from(futures_util::stream::iter(vec![1u8, 2]));
        assert!(some.is_some());
        assert_eq!(some.size_hint(), (2, Some(2)));
        assert_eq!(some.next().await, Some(1));
        assert_eq!(some.next().await, Some(2));
        assert_eq!(some.next().await, None);

        let response =
            MaybeStream::<futures_util::stream::Empty<u8>>::status(StatusCode::NOT_FOUND);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(!response.body().is_some());
    }
}
