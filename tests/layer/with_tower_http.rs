//! tower-sse composed with tower-http's and tower's layers, as real stacks use them:
//! compression, CORS for a cross-origin `EventSource`, tracing, and timeouts.
//!
//! Streaming behaviour is checked over real sockets (hyper server on 127.0.0.1:0, both
//! HTTP versions); timing behaviour in-process on a paused clock.

use crate::support::blocks;
use crate::support::inner;
use crate::support::server;

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use futures_util::stream::{self, Stream};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};
use tower_http::compression::predicate::SizeAbove;
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::decompression::DecompressionLayer;
use tower_http::timeout::{ResponseBodyDeadlineLayer, ResponseBodyTimeoutLayer};
use tower_http::trace::TraceLayer;
use tower_sse::{Event, KeepAlive, LastEventId, SseBody, SseLayer, LAST_EVENT_ID};
use tracing::Span;

use blocks::{within, Blocks};
use inner::{answer_once, channel_stream};
use server::{empty, over_both_protocols, Client, Proto};

over_both_protocols!(
    compression_default_predicate_leaves_event_streams_alone,
    cors_allows_a_cross_origin_event_source_and_its_reconnect,
    trace_layer_keeps_the_body_streaming,
);

// ---------------------------------------------------------------------------------------
// Fixtures

/// One event every `period`, `count` of them, the first after one period.
fn every(period: Duration, count: u64) -> impl Stream<Item = Event> {
    stream::unfold(0, move |seq| async move {
        if seq == count {
            return None;
        }
        tokio::time::sleep(period).await;
        Some((Event::new().id_u64(seq).data("tick"), seq + 1))
    })
}

/// Sends three events one at a time and checks each arrives before the next is made.
async fn expect_one_by_one<B>(tx: &mpsc::Sender<Event>, body: &mut Blocks<B>)
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    for seq in 0..3 {
        tx.send(Event::new().id_u64(seq).data("live"))
            .await
            .unwrap();
        assert_eq!(body.next().await, format!("id: {seq}\ndata: live\n\n"));
    }
}

// ---------------------------------------------------------------------------------------
// Compression

/// tower-http's default predicate skips `text/event-stream`: no `Content-Encoding`, and each
/// event reaches the client before the next one exists.
async fn compression_default_predicate_leaves_event_streams_alone(proto: Proto) {
    let (tx, events) = channel_stream();
    let service = ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .layer(SseLayer::new())
        .service_fn(answer_once(events));
    let server = server::serve(service).await;
    let mut client = Client::connect(server.addr(), proto).await;

    let request = client.get("/").header(header::ACCEPT_ENCODING, "gzip");
    let response = client.send(empty(request)).await;
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    assert!(!response.headers().contains_key(header::CONTENT_ENCODING));
    let mut body = Blocks::new(response.into_body());
    assert_eq!(body.next().await, ":\n\n");
    expect_one_by_one(&tx, &mut body).await;
    server.shutdown().await;
}

/// A predicate that ignores the content type compresses the stream. With the
/// async-compression in Cargo.lock (0.4.31 and later) the encoder flushes whenever the body
/// has nothing ready, so events still arrive one by one, each after a flush.
#[tokio::test(start_paused = true)]
async fn compression_with_an_overridden_predicate_flushes_per_event() {
    let compress_all = || CompressionLayer::new().compress_when(SizeAbove::new(32));

    // The stream is compressed...
    let (_tx, events) = channel_stream();
    let compressed = ServiceBuilder::new()
        .layer(compress_all())
        .layer(SseLayer::new().no_keep_alive())
        .service_fn(answer_once(events));
    let request = Request::get("/").header(header::ACCEPT_ENCODING, "gzip");
    let response = compressed.oneshot(request.body(()).unwrap()).await.unwrap();
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");

    // ...and, decompressed as a client does, each event arrives before the next is made.
    // On the paused clock a held event would fail at once: the wait times out.
    let (tx, events) = channel_stream();
    let round_trip = ServiceBuilder::new()
        .layer(DecompressionLayer::new())
        .layer(compress_all())
        .layer(SseLayer::new().no_keep_alive())
        .service_fn(answer_once(events));
    let response = round_trip.oneshot(Request::new(())).await.unwrap();
    let mut body = Blocks::new(response.into_body());
    assert_eq!(body.next().await, ":\n\n");
    expect_one_by_one(&tx, &mut body).await;
    drop(tx);
    body.end().await;
}

// ---------------------------------------------------------------------------------------
// CORS

const APP_ORIGIN: &str = "http://app.test";

/// The events say where the inner service was asked to resume.
fn resume_report(
    request: Request<axum::body::Body>,
) -> Ready<Result<Response<impl Stream<Item = Event>>, Infallible>> {
    let data = match request.extensions().get::<LastEventId>() {
        Some(id) => format!("after {id}"),
        None => "from the start".to_owned(),
    };
    ready(Ok(Response::new(stream::iter([Event::new().data(data)]))))
}

/// `new EventSource(url, { withCredentials: true })` from another origin: a simple GET (no
/// preflight), whose response must name the origin and allow credentials. A polyfill that
/// sends `Last-Event-ID` itself makes the request non-simple, so the browser first sends a
/// preflight `OPTIONS` asking for that header.
///
/// `CorsLayer` answers preflights itself with an empty `ResBody::default()`; `SseBody` has
/// no `Default`, so the layer goes on axum's `Router`, whose `Body` has one.
async fn cors_allows_a_cross_origin_event_source_and_its_reconnect(proto: Proto) {
    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_static(APP_ORIGIN))
        .allow_methods([Method::GET])
        .allow_headers([LAST_EVENT_ID])
        .allow_credentials(true);
    let app = Router::new()
        .route_service("/events", SseLayer::new().layer(service_fn(resume_report)))
        .layer(cors);
    let server = server::serve(app).await;

    // The first connection.
    let mut client = Client::connect(server.addr(), proto).await;
    let request = client.get("/events").header(header::ORIGIN, APP_ORIGIN);
    let response = client.send(empty(request)).await;
    let headers = response.headers();
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP_ORIGIN);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, ":\n\ndata: from the start\n\n");

    // The preflight for a reconnect that carries `Last-Event-ID`.
    let request = client
        .get("/events")
        .method(Method::OPTIONS)
        .header(header::ORIGIN, APP_ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "last-event-id");
    let response = client.send(empty(request)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP_ORIGIN);
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "last-event-id"
    );
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_METHODS], "GET");
    // Answered by the CORS layer: no stream was opened for it.
    assert!(!headers.contains_key(header::CONTENT_TYPE));
    assert!(response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());

    // The reconnect itself resumes, and is allowed.
    let request = client
        .get("/events")
        .header(header::ORIGIN, APP_ORIGIN)
        .header(LAST_EVENT_ID, "5");
    let response = client.send(empty(request)).await;
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        APP_ORIGIN
    );
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, ":\n\ndata: after 5\n\n");

    // Another origin is told the allowed one only; its browser, comparing, hides the stream.
    let request = client
        .get("/events")
        .header(header::ORIGIN, "http://other.test");
    let response = client.send(empty(request)).await;
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        APP_ORIGIN
    );
    server.shutdown().await;
}

/// Without axum, boxing the body gives `CorsLayer` one with `Default`, at the cost of one
/// allocation per response.
#[tokio::test]
async fn cors_over_a_plain_tower_stack() {
    let service = ServiceBuilder::new()
        .layer(CorsLayer::permissive())
        .map_response(|response: Response<SseBody<_>>| response.map(BodyExt::boxed_unsync))
        .layer(SseLayer::new())
        .service_fn(resume_report);
    let request = Request::get("/")
        .header(header::ORIGIN, APP_ORIGIN)
        .header(LAST_EVENT_ID, "3")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, ":\n\ndata: after 3\n\n");
}

// ---------------------------------------------------------------------------------------
// Trace

/// `TraceLayer` wraps the body but keeps it streaming: each event is a chunk it sees, sent
/// as it is produced, and the end of the stream reaches its `on_eos`.
async fn trace_layer_keeps_the_body_streaming(proto: Proto) {
    let chunks = Arc::new(Mutex::new(Vec::<Bytes>::new()));
    let (eos_tx, mut eos) = mpsc::unbounded_channel::<Option<HeaderMap>>();
    let seen = chunks.clone();
    let trace = TraceLayer::new_for_http()
        .on_body_chunk(move |chunk: &Bytes, _latency: Duration, _span: &Span| {
            seen.lock().unwrap().push(chunk.clone());
        })
        .on_eos(
            move |trailers: Option<&HeaderMap>, _duration: Duration, _span: &Span| {
                let _ = eos_tx.send(trailers.cloned());
            },
        );
    let (tx, events) = channel_stream();
    let service = ServiceBuilder::new()
        .layer(trace)
        .layer(SseLayer::new())
        .service_fn(answer_once(events));
    let server = server::serve(service).await;
    let mut client = Client::connect(server.addr(), proto).await;

    let response = client.send(empty(client.get("/"))).await;
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = Blocks::new(response.into_body());
    assert_eq!(body.next().await, ":\n\n");
    expect_one_by_one(&tx, &mut body).await;
    drop(tx);
    body.end().await;

    let trailers = within("on_eos", eos.recv()).await.expect("on_eos called");
    assert!(trailers.is_none());
    let chunks = chunks.lock().unwrap().concat();
    assert_eq!(
        chunks,
        b":\n\nid: 0\ndata: live\n\nid: 1\ndata: live\n\nid: 2\ndata: live\n\n"
    );
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Timeouts

/// tower's `TimeoutLayer` times the response future only: a stream that runs five times
/// longer still runs to its end.
#[tokio::test(start_paused = true)]
async fn tower_timeout_does_not_cut_the_stream() {
    let service = ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .layer(SseLayer::new())
        .service_fn(answer_once(every(Duration::from_secs(2), 3)));
    let started = Instant::now();
    let response = service.oneshot(Request::new(())).await.unwrap();
    expect_every_tick(response, started).await;
}

/// tower-http's `TimeoutLayer` also times the response future only. It answers a timeout
/// with its own empty response, so (like `CorsLayer`) it needs axum's `Body` or a boxed one.
#[tokio::test(start_paused = true)]
async fn tower_http_timeout_does_not_cut_the_stream() {
    let app = Router::new()
        .route_service(
            "/",
            SseLayer::new().layer(service_fn(answer_once(every(Duration::from_secs(2), 3)))),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(1),
        ));
    let started = Instant::now();
    let request = Request::new(axum::body::Body::empty());
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    expect_every_tick(response, started).await;
}

/// The whole body of `every(2 s, 3)` behind the layer, ending 6 s after `started`.
async fn expect_every_tick<B>(response: Response<B>, started: Instant)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        ":\n\nid: 0\ndata: tick\n\nid: 1\ndata: tick\n\nid: 2\ndata: tick\n\n"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(6));
}

/// `ResponseBodyTimeoutLayer` limits the wait for each frame. A quiet stream whose
/// keep-alive interval is longer than that limit fails with a body error (which aborts the
/// response); keep-alives shorter than the limit keep it open.
#[tokio::test(start_paused = true)]
async fn response_body_timeout_cuts_only_streams_quieter_than_it() {
    let body_timeout = ResponseBodyTimeoutLayer::new(Duration::from_secs(5));

    // Default keep-alive (15 s): the 5 s frame timeout fires first.
    let service = ServiceBuilder::new()
        .layer(body_timeout.clone())
        .layer(SseLayer::new())
        .service_fn(answer_once(stream::pending::<Event>()));
    let started = Instant::now();
    let response = service.oneshot(Request::new(())).await.unwrap();
    let mut body = Blocks::new(response.into_body());
    assert_eq!(body.next().await, ":\n\n");
    let error = body.next_frame().await.expect("an error, not the end");
    assert!(error.is_err(), "expected a timeout error, got {error:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));

    // Keep-alives every 4 s reset the frame timeout; `max_duration` ends the stream cleanly.
    let service = ServiceBuilder::new()
        .layer(body_timeout)
        .layer(
            SseLayer::new()
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(4)))
                .max_duration(Duration::from_secs(30)),
        )
        .service_fn(answer_once(stream::pending::<Event>()));
    let started = Instant::now();
    let response = service.oneshot(Request::new(())).await.unwrap();
    let body = response.into_body().collect().await.expect("no timeout");
    assert_eq!(body.to_bytes(), ":\n\n".repeat(1 + 7));
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

/// `ResponseBodyDeadlineLayer` bounds the whole body: it cuts a live stream with an error in
/// the middle, where `max_duration` ends it cleanly at an event boundary.
#[tokio::test(start_paused = true)]
async fn response_body_deadline_cuts_a_live_stream_with_an_error() {
    let service = ServiceBuilder::new()
        .layer(ResponseBodyDeadlineLayer::new(Duration::from_secs(5)))
        .layer(SseLayer::new())
        .service_fn(answer_once(every(Duration::from_secs(2), 10)));
    let started = Instant::now();
    let response = service.oneshot(Request::new(())).await.unwrap();
    let mut body = Blocks::new(response.into_body());
    assert_eq!(body.next().await, ":\n\n");
    assert_eq!(body.next().await, "id: 0\ndata: tick\n\n");
    assert_eq!(body.next().await, "id: 1\ndata: tick\n\n");
    let error = body.next_frame().await.expect("an error, not the end");
    assert!(error.is_err(), "expected a deadline error, got {error:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));

    // The same limit as `max_duration`: two events, then a clean end.
    let service = ServiceBuilder::new()
        .layer(SseLayer::new().max_duration(Duration::from_secs(5)))
        .service_fn(answer_once(every(Duration::from_secs(2), 10)));
    let response = service.oneshot(Request::new(())).await.unwrap();
    let body = response.into_body().collect().await.expect("a clean end");
    assert_eq!(
        body.to_bytes(),
        ":\n\nid: 0\ndata: tick\n\nid: 1\ndata: tick\n\n"
    );
}
