//! An OpenAI-style streaming completion: `cargo run --example openai --features client`
//!
//! The example starts a fake provider on a free port of 127.0.0.1 that answers `POST
//! /v1/chat/completions` as OpenAI's API does with `"stream": true`: one `data:` line of
//! JSON per token (`choices[0].delta.content`), then `data: [DONE]`. The consumer posts the
//! JSON request with a bearer token through `tower_sse::client::EventSource` over hyper-util's
//! client, prints each token as it arrives and stops at `[DONE]`.
//!
//! A completion cannot be resumed: a second `POST` would generate the answer again. So the
//! consumer retries what fails before the first token (`429` and `5xx` under
//! `RetryPolicy::transient`, honouring `Retry-After`; a refused connection), and reports a
//! stream cut after tokens as an error instead of re-posting it.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_sse::client::{Builder, Item, RetryPolicy};
use tower_sse::{BoxError, Event, SseLayer};

mod support;

/// The API key the fake provider accepts.
pub(crate) const API_KEY: &str = "sk-example";
/// The answer the fake provider streams, token by token.
pub(crate) const ANSWER: &[&str] = &["Server", "-sent", " events", " stream", " tokens", "."];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    support::init_tracing();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let provider = Provider {
        token_delay: Duration::from_millis(60),
        ..Provider::default()
    };
    tokio::spawn(serve_provider(listener, provider));

    let answer = complete(addr, API_KEY, "Say something about SSE", |token| {
        print!("{token}");
        // A token shows at once, not when the line ends.
        let _ = std::io::stdout().flush();
    })
    .await?;
    println!();
    tracing::info!(chars = answer.len(), "done");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The consumer.

/// Posts `prompt` to the provider at `addr`, calls `on_token` with each token as it
/// arrives, and returns the whole answer once `[DONE]` arrives.
pub(crate) async fn complete(
    addr: SocketAddr,
    api_key: &str,
    prompt: &str,
    mut on_token: impl FnMut(&str),
) -> Result<String, BoxError> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = json!({
        "model": "gpt-example",
        "stream": true,
        "messages": [{ "role": "user", "content": prompt }],
    });
    let request = Request::post(format!("http://{addr}/v1/chat/completions"))
        .header(header::AUTHORIZATION, format!("Bearer {api_key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let mut source = Builder::new()
        .retry_policy(RetryPolicy::transient())
        .reconnection_time(Duration::from_millis(250))
        .max_attempts(3)
        .build(client, request);

    let mut answer = String::new();
    let mut tokens = 0;
    while let Some(item) = source.next().await {
        match item? {
            Item::Event(event) if event.data() == "[DONE]" => return Ok(answer),
            Item::Event(event) => {
                let chunk: Value = serde_json::from_str(event.data())?;
                if let Some(token) = chunk["choices"][0]["delta"]["content"].as_str() {
                    on_token(token);
                    answer.push_str(token);
                    tokens += 1;
                }
            }
            // Before the first token a retry is safe; after it, a new POST would start the
            // answer over.
            Item::Reconnecting(next) if tokens > 0 => {
                return Err(format!("stream cut after {tokens} tokens: {}", next.cause()).into());
            }
            Item::Reconnecting(next) => {
                tracing::warn!(cause = %next.cause(), delay = ?next.delay(), "retrying");
            }
            _ => {}
        }
    }
    Err("stream closed before [DONE]".into())
}

// ---------------------------------------------------------------------------------------
// The fake provider.

/// How the fake provider behaves, and what it saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Provider {
    /// Answers this many requests `429 Too Many Requests` with `Retry-After: 1` first.
    pub(crate) rate_limited: usize,
    /// Requests received so far.
    pub(crate) requests: Arc<AtomicUsize>,
    /// Delay before each token.
    pub(crate) token_delay: Duration,
}

/// Serves the provider on `listener`: `POST /v1/chat/completions` only.
pub(crate) async fn serve_provider(listener: TcpListener, provider: Provider) {
    let completions = ServiceBuilder::new()
        .layer(SseLayer::new().no_opening_frame())
        .service_fn(chunks);
    let app = service_fn(move |req: Request<Incoming>| {
        let completions = completions.clone();
        let provider = provider.clone();
        async move {
            let seen = provider.requests.fetch_add(1, Ordering::SeqCst);
            let refusal = refuse(&req, seen < provider.rate_limited);
            if let Some(response) = refusal {
                return Ok::<_, Infallible>(response.map(Either::Left));
            }
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let valid = serde_json::from_slice::<Value>(&body)
                .is_ok_and(|request| request["stream"] == true);
            if !valid {
                return Ok(plain(
                    StatusCode::BAD_REQUEST,
                    r#"{"error":"stream must be true"}"#,
                )
                .map(Either::Left));
            }
            let request = Request::from_parts(parts, provider.token_delay);
            let response = completions.oneshot(request).await?;
            Ok(response.map(Either::Right))
        }
    });
    support::serve(listener, app).await;
}

/// A refusal as the API gives it: wrong route, wrong key, or rate limited.
fn refuse(req: &Request<Incoming>, rate_limited: bool) -> Option<Response<Full<Bytes>>> {
    if req.method() != Method::POST || req.uri().path() != "/v1/chat/completions" {
        return Some(plain(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#));
    }
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == format!("Bearer {API_KEY}").as_bytes());
    if !authorized {
        return Some(plain(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid api key"}"#,
        ));
    }
    if rate_limited {
        let mut response = plain(StatusCode::TOO_MANY_REQUESTS, r#"{"error":"rate limited"}"#);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Some(response);
    }
    None
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The completion chunks, then `[DONE]`, then the connection stays open (as a keep-alive
/// connection does): the consumer must stop at `[DONE]`, not at the end of the body.
async fn chunks(req: Request<Duration>) -> Result<Response<impl Stream<Item = Event>>, Infallible> {
    let delay = *req.body();
    let tokens = stream::iter(ANSWER.iter().copied()).then(move |token| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let chunk = json!({
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [{ "index": 0, "delta": { "content": token } }],
        });
        Event::new().data(chunk.to_string())
    });
    let done = stream::once(async { Event::new().data("[DONE]") });
    Ok(Response::new(tokens.chain(done).chain(stream::pending())))
}
