//! The replay log over real HTTP: a hyper server serving `GET /events` from an
//! [`EventLog`] through [`SseLayer`], and clients that drop their connection and reconnect
//! with `Last-Event-ID`, as browsers do.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceBuilder;
use tower_sse::{Event, EventLog, LastEventId, OnUnknownId, SseLayer};

/// A server on 127.0.0.1:0 answering every request with `log.response(..)` behind `layer`;
/// dropping it aborts the accept loop and every open connection.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(log: EventLog, layer: SseLayer) -> Server {
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |req: Request<Incoming>| {
            let events = log.response(req.extensions().get::<LastEventId>());
            async move { Ok::<_, Infallible>(events) }
        });
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        // Dropped with the task: aborts the connections still open.
        let mut connections = JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let service = TowerToHyperService::new(service.clone());
            connections.spawn(async move {
                // A client dropping its connection mid-stream is the point of these tests.
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
            // Reap finished connections so the set stays as small as the open ones.
            while connections.try_join_next().is_some() {}
        }
    });
    Server { addr, task }
}

/// An HTTP/1.1 connection with one request on it; dropping it closes the connection.
struct Client {
    response: Response<Incoming>,
    connection: JoinHandle<()>,
    parser: Parser,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Client {
    async fn get(addr: SocketAddr, path: &str, last_event_id: Option<&str>) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::get(path).header(header::HOST, "127.0.0.1");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        Self {
            response,
            connection,
            parser: Parser::default(),
        }
    }

    /// The next event (comments skipped); `None` when the response ends.
    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.parser.next_event() {
                return Some(event);
            }
            let frame = self.response.body_mut().frame().await?.unwrap();
            if let Ok(data) = frame.into_data() {
                self.parser.buf.extend_from_slice(&data);
            }
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Splits the stream into events; enough for what the body sends (LF line ends, one
/// space after the colon).
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buf.windows(2).position(|pair| pair == b"\n\n")?;
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let block = std::str::from_utf8(&block[..end]).expect("UTF-8 stream");
            let mut event = SseEvent::default();
            let mut data = Vec::new();
            for line in block.split('\n') {
                if let Some(id) = line.strip_prefix("id: ") {
                    event.id = Some(id.to_owned());
                } else if let Some(name) = line.strip_prefix("event: ") {
                    event.event = Some(name.to_owned());
                } else if let Some(line) = line.strip_prefix("data: ") {
                    data.push(line);
                } else {
                    assert!(line.starts_with(':'), "unexpected line {line:?}");
                }
            }
            if event.id.is_some() || !data.is_empty() {
                event.data = data.join("\n");
                return Some(event);
            }
        }
    }
}

/// xorshift64*, seeded per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Runs a test body, failing it if it takes more than 10 s.
async fn within(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("the test finished in time");
}

const EVENTS: u64 = 5_000;
const CLIENTS: u64 = 20;

/// Reads the events in order through reconnects; returns how many times it reconnected.
async fn reconnecting_client(addr: SocketAddr, mut client: Client, seed: u64) -> u64 {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut last = 0;
    let mut reconnects = 0;
    loop {
        for _ in 0..=rng.below(600) {
            let event = client.next_event().await.expect("the stream does not end");
            let id: u64 = event.id.as_deref().unwrap().parse().unwrap();
            assert_eq!(id, last + 1, "client {seed}: lost or repeated events");
            assert_eq!(event.data, format!("event {id}"));
            last = id;
            if last == EVENTS {
                return reconnects;
            }
        }
        // Whatever else the server already sent is dropped unread with the connection.
        drop(client);
        reconnects += 1;
        assert!(reconnects <= EVENTS, "client {seed}: runaway loop");
        client = Client::get(addr, "/events", Some(&last.to_string())).await;
        assert_eq!(client.response.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_clients_get_every_event_exactly_once() {
    let log = EventLog::builder()
        .max_events(2 * EVENTS as usize)
        .max_bytes(usize::MAX)
        .build();
    let server = serve(log.clone(), SseLayer::new()).await;
    let addr = server.addr;
    let started = std::time::Instant::now();

    let run = async {
        let mut clients = JoinSet::new();
        for seed in 0..CLIENTS {
            // The response head comes after the handler subscribed: from here on, this
            // first, live-only connection sees every event.
            let client = Client::get(addr, "/events", None).await;
            assert_eq!(
                client.response.headers()["content-type"],
                "text/event-stream"
            );
            clients.spawn(reconnecting_client(addr, client, seed));
        }
        for n in 1..=EVENTS {
            log.publish(Event::new().data(format!("event {n}")));
            // Let the clients read while events come, not only replay afterwards.
            if n % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut reconnects = 0;
        while let Some(result) = clients.join_next().await {
            reconnects += result.unwrap();
        }
        reconnects
    };
    let reconnects = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the clients finished in time");

    let stats = log.stats();
    eprintln!(
        "replay over HTTP: {EVENTS} events, {CLIENTS} clients, {reconnects} reconnects, \
         {} replayed, elapsed {:.2?}",
        stats.replayed,
        started.elapsed()
    );
    assert!(reconnects >= CLIENTS);
    assert_eq!(stats.published, EVENTS);
    assert_eq!(stats.gap_signals, 0);
    assert_eq!(stats.lag_disconnects, 0);
}

#[tokio::test]
async fn an_evicted_id_gets_the_gap_event_then_the_oldest() {
    within(async {
        let log = EventLog::builder().max_events(3).build();
        for n in 1..=5 {
            log.publish(Event::new().data(format!("event {n}")));
        }
        let server = serve(log.clone(), SseLayer::new()).await;
        let mut client = Client::get(server.addr, "/events", Some("1")).await;
        let gap = client.next_event().await.unwrap();
        assert_eq!(gap.id.as_deref(), Some("2"));
        assert_eq!(gap.event.as_deref(), Some("reset"));
        assert_eq!(gap.data, r#"{"reason":"cursor_too_old","resume_from":3}"#);
        for n in 3..=5 {
            let event = client.next_event().await.unwrap();
            assert_eq!(event.id, Some(n.to_string()));
        }
    })
    .await;
}

#[tokio::test]
async fn a_refused_id_is_answered_with_no_content() {
    within(async {
        let log = EventLog::builder()
            .on_unknown_id(OnUnknownId::NoContent)
            .build();
        log.publish(Event::new().data("a"));
        let server = serve(log.clone(), SseLayer::new()).await;

        let mut refused = Client::get(server.addr, "/events", Some("from-elsewhere")).await;
        assert_eq!(refused.response.status(), StatusCode::NO_CONTENT);
        assert!(!refused.response.headers().contains_key("content-type"));
        assert!(refused.next_event().await.is_none());

        let mut known = Client::get(server.addr, "/events", Some("0")).await;
        assert_eq!(known.response.status(), StatusCode::OK);
        assert_eq!(known.next_event().await.unwrap().data, "a");
        assert_eq!(log.stats().rejected, 1);
    })
    .await;
}

#[tokio::test]
async fn the_query_parameter_resumes_a_new_event_source() {
    within(async {
        let log = EventLog::new();
        for n in 1..=3 {
            log.publish(Event::new().data(format!("event {n}")));
        }
        let layer = SseLayer::new().last_event_id_query("lastEventId");
        let server = serve(log.clone(), layer).await;
        let mut client = Client::get(server.addr, "/events?lastEventId=1", None).await;
        assert_eq!(client.next_event().await.unwrap().id.as_deref(), Some("2"));
        assert_eq!(client.next_event().await.unwrap().id.as_deref(), Some("3"));
        // The header, which EventSource sends on its own reconnects, wins over the query.
        let mut client = Client::get(server.addr, "/events?lastEventId=1", Some("2")).await;
        assert_eq!(client.next_event().await.unwrap().id.as_deref(), Some("3"));
    })
    .await;
}
