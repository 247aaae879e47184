//! End to end over real sockets: tower-sse behind a hyper server on 127.0.0.1:0, read by
//! hyper clients speaking HTTP/1.1 and HTTP/2 (h2c prior knowledge).
//!
//! Every test runs once per protocol: framing, flushing and disconnect detection differ
//! between hyper's HTTP/1.1 and HTTP/2 paths, and the layer must hold on both.

use crate::support::blocks;
use crate::support::inner;
use crate::support::server;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, Stream};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tower::ServiceBuilder;
use tower_sse::{Event, KeepAlive, LastEventId, SseItem, SseLayer};

use blocks::{expect_end, within};
use inner::{answer_once, channel_stream};
use server::{empty, over_both_protocols, Client, Proto, Server};

over_both_protocols!(
    sets_sse_headers,
    drops_framing_headers_of_inner_response,
    keeps_headers_the_inner_service_set,
    opening_frame_comes_before_the_first_item,
    events_arrive_one_by_one_as_produced,
    last_event_id_reaches_inner_service,
    untrusted_last_event_id_is_absent_and_request_served,
    last_event_id_query_fallback,
    non_200_passes_through_without_stream,
    a_finished_streams_reconnect_is_answered_204,
    finite_stream_ends_the_body,
    max_duration_ends_the_body_cleanly,
    client_disconnect_drops_the_stream,
    server_shutdown_drops_the_stream,
    keep_alive_fills_silence,
);

// ---------------------------------------------------------------------------------------
// Fixtures

/// Serves `layer` in front of an inner service that answers every request with
/// `respond(&request)`.
async fn serve_with<F, St>(layer: SseLayer, respond: F) -> Server
where
    F: Fn(&Request<Incoming>) -> Response<St> + Clone + Send + Sync + 'static,
    St: Stream + Send + 'static,
    St::Item: SseItem + Send,
{
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(move |request: Request<Incoming>| {
                let response = respond(&request);
                async move { Ok::<_, Infallible>(response) }
            });
    server::serve(service).await
}

/// Serves `layer` in front of an inner service that answers its single request with
/// `stream`.
async fn serve_once<St>(layer: SseLayer, stream: St) -> Server
where
    St: Stream + Send + 'static,
    St::Item: SseItem + Send,
{
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(answer_once(stream));
    server::serve(service).await
}

/// A stream that reports, through a oneshot channel, when it is dropped.
struct NotifyOnDrop<St> {
    inner: St,
    dropped: Option<oneshot::Sender<()>>,
}

fn notify_on_drop<St>(inner: St) -> (NotifyOnDrop<St>, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let stream = NotifyOnDrop {
        inner,
        dropped: Some(tx),
    };
    (stream, rx)
}

impl<St: Stream + Unpin> Stream for NotifyOnDrop<St> {
    type Item = St::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<St::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<St> Drop for NotifyOnDrop<St> {
    fn drop(&mut self) {
        if let Some(tx) = self.dropped.take() {
            // The test may have stopped listening already; it has then failed elsewhere.
            let _ = tx.send(());
        }
    }
}

/// Reads body frames until `expected.len()` bytes arrived, and asserts they are `expected`.
///
/// Gathering up to a length, rather than taking one frame, keeps the assertion about bytes
/// even if a transport splits a frame; it still fails if more or other bytes arrive.
async fn expect_bytes(body: &mut Incoming, expected: &str) {
    let mut got = BytesMut::new();
    // Each data frame carries at least one byte or is an empty one; both are bounded here.
    for _ in 0..expected.len() + 8 {
        if got.len() >= expected.len() {
            break;
        }
        let frame = within(&format!("{expected:?}"), body.frame()).await;
        match frame {
            Some(Ok(frame)) => {
                let data = frame.into_data().expect("a data frame, not trailers");
                got.extend_from_slice(&data);
            }
            Some(Err(error)) => panic!("body failed while waiting for {expected:?}: {error}"),
            None => panic!("body ended while waiting for {expected:?}; got {got:?}"),
        }
    }
    assert_eq!(got, expected.as_bytes(), "unexpected body bytes");
}

async fn body_text(response: Response<Incoming>) -> String {
    let bytes: Bytes = within("whole body", response.into_body().collect())
        .await
        .expect("body ends cleanly")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8 body")
}

/// No length and no `connection`; chunked on HTTP/1.1 (hyper's choice for an unknown
/// length), no `transfer-encoding` on HTTP/2.
fn expect_streamed_framing(headers: &http::HeaderMap, proto: Proto) {
    assert!(!headers.contains_key(header::CONTENT_LENGTH));
    assert!(!headers.contains_key(header::CONNECTION));
    match proto {
        Proto::Http1 => assert_eq!(headers[header::TRANSFER_ENCODING], "chunked"),
        Proto::Http2 => assert!(!headers.contains_key(header::TRANSFER_ENCODING)),
    }
}

fn expected_version(proto: Proto) -> Version {
    match proto {
        Proto::Http1 => Version::HTTP_11,
        Proto::Http2 => Version::HTTP_2,
    }
}

// ---------------------------------------------------------------------------------------
// Headers

async fn sets_sse_headers(proto: Proto) {
    let server = serve_once(SseLayer::new(), stream::iter([Event::new().data("x")])).await;
    let mut client = Client::connect(server.addr(), proto).await;
    let response = client.send(empty(client.get("/events"))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), expected_version(proto));
    let headers = response.headers();
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    expect_streamed_framing(headers, proto);
    assert_eq!(body_text(response).await, ":\n\ndata: x\n\n");
    server.shutdown().await;
}

async fn drops_framing_headers_of_inner_response(proto: Proto) {
    // Left in place, a `content-length` would cut the stream short on HTTP/1.1 and break
    // the stream on HTTP/2, and `connection` is not allowed on HTTP/2 at all.
    let server = serve_with(SseLayer::new(), |_request| {
        let mut response = Response::new(stream::iter([Event::new().data("longer than 3")]));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        response
    })
    .await;
    let mut client = Client::connect(server.addr(), proto).await;

    for _ in 0..2 {
        // Twice on one connection: `connection: close` must not have closed it.
        let response = client.send(empty(client.get("/events"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        expect_streamed_framing(response.headers(), proto);
        assert_eq!(body_text(response).await, ":\n\ndata: longer than 3\n\n");
    }
    server.shutdown().await;
}

async fn keeps_headers_the_inner_service_set(proto: Proto) {
    let server = serve_with(SseLayer::new(), |_request| {
        Response::builder()
            .header(header::CACHE_CONTROL, "no-store")
            .header("x-accel-buffering", "yes")
            .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
            .header("x-custom", "kept")
            .body(stream::iter([Event::new().data("x")]))
            .unwrap()
    })
    .await;
    let mut client = Client::connect(server.addr(), proto).await;
    let response = client.send(empty(client.get("/events"))).await;

    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    let all = |name: &str| headers.get_all(name).iter().cloned().collect::<Vec<_>>();
    // Kept, and not joined by a second value from the layer.
    assert_eq!(all("cache-control"), ["no-store"]);
    assert_eq!(all("x-accel-buffering"), ["yes"]);
    assert_eq!(all("content-type"), ["text/event-stream; charset=utf-8"]);
    assert_eq!(all("x-custom"), ["kept"]);
    assert_eq!(body_text(response).await, ":\n\ndata: x\n\n");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Framing

async fn opening_frame_comes_before_the_first_item(proto: Proto) {
    for (layer, opening) in [
        (SseLayer::new(), ":\n\n"),
        (
            SseLayer::new().retry(Duration::from_millis(2500)),
            "retry: 2500\n\n",
        ),
    ] {
        let (tx, events) = channel_stream();
        let server = serve_once(layer.no_keep_alive(), events).await;
        let mut client = Client::connect(server.addr(), proto).await;
        let response = client.send(empty(client.get("/events"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();

        // The source has produced nothing, yet the opening frame is already on the wire.
        let first = within("the opening frame", body.frame())
            .await
            .expect("a frame, not the end")
            .expect("no body error")
            .into_data()
            .expect("a data frame");
        assert_eq!(first, opening);

        // Only now does the first item exist; it is the next thing to arrive.
        tx.send(Event::new().data("first")).await.unwrap();
        expect_bytes(&mut body, "data: first\n\n").await;
        drop(tx);
        expect_end(&mut body).await;
        server.shutdown().await;
    }
}

async fn events_arrive_one_by_one_as_produced(proto: Proto) {
    let (tx, events) = channel_stream();
    let server = serve_once(SseLayer::new().no_keep_alive(), events).await;
    let mut client = Client::connect(server.addr(), proto).await;
    let mut body = client.send(empty(client.get("/events"))).await.into_body();
    expect_bytes(&mut body, ":\n\n").await;

    // Each event must reach the client while the next does not exist yet: nothing on the
    // path (layer, hyper, chunked or h2 framing) may hold it back to fill a buffer.
    for seq in 0..5u64 {
        let event = Event::new()
            .id_u64(seq)
            .event("tick")
            .unwrap()
            .data(format!("line {seq}\nsecond line"));
        tx.send(event).await.unwrap();
        let expected = format!("id: {seq}\nevent: tick\ndata: line {seq}\ndata: second line\n\n");
        expect_bytes(&mut body, &expected).await;
    }
    drop(tx);
    expect_end(&mut body).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Last-Event-ID

/// Serves one event per request whose data tells what `LastEventId` the inner service got.
async fn serve_last_event_id_echo(layer: SseLayer) -> Server {
    serve_with(layer.no_keep_alive(), |request| {
        let seen = match request.extensions().get::<LastEventId>() {
            Some(id) => format!("id={id}"),
            None => "absent".to_owned(),
        };
        Response::new(stream::iter([Event::new().data(seen)]))
    })
    .await
}

/// Sends `request` and returns what the inner service saw as its `LastEventId`.
async fn echoed_id(client: &mut Client, request: Request<Empty<Bytes>>) -> String {
    let response = client.send(request).await;
    // Whatever the id, the request is served.
    assert_eq!(response.status(), StatusCode::OK);
    let text = body_text(response).await;
    let echoed = text
        .strip_prefix(":\n\ndata: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("unexpected body {text:?}"));
    echoed.to_owned()
}

fn with_last_event_id(client: &Client, value: &[u8]) -> Request<Empty<Bytes>> {
    let value = HeaderValue::from_bytes(value).expect("a value http can carry");
    empty(client.get("/events").header("last-event-id", value))
}

async fn last_event_id_reaches_inner_service(proto: Proto) {
    let server = serve_last_event_id_echo(SseLayer::new()).await;
    let mut client = Client::connect(server.addr(), proto).await;

    let request = with_last_event_id(&client, b"42");
    assert_eq!(echoed_id(&mut client, request).await, "id=42");
    // Non-ASCII UTF-8 crosses hyper's header handling byte for byte.
    let request = with_last_event_id(&client, "é-42".as_bytes());
    assert_eq!(echoed_id(&mut client, request).await, "id=é-42");
    // A first connection has none.
    let request = empty(client.get("/events"));
    assert_eq!(echoed_id(&mut client, request).await, "absent");
    server.shutdown().await;
}

async fn untrusted_last_event_id_is_absent_and_request_served(proto: Proto) {
    let server = serve_last_event_id_echo(SseLayer::new().last_event_id_max_len(8)).await;
    let mut client = Client::connect(server.addr(), proto).await;

    let request = with_last_event_id(&client, b"\xff\xfe-1");
    assert_eq!(echoed_id(&mut client, request).await, "absent");
    let request = with_last_event_id(&client, b"123456789");
    assert_eq!(echoed_id(&mut client, request).await, "absent");
    // The limit itself is accepted, and counts bytes: "é" is two.
    let request = with_last_event_id(&client, b"12345678");
    assert_eq!(echoed_id(&mut client, request).await, "id=12345678");
    let request = with_last_event_id(&client, "é-45678".as_bytes());
    assert_eq!(echoed_id(&mut client, request).await, "id=é-45678");
    let request = with_last_event_id(&client, "é-456789".as_bytes());
    assert_eq!(echoed_id(&mut client, request).await, "absent");
    server.shutdown().await;
}

async fn last_event_id_query_fallback(proto: Proto) {
    let with_query =
        serve_last_event_id_echo(SseLayer::new().last_event_id_query("lastEventId")).await;
    let mut client = Client::connect(with_query.addr(), proto).await;

    let request = empty(client.get("/events?lastEventId=7"));
    assert_eq!(echoed_id(&mut client, request).await, "id=7");
    let request = empty(client.get("/events?x=1&lastEventId=%C3%A9-42"));
    assert_eq!(echoed_id(&mut client, request).await, "id=é-42");
    // NUL is not allowed in an id, whichever way it came.
    let request = empty(client.get("/events?lastEventId=a%00b"));
    assert_eq!(echoed_id(&mut client, request).await, "absent");
    // The header wins over the query.
    let request = empty(
        client
            .get("/events?lastEventId=7")
            .header("last-event-id", "9"),
    );
    assert_eq!(echoed_id(&mut client, request).await, "id=9");
    with_query.shutdown().await;

    // Without the option the query is not read.
    let header_only = serve_last_event_id_echo(SseLayer::new()).await;
    let mut client = Client::connect(header_only.addr(), proto).await;
    let request = empty(client.get("/events?lastEventId=7"));
    assert_eq!(echoed_id(&mut client, request).await, "absent");
    header_only.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Non-200 responses

async fn non_200_passes_through_without_stream(proto: Proto) {
    // The stream never ends: if the layer streamed it, the body below would never end.
    let server = serve_with(SseLayer::new(), |request| {
        let status = match request.uri().path() {
            "/gone" => StatusCode::NO_CONTENT,
            _ => StatusCode::NOT_FOUND,
        };
        Response::builder()
            .status(status)
            .header("x-custom", "kept")
            .body(stream::pending::<Event>())
            .unwrap()
    })
    .await;
    let mut client = Client::connect(server.addr(), proto).await;

    for (path, status) in [
        ("/gone", StatusCode::NO_CONTENT),
        ("/missing", StatusCode::NOT_FOUND),
    ] {
        let response = client.send(empty(client.get(path))).await;
        assert_eq!(response.status(), status);
        let headers = response.headers();
        assert_eq!(headers["x-custom"], "kept");
        assert!(!headers.contains_key(header::CONTENT_TYPE), "{headers:?}");
        assert!(!headers.contains_key(header::CACHE_CONTROL), "{headers:?}");
        assert!(!headers.contains_key("x-accel-buffering"), "{headers:?}");
        assert_eq!(body_text(response).await, "", "{path}");
    }
    server.shutdown().await;
}

/// The stream's last event was marked `end_of_stream`: `EventSource` reconnects with that
/// id, and the layer answers `204` without calling the inner service (which would start a
/// finished answer again).
async fn a_finished_streams_reconnect_is_answered_204(proto: Proto) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let calls = Arc::new(AtomicUsize::new(0));
    let server = serve_with(SseLayer::new().no_opening_frame(), {
        let calls = calls.clone();
        move |_request| {
            calls.fetch_add(1, Ordering::SeqCst);
            Response::new(stream::iter([Event::new().data("answer").end_of_stream()]))
        }
    })
    .await;
    let mut client = Client::connect(server.addr(), proto).await;

    let response = client.send(empty(client.get("/answer"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let last_id = tower_sse::EventId::END_OF_STREAM;
    assert_eq!(
        body_text(response).await,
        format!("id: {}\ndata: answer\n\n", last_id.as_str())
    );

    let request = with_last_event_id(&client, last_id.as_str().as_bytes());
    let response = client.send(request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(!response.headers().contains_key(header::CONTENT_TYPE));
    assert_eq!(body_text(response).await, "");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the inner service ran again"
    );

    // Any other id is a resume like before.
    let response = client.send(with_last_event_id(&client, b"7")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// The end of the stream

async fn finite_stream_ends_the_body(proto: Proto) {
    let server = serve_with(SseLayer::new().no_keep_alive(), |_request| {
        Response::new(stream::iter(
            (1..=3u64).map(|n| Event::new().id_u64(n).data("x")),
        ))
    })
    .await;
    let mut client = Client::connect(server.addr(), proto).await;

    // Twice on one connection: a clean end leaves the connection usable, where a broken
    // chunked terminator or a reset stream would not.
    for _ in 0..2 {
        let mut body = client.send(empty(client.get("/events"))).await.into_body();
        expect_bytes(
            &mut body,
            ":\n\nid: 1\ndata: x\n\nid: 2\ndata: x\n\nid: 3\ndata: x\n\n",
        )
        .await;
        expect_end(&mut body).await;
    }
    server.shutdown().await;
}

async fn max_duration_ends_the_body_cleanly(proto: Proto) {
    // The time limit itself is tested in-process with a paused clock; over the wire the
    // question is only how the end looks, so this uses a short real limit.
    const MAX: Duration = Duration::from_millis(200);
    let (tx, events) = channel_stream();
    let (events, dropped) = notify_on_drop(events);
    let server = serve_once(SseLayer::new().no_keep_alive().max_duration(MAX), events).await;
    let mut client = Client::connect(server.addr(), proto).await;

    let started = Instant::now();
    let mut body = client.send(empty(client.get("/events"))).await.into_body();
    expect_bytes(&mut body, ":\n\n").await;

    // The source is still open (`tx` lives) and silent, yet the body ends: cleanly, and not
    // before the limit. No event is sent meanwhile: on a loaded machine it could miss the
    // 200 ms window and make the test flaky.
    expect_end(&mut body).await;
    assert!(
        started.elapsed() >= MAX,
        "ended after {:?}",
        started.elapsed()
    );
    within("the stream to be dropped", dropped)
        .await
        .expect("dropped, not leaked");
    assert!(tx.is_closed(), "the receiver went with the stream");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Disconnects

async fn client_disconnect_drops_the_stream(proto: Proto) {
    let (tx, events) = channel_stream();
    let (events, mut dropped) = notify_on_drop(events);
    let server = serve_once(SseLayer::new().no_keep_alive(), events).await;
    let mut client = Client::connect(server.addr(), proto).await;
    let mut body = client.send(empty(client.get("/events"))).await.into_body();
    expect_bytes(&mut body, ":\n\n").await;
    assert_eq!(
        dropped.try_recv(),
        Err(oneshot::error::TryRecvError::Empty),
        "the stream must live while the client listens"
    );

    // The source stays open (`tx` lives on) and no keep-alive is written, so only the
    // server noticing the closed connection can drop the stream.
    drop(body);
    client.disconnect();
    within("the stream to be dropped after the disconnect", dropped)
        .await
        .expect("dropped, not leaked");
    assert!(tx.is_closed(), "the receiver went with the stream");
    server.shutdown().await;
}

async fn server_shutdown_drops_the_stream(proto: Proto) {
    let (tx, events) = channel_stream();
    let (events, dropped) = notify_on_drop(events);
    let server = serve_once(SseLayer::new().no_keep_alive(), events).await;
    let mut client = Client::connect(server.addr(), proto).await;
    let mut body = client.send(empty(client.get("/events"))).await.into_body();
    expect_bytes(&mut body, ":\n\n").await;

    server.shutdown().await;
    within("the stream to be dropped at shutdown", dropped)
        .await
        .expect("dropped, not leaked");
    // The client learns that the stream is over, one way or another, and gets no data.
    if let Some(Ok(frame)) = within("the client to see the shutdown", body.frame()).await {
        assert!(
            frame.data_ref().map_or(true, Bytes::is_empty),
            "data after shutdown: {frame:?}"
        );
    }
    drop(tx);
}

// ---------------------------------------------------------------------------------------
// Keep-alive

async fn keep_alive_fills_silence(proto: Proto) {
    // The one place with a short real interval: hyper's timers must actually fire, and the
    // comment must actually reach the client.
    let (tx, events) = channel_stream();
    let layer = SseLayer::new()
        .retry(Duration::from_secs(1))
        .keep_alive(KeepAlive::new().interval(Duration::from_millis(50)));
    let server = serve_once(layer, events).await;
    let mut client = Client::connect(server.addr(), proto).await;
    let mut body = client.send(empty(client.get("/events"))).await.into_body();

    // A distinct opening, so the comment after it cannot be the opening sent twice.
    expect_bytes(&mut body, "retry: 1000\n\n").await;
    expect_bytes(&mut body, ":\n\n").await;
    expect_bytes(&mut body, ":\n\n").await;
    // Events still flow after keep-alives.
    tx.send(Event::new().data("after silence")).await.unwrap();
    // A keep-alive may have slipped in first; anything else is wrong.
    let mut rest = String::new();
    for _ in 0..16 {
        let frame = within("the event after keep-alives", body.frame())
            .await
            .expect("not the end")
            .expect("no error")
            .into_data()
            .expect("data");
        rest.push_str(std::str::from_utf8(&frame).unwrap());
        if rest.ends_with("data: after silence\n\n") {
            break;
        }
    }
    let keep_alives = rest.trim_end_matches("data: after silence\n\n");
    assert!(
        rest.ends_with("data: after silence\n\n") && keep_alives.replace(":\n\n", "").is_empty(),
        "unexpected bytes {rest:?}"
    );
    drop(tx);
    expect_end(&mut body).await;
    server.shutdown().await;
}
