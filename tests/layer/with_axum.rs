//! The axum example over real sockets: `axum::serve` on 127.0.0.1:0, read by hyper clients
//! over HTTP/1.1 and HTTP/2; the handler-level `SseResponse` on a paused clock; and a
//! graceful shutdown of `axum::serve` with live streams.
#![cfg(all(feature = "axum", feature = "json"))]

use crate::support::blocks;
use crate::support::server;

#[path = "../../examples/axum.rs"]
#[allow(dead_code)] // Its `main` is not used here.
mod example;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use futures_util::stream;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tower_sse::axum::SseResponse;
use tower_sse::{Event, KeepAlive, LastEventId, Shutdown, SseLayer, SseOptions};

use blocks::{within, Blocks};
use server::{empty, Client, Proto};

/// Long enough that the clock never ticks a second time during a test.
const NEVER: Duration = Duration::from_secs(3600);

/// The two mounts of the example clock.
const ROUTES: [&str; 2] = ["/clock", "/handler/clock"];

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// The `id` of a clock event, after checking it carries the time as JSON.
fn clock_id(block: &str) -> u64 {
    let (id, data) = block
        .strip_prefix("id: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .and_then(|rest| rest.split_once("\ndata: "))
        .unwrap_or_else(|| panic!("not a clock event: {block:?}"));
    let data: Value = serde_json::from_str(data).expect("JSON data");
    assert!(data["time"].is_string(), "no time in {data}");
    id.parse().expect("numeric id")
}

async fn example_serves_both_mounts(proto: Proto) {
    let (listener, addr) = listen().await;
    let sse = SseLayer::new().retry(Duration::from_secs(1));
    let server = tokio::spawn(async move { axum::serve(listener, example::app(sse, NEVER)).await });
    let mut client = Client::connect(addr, proto).await;

    let page = client.send(empty(client.get("/"))).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.into_body().collect().await.unwrap().to_bytes();
    let html = std::str::from_utf8(&html).expect("UTF-8 page");
    assert!(
        html.contains(r#"new EventSource("/clock")"#),
        "not the clock page"
    );

    // Both mounts: the same headers, opening frame, resume rule and event shape.
    for path in ROUTES {
        for (last_event_id, first) in [(None, 0), (Some("41"), 42), (Some("x"), 0)] {
            let mut request = client.get(path);
            if let Some(id) = last_event_id {
                request = request.header("last-event-id", id);
            }
            let response = client.send(empty(request)).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream", "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
            assert_eq!(headers["x-accel-buffering"], "no", "{path}");
            assert!(!headers.contains_key(header::CONTENT_LENGTH), "{path}");

            let mut body = Blocks::new(response.into_body());
            assert_eq!(body.next().await, "retry: 1000\n\n", "{path}");
            assert_eq!(
                clock_id(&body.next().await),
                first,
                "{path} {last_event_id:?}"
            );
            // Dropping the body ends this stream; HTTP/1.1 needs a fresh connection then.
            drop(body);
            if proto == Proto::Http1 {
                client = Client::connect(addr, proto).await;
            }
        }
    }
    server.abort();
}

#[tokio::test]
async fn example_serves_both_mounts_http1() {
    example_serves_both_mounts(Proto::Http1).await;
}

#[tokio::test]
async fn example_serves_both_mounts_http2() {
    example_serves_both_mounts(Proto::Http2).await;
}

/// The handler-level response takes the layer's whole configuration: retry, keep-alive and
/// lifetime, on the same body.
#[tokio::test(start_paused = true)]
async fn handler_response_applies_the_layer_configuration() {
    let sse = SseLayer::new()
        .retry(Duration::from_millis(250))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(4)).text("ka"))
        .max_duration(Duration::from_secs(10));
    let app = Router::new()
        .route(
            "/",
            get(
                |axum::extract::State(sse): axum::extract::State<SseLayer>| async move {
                    SseResponse::new(stream::pending::<Event>()).config(&sse)
                },
            ),
        )
        .with_state(sse);

    let request = Request::get("/").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let started = tokio::time::Instant::now();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    // Keep-alives at 4 s and 8 s, then the lifetime ends the body at 10 s.
    assert_eq!(body, "retry: 250\n\n: ka\n\n: ka\n\n");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

/// Without a configuration the handler-level response uses the layer's defaults.
#[tokio::test]
async fn handler_response_defaults_match_the_layer() {
    let app = Router::new().route(
        "/",
        get(|last: Option<LastEventId>| async move {
            let data = last.map_or_else(|| "none".to_owned(), LastEventId::into_string);
            SseResponse::new(stream::iter([Event::new().data(data)]))
        }),
    );
    for (header, data) in [(None, "none"), (Some("é-7"), "é-7")] {
        let mut request = Request::get("/");
        if let Some(value) = header {
            request = request.header("last-event-id", value);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!(":\n\ndata: {data}\n\n"));
    }
}

/// A handler's `SseResponse::options` and a route behind the layer with the same
/// `SseOptions` send the same bytes at the same times.
#[tokio::test(start_paused = true)]
async fn handler_options_match_options_behind_the_layer() {
    let sse = SseLayer::new()
        .retry(Duration::from_millis(250))
        .max_duration(Duration::from_secs(60));
    let options = || {
        SseOptions::new()
            .no_opening_frame()
            .keep_alive(
                KeepAlive::new()
                    .interval(Duration::from_secs(2))
                    .jitter(0.0)
                    .text("ka"),
            )
            .max_duration(Duration::from_secs(5))
    };
    let handler = Router::new()
        .route(
            "/",
            get(
                move |axum::extract::State(sse): axum::extract::State<SseLayer>| async move {
                    SseResponse::new(stream::pending::<Event>())
                        .config(&sse)
                        .options(options())
                },
            ),
        )
        .with_state(sse.clone());
    let service = tower::Layer::layer(
        &sse,
        tower::service_fn(move |_req: Request<Body>| async move {
            Ok::<_, std::convert::Infallible>(options().response(stream::pending::<Event>()))
        }),
    );
    let layered = Router::new().route_service("/", service);

    let mut bodies = Vec::new();
    for app in [handler, layered] {
        let started = tokio::time::Instant::now();
        let response = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        bodies.push(body);
    }
    // No opening frame: the layer's retry rides with the first keep-alive, at 2 s.
    assert_eq!(bodies[0], "retry: 250\n\n: ka\n\n: ka\n\n");
    assert_eq!(bodies[0], bodies[1]);
}

/// `axum::serve(..).with_graceful_shutdown(..)` with live streams on both mounts: the
/// signal triggers the layer's `Shutdown`, every client gets the farewell and a `retry:`
/// within the window, then the end of its body, and the server future completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_every_stream() {
    const CLIENTS: usize = 20;
    const WINDOW_MS: u64 = 2_000;

    let shutdown = Shutdown::new()
        .farewell(Event::new().event("bye").unwrap().data("server restarting"))
        .reconnect_window(Duration::from_millis(WINDOW_MS));
    let sse = SseLayer::new().shutdown(shutdown.clone());
    let (listener, addr) = listen().await;
    let (signal, signalled) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, example::app(sse, NEVER))
            .with_graceful_shutdown(async move {
                // A dropped sender means the test failed elsewhere; drain anyway.
                let _ = signalled.await;
                shutdown.trigger();
            })
            .await
    });

    // Every stream is live (opening frame and first tick read) before the signal.
    let mut streams = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let proto = if i % 2 == 0 {
            Proto::Http1
        } else {
            Proto::Http2
        };
        let mut client = Client::connect(addr, proto).await;
        let response = client.send(empty(client.get(ROUTES[i % 2]))).await;
        let mut body = Blocks::new(response.into_body());
        assert_eq!(body.next().await, ":\n\n");
        assert_eq!(clock_id(&body.next().await), 0);
        streams.push((client, body));
    }

    signal.send(()).expect("server is waiting for the signal");

    let mut readers = JoinSet::new();
    for (i, (client, mut body)) in streams.into_iter().enumerate() {
        readers.spawn(async move {
            assert_eq!(
                body.next().await,
                "event: bye\ndata: server restarting\n\n",
                "client {i}"
            );
            let retry = body.next().await;
            let millis: u64 = retry
                .strip_prefix("retry: ")
                .and_then(|rest| rest.strip_suffix("\n\n"))
                .and_then(|ms| ms.parse().ok())
                .unwrap_or_else(|| panic!("client {i}: not a retry hint: {retry:?}"));
            assert!(millis <= WINDOW_MS, "client {i}: retry {millis} ms");
            body.end().await;
            drop(client);
        });
    }
    let mut drained = 0;
    while let Some(result) = within("clients to drain", readers.join_next()).await {
        result.expect("client task");
        drained += 1;
    }
    assert_eq!(drained, CLIENTS);

    within("axum::serve to return", server)
        .await
        .expect("server task")
        .expect("axum::serve");
}

/// Status, headers and body bytes of one response, read to its end.
async fn answered<B>(response: http::Response<B>) -> (StatusCode, http::HeaderMap, bytes::Bytes)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (mut parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .expect("the body ends cleanly")
        .to_bytes();
    if parts.status == StatusCode::NO_CONTENT {
        // axum's handler path (not ours) adds `content-length: 0` to an empty body, and
        // hyper never sends one with a 204: not a difference a client can see.
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    (parts.status, parts.headers, bytes)
}

/// The same `EventLog` routes behind `SseLayer` as a service, and as axum handlers with
/// `ReadLastEventIdLayer` and `SseResponse::from_response`, answer every resume alike:
/// same status, same headers, same bytes.
#[tokio::test(start_paused = true)]
async fn handlers_answer_every_resume_as_the_layered_route() {
    use std::convert::Infallible;

    use axum::extract::State;
    use tower::{service_fn, Layer};
    use tower_sse::axum::ReadLastEventIdLayer;
    use tower_sse::replay::{EventLog, OnUnknownId};

    const MAX_ID_LEN: usize = 32;
    let too_long = "9".repeat(MAX_ID_LEN + 1);
    for policy in [
        OnUnknownId::ResetFromOldest,
        OnUnknownId::ResetFromLive,
        OnUnknownId::NoContent,
    ] {
        let log = EventLog::builder()
            .max_events(3)
            .on_unknown_id(policy)
            .build();
        let ids: Vec<String> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|text| log.publish(Event::new().data(text)).to_string())
            .collect();
        // Each stream ends after a second of the paused clock, so its body can be compared.
        let sse = SseLayer::new()
            .retry(Duration::from_secs(2))
            .max_duration(Duration::from_secs(1))
            .last_event_id_query("lastEventId")
            .last_event_id_max_len(MAX_ID_LEN);

        // Both mounted on an axum `Router`, which sets what it sets (such as a
        // `content-length: 0` for an empty body) on both alike.
        let layered = Router::new().route_service(
            "/",
            sse.clone().layer(service_fn({
                let log = log.clone();
                move |req: Request<Body>| {
                    let response = log.response(req.extensions().get::<LastEventId>());
                    async move { Ok::<_, Infallible>(response) }
                }
            })),
        );
        let handlers =
            Router::new()
                .route(
                    "/",
                    get(
                        |State((log, sse)): State<(EventLog, SseLayer)>,
                         last: Option<LastEventId>| async move {
                            SseResponse::from_response(log.response(last.as_ref()))
                                .config(&sse)
                                .record_last_event_id(last.as_ref())
                        },
                    ),
                )
                .layer(ReadLastEventIdLayer::new(&sse))
                .with_state((log.clone(), sse.clone()));

        let requests: Vec<(&str, Request<()>)> = vec![
            ("no id", Request::get("/").body(()).unwrap()),
            (
                "a retained id",
                Request::get("/")
                    .header("last-event-id", &ids[2])
                    .body(())
                    .unwrap(),
            ),
            (
                "an evicted id",
                Request::get("/")
                    .header("last-event-id", &ids[0])
                    .body(())
                    .unwrap(),
            ),
            (
                "an unknown id",
                Request::get("/")
                    .header("last-event-id", "restarted")
                    .body(())
                    .unwrap(),
            ),
            (
                "the query fallback",
                Request::get(format!("/?lastEventId={}", ids[2]))
                    .body(())
                    .unwrap(),
            ),
            (
                "a finished stream's reconnect",
                Request::get("/")
                    .header("last-event-id", tower_sse::EventId::END_OF_STREAM.as_str())
                    .body(())
                    .unwrap(),
            ),
            (
                "an id over the length cap",
                Request::get("/")
                    .header("last-event-id", &too_long)
                    .body(())
                    .unwrap(),
            ),
        ];
        for (case, request) in requests {
            let (parts, ()) = request.into_parts();
            let as_service = http::Request::from_parts(parts.clone(), Body::empty());
            let as_handler = http::Request::from_parts(parts, Body::empty());
            let from_layer = answered(layered.clone().oneshot(as_service).await.unwrap()).await;
            let from_handler = answered(handlers.clone().oneshot(as_handler).await.unwrap()).await;
            assert_eq!(from_handler, from_layer, "{policy:?}, {case}");
            if case == "a finished stream's reconnect" {
                assert_eq!(from_layer.0, StatusCode::NO_CONTENT, "ended: {case}");
                assert!(from_layer.2.is_empty());
            } else if policy == OnUnknownId::NoContent && case == "an unknown id" {
                assert_eq!(from_layer.0, StatusCode::NO_CONTENT, "refused: {case}");
                assert!(from_layer.2.is_empty());
            } else {
                assert_eq!(from_layer.0, StatusCode::OK, "{policy:?}, {case}");
            }
        }
    }
}
