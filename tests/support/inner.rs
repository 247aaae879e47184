//! Inner services and sources for the layer under test.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tower_sse::Event;

/// An inner service that answers its single request with `stream`.
pub(crate) fn answer_once<St, B>(
    stream: St,
) -> impl FnMut(Request<B>) -> Ready<Result<Response<St>, Infallible>> + Clone {
    let slot = Arc::new(Mutex::new(Some(stream)));
    move |_request| {
        let stream = slot.lock().unwrap().take();
        ready(Ok(Response::new(stream.expect("one request only"))))
    }
}

/// A source that stays silent until the test sends on the returned channel.
pub(crate) fn channel_stream() -> (mpsc::Sender<Event>, ReceiverStream<Event>) {
    let (tx, rx) = mpsc::channel(1);
    (tx, ReceiverStream::new(rx))
}
