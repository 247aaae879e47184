//! The stream metrics, scraped over HTTP from `examples/observability.rs` after a known
//! sequence: three streams, ten events, one idle timeout, one client gone, one resume.
//!
//! The end reasons and a response's own route, through a recorder local to the test's thread.
//!
//! A binary of its own: the Prometheus recorder is installed once per process.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower::{ServiceBuilder, ServiceExt};
use tower_sse::replay::EventLog;
use tower_sse::{BoxError, Event, Fallible, Shutdown, SseLayer, SseOptions};

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
    // The log's side: ten events in, three of them replayed to the resume, one reader now.
    let replay = |name| {
        let value = sample(&scrape, name, &[("sse_log", "clock")]);
        value.unwrap_or_else(|| panic!("no {name} in:\n{scrape}"))
    };
    assert_eq!(replay("sse_replay_events_published"), 10.0);
    assert_eq!(replay("sse_replay_events_replayed"), 3.0);
    assert_eq!(replay("sse_replay_subscribers"), 1.0);
    assert_eq!(replay("sse_replay_gaps"), 0.0);
    assert_eq!(replay("sse_replay_resumes_rejected"), 0.0);
    let resumes = |outcome| {
        let labels = [("sse_log", "clock"), ("sse_resume_outcome", outcome)];
        sample(&scrape, "sse_replay_resumes", &labels)
            .unwrap_or_else(|| panic!("no resumes {outcome} in:\n{scrape}"))
    };
    assert_eq!(resumes("replayed"), 1.0);
    assert_eq!(resumes("too_old"), 0.0);
    assert_eq!(resumes("unknown_id"), 0.0);
    assert_eq!(replay("sse_replay_window_events"), 10.0);

    drop(third);
    server.abort();
}

type Items = BoxStream<'static, Fallible<Result<Event, BoxError>>>;

fn tick() -> Fallible<Result<Event, BoxError>> {
    Fallible(Ok(Event::new().data("tick")))
}

/// Runs `test` on a paused current-thread runtime with a recorder local to this thread,
/// and returns what it recorded.
fn recorded_while<F>(test: impl FnOnce() -> F) -> Recorded
where
    F: std::future::Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(test()));
    recorded(&snapshotter)
}

/// What was recorded, each metric with its labels; taking it resets the recorder.
type Recorded = Vec<(String, Vec<(String, String)>, DebugValue)>;

fn recorded(snapshotter: &Snapshotter) -> Recorded {
    let snapshot = snapshotter.snapshot().into_vec();
    snapshot
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key.labels();
            let labels = labels.map(|l| (l.key().to_owned(), l.value().to_owned()));
            (key.name().to_owned(), labels.collect(), value)
        })
        .collect()
}

/// The value of `name` with exactly these labels.
fn value<'a>(
    recorded: &'a Recorded,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    recorded.iter().find_map(|(key, key_labels, value)| {
        let same = key_labels.len() == labels.len()
            && key_labels
                .iter()
                .zip(labels)
                .all(|(a, b)| a.0 == b.0 && a.1 == b.1);
        (key == name && same).then_some(value)
    })
}

fn counter(recorded: &Recorded, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
    match value(recorded, name, labels)? {
        DebugValue::Counter(n) => Some(*n),
        _ => None,
    }
}

/// Every end reason but the client's and the idle timeout (the scrape test has those),
/// each on a stream of its own; one response names its own route.
#[test]
fn every_end_reason_is_counted_under_its_route() {
    let recorded = recorded_while(|| async {
        let shutdown = Shutdown::new();
        let service = ServiceBuilder::new()
            .layer(
                SseLayer::new()
                    .metrics_route("feed")
                    .shutdown(shutdown.clone()),
            )
            .service_fn(|req: Request<()>| async move {
                let response: http::Response<Items> = match req.uri().path() {
                    "/ends" => SseOptions::new()
                        .metrics_route("own")
                        .response(stream::iter([tick(), tick()]).boxed()),
                    "/fails" => SseOptions::new()
                        .response(stream::iter([tick(), Fallible(Err("no".into()))]).boxed()),
                    "/short" => SseOptions::new()
                        .max_duration(Duration::from_secs(5))
                        .response(stream::pending().boxed()),
                    _ => SseOptions::new().response(stream::pending().boxed()),
                };
                Ok::<_, std::convert::Infallible>(response)
            });
        let call = |path: &'static str| {
            let service = service.clone();
            async move {
                let request = Request::get(path).body(()).unwrap();
                let response = service.oneshot(request).await.unwrap();
                response.into_body().collect().await.unwrap().to_bytes()
            }
        };
        assert_eq!(call("/ends").await, ":\n\ndata: tick\n\ndata: tick\n\n");
        assert_eq!(call("/fails").await, ":\n\ndata: tick\n\n");
        call("/short").await;
        let trigger = async {
            tokio::task::yield_now().await;
            shutdown.trigger();
        };
        tokio::join!(call("/forever"), trigger);
    });
    let closed = |route, reason| {
        let labels = [("sse.route", route), ("sse.end_reason", reason)];
        counter(&recorded, "sse.server.streams.closed", &labels)
    };
    assert_eq!(closed("own", "source_ended"), Some(1));
    assert_eq!(closed("feed", "source_ended"), Some(0));
    assert_eq!(closed("feed", "item_error"), Some(1));
    assert_eq!(closed("feed", "max_duration"), Some(1));
    assert_eq!(closed("feed", "shutdown"), Some(1));
    let opened = |route| {
        counter(
            &recorded,
            "sse.server.streams.opened",
            &[("sse.route", route)],
        )
    };
    assert_eq!(opened("own"), Some(1));
    assert_eq!(opened("feed"), Some(3));
    let events = |route| counter(&recorded, "sse.server.events", &[("sse.route", route)]);
    assert_eq!(events("own"), Some(2));
    // The failed item is no event.
    assert_eq!(events("feed"), Some(1));
    let active = value(
        &recorded,
        "sse.server.active_streams",
        &[("sse.route", "feed")],
    );
    assert_eq!(active, Some(&DebugValue::Gauge(0.0.into())));
    // The stream cut at 5 s lived 5 s; the others ended at once.
    let lifetimes = value(
        &recorded,
        "sse.server.stream.duration",
        &[("sse.route", "feed")],
    );
    let Some(DebugValue::Histogram(lifetimes)) = lifetimes else {
        panic!("no lifetimes: {lifetimes:?}");
    };
    let mut lifetimes: Vec<f64> = lifetimes.iter().map(|s| s.into_inner()).collect();
    lifetimes.sort_by(f64::total_cmp);
    assert_eq!(lifetimes, [0.0, 0.0, 5.0]);
}

/// The client's counters: a stream that ends and reconnects, one stopped by `204`, and one
/// failed by a line over the decoder's limit.
#[cfg(feature = "client")]
#[test]
fn the_client_counts_connects_reconnects_and_decode_errors() {
    use http::{Response, StatusCode};
    use http_body_util::Full;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tower_sse::client::{Builder, Item};

    let recorded = recorded_while(|| async {
        // First answer: one event, then the body ends; then 204, closed for good.
        let calls = Arc::new(AtomicUsize::new(0));
        let service = tower::service_fn(move |_: Request<Empty<Bytes>>| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut response =
                    Response::new(Full::new(Bytes::from_static(b"id: 1\ndata: one\n\n")));
                if call == 0 {
                    response
                        .headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                } else {
                    *response.status_mut() = StatusCode::NO_CONTENT;
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let request = Request::get("http://upstream/").body(Empty::new()).unwrap();
        let items: Vec<_> = Builder::new().build(service, request).collect().await;
        assert!(
            matches!(items.last(), Some(Ok(Item::Closed(_)))),
            "{items:?}"
        );

        let long_line = tower::service_fn(|_: Request<Empty<Bytes>>| async {
            let mut response = Response::new(Full::new(Bytes::from(format!(
                "data: {}\n\n",
                "x".repeat(64)
            ))));
            response
                .headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            Ok::<_, std::convert::Infallible>(response)
        });
        let request = Request::get("http://upstream/").body(Empty::new()).unwrap();
        let items: Vec<_> = Builder::new()
            .max_line_len(16)
            .build(long_line, request)
            .collect()
            .await;
        assert!(matches!(items.last(), Some(Err(_))), "{items:?}");
    });
    assert_eq!(counter(&recorded, "sse.client.connects", &[]), Some(2));
    let reconnects = [("sse.reconnect_cause", "ended")];
    assert_eq!(
        counter(&recorded, "sse.client.reconnects", &reconnects),
        Some(1)
    );
    assert_eq!(counter(&recorded, "sse.client.decode_errors", &[]), Some(1));
}

/// A registry's counters reach the recorder as they are in its stats.
#[test]
fn a_registry_records_its_keys_and_what_it_refused() {
    use tower_sse::metrics::RegistryMetrics;
    use tower_sse::replay::LogRegistry;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rooms: LogRegistry<String> = LogRegistry::builder().max_keys(2).build();
        for room in ["a", "b", "c"] {
            let _ = rooms.publish(room, Event::new().data("hi"));
        }
        RegistryMetrics::new("rooms").record(&rooms.stats());
    });

    let recorded = recorded(&snapshotter);
    let labels = [("sse.log", "rooms")];
    assert_eq!(
        counter(&recorded, "sse.registry.keys.created", &labels),
        Some(2)
    );
    assert_eq!(
        counter(&recorded, "sse.registry.keys.refused", &labels),
        Some(1)
    );
    assert_eq!(
        value(&recorded, "sse.registry.keys", &labels),
        Some(&DebugValue::Gauge(2.0.into()))
    );
}
