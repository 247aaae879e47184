//! What a stream tells `tracing`: one `sse` span per stream carrying the resume id, and one
//! closing event in it with the reason, events, bytes, keep-alives and duration.
//!
//! A capturing layer records span and event fields; each test installs it for its own
//! thread only (`#[tokio::test]` runs on the current thread), so tests run in parallel.
//! The suite keeps a binary of its own: `tracing` caches each callsite's interest
//! process-wide, and tests of other suites logging on threads without a subscriber made
//! that cache drop these tests' records now and then.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tower::{ServiceBuilder, ServiceExt};
use tower_sse::{Event, Fallible, KeepAlive, SseBody, SseItem, SseLayer};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const CLOSING_MESSAGE: &str = "sse stream ended";

type Fields = BTreeMap<&'static str, String>;

/// One event as seen by the subscriber, with the span it was logged in.
#[derive(Debug, Clone)]
struct Logged {
    fields: Fields,
    span_name: Option<&'static str>,
    span_fields: Fields,
}

#[derive(Debug, Clone, Default)]
struct Capture(Arc<Mutex<Vec<Logged>>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(&mut Visitor(fields));
            }
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let span = ctx.event_span(event);
        let logged = Logged {
            fields,
            span_name: span.as_ref().map(|span| span.name()),
            span_fields: span
                .and_then(|span| span.extensions().get::<Fields>().cloned())
                .unwrap_or_default(),
        };
        self.0.lock().unwrap().push(logged);
    }
}

impl Capture {
    /// Installs the capture for this thread until the guard drops.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = Self::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        (capture, tracing::subscriber::set_default(subscriber))
    }

    /// The one closing record logged so far; fails if there is not exactly one.
    fn closing(&self) -> Logged {
        let logged = self.0.lock().unwrap();
        let closing: Vec<_> = logged
            .iter()
            .filter(|l| l.fields.get("message").map(String::as_str) == Some(CLOSING_MESSAGE))
            .collect();
        assert_eq!(closing.len(), 1, "closing records: {logged:#?}");
        closing[0].clone()
    }
}

/// Asserts the closing record's fields; `duration_ms` exactly, as the clock is paused.
#[track_caller]
fn assert_closing(
    logged: &Logged,
    reason: &str,
    events: u64,
    bytes: usize,
    keep_alives: u64,
    ms: u64,
) {
    let expected: Fields = [
        ("message", CLOSING_MESSAGE.to_owned()),
        ("reason", reason.to_owned()),
        ("events", events.to_string()),
        ("bytes", bytes.to_string()),
        ("keep_alives", keep_alives.to_string()),
        ("duration_ms", ms.to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(logged.fields, expected);
    assert_eq!(logged.span_name, Some("sse"));
}

/// The layer in front of a service that answers once with `stream`.
async fn respond<St>(layer: SseLayer, request: Request<()>, stream: St) -> Response<SseBody<St>>
where
    St: Stream + Send + 'static,
    St::Item: SseItem,
{
    let slot = Mutex::new(Some(stream));
    let service = ServiceBuilder::new().layer(layer).service_fn(move |_req| {
        let stream = slot.lock().unwrap().take().expect("one request");
        async move { Ok::<_, Infallible>(Response::new(stream)) }
    });
    service.oneshot(request).await.unwrap()
}

fn resuming(id: &str) -> Request<()> {
    Request::get("/")
        .header("last-event-id", id)
        .body(())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn source_ended_in_a_span_with_the_resume_id() {
    let (capture, _guard) = Capture::install();
    let events = stream::iter([Event::new().id("42").unwrap(), Event::new().data("x")]);
    let response = respond(SseLayer::new(), resuming("41"), events).await;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, ":\n\nid: 42\n\ndata: x\n\n");

    let closing = capture.closing();
    assert_closing(&closing, "source_ended", 2, body.len(), 0, 0);
    assert_eq!(closing.span_fields["last_event_id"], "41");
}

#[tokio::test(start_paused = true)]
async fn max_duration_counts_keep_alives_and_time() {
    let (capture, _guard) = Capture::install();
    let layer = SseLayer::new()
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(3)))
        .max_duration(Duration::from_secs(10));
    let response = respond(layer, Request::new(()), stream::pending::<Event>()).await;
    // The paused clock jumps from timer to timer: keep-alives at 3, 6 and 9 s, end at 10 s.
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, ":\n\n:\n\n:\n\n:\n\n");

    let closing = capture.closing();
    assert_closing(&closing, "max_duration", 0, body.len(), 3, 10_000);
    // A first connection has no resume id: the field stays empty.
    assert!(
        !closing.span_fields.contains_key("last_event_id"),
        "{closing:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn client_gone_when_the_body_is_dropped_early() {
    let (capture, _guard) = Capture::install();
    let (tx, rx) = mpsc::channel(1);
    let response = respond(SseLayer::new(), resuming("7"), ReceiverStream::new(rx)).await;
    let mut body = Box::pin(response.into_body());
    let opening = body.frame().await.unwrap().unwrap().into_data().unwrap();
    tx.send(Event::new().data("one")).await.unwrap();
    let event = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(event, Bytes::from("data: one\n\n"));
    tokio::time::advance(Duration::from_millis(1500)).await;
    // Nothing is logged while the stream lives.
    assert!(capture.0.lock().unwrap().is_empty());
    drop(body);

    let closing = capture.closing();
    assert_closing(
        &closing,
        "client_gone",
        1,
        opening.len() + event.len(),
        0,
        1_500,
    );
    assert_eq!(closing.span_fields["last_event_id"], "7");
}

#[tokio::test(start_paused = true)]
async fn item_error_is_its_own_reason() {
    let (capture, _guard) = Capture::install();
    let items = stream::iter([Fallible(Ok(Event::new().data("a"))), Fallible(Err("boom"))]);
    let response = respond(SseLayer::new(), Request::new(()), items).await;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, ":\n\ndata: a\n\n");
    assert_closing(&capture.closing(), "item_error", 1, body.len(), 0, 0);
}

#[tokio::test(start_paused = true)]
async fn not_streamed_when_the_inner_status_is_not_200() {
    let (capture, _guard) = Capture::install();
    let service =
        ServiceBuilder::new()
            .layer(SseLayer::new())
            .service_fn(|_req: Request<()>| async {
                let mut response = Response::new(stream::iter([Event::new().data("unsent")]));
                *response.status_mut() = StatusCode::NO_CONTENT;
                Ok::<_, Infallible>(response)
            });
    let response = service.oneshot(resuming("9")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());
    let closing = capture.closing();
    assert_closing(&closing, "not_streamed", 0, 0, 0, 0);
    assert_eq!(closing.span_fields["last_event_id"], "9");
}

/// The handler-level response logs in the same span, with the id the handler passed on.
#[cfg(feature = "axum")]
#[tokio::test(start_paused = true)]
async fn axum_response_logs_in_an_sse_span() {
    use axum_core::response::IntoResponse;
    use tower_sse::axum::SseResponse;
    use tower_sse::LastEventId;

    let (capture, _guard) = Capture::install();
    let last = LastEventId::new("12");
    let response = SseResponse::new(stream::iter([Event::new().data("x")]))
        .record_last_event_id(Some(&last))
        .into_response();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, ":\n\ndata: x\n\n");

    let closing = capture.closing();
    assert_closing(&closing, "source_ended", 1, body.len(), 0, 0);
    assert_eq!(closing.span_fields["last_event_id"], "12");
}
