//! End-to-end benchmark: tower-sse, axum's `Sse` and actix-web-lab's `sse` servers with the
//! same routes, and a load client that reads the raw SSE stream. Run by
//! `scripts/bench-e2e.sh`, which pins the server to one core and the client to the other:
//!
//! ```text
//! e2e server <peer>[/<setup>] <port>
//! e2e client <peer>[/<setup>] <port> <server-pid> <scenario>
//! e2e report <results-file>
//! e2e sizes     # bytes of each setup's connection future, as its task holds it
//! ```
//!
//! Peers: `tower-sse`, `axum` (both behind an axum `Router` on hyper, current-thread Tokio)
//! and `actix-web-lab` (actix-web, one worker). The hyper setups (`servers::Setup`) are
//! `http1` (hyper's defaults, the default), `tuned` (the settings docs/deployment.md
//! recommends), `auto` (hyper-util's `auto::Builder` with its defaults), `auto-tuned` and
//! `h2` (HTTP/2 with prior knowledge, for `h2idle`). Routes, in every peer:
//!
//! - `/burst?n=N`: N JSON events with an `id:`, as fast as the connection takes them;
//! - `/idle`: no events, keep-alive comments every 20 s (`IDLE_KEEP_ALIVE`);
//! - `/floor`: a plain streaming body that never sends anything: what an open streaming
//!   connection costs the server without any SSE code;
//! - `/fanout`: events published to every client by one source, started by
//!   `/start?events=N&rate=R` (tower-sse through an `EventLog`, the peers through a
//!   `tokio::sync::broadcast` channel).
//!
//! Scenarios: `burst1`, `burst100`, `idle`, `floor`, `fanout` (1,000 clients, 1,000
//! events/s), `fanout10k-2` and `fanout10k-10` (10,000 clients, 2 and 10 events/s) and
//! `h2idle` (10,000 HTTP/2 streams over 100 connections).
//!
//! Every phase of the client has a deadline, so a run always ends. A scenario is a function
//! in `scenarios.rs` and one line in `client()`; a peer is a module in `servers/`.

mod client;
mod measure;
mod report;
mod scenarios;
mod servers;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Uri;
use serde::Serialize;

const TS: &str = "2026-11-24T12:00:00Z";
/// The keep-alive interval of `/idle` in every server: long enough that the client can
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

impl Payload {
    fn new(seq: u64) -> Self {
        Self {
            seq,
            ts: TS,
            msg: MSG,
        }
    }
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
        ["server", which, port] => servers::run(which, port.parse().expect("port")),
        ["client", which, port, pid, scenario] => client(
            which,
            port.parse().expect("port"),
            pid.parse().expect("pid"),
            scenario,
        ),
        ["report", path] => report::print(path),
        ["sizes"] => servers::print_sizes(),
        // `cargo bench` runs every bench target with `--bench`: this one needs two cores
        // pinned apart and minutes, so it only says how to run it.
        _ => eprintln!("e2e: run scripts/bench-e2e.sh (see BENCHMARKS.md)"),
    }
}

fn client(which: &str, port: u16, pid: u32, scenario: &str) {
    let emit =
        |metric: &str, value: f64| println!("RESULT\t{scenario}\t{metric}\t{which}\t{value}");
    current_thread().block_on(async {
        match scenario {
            "burst1" => scenarios::burst(port, pid, 1, 1_000_000, &emit).await,
            "burst100" => scenarios::burst(port, pid, 100, 10_000, &emit).await,
            "idle" => scenarios::idle(port, pid, "/idle", 10_000, &emit).await,
            "floor" => scenarios::idle(port, pid, "/floor", 10_000, &emit).await,
            "fanout" => scenarios::fanout(port, pid, 1_000, 10_000, 1_000, &emit).await,
            // Many quiet clients, as notification and dashboard services have: 15 s each.
            "fanout10k-2" => scenarios::fanout(port, pid, 10_000, 30, 2, &emit).await,
            "fanout10k-10" => scenarios::fanout(port, pid, 10_000, 150, 10, &emit).await,
            "h2idle" => scenarios::h2_idle(port, pid, 100, 100, &emit).await,
            other => panic!("unknown scenario {other}"),
        }
    });
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

/// The number in query parameter `name`, or 0.
fn param(uri: &Uri, name: &str) -> u64 {
    query_param(uri.query().unwrap_or_default(), name)
}

fn query_param(query: &str, name: &str) -> u64 {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}
