//! One `SseLayer` in front of a router with several routes, each configured for its own
//! response with `SseOptions`, over a real hyper server on 127.0.0.1:0, read by hyper
//! clients over HTTP/1.1 and HTTP/2.
//!
//! The routes, as a new user would write them:
//!
//! - `/burst`: a fast feed of ready events; no opening frame, no keep-alive, no retry.
//! - `/idle`: a quiet notification feed; frequent keep-alives with their own text, ended by
//!   an idle timeout the layer does not have.
//! - `/limited`: a short lifetime and its own `retry:` hint.
//! - `/plain`: no options, so the layer's settings.
//! - anything else: `404 Not Found` through the layer, with `MaybeStream::status`.

use crate::support::server;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower::ServiceBuilder;
use tower_sse::{Event, KeepAlive, MaybeStream, SseLayer, SseOptions};

use server::{empty, Client, Proto, Server};

/// Upper bound on any single wait, so a broken build fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

/// Events in the burst feed.
const BURST: u64 = 500;

type Events = MaybeStream<BoxStream<'static, Event>>;

/// The inner router: picks a stream and that route's options by path.
async fn route(req: Request<Incoming>) -> Result<Response<Events>, Infallible> {
    let response = match req.uri().path() {
        "/burst" => {
            let events = stream::iter(0..BURST).map(|seq| Event::new().id_u64(seq).data("burst"));
            SseOptions::new()
                .no_opening_frame()
                .no_keep_alive()
                .no_retry()
                .response(MaybeStream::new(events.boxed()))
        }
        "/idle" => SseOptions::new()
            .keep_alive(
                KeepAlive::new()
                    .interval(Duration::from_millis(40))
                    .text("idle"),
            )
            .idle_timeout(Duration::from_millis(300))
            .response(MaybeStream::new(stream::pending().boxed())),
        "/limited" => SseOptions::new()
            .retry(Duration::from_millis(250))
            .no_keep_alive()
            .max_duration(Duration::from_millis(100))
            .response(MaybeStream::new(stream::pending().boxed())),
        "/plain" => MaybeStream::response(stream::iter([Event::new().data("plain")]).boxed()),
        _ => MaybeStream::status(StatusCode::NOT_FOUND),
    };
    Ok(response)
}

/// The layer every route shares: a retry hint, and a keep-alive and no time limits that
/// would never end a test, so only a route's own options can.
fn layer() -> SseLayer {
    SseLayer::new()
        .retry(Duration::from_millis(1000))
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(3600))
                .text("layer"),
        )
}

async fn start() -> Server {
    let service = ServiceBuilder::new().layer(layer()).service_fn(route);
    server::serve(service).await
}

/// The response head and every byte of its body, which must end within [`WAIT`].
async fn fetch(addr: std::net::SocketAddr, proto: Proto, path: &str) -> (Response<()>, Bytes) {
    let mut client = Client::connect(addr, proto).await;
    let request = empty(client.get(path));
    let response = tokio::time::timeout(WAIT, client.send(request))
        .await
        .unwrap_or_else(|_| panic!("no response head for {path}"));
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(WAIT, body.collect())
        .await
        .unwrap_or_else(|_| panic!("{path} did not end"))
        .expect("body without error")
        .to_bytes();
    (Response::from_parts(parts, ()), body)
}

fn blocks(body: &Bytes) -> Vec<&str> {
    let text = std::str::from_utf8(body).expect("UTF-8 body");
    assert!(text.ends_with("\n\n"), "incomplete last block: {text:?}");
    text.split_inclusive("\n\n").collect()
}

async fn one_layer_many_routes(proto: Proto) {
    let server = start().await;
    let addr = server.addr();
    // All routes at once, each on its own connection.
    let (burst, idle, limited, plain, missing) = tokio::join!(
        fetch(addr, proto, "/burst"),
        fetch(addr, proto, "/idle"),
        fetch(addr, proto, "/limited"),
        fetch(addr, proto, "/plain"),
        fetch(addr, proto, "/nowhere"),
    );

    // The burst: every event, the first one first (no opening frame, no retry), nothing
    // else, and the end.
    let (head, body) = burst;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[header::CONTENT_TYPE], "text/event-stream");
    let burst = blocks(&body);
    assert_eq!(burst.len(), BURST as usize);
    for (seq, block) in burst.iter().enumerate() {
        assert_eq!(*block, format!("id: {seq}\ndata: burst\n\n"));
    }

    // The idle feed: the layer's retry (not overridden), then only this route's keep-alives
    // (the layer's would come after an hour), until this route's idle timeout ended it.
    let (head, body) = idle;
    assert_eq!(head.status(), StatusCode::OK);
    let idle = blocks(&body);
    assert_eq!(idle[0], "retry: 1000\n\n");
    assert!(idle.len() >= 2, "no keep-alive: {idle:?}");
    assert!(
        idle[1..].iter().all(|block| *block == ": idle\n\n"),
        "{idle:?}"
    );

    // The limited feed: its own retry as the opening frame, no keep-alive, ended by its
    // lifetime (the source never ends).
    let (head, body) = limited;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(body, "retry: 250\n\n");

    // No options: the layer's settings.
    let (head, body) = plain;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(body, "retry: 1000\n\ndata: plain\n\n");

    // A plain 404 through the layer: no SSE headers, no body.
    let (head, body) = missing;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    assert!(head.headers().get(header::CONTENT_TYPE).is_none());
    assert!(body.is_empty(), "{body:?}");

    server.shutdown().await;
}

#[tokio::test]
async fn one_layer_many_routes_http1() {
    one_layer_many_routes(Proto::Http1).await;
}

#[tokio::test]
async fn one_layer_many_routes_http2() {
    one_layer_many_routes(Proto::Http2).await;
}

/// The same route answered several times over one HTTP/2 connection at once: the options
/// belong to each response, not to the connection or the layer.
#[tokio::test]
async fn options_are_per_response_on_one_http2_connection() {
    let server = start().await;
    let mut client = Client::connect(server.addr(), Proto::Http2).await;
    let mut bodies = Vec::new();
    for path in ["/limited", "/plain", "/limited", "/plain"] {
        let response = tokio::time::timeout(WAIT, client.send(empty(client.get(path))))
            .await
            .expect("response head");
        bodies.push((path, response.into_body()));
    }
    for (path, body) in bodies {
        let body = tokio::time::timeout(WAIT, body.collect())
            .await
            .expect("body ends")
            .expect("no error")
            .to_bytes();
        let expected = match path {
            "/limited" => "retry: 250\n\n",
            _ => "retry: 1000\n\ndata: plain\n\n",
        };
        assert_eq!(body, expected, "{path}");
    }
    server.shutdown().await;
}
