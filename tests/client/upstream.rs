//! A scripted upstream on 127.0.0.1 for the client suite: it logs every request (method,
//! path, headers, body, when) and answers the n-th one as the test says.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::service_fn;
use tower_sse::client::{EventSource, Item};
use tower_sse::BoxError;

use crate::support::server::{self, Server};

pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One request the upstream received.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) at: Instant,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

/// Every request so far, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub(crate) fn get(&self, n: usize) -> Seen {
        self.0.lock().unwrap()[n].clone()
    }

    fn push(&self, seen: Seen) -> usize {
        let mut log = self.0.lock().unwrap();
        log.push(seen);
        log.len() - 1
    }
}

/// Serves `answer(n, request)` for the n-th request (from 0).
pub(crate) async fn upstream<F>(answer: F) -> (Server, Log)
where
    F: Fn(usize, &Seen) -> Response<Body> + Send + Sync + 'static,
{
    let log = Log::default();
    let answer = Arc::new(answer);
    let requests = log.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let log = requests.clone();
        let answer = answer.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let seen = Seen {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body,
                at: Instant::now(),
            };
            let n = log.push(seen.clone());
            Ok::<_, Infallible>(answer(n, &seen))
        }
    });
    (server::serve(service).await, log)
}

/// hyper-util's pooled client, as an application would use it.
pub(crate) fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `GET http://{server}{path}`.
pub(crate) fn get(server: &Server, path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://{}{path}", server.addr()))
        .body(Full::default())
        .unwrap()
}

/// `200 text/event-stream` sending `chunks`, then ending.
pub(crate) fn events<I>(chunks: I) -> Response<Body>
where
    I: IntoIterator,
    I::Item: Into<Bytes>,
{
    let chunks: Vec<Bytes> = chunks.into_iter().map(Into::into).collect();
    stream_response(stream::iter(chunks).boxed())
}

/// `200 text/event-stream` sending `chunks`, then nothing, never ending.
pub(crate) fn events_then_silence<I>(chunks: I) -> Response<Body>
where
    I: IntoIterator,
    I::Item: Into<Bytes>,
{
    let chunks: Vec<Bytes> = chunks.into_iter().map(Into::into).collect();
    stream_response(stream::iter(chunks).chain(stream::pending()).boxed())
}

/// `200 text/event-stream` with the chunks of `chunks` as they come.
pub(crate) fn stream_response(chunks: stream::BoxStream<'static, Bytes>) -> Response<Body> {
    let body = StreamBody::new(chunks.map(|chunk| Ok::<_, BoxError>(Frame::data(chunk))));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed_unsync(body))
        .unwrap()
}

/// A plain response.
pub(crate) fn plain(status: u16, headers: &[(&str, &str)], body: &'static str) -> Response<Body> {
    let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response
        .body(
            Full::from(body)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .unwrap()
}

/// The next item, which must be there and not an error.
pub(crate) async fn next<S>(source: &mut S) -> Item
where
    S: futures_util::Stream<Item = Result<Item, tower_sse::client::Error>> + Unpin,
{
    match source.next().await {
        Some(Ok(item)) => item,
        Some(Err(error)) => panic!("unexpected error: {error:?}"),
        None => panic!("the stream ended"),
    }
}

/// The next event's (data, last event id), skipping opens and reconnections.
pub(crate) async fn next_event<S>(source: &mut S) -> (String, String)
where
    S: futures_util::Stream<Item = Result<Item, tower_sse::client::Error>> + Unpin,
{
    loop {
        if let Item::Event(event) = next(source).await {
            return (event.data().to_owned(), event.last_event_id().to_owned());
        }
    }
}

#[allow(dead_code)]
pub(crate) type Source = EventSource<HttpClient, Request<Full<Bytes>>, Full<Bytes>>;
