//! Collecting a whole response body into events, for testing a handler without a server.

use std::future::poll_fn;
use std::pin::pin;
use std::time::Duration;

use http_body::Body;

use super::error::DecodeError;
use super::event::{Decoded, MessageEvent};
use super::parser::Decoder;
use super::stream::push_buf;
use crate::error::BoxError;

/// Reads `body` to its end and decodes it: the events, the last `retry`, and how the
/// stream ended. The same as [`Collector::new().collect(body)`](Collector::collect).
///
/// Meant for tests: it keeps every event in memory, and waits for the end of the body, so
/// an endless stream needs [`Collector::max_events`].
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use futures_util::stream;
/// use http::{Request, Response};
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_sse::decode::{self, CollectEnd};
/// use tower_sse::{Event, SseLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = ServiceBuilder::new()
///     .layer(SseLayer::new())
///     .service_fn(|_: Request<()>| async {
///         let events = (1..=2).map(|n| Event::new().id_u64(n).event("tick").unwrap().data("hi"));
///         Ok::<_, Infallible>(Response::new(stream::iter(events)))
///     });
///
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// let collected = decode::collect(response.into_body()).await;
/// assert!(matches!(collected.ended, CollectEnd::Cleanly));
/// assert_eq!(collected.data(), ["hi", "hi"]);
/// assert_eq!(collected.ids(), ["1", "2"]);
/// assert_eq!(collected.events[0].event_type(), "tick");
/// # }
/// ```
pub async fn collect<B>(body: B) -> Collected
where
    B: Body,
    B::Error: Into<BoxError>,
{
    Collector::new().collect(body).await
}

/// Options for collecting a body: the [`Decoder`] to use, and when to stop.
///
/// # Example
///
/// Stop an endless stream after three events:
///
/// ```
/// use std::convert::Infallible;
/// use futures_util::stream;
/// use http::{Request, Response};
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_sse::decode::{Collector, Decoder, CollectEnd};
/// use tower_sse::{Event, SseLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = ServiceBuilder::new()
///     .layer(SseLayer::new())
///     .service_fn(|_: Request<()>| async {
///         let events = (0..).map(|n: u64| Event::new().id_u64(n).data("tick"));
///         Ok::<_, Infallible>(Response::new(stream::iter(events)))
///     });
///
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// let collected = Collector::new()
///     .max_events(3)
///     .decoder(Decoder::new().comments(true))
///     .collect(response.into_body())
///     .await;
/// assert!(matches!(collected.ended, CollectEnd::MaxEvents));
/// assert_eq!(collected.ids(), ["0", "1", "2"]);
/// // The layer opens every stream with an empty comment.
/// assert_eq!(collected.comments, [""]);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Collector {
    decoder: Decoder,
    max_events: Option<usize>,
}

impl Collector {
    /// Collects until the body ends, with a default [`Decoder`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes with `decoder`: its limits, and whether comments are collected.
    pub fn decoder(mut self, decoder: Decoder) -> Self {
        self.decoder = decoder;
        self
    }

    /// Stops once `n` events are collected, dropping the body ([`CollectEnd::MaxEvents`]).
    pub fn max_events(mut self, n: usize) -> Self {
        self.max_events = Some(n);
        self
    }

    /// Reads `body` until it ends, fails, or [`max_events`](Self::max_events) is reached.
    pub async fn collect<B>(self, body: B) -> Collected
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let mut decoder = self.decoder;
        let mut events = Vec::new();
        let mut comments = Vec::new();
        let mut body = pin!(body);
        let ended = 'read: loop {
            loop {
                if self.max_events.is_some_and(|max| events.len() >= max) {
                    break 'read CollectEnd::MaxEvents;
                }
                match decoder.next_item() {
                    Ok(Some(Decoded::Event(event))) => events.push(event),
                    Ok(Some(Decoded::Comment(text))) => comments.push(text),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(error) => break 'read CollectEnd::Error(error),
                }
            }
            match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        push_buf(&mut decoder, data);
                    }
                }
                Some(Err(error)) => break CollectEnd::Error(DecodeError::body(error)),
                None => match decoder.finish() {
                    0 => break CollectEnd::Cleanly,
                    discarded => break CollectEnd::MidEvent { discarded },
                },
            }
        };
        Collected {
            events,
            comments,
            retry: decoder.retry(),
            last_event_id: decoder.last_event_id().to_owned(),
            ended,
        }
    }
}

/// What a collected body held.
#[derive(Debug)]
#[non_exhaustive]
pub struct Collected {
    /// The dispatched events, in order.
    pub events: Vec<MessageEvent>,
    /// The comments, when the decoder was set to yield them
    /// ([`Decoder::comments`]); empty otherwise.
    pub comments: Vec<String>,
    /// The reconnection time from the last valid `retry` field.
    pub retry: Option<Duration>,
    /// The last event id a reconnecting client would send.
    pub last_event_id: String,
    /// How the body ended.
    pub ended: CollectEnd,
}

impl Collected {
    /// The data of each event.
    pub fn data(&self) -> Vec<&str> {
        self.events.iter().map(MessageEvent::data).collect()
    }

    /// The last event id of each event.
    pub fn ids(&self) -> Vec<&str> {
        self.events
            .iter()
            .map(MessageEvent::last_event_id)
            .collect()
    }
}

/// How a collected body ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum CollectEnd {
    /// The body ended at an event boundary.
    Cleanly,
    /// The body ended in the middle of an event, which was discarded.
    MidEvent {
        /// The bytes after the last blank line: the unfinished event's.
        discarded: usize,
    },
    /// The body failed ([`DecodeError::Body`]) or a decoder limit was exceeded.
    Error(DecodeError),
    /// [`Collector::max_events`] events were collected; the rest of the body was not read.
    MaxEvents,
}

impl CollectEnd {
    /// Whether the body ended at an event boundary.
    pub fn is_clean(&self) -> bool {
        matches!(self, Self::Cleanly)
    }
}
