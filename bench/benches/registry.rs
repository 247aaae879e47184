//! Publishing through a `LogRegistry` of 10,000 keys against publishing to one `EventLog`,
//! from one and from two threads; and what a key costs in memory.
//!
//! ```sh
//! cargo bench -p tower-sse-bench --bench registry                        # 1,000,000 events per sample
//! SSE_BENCH_EVENTS=100000 cargo bench -p tower-sse-bench --bench registry # quick look
//! ```
//!
//! Each sample publishes the same small event (`data: ` and 64 bytes) `SSE_BENCH_EVENTS`
//! times in all, split over the threads, which start together; `item/s` is events per
//! second over all threads. The registry cases publish to key `n % 10,000` (each thread
//! its own stride through all keys), whose logs exist before the sample starts; the
//! `EventLog` cases publish to one log. Every log keeps its last 16 events, so 10,000 full
//! windows fit in memory.
//!
//! Before the timings, the memory figures are printed: the live heap (from a counting
//! global allocator, `cap`) that 10,000 logs or keys add, per log or key.

// divan's attribute macros expand to std items newer than the crate's MSRV; benches are
// dev-only and built with the current toolchain.
#![allow(clippy::incompatible_msrv)]

use std::alloc;
use std::sync::Barrier;
use std::thread;

use cap::Cap;
use divan::counter::ItemsCount;
use divan::Bencher;
use tower_sse::replay::{EventLog, EventLogBuilder, LogRegistry};
use tower_sse::Event;

#[global_allocator]
static ALLOC: Cap<alloc::System> = Cap::new(alloc::System, usize::MAX);

const KEYS: usize = 10_000;
/// Each log's window in the timings.
const WINDOW: usize = 16;
/// 64 bytes of text.
const MSG: &str = "The quick brown fox jumps over the lazy dog, then naps a bit....";

fn main() {
    memory();
    divan::main();
}

/// Events per sample: 1,000,000, or `SSE_BENCH_EVENTS`.
fn events() -> usize {
    std::env::var("SSE_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

fn template() -> EventLogBuilder {
    EventLog::builder().max_events(WINDOW)
}

/// Runs `publish(thread, n)` for `events()` values of `n` split over `threads` threads
/// that start together.
fn run<F>(bencher: Bencher<'_, '_>, threads: usize, publish: F)
where
    F: Fn(usize, usize) + Sync,
{
    let total = events();
    bencher.counter(ItemsCount::new(total)).bench(|| {
        let start = Barrier::new(threads);
        thread::scope(|scope| {
            for thread in 0..threads {
                let (start, publish) = (&start, &publish);
                scope.spawn(move || {
                    start.wait();
                    for n in (thread..total).step_by(threads) {
                        publish(thread, n);
                    }
                });
            }
        });
    });
}

#[divan::bench_group(sample_count = 5, sample_size = 1)]
mod publish {
    use super::*;

    #[divan::bench(args = [1, 2])]
    fn registry_10k_keys(bencher: Bencher<'_, '_>, threads: usize) {
        let rooms = LogRegistry::<usize>::builder()
            .log(template())
            .max_keys(KEYS)
            .build();
        for key in 0..KEYS {
            rooms.publish(&key, Event::new().data(MSG)).unwrap();
        }
        run(bencher, threads, |_, n| {
            rooms.publish(&(n % KEYS), Event::new().data(MSG)).unwrap();
        });
    }

    #[divan::bench(args = [1, 2])]
    fn registry_one_key(bencher: Bencher<'_, '_>, threads: usize) {
        let rooms = LogRegistry::<usize>::builder().log(template()).build();
        run(bencher, threads, |_, _| {
            rooms.publish(&0, Event::new().data(MSG)).unwrap();
        });
    }

    #[divan::bench(args = [1, 2])]
    fn one_event_log(bencher: Bencher<'_, '_>, threads: usize) {
        let log = template().build();
        run(bencher, threads, |_, _| {
            log.publish(Event::new().data(MSG));
        });
    }

    /// 10,000 separate logs in a `Vec`, no registry: what the map and lock cost.
    #[divan::bench(args = [1, 2])]
    fn vec_of_10k_logs(bencher: Bencher<'_, '_>, threads: usize) {
        let logs: Vec<EventLog> = (0..KEYS).map(|_| template().build()).collect();
        run(bencher, threads, |_, n| {
            logs[n % KEYS].publish(Event::new().data(MSG));
        });
    }
}

/// The live heap `make` adds, divided by `n`, with what it made still alive.
fn per_item<T>(n: usize, make: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOC.allocated();
    let made = make();
    let after = ALLOC.allocated();
    ((after - before) / n, made)
}

fn memory() {
    const N: usize = 10_000;
    println!("memory, live heap per log or key ({N} of each; 1,000 full windows):");

    let (empty, logs) = per_item(N, || (0..N).map(|_| EventLog::new()).collect::<Vec<_>>());
    println!("  empty EventLog (default retention)               {empty:>7} B");
    drop(logs);

    // A full default window: 1024 events of `data: ` and 64 bytes, each framed with its id.
    let (full, logs) = per_item(1_000, || {
        (0..1_000)
            .map(|_| {
                let log = EventLog::new();
                for _ in 0..1024 {
                    log.publish(Event::new().data(MSG));
                }
                log
            })
            .collect::<Vec<_>>()
    });
    let frame = EventLog::new().publish(Event::new().data(MSG));
    let _ = frame;
    println!("  idle EventLog, full window (1024 x 64-byte data) {full:>7} B");
    drop(logs);

    // A registry key made by a GET that then left: the key (16 bytes of text), the map's
    // share, the key's slot and its empty log.
    let (key, rooms) = per_item(N, || {
        let rooms = LogRegistry::<String>::builder().max_keys(N).build();
        for n in 0..N {
            drop(rooms.subscribe(&format!("{n:016x}"), None).unwrap());
        }
        rooms
    });
    println!("  registry key, idle and empty (String key)        {key:>7} B");
    println!(
        "    of which the registry's own (key - empty log)  {:>7} B",
        key - empty
    );
    drop(rooms);

    let (key_u64, rooms) = per_item(N, || {
        let rooms = LogRegistry::<u64>::builder().max_keys(N).build();
        for n in 0..N as u64 {
            drop(rooms.subscribe(&n, None).unwrap());
        }
        rooms
    });
    println!("  registry key, idle and empty (u64 key)           {key_u64:>7} B");
    drop(rooms);
}
