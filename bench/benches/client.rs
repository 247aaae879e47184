//! tower-sse's `client::EventSource` against reqwest-eventsource and LaunchDarkly's
//! eventsource-client, reading the same events from the same local hyper server in one run.
//!
//! ```sh
//! cargo bench -p tower-sse-bench --bench client
//! SSE_CLIENT_BENCH_EVENTS=10000 cargo bench -p tower-sse-bench --bench client   # quick look
//! ```
//!
//! The server runs in a child process (this binary, started again with
//! `TOWER_SSE_CLIENT_BENCH_SERVE` set), so neither its CPU time on this thread nor its heap
//! counts against a client. It streams prebuilt events in 16 KiB chunks over loopback
//! HTTP/1.1: `/small/N` is N OpenAI-style `chat.completion.chunk` deltas (about 190 bytes
//! each, no id, as LLM APIs send them), `/large/N` N events of 4 KiB data with an `id:`,
//! `/idle` an opening comment and then nothing.
//!
//! - **Events/s and allocations per event**: one sample opens one stream and reads N events
//!   (100,000 small or 10,000 large) on a current-thread Tokio runtime, the stream's
//!   connection included. divan reports the median time, `item/s` (events/s) and, from its
//!   counting allocator, the allocations per sample: divide by N for allocations per event.
//! - **Memory per idle stream**: before the benchmarks, each client opens 1,000 streams to
//!   `/idle` and waits until every one is open; the live heap (a counting allocator around
//!   divan's) grown since before the first, divided by 1,000, is printed. It includes the
//!   connection tasks and their buffers, which is what an idle stream costs.

// divan's attribute macros expand to std items newer than the crate's MSRV; benches are
// dev-only and built with the current toolchain.
#![allow(clippy::incompatible_msrv)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use cap::Cap;
use divan::counter::ItemsCount;
use divan::Bencher;
use eventsource_client::Client as _;
use futures_util::{stream, StreamExt};
use http::{Request, Response, Uri};
use http_body_util::{Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::runtime::Runtime;
use tower_sse::client::{EventSource, Item};

#[global_allocator]
static ALLOC: Cap<divan::AllocProfiler> = Cap::new(divan::AllocProfiler::system(), usize::MAX);

const SERVE: &str = "TOWER_SSE_CLIENT_BENCH_SERVE";
const IDLE_STREAMS: usize = 1_000;
const CHUNK: usize = 16 * 1024;

fn main() {
    if std::env::var_os(SERVE).is_some() {
        serve();
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(SERVE, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the server's address");
    let addr: SocketAddr = line.trim().parse().expect("an address");
    ADDR.set(addr).expect("set once");

    if std::env::var("SSE_CLIENT_BENCH_IDLE").map_or(true, |v| v != "0") {
        idle_memory();
    }
    divan::main();
    stop(child);
}

fn stop(mut child: Child) {
    // Closing its stdin ends the server.
    drop(child.stdin.take());
    let _ = child.wait();
}

static ADDR: OnceLock<SocketAddr> = OnceLock::new();

fn url(path: &str) -> String {
    format!("http://{}{path}", ADDR.get().expect("server started"))
}

/// Events per sample for the small events; a tenth of it for the 4 KiB ones.
fn events() -> usize {
    static EVENTS: OnceLock<usize> = OnceLock::new();
    *EVENTS.get_or_init(|| {
        std::env::var("SSE_CLIENT_BENCH_EVENTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000)
    })
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

// ---------------------------------------------------------------------------------------
// The clients, each reading `n` events from `path`.

type HyperClient = Client<HttpConnector, Empty<Bytes>>;

fn hyper_client() -> &'static HyperClient {
    static CLIENT: OnceLock<HyperClient> = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
}

fn reqwest_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

fn tower_sse_source(path: &str) -> EventSource<HyperClient, Request<Empty<Bytes>>, Empty<Bytes>> {
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = url(path).parse::<Uri>().expect("uri");
    EventSource::new(hyper_client().clone(), request)
}

async fn read_tower_sse(path: &str, n: usize) {
    let mut source = tower_sse_source(path);
    let mut seen = 0;
    while seen < n {
        match source.next().await {
            Some(Ok(Item::Event(event))) => {
                divan::black_box(event);
                seen += 1;
            }
            Some(Ok(_)) => {}
            other => panic!("tower-sse: {other:?}"),
        }
    }
}

async fn read_reqwest_eventsource(path: &str, n: usize) {
    let mut source = reqwest_eventsource::EventSource::new(reqwest_client().get(url(path)))
        .expect("a clonable request");
    let mut seen = 0;
    while seen < n {
        match source.next().await {
            Some(Ok(reqwest_eventsource::Event::Message(event))) => {
                divan::black_box(event);
                seen += 1;
            }
            Some(Ok(reqwest_eventsource::Event::Open)) => {}
            other => panic!("reqwest-eventsource: {other:?}"),
        }
    }
    source.close();
}

fn eventsource_client(path: &str) -> impl eventsource_client::Client {
    eventsource_client::ClientBuilder::for_url(&url(path))
        .expect("url")
        .reconnect(eventsource_client::ReconnectOptions::reconnect(false).build())
        .build_http()
}

async fn read_eventsource_client(path: &str, n: usize) {
    let client = eventsource_client(path);
    let mut source = client.stream();
    let mut seen = 0;
    while seen < n {
        match source.next().await {
            Some(Ok(eventsource_client::SSE::Event(event))) => {
                divan::black_box(event);
                seen += 1;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => panic!("eventsource-client: {error:?}"),
            None => panic!("eventsource-client: ended after {seen}"),
        }
    }
}

fn bench_read<F, Fut>(bencher: Bencher<'_, '_>, path: &'static str, n: usize, read: F)
where
    F: Fn(&'static str, usize) -> Fut + Sync,
    Fut: std::future::Future<Output = ()>,
{
    let path: &'static str = Box::leak(format!("{path}/{n}").into_boxed_str());
    bencher
        .counter(ItemsCount::new(n))
        .bench_local(|| runtime().block_on(read(path, n)));
}

/// OpenAI-style deltas, about 190 bytes each.
mod small {
    use super::*;

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn tower_sse(bencher: Bencher<'_, '_>) {
        bench_read(bencher, "/small", events(), |path, n| {
            read_tower_sse(path, n)
        });
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn reqwest_eventsource(bencher: Bencher<'_, '_>) {
        bench_read(bencher, "/small", events(), |path, n| {
            read_reqwest_eventsource(path, n)
        });
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn eventsource_client(bencher: Bencher<'_, '_>) {
        bench_read(bencher, "/small", events(), |path, n| {
            read_eventsource_client(path, n)
        });
    }
}

/// 4 KiB of data and an id per event.
mod large {
    use super::*;

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn tower_sse(bencher: Bencher<'_, '_>) {
        bench_read(bencher, "/large", events() / 10, |path, n| {
            read_tower_sse(path, n)
        });
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn reqwest_eventsource(bencher: Bencher<'_, '_>) {
        bench_read(bencher, "/large", events() / 10, |path, n| {
            read_reqwest_eventsource(path, n)
        });
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn eventsource_client(bencher: Bencher<'_, '_>) {
        bench_read(bencher, "/large", events() / 10, |path, n| {
            read_eventsource_client(path, n)
        });
    }
}

// ---------------------------------------------------------------------------------------
// Memory per idle stream.

fn idle_memory() {
    println!("live heap per idle stream, {IDLE_STREAMS} streams open to /idle:");
    println!(
        "  (tower-sse's EventSource value over hyper-util's client: {} bytes of it)",
        std::mem::size_of::<EventSource<HyperClient, Request<Empty<Bytes>>, Empty<Bytes>>>()
    );
    let rt = runtime();
    let report = |name: &str, bytes: usize| {
        println!(
            "  {name:<20} {:>8.1} KiB",
            bytes as f64 / IDLE_STREAMS as f64 / 1024.0
        );
    };
    // Warm each client up with one stream, so one-time setup is not counted.
    rt.block_on(async {
        let before = ALLOC.allocated();
        let mut streams = Vec::with_capacity(IDLE_STREAMS);
        for _ in 0..IDLE_STREAMS {
            let mut source = tower_sse_source("/idle");
            while !matches!(source.next().await, Some(Ok(Item::Open(_)))) {}
            streams.push(source);
        }
        settle().await;
        report("tower-sse", ALLOC.allocated().saturating_sub(before));
    });
    settle_blocking(rt);
    rt.block_on(async {
        let before = ALLOC.allocated();
        let mut streams = Vec::with_capacity(IDLE_STREAMS);
        for _ in 0..IDLE_STREAMS {
            let mut source =
                reqwest_eventsource::EventSource::new(reqwest_client().get(url("/idle")))
                    .expect("a clonable request");
            while !matches!(
                source.next().await,
                Some(Ok(reqwest_eventsource::Event::Open))
            ) {}
            streams.push(source);
        }
        settle().await;
        report(
            "reqwest-eventsource",
            ALLOC.allocated().saturating_sub(before),
        );
    });
    settle_blocking(rt);
    rt.block_on(async {
        let before = ALLOC.allocated();
        let client = eventsource_client("/idle");
        let mut streams = Vec::with_capacity(IDLE_STREAMS);
        for _ in 0..IDLE_STREAMS {
            let mut source = client.stream();
            while !matches!(
                source.next().await,
                Some(Ok(eventsource_client::SSE::Connected(_)))
            ) {}
            streams.push(source);
        }
        settle().await;
        report(
            "eventsource-client",
            ALLOC.allocated().saturating_sub(before),
        );
    });
    settle_blocking(rt);
}

/// Lets the connection tasks run until they wait on their sockets.
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Lets dropped connections close before the next client is measured.
fn settle_blocking(rt: &Runtime) {
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
}

// ---------------------------------------------------------------------------------------
// The server, in the child process.

fn serve() {
    // The parent closes our stdin when it is done (or dies): then stop.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", listener.local_addr().expect("address")).expect("stdout");
        stdout.flush().expect("stdout");
        let bodies: Arc<Mutex<HashMap<String, Bytes>>> = Arc::default();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let body = body_for(&bodies, req.uri().path());
                        async move { Ok::<_, Infallible>(body) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}

type ServerBody = StreamBody<stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

fn body_for(bodies: &Mutex<HashMap<String, Bytes>>, path: &str) -> Response<ServerBody> {
    let frames: stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>> = if path == "/idle" {
        stream::once(async { Ok(Frame::data(Bytes::from_static(b":\n"))) })
            .chain(stream::pending())
            .boxed()
    } else {
        let all = bodies
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_insert_with(|| build(path))
            .clone();
        let chunks: Vec<Bytes> = (0..all.len())
            .step_by(CHUNK)
            .map(|start| all.slice(start..(start + CHUNK).min(all.len())))
            .collect();
        stream::iter(chunks)
            .map(|chunk| Ok(Frame::data(chunk)))
            .boxed()
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(StreamBody::new(frames))
        .expect("response")
}

/// The events of `/small/N` or `/large/N`.
fn build(path: &str) -> Bytes {
    let mut parts = path.trim_start_matches('/').split('/');
    let kind = parts.next().unwrap_or_default();
    let n: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut out = String::new();
    match kind {
        "small" => {
            for i in 0..n {
                out.push_str(&format!(
                    "data: {{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1733212800,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" tok{}\"}},\"finish_reason\":null}}]}}\n\n",
                    i % 1000
                ));
            }
        }
        "large" => {
            let data: String = (0..4096).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            for i in 0..n {
                out.push_str(&format!("id: {i}\ndata: {data}\n\n"));
            }
        }
        _ => {}
    }
    Bytes::from(out)
}
