//! The replay log over real HTTP: a hyper server serving `GET /events` from an
//! [`EventLog`] through [`SseLayer`], and clients that drop their connection and reconnect
//! with `Last-Event-ID`, as browsers do.

use crate::support::event_source;
use crate::support::server;

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use tokio::task::JoinSet;
use tower::ServiceBuilder;
use tower_sse::{
    replay::{EventLog, OnUnknownId},
    Event, LastEventId, SseLayer,
};

use event_source::{read_reconnecting, EventSource};
use server::{Proto, Server};

/// Serves every request with `log.response(..)` behind `layer`.
async fn serve(log: EventLog, layer: SseLayer) -> Server {
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |req: Request<Incoming>| {
            let events = log.response(req.extensions().get::<LastEventId>());
            async move { Ok::<_, Infallible>(events) }
        });
    server::serve(service).await
}

/// Runs a test body, failing it if it takes more than 10 s.
async fn within(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("the test finished in time");
}

const EVENTS: u64 = 5_000;
const CLIENTS: u64 = 20;

/// Reads every event through reconnects (after about one event in 300); returns how many
/// times it reconnected.
async fn reconnecting_client(
    node: (std::net::SocketAddr, Proto),
    client: EventSource,
    seed: u64,
) -> u64 {
    let (events, reconnects) =
        read_reconnecting(&[node], client, EVENTS as usize, Some(300), seed).await;
    let mut last = 0;
    for (n, event) in (1..=EVENTS).zip(&events) {
        assert_eq!(
            event.data,
            format!("event {n}"),
            "client {seed}: lost or repeated events"
        );
        let id: u64 = event.last_event_id.parse().expect("a numeric id");
        assert!(id > last, "client {seed}: ids go back");
        last = id;
    }
    reconnects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_clients_get_every_event_exactly_once() {
    let log = EventLog::builder()
        .max_events(2 * EVENTS as usize)
        .max_bytes(usize::MAX)
        .build();
    let server = serve(log.clone(), SseLayer::new()).await;
    let addr = server.addr();
    let started = std::time::Instant::now();

    let run = async {
        let mut clients = JoinSet::new();
        for seed in 0..CLIENTS {
            // The response head comes after the handler subscribed: from here on, this
            // first, live-only connection sees every event.
            let proto = Proto::alternating(seed);
            let client = EventSource::connect(addr, proto, None).await;
            assert_eq!(client.headers()["content-type"], "text/event-stream");
            clients.spawn(reconnecting_client((addr, proto), client, seed));
        }
        for n in 1..=EVENTS {
            log.publish(Event::new().data(format!("event {n}")));
            // Let the clients read while events come, not only replay afterwards.
            if n % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut reconnects = 0;
        while let Some(result) = clients.join_next().await {
            reconnects += result.unwrap();
        }
        reconnects
    };
    let reconnects = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the clients finished in time");

    let stats = log.stats();
    eprintln!(
        "replay over HTTP: {EVENTS} events, {CLIENTS} clients, {reconnects} reconnects, \
         {} replayed, elapsed {:.2?}",
        stats.replayed,
        started.elapsed()
    );
    assert!(reconnects >= CLIENTS);
    assert_eq!(stats.published, EVENTS);
    assert_eq!(stats.gap_events, 0);
    assert_eq!(stats.lag_disconnects, 0);
}

#[tokio::test]
async fn an_evicted_id_gets_the_gap_event_then_the_oldest() {
    within(async {
        let log = EventLog::builder().max_events(3).build();
        let ids: Vec<String> = (1..=5)
            .map(|n| {
                log.publish(Event::new().data(format!("event {n}")))
                    .to_string()
            })
            .collect();
        let server = serve(log.clone(), SseLayer::new()).await;
        let mut client =
            EventSource::connect(server.addr(), Proto::Http1, Some(ids[0].as_str())).await;
        let gap = client.next_event().await;
        assert_eq!(gap.last_event_id, ids[1]);
        assert_eq!(gap.event_type, "reset");
        assert_eq!(gap.data, r#"{"reason":"cursor_too_old","resume_from":3}"#);
        for id in &ids[2..] {
            let event = client.next_event().await;
            assert_eq!(&event.last_event_id, id);
        }
    })
    .await;
}

#[tokio::test]
async fn a_refused_id_is_answered_with_no_content() {
    within(async {
        let log = EventLog::builder()
            .on_unknown_id(OnUnknownId::NoContent)
            .build();
        log.publish(Event::new().data("a"));
        let server = serve(log.clone(), SseLayer::new()).await;

        let addr = server.addr();
        let mut refused =
            EventSource::open(addr, Proto::Http1, "/events", Some("from-elsewhere")).await;
        assert_eq!(refused.status(), StatusCode::NO_CONTENT);
        assert!(!refused.headers().contains_key("content-type"));
        assert!(refused.try_next_event().await.is_none());

        let mut known = EventSource::connect(addr, Proto::Http1, Some("0")).await;
        assert_eq!(known.next_event().await.data, "a");
        assert_eq!(log.stats().rejected, 1);
    })
    .await;
}

#[tokio::test]
async fn the_query_parameter_resumes_a_new_event_source() {
    within(async {
        let log = EventLog::new();
        let ids: Vec<String> = (1..=3)
            .map(|n| {
                log.publish(Event::new().data(format!("event {n}")))
                    .to_string()
            })
            .collect();
        let layer = SseLayer::new().last_event_id_query("lastEventId");
        let server = serve(log.clone(), layer).await;
        let (addr, path) = (server.addr(), format!("/events?lastEventId={}", ids[0]));
        let mut client = EventSource::open(addr, Proto::Http1, &path, None).await;
        assert_eq!(client.next_event().await.last_event_id, ids[1]);
        assert_eq!(client.next_event().await.last_event_id, ids[2]);
        // The header, which EventSource sends on its own reconnects, wins over the query.
        let mut client = EventSource::open(addr, Proto::Http2, &path, Some(ids[1].as_str())).await;
        assert_eq!(client.next_event().await.last_event_id, ids[2]);
    })
    .await;
}

/// A server restart, in process: a client reads events and keeps its last id; the server
/// and its log go away; a new server with a new log publishes; the client reconnects with
/// the id it kept. It must hear of the gap and then get every new event, in order: an id
/// from the old log must not be taken for one of the new log's (which would skip the new
/// events up to it).
async fn a_restart_is_not_taken_for_a_resume(proto: Proto) {
    within(async {
        let old_log = EventLog::new();
        let old_server = serve(old_log.clone(), SseLayer::new()).await;
        let mut client = EventSource::connect(old_server.addr(), proto, None).await;
        for text in ["old1", "old2", "old3"] {
            old_log.publish(Event::new().data(text));
        }
        let mut kept = String::new();
        for text in ["old1", "old2", "old3"] {
            let event = client.next_event().await;
            assert_eq!(event.data, text);
            kept = event.last_event_id;
        }
        client.close();
        old_server.shutdown().await;
        drop(old_log);

        let new_log = EventLog::new();
        let new_server = serve(new_log.clone(), SseLayer::new()).await;
        let new_ids: Vec<String> = ["new1", "new2", "new3", "new4", "new5"]
            .into_iter()
            .map(|text| new_log.publish(Event::new().data(text)).to_string())
            .collect();
        let mut client = EventSource::connect(new_server.addr(), proto, Some(kept.as_str())).await;
        let gap = client.next_event().await;
        assert_eq!(gap.event_type, "reset");
        assert_eq!(gap.data, r#"{"reason":"unknown_id","resume_from":1}"#);
        for (n, id) in (1..=5).zip(&new_ids) {
            let event = client.next_event().await;
            assert_eq!(event.data, format!("new{n}"));
            assert_eq!(&event.last_event_id, id);
        }
        let stats = new_log.stats();
        assert_eq!((stats.gap_events, stats.replayed), (1, 5));
    })
    .await;
}

server::over_both_protocols!(a_restart_is_not_taken_for_a_resume);
