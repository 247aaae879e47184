//! `RedisLogRegistry` on a real Redis (skipped with a notice when `redis-server` is not
//! installed, unless `TOWER_SSE_REQUIRE_REDIS=1`): two nodes, several topics each on its own
//! stream, one reader connection per node. Resume across nodes per topic, topics that join
//! a blocked read, a Redis restart, the connection count, eviction and the bound.
#![cfg(feature = "redis")]

use crate::support::redis as redis_server;
#[allow(dead_code)]
use crate::support::server;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use tokio::task::JoinSet;
use tower::ServiceBuilder;
use tower_sse::{
    replay::redis::{RedisKeySubscription, RedisLogRegistry, StreamId},
    replay::{EventLog, WhenFull},
    EncodedEvent, Event, KeepAlive, LastEventId, SseLayer,
};

use super::with_redis::{frame_of, last, text, within};
use crate::support::event_source::EventSource;
use redis_server::RedisServer;
use server::{Proto, Server};

/// The reader's `XREAD` blocks for 5 s: a topic that waited for the timeout would take
/// that long. Joining must take a few round trips, well under this.
const PROMPT: Duration = Duration::from_millis(1_000);
const TOPICS: [&str; 4] = ["kitchen", "garden", "attic", "cellar"];

async fn node(redis: &RedisServer, name: &str) -> RedisLogRegistry<String> {
    let builder = RedisLogRegistry::builder("room:")
        .log(EventLog::builder().max_events(10_000))
        .reader_name(name);
    within("connect", builder.connect(&redis.url()))
        .await
        .expect("connect to redis")
}

async fn next(subscription: &mut RedisKeySubscription) -> EncodedEvent {
    within("next frame", subscription.next())
        .await
        .expect("the subscription does not end")
}

async fn subscribe(
    node: &RedisLogRegistry<String>,
    topic: &str,
    id: Option<&LastEventId>,
) -> RedisKeySubscription {
    within("subscribe", node.subscribe(topic, id))
        .await
        .expect("subscribe")
}

/// The names of the clients connected to `redis`, one per connection.
fn client_names(redis: &RedisServer) -> Vec<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.connection())
        .unwrap();
    list.lines()
        .filter_map(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("name="))
                .map(str::to_owned)
        })
        .collect()
}

/// Whether the client named `name` is blocked in `XREAD`, as `CLIENT LIST` says.
fn blocked_in_xread(redis: &RedisServer, name: &str) -> bool {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.connection())
        .unwrap();
    list.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.contains(&format!("name={name}").as_str())
            && fields.contains(&"cmd=xread")
            && fields.iter().any(|field| {
                field
                    .strip_prefix("flags=")
                    .is_some_and(|f| f.contains('b'))
            })
    })
}

/// Waits (bounded) until `name`'s reader is blocked in `XREAD`: a state of another process,
/// so it is polled.
async fn until_blocked(redis: &RedisServer, name: &str) {
    within("the reader blocks", async {
        while !blocked_in_xread(redis, name) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_move_between_nodes_per_topic_with_nothing_lost_or_repeated() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let c = node(&redis, "node-c").await;

    // A client per topic on A, live from the start.
    let mut on_a = Vec::new();
    for topic in TOPICS {
        on_a.push(subscribe(&a, topic, None).await);
    }
    // Ten events per topic, interleaved across topics and published by both nodes.
    let mut ids: Vec<Vec<StreamId>> = vec![Vec::new(); TOPICS.len()];
    for n in 0..10 {
        for (t, topic) in TOPICS.iter().enumerate() {
            let publisher = if (n + t) % 2 == 0 { &a } else { &b };
            let data = format!("{topic} {n}");
            ids[t].push(
                publisher
                    .publish(*topic, Event::new().data(data))
                    .await
                    .unwrap(),
            );
        }
    }
    for (t, topic) in TOPICS.iter().enumerate() {
        // Each client reads four events of its topic, and only of its topic, on A...
        for (n, id) in ids[t].iter().enumerate().take(4) {
            let frame = next(&mut on_a[t]).await;
            assert_eq!(text(&frame), frame_of(*id, &format!("{topic} {n}")));
        }
        // ...and comes back on C, which has never served the topic: its window is filled
        // from the stream before the id resolves, so all six come from it.
        let mut on_c = subscribe(&c, topic, last(ids[t][3]).as_ref()).await;
        for (n, id) in ids[t].iter().enumerate().skip(4) {
            let frame = next(&mut on_c).await;
            assert_eq!(text(&frame), frame_of(*id, &format!("{topic} {n}")));
        }
        assert!(
            on_c.next().now_or_never().is_none(),
            "{topic}: nothing more"
        );
        let stats = c.get(*topic).unwrap().stats();
        assert_eq!((stats.replayed, stats.gap_events), (6, 0), "{topic}");
        // Then live, from either node, with nothing repeated.
        let from_a = a
            .publish(*topic, Event::new().data("live a"))
            .await
            .unwrap();
        let from_b = b
            .publish(*topic, Event::new().data("live b"))
            .await
            .unwrap();
        assert_eq!(text(&next(&mut on_c).await), frame_of(from_a, "live a"));
        assert_eq!(text(&next(&mut on_c).await), frame_of(from_b, "live b"));
        assert!(
            on_c.next().now_or_never().is_none(),
            "{topic}: nothing repeated"
        );
        // B, which published to the topic, resumes the same client the same way.
        let mut on_b = subscribe(&b, topic, last(ids[t][3]).as_ref()).await;
        for (n, id) in ids[t].iter().enumerate().skip(4) {
            let frame = next(&mut on_b).await;
            assert_eq!(text(&frame), frame_of(*id, &format!("{topic} {n}")));
        }
        assert_eq!(text(&next(&mut on_b).await), frame_of(from_a, "live a"));
        assert_eq!(text(&next(&mut on_b).await), frame_of(from_b, "live b"));
        assert!(
            on_b.next().now_or_never().is_none(),
            "{topic}: nothing repeated"
        );
    }
    assert_eq!(a.stats().keys, TOPICS.len() as u64);
    assert_eq!(b.stats().keys, TOPICS.len() as u64);
    assert_eq!(c.stats().keys, TOPICS.len() as u64);
    assert_eq!(c.stats().subscribers, 0, "C's clients were dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_two_nodes_give_each_topic_one_order_everywhere() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const PER_NODE: usize = 150;
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let mut readers = JoinSet::new();
    for topic in TOPICS {
        for (name, registry) in [("a", &a), ("b", &b)] {
            let mut subscription = subscribe(registry, topic, None).await;
            readers.spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..2 * PER_NODE {
                    let frame = next(&mut subscription).await;
                    seen.push(text(&frame).to_owned());
                }
                let more = subscription.next().now_or_never().is_some();
                (topic, name, seen, more)
            });
        }
    }
    let mut publishers = JoinSet::new();
    for topic in TOPICS {
        for (name, registry) in [("a", a.clone()), ("b", b.clone())] {
            publishers.spawn(async move {
                let mut published = Vec::new();
                for n in 0..PER_NODE {
                    let data = format!("{topic} {name}{n}");
                    let id = registry
                        .publish(topic, Event::new().data(&data))
                        .await
                        .unwrap();
                    published.push((id, data));
                }
                (topic, published)
            });
        }
    }
    let mut expected: std::collections::HashMap<&str, Vec<(StreamId, String)>> =
        std::collections::HashMap::new();
    while let Some(result) = within("publishers", publishers.join_next()).await {
        let (topic, published) = result.unwrap();
        expected.entry(topic).or_default().extend(published);
    }
    let mut clients = 0;
    while let Some(result) = within("readers", readers.join_next()).await {
        let (topic, node, seen, more) = result.unwrap();
        let mut order = expected[topic].clone();
        // Redis's order of the topic's stream, which is the order of its ids.
        order.sort();
        let order: Vec<String> = order.iter().map(|(id, data)| frame_of(*id, data)).collect();
        assert_eq!(seen, order, "{topic} on {node}");
        assert!(!more, "{topic} on {node}: nothing repeated");
        clients += 1;
    }
    assert_eq!(clients, 2 * TOPICS.len());
    for registry in [&a, &b] {
        for topic in TOPICS {
            let stats = registry.get(topic).unwrap().stats();
            assert_eq!(stats.published, 2 * PER_NODE as u64);
            assert_eq!((stats.gap_events, stats.lag_disconnects), (0, 0));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_joins_a_blocked_read_is_followed_at_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let mut first = subscribe(&a, "first", None).await;
    let id = b.publish("first", Event::new().data("1")).await.unwrap();
    assert_eq!(text(&next(&mut first).await), frame_of(id, "1"));

    for (round, topic) in ["second", "third", "fourth"].into_iter().enumerate() {
        // A's reader waits in XREAD on the topics it has; a new one must not wait for
        // that read to time out (5 s), neither to resolve ids nor to get events.
        until_blocked(&redis, "node-a").await;
        let history = b.publish(topic, Event::new().data("before")).await.unwrap();
        until_blocked(&redis, "node-a").await;
        let started = Instant::now();
        let mut resumed = subscribe(&a, topic, Some(&LastEventId::new("0-1"))).await;
        let subscribed = started.elapsed();
        assert_eq!(text(&next(&mut resumed).await), frame_of(history, "before"));
        until_blocked(&redis, "node-a").await;
        let started = Instant::now();
        let id = b.publish(topic, Event::new().data("after")).await.unwrap();
        assert_eq!(text(&next(&mut resumed).await), frame_of(id, "after"));
        let delivered = started.elapsed();
        eprintln!(
            "redis keys: topic {} joined a blocked read: subscribed in {subscribed:.2?}, \
             an event from the other node delivered in {delivered:.2?}",
            round + 2
        );
        assert!(subscribed < PROMPT, "subscribe took {subscribed:?}");
        assert!(delivered < PROMPT, "delivery took {delivered:?}");
    }
    // And the first topic is still followed.
    let id = b.publish("first", Event::new().data("2")).await.unwrap();
    assert_eq!(text(&next(&mut first).await), frame_of(id, "2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reader_connection_per_node_for_all_its_topics() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let mut subscriptions = Vec::new();
    for n in 0..50 {
        let topic = format!("topic-{n}");
        subscriptions.push(subscribe(&a, &topic, None).await);
        subscriptions.push(subscribe(&b, &topic, None).await);
        a.publish(&topic, Event::new().data("x")).await.unwrap();
    }
    for subscription in &mut subscriptions {
        next(subscription).await;
    }
    let names = client_names(&redis);
    let count = |name: &str| names.iter().filter(|n| *n == name).count();
    assert_eq!((count("node-a"), count("node-b")), (1, 1), "{names:?}");
    // Each node's other connection publishes; with the test's own, that is all there is.
    assert_eq!(names.len(), 2 * 2 + 1, "{names:?}");
    assert_eq!(a.stats().keys, 50);
    assert_eq!(a.reconnects(), 0);
}

/// Publishes until Redis takes it, as a caller that got a `PublishError` does.
async fn publish_retrying(node: &RedisLogRegistry<String>, topic: &str, data: &str) -> StreamId {
    for _ in 0..200 {
        match node.publish(topic, Event::new().data(data)).await {
            Ok(id) => return id,
            Err(error) => assert!(!error.is_event() && !error.is_full()),
        }
    }
    panic!("redis did not come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_delays_every_topic_but_loses_nothing() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let mut clients = Vec::new();
    for topic in TOPICS {
        clients.push((
            subscribe(&a, topic, None).await,
            subscribe(&b, topic, None).await,
        ));
    }
    for topic in TOPICS {
        for n in 0..5 {
            a.publish(topic, Event::new().data(format!("{topic} {n}")))
                .await
                .unwrap();
        }
    }
    for ((on_a, on_b), topic) in clients.iter_mut().zip(TOPICS) {
        for n in 0..5 {
            for client in [&mut *on_a, &mut *on_b] {
                let frame = next(client).await;
                assert!(text(&frame).ends_with(&format!("data: {topic} {n}\n\n")));
            }
        }
    }

    redis.stop();
    let error = within(
        "publish during the outage",
        a.publish("kitchen", Event::new()),
    )
    .await
    .expect_err("redis is down");
    assert!(!error.is_event() && !error.is_full());
    // A new topic cannot be read while Redis is down: refused, not served half-filled.
    let refused = within("subscribe during the outage", a.subscribe("new", None))
        .await
        .expect_err("redis is down");
    assert!(!refused.is_full());
    redis.restart();

    for topic in TOPICS {
        for n in 5..10 {
            let publisher = if n % 2 == 0 { &a } else { &b };
            publish_retrying(publisher, topic, &format!("{topic} {n}")).await;
        }
    }
    for ((on_a, on_b), topic) in clients.iter_mut().zip(TOPICS) {
        for client in [on_a, on_b] {
            for n in 5..10 {
                let frame = next(client).await;
                assert!(
                    text(&frame).ends_with(&format!("data: {topic} {n}\n\n")),
                    "{topic}: {frame:?}"
                );
            }
            assert!(
                client.next().now_or_never().is_none(),
                "{topic}: nothing repeated"
            );
        }
    }
    assert!(a.reconnects() >= 1 && b.reconnects() >= 1);
    for topic in TOPICS {
        assert_eq!(a.get(topic).unwrap().stats().gap_events, 0);
    }
    // Still one reader per node.
    let names = client_names(&redis);
    let count = |name: &str| names.iter().filter(|n| *n == name).count();
    assert_eq!((count("node-a"), count("node-b")), (1, 1), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_frees_the_node_not_the_history_and_the_bound_refuses() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = within(
        "connect",
        RedisLogRegistry::<String>::builder("room:")
            .idle_eviction(Duration::ZERO)
            .max_keys(2)
            .reader_name("node-a")
            .connect(&redis.url()),
    )
    .await
    .unwrap();
    let first = a.publish("kitchen", Event::new().data("1")).await.unwrap();
    let second = a.publish("kitchen", Event::new().data("2")).await.unwrap();
    // With an idle time of zero, a new key sweeps out every key without a subscriber.
    let garden = subscribe(&a, "garden", None).await;
    assert!(a.get("kitchen").is_none(), "swept");
    let cellar = subscribe(&a, "cellar", None).await;
    assert_eq!(a.len(), 2);
    // Full of keys with subscribers: nothing to evict, a new key is refused.
    let refused = within("publish", a.publish("hall", Event::new()))
        .await
        .unwrap_err();
    assert!(refused.is_full(), "{refused}");
    let refused = within("subscribe", a.subscribe("hall", None))
        .await
        .unwrap_err();
    assert!(refused.is_full(), "{refused}");
    drop(cellar);
    a.publish("hall", Event::new()).await.unwrap();
    assert!(a.get("cellar").is_none() && a.get("hall").is_some());

    // The kitchen's stream stayed in Redis: made again, its window is filled from it, and a
    // client resumes from an id the evicted log gave.
    let mut kitchen = subscribe(&a, "kitchen", last(first).as_ref()).await;
    assert_eq!(text(&next(&mut kitchen).await), frame_of(second, "2"));
    let stats = a.stats();
    assert_eq!(
        (
            stats.keys,
            stats.subscribers,
            stats.created,
            stats.evicted,
            stats.refused
        ),
        (2, 2, 5, 3, 2)
    );
    drop(garden);

    // Every key evicted: each leaves the reader's XREAD, which is not issued again with none.
    until_blocked(&redis, "node-a").await;
    drop(kitchen);
    assert_eq!(a.sweep(), 2);
    assert!(a.is_empty());
    // Within a second: well before the 5 s block would end and let it look unblocked.
    let stopped = tokio::time::timeout(PROMPT, async {
        while blocked_in_xread(&redis, "node-a") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(stopped.is_ok(), "the reader still blocks on evicted keys");
    // And a key made again is followed again.
    let mut kitchen = subscribe(&a, "kitchen", None).await;
    let id = a.publish("kitchen", Event::new().data("3")).await.unwrap();
    assert_eq!(text(&next(&mut kitchen).await), frame_of(id, "3"));
    #[cfg(feature = "json")]
    {
        let id = a.publish_json("kitchen", &[1, 2]).await.unwrap();
        assert_eq!(text(&next(&mut kitchen).await), frame_of(id, "[1,2]"));
    }

    // Evicting the idlest instead of refusing.
    let b = within(
        "connect",
        RedisLogRegistry::<String>::builder("room:")
            .max_keys(1)
            .when_full(WhenFull::EvictIdlest)
            .reader_name("node-b")
            .connect(&redis.url()),
    )
    .await
    .unwrap();
    b.publish("kitchen", Event::new()).await.unwrap();
    b.publish("garden", Event::new()).await.unwrap();
    assert!(b.get("garden").is_some() && b.get("kitchen").is_none());
    let held = subscribe(&b, "garden", None).await;
    assert!(within("publish", b.publish("attic", Event::new()))
        .await
        .unwrap_err()
        .is_full());
    drop(held);
}

/// Serves `GET /rooms/<topic>` from `registry` behind `SseLayer`.
async fn serve(registry: RedisLogRegistry<String>) -> Server {
    let service =
        ServiceBuilder::new()
            .layer(
                SseLayer::new().keep_alive(KeepAlive::new().interval(Duration::from_millis(100))),
            )
            .service_fn(move |req: Request<Incoming>| {
                let registry = registry.clone();
                let topic = req.uri().path().trim_start_matches("/rooms/").to_owned();
                let last_event_id = req.extensions().get::<LastEventId>().cloned();
                async move {
                    Ok::<_, Infallible>(registry.response(&topic, last_event_id.as_ref()).await)
                }
            });
    server::serve(service).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_browser_moves_node_per_topic_and_a_full_node_answers_503() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis, "node-a").await;
    let b = within(
        "connect",
        RedisLogRegistry::<String>::builder("room:")
            .max_keys(TOPICS.len())
            .reader_name("node-b")
            .connect(&redis.url()),
    )
    .await
    .unwrap();
    let (server_a, server_b) = (serve(a.clone()).await, serve(b.clone()).await);
    for topic in TOPICS {
        let path = format!("/rooms/{topic}");
        let mut client = EventSource::open(server_a.addr(), Proto::Http1, &path, None).await;
        assert_eq!(client.status(), StatusCode::OK);
        let ids: Vec<StreamId> = {
            let mut ids = Vec::new();
            for n in 0..6 {
                let data = format!("{topic} {n}");
                ids.push(a.publish(topic, Event::new().data(data)).await.unwrap());
            }
            ids
        };
        for n in 0..3 {
            assert_eq!(client.next_event().await.data, format!("{topic} {n}"));
        }
        client.close();
        let resume = ids[2].to_string();
        let mut client =
            EventSource::open(server_b.addr(), Proto::Http2, &path, Some(&resume)).await;
        assert_eq!(client.status(), StatusCode::OK);
        for (n, id) in ids.iter().enumerate().skip(3) {
            let event = client.next_event().await;
            assert_eq!(
                (event.data, event.last_event_id),
                (format!("{topic} {n}"), id.to_string())
            );
        }
    }
    // B holds its four topics, none idle for the idle time yet: a fifth gets 503.
    let refused = EventSource::open(server_b.addr(), Proto::Http1, "/rooms/hall", None).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b.stats().refused, 1);
}

/// Delivery latency across nodes as the number of keys one reader follows grows: every
/// wake-up re-issues the `XREAD` with all of them.
///
/// `cargo test --release --features redis --test replay -- --ignored --nocapture keys_latency`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run it on purpose"]
async fn keys_latency() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const ROUNDS: u32 = 500;
    let a = within(
        "connect",
        RedisLogRegistry::<String>::builder("room:")
            .max_keys(20_000)
            .reader_name("node-a")
            .connect(&redis.url()),
    )
    .await
    .unwrap();
    let b = node(&redis, "node-b").await;
    let mut held = Vec::new();
    eprintln!("publish on B to delivery on A, {ROUNDS} events one at a time:");
    for keys in [1usize, 100, 1_000, 10_000] {
        let started = Instant::now();
        while held.len() < keys {
            held.push(subscribe(&a, &format!("k{}", held.len()), None).await);
        }
        let joined = started.elapsed();
        let topic = format!("k{}", keys - 1);
        let started = Instant::now();
        for n in 0..ROUNDS {
            b.publish(&topic, Event::new().data(n.to_string()))
                .await
                .unwrap();
            next(held.last_mut().unwrap()).await;
        }
        let per_event = started.elapsed() / ROUNDS;
        eprintln!(
            "  {keys:>6} keys on A's reader: {per_event:>10.2?} per event (keys joined in {joined:.2?})"
        );
    }
    let names = client_names(&redis);
    assert_eq!(names.iter().filter(|n| *n == "node-a").count(), 1);
}
