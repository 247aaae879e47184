//! Chat rooms made on the fly: `cargo run --example chat`, then open http://127.0.0.1:3003
//! in a few tabs (add `?room=kitchen` for another room).
//!
//! Pass another address as the first argument or in `CHAT_ADDR`. `GET /chat/{room}` streams
//! a room's messages and resumes from `Last-Event-ID` (or the `lastEventId` query
//! parameter); `POST /chat/{room}` publishes the request body as a message
//! (`curl -d hello 127.0.0.1:3003/chat/lobby`); the page is at `/`.
//!
//! Rooms live in a [`LogRegistry`]: a room's log is made when someone first opens or posts
//! to it, and evicted ten minutes after its last reader left and its last message came. At
//! most 1,000 rooms exist at once; a new room then takes the place of the idlest room
//! nobody reads, and only when every room has a reader is it refused (`503`).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_sse::replay::{EventLog, KeySubscription, LogRegistry, WhenFull};
use tower_sse::{Event, KeepAlive, LastEventId, MaybeStream, SseBody, SseLayer};

mod support;

const PAGE: &str = include_str!("chat.html");
const DEFAULT_ADDR: &str = "127.0.0.1:3003";
/// Larger posts are refused rather than buffered.
const MAX_POST_BYTES: usize = 16 * 1024;
/// Longer room names, or names with other characters, are not rooms.
const MAX_ROOM_NAME: usize = 64;

type Rooms = LogRegistry<String>;
type Events = SseBody<MaybeStream<KeySubscription>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    let listener = support::listen("CHAT_ADDR", DEFAULT_ADDR).await?;
    let rooms = rooms();
    // Frees idle rooms' memory; ends when the last handle of the registry is dropped.
    tokio::spawn(rooms.sweeper(Duration::from_secs(60)));
    // Streams end after 5 minutes and the browser reconnects with `Last-Event-ID`, as it
    // would through a proxy that cuts long responses.
    serve(listener, rooms, Duration::from_secs(300)).await;
    Ok(())
}

/// The rooms: each keeps its last 200 messages of the last hour.
pub(crate) fn rooms() -> Rooms {
    LogRegistry::builder()
        .log(
            EventLog::builder()
                .max_events(200)
                .max_age(Duration::from_secs(3600)),
        )
        .idle_eviction(Duration::from_secs(600))
        .max_keys(1_000)
        .when_full(WhenFull::EvictIdlest)
        .build()
}

/// Serves the page and the rooms on `listener` until the task is dropped; each stream ends
/// after `max_duration`, and the browser resumes it.
pub(crate) async fn serve(listener: TcpListener, rooms: Rooms, max_duration: Duration) {
    let events = ServiceBuilder::new()
        .layer(
            SseLayer::new()
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                .max_duration(max_duration)
                .retry(Duration::from_secs(1))
                .last_event_id_query("lastEventId"),
        )
        .service_fn({
            let rooms = rooms.clone();
            move |req: Request<Incoming>| {
                let response = match room(req.uri().path()) {
                    Some(room) => rooms.response(room, req.extensions().get::<LastEventId>()),
                    None => MaybeStream::status(StatusCode::NOT_FOUND),
                };
                async move { Ok::<_, Infallible>(response) }
            }
        });
    let app = service_fn(move |req| route(req, events.clone(), rooms.clone()));

    support::serve(listener, app).await;
}

type Page = Full<Bytes>;

async fn route<S>(
    req: Request<Incoming>,
    events: S,
    rooms: Rooms,
) -> Result<Response<Either<Page, Events>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<Events>, Error = Infallible>,
{
    let path = req.uri().path();
    if path == "/" {
        if req.method() != Method::GET {
            return Ok(not_allowed());
        }
        let mut response = Response::new(Either::Left(Full::from(PAGE)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return Ok(response);
    }
    let Some(room) = room(path).map(str::to_owned) else {
        return Ok(plain(StatusCode::NOT_FOUND, "not found\n".into()));
    };
    match *req.method() {
        Method::GET => Ok(events.oneshot(req).await?.map(Either::Right)),
        Method::POST => Ok(post(req, &rooms, &room).await),
        _ => Ok(not_allowed()),
    }
}

/// The room a path names: `/chat/{room}`, with a name of letters, digits, `-` and `_`.
fn room(path: &str) -> Option<&str> {
    let name = path.strip_prefix("/chat/")?;
    let valid = !name.is_empty()
        && name.len() <= MAX_ROOM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(name)
}

/// Publishes the request body, as text, to `room`.
async fn post<B>(req: Request<Incoming>, rooms: &Rooms, room: &str) -> Response<Either<Page, B>> {
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
    match rooms.publish(room, Event::new().data(text)) {
        Ok(id) => plain(StatusCode::OK, format!("published as id {id}\n")),
        Err(full) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{full}\n")),
    }
}

fn not_allowed<B>() -> Response<Either<Page, B>> {
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed\n".into(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
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
