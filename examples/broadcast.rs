//! One log, many browsers: `cargo run --example broadcast`, then open http://127.0.0.1:3002
//! in a few tabs.
//!
//! Pass another address as the first argument or in `BROADCAST_ADDR`. `POST /publish`
//! publishes its body as an event (`curl -d hello 127.0.0.1:3002/publish`), a heartbeat
//! stream feeds the log every 2 s (`EventLog::feed`), and `GET /events` streams the log with
//! keep-alives. The page's
//! "drop connection" button closes its `EventSource` and opens a new one; a new
//! `EventSource` sends no `Last-Event-ID`, so the page passes the last id it saw in the
//! `lastEventId` query parameter, and nothing is lost or repeated.
//!
//! Ids start from the clock (`EventLog`'s ids): restart the example and reconnect with an
//! id from before (`curl -N -H 'Last-Event-ID: <old id>' 127.0.0.1:3002/events`), and the
//! answer is a `reset` event, then every event the new log holds, never a resume from the
//! wrong place.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::time::{interval, MissedTickBehavior};
use tokio_stream::wrappers::IntervalStream;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_sse::{
    replay::{EventLog, Subscription},
    Event, KeepAlive, LastEventId, SseBody, SseLayer,
};

mod support;

const PAGE: &str = include_str!("broadcast.html");
const DEFAULT_ADDR: &str = "127.0.0.1:3002";
/// Larger posts are refused rather than buffered.
const MAX_POST_BYTES: usize = 64 * 1024;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    let listener = support::listen("BROADCAST_ADDR", DEFAULT_ADDR).await?;

    let log = EventLog::builder()
        .max_events(1_000)
        .max_age(Duration::from_secs(600))
        .build();
    // Runs until its source ends (never) or the last handle of the log is dropped.
    tokio::spawn(log.feed(heartbeat(Event::new().event("heartbeat")?)));
    serve(listener, log).await;
    Ok(())
}

/// The time every 2 s as a `template` event, so an idle page still shows the stream is
/// alive.
fn heartbeat(template: Event) -> impl Stream<Item = Event> {
    let mut every = interval(Duration::from_secs(2));
    every.set_missed_tick_behavior(MissedTickBehavior::Skip);
    IntervalStream::new(every).map(move |_| {
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        template.clone().data(now)
    })
}

/// Serves the page, the stream and the publish endpoint until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, log: EventLog) {
    let events = ServiceBuilder::new()
        .layer(
            SseLayer::new()
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                .retry(Duration::from_secs(1))
                .last_event_id_query("lastEventId"),
        )
        .service_fn({
            let log = log.clone();
            move |req: Request<Incoming>| {
                let response = log.response(req.extensions().get::<LastEventId>());
                async move { Ok::<_, Infallible>(response) }
            }
        });
    let app = service_fn(move |req| route(req, events.clone(), log.clone()));

    support::serve(listener, app).await;
}

type Page = Full<Bytes>;

async fn route<S>(
    req: Request<Incoming>,
    events: S,
    log: EventLog,
) -> Result<Response<Either<Page, SseBody<Subscription>>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<SseBody<Subscription>>, Error = Infallible>,
{
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => {
            let mut response = Response::new(Either::Left(Full::from(PAGE)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Ok(response)
        }
        (&Method::GET, "/events") => Ok(events.oneshot(req).await?.map(Either::Right)),
        (&Method::POST, "/publish") => Ok(publish(req, &log).await),
        (_, "/" | "/events") => Ok(method_not_allowed("GET")),
        (_, "/publish") => Ok(method_not_allowed("POST")),
        _ => Ok(plain(StatusCode::NOT_FOUND, "not found\n".into())),
    }
}

/// `405`, with the `Allow` header RFC 9110 requires on it.
fn method_not_allowed<B>(allow: &'static str) -> Response<Either<Page, B>> {
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed\n".into(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Publishes the request body, as text, as one event.
async fn publish<B>(req: Request<Incoming>, log: &EventLog) -> Response<Either<Page, B>> {
    let body = match Limited::new(req.into_body(), MAX_POST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            let status = if error.is::<LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return plain(status, format!("could not read the body: {error}\n"));
        }
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let id = log.publish(Event::new().data(text));
    plain(StatusCode::OK, format!("published as id {id}\n"))
}

fn plain<B>(status: StatusCode, text: String) -> Response<Either<Page, B>> {
    let mut response = Response::new(Either::Left(Full::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
