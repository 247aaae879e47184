//! The stream metrics, scraped over HTTP from `examples/observability.rs` after a known
//! sequence: three streams, ten events, one idle timeout, one client gone, one resume.
//!
//! A binary of its own: the recorder is installed once per process.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower_sse::replay::EventLog;
use tower_sse::Event;

#[path = "../examples/observability.rs"]
#[allow(dead_code)] // Its `main` is not used here.
mod observability;

/// Shorter than the example's 30 s: the first keep-alive comes 12 to 15 s into a silence and
/// the second 15 s after it, so a stream that idles out after 20 s sends exactly one.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// One SSE response being read; dropping it closes the connection.
struct Client {
    body: Incoming,
    connection: JoinHandle<()>,
    /// Everything read so far.
    text: String,
}

impl Client {
    async fn open(addr: SocketAddr, last_event_id: Option<&str>) -> Self {
        let mut request = Request::get("/clock").header("host", "127.0.0.1");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request_on(addr, request.body(Empty::new()).unwrap()).await;
        let (response, connection) = response;
        assert_eq!(response.status(), 200);
        let mut client = Self {
            body: response.into_body(),
            connection,
            text: String::new(),
        };
        // The opening frame: the layer has called the service, so the log subscribed.
        client.read_frame().await.expect("an opening frame");
        assert_eq!(client.text, "retry: 1000\n\n");
        client
    }

    /// Reads one frame; `None` at the end of the body.
    async fn read_frame(&mut self) -> Option<()> {
        loop {
            let frame = self.body.frame().await?.expect("a body frame");
            if let Ok(data) = frame.into_data() {
                self.text
                    .push_str(std::str::from_utf8(&data).expect("UTF-8"));
                return Some(());
            }
        }
    }

    /// The id of the last event read.
    fn last_id(&self) -> String {
        let at = self.text.rfind("id: ").expect("an event with an id") + 4;
        let id = &self.text[at..];
        id[..id.find('\n').expect("a whole line")].to_owned()
    }

    fn events(&self) -> usize {
        self.text.matches("data: tick\n").count()
    }

    /// Reads until `events` events in all have come.
    async fn read_events(&mut self, events: usize) {
        while self.events() < events {
            self.read_frame().await.expect("the stream ended early");
        }
        assert_eq!(self.events(), events, "{:?}", self.text);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Sends `request` on a new HTTP/1.1 connection; the connection lives until the task ends.
async fn request_on(
    addr: SocketAddr,
    request: Request<Empty<Bytes>>,
) -> (http::Response<Incoming>, JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await.expect("response");
    (response, connection)
}

async fn scrape(addr: SocketAddr) -> String {
    let request = Request::get("/metrics")
        .header("host", "127.0.0.1")
        .body(Empty::new())
        .unwrap();
    let (response, _connection) = request_on(addr, request).await;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.expect("scrape");
    String::from_utf8(body.to_bytes().to_vec()).expect("UTF-8")
}

/// The value of the sample `name` whose labels include all of `labels`, if there is one.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, series_labels) = match series.split_once('{') {
            Some((series_name, rest)) => (series_name, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        let all = labels.iter().all(|(key, value)| {
            series_labels
                .split(',')
                .any(|pair| pair == format!("{key}=\"{value}\""))
        });
        (series_name == name && all).then(|| value.parse().ok())?
    })
}

/// `sample` on the `clock` route, which must be there.
fn clock(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut all = vec![("sse_route", "clock")];
    all.extend_from_slice(labels);
    sample(scrape, name, &all).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{scrape}"))
}

fn closed(scrape: &str, reason: &str) -> f64 {
    clock(
        scrape,
        "sse_server_streams_closed",
        &[("sse_end_reason", reason)],
    )
}

fn publish(log: &EventLog, events: usize) {
    for _ in 0..events {
        log.publish(Event::new().data("tick"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_known_sequence_scrapes_to_exact_values() {
    let prometheus = observability::install_recorder().expect("the only recorder");
    let log = EventLog::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(observability::serve(
        listener,
        log.clone(),
        prometheus,
        IDLE_TIMEOUT,
    ));
    let mut received = 0;

    // 1. Four events, then the client goes away.
    let mut first = Client::open(addr, None).await;
    publish(&log, 4);
    first.read_events(4).await;
    received += first.text.len();
    let last_seen = first.last_id();
    drop(first);
    // The server sees the connection close on its own time; the paused clock moves on only
    // while every task waits, so a few turns cost no real time.
    let mut turns = 0;
    while sample(
        &scrape(addr).await,
        "sse_server_streams_closed",
        &[("sse_route", "clock"), ("sse_end_reason", "client_gone")],
    ) != Some(1.0)
    {
        turns += 1;
        assert!(turns < 100, "the server never saw the client go");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // 2. Three events while nobody listens, then a resume after the fourth: the log replays
    //    the three, and the stream idles out with one keep-alive on the way.
    publish(&log, 3);
    let mut second = Client::open(addr, Some(&last_seen)).await;
    second.read_events(3).await;
    while second.read_frame().await.is_some() {}
    assert!(
        second.text.ends_with("data: tick\n\n:\n\n"),
        "{:?}",
        second.text
    );
    received += second.text.len();

    // 3. A new stream with three events, open while the metrics are scraped.
    let mut third = Client::open(addr, None).await;
    publish(&log, 3);
    third.read_events(3).await;
    received += third.text.len();

    let scrape = scrape(addr).await;
    assert_eq!(clock(&scrape, "sse_server_streams_opened", &[]), 3.0);
    assert_eq!(clock(&scrape, "sse_server_active_streams", &[]), 1.0);
    assert_eq!(closed(&scrape, "client_gone"), 1.0);
    assert_eq!(closed(&scrape, "idle_timeout"), 1.0);
    for reason in ["source_ended", "max_duration", "shutdown", "item_error"] {
        assert_eq!(closed(&scrape, reason), 0.0, "{reason}");
    }
    assert_eq!(clock(&scrape, "sse_server_events", &[]), 10.0);
    assert_eq!(clock(&scrape, "sse_server_keep_alives", &[]), 1.0);
    assert_eq!(clock(&scrape, "sse_server_bytes", &[]), received as f64);
    // Every stream sent an event; the two that ended lived under and over 15 s.
    assert_eq!(
        clock(&scrape, "sse_server_time_to_first_event_count", &[]),
        3.0
    );
    let lifetimes = "sse_server_stream_duration_bucket";
    assert_eq!(clock(&scrape, "sse_server_stream_duration_count", &[]), 2.0);
    assert_eq!(clock(&scrape, lifetimes, &[("le", "15")]), 1.0);
    assert_eq!(clock(&scrape, lifetimes, &[("le", "30")]), 2.0);
    assert_eq!(
        clock(&scrape, "sse_server_stream_duration_sum", &[]).round(),
        IDLE_TIMEOUT.as_secs_f64().round()
    );

    drop(third);
    server.abort();
}
