//! An SSE relay: `cargo run --example relay --features client`, then open http://127.0.0.1:3002
//!
//! Pass another address as the first argument or in `RELAY_ADDR`. The example runs two
//! servers. The upstream, on a free port of 127.0.0.1, stands in for a language model
//! provider: `GET /answer` streams one `token` event per token with numeric ids, then a
//! `done` event, and resumes after the `Last-Event-ID` it is sent; it also ends every
//! response after a few tokens, as a flaky provider drops connections. The relay, in
//! front, answers `GET /answer` by reading the upstream with `tower_sse::client::EventSource`
//! over hyper-util's client and re-serving each event (type, data, id) through `SseLayer` to
//! the browser. When the upstream response ends or fails, the client reconnects with
//! `Last-Event-ID` set to the last id it read, so the browser sees every token once, in
//! order. A browser's own `Last-Event-ID` is passed upstream on the first connection.

use std::convert::Infallible;
use std::future::ready;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt};
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{Either, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_sse::client::{Builder, Item};
use tower_sse::{Event, EventError, Fallible, LastEventId, SseBody, SseLayer};

mod support;

const DEFAULT_ADDR: &str = "127.0.0.1:3002";
/// Tokens per upstream response before it ends it, in `main`.
const TOKENS_PER_CONNECTION: usize = 5;
const TOKEN_DELAY: Duration = Duration::from_millis(80);
/// Failed upstream attempts in a row (no event between them) before the relay gives up on
/// a stream.
const MAX_ATTEMPTS: u32 = 5;
/// The relay resumes a dropped upstream soon: the browser is waiting.
const RECONNECTION_TIME: Duration = Duration::from_millis(100);

/// The answer, as a language model emits it: word pieces with their leading spaces.
pub(crate) const ANSWER: &[&str] = &[
    "A",
    " relay",
    " reads",
    " the",
    " provider's",
    " stream",
    ",",
    " decodes",
    " each",
    " event",
    " and",
    " sends",
    " it",
    " on",
    ";",
    " when",
    " the",
    " provider",
    " drops",
    " the",
    " connection",
    ",",
    " it",
    " resumes",
    " from",
    " the",
    " last",
    " id",
    ".",
];

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>tower-sse relay</title>
<style>body { font: 1.1rem/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; }</style>
<h1>Relayed answer</h1>
<p id="answer"></p>
<p id="state">waiting for the first token</p>
<script>
  const answer = document.getElementById("answer");
  const state = document.getElementById("state");
  const source = new EventSource("/answer");
  source.addEventListener("token", (e) => {
    answer.textContent += e.data;
    state.textContent = `token ${e.lastEventId}`;
  });
  source.addEventListener("done", () => { source.close(); state.textContent += ", done"; });
</script>
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    let upstream = TcpListener::bind("127.0.0.1:0").await?;
    let upstream_addr = upstream.local_addr()?;
    tracing::info!("upstream on http://{upstream_addr}/answer");
    tokio::spawn(serve_upstream(
        upstream,
        Upstream::new(TOKENS_PER_CONNECTION).token_delay(TOKEN_DELAY),
    ));

    let listener = support::listen("RELAY_ADDR", DEFAULT_ADDR).await?;
    serve_relay(listener, upstream_addr).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The upstream: a provider's token stream that drops the connection now and then.

/// How the upstream behaves, and what it saw.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    per_connection: usize,
    token_delay: Duration,
    /// The `Last-Event-ID` of every request, in order (`None` when there was none).
    resumes: Arc<Mutex<Vec<Option<String>>>>,
}

impl Upstream {
    /// Ends each response after `per_connection` tokens.
    pub(crate) fn new(per_connection: usize) -> Self {
        Self {
            per_connection,
            token_delay: Duration::ZERO,
            resumes: Arc::default(),
        }
    }

    /// Waits this long before each token, as a model takes time to produce it.
    pub(crate) fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// The `Last-Event-ID` each request carried so far, in order.
    #[allow(dead_code)] // Read by tests/decode/relay.rs.
    pub(crate) fn resumes(&self) -> Vec<Option<String>> {
        self.resumes.lock().unwrap().clone()
    }
}

/// Serves the upstream on `listener`: `GET /answer` only.
pub(crate) async fn serve_upstream(listener: TcpListener, upstream: Upstream) {
    let answer = ServiceBuilder::new()
        .layer(SseLayer::new())
        .service_fn(move |req| upstream_answer(req, upstream.clone()));
    let app = service_fn(move |req| route(req, answer.clone(), None));
    support::serve(listener, app).await;
}

/// The tokens after the request's `Last-Event-ID`, at most `per_connection` of them; after
/// the last token, `done`.
async fn upstream_answer(
    req: Request<Incoming>,
    upstream: Upstream,
) -> Result<Response<impl Stream<Item = Fallible<Result<Event, EventError>>>>, Infallible> {
    let last = req.extensions().get::<LastEventId>();
    upstream
        .resumes
        .lock()
        .unwrap()
        .push(last.map(|id| id.as_str().to_owned()));
    let next = last
        .and_then(|id| id.parse::<usize>().ok())
        .map_or(0, |last| last.saturating_add(1));
    let end = next
        .saturating_add(upstream.per_connection)
        .min(ANSWER.len());
    let delay = upstream.token_delay;

    let tokens = stream::iter(next..end).then(move |index| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Event::new()
            .event("token")
            .map(|event| event.id_u64(index as u64).data(ANSWER[index]))
    });
    // The whole answer went out on this connection: say so. Otherwise the response just
    // ends, as a dropped connection does, and the client must resume.
    let done =
        (end == ANSWER.len()).then(|| Event::new().event("done").map(|event| event.data("")));
    Ok(Response::new(
        tokens.chain(stream::iter(done)).map(Fallible),
    ))
}

// ---------------------------------------------------------------------------------------
// The relay.

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Serves the relay on `listener`, reading from the upstream at `upstream`: `GET /` is the
/// page, `GET /answer` the relayed stream.
pub(crate) async fn serve_relay(listener: TcpListener, upstream: SocketAddr) {
    let uri: Uri = format!("http://{upstream}/answer")
        .parse()
        .expect("valid uri");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let answer = ServiceBuilder::new()
        .layer(SseLayer::new())
        .service_fn(move |req| relay_answer(req, client.clone(), uri.clone()));
    let app = service_fn(move |req| route(req, answer.clone(), Some(PAGE)));
    support::serve(listener, app).await;
}

/// `GET /answer` is the stream, `GET /` the page if there is one.
async fn route<S, St>(
    req: Request<Incoming>,
    answer: S,
    page: Option<&'static str>,
) -> Result<Response<Either<Full<Bytes>, SseBody<St>>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<SseBody<St>>, Error = Infallible>,
{
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/answer") => Ok(answer.oneshot(req).await?.map(Either::Right)),
        (&Method::GET, "/") if page.is_some() => {
            let mut response = text(StatusCode::OK, page.unwrap_or_default());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Ok(response.map(Either::Left))
        }
        _ => Ok(text(StatusCode::NOT_FOUND, "not found\n").map(Either::Left)),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response
}

/// The relayed stream: the upstream's events, read by the client across as many upstream
/// connections as it takes, until `done`.
async fn relay_answer(
    req: Request<Incoming>,
    client: HttpClient,
    upstream: Uri,
) -> Result<Response<impl Stream<Item = Event>>, Infallible> {
    let mut builder = Builder::new()
        .reconnection_time(RECONNECTION_TIME)
        .max_attempts(MAX_ATTEMPTS);
    // The browser's own resume point is the first upstream connection's.
    if let Some(id) = req.extensions().get::<LastEventId>() {
        builder = builder.last_event_id(id.as_str());
    }
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = upstream;
    let source = builder.build(client, request);

    let events = source
        .scan(false, |done, item| {
            if *done {
                return ready(None);
            }
            let event = match item {
                // The same type, data and id (when the block had one: the browser carries
                // the id over by itself), with no field copied by hand.
                Ok(Item::Event(event)) => {
                    *done = event.event_type() == "done";
                    Some(Event::from(event))
                }
                Ok(Item::Reconnecting(next)) => {
                    tracing::info!(cause = %next.cause(), delay = ?next.delay(), "resuming upstream");
                    None
                }
                Ok(Item::Closed(_)) => return ready(None),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, "upstream failed");
                    return ready(None);
                }
            };
            ready(Some(event))
        })
        .filter_map(ready);
    Ok(Response::new(events))
}
