//! The replay log in process: resume without loss or duplicate, retention, policies,
//! encode-once fan-out, and a reconnect stress run.

use crate::support::rng;

use std::task::Poll;
use std::time::Duration;

use futures_util::stream::{FusedStream, Stream};
use futures_util::{FutureExt, StreamExt};
use tokio::task::JoinSet;
use tower_sse::{
    replay::{EventLog, IdNotIncreasing, OnLag, OnUnknownId, Subscription},
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

fn last(id: impl ToString) -> Option<LastEventId> {
    Some(LastEventId::new(id.to_string()))
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

/// Publishes `n` events; returns their ids.
fn publish_n(log: &EventLog, n: u64) -> Vec<u64> {
    (0..n)
        .map(|i| log.publish(Event::new().data(format!("event {i}"))))
        .collect()
}

fn gap(id: impl std::fmt::Display, reason: &str, resume_from: u64) -> String {
    format!("id: {id}\nevent: reset\ndata: {{\"reason\":\"{reason}\",\"resume_from\":{resume_from}}}\n\n")
}

#[test]
fn publish_numbers_events_and_replaces_their_ids() {
    let log = EventLog::new();
    let mut all = log.subscribe(None);
    let a = log.publish(Event::new().id("x").unwrap().data("a"));
    let b = log.publish(Event::new().id_u64(99).data("b"));
    assert!(b > a, "ids increase");
    assert_eq!(
        text(&ready(&mut all).unwrap()),
        format!("id: {a}\ndata: a\n\n")
    );
    assert_eq!(
        text(&ready(&mut all).unwrap()),
        format!("id: {b}\ndata: b\n\n")
    );
    assert!(is_pending(&mut all));
}

#[test]
fn no_last_event_id_is_live_only() {
    let log = EventLog::new();
    publish_n(&log, 3);
    let mut live = log.subscribe(None);
    assert!(is_pending(&mut live), "nothing from before it subscribed");
    let ids = publish_n(&log, 2);
    assert_eq!(seqs(&drain(&mut live)), ids);
    assert_eq!(log.stats().replayed, 0);
}

#[test]
fn resumes_right_after_a_known_id() {
    let log = EventLog::new();
    let ids = publish_n(&log, 5);
    let mut after_2 = log.subscribe(last(ids[1]).as_ref());
    assert_eq!(seqs(&drain(&mut after_2)), ids[2..]);

    // The newest id replays nothing: the client is up to date.
    let mut after_5 = log.subscribe(last(ids[4]).as_ref());
    assert!(is_pending(&mut after_5));

    // "0" is the start of a log that has evicted nothing.
    let mut from_start = log.subscribe(last("0").as_ref());
    assert_eq!(seqs(&drain(&mut from_start)), ids);

    let six = publish_n(&log, 1);
    for subscription in [&mut after_2, &mut after_5, &mut from_start] {
        assert_eq!(seqs(&drain(subscription)), six);
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
    let id = log.publish(Event::new().data("wake up"));
    let (frame, subscription) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(
        text(&frame.unwrap()),
        format!("id: {id}\ndata: wake up\n\n")
    );
    assert_eq!(log.stats().live_subscribers, 1);
    drop(subscription);
    assert_eq!(log.stats().live_subscribers, 0);
}

#[test]
fn unknown_ids_reset_from_the_oldest_by_default() {
    let log = EventLog::builder().max_events(3).build();
    let ids = publish_n(&log, 5); // retains the last 3

    // An evicted id the log gave.
    let mut old = log.subscribe(last(ids[0]).as_ref());
    let frames = drain(&mut old);
    assert_eq!(text(&frames[0]), gap(ids[1], "cursor_too_old", 3));
    assert_eq!(seqs(&frames[1..]), ids[2..]);

    // Ids the log never gave: not a number, not canonical, from before it, from the
    // future, or the largest number there is.
    let not_canonical = format!("0{}", ids[4]);
    let before = (ids[0] - 1).to_string();
    let future = (ids[4] + 1).to_string();
    for id in [
        "abc",
        &not_canonical,
        "6",
        &before,
        &future,
        "18446744073709551615",
    ] {
        let mut unknown = log.subscribe(last(id).as_ref());
        let frames = drain(&mut unknown);
        assert_eq!(text(&frames[0]), gap(ids[1], "unknown_id", 3), "{id}");
        assert_eq!(seqs(&frames[1..]), ids[2..], "{id}");
    }

    // The newest evicted id is the boundary: resuming from it loses nothing, so no gap.
    let mut boundary = log.subscribe(last(ids[1]).as_ref());
    assert_eq!(seqs(&drain(&mut boundary)), ids[2..]);

    // Resuming from the gap event's id loses nothing more either.
    let mut after_gap = log.subscribe(last(id_of(&frames[0]).to_owned()).as_ref());
    assert_eq!(seqs(&drain(&mut after_gap)), ids[2..]);

    let stats = log.stats();
    assert_eq!(stats.gap_events, 7);
    assert_eq!(stats.evicted, 2);
}

#[test]
fn reset_from_live_skips_the_backlog() {
    let log = EventLog::builder()
        .max_events(3)
        .on_unknown_id(OnUnknownId::ResetFromLive)
        .build();
    let ids = publish_n(&log, 5);
    let mut subscription = log.subscribe(last("nope").as_ref());
    let frames = drain(&mut subscription);
    assert_eq!(frames.len(), 1);
    // The id of the newest event: a reconnect right after the gap replays nothing.
    assert_eq!(text(&frames[0]), gap(ids[4], "unknown_id", 6));
    let six = publish_n(&log, 1);
    assert_eq!(seqs(&drain(&mut subscription)), six);

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
    let ids = publish_n(&log, 5);

    let mut refused = log.subscribe(last(ids[0]).as_ref());
    assert!(refused.is_rejected());
    assert!(refused.is_terminated());
    assert_eq!(refused.size_hint(), (0, Some(0)));
    assert!(ready(&mut refused).is_none());
    assert_eq!(log.response(last("x").as_ref()).status(), 204);

    // Known ids and first connections are served as usual.
    let known = log.response(last(ids[3]).as_ref());
    assert_eq!(known.status(), 200);
    let mut known = known.into_body();
    assert!(!known.is_rejected());
    assert_eq!(seqs(&drain(&mut known)), ids[4..]);
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
    let ids = publish_n(&log, 2);
    let mut subscription = log.subscribe(last("x").as_ref());
    let frame = ready(&mut subscription).unwrap();
    assert!(text(&frame).starts_with(&format!("id: {}\nevent: missed\n", ids[0])));
    assert!(EventLog::builder().gap_event("a\nb").is_err());
}

#[test]
fn eviction_by_count() {
    let log = EventLog::builder().max_events(3).build();
    let mut slow = log.subscribe(last("0").as_ref());
    let ids = publish_n(&log, 10);
    let stats = log.stats();
    assert_eq!((stats.published, stats.evicted), (10, 7));
    let mut boundary = log.subscribe(last(ids[6]).as_ref());
    assert_eq!(seqs(&drain(&mut boundary)), ids[7..]);
    // `slow` never read: it lags and, by default, ends.
    assert!(ready(&mut slow).is_none());
    assert!(slow.is_terminated());
    assert_eq!(log.stats().lag_disconnects, 1);
}

#[test]
fn eviction_by_bytes_keeps_the_newest_event() {
    let log = EventLog::new();
    let first = log.publish(Event::new().data("0123456789"));
    // Ids of one log have the same number of digits for some thousand years.
    let frame_len = Event::new()
        .id_u64(first)
        .data("0123456789")
        .encode()
        .as_bytes()
        .len();
    let log = EventLog::builder().max_bytes(3 * frame_len).build();
    let ids: Vec<u64> = (0..5)
        .map(|_| log.publish(Event::new().data("0123456789")))
        .collect();
    let mut boundary = log.subscribe(last(ids[1]).as_ref());
    assert_eq!(seqs(&drain(&mut boundary)), ids[2..]);
    assert_eq!(log.stats().evicted, 2);

    // An event larger than the whole budget evicts everything else but stays itself.
    let big = "x".repeat(4 * frame_len);
    let mut waiting = log.subscribe(None);
    let six = log.publish(Event::new().data(big.clone()));
    assert_eq!(
        text(&ready(&mut waiting).unwrap()),
        format!("id: {six}\ndata: {big}\n\n")
    );
    assert_eq!(log.stats().evicted, 5);
    let mut after_5 = log.subscribe(last(ids[4]).as_ref());
    assert_eq!(seqs(&drain(&mut after_5)), [six]);
}

#[tokio::test(start_paused = true)]
async fn eviction_by_age() {
    let log = EventLog::builder().max_age(Duration::from_secs(10)).build();
    let old = log.publish(Event::new().data("old"));
    tokio::time::advance(Duration::from_secs(6)).await;
    let newer = log.publish(Event::new().data("newer"));
    tokio::time::advance(Duration::from_secs(4)).await;
    // Exactly 10 s old is not older than the limit.
    let mut all = log.subscribe(last("0").as_ref());
    assert_eq!(seqs(&drain(&mut all)), [old, newer]);
    assert_eq!(log.stats().evicted, 0);

    // No publish since: subscribing is what notices that the first event expired.
    tokio::time::advance(Duration::from_millis(1)).await;
    let mut from_start = log.subscribe(last("0").as_ref());
    let frames = drain(&mut from_start);
    assert_eq!(text(&frames[0]), gap(old, "cursor_too_old", 2));
    assert_eq!(seqs(&frames[1..]), [newer]);
    assert_eq!(log.stats().evicted, 1);

    // Once everything expired, the newest id still resumes without a gap.
    tokio::time::advance(Duration::from_secs(60)).await;
    let mut up_to_date = log.subscribe(last(newer).as_ref());
    assert!(is_pending(&mut up_to_date));
    assert_eq!(log.stats().evicted, 2);
    // And a subscription waiting at the live edge has lost nothing.
    let fresh = log.publish(Event::new().data("fresh"));
    assert_eq!(seqs(&drain(&mut up_to_date)), [fresh]);
    assert_eq!(seqs(&drain(&mut all)), [fresh]);
}

#[tokio::test(start_paused = true)]
async fn expiry_is_noticed_when_reading() {
    let log = EventLog::builder()
        .max_age(Duration::from_secs(10))
        .on_lag(OnLag::SkipAhead)
        .build();
    let mut slow = log.subscribe(None);
    let a = log.publish(Event::new().data("a"));
    tokio::time::advance(Duration::from_secs(11)).await;
    // No publish or subscribe since: the read itself evicts the event and sees the lag.
    assert_eq!(text(&ready(&mut slow).unwrap()), gap(a, "lagged", 2));
    assert!(is_pending(&mut slow));
    let stats = log.stats();
    assert_eq!((stats.evicted, stats.gap_events), (1, 1));
}

#[test]
fn skip_ahead_sends_the_gap_event_exactly_where_events_were_lost() {
    let log = EventLog::builder()
        .max_events(10)
        .on_lag(OnLag::SkipAhead)
        .build();
    let mut slow = log.subscribe(None);
    let mut ids = publish_n(&log, 5);
    let before: Vec<_> = (0..3).map(|_| ready(&mut slow).unwrap()).collect();
    assert_eq!(seqs(&before), ids[..3]);
    ids.extend(publish_n(&log, 20)); // retains the last 10: the 4th to 15th are lost to `slow`

    let after = drain(&mut slow);
    let gap_frame = text(&after[0]);
    assert_eq!(gap_frame, gap(ids[14], "lagged", 16));
    assert_eq!(seqs(&after[1..]), ids[15..]);

    let stats = log.stats();
    assert_eq!((stats.gap_events, stats.lag_disconnects), (1, 0));
    assert_eq!(stats.live_subscribers, 1);
}

#[test]
fn disconnect_ends_the_stream_where_events_were_lost() {
    let log = EventLog::builder().max_events(10).build();
    let mut slow = log.subscribe(None);
    let mut ids = publish_n(&log, 5);
    assert_eq!(
        seqs(&[ready(&mut slow).unwrap(), ready(&mut slow).unwrap()]),
        ids[..2]
    );
    ids.extend(publish_n(&log, 20));
    assert!(ready(&mut slow).is_none());
    assert!(ready(&mut slow).is_none(), "stays ended");
    assert_eq!(slow.size_hint(), (0, Some(0)));
    let stats = log.stats();
    assert_eq!((stats.lag_disconnects, stats.live_subscribers), (1, 0));

    // The browser reconnects with the last id it got; the unknown-id policy takes over.
    let mut again = log.subscribe(last(ids[1]).as_ref());
    let frames = drain(&mut again);
    assert_eq!(text(&frames[0]), gap(ids[14], "cursor_too_old", 16));
    assert_eq!(seqs(&frames[1..]), ids[15..]);
}

#[test]
fn text_ids_resume_like_log_ids() {
    let log = EventLog::builder().max_events(2).build();
    let text_ids = ["a-0", "a-1", "b-0"];
    for id in text_ids {
        log.publish_with_id(id, Event::new().id_u64(7).data("x"))
            .unwrap();
    }
    let mut after_first = log.subscribe(last(text_ids[0]).as_ref());
    let frames = drain(&mut after_first);
    assert_eq!(
        frames.iter().map(id_of).collect::<Vec<_>>(),
        &text_ids[1..],
        "the boundary id resumes without a gap"
    );

    // A position is not the id of an event published under another id.
    let mut by_number = log.subscribe(last("2").as_ref());
    assert_eq!(
        text(&ready(&mut by_number).unwrap()),
        gap(text_ids[0], "unknown_id", 2)
    );

    // Ids that cannot be framed are refused and take no place in the log.
    assert!(log.publish_with_id("a\nb", Event::new()).is_err());
    assert!(log.publish_with_id("a\0b", Event::new()).is_err());
    let fourth = log.publish(Event::new());
    assert_eq!(log.stats().published, 4);

    // Evicted text ids are forgotten.
    let mut evicted = log.subscribe(last(text_ids[0]).as_ref());
    assert_eq!(
        text(&ready(&mut evicted).unwrap()),
        gap(text_ids[1], "unknown_id", 3)
    );
    // A number resumes after the text ids published after it, and before them too.
    let mut after_fourth = log.subscribe(last(fourth).as_ref());
    assert!(is_pending(&mut after_fourth));
}

#[test]
fn numeric_ids_resume_as_numbers() {
    let log = EventLog::builder().max_events(3).build();
    for row in [1000, 1001, 1005, 1010] {
        let id = log.publish_with_u64_id(row, Event::new().id("replaced").unwrap().data("row"));
        assert_eq!(id, Ok(row));
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

    // Positions, other spellings, numbers never given and numbers outside the log's range
    // name no event of it.
    for unknown in ["2", "01005", "+1005", "1002", "999", "1012"] {
        let mut subscription = log.subscribe(last(unknown).as_ref());
        assert_eq!(
            text(&ready(&mut subscription).unwrap()),
            gap("1001", "unknown_id", 3),
            "{unknown}"
        );
    }
    // Automatic ids count on from the caller's numbers.
    assert_eq!(log.publish(Event::new()), 1012);
}

#[test]
fn caller_ids_must_increase() {
    let log = EventLog::new();
    assert_eq!(log.publish_with_u64_id(10, Event::new()), Ok(10));
    let refused = log.publish_with_u64_id(10, Event::new()).unwrap_err();
    assert_eq!((refused.id(), refused.last()), (10, 10));
    assert_eq!(
        refused.to_string(),
        "event id 10 is not above the log's last id 10"
    );
    assert!(log.publish_with_u64_id(9, Event::new()).is_err());

    // As text too: the error says why, through its source.
    let refused = log.publish_with_id("3", Event::new()).unwrap_err();
    let source = std::error::Error::source(&refused).expect("a source");
    let source = source
        .downcast_ref::<IdNotIncreasing>()
        .expect("IdNotIncreasing");
    assert_eq!((source.id(), source.last()), (3, 10));
    // A log's own ids count: a caller's id must be above them as well.
    let own = log.publish(Event::new());
    assert_eq!(own, 11);
    assert!(log.publish_with_u64_id(11, Event::new()).is_err());
    // "0" names the start of every log: it is never an event's id.
    let fresh = EventLog::new();
    assert_eq!(
        fresh
            .publish_with_u64_id(0, Event::new())
            .unwrap_err()
            .last(),
        0
    );
    // Nothing refused was published.
    assert_eq!(log.stats().published, 2);
    assert_eq!(fresh.stats().published, 0);
}

/// Two logs in one process, and a log dropped and made again: an id one of them gave is
/// unknown to the other, which answers with the gap event and what it holds, never by
/// skipping or repeating events.
mod instances {
    use super::*;

    fn reset_then(frames: &[EncodedEvent], ids: &[u64]) {
        let gap = text(&frames[0]);
        assert!(gap.starts_with("id: 0\nevent: reset\n"), "{gap}");
        assert!(gap.contains("\"reason\":\"unknown_id\""), "{gap}");
        assert_eq!(seqs(&frames[1..]), ids);
    }

    #[test]
    fn two_logs_never_share_an_id() {
        let first = EventLog::new();
        let second = EventLog::new();
        let mut firsts = Vec::new();
        let mut seconds = Vec::new();
        for _ in 0..50 {
            firsts.push(first.publish(Event::new().data("first")));
            seconds.push(second.publish(Event::new().data("second")));
        }
        assert!(firsts.iter().all(|id| !seconds.contains(id)));

        // Every id of the first, given to the second: the gap event, then all it holds.
        for id in firsts.iter().step_by(7) {
            let mut wrong_log = second.subscribe(last(id).as_ref());
            reset_then(&drain(&mut wrong_log), &seconds);
        }
        assert_eq!(second.stats().gap_events, 8);
    }

    #[test]
    fn a_log_made_again_starts_above_the_one_before() {
        let before = EventLog::new();
        let old = publish_n(&before, 3);
        drop(before);
        // Made again at once, most likely within the same millisecond.
        let again = EventLog::new();
        let new = publish_n(&again, 5);
        assert!(new[0] > old[2], "{new:?} after {old:?}");
        for id in old {
            let mut resumed = again.subscribe(last(id).as_ref());
            reset_then(&drain(&mut resumed), &new);
        }
    }

    #[test]
    fn ids_start_from_the_clock() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let id = EventLog::new().publish(Event::new());
        assert!(id >= now_ms * 1024, "{id}");
        assert!(id < (now_ms + 60_000) * 1024, "{id}");
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

        // Frames of 36 bytes (a 16-digit id, "event 0" to "event 4"): 200 bytes hold 5 of
        // the 100 events allowed.
        let by_bytes = EventLog::builder().max_events(100).max_bytes(200).build();
        publish_n(&by_bytes, 5);
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

    /// The gap event a feed publishes at position `at` with id `id`.
    fn source_gap(id: u64, at: u64, missed: u64) -> String {
        format!(
            "id: {id}\nevent: reset\ndata: {{\"reason\":\"source_lagged\",\"missed\":{missed},\"resume_from\":{}}}\n\n",
            at + 1
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
        assert_eq!(frames.len(), 3);
        assert!(text(&frames[2]).ends_with("\ndata: c\n\n"));
        let ids = seqs(&frames);
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        // The log goes on after its feed.
        assert!(log.publish(Event::new()) > ids[2]);
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
                // The log's own id for it counts on from the source's.
                source_gap(42, 2, 2),
                "id: 44\ndata: d\n\n".to_owned()
            ]
        );
        assert_eq!(log.stats().source_lost, 2);
        // A client that saw the gap resumes after it.
        let mut after_gap = log.subscribe(last("42").as_ref());
        assert_eq!(
            drain(&mut after_gap).iter().map(id_of).collect::<Vec<_>>(),
            ["44"]
        );
    }

    /// A numbered source whose numbers go back: the items that do not increase are left
    /// out, counted and logged, and the feed goes on.
    #[tokio::test]
    async fn numbered_items_out_of_order_are_left_out_and_counted() {
        let log = EventLog::new();
        let mut all = log.subscribe(None);
        let rows = stream::iter([
            (5, Event::new().data("a")),
            (7, Event::new().data("b")),
            (6, Event::new().data("late")),
            (7, Event::new().data("again")),
            (8, Event::new().data("c")),
        ]);
        assert_eq!(log.feed(rows).await, FeedEnd::SourceEnded);
        assert_eq!(seqs(&drain(&mut all)), [5, 7, 8]);
        let stats = log.stats();
        assert_eq!((stats.published, stats.out_of_order), (3, 2));
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
        let ids = seqs(&frames);
        assert_eq!(text(&frames[0]), source_gap(ids[0], 1, 6));
        let rest: Vec<String> = frames[1..].iter().map(|f| text(f).to_owned()).collect();
        let expected: Vec<String> = (6..10)
            .zip(&ids[1..])
            .map(|(n, id)| format!("id: {id}\ndata: tick {n}\n\n"))
            .collect();
        assert_eq!(rest, expected);
        assert_eq!(log.stats().source_lost, 6);
        assert_eq!(log.stats().published, 5);
    }

    /// Dropping every handle ends the feed while its source is quiet, and drops the
    /// source; a subscription still open does not keep the feed going.
    #[tokio::test]
    async fn dropping_the_log_ends_its_feed_mid_stream() {
        let (log, mut reader, tx, feed) = fed_by_mpsc();
        tx.send(Event::new().data("a")).await.unwrap();
        assert!(text(&reader.next().await.unwrap()).ends_with("\ndata: a\n\n"));

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
        let mut ids = Vec::new();
        for n in 1..=EVENTS {
            let value = Counted {
                n,
                calls: calls.clone(),
            };
            ids.push(log.publish_json(&value).unwrap());
        }

        let mut first: Option<Vec<EncodedEvent>> = None;
        let mut finished = 0;
        let all = async {
            while let Some(frames) = readers.join_next().await {
                let frames = frames.unwrap();
                assert_eq!(seqs(&frames), ids);
                for ((n, id), frame) in (1..=EVENTS).zip(&ids).zip(&frames) {
                    assert_eq!(text(frame), format!("id: {id}\ndata: {n}\n\n"));
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
/// the last id read, as a browser does. Panics on any loss or duplicate (each event's data
/// is its count, its id increases); returns the number of reconnects.
async fn reconnecting_reader(log: EventLog, mut subscription: Subscription, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let (mut last, mut read) = (0, 0);
    let mut reconnects = 0;
    let check = |frame: Option<EncodedEvent>, last: &mut u64, read: &mut u64| {
        let frame = frame.expect("a subscription without lag never ends");
        let id = seq_of(&frame);
        assert!(id > *last, "reader {seed}: ids go back");
        *last = id;
        *read += 1;
        let data = format!("\ndata: {read}\n\n");
        assert!(
            text(&frame).ends_with(&data),
            "reader {seed}: lost or repeated events"
        );
        *read == STRESS_EVENTS
    };
    loop {
        for _ in 0..=rng.below(2_000) {
            if check(subscription.next().await, &mut last, &mut read) {
                return reconnects;
            }
        }
        // Half the time, drop it while it may be registered as a waiter.
        if rng.below(2) == 0 {
            if let Poll::Ready(frame) = futures_util::poll!(subscription.next()) {
                if check(frame, &mut last, &mut read) {
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
                log.publish(Event::new().data(n.to_string()));
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

/// Cost per automatic publish: one log on one thread, then one log per thread on two
/// threads at once (the logs share nothing but the process-wide id high-water mark).
///
/// `cargo test --release --all-features --test replay -- --ignored --nocapture publish_cost_in_memory`
#[test]
#[ignore = "a measurement, not a check: run it on purpose"]
fn publish_cost_in_memory() {
    const EVENTS: u32 = 1_000_000;
    fn run(events: u32) -> Duration {
        let log = EventLog::builder().max_events(1024).build();
        let started = std::time::Instant::now();
        for _ in 0..events {
            log.publish(Event::new().data("{\"price\":123.45}"));
        }
        started.elapsed() / events
    }
    for round in 0..3 {
        let alone = run(EVENTS);
        let both: Vec<Duration> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..2).map(|_| scope.spawn(|| run(EVENTS))).collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        eprintln!("round {round}: one thread {alone:?}/event; two threads {both:?}/event");
    }
}
