//! The tower-sse server: `SseLayer` in front of plain streams, behind an axum `Router`.

use std::convert::Infallible;
use std::future::ready;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, StreamExt};
use http::{Request, Response, Uri};
use tower::ServiceBuilder;
use tower_sse::{replay::EventLog, Event, KeepAlive, LastEventId, SseLayer};

use crate::{param, Payload, Tick, IDLE_KEEP_ALIVE};

pub(super) fn router() -> Router {
    let log = EventLog::new();
    let burst = ServiceBuilder::new().layer(SseLayer::new()).service_fn(
        |req: Request<axum::body::Body>| {
            let events = stream::iter(0..param(req.uri(), "n")).map(|seq| {
                Event::new()
                    .id_u64(seq)
                    .json_data(&Payload::new(seq))
                    .expect("json")
            });
            ready(Ok::<_, Infallible>(Response::new(events)))
        },
    );
    let idle = ServiceBuilder::new()
        .layer(SseLayer::new().keep_alive(KeepAlive::new().interval(IDLE_KEEP_ALIVE)))
        .service_fn(|_: Request<axum::body::Body>| {
            ready(Ok::<_, Infallible>(Response::new(
                stream::pending::<Event>(),
            )))
        });
    let fanout = ServiceBuilder::new().layer(SseLayer::new()).service_fn({
        let log = log.clone();
        move |req: Request<axum::body::Body>| {
            let events = log.subscribe(req.extensions().get::<LastEventId>());
            ready(Ok::<_, Infallible>(Response::new(events)))
        }
    });
    let start = move |uri: Uri| {
        let log = log.clone();
        let (events, rate) = (param(&uri, "events"), param(&uri, "rate"));
        tokio::spawn(run_source(events, rate, move |tick| match tick {
            Some(tick) => {
                log.publish_json(&tick).expect("json");
            }
            None => {
                log.publish(Event::new().event("end").expect("event").data(""));
            }
        }));
        ready("started")
    };
    Router::new()
        .route("/floor", get(super::floor))
        .route_service("/burst", burst)
        .route_service("/idle", idle)
        .route_service("/fanout", fanout)
        .route("/start", get(start))
}

/// Publishes `events` ticks at `rate` per second through `publish`, then the end event.
pub(super) async fn run_source(events: u64, rate: u64, mut publish: impl FnMut(Option<Tick>)) {
    let start = tokio::time::Instant::now();
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    let mut seq = 0;
    // Bounded: the schedule reaches `events` after events / rate seconds.
    while seq < events {
        interval.tick().await;
        let due = (start.elapsed().as_micros() as u64 * rate / 1_000_000).min(events);
        while seq < due {
            publish(Some(Tick {
                seq,
                ts: crate::now_micros(),
            }));
            seq += 1;
        }
    }
    publish(None);
}
