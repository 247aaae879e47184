//! Decoding throughput of `tower_sse::decode` against eventsource-stream 0.2.3, on the same
//! bytes cut into the same chunks, in the same run.
//!
//! ```sh
//! cargo bench --bench decode --features decode                          # 4 MiB per input
//! SSE_BENCH_DECODE_BYTES=262144 cargo bench --bench decode --features decode # quick look
//! ```
//!
//! Each sample decodes a whole input from a `Stream` of `Bytes` chunks that is always ready
//! (so no runtime is involved), counting the events; divan reports the median time and
//! bytes/s, and from its counting allocator the allocations (divide by the event count,
//! `item`, for allocations per event). Inputs:
//!
//! - `tokens`: a language model's answer as OpenAI-style events (an `id`, a JSON `data`
//!   line of about 100 bytes), the relay case;
//! - `typed_tokens`: the same with an `event:` line, as Anthropic-style streams send;
//! - `multiline`: 4 KiB events of 64 `data:` lines each.
//!
//! Each is cut into chunks of 64 B, 1 KiB and 16 KiB (a small read, a typical TLS record,
//! a large read).

// divan's attribute macros expand to std items newer than the crate's MSRV; benches are
// dev-only and built with the current toolchain.
#![allow(clippy::incompatible_msrv)]

use std::convert::Infallible;
use std::sync::OnceLock;

use bytes::Bytes;
use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use eventsource_stream::Eventsource;
use futures_util::{stream, FutureExt, StreamExt};
use tower_sse::decode::{DecodeStream, Decoded, Decoder};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

const CHUNK_SIZES: [usize; 3] = [64, 1024, 16 * 1024];

/// Bytes per input: 4 MiB, or `SSE_BENCH_DECODE_BYTES`.
fn input_len() -> usize {
    static LEN: OnceLock<usize> = OnceLock::new();
    *LEN.get_or_init(|| {
        std::env::var("SSE_BENCH_DECODE_BYTES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(4 << 20)
    })
}

/// Repeats `event(seq)` until the input is `input_len()` bytes long; returns it and the
/// number of events in it.
fn build(event: impl Fn(u64) -> String) -> (Vec<u8>, u64) {
    let mut input = Vec::with_capacity(input_len() + 8192);
    let mut events = 0;
    while input.len() < input_len() {
        input.extend_from_slice(event(events).as_bytes());
        events += 1;
    }
    (input, events)
}

const WORDS: &[&str] = &[
    " The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];

fn tokens() -> &'static (Vec<u8>, u64) {
    static INPUT: OnceLock<(Vec<u8>, u64)> = OnceLock::new();
    INPUT.get_or_init(|| {
        build(|seq| {
            let word = WORDS[seq as usize % WORDS.len()];
            format!(
                "id: {seq}\ndata: {{\"id\":\"chatcmpl-1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}}}}]}}\n\n"
            )
        })
    })
}

fn typed_tokens() -> &'static (Vec<u8>, u64) {
    static INPUT: OnceLock<(Vec<u8>, u64)> = OnceLock::new();
    INPUT.get_or_init(|| {
        build(|seq| {
            let word = WORDS[seq as usize % WORDS.len()];
            format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{word}\"}}}}\n\n"
            )
        })
    })
}

fn multiline() -> &'static (Vec<u8>, u64) {
    static INPUT: OnceLock<(Vec<u8>, u64)> = OnceLock::new();
    INPUT.get_or_init(|| {
        let line = format!("data: {}\n", "x".repeat(57));
        build(|seq| format!("id: {seq}\n{}\n", line.repeat(64)))
    })
}

fn chunked(input: &[u8], size: usize) -> Vec<Bytes> {
    let input = Bytes::copy_from_slice(input);
    (0..input.len())
        .step_by(size)
        .map(|at| input.slice(at..(at + size).min(input.len())))
        .collect()
}

fn source(chunks: &[Bytes]) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + '_ {
    stream::iter(chunks.iter().cloned().map(Ok))
}

fn tower_sse_stream(chunks: &[Bytes]) -> u64 {
    DecodeStream::new(source(chunks))
        .fold(0, |events, item| async move {
            match item.unwrap() {
                Decoded::Event(event) => {
                    divan::black_box(&event);
                    events + 1
                }
                _ => events,
            }
        })
        .now_or_never()
        .unwrap()
}

/// The sans-I/O core without the `Stream` around it.
fn tower_sse_core(chunks: &[Bytes]) -> u64 {
    let mut decoder = Decoder::new();
    let mut events = 0;
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(item) = decoder.next_item().unwrap() {
            if let Decoded::Event(event) = item {
                divan::black_box(&event);
                events += 1;
            }
        }
    }
    events
}

fn eventsource_stream(chunks: &[Bytes]) -> u64 {
    source(chunks)
        .eventsource()
        .fold(0, |events, event| async move {
            divan::black_box(&event.unwrap());
            events + 1
        })
        .now_or_never()
        .unwrap()
}

fn run(bencher: Bencher<'_, '_>, input: &(Vec<u8>, u64), size: usize, decode: fn(&[Bytes]) -> u64) {
    let (bytes, events) = input;
    let chunks = chunked(bytes, size);
    assert_eq!(decode(&chunks), *events, "every event decoded");
    bencher
        .counter(BytesCount::new(bytes.len()))
        .counter(ItemsCount::new(*events))
        .bench_local(|| decode(&chunks));
}

macro_rules! input_group {
    ($name:ident, $input:ident) => {
        #[divan::bench_group(sample_count = 10, sample_size = 1)]
        mod $name {
            use super::*;

            #[divan::bench(args = CHUNK_SIZES)]
            fn tower_sse(bencher: Bencher<'_, '_>, chunk: usize) {
                run(bencher, $input(), chunk, tower_sse_stream);
            }

            #[divan::bench(args = CHUNK_SIZES)]
            fn tower_sse_core(bencher: Bencher<'_, '_>, chunk: usize) {
                run(bencher, $input(), chunk, super::tower_sse_core);
            }

            #[divan::bench(args = CHUNK_SIZES)]
            fn eventsource_stream(bencher: Bencher<'_, '_>, chunk: usize) {
                run(bencher, $input(), chunk, super::eventsource_stream);
            }
        }
    };
}

input_group!(tokens_json, tokens);
input_group!(typed_tokens_json, typed_tokens);
input_group!(multiline_4k, multiline);
