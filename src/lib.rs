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
//! For many clients and lossless resume, publish into an [`EventLog`]: each event is framed
//! once, every [`Subscription`] sends the same bytes, and a reconnecting client gets exactly
//! the events it missed. A [`Shutdown`] handle ends every live stream at an event boundary so
//! a server can drain.
//!
//! # Example
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
//!         // Resume after the last id the browser saw, or start at 0.
//!         let next = req
//!             .extensions()
//!             .get::<LastEventId>()
//!             .and_then(|id| id.parse::<u64>().ok())
//!             .map_or(0, |id| id + 1);
//!         let events = (next..next + 2).map(|seq| Event::new().id_u64(seq).data("tick"));
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
//! 1.x serves it as is, over HTTP/1.1 or HTTP/2. `examples/clock.rs` is a complete server
//! with a browser page.
//!
//! # Cargo features
//!
//! | feature | default | enables |
//! | --- | --- | --- |
//! | `json` | yes | plain `T: Serialize` items, [`Event::json_data`], [`EncodedEvent::json`] (serde, serde_json) |
//! | `axum` | no | `Option<LastEventId>` as an axum extractor, `axum::SseResponse` for handlers (axum-core) |
//! | `util` | no | `ServiceBuilderExt::sse` on tower's `ServiceBuilder` (tower, no default features) |
//! | `redis` | no | [`RedisLog`]: the replay log on a Redis stream, for several server nodes (redis-rs, tokio `rt`) |
//! | `decode` | no | [`decode`]: a spec-exact `text/event-stream` decoder for consuming and relaying SSE, and a test helper that collects a body into events |
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "axum")]
pub mod axum;
mod body;
#[cfg(feature = "util")]
mod builder;
#[cfg(feature = "decode")]
pub mod decode;
mod encode;
mod error;
mod event;
mod future;
mod item;
mod keep_alive;
mod last_event_id;
mod layer;
mod replay;
mod service;
mod shutdown;
mod time_limit;

pub use body::SseBody;
#[cfg(feature = "util")]
pub use builder::ServiceBuilderExt;
pub use error::{BoxError, EventError, OnItemError};
pub use event::{EncodedEvent, Event};
pub use future::ResponseFuture;
pub use item::{Fallible, SseItem};
pub use keep_alive::KeepAlive;
pub use last_event_id::{LastEventId, LAST_EVENT_ID};
pub use layer::SseLayer;
#[cfg(feature = "redis")]
pub use replay::{ConnectError, PublishError, RedisLog, RedisLogBuilder, StreamId};
pub use replay::{EventLog, EventLogBuilder, OnLag, OnUnknownId, ReplayStats, Subscription};
pub use service::Sse;
pub use shutdown::Shutdown;
pub use time_limit::EndReason;
