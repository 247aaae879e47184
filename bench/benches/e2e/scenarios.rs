//! What the client measures: one function per scenario, each bounded by deadlines.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::client::{Conn, Seen};
use crate::{measure, IDLE_KEEP_ALIVE};

/// `connections` clients each read `events` events: all events per second, the share of
/// connections that saw the whole body, and both processes' CPU time.
pub(crate) async fn burst(
    port: u16,
    pid: u32,
    connections: u64,
    events: u64,
    emit: &impl Fn(&str, f64),
) {
    let (server_0, _) = measure::usage(pid);
    let (client_0, _) = measure::usage(std::process::id());
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
    let (server_1, _) = measure::usage(pid);
    let (client_1, _) = measure::usage(std::process::id());
    emit("events/s", total as f64 / elapsed);
    emit("complete", complete as f64 / connections as f64);
    emit("server CPU s", (server_1 - server_0) as f64 / 100.0);
    emit("client CPU s", (client_1 - client_0) as f64 / 100.0);
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

/// `n` idle HTTP/1.1 connections on `path`: the server's RSS per connection, then (on
/// `/idle`) how two rounds of keep-alives spread, the server's CPU time and wake-ups over
/// both, and over a window between them.
pub(crate) async fn idle(port: u16, pid: u32, path: &str, n: usize, emit: &impl Fn(&str, f64)) {
    let before = measure::rss_kib(pid);
    let started = Instant::now();
    let conns = open_many(port, path, n).await;
    let spread = started.elapsed();
    emit("connections", conns.len() as f64);
    emit("connect s", spread.as_secs_f64());
    let streams = conns.len();
    let per_conn = |rss: u64| rss.saturating_sub(before) as f64 / streams.max(1) as f64;
    emit("RSS KiB/conn, open", per_conn(measure::rss_kib(pid)));
    if path != "/idle" {
        return;
    }
    let rounds = Rounds::new(started);
    let end = rounds.end(spread);
    let usage_0 = measure::usage(pid);
    let readers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let rounds = rounds.clone();
            tokio::spawn(async move {
                // What comes within half an interval is the opening frame, not a keep-alive.
                let opened = Instant::now();
                conn.read_arrivals(end, || {
                    if opened.elapsed() >= IDLE_KEEP_ALIVE / 2 {
                        rounds.file();
                    }
                })
                .await;
            })
        })
        .collect();
    // Every connection has now had its first keep-alive, which is when some bodies first
    // send anything: from here on the servers hold what an idle stream holds for good.
    tokio::time::sleep_until(rounds.first_end(spread)).await;
    emit(
        "RSS KiB/conn, after a keep-alive",
        per_conn(measure::rss_kib(pid)),
    );
    // Between two rounds of keep-alives: a server that wakes in here wakes for nothing.
    let window = IDLE_KEEP_ALIVE
        .saturating_sub(spread + Duration::from_secs(2))
        .min(Duration::from_secs(10));
    let (window_ticks_0, window_switches_0) = measure::usage(pid);
    tokio::time::sleep(window).await;
    let (window_ticks_1, window_switches_1) = measure::usage(pid);
    emit("quiet window s", window.as_secs_f64());
    emit(
        "CPU ticks in window",
        (window_ticks_1 - window_ticks_0) as f64,
    );
    emit(
        "wake-ups in window",
        (window_switches_1 - window_switches_0) as f64,
    );
    for reader in readers {
        let _ = reader.await;
    }
    rounds.emit(streams, spread, (pid, usage_0), emit);
}

/// Width of one bucket of the keep-alive arrival histogram.
const BUCKET: Duration = Duration::from_millis(100);

/// When the keep-alives of idle streams arrive, in 100 ms buckets since the first stream
/// was requested, over two rounds: streams opened over `spread` each send their first
/// keep-alive at most one interval after opening, and the next one interval later.
#[derive(Clone)]
struct Rounds {
    started: Instant,
    buckets: Arc<Vec<AtomicU32>>,
}

impl Rounds {
    /// Time enough for the opening phase and two rounds.
    const LONGEST: Duration = Duration::from_secs(3 * IDLE_KEEP_ALIVE.as_secs());

    fn new(started: Instant) -> Self {
        let buckets = (0..=Self::LONGEST.as_millis() / BUCKET.as_millis())
            .map(|_| AtomicU32::new(0))
            .collect();
        Self {
            started,
            buckets: Arc::new(buckets),
        }
    }

    /// After the last stream's first keep-alive, for streams opened over `spread`.
    fn first_end(&self, spread: Duration) -> Instant {
        self.started + IDLE_KEEP_ALIVE + spread + Duration::from_secs(1)
    }

    /// After the last stream's second keep-alive.
    fn end(&self, spread: Duration) -> Instant {
        self.first_end(spread) + IDLE_KEEP_ALIVE
    }

    /// Files a keep-alive that arrived now.
    fn file(&self) {
        let at = self.started.elapsed().as_millis() / BUCKET.as_millis();
        if let Some(bucket) = self.buckets.get(at as usize) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many keep-alives arrived, the fullest bucket as a share of `streams`, how long
    /// the first round took from its first to its last keep-alive, and the server's CPU
    /// time and wake-ups since `usage_0` (read at the start of the rounds).
    fn emit(
        &self,
        streams: usize,
        spread: Duration,
        (pid, usage_0): (u32, (u64, u64)),
        emit: &impl Fn(&str, f64),
    ) {
        let (ticks_1, switches_1) = measure::usage(pid);
        let (ticks_0, switches_0) = usage_0;
        emit(
            "server CPU s, two rounds",
            (ticks_1 - ticks_0) as f64 / 100.0,
        );
        emit(
            "server wake-ups, two rounds",
            (switches_1 - switches_0) as f64,
        );
        let counts: Vec<u32> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        emit(
            "keep-alives in two rounds",
            counts.iter().map(|&c| f64::from(c)).sum(),
        );
        emit(
            "fullest 100 ms, % of streams",
            100.0 * f64::from(counts.iter().copied().max().unwrap_or(0)) / streams.max(1) as f64,
        );
        let first_end = (self.first_end(spread) - self.started).as_millis() / BUCKET.as_millis();
        let first_round = &counts[..=(first_end as usize).min(counts.len() - 1)];
        let round_spread = match (
            first_round.iter().position(|&c| c > 0),
            first_round.iter().rposition(|&c| c > 0),
        ) {
            (Some(first), Some(last)) => (last - first + 1) as f64 * BUCKET.as_secs_f64(),
            _ => 0.0,
        };
        emit("first round spread s", round_spread);
    }
}

/// `clients` connections on `/fanout`, then `events` events published at `rate` per
/// second: the share delivered, latency from publish to read, and both processes' CPU
/// time, also per delivery for the server.
pub(crate) async fn fanout(
    port: u16,
    pid: u32,
    clients: usize,
    events: u64,
    rate: u64,
    emit: &impl Fn(&str, f64),
) {
    let conns = open_many(port, "/fanout", clients).await;
    let (ticks_0, _) = measure::usage(pid);
    let (client_0, _) = measure::usage(std::process::id());
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
    let (ticks_1, _) = measure::usage(pid);
    let (client_1, _) = measure::usage(std::process::id());
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
    let server_cpu = (ticks_1 - ticks_0) as f64 / 100.0;
    emit("server CPU s", server_cpu);
    emit(
        "server CPU us/delivery",
        server_cpu * 1e6 / delivered.max(1) as f64,
    );
    emit("client CPU s", (client_1 - client_0) as f64 / 100.0);
}

/// `connections` HTTP/2 connections (prior knowledge) with `streams` `/idle` streams each,
/// all opened at once as a browser's `EventSource`s reconnecting after a deploy would be:
/// the server's RSS per stream, how two rounds of keep-alives spread, and the server's CPU
/// time and wake-ups from open to the end of the second round.
pub(crate) async fn h2_idle(
    port: u16,
    pid: u32,
    connections: usize,
    streams: usize,
    emit: &impl Fn(&str, f64),
) {
    let before = measure::rss_kib(pid);
    let started = Instant::now();
    let deadline = started + Rounds::LONGEST;
    let rounds = Rounds::new(started);
    let (open_tx, mut open_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut senders = Vec::new();
    for _ in 0..connections {
        let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
            eprintln!("h2 connect failed");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let Ok((sender, conn)) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
            .await
        else {
            eprintln!("h2 handshake failed");
            continue;
        };
        tokio::spawn(conn);
        senders.push(sender);
    }
    for sender in &senders {
        for _ in 0..streams {
            let mut sender = sender.clone();
            let (open_tx, rounds) = (open_tx.clone(), rounds.clone());
            tokio::spawn(async move {
                let request = http::Request::get(format!("http://127.0.0.1:{port}/idle"))
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let Ok(Ok(response)) =
                    tokio::time::timeout_at(deadline, sender.send_request(request)).await
                else {
                    return;
                };
                let _ = open_tx.send(());
                let opened = Instant::now();
                let mut body = response.into_body();
                while let Ok(Some(Ok(frame))) =
                    tokio::time::timeout_at(deadline, body.frame()).await
                {
                    // An opening frame comes at once (tower-sse sends one, axum does not);
                    // a keep-alive comes an interval, or most of one, later.
                    if frame.is_data() && opened.elapsed() >= IDLE_KEEP_ALIVE / 2 {
                        rounds.file();
                    }
                }
            });
        }
    }
    drop(open_tx);
    // Every stream has its response head, or the deadline passed.
    let mut open = 0;
    let want = senders.len() * streams;
    while open < want {
        match tokio::time::timeout_at(started + IDLE_KEEP_ALIVE / 2, open_rx.recv()).await {
            Ok(Some(())) => open += 1,
            _ => break,
        }
    }
    let spread = started.elapsed();
    emit("streams", open as f64);
    emit("open s", spread.as_secs_f64());
    let per_stream = |rss: u64| rss.saturating_sub(before) as f64 / open.max(1) as f64;
    emit("RSS KiB/stream, open", per_stream(measure::rss_kib(pid)));
    let usage_0 = measure::usage(pid);
    tokio::time::sleep_until(rounds.first_end(spread)).await;
    emit(
        "RSS KiB/stream, after a keep-alive",
        per_stream(measure::rss_kib(pid)),
    );
    tokio::time::sleep_until(rounds.end(spread)).await;
    rounds.emit(open, spread, (pid, usage_0), emit);
    drop(senders);
}
