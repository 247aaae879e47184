//! `LogRegistry`: a log per key, made on first use, evicted when idle, bounded by
//! `max_keys`; in process with a paused clock, and over real hyper servers.

use crate::support::event_source::EventSource;
use crate::support::server::{self, over_both_protocols, Proto, Server};

use std::convert::Infallible;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use tower::ServiceBuilder;
use tower_sse::replay::{EventLog, LogRegistry, OnUnknownId, RegistryFull, WhenFull};
use tower_sse::{Event, LastEventId, SseLayer};

const IDLE: Duration = Duration::from_secs(60);

fn registry(max_keys: usize, when_full: WhenFull) -> LogRegistry<String> {
    LogRegistry::builder()
        .idle_eviction(IDLE)
        .max_keys(max_keys)
        .when_full(when_full)
        .build()
}

fn data(text: &str) -> Event {
    Event::new().data(text.to_owned())
}

/// The frames a stream has ready now, as text.
fn ready<S>(stream: &mut S) -> Vec<String>
where
    S: futures_util::Stream<Item = tower_sse::EncodedEvent> + Unpin,
{
    let mut frames = Vec::new();
    while let Some(Some(frame)) = stream.next().now_or_never() {
        frames.push(String::from_utf8(frame.as_bytes().to_vec()).unwrap());
        assert!(frames.len() < 1000, "the stream never waits");
    }
    frames
}

#[tokio::test]
async fn each_key_has_its_own_log_and_ids() {
    let rooms = registry(10, WhenFull::Refuse);
    let a1 = rooms.publish("a", data("a1")).unwrap();
    let b1 = rooms.publish("b", data("b1")).unwrap();
    let a2 = rooms.publish("a", data("a2")).unwrap();
    let b2 = rooms.publish("b", data("b2")).unwrap();
    assert!(a2 > a1 && b2 > b1);

    let after_a1 = LastEventId::new(a1.to_string());
    let mut a = rooms.subscribe("a", Some(&after_a1)).unwrap();
    assert_eq!(ready(&mut a), [format!("id: {a2}\ndata: a2\n\n")]);
    let after_b1 = LastEventId::new(b1.to_string());
    let mut b = rooms.subscribe("b", Some(&after_b1)).unwrap();
    assert_eq!(ready(&mut b), [format!("id: {b2}\ndata: b2\n\n")]);

    // Live: each subscription sees its own key only.
    let a3 = rooms.publish("a", data("a3")).unwrap();
    assert_eq!(ready(&mut a), [format!("id: {a3}\ndata: a3\n\n")]);
    assert!(ready(&mut b).is_empty());

    assert_eq!(rooms.get("a").unwrap().stats().published, 3);
    assert_eq!(rooms.key_stats("b").unwrap().replay.published, 2);
    assert_eq!(rooms.key_stats("b").unwrap().subscribers, 1);
    assert!(rooms.key_stats("c").is_none(), "reading stats makes no key");
    assert!(!rooms.contains_key("c"));
    let stats = rooms.stats();
    assert_eq!(
        (
            stats.keys,
            stats.subscribers,
            stats.created,
            stats.evicted,
            stats.refused
        ),
        (2, 2, 2, 0, 0)
    );
}

#[tokio::test]
async fn keys_get_the_registrys_retention() {
    let rooms = LogRegistry::<String>::builder()
        .log(EventLog::builder().max_events(2))
        .build();
    for n in 0..5 {
        rooms.publish("a", data(&n.to_string())).unwrap();
    }
    let stats = rooms.key_stats("a").unwrap().replay;
    assert_eq!((stats.published, stats.evicted), (5, 3));

    let per_key = LogRegistry::<u32>::builder()
        .make_log(|&key| EventLog::builder().max_events(key as usize).build())
        .build();
    for n in 0..5 {
        per_key.publish(&1, data(&n.to_string())).unwrap();
        per_key.publish(&3, data(&n.to_string())).unwrap();
    }
    assert_eq!(per_key.key_stats(&1).unwrap().replay.evicted, 4);
    assert_eq!(per_key.key_stats(&3).unwrap().replay.evicted, 2);
}

#[tokio::test(start_paused = true)]
async fn a_key_is_evicted_after_the_idle_time_without_publish_or_subscriber() {
    let rooms = registry(10, WhenFull::Refuse);
    rooms.publish("a", data("1")).unwrap();
    let published_at = rooms.key_stats("a").unwrap().last_activity;
    assert_eq!(published_at, tokio::time::Instant::now());

    tokio::time::advance(IDLE - Duration::from_millis(1)).await;
    assert_eq!(rooms.sweep(), 0, "idle for less than the idle time");
    rooms.publish("a", data("2")).unwrap();
    tokio::time::advance(IDLE - Duration::from_millis(1)).await;
    assert_eq!(rooms.sweep(), 0, "the publish counted as activity");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(rooms.sweep(), 1);
    assert!(!rooms.contains_key("a"));
    assert_eq!(rooms.stats().evicted, 1);

    // The key's history went with it: the next use makes a new log.
    rooms.publish("a", data("3")).unwrap();
    assert_eq!(rooms.key_stats("a").unwrap().replay.published, 1);
    assert_eq!(rooms.stats().created, 2);
}

/// A client that saw an event of a key's evicted log, reconnecting to the key's new log,
/// must get the gap event and what the new log holds, not a resume at a like-numbered id.
#[tokio::test(start_paused = true)]
async fn an_id_of_an_evicted_log_is_not_resumed_from_in_the_new_one() {
    let rooms = registry(10, WhenFull::Refuse);
    let mut seen = 0;
    for n in 0..5 {
        seen = rooms.publish("a", data(&format!("old {n}"))).unwrap();
    }
    tokio::time::advance(IDLE).await;
    assert_eq!(rooms.sweep(), 1);
    for n in 0..7 {
        rooms.publish("a", data(&format!("new {n}"))).unwrap();
    }
    let after = LastEventId::new(seen.to_string());
    let frames = ready(&mut rooms.subscribe("a", Some(&after)).unwrap());
    assert!(
        frames[0].contains(
            "event: reset
"
        ),
        "{frames:?}"
    );
    assert_eq!(frames.len(), 1 + 7, "{frames:?}");
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_keeps_its_key_and_leaving_counts_as_activity() {
    let rooms = registry(10, WhenFull::Refuse);
    let subscription = rooms.subscribe("a", None).unwrap();
    assert!(rooms.contains_key("a"), "subscribing made the key");
    tokio::time::advance(IDLE * 10).await;
    assert_eq!(rooms.sweep(), 0, "a subscriber keeps the key");
    assert_eq!(rooms.stats().subscribers, 1);

    drop(subscription);
    assert_eq!(rooms.stats().subscribers, 0);
    tokio::time::advance(IDLE - Duration::from_millis(1)).await;
    assert_eq!(
        rooms.sweep(),
        0,
        "the idle time starts when the last one left"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(rooms.sweep(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_evicts_idle_keys_and_ends_with_the_registry() {
    let rooms = registry(10, WhenFull::Refuse);
    let sweeper = tokio::spawn(rooms.sweeper(Duration::from_secs(10)));
    rooms.publish("a", data("1")).unwrap();
    tokio::time::sleep(IDLE + Duration::from_secs(10)).await;
    assert!(!rooms.contains_key("a"));
    drop(rooms);
    tokio::time::timeout(Duration::from_secs(11), sweeper)
        .await
        .expect("the sweeper ended")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_full_registry_refuses_new_keys_until_one_is_idle() {
    let rooms = registry(2, WhenFull::Refuse);
    rooms.publish("a", data("1")).unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    rooms.publish("b", data("1")).unwrap();

    let full = rooms.publish("c", data("1")).unwrap_err();
    assert_eq!(full.max_keys, 2);
    assert_eq!(full.to_string(), "log registry is full (2 keys)");
    assert!(rooms.subscribe("c", None).is_err());
    assert!(!rooms.contains_key("c"));
    // Keys that exist are never refused.
    rooms.publish("a", data("2")).unwrap();
    rooms.publish("b", data("2")).unwrap();

    // Sweeps run lazily, at most every quarter of the idle time, from a refused new key.
    tokio::time::advance(IDLE + IDLE / 4).await;
    rooms.publish("c", data("1")).unwrap();
    // `c`'s shard was swept; a sweep of all takes the other idle key, if it was elsewhere.
    rooms.sweep();
    let stats = rooms.stats();
    assert_eq!(
        (stats.keys, stats.created, stats.evicted, stats.refused),
        (1, 3, 2, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn evicting_the_idlest_makes_room_but_never_takes_a_subscribed_key() {
    // One shard: the idlest of its shard is the idlest of all.
    let rooms = LogRegistry::<String>::builder()
        .max_keys(2)
        .when_full(WhenFull::EvictIdlest)
        .shards(1)
        .build();
    rooms.publish("old", data("1")).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    rooms.publish("new", data("1")).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;

    rooms.publish("newest", data("1")).unwrap();
    assert!(!rooms.contains_key("old"), "the idlest made room");
    assert!(rooms.contains_key("new"));

    // With a subscriber on every key, nothing can go.
    let _new = rooms.subscribe("new", None).unwrap();
    let _newest = rooms.subscribe("newest", None).unwrap();
    let refused: RegistryFull = rooms.publish("old", data("2")).unwrap_err();
    assert_eq!(refused.max_keys, 2);
    let stats = rooms.stats();
    assert_eq!(
        (stats.keys, stats.subscribers, stats.evicted, stats.refused),
        (2, 2, 1, 1)
    );
}

#[tokio::test]
async fn evicting_the_idlest_looks_in_other_shards_when_its_own_has_none() {
    let rooms = LogRegistry::<u32>::builder()
        .max_keys(8)
        .when_full(WhenFull::EvictIdlest)
        .shards(8)
        .build();
    // Every key has a subscriber but one: wherever it is, a new key takes its place.
    let subscriptions: Vec<_> = (0..7)
        .map(|key| rooms.subscribe(&key, None).unwrap())
        .collect();
    rooms.publish(&7, data("1")).unwrap();
    for key in 8..20 {
        rooms.publish(&key, data("1")).unwrap();
        assert!(!rooms.contains_key(&(key - 1)), "key {key} took its place");
    }
    assert!((0..7).all(|key| rooms.contains_key(&key)));
    drop(subscriptions);
}

#[tokio::test]
async fn response_answers_200_204_and_503() {
    let rooms = LogRegistry::<String>::builder()
        .log(EventLog::builder().on_unknown_id(OnUnknownId::NoContent))
        .max_keys(1)
        .build();
    let ok = rooms.response("a", None);
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.body().is_some());
    let unknown = LastEventId::new("no such id");
    let refused = rooms.response("a", Some(&unknown));
    assert_eq!(refused.status(), StatusCode::NO_CONTENT);
    let full = rooms.response("b", None);
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!full.body().is_some());
    drop((ok, refused));
    assert_eq!(rooms.stats().subscribers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_to_many_keys_from_many_tasks_lose_and_repeat_nothing() {
    const TASKS: usize = 8;
    const KEYS: usize = 500;
    const EVENTS: usize = 20;
    let rooms = LogRegistry::<usize>::builder().max_keys(KEYS).build();
    let mut subscriptions: Vec<_> = (0..KEYS)
        .map(|key| rooms.subscribe(&key, None).unwrap())
        .collect();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let rooms = rooms.clone();
            tokio::spawn(async move {
                for n in 0..EVENTS {
                    // Each task publishes to every key, in a different order.
                    for key in (0..KEYS).map(|k| (k * 7 + task * 13) % KEYS) {
                        let text = format!("{task}:{n}");
                        rooms.publish(&key, Event::new().data(text)).unwrap();
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for (key, subscription) in subscriptions.iter_mut().enumerate() {
        let frames = ready(subscription);
        assert_eq!(frames.len(), TASKS * EVENTS, "key {key}");
        // Each task's events in its order, none twice.
        for task in 0..TASKS {
            let mine: Vec<_> = frames
                .iter()
                .filter_map(|frame| frame.split("data: ").nth(1))
                .filter(|data| data.starts_with(&format!("{task}:")))
                .map(|data| data.trim_end().to_owned())
                .collect();
            let expected: Vec<_> = (0..EVENTS).map(|n| format!("{task}:{n}")).collect();
            assert_eq!(mine, expected, "key {key}");
        }
    }
    assert_eq!(rooms.stats().keys, KEYS as u64);
}

/// Serves `GET /chat/{room}` from `rooms`.
async fn serve(rooms: LogRegistry<String>) -> Server {
    let service =
        ServiceBuilder::new()
            .layer(SseLayer::new())
            .service_fn(move |req: Request<Incoming>| {
                let room = req.uri().path().trim_start_matches("/chat/").to_owned();
                let response = rooms.response(&room, req.extensions().get::<LastEventId>());
                async move { Ok::<_, Infallible>(response) }
            });
    server::serve(service).await
}

/// A client of one room drops its connection while both rooms get events, and reconnects
/// with its last id: it gets exactly its room's missed events, then live ones.
async fn a_room_resumes_across_reconnects_over_http(proto: Proto) {
    let rooms = registry(10, WhenFull::Refuse);
    let server = serve(rooms.clone()).await;
    let mut client = EventSource::open(server.addr(), proto, "/chat/a", None).await;
    assert_eq!(client.status(), StatusCode::OK);
    rooms.publish("a", data("a1")).unwrap();
    rooms.publish("b", data("b1")).unwrap();
    let first = client.next_event().await;
    assert_eq!(first.data, "a1");
    client.close();

    rooms.publish("a", data("a2")).unwrap();
    rooms.publish("b", data("b2")).unwrap();
    rooms.publish("a", data("a3")).unwrap();
    let path = "/chat/a";
    let mut client =
        EventSource::open(server.addr(), proto, path, Some(&first.last_event_id)).await;
    assert_eq!(client.next_event().await.data, "a2");
    assert_eq!(client.next_event().await.data, "a3");
    rooms.publish("b", data("b3")).unwrap();
    rooms.publish("a", data("a4")).unwrap();
    assert_eq!(client.next_event().await.data, "a4");
    assert_eq!(rooms.key_stats("a").unwrap().replay.replayed, 2);
    client.close();
    server.shutdown().await;
}

/// A `GET` of a key the full registry has no room for is `503`, and makes nothing.
async fn a_full_registry_answers_503_over_http(proto: Proto) {
    let rooms = registry(1, WhenFull::Refuse);
    let server = serve(rooms.clone()).await;
    let a = EventSource::open(server.addr(), proto, "/chat/a", None).await;
    assert_eq!(a.status(), StatusCode::OK);
    let b = EventSource::open(server.addr(), proto, "/chat/b", None).await;
    assert_eq!(b.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!rooms.contains_key("b"));
    a.close();
    b.close();
    server.shutdown().await;
}

over_both_protocols!(
    a_room_resumes_across_reconnects_over_http,
    a_full_registry_answers_503_over_http,
);
