//! The same server on axum: `cargo run --example hello_axum --features axum`, then
//! `curl -N http://127.0.0.1:3000/`.
//!
//! A handler returns `SseResponse`; the `Option<LastEventId>` extractor gives it the id a
//! reconnecting browser sends back, and the count goes on after it.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use futures_util::{stream, Stream};
use tokio::net::TcpListener;
use tower_sse::axum::SseResponse;
use tower_sse::{Event, LastEventId, SseLayer};

/// The handler: a tick a second, resumed after the last id the browser saw.
async fn ticks(
    State(sse): State<SseLayer>,
    last: Option<LastEventId>,
) -> SseResponse<impl Stream<Item = Event>> {
    // 0 on a first connection; after the last u64 there is no next id, and the stream ends.
    let next = last
        .and_then(|id| id.parse::<u64>().ok())
        .map_or(Some(0), |id| id.checked_add(1));
    let events = stream::unfold(next, |seq| async move {
        let seq = seq?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let event = Event::new().id_u64(seq).data(format!("tick {seq}"));
        Some((event, seq.checked_add(1)))
    });
    SseResponse::new(events).config(&sse)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // The settings an `SseLayer` would have, configured once and shared by the handlers.
    let sse = SseLayer::new().retry(Duration::from_secs(1));
    let app = Router::new().route("/", get(ticks)).with_state(sse);
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
