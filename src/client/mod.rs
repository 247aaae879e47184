//! A reconnecting `EventSource` client over any tower `Service` (feature `client`).
//!
//! [`EventSource`] is a [`Stream`](futures_core::Stream) of [`Item`]s read from any
//! `tower::Service<http::Request<B>>` answering `http::Response<impl Body>`: hyper-util's
//! `Client`, a stack with tower-http layers, or an in-process service in tests. It follows
//! the browser's `EventSource` exactly (WHATWG HTML, "Server-sent events"): headers,
//! `Last-Event-ID` on reconnection, `retry:`, redirects, `204` to stop, other statuses and
//! content types failing the connection. Around that it adds what a service needs, each
//! with a default that is safe in production ([`Builder`]):
//!
//! - jittered exponential backoff for failures in a row, capped, reset only once an event
//!   arrives (a server that accepts and drops at once does not cause a hot loop);
//! - an opt-in [`RetryPolicy`] for `5xx` and `429` that honours `Retry-After`;
//! - caps on attempts ([`Builder::max_attempts`]) and time ([`Builder::max_elapsed`]);
//! - a connect timeout and a read timeout (no byte, keep-alive comments included, for that
//!   long means reconnect);
//! - a [`Handle`] to force a reconnection or close the stream from elsewhere;
//! - comments on request ([`Builder::comments`]), and decoder limits large enough for the
//!   multi-megabyte lines real feeds send, yet bounded.
//!
//! Besides events, the stream yields the connection's state: [`Item::Open`] (with the
//! response headers), [`Item::Reconnecting`] (attempt, delay, [`Cause`]) and
//! [`Item::Closed`]; [`EventSource::last_event_id`] and
//! [`EventSource::reconnection_time`] say where it stands.
//!
//! No task is spawned and no channel is used: the stream reads only when polled, one chunk
//! at a time, so memory stays bounded and a slow consumer slows the reading down.
//!
//! # Example
//!
//! An OpenAI-style request: a `POST` with a JSON body and a bearer token, sent again whole
//! on every reconnection (`examples/openai.rs` runs this against a fake upstream).
//!
//! ```no_run
//! use bytes::Bytes;
//! use futures_util::StreamExt;
//! use http::Request;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower_sse::client::{Builder, Item, RetryPolicy};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let request = Request::post("http://127.0.0.1:8080/v1/chat/completions")
//!     .header("authorization", "Bearer sk-test")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(br#"{"model":"m","stream":true}"#)))?;
//! let mut source = Builder::new()
//!     .retry_policy(RetryPolicy::transient())
//!     .max_attempts(3)
//!     .build(client, request);
//! while let Some(item) = source.next().await {
//!     match item? {
//!         Item::Event(event) if event.data() == "[DONE]" => break,
//!         Item::Event(event) => println!("{}", event.data()),
//!         Item::Reconnecting(next) => eprintln!("{}, retrying in {:?}", next.cause(), next.delay()),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod builder;
mod error;
mod handle;
mod item;
mod request;
mod source;

pub use builder::{
    Builder, RetryPolicy, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ERROR_BODY_LIMIT, DEFAULT_JITTER,
    DEFAULT_MAX_BACKOFF, DEFAULT_MAX_EVENT_LEN, DEFAULT_MAX_LINE_LEN, DEFAULT_MAX_REDIRECTS,
    DEFAULT_READ_TIMEOUT, DEFAULT_RECONNECTION_TIME,
};
pub use error::{Error, RedirectError, RefusedResponse};
pub use handle::Handle;
pub use item::{Cause, Closed, Item, Opened, Reconnecting};
pub use request::MakeRequest;
pub use source::{EventSource, HttpService, ReadyState};
