//! A Tower layer that serves any [`Stream`](futures_core::Stream) as Server-Sent Events.
//!
//! Put [`SseLayer`] in front of a service that answers with `Response<impl Stream>`; the
//! layer answers with a `text/event-stream` response whose body, [`SseBody`], frames every
//! item exactly as the browser's `EventSource` parses it, sends keep-alive comments while
//! the stream is quiet, applies time limits, and hands the inner service the
//! [`LastEventId`] a reconnecting browser sent so it can resume where it left off.
//!
//! Items can be plain `T: Serialize` values (sent as JSON data), [`Event`]s built field by
//! field, [`EncodedEvent`]s framed once for many clients, or [`Fallible`] results.
//!
//! One layer can front many routes: an inner service puts [`SseOptions`] in a response's
//! extensions to change that response's keep-alive, time limits, `retry:` hint, opening
//! frame or compression (feature `compression`: gzip, each event flushed as it is sent),
//! and answers requests it does not stream (`204`, `401`, `404`) with
//! [`MaybeStream::status`].
//!
//! For many clients and lossless resume, publish into a [`replay::EventLog`]: each event is
//! framed once, every [`replay::Subscription`] sends the same bytes, and a reconnecting
//! client gets exactly the events it missed. A [`Shutdown`] handle ends every live stream at
//! an event boundary so a server can drain.
//!
//! Beyond the middleware, each part is a module of its own: [`replay`] (logs, subscriptions,
//! their policies and stats; `replay::redis` with the `redis` feature), `decode` (the other
//! side of the wire, feature `decode`), `client` (a reconnecting `EventSource` over any
//! tower `Service`, feature `client`), `metrics` (feature `metrics`) and `axum` (feature
//! `axum`).
//!
//! # Example: a whole server
//!
//! The layer, a handler and hyper-util's server on 127.0.0.1:3000, as in
//! `examples/hello.rs` (`cargo run --example hello`):
//!
//! ```no_run
#![doc = include_str!("../examples/hello.rs")]
//! ```
//!
//! # Example: one request, without a server
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use futures_util::stream;
//! use http::{Request, Response};
//! use http_body_util::BodyExt;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_sse::{Event, LastEventId, SseLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(SseLayer::new().retry(Duration::from_secs(1)))
//!     .service_fn(|req: Request<()>| async move {
//!         // Resume after the last id the browser saw, or start at 0; after `u64::MAX`
//!         // there is no next id, and the stream is empty.
//!         let next = req
//!             .extensions()
//!             .get::<LastEventId>()
//!             .and_then(|id| id.parse::<u64>().ok())
//!             .map_or(Some(0), |id| id.checked_add(1));
//!         let events = next
//!             .into_iter()
//!             .flat_map(|next| next..next.saturating_add(2))
//!             .map(|seq| Event::new().id_u64(seq).data("tick"));
//!         Ok::<_, Infallible>(Response::new(stream::iter(events)))
//!     });
//!
//! let request = Request::get("/").header("last-event-id", "41").body(()).unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["content-type"], "text/event-stream");
//! assert_eq!(response.headers()["cache-control"], "no-cache");
//!
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, "retry: 1000\n\nid: 42\ndata: tick\n\nid: 43\ndata: tick\n\n");
//! # }
//! ```
//!
//! # Serving it
//!
//! [`SseBody`] is an [`http_body::Body`] with `Bytes` data and an infallible error, so hyper
//! 1.x serves it as is, over HTTP/1.1 or HTTP/2, as in the first example.
//! `examples/clock.rs` is a server with a browser page.
//!
//! # Cargo features
//!
//! | feature | default | enables |
//! | --- | --- | --- |
//! | `json` | yes | plain `T: Serialize` items, [`Event::json_data`], [`EncodedEvent::json`] (serde, serde_json) |
//! | `axum` | no | `Option<LastEventId>` as an axum extractor, `axum::SseResponse` for handlers (axum-core) |
//! | `util` | no | `ServiceBuilderExt::sse` on tower's `ServiceBuilder` (tower, no default features) |
//! | `redis` | no | [`replay::redis::RedisLog`]: the replay log on a Redis stream, for several server nodes (redis-rs, tokio `rt`) |
//! | `tokio-stream` | no | tokio-stream's `BroadcastStream` feeds a [`replay::EventLog`] through [`replay::EventLog::feed`], its lag becoming a gap event (tokio-stream) |
//! | `metrics` | no | `metrics`: stream metrics (open streams, ends by [`EndReason`], lifetimes, events, bytes) through the `metrics` facade, labelled by a route name (metrics) |
//! | `compression` | no | [`Compression`]: gzip negotiated from `Accept-Encoding`, each frame compressed and flushed as it is sent, memory bounded per stream and no window while idle (crc32fast) |
//! | `decode` | no | [`decode`]: a spec-exact `text/event-stream` decoder for consuming and relaying SSE, and a test helper that collects a body into events |
//! | `client` | no | [`client`]: a reconnecting `EventSource` over any tower `Service` (enables `decode`; httpdate for `Retry-After`) |
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
pub mod axum;
mod body;
#[cfg(feature = "util")]
mod builder;
#[cfg(feature = "client")]
pub mod client;
mod compression;
mod config;
#[cfg(feature = "decode")]
pub mod decode;
mod encode;
mod end_reason;
mod error;
mod event;
mod future;
mod item;
mod jitter;
mod keep_alive;
mod last_event_id;
mod layer;
mod maybe_stream;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod replay;
mod service;
mod shutdown;

pub use body::SseBody;
#[cfg(feature = "util")]
pub use builder::ServiceBuilderExt;
#[cfg(feature = "compression")]
pub use compression::Compression;
pub use config::SseOptions;
pub use end_reason::EndReason;
pub use error::{BoxError, EventError, OnItemError};
pub use event::{EncodedEvent, Event, EventId, EventType};
pub use future::ResponseFuture;
pub use item::{Fallible, SseItem, SseStream};
pub use keep_alive::{ConnectionKey, KeepAlive};
pub use last_event_id::{LastEventId, LAST_EVENT_ID};
pub use layer::SseLayer;
pub use maybe_stream::MaybeStream;
pub use service::Sse;
pub use shutdown::Shutdown;

// The README's examples compile as doctests, so they cannot drift from the API. Some use
// the client (and with it the decoder) or axum, so they are compiled when those are built
// (`cargo test --all-features`).
#[cfg(all(doctest, feature = "client", feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    /// The README's first example is `examples/hello.rs`, without its header: both compile
    /// (doctest, example), and this keeps them the same program.
    #[test]
    fn readme_opens_with_the_hello_example() {
        let readme = include_str!("../README.md");
        let hello = include_str!("../examples/hello.rs");
        let program = &hello[hello.find("use std::").unwrap()..];
        let block = format!("```rust,no_run\n{program}```\n");
        assert!(
            readme.contains(&block),
            "README.md and examples/hello.rs differ"
        );
    }

    /// The same for the axum server and `examples/hello_axum.rs`.
    #[test]
    fn readme_shows_the_hello_axum_example() {
        let readme = include_str!("../README.md");
        let hello = include_str!("../examples/hello_axum.rs");
        let program = &hello[hello.find("use std::").unwrap()..];
        let block = format!("```rust,no_run\n{program}```\n");
        assert!(
            readme.contains(&block),
            "README.md and examples/hello_axum.rs differ"
        );
    }
}
