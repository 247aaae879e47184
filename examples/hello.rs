//! A whole SSE server in one file: `cargo run --example hello`, then
//! `curl -N http://127.0.0.1:3000/`.
//!
//! Every client gets a tick a second, each with an `id:`; a browser that reconnects sends
//! the last id back as `Last-Event-ID`, and the count goes on after it.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::{stream, Stream};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_sse::{Event, LastEventId, SseLayer};

/// The handler: answers with a stream; the layer turns it into `text/event-stream`.
pub(crate) async fn ticks(
    req: Request<Incoming>,
) -> Result<Response<impl Stream<Item = Event>>, Infallible> {
    // Resume after the last id the browser saw, or start at 0. After `u64::MAX` there is
    // no next id: the stream ends rather than wrap around to ids the browser has seen.
    let next = req
        .extensions()
        .get::<LastEventId>()
        .and_then(|id| id.parse::<u64>().ok())
        .map_or(Some(0), |id| id.checked_add(1));
    let events = stream::unfold(next, |seq| async move {
        let seq = seq?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((
            Event::new().id_u64(seq).data(format!("tick {seq}")),
            seq.checked_add(1),
        ))
    });
    Ok(Response::new(events))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let service = ServiceBuilder::new()
        .layer(SseLayer::new().retry(Duration::from_secs(1)))
        .service_fn(ticks);

    // hyper's HTTP/1.1 server, set up for many long-lived streams (docs/deployment.md):
    // a client has 10 s to send its request head, frames are copied into hyper's one write
    // buffer rather than queued, and a client that reads slowly pins at most 64 KiB.
    let mut server = http1::Builder::new();
    server
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .writev(false)
        .max_buf_size(64 * 1024);

    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (tcp, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // A failed accept (out of file descriptors, say) must not stop the server; a
            // short pause lets connections close instead of spinning on the same error.
            Err(error) => {
                eprintln!("accept: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(service.clone());
        let server = server.clone();
        tokio::spawn(async move {
            // An error here is one connection's (say, the client went away mid-stream).
            if let Err(error) = server.serve_connection(TokioIo::new(tcp), service).await {
                eprintln!("connection: {error}");
            }
        });
    }
}
