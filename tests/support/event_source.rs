//! An `EventSource`-like client over [`server::Client`](super::server::Client): one
//! connection, its events parsed by the WHATWG parser, its keep-alives counted; and a
//! reader that drops its connection at random points and reconnects with the last id, as a
//! browser does.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::rng::Rng;
use super::server::{empty, Client, Proto};
use super::whatwg::{DispatchedEvent, Parser};

/// Upper bound on any single wait; generous, as the Redis suites share a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out after {WAIT:?}"))
}

/// One connection with one `GET` on it.
pub(crate) struct EventSource {
    client: Client,
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    parser: Parser,
    read: usize,
    keep_alives: usize,
}

impl EventSource {
    /// `GET /events`, sending `last_event_id` if any; the answer must be `200 OK`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        proto: Proto,
        last_event_id: Option<&str>,
    ) -> Self {
        let source = Self::open(addr, proto, "/events", last_event_id).await;
        assert_eq!(source.status, StatusCode::OK);
        source
    }

    /// `GET path_and_query`, sending `last_event_id` if any, whatever the answer.
    pub(crate) async fn open(
        addr: SocketAddr,
        proto: Proto,
        path_and_query: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut client = within("connect", Client::connect(addr, proto)).await;
        let mut request = client.get(path_and_query);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = within("response head", client.send(empty(request))).await;
        let (parts, body) = response.into_parts();
        Self {
            client,
            status: parts.status,
            headers: parts.headers,
            body,
            parser: Parser::new(),
            read: 0,
            keep_alives: 0,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Keep-alive comments read so far.
    pub(crate) fn keep_alives(&self) -> usize {
        self.keep_alives
    }

    /// Reads one body frame; `false` when the body ended.
    async fn frame(&mut self) -> bool {
        let Some(frame) = within("a body frame", self.body.frame()).await else {
            return false;
        };
        if let Ok(data) = frame.expect("the body does not fail").into_data() {
            if data == ":\n\n" {
                self.keep_alives += 1;
            }
            self.parser.feed(&data);
        }
        true
    }

    /// The next event; `None` when the stream ends first.
    pub(crate) async fn try_next_event(&mut self) -> Option<DispatchedEvent> {
        loop {
            if let Some(event) = self.parser.events().get(self.read) {
                self.read += 1;
                return Some(event.clone());
            }
            if !self.frame().await {
                return None;
            }
        }
    }

    /// The next event; the stream must not end first.
    pub(crate) async fn next_event(&mut self) -> DispatchedEvent {
        self.try_next_event()
            .await
            .expect("the stream does not end")
    }

    /// Reads until a keep-alive comment arrives.
    pub(crate) async fn keep_alive(&mut self) {
        let seen = self.keep_alives;
        while self.keep_alives == seen {
            assert!(self.frame().await, "the stream does not end");
        }
    }

    /// Closes the connection at once, dropping whatever the server sent and it did not read.
    pub(crate) fn close(self) {
        self.client.disconnect();
    }
}

/// Reads `total` events, starting with `source`; unless `one_in` is `None`, after each
/// event it drops the connection one time in `one_in` and reconnects with the last id,
/// to the next of `nodes` in turn. Returns the events in order and the reconnects.
pub(crate) async fn read_reconnecting(
    nodes: &[(SocketAddr, Proto)],
    mut source: EventSource,
    total: usize,
    one_in: Option<u64>,
    seed: u64,
) -> (Vec<DispatchedEvent>, u64) {
    let mut rng = Rng::new(seed);
    let mut node = 0;
    let mut reconnects = 0;
    let mut seen: Vec<DispatchedEvent> = Vec::with_capacity(total);
    while seen.len() < total {
        seen.push(source.next_event().await);
        let drop_now = one_in.is_some_and(|n| rng.below(n) == 0);
        if drop_now && seen.len() < total {
            source.close();
            node = (node + 1) % nodes.len();
            reconnects += 1;
            let (addr, proto) = nodes[node];
            let last = seen.last().map(|event| event.last_event_id.as_str());
            source = EventSource::connect(addr, proto, last).await;
        }
    }
    (seen, reconnects)
}
