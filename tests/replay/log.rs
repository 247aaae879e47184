//! The replay log in process: resume without loss or duplicate, retention, policies,
//! encode-once fan-out, and a reconnect stress run.

use crate::support::rng;

use std::task::Poll;
use std::time::Duration;

use futures_util::stream::{FusedStream, Stream};
use futures_util::{FutureExt, StreamExt};
use tokio::task::JoinSet;
use tower_sse::{
    replay::{EventLog, OnLag, OnUnknownId, Subscription},
    EncodedEvent, Event, LastEventId,
};

use rng::Rng;

/// The `id:` of a frame the log wrote: it is always the first line.
fn id_of(frame: &EncodedEvent) -> &str {
    let text = std::str::from_utf8(frame.as_bytes()).expect("frames are UTF-8");
    let line = text.lines().next().expect("a frame has lines");
    line.strip_prefix("id: ").expect("the first line is the id")
}

fn seq_of(frame: &EncodedEvent) -> u64 {
    id_of(frame).parse().expect("a numeric id")
}

fn text(frame: &EncodedEvent) -> &str {
    std::str::from_utf8(frame.as_bytes()).expect("frames are UTF-8")
}

fn last(id: impl Into<String>) -> Option<LastEventId> {
    Some(LastEventId::new(id))
}

/// The next frame, which must be ready now.
fn ready(subscription: &mut Subscription) -> Option<EncodedEvent> {
    subscription
        .next()
        .now_or_never()
        .expect("the subscription has a frame ready")
}

fn is_pending(subscription: &mut Subscription) -> bool {
    subscription.next().now_or_never().is_none()
}

/// Every frame ready now, then checks the subscription waits.
fn drain(subscription: &mut Subscription) -> Vec<EncodedEvent> {
    let mut frames = Vec::new();
    while let Some(frame) = subscription.next().now_or_never() {
        frames.push(frame.expect("the subscription does not end"));
        assert!(frames.len() <= 1_000_000, "runaway subscription");
    }
    frames
}

fn seqs(frames: &[EncodedEvent]) -> Vec<u64> {
    frames.iter().map(seq_of).collect()
}

fn publish_n(log: &EventLog, n: u64) {
    for i in 0..n {
        log.publish(Event::new().data(format!("event {i}")));
    }
}

fn gap(id: &str, reason: &str, resume_from: u64) -> String {
    format!("id: {id}\nevent: reset\ndata: {{\"reason\":\"{reason}\",\"resume_from\":{resume_from}}}\n\n")
}

#[test]
fn publish_numbers_events_and_replaces_their_ids() {
    let log = EventLog::new();
    let mut all = log.subscribe(None);
    assert_eq!(log.publish(Event::new().id("x").unwrap().data("a")), 1);
    assert_eq!(log.publish(Event::new().id_u64(99).data("b")), 2);
    assert_eq!(text(&ready(&mut all).unwrap()), "id: 1\ndata: a\n\n");
    assert_eq!(text(&ready(&mut all).unwrap()), "id: 2\ndata: b\n\n");
    assert!(is_pending(&mut all));
}

#[test]
fn no_last_event_id_is_live_only() {
    let log = EventLog::new();
    publish_n(&log, 3);
    let mut live = log.subscribe(None);
    assert!(is_pending(&mut live), "nothing from before it subscribed");
    publish_n(&log, 2);
    assert_eq!(seqs(&drain(&mut live)), [4, 5]);
    assert_eq!(log.stats().replayed, 0);
}

#[test]
fn resumes_right_after_a_known_id() {
    let log = EventLog::new();
    publish_n(&log, 5);
    let mut after_2 = log.subscribe(last("2").as_ref());
    assert_eq!(seqs(&drain(&mut after_2)), [3, 4, 5]);

    // The newest id replays nothing: the client is up to date.
    let mut after_5 = log.subscribe(last("5").as_ref());
    assert!(is_pending(&mut after_5));

    // "0" is the start of a log that has evicted nothing.
    let mut from_start = log.subscribe(last("0").as_ref());
    assert_eq!(seqs(&drain(&mut from_start)), [1, 2, 3, 4, 5]);

    publish_n(&log, 1);
    for subscription in [&mut after_2, &mut after_5, &mut from_start] {
        assert_eq!(seqs(&drain(subscription)), [6]);
    }
    assert_eq!(log.stats().replayed, 3 + 5);
    assert_eq!(log.stats().gap_events, 0);
}

#[tokio::test]
async fn a_waiting_subscription_is_woken_by_publish() {
    let log = EventLog::new();
    let mut subscription = log.subscribe(None);
    let reader = tokio::spawn(async move {
        let frame = subscription.next().await;
        (frame, subscription)
    });
    // Let the reader register its waker before the publish, as far as a single-thread
    // runtime allows; the publish wakes it either way.
    tokio::task::yield_now().await;
    log.publish(Event::new().data("wake up"));
    let (frame, subscription) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(text(&frame.unwrap()), "id: 1\ndata: wake up\n\n");
    assert_eq!(log.stats().live_subscribers, 1);
    drop(subscription);
    assert_eq!(log.stats().live_subscribers, 0);
}

#[test]
fn unknown_ids_reset_from_the_oldest_by_default() {
    let log = EventLog::builder().max_events(3).build();
    publish_n(&log, 5); // retains 3, 4, 5

    // An evicted id the log assigned.
    let mut old = log.subscribe(last("1").as_ref());
    let frames = drain(&mut old);
    assert_eq!(text(&frames[0]), gap("2", "cursor_too_old", 3));
    assert_eq!(seqs(&frames[1..]), [3, 4, 5]);

    // Ids the log never assigned: not a number, not canonical, or from the future.
    for id in ["abc", "03", "6", "18446744073709551615"] {
        let mut unknown = log.subscribe(last(id).as_ref());
        let frames = drain(&mut unknown);
        assert_eq!(text(&frames[0]), gap("2", "unknown_id", 3), "{id}");
        assert_eq!(seqs(&frames[1..]), [3, 4, 5], "{id}");
    }

    // The newest evicted id is the boundary: resuming from it loses nothing, so no gap.
    let mut boundary = log.subscribe(last("2").as_ref());
    assert_eq!(seqs(&drain(&mut boundary)), [3, 4, 5]);

    // Resuming from the gap event's id loses nothing more either.
    let mut after_gap = log.subscribe(last(id_of(&frames[0]).to_owned()).as_ref());
    assert_eq!(seqs(&drain(&mut after_gap)), [3, 4, 5]);

    let stats = log.stats();
    assert_eq!(stats.gap_events, 5);
    assert_eq!(stats.evicted, 2);
}

#[test]
fn reset_from_live_skips_the_backlog() {
    let log = EventLog::builder()
        .max_events(3)
        .on_unknown_id(OnUnknownId::ResetFromLive)
        .build();
    publish_n(&log, 5);
    let mut subscription = log.subscribe(last("nope").as_ref());
    let frames = drain(&mut subscription);
    assert_eq!(frames.len(), 1);
    // The id of the newest event: a reconnect right after the gap replays nothing.
    assert_eq!(text(&frames[0]), gap("5", "unknown_id", 6));
    publish_n(&log, 1);
    assert_eq!(seqs(&drain(&mut subscription)), [6]);

    // On an empty log the gap's id is "0", which resumes from the start.
    let empty = EventLog::builder()
        .on_unknown_id(OnUnknownId::ResetFromLive)
        .build();
    let mut subscription = empty.subscribe(last("7").as_ref());
    assert_eq!(
        text(&ready(&mut subscription).unwrap()),
        gap("0", "unknown_id", 1)
    );
}

#[test]
fn no_content_refuses_unknown_ids_only() {
    let log = EventLog::builder()
        .max_events(3)
        .on_unknown_id(OnUnknownId::NoContent)
        .build();
    publish_n(&log, 5);

    let mut refused = log.subscribe(last("1").as_ref());
    assert!(refused.is_rejected());
    assert!(refused.is_terminated());
    assert_eq!(refused.size_hint(), (0, Some(0)));
    assert!(ready(&mut refused).is_none());
    assert_eq!(log.response(last("x").as_ref()).status(), 204);

    // Known ids and first connections are served as usual.
    let known = log.response(last("4").as_ref());
    assert_eq!(known.status(), 200);
    let mut known = known.into_body();
    assert!(!known.is_rejected());
    assert_eq!(seqs(&drain(&mut known)), [5]);
    assert!(!log.subscribe(None).is_rejected());

    let stats = log.stats();
    assert_eq!(stats.rejected, 2);
    assert_eq!(stats.gap_events, 0);
    assert_eq!(stats.live_subscribers, 1, "only `known` is still alive");
}

#[test]
fn gap_event_name_is_configurable_and_checked() {
    let log = EventLog::builder()
        .gap_event("missed")
        .unwrap()
        .max_events(1)
        .build();
    publish_n(&log, 2);
    let mut subscription = log.subscribe(last("x").as_ref());
    assert!(text(&ready(&mut subscription).unwrap()).starts_with("id: 1\nevent: missed\n"));
    assert!(EventLog::builder().gap_event("a\nb").is_err());
}

#[test]
fn eviction_by_count() {
    let log = EventLog::builder().max_events(3).build();
    let mut slow = log.subscribe(last("0").as_ref());
    publish_n(&log, 10);
    let stats = log.stats();
    assert_eq!((stats.published, stats.evicted), (10, 7));
    let mut boundary = log.subscribe(last("7").as_ref());
    assert_eq!(seqs(&drain(&mut boundary)), [8, 9, 10]);
    // `slow` never read: it lags and, by default, ends.
    assert!(ready(&mut slow).is_none());
    assert!(slow.is_terminated());
    assert_eq!(log.stats().lag_disconnects, 1);
}

#[test]
fn eviction_by_bytes_keeps_the_newest_event() {
    let frame_len = Event::new()
        .id_u64(1)
        .data("0123456789")
        .encode()
        .as_bytes()
        .len();
    let log = EventLog::builder().max_bytes(3 * frame_len).build();
    for _ in 0..5 {
        log.publish(Event::new().data("0123456789"));
    }
    let mut boundary = log.subscribe(last("2").as_ref());
    assert_eq!(seqs(&drain(&mut boundary)), [3, 4, 5]);
    assert_eq!(log.stats().evicted, 2);

    // An event larger than the whole budget evicts everything else but stays itself.
    let big = "x".repeat(4 * frame_len);
    let mut waiting = log.subscribe(None);
    log.publish(Event::new().data(big.clone()));
    assert_eq!(
        text(&ready(&mut waiting).unwrap()),
        format!("id: 6\ndata: {big}\n\n")
    );
    assert_eq!(log.stats().evicted, 5);
    let mut after_5 = log.subscribe(last("5").as_ref());
    assert_eq!(seqs(&drain(&mut after_5)), [6]);
}

#[tokio::test(start_paused = true)]
async fn eviction_by_age() {
    let log = EventLog::builder().max_age(Duration::from_secs(10)).build();
    log.publish(Event::new().data("old"));
    tokio::time::advance(Duration::from_secs(6)).await;
    log.publish(Event::new().data("newer"));
    tokio::time::advance(Duration::from_secs(4)).await;
    // Exactly 10 s old is not older than the limit.
    let mut all = log.subscribe(last("0").as_ref());
    assert_eq!(seqs(&drain(&mut all)), [1, 2]);
    assert_eq!(log.stats().evicted, 0);

    // No publish since: subscribing is what notices that event 1 expired.
    tokio::time::advance(Duration::from_millis(1)).await;
    let mut from_start = log.subscribe(last("0").as_ref());
    let frames = drain(&mut from_start);
    assert_eq!(text(&frames[0]), gap("1", "cursor_too_old", 2));
    assert_eq!(seqs(&frames[1..]), [2]);
    assert_eq!(log.stats().evicted, 1);

    // Once everything expired, the newest id still resumes without a gap.
    tokio::time::advance(Duration::from_secs(60)).await;
    let mut up_to_date = log.subscribe(last("2").as_ref());
    assert!(is_pending(&mut up_to_date));
    assert_eq!(log.stats().evicted, 2);
    // And a subscription waiting at the live edge has lost nothing.
    log.publish(Event::new().data("fresh"));
    assert_eq!(seqs(&drain(&mut up_to_date)), [3]);
    assert_eq!(seqs(&drain(&mut all)), [3]);
}

#[tokio::test(start_paused = true)]
async fn expiry_is_noticed_when_reading() {
    let log = EventLog::builder()
        .max_age(Duration::from_secs(10))
        .on_lag(OnLag::SkipAhead)
        .build();
    let mut slow = log.subscribe(None);
    log.publish(Event::new().data("a"));
    tokio::time::advance(Duration::from_secs(11)).await;
    // No publish or subscribe since: the read itself evicts event 1 and sees the lag.
    assert_eq!(text(&ready(&mut slow).unwrap()), gap("1", "lagged", 2));
    assert!(is_pending(&mut slow));
    let stats = log.stats();
    assert_eq!((stats.evicted, stats.gap_events), (1, 1));
}

#[test]
fn skip_ahead_signals_the_gap_exactly_where_events_were_lost() {
    let log = EventLog::builder()
        .max_events(10)
        .on_lag(OnLag::SkipAhead)
        .build();
    let mut slow = log.subscribe(None);
    publish_n(&log, 5);
    let before: Vec<_> = (0..3).map(|_| ready(&mut slow).unwrap()).collect();
    assert_eq!(seqs(&before), [1, 2, 3]);
    publish_n(&log, 20); // retains 16..=25: 4..=15 are lost to `slow`

    let after = drain(&mut slow);
    let gap_frame = text(&after[0]);
    assert_eq!(gap_frame, gap("15", "lagged", 16));
    let resume_from: u64 = gap_frame
        .split("\"resume_from\":")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap()
        .parse()
        .unwrap();
    let rest = seqs(&after[1..]);
    assert_eq!(rest.first(), Some(&resume_from));
    assert_eq!(rest, (16..=25).collect::<Vec<_>>());

    let stats = log.stats();
    assert_eq!((stats.gap_events, stats.lag_disconnects), (1, 0));
    assert_eq!(stats.live_subscribers, 1);
}

#[test]
fn disconnect_ends_the_stream_where_events_were_lost() {
    let log = EventLog::builder().max_events(10).build();
    let mut slow = log.subscribe(None);
    publish_n(&log, 5);
    assert_eq!(
        seqs(&[ready(&mut slow).unwrap(), ready(&mut slow).unwrap()]),
        [1, 2]
    );
    publish_n(&log, 20);
    assert!(ready(&mut slow).is_none());
    assert!(ready(&mut slow).is_none(), "stays ended");
    assert_eq!(slow.size_hint(), (0, Some(0)));
    let stats = log.stats();
    assert_eq!((stats.lag_disconnects, stats.live_subscribers), (1, 0));

    // The browser reconnects with the last id it got; the unknown-id policy takes over.
    let mut again = log.subscribe(last("2").as_ref());
    let frames = drain(&mut again);
    assert_eq!(text(&frames[0]), gap("15", "cursor_too_old", 16));
    assert_eq!(seqs(&frames[1..]), (16..=25).collect::<Vec<_>>());
}

#[test]
fn caller_ids_resume_like_log_ids() {
    let log = EventLog::builder().max_events(2).build();
    let redis_ids = ["1700000000000-0", "1700000000000-1", "1700000000001-0"];
    for (i, id) in redis_ids.iter().enumerate() {
        let seq = log
            .publish_with_id(*id, Event::new().id_u64(7).data("x"))
            .unwrap();
        assert_eq!(seq, i as u64 + 1);
    }
    let mut after_first = log.subscribe(last(redis_ids[0]).as_ref());
    let frames = drain(&mut after_first);
    assert_eq!(
        frames.iter().map(id_of).collect::<Vec<_>>(),
        &redis_ids[1..],
        "the boundary id resumes without a gap"
    );

    // A sequence number is not the id of an event published under another id.
    let mut by_number = log.subscribe(last("2").as_ref());
    assert_eq!(
        text(&ready(&mut by_number).unwrap()),
        gap(redis_ids[0], "unknown_id", 2)
    );

    // Ids that cannot be framed are refused and take no sequence number.
    assert!(log.publish_with_id("a\nb", Event::new()).is_err());
    assert!(log.publish_with_id("a\0b", Event::new()).is_err());
    assert_eq!(log.publish(Event::new()), 4);
    assert_eq!(log.stats().published, 4);

    // Evicted caller ids are forgotten.
    let mut evicted = log.subscribe(last(redis_ids[0]).as_ref());
    assert_eq!(
        text(&ready(&mut evicted).unwrap()),
        gap(redis_ids[1], "unknown_id", 3)
    );
}

#[test]
fn numeric_ids_resume_as_numbers() {
    let log = EventLog::builder().max_events(3).build();
    for (n, row) in [1000, 1001, 1005, 1010].into_iter().enumerate() {
        let seq = log.publish_with_u64_id(row, Event::new().id("replaced").unwrap().data("row"));
        assert_eq!(seq, n as u64 + 1);
    }
    // 1000 left the window and is its boundary: resuming from it loses nothing.
    let mut after_boundary = log.subscribe(last("1000").as_ref());
    let frames = drain(&mut after_boundary);
    assert_eq!(
        frames.iter().map(id_of).collect::<Vec<_>>(),
        ["1001", "1005", "1010"]
    );
    assert_eq!(text(&frames[0]), "id: 1001\ndata: row\n\n");
    let mut after_1005 = log.subscribe(last("1005").as_ref());
    assert_eq!(
        drain(&mut after_1005).iter().map(id_of).collect::<Vec<_>>(),
        ["1010"]
    );

    // The same digits as text are the same id.
    log.publish_with_id("1011", Event::new().data("row"))
        .unwrap();
    let mut after_1010 = log.subscribe(last("1010").as_ref());
    assert_eq!(
        drain(&mut after_1010).iter().map(id_of).collect::<Vec<_>>(),
        ["1011"]
    );

    // Neither the log's own sequence numbers nor other spellings name these events.
    for unknown in ["2", "01005", "+1005", "1002"] {
        let mut subscription = log.subscribe(last(unknown).as_ref());
        assert_eq!(
            text(&ready(&mut subscription).unwrap()),
            gap("1001", "unknown_id", 3),
            "{unknown}"
        );
    }
}

/// Where retention is bound by bytes before count, the log says so once; bound by count,
/// it says nothing.
#[test]
fn warns_once_when_bytes_bind_before_count() {
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let warnings = || {
        let bytes = captured.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        text.lines()
            .filter(|line| line.contains("WARN") && line.contains("max_bytes before max_events"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    tracing::subscriber::with_default(subscriber, || {
        let by_count = EventLog::builder().max_events(2).build();
        publish_n(&by_count, 50);
        assert!(warnings().is_empty(), "{:?}", warnings());

        // Frames of about 25 bytes: 200 bytes hold 8 of the 100 events allowed.
        let by_bytes = EventLog::builder().max_events(100).max_bytes(200).build();
        publish_n(&by_bytes, 8);
        assert!(warnings().is_empty(), "nothing evicted yet");
        publish_n(&by_bytes, 50);
        let logged = warnings();
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(logged[0].contains("max_bytes=200"), "{logged:?}");
        assert!(by_bytes.stats().evicted > 0);

        // Once per log: another log says it again.
        let other = EventLog::builder().max_bytes(200).build();
        publish_n(&other, 50);
        assert_eq!(warnings().len(), 2);
    });
}

mod feed {
    use super::*;
    use futures_util::stream;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;
    use tokio_stream::wrappers::ReceiverStream;
    use tower_sse::replay::{FeedEnd, Lagged};

    fn source_gap(id: u64, missed: u64) -> String {
        format!(
            "id: {id}\nevent: reset\ndata: {{\"reason\":\"source_lagged\",\"missed\":{missed},\"resume_from\":{}}}\n\n",
            id + 1
        )
    }

    /// A log, a subscription from its start, and a spawned feed from an mpsc.
    fn fed_by_mpsc() -> (
        EventLog,
        Subscription,
        mpsc::Sender<Event>,
        JoinHandle<FeedEnd>,
    ) {
        let log = EventLog::new();
        let subscription = log.subscribe(None);
        let (tx, rx) = mpsc::channel(4);
        let feed = tokio::spawn(log.feed(ReceiverStream::new(rx)));
        (log, subscription, tx, feed)
    }

    #[tokio::test]
    async fn an_mpsc_feeds_the_log_until_it_ends() {
        let (log, mut all, tx, feed) = fed_by_mpsc();
        for text in ["a", "b", "c"] {
            tx.send(Event::new().data(text)).await.unwrap();
        }
        drop(tx);
        assert_eq!(feed.await.unwrap(), FeedEnd::SourceEnded);
        let frames = drain(&mut all);
        assert_eq!(text(&frames[2]), "id: 3\ndata: c\n\n");
        assert_eq!(seqs(&frames), [1, 2, 3]);
        // The log goes on after its feed.
        assert_eq!(log.publish(Event::new()), 4);
    }

    #[tokio::test]
    async fn numbered_items_and_losses() {
        let log = EventLog::new();
        let mut all = log.subscribe(None);
        let rows = stream::iter([
            Ok((41, Event::new().data("a"))),
            Err(Lagged::new(2)),
            Ok((44, Event::new().data("d"))),
            Err(Lagged::new(0)),
        ]);
        assert_eq!(log.feed(rows).await, FeedEnd::SourceEnded);
        let frames: Vec<String> = drain(&mut all).iter().map(|f| text(f).to_owned()).collect();
        assert_eq!(
            frames,
            [
                "id: 41\ndata: a\n\n".to_owned(),
                source_gap(2, 2),
                "id: 44\ndata: d\n\n".to_owned()
            ]
        );
        assert_eq!(log.stats().source_lost, 2);
        // A client that saw the gap resumes after it.
        let mut after_gap = log.subscribe(last("2").as_ref());
        assert_eq!(
            drain(&mut after_gap).iter().map(id_of).collect::<Vec<_>>(),
            ["44"]
        );
    }

    /// A real broadcast channel whose receiver falls behind: bounded at 4, 10 sent before
    /// the feed reads one.
    #[cfg(feature = "tokio-stream")]
    #[tokio::test]
    async fn a_lagging_broadcast_receiver_becomes_a_gap_event() {
        use tokio::sync::broadcast;
        use tokio_stream::wrappers::BroadcastStream;

        let log = EventLog::new();
        let mut all = log.subscribe(None);
        let (tx, rx) = broadcast::channel(4);
        for n in 0..10 {
            tx.send(Event::new().data(format!("tick {n}"))).unwrap();
        }
        drop(tx);
        assert_eq!(
            log.feed(BroadcastStream::new(rx)).await,
            FeedEnd::SourceEnded
        );

        let frames = drain(&mut all);
        assert_eq!(text(&frames[0]), source_gap(1, 6));
        let rest: Vec<&str> = frames[1..].iter().map(text).collect();
        assert_eq!(
            rest,
            [
                "id: 2\ndata: tick 6\n\n",
                "id: 3\ndata: tick 7\n\n",
                "id: 4\ndata: tick 8\n\n",
                "id: 5\ndata: tick 9\n\n",
            ]
        );
        assert_eq!(log.stats().source_lost, 6);
        assert_eq!(log.stats().published, 5);
    }

    /// Dropping every handle ends the feed while its source is quiet, and drops the
    /// source; a subscription still open does not keep the feed going.
    #[tokio::test]
    async fn dropping_the_log_ends_its_feed_mid_stream() {
        let (log, mut reader, tx, feed) = fed_by_mpsc();
        tx.send(Event::new().data("a")).await.unwrap();
        assert_eq!(text(&reader.next().await.unwrap()), "id: 1\ndata: a\n\n");

        drop(log);
        // Bounded, so that a feed that does not hear of the drop fails instead of hanging.
        let ended = tokio::time::timeout(Duration::from_secs(10), feed).await;
        assert_eq!(ended.expect("the feed ended").unwrap(), FeedEnd::LogDropped);
        assert!(tx.is_closed(), "the feed dropped its source");
        assert!(tx.send(Event::new().data("b")).await.is_err());
        // The subscription keeps the window: what it held stays, nothing more comes.
        assert!(is_pending(&mut reader));
        assert!(!reader.is_terminated());
    }

    /// A source that is always ready yields its task now and then, and ends as it should.
    #[tokio::test]
    async fn an_endless_ready_source_lets_the_log_drop_it() {
        let log = EventLog::builder().max_events(8).build();
        let feed = tokio::spawn(log.feed(stream::repeat_with(|| Event::new().data("x"))));
        // The feed publishes in bounded batches, so this task gets to run in between.
        let mut yields = 0;
        while log.stats().published < 1_000 {
            tokio::task::yield_now().await;
            yields += 1;
            assert!(yields < 1_000_000, "the feed made no progress");
        }
        drop(log);
        assert_eq!(feed.await.unwrap(), FeedEnd::LogDropped);
    }
}

/// Encode once: needs `publish_json`.
#[cfg(feature = "json")]
mod fan_out {
    use super::*;
    use serde::{Serialize, Serializer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts how often it is serialized.
    struct Counted {
        n: u64,
        calls: Arc<AtomicUsize>,
    }

    impl Serialize for Counted {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            serializer.serialize_u64(self.n)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fan_out_serializes_each_event_once() {
        const SUBSCRIBERS: usize = 1_000;
        const EVENTS: u64 = 200;
        let log = EventLog::builder().max_events(EVENTS as usize).build();
        let calls = Arc::new(AtomicUsize::new(0));

        let mut readers = JoinSet::new();
        for _ in 0..SUBSCRIBERS {
            let subscription = log.subscribe(None);
            readers.spawn(async move {
                let frames: Vec<EncodedEvent> = subscription.take(EVENTS as usize).collect().await;
                frames
            });
        }
        for n in 1..=EVENTS {
            let value = Counted {
                n,
                calls: calls.clone(),
            };
            assert_eq!(log.publish_json(&value).unwrap(), n);
        }

        let mut first: Option<Vec<EncodedEvent>> = None;
        let mut finished = 0;
        let all = async {
            while let Some(frames) = readers.join_next().await {
                let frames = frames.unwrap();
                assert_eq!(seqs(&frames), (1..=EVENTS).collect::<Vec<_>>());
                for (n, frame) in (1..=EVENTS).zip(&frames) {
                    assert_eq!(text(frame), format!("id: {n}\ndata: {n}\n\n"));
                }
                match &first {
                    None => first = Some(frames),
                    // The same buffer, not an equal copy: framed once, shared by all.
                    Some(first) => {
                        for (a, b) in first.iter().zip(&frames) {
                            assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
                        }
                    }
                }
                finished += 1;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("fan-out finished");
        assert_eq!(finished, SUBSCRIBERS);
        assert_eq!(calls.load(Ordering::Relaxed), EVENTS as usize);
        let stats = log.stats();
        assert_eq!(stats.published, EVENTS);
        assert_eq!(stats.live_subscribers, 0);
    }
}

const STRESS_EVENTS: u64 = 100_000;
const STRESS_SUBSCRIBERS: u64 = 100;

/// Reads every event, dropping the subscription at random points and resubscribing with
/// the last id read, as a browser does. Panics on any loss or duplicate; returns the number
/// of reconnects.
async fn reconnecting_reader(log: EventLog, mut subscription: Subscription, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let mut last = 0;
    let mut reconnects = 0;
    let check = |frame: Option<EncodedEvent>, last: &mut u64| {
        let seq = seq_of(&frame.expect("a subscription without lag never ends"));
        assert_eq!(seq, *last + 1, "reader {seed}: lost or repeated events");
        *last = seq;
        *last == STRESS_EVENTS
    };
    loop {
        for _ in 0..=rng.below(2_000) {
            if check(subscription.next().await, &mut last) {
                return reconnects;
            }
        }
        // Half the time, drop it while it may be registered as a waiter.
        if rng.below(2) == 0 {
            if let Poll::Ready(frame) = futures_util::poll!(subscription.next()) {
                if check(frame, &mut last) {
                    return reconnects;
                }
            }
        }
        drop(subscription);
        reconnects += 1;
        assert!(reconnects <= STRESS_EVENTS, "reader {seed}: runaway loop");
        subscription = log.subscribe(Some(&LastEventId::new(last.to_string())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_reconnects_lose_and_repeat_nothing() {
    stress(None).await;
}

/// The same with a publisher that lets readers run every few events, so most reads happen
/// at the live edge, where a subscription registers its waker as a publish comes in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_at_the_live_edge() {
    stress(Some(32)).await;
}

/// One publisher of `STRESS_EVENTS` events, yielding after every `yield_every` events or
/// never, and `STRESS_SUBSCRIBERS` reconnecting readers.
async fn stress(yield_every: Option<u64>) {
    let log = EventLog::builder()
        .max_events(2 * STRESS_EVENTS as usize)
        .max_bytes(usize::MAX)
        .build();
    let started = std::time::Instant::now();

    let mut readers = JoinSet::new();
    for seed in 0..STRESS_SUBSCRIBERS {
        // Subscribed before the first publish, so live-only still starts at event 1.
        let subscription = log.subscribe(None);
        readers.spawn(reconnecting_reader(log.clone(), subscription, seed));
    }
    let publisher = tokio::spawn({
        let log = log.clone();
        async move {
            for n in 1..=STRESS_EVENTS {
                assert_eq!(log.publish(Event::new().data("tick")), n);
                if yield_every.is_some_and(|every| n % every == 0) {
                    tokio::task::yield_now().await;
                }
            }
            started.elapsed()
        }
    });

    let run = async {
        let published_in = publisher.await.unwrap();
        let mut reconnects = 0;
        let mut finished = 0;
        while let Some(result) = readers.join_next().await {
            reconnects += result.unwrap();
            finished += 1;
        }
        (finished, reconnects, published_in)
    };
    let (finished, reconnects, published_in) = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("stress run finished in time");
    let elapsed = started.elapsed();

    assert_eq!(finished, STRESS_SUBSCRIBERS);
    assert!(reconnects >= STRESS_SUBSCRIBERS, "readers did reconnect");
    let stats = log.stats();
    let publisher = match yield_every {
        None => "publisher at full speed".to_owned(),
        Some(n) => format!("publisher yields every {n} events"),
    };
    eprintln!(
        "replay stress ({publisher}): {STRESS_EVENTS} events, {STRESS_SUBSCRIBERS} subscribers, \
         {reconnects} reconnects, {} of {} deliveries replayed, published in {published_in:.2?}, \
         elapsed {elapsed:.2?}",
        stats.replayed,
        STRESS_EVENTS * STRESS_SUBSCRIBERS
    );
    assert_eq!(stats.published, STRESS_EVENTS);
    assert!(stats.replayed > 0, "reconnects replayed from the log");
    assert_eq!(stats.evicted, 0);
    assert_eq!(stats.gap_events, 0);
    assert_eq!(stats.lag_disconnects, 0);
    assert_eq!(stats.live_subscribers, 0);
}
