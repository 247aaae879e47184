//! Stream metrics in Prometheus's format: `cargo run --example observability --features metrics`,
//! then `curl -N http://127.0.0.1:3000/clock` and `curl http://127.0.0.1:3000/metrics`.
//!
//! Pass another address as the first argument or in `OBSERVABILITY_ADDR`. A clock publishes
//! the time every second into an `EventLog`; `GET /clock` streams it, resuming after the
//! `Last-Event-ID` a reconnecting client sends, and ends a stream whose log has been quiet
//! for 30 s. `GET /metrics` renders the layer's stream metrics, labelled `sse_route="clock"`,
//! and the log's replay counters, labelled `sse_log="clock"`, as Prometheus scrapes them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::{interval, MissedTickBehavior};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_sse::metrics::{self, ReplayMetrics};
use tower_sse::replay::EventLog;
use tower_sse::{LastEventId, SseBody, SseLayer};

mod support;

const DEFAULT_ADDR: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    // Before serving: the layer looks its metrics up in the recorder on its first stream.
    let prometheus = install_recorder()?;
    // The exporter drains its histograms when it renders, and in its upkeep in between.
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        let mut every = interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });

    let log = EventLog::new();
    tokio::spawn(publish_time(log.clone()));

    let listener = support::listen("OBSERVABILITY_ADDR", DEFAULT_ADDR).await?;
    serve(listener, log, prometheus, Duration::from_secs(30)).await;
    Ok(())
}

/// Installs the Prometheus recorder as the process's recorder, with histogram buckets fit
/// for the two stream histograms, and describes the metrics.
pub(crate) fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metrics::TIME_TO_FIRST_EVENT.into()),
            metrics::TIME_TO_FIRST_EVENT_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(metrics::STREAM_DURATION.into()),
            metrics::STREAM_DURATION_BUCKETS,
        )?
        .install_recorder()?;
    metrics::describe();
    Ok(prometheus)
}

/// Publishes the time every second.
async fn publish_time(log: EventLog) {
    let mut every_second = interval(Duration::from_secs(1));
    every_second.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        every_second.tick().await;
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        // The log gives the event its id.
        if let Err(error) = log.publish_json(&json!({ "time": now })) {
            tracing::error!(%error, "tick not published");
        }
    }
}

/// What `/metrics` renders: the recorder's metrics, after the log's counters are copied in.
struct Scrape {
    prometheus: PrometheusHandle,
    log: EventLog,
    replay: ReplayMetrics,
}

impl Scrape {
    fn render(&self) -> String {
        self.replay.record(&self.log.stats());
        self.prometheus.render()
    }
}

/// Serves `/clock` from `log` and `/metrics` from `prometheus` on `listener` until the task
/// is dropped; a `/clock` stream ends after `idle_timeout` without an event.
pub(crate) async fn serve(
    listener: TcpListener,
    log: EventLog,
    prometheus: PrometheusHandle,
    idle_timeout: Duration,
) {
    let scrape = Arc::new(Scrape {
        prometheus,
        log: log.clone(),
        replay: ReplayMetrics::new("clock"),
    });
    let clock = ServiceBuilder::new()
        .layer(
            SseLayer::new()
                // A fixed name of our choosing, never the request's path: labels stay few.
                .metrics_route("clock")
                .idle_timeout(idle_timeout)
                .retry(Duration::from_secs(1)),
        )
        .service_fn(move |req: Request<Incoming>| {
            let response = log.response(req.extensions().get::<LastEventId>());
            async move { Ok::<_, Infallible>(response) }
        });
    let app = service_fn(move |req| route(req, clock.clone(), Arc::clone(&scrape)));

    support::serve(listener, app).await;
}

type Text = Full<Bytes>;

async fn route<S, St>(
    req: Request<Incoming>,
    clock: S,
    scrape: Arc<Scrape>,
) -> Result<Response<Either<Text, SseBody<St>>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<SseBody<St>>, Error = Infallible>,
{
    let path = req.uri().path();
    if path != "/clock" && path != "/metrics" {
        return Ok(support::text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".into(),
        ));
    }
    if req.method() != Method::GET {
        let mut response = support::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return Ok(response);
    }
    if path == "/clock" {
        let response = clock.oneshot(req).await?;
        return Ok(response.map(Either::Right));
    }
    Ok(support::text(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        scrape.render().into(),
    ))
}
