//! Encoding throughput of tower-sse's body against axum's `Sse` and actix-web-lab's `sse`,
//! in the same run.
//!
//! ```sh
//! cargo bench --bench encode                        # 1,000,000 events per sample, 5 samples
//! SSE_BENCH_EVENTS=10000 cargo bench --bench encode # quick look
//! ```
//!
//! Every case drains a whole body on a current-thread runtime (`http_body::Body::poll_frame`
//! for tower-sse and axum, actix-web's `MessageBody::poll_next` for actix-web-lab), one
//! sample per body, and reports the median. divan runs the cases of a group one after the
//! other in the same process, so a group's rows share the machine's load. Per sample, divan shows the time,
//! events/s (`item/s`), bytes/s and, from its counting global allocator, the allocations;
//! divide `alloc` by the event count for allocations per event.
//!
//! Divan rather than criterion: its `AllocProfiler` is the counting allocator these numbers
//! need, it takes bounded sample counts (a million events per sample makes criterion's
//! statistics pointless and its default run minutes long), and it builds much faster, which
//! matters as CI builds the benches.

// divan's attribute macros expand to std items newer than the crate's MSRV; benches are
// dev-only and built with the current toolchain.
#![allow(clippy::incompatible_msrv)]

use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use futures_util::stream::{self, Stream, StreamExt};
use http::{Request, Response};
use http_body::Body;
use serde::Serialize;
use tokio::runtime::Runtime;
use tower::{ServiceBuilder, ServiceExt};
use tower_sse::{EncodedEvent, Event, SseLayer};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// The payload of every JSON event: about 110 bytes of JSON.
#[derive(Serialize)]
struct Payload {
    seq: u64,
    ts: &'static str,
    msg: &'static str,
}

const TS: &str = "2026-11-24T12:00:00Z";
/// 64 bytes of text.
const MSG: &str = "The quick brown fox jumps over the lazy dog, then naps a bit....";
/// The same payload as text, for the `Event` text cases.
const TEXT: &str = r#"{"seq":1,"ts":"2026-11-24T12:00:00Z","msg":"The quick brown fox jumps over the lazy dog, then naps a bit...."}"#;

fn payload(seq: u64) -> Payload {
    Payload {
        seq,
        ts: TS,
        msg: MSG,
    }
}

/// Events per sample: 1,000,000, or `SSE_BENCH_EVENTS`.
fn events() -> u64 {
    static EVENTS: OnceLock<u64> = OnceLock::new();
    *EVENTS.get_or_init(|| {
        std::env::var("SSE_BENCH_EVENTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000)
    })
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Polls `body` to its end; returns the bytes it sent.
async fn drain<B>(body: B) -> u64
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut body = pin!(body);
    let mut bytes = 0;
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if let Some(data) = frame.unwrap().data_ref() {
            bytes += data.len() as u64;
        }
    }
    bytes
}

/// tower-sse the way a server runs it: the layer, a `service_fn`, `oneshot`, the body.
async fn tower_sse<St>(items: St) -> u64
where
    St: Stream + Send + 'static,
    St::Item: tower_sse::SseItem,
{
    // `oneshot` calls the service once; the `Option` only satisfies `service_fn`'s `FnMut`.
    let mut items = Some(items);
    let service = ServiceBuilder::new()
        .layer(SseLayer::new())
        .service_fn(move |_: Request<()>| {
            std::future::ready(Ok::<_, Infallible>(Response::new(items.take().unwrap())))
        });
    let response = service.oneshot(Request::new(())).await.unwrap();
    drain(response.into_body()).await
}

/// axum's `Sse` as a handler returns it, turned into its response body.
async fn axum<St, E>(items: St) -> u64
where
    St: Stream<Item = Result<axum::response::sse::Event, E>> + Send + 'static,
    E: Into<axum::BoxError>,
{
    use axum::response::IntoResponse;
    drain(axum::response::Sse::new(items).into_response().into_body()).await
}

/// actix-web-lab's `Sse` built from a stream, drained as actix-web drains a response body.
///
/// `Sse` is itself the `MessageBody`; its `Responder` only boxes it, so draining it directly
/// is its cheapest correct use, as `into_response` is axum's.
async fn actix<St>(items: St) -> u64
where
    St: Stream<Item = actix_web_lab::sse::Event> + 'static,
{
    use actix_web::body::MessageBody;
    let mut body = pin!(actix_web_lab::sse::Sse::from_infallible_stream(items));
    let mut bytes = 0;
    while let Some(chunk) = poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        bytes += chunk.unwrap().len() as u64;
    }
    bytes
}

/// Runs one case: the sample drains a fresh body made by `body` over `events()` events.
fn run<F, Fut>(bencher: Bencher<'_, '_>, body: F)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let rt = runtime();
    let n = events();
    // One untimed pass to learn the byte count, which also warms the allocator.
    let bytes = rt.block_on(body(n));
    bencher
        .counter(ItemsCount::new(n))
        .counter(BytesCount::new(bytes))
        .bench_local(|| rt.block_on(body(n)));
}

/// JSON data, one `id:` per event: the comparison the targets are about.
#[divan::bench_group(sample_count = 5, sample_size = 1)]
mod json_with_id {
    use super::*;

    #[divan::bench]
    fn tower_sse_event(bencher: Bencher<'_, '_>) {
        run(bencher, |n| {
            tower_sse(stream::iter((0..n).map(|seq| {
                Event::new().id_u64(seq).json_data(&payload(seq)).unwrap()
            })))
        });
    }

    /// axum takes ids as text; `itoa` formats them on the stack, its cheapest form.
    #[divan::bench]
    fn axum_event(bencher: Bencher<'_, '_>) {
        run(bencher, |n| {
            axum(stream::iter((0..n).map(|seq| {
                axum::response::sse::Event::default()
                    .id(itoa::Buffer::new().format(seq))
                    .json_data(payload(seq))
            })))
        });
    }

    /// actix-web-lab takes ids as text too (a `ByteString`, copied from `itoa`'s buffer).
    #[divan::bench]
    fn actix_event(bencher: Bencher<'_, '_>) {
        run(bencher, |n| {
            actix(stream::iter((0..n).map(|seq| {
                actix_web_lab::sse::Data::new_json(payload(seq))
                    .unwrap()
                    .id(itoa::Buffer::new().format(seq))
                    .into()
            })))
        });
    }
}

/// Plain JSON data, no id.
#[divan::bench_group(sample_count = 5, sample_size = 1)]
mod json_plain {
    use super::*;

    /// A plain `T: Serialize` item.
    #[divan::bench]
    fn tower_sse_item(bencher: Bencher<'_, '_>) {
        run(bencher, |n| tower_sse(stream::iter((0..n).map(payload))));
    }

    #[divan::bench]
    fn tower_sse_event(bencher: Bencher<'_, '_>) {
        run(bencher, |n| {
            tower_sse(stream::iter(
                (0..n).map(|seq| Event::new().json_data(&payload(seq)).unwrap()),
            ))
        });
    }

    #[divan::bench]
    fn axum_event(bencher: Bencher<'_, '_>) {
        run(bencher, |n| {
            axum(stream::iter((0..n).map(|seq| {
                axum::response::sse::Event::default().json_data(payload(seq))
            })))
        });
    }

    #[divan::bench]
    fn actix_event(bencher: Bencher<'_, '_>) {
        run(bencher, |n| {
            actix(stream::iter((0..n).map(|seq| {
                actix_web_lab::sse::Data::new_json(payload(seq))
                    .unwrap()
                    .into()
            })))
        });
    }
}

/// `Event` items with text data, an id and an event type.
#[divan::bench_group(sample_count = 5, sample_size = 1)]
mod event_text {
    use super::*;

    #[divan::bench]
    fn tower_sse_event(bencher: Bencher<'_, '_>) {
        run(bencher, |n| {
            tower_sse(stream::iter((0..n).map(|seq| {
                Event::new().id_u64(seq).event("tick").unwrap().data(TEXT)
            })))
        });
    }

    #[divan::bench]
    fn axum_event(bencher: Bencher<'_, '_>) {
        run(bencher, |n| {
            axum(stream::iter((0..n).map(|seq| {
                Ok::<_, Infallible>(
                    axum::response::sse::Event::default()
                        .id(itoa::Buffer::new().format(seq))
                        .event("tick")
                        .data(TEXT),
                )
            })))
        });
    }

    /// Static text goes in as `ByteString::from_static`, which copies nothing.
    #[divan::bench]
    fn actix_event(bencher: Bencher<'_, '_>) {
        use bytestring::ByteString;
        run(bencher, |n| {
            actix(stream::iter((0..n).map(|seq| {
                actix_web_lab::sse::Data::new(ByteString::from_static(TEXT))
                    .id(itoa::Buffer::new().format(seq))
                    .event(ByteString::from_static("tick"))
                    .into()
            })))
        });
    }
}

/// Frames encoded once (as `EventLog` keeps them) and sent again, against plain copies of
/// the same bytes.
#[divan::bench_group(sample_count = 5, sample_size = 1)]
mod pre_encoded {
    use super::*;

    /// A window of frames, like a replay log's, cycled through.
    fn frames() -> Vec<EncodedEvent> {
        (0..1024)
            .map(|seq| {
                Event::new()
                    .id_u64(seq)
                    .json_data(&payload(seq))
                    .unwrap()
                    .encode()
            })
            .collect()
    }

    #[divan::bench]
    fn tower_sse_encoded(bencher: Bencher<'_, '_>) {
        let frames = frames();
        run(bencher, |n| {
            let frames = frames.clone();
            tower_sse(stream::iter(0..n).map(move |seq| frames[seq as usize % 1024].clone()))
        });
    }

    /// The floor for a coalescing body: copy each frame into a buffer, cut 32 KiB frames.
    #[divan::bench]
    fn baseline_bytes_copy(bencher: Bencher<'_, '_>) {
        let frames: Vec<Bytes> = frames().into_iter().map(EncodedEvent::into_bytes).collect();
        run(bencher, |n| {
            let frames = frames.clone();
            async move {
                let mut buf = BytesMut::new();
                let mut bytes = 0;
                for seq in 0..n {
                    buf.extend_from_slice(&frames[seq as usize % 1024]);
                    if buf.len() >= 32 * 1024 {
                        bytes += divan::black_box(buf.split().freeze()).len() as u64;
                    }
                }
                bytes + buf.len() as u64
            }
        });
    }

    /// The same, but each frame is first cloned out of the window and dropped after the
    /// copy, as any stream handing out shared frames must: two atomic operations per event.
    #[divan::bench]
    fn baseline_clone_copy(bencher: Bencher<'_, '_>) {
        let frames: Vec<Bytes> = frames().into_iter().map(EncodedEvent::into_bytes).collect();
        run(bencher, |n| {
            let frames = frames.clone();
            async move {
                let mut buf = BytesMut::new();
                let mut bytes = 0;
                for seq in 0..n {
                    let frame = divan::black_box(frames[seq as usize % 1024].clone());
                    buf.extend_from_slice(&frame);
                    drop(frame);
                    if buf.len() >= 32 * 1024 {
                        bytes += divan::black_box(buf.split().freeze()).len() as u64;
                    }
                }
                bytes + buf.len() as u64
            }
        });
    }

    /// The same frames handed over one per body frame, without copying.
    #[divan::bench]
    fn baseline_stream_body(bencher: Bencher<'_, '_>) {
        let frames: Vec<Bytes> = frames().into_iter().map(EncodedEvent::into_bytes).collect();
        run(bencher, |n| {
            let frames = frames.clone();
            drain(http_body_util::StreamBody::new(stream::iter(0..n).map(
                move |seq| {
                    Ok::<_, Infallible>(http_body::Frame::data(frames[seq as usize % 1024].clone()))
                },
            )))
        });
    }
}

/// What the stream metrics (feature `metrics`) cost, side by side in one run: each case
/// once with no recorder installed and once with a Prometheus recorder, as a server that
/// exports them runs.
///
/// ```sh
/// cargo bench -p tower-sse-bench --bench encode --features metrics -- metrics_cost
/// ```
///
/// Without the feature there is no metrics code at all; `no_recorder` is the feature on with
/// nothing to record into (every handle a no-op), the cheapest it gets with the feature on.
#[cfg(feature = "metrics")]
#[divan::bench_group(sample_count = 10, sample_size = 1)]
mod metrics_cost {
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

    use super::*;

    fn recorder() -> PrometheusRecorder {
        PrometheusBuilder::new().build_recorder()
    }

    /// One long stream of JSON events with an `id:`: counted once per 32 KiB frame.
    fn encode_case(n: u64) -> impl std::future::Future<Output = u64> {
        tower_sse(stream::iter((0..n).map(|seq| {
            Event::new().id_u64(seq).json_data(&payload(seq)).unwrap()
        })))
    }

    /// 1,000 streams of `n / 1000` events through one layer: the per-stream work (open,
    /// close, time to first event, lifetime) as well as the per-frame counting.
    async fn burst_case(n: u64) -> u64 {
        const STREAMS: u64 = 1_000;
        let service = ServiceBuilder::new()
            .layer(SseLayer::new().metrics_route("burst"))
            .service_fn(|_: Request<()>| {
                let per_stream = (events() / STREAMS).max(1);
                let items = stream::iter(
                    (0..per_stream)
                        .map(|seq| Event::new().id_u64(seq).json_data(&payload(seq)).unwrap()),
                );
                std::future::ready(Ok::<_, Infallible>(Response::new(items)))
            });
        let mut bytes = 0;
        for _ in 0..STREAMS.min(n) {
            let response = service.clone().oneshot(Request::new(())).await.unwrap();
            bytes += drain(response.into_body()).await;
        }
        bytes
    }

    #[divan::bench]
    fn encode_no_recorder(bencher: Bencher<'_, '_>) {
        run(bencher, encode_case);
    }

    #[divan::bench]
    fn encode_prometheus(bencher: Bencher<'_, '_>) {
        let recorder = recorder();
        run_recorded(bencher, &recorder, encode_case);
    }

    #[divan::bench]
    fn burst_no_recorder(bencher: Bencher<'_, '_>) {
        run(bencher, burst_case);
    }

    #[divan::bench]
    fn burst_prometheus(bencher: Bencher<'_, '_>) {
        let recorder = recorder();
        run_recorded(bencher, &recorder, burst_case);
    }

    /// `run`, with `recorder` as the recorder of every sample.
    fn run_recorded<F, Fut>(bencher: Bencher<'_, '_>, recorder: &PrometheusRecorder, body: F)
    where
        F: Fn(u64) -> Fut,
        Fut: std::future::Future<Output = u64>,
    {
        let rt = runtime();
        let n = events();
        let bytes = metrics::with_local_recorder(recorder, || rt.block_on(body(n)));
        bencher
            .counter(ItemsCount::new(n))
            .counter(BytesCount::new(bytes))
            .bench_local(|| metrics::with_local_recorder(recorder, || rt.block_on(body(n))));
    }
}
