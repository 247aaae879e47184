//! The replay log on a real Redis: each test starts its own `redis-server` (see
//! `support/redis.rs`; skipped with a notice when it is not installed, unless
//! `TOWER_SSE_REQUIRE_REDIS=1`), connects one or two nodes to one stream, and checks what
//! clients receive, in process and over HTTP: resume across nodes, one total order under
//! concurrent publishers, retention, the gap events, and Redis faults.
//!
//! The cost per published event against the in-memory log is measured by an ignored test:
//! `cargo test --release --features redis --test replay -- --ignored --nocapture publish_cost`.
#![cfg(feature = "redis")]

use crate::support::event_source;
use crate::support::redis as redis_server;
#[allow(dead_code)]
use crate::support::server;

use std::convert::Infallible;
use std::error::Error as _;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use http::Request;
use hyper::body::Incoming;
use tokio::task::JoinSet;
use tower::ServiceBuilder;
use tower_sse::{
    replay::redis::{RedisLog, RedisLogBuilder, StreamId},
    replay::{EventLog, Subscription},
    EncodedEvent, Event, KeepAlive, LastEventId, SseLayer,
};

use event_source::{read_reconnecting, EventSource};
use redis_server::RedisServer;
use server::{Proto, Server};

/// Upper bound on any single wait, so a broken build fails instead of hanging.
const WAIT: Duration = Duration::from_secs(30);

pub(super) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out after {WAIT:?}"))
}

async fn connect(redis: &RedisServer, builder: RedisLogBuilder) -> RedisLog {
    within("connect", builder.connect(&redis.url()))
        .await
        .expect("connect to redis")
}

pub(super) fn last(id: impl ToString) -> Option<LastEventId> {
    Some(LastEventId::new(id.to_string()))
}

pub(super) fn text(frame: &EncodedEvent) -> &str {
    std::str::from_utf8(frame.as_bytes()).expect("frames are UTF-8")
}

async fn next(subscription: &mut Subscription) -> EncodedEvent {
    within("next frame", subscription.next())
        .await
        .expect("the subscription does not end")
}

/// The frame the log sends for an event published with `data` under `id`.
pub(super) fn frame_of(id: StreamId, data: &str) -> String {
    format!("id: {id}\ndata: {data}\n\n")
}

fn gap_prefix(id: impl std::fmt::Display, reason: &str) -> String {
    format!("id: {id}\nevent: reset\ndata: {{\"reason\":\"{reason}\",\"resume_from\":")
}

async fn publish_n(log: &RedisLog, prefix: &str, n: usize) -> Vec<StreamId> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let event = Event::new().data(format!("{prefix}{i}"));
        ids.push(log.publish(event).await.expect("publish"));
    }
    ids
}

/// Appends 150 entries from long ago to the stream at `key` (ids carry the Redis clock: 1 ms
/// to 150 ms after the epoch), with `body(ms)` as their frames.
fn add_old_entries(connection: &mut redis::Connection, key: &str, body: impl Fn(u64) -> String) {
    for ms in 1..=150 {
        let _: String = redis::cmd("XADD")
            .arg(key)
            .arg(format!("{ms}-0"))
            .arg("f")
            .arg(body(ms))
            .query(connection)
            .unwrap();
    }
}

/// Serves `GET /events` from `log` behind `SseLayer`, with quick keep-alives.
async fn serve(log: RedisLog) -> Server {
    let service = ServiceBuilder::new()
        .layer(
            SseLayer::new()
                .retry(Duration::from_millis(500))
                .keep_alive(KeepAlive::new().interval(Duration::from_millis(100))),
        )
        .service_fn(move |req: Request<Incoming>| {
            let log = log.clone();
            let last_event_id = req.extensions().get::<LastEventId>().cloned();
            async move { Ok::<_, Infallible>(log.response(last_event_id.as_ref()).await) }
        });
    server::serve(service).await
}

#[tokio::test]
async fn publish_frames_once_without_the_id_and_redis_gives_it() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let log = connect(&redis, RedisLog::builder("sse:frames")).await;
    let mut first = log.subscribe(None).await;
    let mut second = log.subscribe(None).await;
    let event = Event::new()
        .id("ignored")
        .unwrap()
        .event("greeting")
        .unwrap()
        .comment("c")
        .data("hi");
    let id = log.publish(event).await.unwrap();

    let (a, b) = (next(&mut first).await, next(&mut second).await);
    assert_eq!(
        text(&a),
        format!("id: {id}\n: c\nevent: greeting\ndata: hi\n\n")
    );
    // The same buffer: the node framed it once (the id line in front) for all its clients.
    assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());

    // What the stream holds is the publishing node's frame, without the id.
    let mut connection = redis.connection();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("sse:frames")
        .arg("-")
        .arg("+")
        .query(&mut connection)
        .unwrap();
    assert_eq!(
        entries,
        [(
            id.to_string(),
            vec![(
                "f".to_owned(),
                ": c\nevent: greeting\ndata: hi\n\n".to_owned()
            )]
        )]
    );

    #[cfg(feature = "json")]
    {
        let id = log.publish_json(&[1, 2]).await.unwrap();
        assert_eq!(text(&next(&mut first).await), frame_of(id, "[1,2]"));
    }
    assert!(log.stats().published >= 1);
    assert_eq!(log.key(), "sse:frames");
}

#[tokio::test]
async fn connecting_to_nothing_is_an_error() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    redis.stop();
    let error = within("connect", RedisLog::builder("sse:none").connect(&url))
        .await
        .unwrap_err();
    assert!(error.source().is_some());
    assert!(RedisLog::builder("sse:none")
        .connect("http://127.0.0.1/")
        .await
        .is_err());

    // A key that holds something else than a stream.
    redis.restart();
    let mut connection = redis.connection();
    let () = redis::cmd("SET")
        .arg("sse:string")
        .arg("x")
        .query(&mut connection)
        .unwrap();
    let result = within(
        "connect",
        RedisLog::builder("sse:string").connect(&redis.url()),
    )
    .await;
    assert!(result.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moves_to_another_node_and_gets_exactly_the_continuation() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = "sse:move";
    let a = connect(&redis, RedisLog::builder(key)).await;
    let b = connect(&redis, RedisLog::builder(key)).await;
    let (server_a, server_b) = (serve(a.clone()).await, serve(b.clone()).await);

    let mut client = EventSource::connect(server_a.addr(), Proto::Http1, None).await;
    // Reads B's window as it fills, so the client below comes to B once B has all ten.
    let mut probe = b.subscribe(None).await;
    let ids = publish_n(&a, "event ", 10).await;
    for _ in 0..10 {
        next(&mut probe).await;
    }
    for (n, id) in ids.iter().enumerate().take(4) {
        let event = client.next_event().await;
        assert_eq!(event.data, format!("event {n}"));
        assert_eq!(event.last_event_id, id.to_string());
    }
    // Whatever else A had sent is dropped unread, as when a browser loses its connection.
    client.close();

    let mut client =
        EventSource::connect(server_b.addr(), Proto::Http2, Some(&ids[3].to_string())).await;
    for (n, id) in ids.iter().enumerate().skip(4) {
        let event = client.next_event().await;
        assert_eq!(
            (event.data, event.last_event_id),
            (format!("event {n}"), id.to_string())
        );
    }
    // Then live, published on either node, with nothing repeated.
    let from_b = b.publish(Event::new().data("from b")).await.unwrap();
    let from_a = a.publish(Event::new().data("from a")).await.unwrap();
    for (data, id) in [("from b", from_b), ("from a", from_a)] {
        let event = client.next_event().await;
        assert_eq!(
            (event.data.as_str(), event.last_event_id),
            (data, id.to_string())
        );
    }
    assert_eq!(b.stats().gap_events, 0);
    assert_eq!(b.stats().replayed, 6);
}

const PER_NODE: usize = 1_000;
const TOTAL: usize = 2 * PER_NODE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_publishing_at_once_give_every_client_one_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = "sse:order";
    let builder = RedisLog::builder(key).max_events(2 * TOTAL);
    let a = connect(&redis, builder.clone()).await;
    let b = connect(&redis, builder).await;
    let (server_a, server_b) = (serve(a.clone()).await, serve(b.clone()).await);
    let nodes = [
        (server_a.addr(), Proto::Http1),
        (server_b.addr(), Proto::Http2),
    ];
    let started = Instant::now();

    let mut readers = JoinSet::new();
    for client in 0..12u64 {
        let (addr, proto) = nodes[(client % 2) as usize];
        // The response head comes after the handler subscribed: from here on, this
        // live-only client sees every event.
        let sse = EventSource::connect(addr, proto, None).await;
        // Clients 8 to 11 drop their connection after about one event in 150, and
        // reconnect to the other node.
        let hop = (client >= 8).then_some(150);
        let nodes = if client % 2 == 0 {
            nodes
        } else {
            [nodes[1], nodes[0]]
        };
        readers.spawn(async move {
            let (seen, hops) = read_reconnecting(&nodes, sse, TOTAL, hop, client).await;
            let seen: Vec<_> = seen
                .into_iter()
                .map(|event| (event.last_event_id, event.data))
                .collect();
            (seen, hops)
        });
    }
    let mut publishers = JoinSet::new();
    for (name, log) in [("a", a.clone()), ("b", b.clone())] {
        publishers.spawn(async move { (name, publish_n(&log, name, PER_NODE).await) });
    }

    let mut published = Vec::new();
    while let Some(result) = within("publishers", publishers.join_next()).await {
        let (name, ids) = result.unwrap();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "{name}: ids increase"
        );
        published.extend(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (*id, format!("{name}{i}"))),
        );
    }
    // The one order: Redis's, which is the order of the ids.
    published.sort();
    let expected: Vec<(String, String)> = published
        .into_iter()
        .map(|(id, data)| (id.to_string(), data))
        .collect();
    assert_eq!(expected.len(), TOTAL);

    let mut hops = 0;
    let mut clients = 0;
    while let Some(result) = within("readers", readers.join_next()).await {
        let (seen, hopped) = result.unwrap();
        assert_eq!(seen.len(), expected.len());
        if let Some(at) = seen.iter().zip(&expected).position(|(a, b)| a != b) {
            panic!(
                "client differs at {at}: {:?} instead of {:?}",
                seen[at], expected[at]
            );
        }
        hops += hopped;
        clients += 1;
    }
    eprintln!(
        "redis two nodes: {TOTAL} events from 2 publishers, {clients} clients, {hops} node hops, \
         elapsed {:.2?}",
        started.elapsed()
    );
    assert!(hops > 0, "some clients moved between nodes");
    for node in [&a, &b] {
        let stats = node.stats();
        assert_eq!(stats.published, TOTAL as u64);
        assert_eq!((stats.gap_events, stats.lag_disconnects), (0, 0));
    }
}

#[tokio::test]
async fn retention_by_count_and_the_gap_events() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = "sse:count";
    let builder = RedisLog::builder(key).max_events(10);
    let a = connect(&redis, builder.clone()).await;
    let ids = publish_n(&a, "event ", 250).await;

    // MAXLEN ~ trims whole internal nodes: about the window, never less.
    let mut connection = redis.connection();
    let len: usize = redis::cmd("XLEN").arg(key).query(&mut connection).unwrap();
    assert!((10..250).contains(&len), "XLEN {len}");

    // A node starting now fills its window from the stream; an older node has its own.
    let b = connect(&redis, builder).await;
    // Let `a`'s reader deliver everything: the newest id resumes with nothing to replay.
    let mut a_live = a.subscribe(last(ids[239]).as_ref()).await;
    for (i, id) in ids.iter().enumerate().skip(240) {
        assert_eq!(
            text(&next(&mut a_live).await),
            frame_of(*id, &format!("event {i}"))
        );
    }

    for node in [&a, &b] {
        // The boundary (the newest event the window has let go) resumes without a gap.
        let mut boundary = node.subscribe(last(ids[239]).as_ref()).await;
        for (i, id) in ids.iter().enumerate().skip(240) {
            assert_eq!(
                text(&next(&mut boundary).await),
                frame_of(*id, &format!("event {i}"))
            );
        }
        assert!(boundary.next().now_or_never().is_none(), "up to date");

        // Older: the gap, carrying the boundary's id, then the window.
        for old in [ids[100].to_string(), "0".to_owned(), "0-0".to_owned()] {
            let mut too_old = node.subscribe(last(&old).as_ref()).await;
            let gap = next(&mut too_old).await;
            assert!(
                text(&gap).starts_with(&gap_prefix(ids[239], "cursor_too_old")),
                "{old}: {gap:?}"
            );
            assert_eq!(
                text(&next(&mut too_old).await),
                frame_of(ids[240], "event 240")
            );
        }

        // Not a Redis id, or one Redis never gave: unknown, as on the in-memory log.
        for unknown in ["abc", "12", "0241-0", "99999999999999-0"] {
            let mut subscription = node.subscribe(last(unknown).as_ref()).await;
            let gap = next(&mut subscription).await;
            assert!(
                text(&gap).starts_with(&gap_prefix(ids[239], "unknown_id")),
                "{unknown}: {gap:?}"
            );
        }
    }

    let newest = a.publish(Event::new().data("new")).await.unwrap();
    let mut after_last = b.subscribe(last(ids[249]).as_ref()).await;
    assert_eq!(text(&next(&mut after_last).await), frame_of(newest, "new"));
    assert_eq!(b.stats().gap_events, 3 + 4);
}

#[tokio::test]
async fn retention_by_age_trims_the_stream_and_the_start_up_window() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = "sse:age";
    // Entries from long ago (ids carry the Redis clock): 1 ms to 150 ms after the epoch.
    let mut connection = redis.connection();
    add_old_entries(&mut connection, key, |_| "data: old\n\n".to_owned());
    let log = connect(
        &redis,
        RedisLog::builder(key).max_age(Duration::from_secs(60)),
    )
    .await;

    // The window took none of them, and knows it missed them.
    let mut boundary = log.subscribe(last("150-0").as_ref()).await;
    assert!(boundary.next().now_or_never().is_none());
    let mut too_old = log.subscribe(last("100-0").as_ref()).await;
    assert!(text(&next(&mut too_old).await).starts_with(&gap_prefix("150-0", "cursor_too_old")));

    // Publishing trims by age (MINID ~, whole internal nodes) on the Redis clock.
    publish_n(&log, "new ", 2).await;
    let len: usize = redis::cmd("XLEN").arg(key).query(&mut connection).unwrap();
    assert!(len < 152, "XLEN {len}");
    let first: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query(&mut connection)
        .unwrap();
    assert_ne!(first[0].0, "1-0", "the oldest entries were trimmed");
    assert_eq!(
        text(&next(&mut boundary).await).lines().nth(1),
        Some("data: new 0")
    );
}

#[tokio::test]
async fn a_node_starting_on_a_trimmed_stream_knows_what_is_gone() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = "sse:trimmed";
    let mut connection = redis.connection();
    add_old_entries(&mut connection, key, |ms| format!("data: {ms}\n\n"));
    let trimmed: u64 = redis::cmd("XTRIM")
        .arg(key)
        .arg("MAXLEN")
        .arg(20)
        .query(&mut connection)
        .unwrap();
    assert_eq!(trimmed, 130);
    // The window could hold everything, but 1-0 to 130-0 are gone.
    let log = connect(&redis, RedisLog::builder(key).max_events(1_000)).await;
    let mut kept = log.subscribe(last("131-0").as_ref()).await;
    assert_eq!(text(&next(&mut kept).await), "id: 132-0\ndata: 132\n\n");
    let mut lost = log.subscribe(last("129-0").as_ref()).await;
    // The gap names the largest id before the oldest kept entry.
    let gap = next(&mut lost).await;
    assert!(
        text(&gap).starts_with(&gap_prefix("130-18446744073709551615", "cursor_too_old")),
        "{gap:?}"
    );
    assert_eq!(text(&next(&mut lost).await), "id: 131-0\ndata: 131\n\n");
    let mut from_gap = log
        .subscribe(last("130-18446744073709551615").as_ref())
        .await;
    assert_eq!(text(&next(&mut from_gap).await), "id: 131-0\ndata: 131\n\n");
    assert_eq!(log.stats().gap_events, 1);
}

#[tokio::test]
async fn entries_trimmed_before_a_node_read_them_give_a_gap() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = "sse:hole";
    let log = connect(&redis, RedisLog::builder(key)).await;
    let mut live = log.subscribe(None).await;
    let first = log.publish(Event::new().data("seen")).await.unwrap();
    assert_eq!(text(&next(&mut live).await), frame_of(first, "seen"));

    // Five entries in one transaction, trimmed to the last one: a reader blocked on the
    // stream is served only after it, so this node never sees the first four.
    let mut pipe = redis::pipe();
    pipe.atomic();
    for n in 0..5 {
        pipe.cmd("XADD")
            .arg(key)
            .arg("MAXLEN")
            .arg(1)
            .arg("*")
            .arg("f")
            .arg(format!("data: lost {n}\n\n"));
    }
    let ids: Vec<String> = pipe.query(&mut redis.connection()).unwrap();

    // The default lag policy ends the stream; the reconnect hears of the gap.
    assert!(within("the end", live.next()).await.is_none());
    assert_eq!(log.stats().lag_disconnects, 1);
    let mut again = log.subscribe(last(first).as_ref()).await;
    let gap = next(&mut again).await;
    // The ids of trimmed entries are gone: the gap names one from after the last lost
    // (`ids[3]`) and before the first kept (`ids[4]`), which is `ids[3]` itself when both
    // came in the same millisecond.
    let gap_id = text(&gap)
        .lines()
        .next()
        .unwrap()
        .strip_prefix("id: ")
        .unwrap();
    let order = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap();
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    };
    assert!(
        order(&ids[3]) <= order(gap_id) && order(gap_id) < order(&ids[4]),
        "{gap:?}"
    );
    assert!(
        text(&gap).starts_with(&gap_prefix(gap_id, "cursor_too_old")),
        "{gap:?}"
    );
    assert_eq!(
        text(&next(&mut again).await),
        format!("id: {}\ndata: lost 4\n\n", ids[4])
    );
}

/// Publishes until Redis takes it, as a caller that got a `PublishError` does.
async fn publish_retrying(log: &RedisLog, data: String) -> StreamId {
    for _ in 0..200 {
        match log.publish(Event::new().data(data.clone())).await {
            Ok(id) => return id,
            Err(error) => assert!(!error.is_event()),
        }
    }
    panic!("redis did not come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_stream_delays_but_loses_nothing() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let log = connect(&redis, RedisLog::builder("sse:restart")).await;
    let server = serve(log.clone()).await;
    let mut client = EventSource::connect(server.addr(), Proto::Http1, None).await;
    let started = Instant::now();

    let mut data: Vec<String> = (0..100).map(|n| format!("event {n}")).collect();
    for n in &data[..50] {
        log.publish(Event::new().data(n.clone())).await.unwrap();
    }
    for n in &data[..50] {
        assert_eq!(&client.next_event().await.data, n);
    }

    // Redis dies. Publishing fails with the typed error, nothing is dropped silently...
    redis.stop();
    let outage = Instant::now();
    let mut failed = Vec::new();
    for n in &data[50..60] {
        let error = within(
            "publish during the outage",
            log.publish(Event::new().data(n.clone())),
        )
        .await
        .expect_err("redis is down");
        assert!(!error.is_event());
        assert!(error.source().is_some(), "the redis error is the cause");
        failed.push(n.clone());
    }
    let failing_for = outage.elapsed();
    // ...and the stream stays open with its keep-alives.
    within("a keep-alive", client.keep_alive()).await;

    // Redis comes back (empty: no persistence); the failed events are published again.
    redis.restart();
    for n in failed {
        publish_retrying(&log, n).await;
    }
    for n in &data[60..] {
        publish_retrying(&log, n.clone()).await;
    }
    for n in data.drain(50..) {
        assert_eq!(client.next_event().await.data, n);
    }
    eprintln!(
        "redis restart: 10 publishes failed in {failing_for:.2?}, {} reader reconnects, \
         {} keep-alives, all 100 events delivered once in {:.2?}",
        log.reconnects(),
        client.keep_alives(),
        started.elapsed()
    );
    assert!(log.reconnects() >= 1);
    assert_eq!(log.stats().gap_events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_reconnect_and_resume_from_the_last_id() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = "sse:kill";
    let a = connect(&redis, RedisLog::builder(key)).await;
    let b = connect(&redis, RedisLog::builder(key)).await;
    let mut on_a = a.subscribe(None).await;
    let mut on_b = b.subscribe(None).await;
    for round in 0..4 {
        let mut ids = Vec::new();
        for n in 0..20 {
            let log = if n % 2 == 0 { &a } else { &b };
            ids.push(publish_retrying(log, format!("{round}.{n}")).await);
        }
        // Both readers delivered everything, so their connections are up again.
        for subscription in [&mut on_a, &mut on_b] {
            for id in &ids {
                let frame = next(subscription).await;
                assert!(
                    text(&frame).starts_with(&format!("id: {id}\n")),
                    "{frame:?}"
                );
            }
            assert!(
                subscription.next().now_or_never().is_none(),
                "nothing repeated"
            );
        }
        if round == 3 {
            break;
        }
        // Every client connection of both nodes, readers and publishers alike.
        let killed: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query(&mut redis.connection())
            .unwrap();
        assert!(killed >= 4, "killed {killed}");
    }
    assert!(a.reconnects() >= 3 && b.reconnects() >= 3);
}

/// Cost per published event, in-memory log against Redis stream, printed as a table.
///
/// `cargo test --release --features redis --test replay -- --ignored --nocapture publish_cost`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run it on purpose"]
async fn publish_cost() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const MEMORY_EVENTS: u32 = 200_000;
    const REDIS_EVENTS: u32 = 20_000;
    const CONCURRENCY: u32 = 32;
    let payload = r#"{"symbol":"ABC","price":123.45,"volume":1000}"#;
    let per_event = |elapsed: Duration, n: u32| elapsed / n;

    let memory = EventLog::builder()
        .max_events(MEMORY_EVENTS as usize)
        .build();
    let started = Instant::now();
    for _ in 0..MEMORY_EVENTS {
        memory.publish(Event::new().data(payload));
    }
    let memory_cost = per_event(started.elapsed(), MEMORY_EVENTS);

    let builder = RedisLog::builder("sse:bench")
        .max_events(2 * REDIS_EVENTS as usize)
        .max_bytes(usize::MAX);
    let log = connect(&redis, builder).await;
    let mut subscription = log.subscribe(None).await;
    let started = Instant::now();
    for _ in 0..REDIS_EVENTS {
        log.publish(Event::new().data(payload)).await.unwrap();
    }
    let sequential = per_event(started.elapsed(), REDIS_EVENTS);
    for _ in 0..REDIS_EVENTS {
        next(&mut subscription).await;
    }

    // Many publishers at once, as many request handlers would: the multiplexed connection
    // pipelines their commands. Timed until this node's subscriber has them all.
    let started = Instant::now();
    let mut publishers = JoinSet::new();
    for _ in 0..CONCURRENCY {
        let log = log.clone();
        publishers.spawn(async move {
            for _ in 0..REDIS_EVENTS / CONCURRENCY {
                log.publish(Event::new().data(payload)).await.unwrap();
            }
        });
    }
    let total = REDIS_EVENTS / CONCURRENCY * CONCURRENCY;
    for _ in 0..total {
        next(&mut subscription).await;
    }
    let concurrent = per_event(started.elapsed(), total);
    while publishers.join_next().await.is_some() {}

    eprintln!("cost per published event ({} B of data):", payload.len());
    eprintln!("  in-memory EventLog::publish              {memory_cost:>10.2?}");
    eprintln!("  RedisLog::publish, one at a time (RTT)   {sequential:>10.2?}");
    eprintln!("  RedisLog::publish, {CONCURRENCY} at once, to delivery {concurrent:>10.2?}");
}
