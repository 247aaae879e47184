//! gRPC and SSE on one port: `cargo run -p example-tonic`, then
//! `curl -N http://127.0.0.1:3003/clock` while gRPC clients call the same port.
//!
//! Pass another address as the first argument or in `CLOCK_ADDR`. For stacks that already run
//! tonic: its services become an axum `Router` (`tonic::service::Routes`), the SSE clock is one
//! more route on it, and `axum::serve` speaks HTTP/1.1 (browsers' `EventSource`) and HTTP/2
//! (gRPC) on the same listener. The gRPC service here is the standard health service
//! (`grpc.health.v1.Health`), which needs no protobuf code generation; it reports the clock
//! as `SERVING`.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::Router;
use futures_util::{stream, Stream};
use http::{Request, Response};
use tokio::time::{interval, MissedTickBehavior};
use tonic_health::ServingStatus;
use tower::{service_fn, Layer};
use tower_sse::{Event, LastEventId, SseLayer};

#[path = "../../support/mod.rs"]
mod support;

const DEFAULT_ADDR: &str = "127.0.0.1:3003";

/// The name the health service reports the clock under.
pub(crate) const CLOCK_SERVICE: &str = "tower_sse.Clock";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    let listener = support::listen("CLOCK_ADDR", DEFAULT_ADDR).await?;
    axum::serve(listener, app(Duration::from_secs(1)).await).await?;
    Ok(())
}

/// gRPC health and the SSE clock (one tick per `period`) in one router.
pub(crate) async fn app(period: Duration) -> Router {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(CLOCK_SERVICE, ServingStatus::Serving)
        .await;

    let clock = SseLayer::new()
        .retry(Duration::from_secs(1))
        .layer(service_fn(move |req: Request<Body>| async move {
            let first = req
                .extensions()
                .get::<LastEventId>()
                .and_then(|id| id.parse::<u64>().ok())
                .map_or(Some(0), |last| last.checked_add(1));
            Ok::<_, Infallible>(Response::new(ticks(first, period)))
        }));

    // gRPC requests are HTTP/2 POSTs to `/package.Service/Method`; no path of theirs
    // collides with `/clock`, and tonic's fallback answers unknown ones with `UNIMPLEMENTED`.
    tonic::service::Routes::new(health_service)
        .into_axum_router()
        .route_service("/clock", clock)
}

/// One event per `period`, the first at once, numbered from `first`; `None` ends it.
fn ticks(first: Option<u64>, period: Duration) -> impl Stream<Item = Event> {
    let mut every = interval(period);
    every.set_missed_tick_behavior(MissedTickBehavior::Skip);
    stream::unfold((every, first), |(mut every, seq)| async move {
        let seq = seq?;
        every.tick().await;
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        Some((
            Event::new().id_u64(seq).data(now),
            (every, seq.checked_add(1)),
        ))
    })
}
