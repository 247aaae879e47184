//! End-to-end benchmark: a tower-sse server and an axum `Sse` server with the same routes,
//! and a load client that reads the raw chunked SSE stream. Run by `scripts/bench-e2e.sh`,
//! which pins the server to one core and the client to the other:
//!
//! ```text
//! e2e server <tower-sse|axum> <port>
//! e2e client <tower-sse|axum> <port> <server-pid> <burst1|burst100|idle|floor|fanout>
//! e2e report <results-file>
//! ```
//!
//! Both servers run a current-thread Tokio runtime and the same hyper HTTP/1.1 settings,
//! behind an axum `Router`; only the SSE side differs. Routes:
//!
//! - `/burst?n=N`: N JSON events with an `id:`, as fast as the connection takes them;
//! - `/idle`: no events, keep-alive comments every 20 s (`IDLE_KEEP_ALIVE`);
//! - `/floor`: the same in both servers, a plain body that never sends anything: what an
//!   open streaming connection costs hyper, Tokio and the router, without any SSE code;
//! - `/fanout`: events published to every client by one source, started by
//!   `/start?events=N&rate=R`; tower-sse serves them from an `EventLog` (framed once per
//!   event), axum from a `tokio::sync::broadcast` channel (framed once per client).
//!
//! Every phase of the client has a deadline, so a run always ends.

use std::convert::Infallible;
use std::future::ready;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event as AxumEvent, KeepAlive as AxumKeepAlive, Sse as AxumSse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, StreamExt};
use http::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::time::{timeout, Instant};
use tokio_stream::wrappers::BroadcastStream;
use tower::ServiceBuilder;
use tower_sse::{Event, EventLog, LastEventId, SseLayer};

const TS: &str = "2026-11-24T12:00:00Z";
/// The keep-alive interval of `/idle` in both servers: long enough that the client can
/// measure a quiet window between two rounds of keep-alives.
const IDLE_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// 64 bytes of text.
const MSG: &str = "The quick brown fox jumps over the lazy dog, then naps a bit....";

/// A burst event's JSON: about 110 bytes.
#[derive(Serialize)]
struct Payload {
    seq: u64,
    ts: &'static str,
    msg: &'static str,
}

/// A fan-out event's JSON: when it was published, in microseconds since the epoch.
#[derive(Serialize, Clone, Copy)]
struct Tick {
    seq: u64,
    ts: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["server", which, port] => server(which, port.parse().expect("port")),
        ["client", which, port, pid, scenario] => client(
            which,
            port.parse().expect("port"),
            pid.parse().expect("pid"),
            scenario,
        ),
        ["report", path] => report(path),
        // `cargo bench` runs every bench target with `--bench`: this one needs two cores
        // pinned apart and minutes, so it only says how to run it.
        _ => eprintln!("e2e: run scripts/bench-e2e.sh (see BENCHMARKS.md)"),
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------------------------------
// Servers

fn server(which: &str, port: u16) {
    let router = match which {
        "tower-sse" => tower_sse_router(),
        "axum" => axum_router(),
        other => panic!("unknown server {other}"),
    };
    current_thread().block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors: the client sees the refusal; keep serving the rest.
                Err(error) => {
                    eprintln!("accept: {error}");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                // Same settings for both servers: hyper's defaults.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Publishes `events` ticks at `rate` per second through `publish`, then the end event.
async fn run_source(events: u64, rate: u64, mut publish: impl FnMut(Option<Tick>)) {
    let start = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    let mut seq = 0;
    // Bounded: the schedule reaches `events` after events / rate seconds.
    while seq < events {
        interval.tick().await;
        let due = (start.elapsed().as_micros() as u64 * rate / 1_000_000).min(events);
        while seq < due {
            publish(Some(Tick {
                seq,
                ts: now_micros(),
            }));
            seq += 1;
        }
    }
    publish(None);
}

fn tower_sse_router() -> Router {
    let log = EventLog::new();
    let burst = ServiceBuilder::new().layer(SseLayer::new()).service_fn(
        |req: Request<axum::body::Body>| {
            let n = param(req.uri(), "n");
            let events = stream::iter(0..n).map(|seq| {
                let payload = Payload {
                    seq,
                    ts: TS,
                    msg: MSG,
                };
                Event::new().id_u64(seq).json_data(&payload).expect("json")
            });
            ready(Ok::<_, Infallible>(Response::new(events)))
        },
    );
    let idle = ServiceBuilder::new()
        .layer(SseLayer::new().keep_alive(tower_sse::KeepAlive::new().interval(IDLE_KEEP_ALIVE)))
        .service_fn(|_: Request<axum::body::Body>| {
            ready(Ok::<_, Infallible>(Response::new(
                stream::pending::<Event>(),
            )))
        });
    let fanout = ServiceBuilder::new().layer(SseLayer::new()).service_fn({
        let log = log.clone();
        move |req: Request<axum::body::Body>| {
            let events = log.subscribe(req.extensions().get::<LastEventId>());
            ready(Ok::<_, Infallible>(Response::new(events)))
        }
    });
    let start = move |uri: Uri| {
        let log = log.clone();
        let (events, rate) = (param(&uri, "events"), param(&uri, "rate"));
        tokio::spawn(run_source(events, rate, move |tick| match tick {
            Some(tick) => {
                log.publish_json(&tick).expect("json");
            }
            None => {
                log.publish(Event::new().event("end").expect("event").data(""));
            }
        }));
        ready("started")
    };
    Router::new()
        .route("/floor", get(floor))
        .route_service("/burst", burst)
        .route_service("/idle", idle)
        .route_service("/fanout", fanout)
        .route("/start", get(start))
}

fn axum_router() -> Router {
    // The capacity matches the EventLog's default window of 1024 events.
    let (tx, _) = broadcast::channel::<Option<Tick>>(1024);
    let burst = |uri: Uri| async move {
        AxumSse::new(stream::iter(0..param(&uri, "n")).map(|seq| {
            let payload = Payload {
                seq,
                ts: TS,
                msg: MSG,
            };
            // axum takes ids as text; `itoa` is the cheapest way to give it one.
            AxumEvent::default()
                .id(itoa::Buffer::new().format(seq))
                .json_data(payload)
        }))
    };
    let idle = || async {
        AxumSse::new(stream::pending::<Result<AxumEvent, Infallible>>())
            .keep_alive(AxumKeepAlive::new().interval(IDLE_KEEP_ALIVE))
    };
    let fanout = |State(tx): State<broadcast::Sender<Option<Tick>>>| async move {
        // What axum users do: a receiver per client, lagged errors skipped, each event
        // framed for each client.
        let events = BroadcastStream::new(tx.subscribe()).filter_map(|msg| {
            ready(msg.ok().map(|tick| {
                match tick {
                    Some(tick) => AxumEvent::default()
                        .id(itoa::Buffer::new().format(tick.seq))
                        .json_data(tick),
                    None => Ok(AxumEvent::default().event("end").data("")),
                }
            }))
        });
        AxumSse::new(events).keep_alive(AxumKeepAlive::default())
    };
    let start = |State(tx): State<broadcast::Sender<Option<Tick>>>, uri: Uri| async move {
        let (events, rate) = (param(&uri, "events"), param(&uri, "rate"));
        tokio::spawn(run_source(events, rate, move |tick| {
            let _ = tx.send(tick);
        }));
        "started"
    };
    Router::new()
        .route("/floor", get(floor))
        .route("/burst", get(burst))
        .route("/idle", get(idle))
        .route("/fanout", get(fanout))
        .route("/start", get(start))
        .with_state(tx)
}

/// A streaming response that never sends a byte of body: the per-connection floor.
async fn floor() -> Response<axum::body::Body> {
    let body = http_body_util::StreamBody::new(stream::pending::<
        Result<http_body::Frame<bytes::Bytes>, Infallible>,
    >());
    let mut response = Response::new(axum::body::Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// The number in query parameter `name`, or 0.
fn param(uri: &Uri, name: &str) -> u64 {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Load client

/// What one connection saw.
#[derive(Default)]
struct Seen {
    events: u64,
    /// Microseconds from publish to read, for fan-out ticks.
    latencies: Vec<u32>,
    /// Whether the end event (fan-out) or the end of the body (burst) arrived.
    complete: bool,
}

/// One SSE response read off a raw socket: the head, then the chunked body, parsed in
/// place into lines. Raw parsing keeps the client cheaper than either server.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes left in the current chunk, and whether its trailing CRLF is still due.
    chunk_left: usize,
    chunk_crlf: bool,
    /// A data line split across chunks or reads.
    line: Vec<u8>,
    /// The current event carries a `data:` line, and is the end event.
    has_data: bool,
    is_end: bool,
    ts: Option<u64>,
}

impl Conn {
    /// Sends `GET path` and reads the response head; `buf_size` is the read buffer.
    async fn open(port: u16, path: &str, buf_size: usize) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut conn = Self {
            stream,
            buf: vec![0; buf_size],
            start: 0,
            end: 0,
            chunk_left: 0,
            chunk_crlf: false,
            line: Vec::new(),
            has_data: false,
            is_end: false,
            ts: None,
        };
        conn.read_head().await?;
        Ok(conn)
    }

    async fn fill(&mut self) -> std::io::Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    async fn read_head(&mut self) -> std::io::Result<()> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                if !pending.starts_with(b"HTTP/1.1 200") {
                    return Err(std::io::Error::other("not 200"));
                }
                self.start += at + 4;
                return Ok(());
            }
            if !self.fill().await? {
                return Err(std::io::Error::other("closed in head"));
            }
        }
    }

    /// Reads until the body ends, the end event arrives or `deadline`.
    async fn read_events(&mut self, seen: &mut Seen, deadline: Instant) -> std::io::Result<()> {
        loop {
            let now = now_micros();
            if self.parse(seen, now)? {
                seen.complete = true;
                return Ok(());
            }
            match timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.fill(),
            )
            .await
            {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Ok(()),
                Ok(Err(error)) => return Err(error),
                Err(_) => return Ok(()),
            }
        }
    }

    /// Parses what is buffered; true at the last chunk or the end event.
    fn parse(&mut self, seen: &mut Seen, now: u64) -> std::io::Result<bool> {
        loop {
            if self.chunk_left > 0 {
                let take = self.chunk_left.min(self.end - self.start);
                if take == 0 {
                    return Ok(false);
                }
                let (from, to) = (self.start, self.start + take);
                self.start = to;
                self.chunk_left -= take;
                // Split borrows: the data is copied out only for a line that straddles.
                let data = std::mem::take(&mut self.buf);
                let done = self.lines(&data[from..to], seen, now);
                self.buf = data;
                if done {
                    return Ok(true);
                }
                continue;
            }
            let pending = &self.buf[self.start..self.end];
            if self.chunk_crlf {
                if pending.len() < 2 {
                    return Ok(false);
                }
                self.start += 2;
                self.chunk_crlf = false;
                continue;
            }
            let Some(at) = memchr::memchr(b'\n', pending) else {
                return Ok(false);
            };
            let size = std::str::from_utf8(&pending[..at])
                .ok()
                .map(|s| s.trim_end_matches('\r'))
                .and_then(|s| usize::from_str_radix(s.split(';').next()?, 16).ok())
                .ok_or_else(|| std::io::Error::other("bad chunk size"))?;
            self.start += at + 1;
            if size == 0 {
                return Ok(true);
            }
            self.chunk_left = size;
            self.chunk_crlf = true;
        }
    }

    /// Splits chunk data into lines; true when the end event is dispatched.
    fn lines(&mut self, mut data: &[u8], seen: &mut Seen, now: u64) -> bool {
        while let Some(at) = memchr::memchr(b'\n', data) {
            let done = if self.line.is_empty() {
                self.line_done(&data[..at], seen, now)
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&data[..at]);
                let done = self.line_done(&line, seen, now);
                line.clear();
                self.line = line;
                done
            };
            if done {
                return true;
            }
            data = &data[at + 1..];
        }
        self.line.extend_from_slice(data);
        false
    }

    fn line_done(&mut self, line: &[u8], seen: &mut Seen, now: u64) -> bool {
        if line.is_empty() {
            // Dispatch: comment-only blocks (opening frame, keep-alive) are not events.
            let is_end = std::mem::take(&mut self.is_end);
            if std::mem::take(&mut self.has_data) {
                if is_end {
                    return true;
                }
                seen.events += 1;
                if let Some(ts) = self.ts.take() {
                    seen.latencies
                        .push(now.saturating_sub(ts).min(u32::MAX as u64) as u32);
                }
            }
            return false;
        }
        if let Some(data) = line.strip_prefix(b"data: ") {
            self.has_data = true;
            self.ts = parse_ts(data);
        } else if line == b"event: end" {
            self.is_end = true;
        }
        false
    }
}

/// The `"ts":` number of a fan-out tick.
fn parse_ts(json: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(json, b"\"ts\":")? + 5;
    let digits = json[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut ts = None;
    for digit in digits {
        ts = Some(ts.unwrap_or(0u64) * 10 + u64::from(digit - b'0'));
    }
    ts
}

/// The server's CPU time in clock ticks (utime + stime) and context switches, summed
/// over its threads.
fn server_usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesized command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = fields
        .get(11)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
    let mut switches = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            switches += status_field(&status, "voluntary_ctxt_switches:")
                + status_field(&status, "nonvoluntary_ctxt_switches:");
        }
    }
    (ticks, switches)
}

fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn server_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status_field(&status, "VmRSS:")
}

fn client(which: &str, port: u16, pid: u32, scenario: &str) {
    let emit =
        |metric: &str, value: f64| println!("RESULT\t{scenario}\t{metric}\t{which}\t{value}");
    current_thread().block_on(async {
        match scenario {
            "burst1" | "burst100" => {
                let (connections, events) = if scenario == "burst1" {
                    (1, 1_000_000)
                } else {
                    (100, 10_000)
                };
                let (server_0, _) = server_usage(pid);
                let (client_0, _) = server_usage(std::process::id());
                let (rate, complete) = burst(port, connections, events).await;
                let (server_1, _) = server_usage(pid);
                let (client_1, _) = server_usage(std::process::id());
                emit("events/s", rate);
                emit("complete", complete);
                emit("server CPU s", (server_1 - server_0) as f64 / 100.0);
                emit("client CPU s", (client_1 - client_0) as f64 / 100.0);
            }
            "idle" => idle(port, pid, "/idle", 10_000, &emit).await,
            "floor" => idle(port, pid, "/floor", 10_000, &emit).await,
            "fanout" => fanout(port, pid, 1_000, 10_000, 1_000, &emit).await,
            other => panic!("unknown scenario {other}"),
        }
    });
}

/// `connections` clients each read `events` events; returns all events per second and
/// the share of connections that saw the whole body.
async fn burst(port: u16, connections: u64, events: u64) -> (f64, f64) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut conn = Conn::open(port, &format!("/burst?n={events}"), 256 * 1024).await?;
                conn.read_events(&mut seen, deadline).await?;
                std::io::Result::Ok(seen)
            })
        })
        .collect();
    let mut total = 0;
    let mut complete = 0;
    for task in tasks {
        if let Ok(Ok(seen)) = task.await {
            total += seen.events;
            complete += u64::from(seen.complete && seen.events == events);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    (total as f64 / elapsed, complete as f64 / connections as f64)
}

/// Opens `n` connections in waves, so the listener's backlog never overflows.
async fn open_many(port: u16, path: &str, n: usize) -> Vec<Conn> {
    let mut conns = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(60);
    while conns.len() < n && Instant::now() < deadline {
        let wave: Vec<_> = (0..(n - conns.len()).min(500))
            .map(|_| {
                let path = path.to_owned();
                tokio::spawn(async move { Conn::open(port, &path, 16 * 1024).await })
            })
            .collect();
        for task in wave {
            match task.await {
                Ok(Ok(conn)) => conns.push(conn),
                Ok(Err(error)) => eprintln!("connect: {error}"),
                Err(error) => eprintln!("connect task: {error}"),
            }
        }
    }
    conns
}

async fn idle(port: u16, pid: u32, path: &str, n: usize, emit: &impl Fn(&str, f64)) {
    let before = server_rss_kib(pid);
    let started = Instant::now();
    let conns = open_many(port, path, n).await;
    let spread = started.elapsed();
    emit("connections", conns.len() as f64);
    emit("connect s", spread.as_secs_f64());
    let per_conn = |rss: u64| rss.saturating_sub(before) as f64 / conns.len().max(1) as f64;
    emit("RSS KiB/conn, open", per_conn(server_rss_kib(pid)));
    if path != "/idle" {
        return;
    }
    // Every connection has now had its first keep-alive, which is when axum's body first
    // sends anything: from here on both servers hold what an idle stream holds for good.
    tokio::time::sleep_until(started + IDLE_KEEP_ALIVE + spread + Duration::from_secs(1)).await;
    emit(
        "RSS KiB/conn, after a keep-alive",
        per_conn(server_rss_kib(pid)),
    );
    // Between two rounds of keep-alives: a server that wakes in here wakes for nothing.
    let window = IDLE_KEEP_ALIVE
        .saturating_sub(spread + Duration::from_secs(2))
        .min(Duration::from_secs(10));
    let (ticks_0, switches_0) = server_usage(pid);
    tokio::time::sleep(window).await;
    let (ticks_1, switches_1) = server_usage(pid);
    emit("quiet window s", window.as_secs_f64());
    emit("CPU ticks in window", (ticks_1 - ticks_0) as f64);
    emit("wake-ups in window", (switches_1 - switches_0) as f64);
    drop(conns);
}

async fn fanout(
    port: u16,
    pid: u32,
    clients: usize,
    events: u64,
    rate: u64,
    emit: &impl Fn(&str, f64),
) {
    let conns = open_many(port, "/fanout", clients).await;
    let (ticks_0, _) = server_usage(pid);
    let (client_0, _) = server_usage(std::process::id());
    let duration = Duration::from_secs(events / rate);
    let deadline = Instant::now() + duration + Duration::from_secs(15);
    let readers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            tokio::spawn(async move {
                let mut seen = Seen {
                    latencies: Vec::with_capacity(events as usize),
                    ..Seen::default()
                };
                let _ = conn.read_events(&mut seen, deadline).await;
                seen
            })
        })
        .collect();
    match Conn::open(port, &format!("/start?events={events}&rate={rate}"), 1024).await {
        Ok(_) => {}
        Err(error) => eprintln!("start: {error}"),
    }
    let mut delivered = 0;
    let mut latencies = Vec::new();
    for reader in readers {
        if let Ok(seen) = reader.await {
            delivered += seen.events;
            latencies.extend_from_slice(&seen.latencies);
        }
    }
    let (ticks_1, _) = server_usage(pid);
    let (client_1, _) = server_usage(std::process::id());
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |&us| f64::from(us) / 1000.0)
    };
    emit(
        "delivered %",
        100.0 * delivered as f64 / (clients as u64 * events) as f64,
    );
    emit("p50 ms", pct(0.50));
    emit("p99 ms", pct(0.99));
    emit("server CPU s", (ticks_1 - ticks_0) as f64 / 100.0);
    emit("client CPU s", (client_1 - client_0) as f64 / 100.0);
}

// ---------------------------------------------------------------------------------------
// Report

/// Prints the median of each metric over the runs in `path`, and tower-sse / axum.
fn report(path: &str) {
    let text = std::fs::read_to_string(path).expect("results");
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut values: std::collections::HashMap<(String, String, String), Vec<f64>> =
        Default::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let ["RESULT", scenario, metric, which, value] = fields.as_slice() else {
            continue;
        };
        let row = (scenario.to_string(), metric.to_string());
        if !rows.contains(&row) {
            rows.push(row);
        }
        if let Ok(value) = value.parse() {
            values
                .entry((scenario.to_string(), metric.to_string(), which.to_string()))
                .or_default()
                .push(value);
        }
    }
    let median = |key: (String, String, String)| {
        let mut v = values.get(&key).cloned().unwrap_or_default();
        v.sort_by(f64::total_cmp);
        let runs = v.len();
        (v.get(runs / 2).copied().unwrap_or(f64::NAN), runs)
    };
    println!("| scenario | metric | tower-sse | axum `Sse` | tower-sse / axum | runs |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (scenario, metric) in rows {
        let (ours, runs) = median((scenario.clone(), metric.clone(), "tower-sse".into()));
        let (theirs, _) = median((scenario.clone(), metric.clone(), "axum".into()));
        println!(
            "| {scenario} | {metric} | {} | {} | {} | {runs} |",
            fmt(ours),
            fmt(theirs),
            if theirs != 0.0 {
                format!("{:.2}", ours / theirs)
            } else {
                "-".into()
            }
        );
    }
}

fn fmt(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
