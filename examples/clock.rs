//! A clock in the browser: `cargo run --example clock`, then open http://127.0.0.1:3000
//!
//! Pass another address as the first argument or in `CLOCK_ADDR`. `GET /clock` sends the
//! time every second for 10 s, then ends; the browser reconnects with `Last-Event-ID` and
//! the count goes on where it stopped.
//!
//! Built with `--features compression`, the stream is gzip for clients that accept it, each
//! tick flushed as it is sent: `curl --compressed -N http://127.0.0.1:3000/clock` shows the
//! ticks one a second, `curl -N -H 'accept-encoding: gzip' ...` the compressed bytes.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{stream, Stream};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::{interval, MissedTickBehavior};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_sse::{Event, EventError, Fallible, LastEventId, SseBody, SseLayer};

mod support;

const PAGE: &str = include_str!("clock.html");
const DEFAULT_ADDR: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    let listener = support::listen("CLOCK_ADDR", DEFAULT_ADDR).await?;
    serve(listener, Duration::from_secs(10)).await;
    Ok(())
}

/// Serves the page and the clock stream on `listener` until the task is dropped; each
/// `/clock` response ends after `max_duration`.
pub(crate) async fn serve(listener: TcpListener, max_duration: Duration) {
    let layer = SseLayer::new()
        .max_duration(max_duration)
        .retry(Duration::from_secs(1));
    // Off by default; here on whenever the feature is built in.
    #[cfg(feature = "compression")]
    let layer = layer.compression(tower_sse::Compression::gzip());
    let clock = ServiceBuilder::new().layer(layer).service_fn(ticks);
    let app = service_fn(move |req| route(req, clock.clone()));

    support::serve(listener, app).await;
}

type Page = Full<Bytes>;

async fn route<S, St>(
    req: Request<Incoming>,
    clock: S,
) -> Result<Response<Either<Page, SseBody<St>>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<SseBody<St>>, Error = Infallible>,
{
    let path = req.uri().path();
    if path != "/" && path != "/clock" {
        return Ok(plain(StatusCode::NOT_FOUND, "not found\n"));
    }
    if req.method() != Method::GET {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return Ok(response);
    }
    if path == "/clock" {
        let response = clock.oneshot(req).await?;
        return Ok(response.map(Either::Right));
    }
    let mut response = Response::new(Either::Left(Full::from(PAGE)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(response)
}

fn plain<B>(status: StatusCode, text: &'static str) -> Response<Either<Page, B>> {
    let mut response = Response::new(Either::Left(Full::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// One event a second, numbered on from the id the browser saw last.
async fn ticks(
    req: Request<Incoming>,
) -> Result<Response<impl Stream<Item = Fallible<Result<Event, EventError>>>>, Infallible> {
    // A missing or foreign id starts the count again rather than refusing the reconnect.
    let first = req
        .extensions()
        .get::<LastEventId>()
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|last| last.checked_add(1))
        .unwrap_or(0);

    let mut every_second = interval(Duration::from_secs(1));
    // After a stall, show the time now once instead of a burst of stale ticks.
    every_second.set_missed_tick_behavior(MissedTickBehavior::Skip);

    // `None` once the ids run out: the stream ends rather than wrap around to old ids.
    let events = stream::unfold(
        (every_second, Some(first)),
        |(mut every_second, seq)| async move {
            let seq = seq?;
            every_second.tick().await;
            let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let event = Event::new().id_u64(seq).json_data(&json!({ "time": now }));
            Some((Fallible(event), (every_second, seq.checked_add(1))))
        },
    );
    Ok(Response::new(events))
}
