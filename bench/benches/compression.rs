//! What compression costs and saves on three SSE streams, through the real layer body:
//! wire bytes per event, server CPU per event, and heap per stream idle and active.
//!
//! ```sh
//! cargo bench -p tower-sse-bench --bench compression
//! ```
//!
//! It first prints the table docs/deployment.md and BENCHMARKS.md quote, then divan times
//! each stream and codec (ns per event is the median time divided by the event count).
//!
//! - `llm`: token deltas in OpenAI's `chat.completion.chunk` format, one token an event.
//! - `dashboard`: a JSON snapshot of 12 services' metrics (about 1.3 KB), once a second.
//! - `clock`: `examples/clock.rs`'s tick, an id and `{"time":"..."}`.
//!
//! Each event is its own frame, as when events come one at a time (the case compression
//! has to flush for). Heap per stream (the body and the response's header map) is read from
//! a counting allocator (`cap`) around 64 streams at once: "idle" after the opening frame, before any event; "active" between two
//! events after 500 of them; "quiet again" after the keep-alive that follows them; each
//! less the same streams uncompressed (the `none` rows give the whole stream's heap). The zlib rows are a
//! reference for ratio and memory: flate2's raw deflate at levels 1 and 6 with a sync flush
//! per event, outside the body.

// divan's attribute macros expand to std items newer than the crate's MSRV; benches are
// dev-only and built with the current toolchain.
#![allow(clippy::incompatible_msrv)]

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use cap::Cap;
use divan::counter::ItemsCount;
use divan::Bencher;
use http::{Request, Response};
use http_body::Body;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tower::{ServiceBuilder, ServiceExt};
use tower_sse::{Compression, EncodedEvent, Event, EventType, KeepAlive, SseBody, SseLayer};

#[global_allocator]
static ALLOC: Cap<divan::AllocProfiler> = Cap::new(divan::AllocProfiler::system(), usize::MAX);

/// Events per stream in the table, and per timed sample.
const EVENTS: usize = 500;
/// Streams held at once to read heap per stream.
const STREAMS: usize = 64;

fn main() {
    print_table();
    divan::main();
}

// ---------------------------------------------------------------------------------------
// The three streams

const WORDS: &str = "Server-sent events keep one response open and write each event as it \
    happens, so a browser's EventSource sees it at once and reconnects with the last id it \
    saw when the connection drops; compression must flush each event for that to hold, and \
    the window it keeps is the memory every open stream pays for while it is busy";

fn llm() -> Vec<EncodedEvent> {
    WORDS
        .split(' ')
        .filter(|word| !word.is_empty())
        .cycle()
        .take(EVENTS)
        .map(|word| {
            let data = format!(
                "{{\"id\":\"chatcmpl-B7kQ2mZ9xYvR4tLp0aN3cD8eF1gH\",\"object\":\"chat.completion.chunk\",\
                 \"created\":1733212800,\"model\":\"gpt-4o-mini-2024-07-18\",\
                 \"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{{\"index\":0,\
                 \"delta\":{{\"content\":\" {word}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}"
            );
            Event::new().data(data).encode()
        })
        .collect()
}

/// A small deterministic generator, so every run sees the same numbers.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn dashboard() -> Vec<EncodedEvent> {
    let mut rng = Lcg(7);
    (0..EVENTS as u64)
        .map(|seq| {
            let services: Vec<String> = (0..12)
                .map(|n| {
                    format!(
                        "{{\"name\":\"api-{n}\",\"rps\":{},\"p50_ms\":{}.{},\"p99_ms\":{},\
                         \"errors\":{},\"cpu\":0.{},\"mem_mb\":{},\"healthy\":true}}",
                        900 + rng.next(400),
                        3 + rng.next(4),
                        rng.next(10),
                        40 + rng.next(60),
                        rng.next(5),
                        10 + rng.next(80),
                        500 + rng.next(100)
                    )
                })
                .collect();
            let data = format!(
                "{{\"ts\":{},\"region\":\"eu-west-1\",\"services\":[{}]}}",
                1_733_212_800 + seq,
                services.join(",")
            );
            Event::new()
                .id_u64(seq)
                .with_event(EventType::from_static("snapshot"))
                .data(data)
                .encode()
        })
        .collect()
}

fn clock() -> Vec<EncodedEvent> {
    (0..EVENTS as u64)
        .map(|seq| {
            let (m, s) = (seq / 60 % 60, seq % 60);
            let data = format!("{{\"time\":\"2026-12-03T08:{m:02}:{s:02}Z\"}}");
            Event::new().id_u64(seq).data(data).encode()
        })
        .collect()
}

const STREAM_NAMES: [&str; 3] = ["llm", "dashboard", "clock"];

fn events(stream: &str) -> Vec<EncodedEvent> {
    match stream {
        "llm" => llm(),
        "dashboard" => dashboard(),
        _ => clock(),
    }
}

// ---------------------------------------------------------------------------------------
// The codecs

#[derive(Debug, Clone, Copy)]
enum Codec {
    None,
    Gzip { window_bits: u8, hash_bits: u8 },
}

const CODECS: [(&str, Codec); 5] = [
    ("none", Codec::None),
    (
        "gzip w9 h8",
        Codec::Gzip {
            window_bits: 9,
            hash_bits: 8,
        },
    ),
    (
        "gzip w11 h10",
        Codec::Gzip {
            window_bits: 11,
            hash_bits: 10,
        },
    ),
    (
        "gzip w13 h12 (default)",
        Codec::Gzip {
            window_bits: 13,
            hash_bits: 12,
        },
    ),
    (
        "gzip w15 h14",
        Codec::Gzip {
            window_bits: 15,
            hash_bits: 14,
        },
    ),
];

/// Keep-alives 50 ms into a silence, so the table can show a stream gone quiet again.
const KEEP_ALIVE: Duration = Duration::from_millis(50);

fn layer(codec: Codec) -> SseLayer {
    let layer = SseLayer::new().keep_alive(KeepAlive::new().interval(KEEP_ALIVE).jitter(0.0));
    match codec {
        Codec::None => layer,
        Codec::Gzip {
            window_bits,
            hash_bits,
        } => layer.compression(
            Compression::gzip()
                .window_bits(window_bits)
                .hash_bits(hash_bits),
        ),
    }
}

type Source = UnboundedReceiverStream<EncodedEvent>;

/// A body from the layer, fed through a channel, as a server holds it.
struct Stream {
    tx: mpsc::UnboundedSender<EncodedEvent>,
    body: Pin<Box<SseBody<Source>>>,
    // Kept, as hyper keeps a response's header map for the connection's next response.
    _head: http::response::Parts,
}

impl Stream {
    fn open(runtime: &tokio::runtime::Runtime, codec: Codec) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut rx = Some(rx);
        let service =
            ServiceBuilder::new()
                .layer(layer(codec))
                .service_fn(move |_req: Request<()>| {
                    let source = UnboundedReceiverStream::new(rx.take().expect("one request"));
                    std::future::ready(Ok::<_, Infallible>(Response::new(source)))
                });
        let request = Request::get("/")
            .header("accept-encoding", "gzip, deflate, br, zstd")
            .body(())
            .unwrap();
        let response = runtime.block_on(service.oneshot(request)).unwrap();
        let (head, body) = response.into_parts();
        let mut stream = Self {
            tx,
            body: Box::pin(body),
            _head: head,
        };
        stream.next_frame(); // the opening frame
        stream
    }

    /// The frame the body has ready now, in wire bytes.
    fn next_frame(&mut self) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        match self.body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().map_or(0, |data| data.len()),
            _ => 0,
        }
    }

    /// Sends one event and returns its frame's wire bytes.
    fn send(&mut self, event: &EncodedEvent) -> usize {
        self.tx.send(event.clone()).unwrap();
        self.next_frame()
    }
}

// ---------------------------------------------------------------------------------------
// The table

struct Row {
    bytes_per_event: f64,
    ratio: f64,
    ns_per_event: f64,
    idle_bytes: f64,
    active_kib: f64,
    quiet_bytes: f64,
}

fn measure(runtime: &tokio::runtime::Runtime, events: &[EncodedEvent], codec: Codec) -> Row {
    let plain: usize = events.iter().map(|e| e.as_bytes().len()).sum();

    // Wire bytes, and CPU: the best of five runs over the whole stream.
    let mut wire = 0;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut stream = Stream::open(runtime, codec);
        let start = Instant::now();
        wire = events.iter().map(|event| stream.send(event)).sum::<usize>();
        best = best.min(start.elapsed().as_nanos() as f64 / events.len() as f64);
    }

    // Heap: many streams at once, read before and after.
    let before = ALLOC.allocated();
    let mut streams: Vec<Stream> = (0..STREAMS).map(|_| Stream::open(runtime, codec)).collect();
    let idle = ALLOC.allocated().saturating_sub(before);
    for event in events {
        for stream in &mut streams {
            stream.send(event);
        }
    }
    let active = ALLOC.allocated().saturating_sub(before);
    // Quiet again: each stream's keep-alive drops its compressor.
    runtime.block_on(tokio::time::sleep(KEEP_ALIVE * 2));
    let keep_alives: usize = streams
        .iter_mut()
        .map(|s| usize::from(s.next_frame() > 0))
        .sum();
    assert_eq!(keep_alives, STREAMS, "every stream sends its keep-alive");
    let quiet = ALLOC.allocated().saturating_sub(before);
    drop(streams);

    Row {
        bytes_per_event: wire as f64 / events.len() as f64,
        ratio: wire as f64 / plain as f64,
        ns_per_event: best,
        idle_bytes: idle as f64 / STREAMS as f64,
        active_kib: active as f64 / STREAMS as f64 / 1024.0,
        quiet_bytes: quiet as f64 / STREAMS as f64,
    }
}

/// flate2's raw deflate with a sync flush per event: wire bytes and heap per stream.
fn zlib_reference(events: &[EncodedEvent], level: u32) -> (f64, f64, f64) {
    use flate2::{Compress, FlushCompress};
    let before = ALLOC.allocated();
    let mut compressors: Vec<Compress> = (0..8)
        .map(|_| Compress::new(flate2::Compression::new(level), false))
        .collect();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut wire = 0;
    let start = Instant::now();
    for event in events {
        for (n, compress) in compressors.iter_mut().enumerate() {
            out.clear();
            compress
                .compress_vec(event.as_bytes(), &mut out, FlushCompress::Sync)
                .unwrap();
            if n == 0 {
                wire += out.len();
            }
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (events.len() * compressors.len()) as f64;
    let held = ALLOC.allocated().saturating_sub(before) - out.capacity();
    drop(compressors);
    (
        wire as f64 / events.len() as f64,
        ns,
        held as f64 / 8.0 / 1024.0,
    )
}

fn print_table() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    println!("| stream | codec | wire B/event | x plain | ns/event | B/stream idle | KiB/stream active | B/stream quiet again |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for name in STREAM_NAMES {
        let events = events(name);
        let plain =
            events.iter().map(|e| e.as_bytes().len()).sum::<usize>() as f64 / events.len() as f64;
        let base = measure(&runtime, &events, Codec::None);
        for (codec_name, codec) in CODECS {
            let row = measure(&runtime, &events, codec);
            let (idle, active, quiet) = match codec {
                Codec::None => (
                    format!("{:.0}", row.idle_bytes),
                    format!("{:.1}", row.active_kib),
                    format!("{:.0}", row.quiet_bytes),
                ),
                _ => (
                    format!("{:+.0}", row.idle_bytes - base.idle_bytes),
                    format!("{:+.1}", row.active_kib - base.active_kib),
                    format!("{:+.0}", row.quiet_bytes - base.quiet_bytes),
                ),
            };
            println!(
                "| {name} | {codec_name} | {:.1} | {:.2} | {:.0} | {idle} | {active} | {quiet} |",
                row.bytes_per_event, row.ratio, row.ns_per_event
            );
        }
        for level in [1, 6] {
            let (bytes, ns, kib) = zlib_reference(&events, level);
            println!(
                "| {name} | zlib level {level}, window 32 KiB (reference) | {bytes:.1} | {:.2} | {ns:.0} | n/a | {kib:+.1} | n/a |",
                bytes / plain
            );
        }
    }
    println!();
}

// ---------------------------------------------------------------------------------------
// Timed with divan

#[divan::bench(args = STREAM_NAMES, consts = [0, 1, 2, 3, 4], sample_count = 10)]
fn per_event<const CODEC: usize>(bencher: Bencher<'_, '_>, stream: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let events = events(stream);
    let codec = CODECS[CODEC].1;
    bencher
        .counter(ItemsCount::new(events.len()))
        .with_inputs(|| Stream::open(&runtime, codec))
        .bench_local_values(|mut stream| {
            events.iter().map(|event| stream.send(event)).sum::<usize>()
        });
}
