//! A consumer that stops polling holds the client's memory bounded: nothing more is read,
//! and TCP pushes back on the server. A binary of its own, as the counting allocator is
//! global to the process.

use std::alloc;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cap::Cap;
use futures_util::{stream, StreamExt};
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::ServiceBuilder;
use tower_sse::client::{EventSource, Item};
use tower_sse::{Event, SseLayer};

#[path = "support/mod.rs"]
mod support;

#[global_allocator]
static ALLOCATOR: Cap<alloc::System> = Cap::new(alloc::System, usize::MAX);

#[tokio::test(start_paused = true)]
async fn a_consumer_that_stops_polling_holds_memory_bounded() {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let payload: Arc<str> = "x".repeat(4096).into();
    let service = ServiceBuilder::new().layer(SseLayer::new()).service_fn(
        move |_req: Request<hyper::body::Incoming>| {
            let counter = counter.clone();
            let payload = payload.clone();
            async move {
                // As fast as the connection takes them, forever.
                let events = stream::repeat(()).map(move |()| {
                    counter.fetch_add(payload.len(), Ordering::Relaxed);
                    Event::new().data(&*payload)
                });
                Ok::<_, Infallible>(Response::new(events))
            }
        },
    );
    let server = support::server::serve(service).await;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::get(format!("http://{}/", server.addr()))
        .body(Full::default())
        .unwrap();
    let mut source = EventSource::new(client, request);
    let mut events = 0;
    while events < 10 {
        if let Item::Event(_) = source.next().await.unwrap().unwrap() {
            events += 1;
        }
    }

    // The consumer stops polling; the server and the connections run on.
    let stopped = ALLOCATOR.allocated();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let produced_then = produced.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let produced_later = produced.load(Ordering::Relaxed);
    let held = ALLOCATOR.allocated().saturating_sub(stopped);

    println!(
        "produced {} KiB in all, {} KiB after the consumer stopped; heap grew {} KiB",
        produced_later / 1024,
        (produced_later - 10 * 4096) / 1024,
        held / 1024
    );
    assert_eq!(
        produced_then, produced_later,
        "backpressure reached the server"
    );
    assert!(held < 1 << 20, "heap grew {held} bytes while nobody read");

    // The stream is still usable: the next event comes from where it stopped.
    assert!(matches!(source.next().await, Some(Ok(Item::Event(_)))));
    server.shutdown().await;
}
