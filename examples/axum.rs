//! The clock on axum: `cargo run --example axum --features axum`, then open http://127.0.0.1:3004
//!
//! Pass another address as the first argument or in `CLOCK_ADDR`. The same clock is
//! mounted two ways, with one `SseLayer` configuration:
//!
//! - `GET /clock`: the layer around a `service_fn`, mounted with `Router::route_service`;
//! - `GET /handler/clock`: an ordinary handler that extracts `Option<LastEventId>` and
//!   returns `tower_sse::axum::SseResponse`.
//!
//! Each stream ends after 10 s and the browser resumes after the last id it saw. Ctrl-C
//! drains: every open stream gets a farewell event and a `retry:` hint, then the server
//! stops.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use futures_util::{stream, Stream};
use http::{Request, Response};
use serde_json::json;
use tokio::time::{interval, MissedTickBehavior};
use tower::{service_fn, Layer};
use tower_sse::axum::SseResponse;
use tower_sse::{Event, EventError, Fallible, LastEventId, Shutdown, SseLayer};

mod support;

const PAGE: &str = include_str!("clock.html");
const DEFAULT_ADDR: &str = "127.0.0.1:3004";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    let listener = support::listen("CLOCK_ADDR", DEFAULT_ADDR).await?;

    let shutdown = Shutdown::new()
        .farewell(Event::new().event("bye")?.data("server restarting"))
        .reconnect_window(Duration::from_secs(5));
    let sse = SseLayer::new()
        .max_duration(Duration::from_secs(10))
        .retry(Duration::from_secs(1))
        .shutdown(shutdown.clone());

    axum::serve(listener, app(sse, Duration::from_secs(1)))
        .with_graceful_shutdown(async move {
            // An error means no signal handler could be installed: then never drain.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!("draining");
            // SSE streams never end by themselves: without this the drain waits forever.
            shutdown.trigger();
        })
        .await?;
    Ok(())
}

/// The page and the clock, mounted both ways, with `sse`'s configuration and one tick per
/// `period`.
pub(crate) fn app(sse: SseLayer, period: Duration) -> Router {
    let service = sse.layer(service_fn(move |req: Request<Body>| async move {
        let last = req.extensions().get::<LastEventId>();
        Ok::<_, Infallible>(Response::new(clock(first_id(last), period)))
    }));
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route_service("/clock", service)
        .route("/handler/clock", get(handler))
        .with_state(Clock { sse, period })
}

/// A clock event; `json_data` reports serializer errors, which the layer's policy handles.
type Tick = Fallible<Result<Event, EventError>>;

#[derive(Debug, Clone)]
struct Clock {
    sse: SseLayer,
    period: Duration,
}

async fn handler(
    State(clock_config): State<Clock>,
    last: Option<LastEventId>,
) -> SseResponse<impl Stream<Item = Tick>> {
    let events = clock(first_id(last.as_ref()), clock_config.period);
    SseResponse::new(events)
        .config(&clock_config.sse)
        .record_last_event_id(last.as_ref())
}

/// The id after the one the browser saw last; a missing or foreign id starts again at 0.
fn first_id(last: Option<&LastEventId>) -> Option<u64> {
    match last.map(|id| id.parse::<u64>()) {
        None | Some(Err(_)) => Some(0),
        // `None` after `u64::MAX`: the stream ends rather than wrap around to old ids.
        Some(Ok(last)) => last.checked_add(1),
    }
}

/// One event per `period`, the first at once, numbered from `first`.
fn clock(first: Option<u64>, period: Duration) -> impl Stream<Item = Tick> {
    let mut ticks = interval(period);
    // After a stall, show the time now once instead of a burst of stale ticks.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    stream::unfold((ticks, first), |(mut ticks, seq)| async move {
        let seq = seq?;
        ticks.tick().await;
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let event = Event::new().id_u64(seq).json_data(&json!({ "time": now }));
        Some((Fallible(event), (ticks, seq.checked_add(1))))
    })
}
