//! [`ServiceBuilderExt`]: `.sse(..)` on tower's [`ServiceBuilder`].

use tower::ServiceBuilder;
use tower_layer::Stack;

use crate::layer::SseLayer;

/// Adds [`SseLayer`] to tower's [`ServiceBuilder`] by name, as tower-http's
/// `ServiceBuilderExt` does for its layers.
///
/// The trait is sealed: only `ServiceBuilder` implements it.
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
/// use tower_sse::{ServiceBuilderExt, SseLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = ServiceBuilder::new()
///     .sse(SseLayer::new().retry(Duration::from_millis(500)))
///     .service_fn(|_req: Request<()>| async {
///         Ok::<_, Infallible>(Response::new(stream::iter(["hi"])))
///     });
///
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(response.headers()["content-type"], "text/event-stream");
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, "retry: 500\n\ndata: \"hi\"\n\n");
/// # }
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed<L> + Sized {
    /// Frames the inner service's `Response<impl Stream>` as server-sent events, with
    /// `layer`'s configuration; the same as `.layer(layer)`.
    fn sse(self, layer: SseLayer) -> ServiceBuilder<Stack<SseLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn sse(self, layer: SseLayer) -> ServiceBuilder<Stack<SseLayer, L>> {
        self.layer(layer)
    }
}

mod sealed {
    #[allow(unreachable_pub)] // Sealed: nameable only inside the crate.
    pub trait Sealed<T> {}

    impl<T> Sealed<T> for tower::ServiceBuilder<T> {}
}
