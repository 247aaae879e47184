//! An answer streamed token by token: `cargo run --example tokens`, then open http://127.0.0.1:3001
//!
//! Pass another address as the first argument or in `TOKENS_ADDR`. `GET /answer` sends one
//! `token` event per token, then a `done` event marked as the end of the stream, then ends.
//! A browser that reconnects mid-answer sends the last token id it saw and the answer goes
//! on from the next token; one that reconnects after `done` gets `204 No Content` from the
//! layer, and `EventSource` stops for good.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_sse::{Event, EventType, LastEventId, SseBody, SseLayer};

mod support;

const DEFAULT_ADDR: &str = "127.0.0.1:3001";
const TOKEN_DELAY: Duration = Duration::from_millis(80);
const TOKEN: EventType = EventType::from_static("token");
const DONE: EventType = EventType::from_static("done");

/// Tokens as a language model emits them: word pieces carrying their own leading spaces,
/// and line breaks as tokens of their own.
pub(crate) const ANSWER: &[&str] = &[
    "Server",
    "-Sent",
    " Events",
    " keep",
    " one",
    " HTTP",
    " response",
    " open",
    " and",
    " write",
    " text",
    " events",
    " into",
    " it",
    ".",
    "\n\n",
    "Each",
    " token",
    " here",
    " is",
    " one",
    " event",
    ",",
    " so",
    " the",
    " page",
    " can",
    " show",
    " the",
    " answer",
    " while",
    " it",
    " is",
    " still",
    " being",
    " written",
    ".",
];

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>tower-sse tokens</title>
<style>
  body { font: 1.1rem/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
  #answer { white-space: pre-wrap; min-height: 4rem; }
  #state { opacity: 0.6; }
</style>
<h1>Streamed answer</h1>
<p id="answer"></p>
<p id="state">waiting for the first token</p>
<script>
  const answer = document.getElementById("answer");
  const state = document.getElementById("state");
  const source = new EventSource("/answer");
  // What the browser test reads.
  Object.assign(window, { source, opens: 0, tokens: 0 });
  source.onopen = () => { window.opens += 1; };
  source.addEventListener("token", (e) => {
    window.tokens += 1;
    answer.textContent += e.data;
    state.textContent = `${Number(e.lastEventId) + 1} tokens`;
  });
  source.addEventListener("done", () => { state.textContent += ", done"; });
  // After `done` the server answers the reconnect with 204, and EventSource closes itself.
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      state.textContent += ", closed by the server";
    }
  };
</script>
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    let listener = support::listen("TOKENS_ADDR", DEFAULT_ADDR).await?;
    serve(listener, TOKEN_DELAY).await;
    Ok(())
}

/// Serves the page and the answer on `listener` until the task is dropped, one token every
/// `token_delay`.
pub(crate) async fn serve(listener: TcpListener, token_delay: Duration) {
    let answer = ServiceBuilder::new()
        .layer(SseLayer::new().retry(Duration::from_secs(1)))
        .service_fn(move |req| answer(req, token_delay));
    let app = service_fn(move |req| route(req, answer.clone()));

    support::serve(listener, app).await;
}

async fn route<S, St>(
    req: Request<Incoming>,
    answer: S,
) -> Result<Response<Either<Full<Bytes>, SseBody<St>>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<SseBody<St>>, Error = Infallible>,
{
    let (status, content_type, text) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/answer") => {
            let response = answer.oneshot(req).await?;
            return Ok(response.map(Either::Right));
        }
        (&Method::GET, "/") => (StatusCode::OK, "text/html; charset=utf-8", PAGE),
        (_, "/" | "/answer") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        ),
    };
    let mut response = Response::new(Either::Left(Full::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // RFC 9110 requires it on a 405.
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
    }
    Ok(response)
}

/// The answer's tokens after the one the browser saw last, then `done`.
async fn answer(
    req: Request<Incoming>,
    token_delay: Duration,
) -> Result<Response<impl Stream<Item = Event>>, Infallible> {
    let next = req
        .extensions()
        .get::<LastEventId>()
        .and_then(|id| id.parse::<usize>().ok())
        .map_or(0, |last| last.saturating_add(1));

    let tokens =
        stream::iter(ANSWER.iter().enumerate().skip(next)).then(move |(index, token)| async move {
            // Stands in for the time a model takes to produce each token.
            tokio::time::sleep(token_delay).await;
            // Sent as is: the leading spaces and the line breaks are part of the text.
            Event::new()
                .with_event(TOKEN)
                .id_u64(index as u64)
                .data(*token)
        });
    // An empty `data:` line still dispatches the event; the type is what the page needs.
    // Its id marks the end: the reconnect that follows is answered `204 No Content`.
    let done = stream::once(async { Event::new().with_event(DONE).data("").end_of_stream() });
    Ok(Response::new(tokens.chain(done)))
}
