//! The `compression` feature end to end: negotiation, gzip over real sockets with each event
//! decodable before the next is made, keep-alives on a paused clock, and tower-http's
//! `CompressionLayer` in the same stack.

use crate::support::blocks::within;
use crate::support::inner::{answer_once, channel_stream};
use crate::support::server::{self, empty, over_both_protocols, Client, Proto};

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use flate2::write::GzDecoder;
use futures_util::stream;
use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_http::compression::predicate::SizeAbove;
use tower_http::compression::CompressionLayer;
use tower_sse::{Compression, Event, KeepAlive, SseLayer, SseOptions};

over_both_protocols!(
    each_event_decodes_before_the_next_is_made,
    tower_http_compression_outside_compresses_nothing_twice,
);

/// A gzip body read frame by frame, each frame decompressed as it arrives.
struct Gunzip<B> {
    body: Pin<Box<B>>,
    decoder: GzDecoder<Vec<u8>>,
    frames: usize,
}

impl<B> Gunzip<B>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    fn new(body: B) -> Self {
        Self {
            body: Box::pin(body),
            decoder: GzDecoder::new(Vec::new()),
            frames: 0,
        }
    }

    /// What the next frame decodes to; panics if the body ends first.
    async fn next_frame(&mut self) -> String {
        let frame = within("the next frame", self.body.frame())
            .await
            .expect("a frame, not the end")
            .expect("no body error");
        let data = frame.into_data().expect("a data frame");
        self.frames += 1;
        self.decoder.write_all(&data).unwrap();
        self.decoder.flush().unwrap();
        String::from_utf8(std::mem::take(self.decoder.get_mut())).unwrap()
    }

    /// Decodes frames until `expected` has come whole, and checks nothing else came.
    async fn expect(&mut self, expected: &str) {
        let mut text = String::new();
        while text.len() < expected.len() {
            text += &self.next_frame().await;
        }
        assert_eq!(text, expected);
    }

    /// The trailer arrives, the member checks out (CRC-32, size) and the body ends.
    async fn end(mut self) {
        while let Some(frame) = within("the end", self.body.frame()).await {
            let data = frame.expect("no body error").into_data().expect("data");
            self.decoder.write_all(&data).unwrap();
        }
        let rest = self.decoder.finish().expect("a whole gzip member");
        assert!(rest.is_empty(), "decoded after the last event: {rest:?}");
    }
}

fn gzip_layer() -> SseLayer {
    SseLayer::new().compression(Compression::gzip())
}

/// Over a real socket: the page's `EventSource` would see each event as soon as it was
/// sent, because each one decodes in full before the next exists.
async fn each_event_decodes_before_the_next_is_made(proto: Proto) {
    let (tx, events) = channel_stream();
    let service = ServiceBuilder::new()
        .layer(gzip_layer())
        .service_fn(answer_once(events));
    let server = server::serve(service).await;
    let mut client = Client::connect(server.addr(), proto).await;
    let request = client
        .get("/")
        .header(header::ACCEPT_ENCODING, "gzip, deflate, br, zstd");
    let response = client.send(empty(request)).await;
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(response.headers()[header::VARY], "accept-encoding");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );

    let mut body = Gunzip::new(response.into_body());
    body.expect(":\n\n").await;
    for seq in 0..5 {
        let data = format!("{{\"seq\":{seq},\"delta\":\"token\"}}");
        tx.send(Event::new().id_u64(seq).data(&data)).await.unwrap();
        body.expect(&format!("id: {seq}\ndata: {data}\n\n")).await;
    }
    drop(tx);
    body.end().await;
    server.shutdown().await;
}

type Events = stream::Iter<std::vec::IntoIter<Event>>;

/// The status, headers and body (gunzipped when gzip) one request gets from `layer` in
/// front of an inner service that answers with `make()`.
async fn answer(
    layer: SseLayer,
    accept: Option<&str>,
    make: fn(Events) -> Response<Events>,
) -> (StatusCode, HeaderMap, Bytes) {
    let service = ServiceBuilder::new()
        .layer(layer.no_keep_alive())
        .service_fn(move |_req: Request<()>| {
            let events = stream::iter(vec![Event::new().data("{\"a\":1}")]);
            std::future::ready(Ok::<_, Infallible>(make(events)))
        });
    let mut request = Request::get("/");
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT_ENCODING, accept);
    }
    let response = service.oneshot(request.body(()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let bytes = match parts.headers.get(header::CONTENT_ENCODING) {
        Some(coding) if coding == "gzip" => {
            let mut decoder = GzDecoder::new(Vec::new());
            decoder.write_all(&bytes).unwrap();
            Bytes::from(decoder.finish().unwrap())
        }
        _ => bytes,
    };
    (parts.status, parts.headers, bytes)
}

const PLAIN: &str = ":\n\ndata: {\"a\":1}\n\n";

#[tokio::test]
async fn negotiation_follows_accept_encoding() {
    for (accept, gzip) in [
        (Some("gzip"), true),
        (Some("br;q=1, gzip;q=0.8"), true),
        (Some("*"), true),
        (None, false),
        (Some("identity"), false),
        (Some("br, zstd"), false),
        (Some("gzip;q=0"), false),
        (Some("*, gzip;q=0"), false),
    ] {
        let (status, headers, body) = answer(gzip_layer(), accept, Response::new).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers.get(header::CONTENT_ENCODING).is_some(),
            gzip,
            "{accept:?}"
        );
        // Compressed or not, the response depends on the header: caches must know.
        assert_eq!(headers[header::VARY], "accept-encoding", "{accept:?}");
        assert_eq!(body, PLAIN, "{accept:?}");
    }
}

#[tokio::test]
async fn off_by_default_and_per_response() {
    // Off by default: no coding, no Vary.
    let (_, headers, body) = answer(SseLayer::new(), Some("gzip"), Response::new).await;
    assert!(!headers.contains_key(header::CONTENT_ENCODING));
    assert!(!headers.contains_key(header::VARY));
    assert_eq!(body, PLAIN);

    // On for one response of a layer that has it off.
    let on = |events| {
        SseOptions::new()
            .compression(Compression::gzip())
            .response(events)
    };
    let (_, headers, body) = answer(SseLayer::new(), Some("gzip"), on).await;
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(body, PLAIN);

    // Off for one response of a layer that has it on.
    let off = |events| SseOptions::new().no_compression().response(events);
    let (_, headers, body) = answer(gzip_layer(), Some("gzip"), off).await;
    assert!(!headers.contains_key(header::CONTENT_ENCODING));
    assert!(!headers.contains_key(header::VARY));
    assert_eq!(body, PLAIN);
}

#[tokio::test]
async fn other_statuses_and_codings_are_left_alone() {
    let not_found = |events| {
        let mut response = Response::new(events);
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    };
    let (status, headers, body) = answer(gzip_layer(), Some("gzip"), not_found).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!headers.contains_key(header::CONTENT_ENCODING));
    assert!(body.is_empty());

    // The inner service chose a coding: it stays, and the layer adds none.
    let own = |events| {
        Response::builder()
            .header(header::CONTENT_ENCODING, "identity")
            .header(header::VARY, "Accept-Encoding, Origin")
            .body(events)
            .unwrap()
    };
    let (_, headers, body) = answer(gzip_layer(), Some("gzip"), own).await;
    assert_eq!(headers[header::CONTENT_ENCODING], "identity");
    assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
    assert_eq!(body, PLAIN);
}

/// Keep-alives go out in the gzip stream, each decodable on arrival, before the first event
/// and after the last; the paused clock makes every wait exact.
#[tokio::test(start_paused = true)]
async fn keep_alives_are_sent_in_the_stream() {
    let (tx, events) = channel_stream();
    let keep_alive = KeepAlive::new()
        .interval(Duration::from_secs(5))
        .jitter(0.0);
    let service = ServiceBuilder::new()
        .layer(gzip_layer().keep_alive(keep_alive))
        .service_fn(answer_once(events));
    let request = Request::get("/").header(header::ACCEPT_ENCODING, "gzip");
    let response = service.oneshot(request.body(()).unwrap()).await.unwrap();
    let mut body = Gunzip::new(response.into_body());
    body.expect(":\n\n").await;

    let start = tokio::time::Instant::now();
    body.expect(":\n\n").await;
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    tx.send(Event::new().data("one")).await.unwrap();
    body.expect("data: one\n\n").await;
    body.expect(":\n\n").await;
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    // The compressor was dropped at the keep-alive; a fresh one carries on the stream.
    tx.send(Event::new().data("two")).await.unwrap();
    body.expect("data: two\n\n").await;
    drop(tx);
    body.end().await;
}

/// tower-http's `CompressionLayer` around the layer: whether its predicate skips event
/// streams (the default) or not (`SizeAbove`), it sees `Content-Encoding` and leaves the
/// stream alone, so the client gunzips once and each event still comes alone.
async fn tower_http_compression_outside_compresses_nothing_twice(proto: Proto) {
    for default_predicate in [true, false] {
        let (tx, events) = channel_stream();
        let inner = ServiceBuilder::new()
            .layer(gzip_layer())
            .service_fn(answer_once(events));
        let server = if default_predicate {
            server::serve(CompressionLayer::new().layer(inner)).await
        } else {
            let compression = CompressionLayer::new().compress_when(SizeAbove::new(0));
            server::serve(compression.layer(inner)).await
        };
        let mut client = Client::connect(server.addr(), proto).await;
        let request = client.get("/").header(header::ACCEPT_ENCODING, "gzip");
        let response = client.send(empty(request)).await;
        let codings: Vec<_> = response
            .headers()
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .collect();
        assert_eq!(codings, ["gzip"]);
        let mut body = Gunzip::new(response.into_body());
        body.expect(":\n\n").await;
        for seq in 0..3 {
            tx.send(Event::new().id_u64(seq).data("live"))
                .await
                .unwrap();
            body.expect(&format!("id: {seq}\ndata: live\n\n")).await;
        }
        drop(tx);
        body.end().await;
        server.shutdown().await;
    }
}
