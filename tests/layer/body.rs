//! The body's timing and ending behaviour, on a paused Tokio clock, through the real stack.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::{advance, timeout, Instant};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tower::{ServiceBuilder, ServiceExt};
use tower_sse::{
    ConnectionKey, Event, Fallible, KeepAlive, MaybeStream, OnItemError, Shutdown, SseBody,
    SseLayer, SseOptions,
};

type Items = BoxStream<'static, Fallible<Result<Event, std::io::Error>>>;
/// The body holds its timers inline, so it is `!Unpin`; tests pin it on the heap.
type Body = Pin<Box<SseBody<Items>>>;

/// Serves `items` through `layer` and returns the body.
async fn serve(layer: SseLayer, items: Items) -> Body {
    serve_with(layer, None, items).await
}

/// Serves `items` through `layer`, the inner service answering with `options` if any.
async fn serve_with(layer: SseLayer, options: Option<SseOptions>, items: Items) -> Body {
    let cell = std::sync::Mutex::new(Some((items, options)));
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |_req: Request<()>| {
            let (items, options) = cell.lock().unwrap().take().unwrap();
            let response = match options {
                Some(options) => options.response(items),
                None => Response::new(items),
            };
            async move { Ok::<_, Infallible>(response) }
        });
    Box::pin(service.oneshot(Request::new(())).await.unwrap().into_body())
}

/// A keep-alive exactly on its interval, for tests that pin exact times.
fn exact() -> KeepAlive {
    KeepAlive::new().jitter(0.0)
}

fn event(text: &'static str) -> Fallible<Result<Event, std::io::Error>> {
    Fallible(Ok(Event::new().data(text)))
}

/// A source fed by the test; it never ends unless the sender is dropped.
fn channel() -> (mpsc::UnboundedSender<&'static str>, Items) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, UnboundedReceiverStream::new(rx).map(event).boxed())
}

/// The next frame's bytes, or `None` at the end of the body.
async fn next(body: &mut Body) -> Option<Bytes> {
    let frame = body.frame().await?.unwrap();
    Some(frame.into_data().unwrap())
}

/// The next frame if one comes within `within` (of paused, auto-advancing time).
async fn next_within(body: &mut Body, within: Duration) -> Option<Option<Bytes>> {
    timeout(within, next(body)).await.ok()
}

#[tokio::test(start_paused = true)]
async fn opening_frame_comes_before_any_item() {
    let (_tx, items) = channel();
    let mut body = serve(SseLayer::new(), items).await;
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");

    let (_tx, items) = channel();
    let mut body = serve(SseLayer::new().retry(Duration::from_millis(2500)), items).await;
    assert_eq!(next(&mut body).await.unwrap(), "retry: 2500\n\n");
}

#[tokio::test(start_paused = true)]
async fn keep_alive_after_idle_interval_only() {
    let (_tx, items) = channel();
    let layer = SseLayer::new().keep_alive(exact().text("ping"));
    let mut body = serve(layer, items).await;
    next(&mut body).await.unwrap();
    let start = Instant::now();

    assert_eq!(
        next_within(&mut body, Duration::from_millis(14_999)).await,
        None
    );
    assert_eq!(next(&mut body).await.unwrap(), ": ping\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    assert_eq!(next(&mut body).await.unwrap(), ": ping\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn every_frame_restarts_the_keep_alive_interval() {
    let (tx, items) = channel();
    let mut body = serve(SseLayer::new().keep_alive(exact()), items).await;
    next(&mut body).await.unwrap();
    let start = Instant::now();

    // Events every 10 s for a minute: never 15 s of silence, so no keep-alive.
    for _ in 0..6 {
        assert_eq!(next_within(&mut body, Duration::from_secs(10)).await, None);
        tx.send("tick").unwrap();
        assert_eq!(next(&mut body).await.unwrap(), "data: tick\n\n");
    }
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(75));
}

#[tokio::test(start_paused = true)]
async fn no_keep_alive_sends_nothing() {
    let (_tx, items) = channel();
    let mut body = serve(SseLayer::new().no_keep_alive(), items).await;
    next(&mut body).await.unwrap();
    assert_eq!(
        next_within(&mut body, Duration::from_secs(3600)).await,
        None
    );
}

#[tokio::test(start_paused = true)]
async fn ready_item_beats_a_due_keep_alive() {
    let (tx, items) = channel();
    let mut body = serve(SseLayer::new().keep_alive(exact()), items).await;
    next(&mut body).await.unwrap();
    // The keep-alive is due and an item is ready when the body is next polled.
    advance(Duration::from_secs(15)).await;
    tx.send("first").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: first\n\n");
    assert_eq!(
        next_within(&mut body, Duration::from_millis(14_999)).await,
        None
    );
}

#[tokio::test(start_paused = true)]
async fn max_duration_ends_cleanly_at_an_event_boundary() {
    let items =
        tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(Duration::from_secs(1)))
            .map(|_| event("tick"))
            .boxed();
    let layer = SseLayer::new().max_duration(Duration::from_millis(3500));
    let mut body = serve(layer, items).await;
    let start = Instant::now();
    let mut frames = Vec::new();
    while let Some(frame) = next(&mut body).await {
        frames.push(frame);
    }
    assert_eq!(start.elapsed(), Duration::from_millis(3500));
    // Opening, then ticks at 0, 1, 2 and 3 s.
    assert_eq!(frames.len(), 5);
    assert!(frames[1..].iter().all(|frame| frame == "data: tick\n\n"));
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
    assert!(body.frame().await.is_none(), "keeps answering None");
}

#[tokio::test(start_paused = true)]
async fn max_duration_ends_an_always_ready_source() {
    let items = stream::repeat_with(|| event("x")).boxed();
    let layer = SseLayer::new().max_duration(Duration::from_secs(1));
    let mut body = serve(layer, items).await;
    next(&mut body).await.unwrap();
    let mut frames = 0;
    // The source never waits, so only the lifetime can end this; advance the clock by hand.
    loop {
        match next_within(&mut body, Duration::from_secs(5))
            .await
            .unwrap()
        {
            Some(_) => frames += 1,
            None => break,
        }
        advance(Duration::from_millis(100)).await;
        assert!(frames < 100, "lifetime never checked");
    }
    assert!((9..=11).contains(&frames), "{frames} frames");
}

#[tokio::test(start_paused = true)]
async fn max_duration_jitter_spreads_lifetimes() {
    let mut lifetimes = Vec::new();
    for _ in 0..10 {
        let (_tx, items) = channel();
        let layer = SseLayer::new()
            .no_keep_alive()
            .max_duration(Duration::from_secs(100))
            .max_duration_jitter(0.5);
        let mut body = serve(layer, items).await;
        next(&mut body).await.unwrap();
        let start = Instant::now();
        assert_eq!(next(&mut body).await, None);
        lifetimes.push(start.elapsed());
    }
    assert!(lifetimes
        .iter()
        .all(|d| (Duration::from_secs(50)..=Duration::from_secs(100)).contains(d)));
    assert!(
        lifetimes.iter().any(|d| *d != lifetimes[0]),
        "{lifetimes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_counts_items_not_keep_alives() {
    let (tx, items) = channel();
    let layer = SseLayer::new()
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(4)))
        .idle_timeout(Duration::from_secs(10));
    let mut body = serve(layer, items).await;
    next(&mut body).await.unwrap();
    let start = Instant::now();
    advance(Duration::from_secs(6)).await;
    tx.send("a").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\n");
    // Keep-alives at 10 s and 14 s do not reset the idle clock, which runs out at 16 s.
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(next(&mut body).await, None);
    assert_eq!(start.elapsed(), Duration::from_secs(16));
}

#[tokio::test(start_paused = true)]
async fn ready_items_are_coalesced_up_to_the_cap() {
    let (tx, items) = channel();
    let mut body = serve(SseLayer::new(), items).await;
    next(&mut body).await.unwrap();
    for text in ["a", "b", "c"] {
        tx.send(text).unwrap();
    }
    assert_eq!(
        next(&mut body).await.unwrap(),
        "data: a\n\ndata: b\n\ndata: c\n\n"
    );

    let (tx, items) = channel();
    let mut body = serve(SseLayer::new().max_frame_bytes(10), items).await;
    next(&mut body).await.unwrap();
    for text in ["a", "b", "c"] {
        tx.send(text).unwrap();
    }
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\ndata: b\n\n");
    assert_eq!(next(&mut body).await.unwrap(), "data: c\n\n");
}

#[tokio::test(start_paused = true)]
async fn finite_source_ends_the_body_after_its_last_event() {
    let items = stream::iter([event("a"), event("b")]).boxed();
    let mut body = serve(SseLayer::new(), items).await;
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\ndata: b\n\n");
    assert!(body.is_end_stream());
    assert_eq!(next(&mut body).await, None);
}

fn failing() -> Items {
    stream::iter([
        event("a"),
        Fallible(Err(std::io::Error::other("source failed"))),
        event("b"),
    ])
    .boxed()
}

#[tokio::test(start_paused = true)]
async fn item_error_ends_the_stream_by_default() {
    let body = serve(SseLayer::new(), failing()).await;
    let bytes = body.collect().await.unwrap().to_bytes();
    assert_eq!(bytes, ":\n\ndata: a\n\n");
}

#[tokio::test(start_paused = true)]
async fn item_error_can_be_skipped() {
    let layer = SseLayer::new().on_item_error(OnItemError::Skip);
    let bytes = serve(layer, failing()).await.collect().await.unwrap();
    assert_eq!(bytes.to_bytes(), ":\n\ndata: a\n\ndata: b\n\n");
}

#[tokio::test(start_paused = true)]
async fn serializer_error_follows_the_policy_and_leaves_no_partial_frame() {
    #[derive(Debug)]
    struct Value(bool);
    impl serde::Serialize for Value {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if self.0 {
                serializer.serialize_u8(1)
            } else {
                Err(serde::ser::Error::custom("refused"))
            }
        }
    }
    async fn run(layer: SseLayer) -> Bytes {
        let service = ServiceBuilder::new()
            .layer(layer)
            .service_fn(|_req: Request<()>| async {
                let values = stream::iter([Value(true), Value(false), Value(true)]);
                Ok::<_, Infallible>(Response::new(values))
            });
        let response = service.oneshot(Request::new(())).await.unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    }
    assert_eq!(run(SseLayer::new()).await, ":\n\ndata: 1\n\n");
    assert_eq!(
        run(SseLayer::new().on_item_error(OnItemError::Skip)).await,
        ":\n\ndata: 1\n\ndata: 1\n\n"
    );
}

#[tokio::test(start_paused = true)]
async fn skipped_items_do_not_count_as_frames_for_keep_alive() {
    let (tx, rx) = mpsc::unbounded_channel();
    let items = UnboundedReceiverStream::new(rx).boxed();
    let layer = SseLayer::new()
        .keep_alive(exact())
        .on_item_error(OnItemError::Skip);
    let mut body = serve(layer, items).await;
    next(&mut body).await.unwrap();
    let start = Instant::now();
    advance(Duration::from_secs(10)).await;
    tx.send(Fallible(Err(std::io::Error::other("bad"))))
        .unwrap();
    // Nothing was sent at 10 s, so the keep-alive is still due 15 s after the opening.
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(15));
}

#[tokio::test]
async fn endless_errors_do_not_starve_the_runtime() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let items = stream::repeat_with(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        Fallible(Err(std::io::Error::other("bad")))
    })
    .boxed();
    let layer = SseLayer::new().on_item_error(OnItemError::Skip);
    let mut body = serve(layer, items).await;
    next(&mut body).await.unwrap();
    // An always-failing source gives nothing to send: the body must still hand control back
    // after a bounded batch, and ask to be polled again.
    let (waker, woken) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(body.as_mut().poll_frame(&mut cx).is_pending());
    let batch = pulled.load(Ordering::Relaxed);
    assert!((1..=1024).contains(&batch), "{batch} items in one poll");
    assert_eq!(woken.load(Ordering::Relaxed), 1, "not rescheduled");
    assert!(body.as_mut().poll_frame(&mut cx).is_pending());
    assert_eq!(pulled.load(Ordering::Relaxed), 2 * batch);
}

fn counting_waker() -> (Waker, Arc<AtomicUsize>) {
    struct Count(Arc<AtomicUsize>);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let count = Arc::new(AtomicUsize::new(0));
    (Waker::from(Arc::new(Count(count.clone()))), count)
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_every_live_body_with_farewell_and_retry() {
    let shutdown = Shutdown::new()
        .farewell(Event::new().event("bye").unwrap().data("restarting"))
        .reconnect_window(Duration::from_secs(10));
    let layer = SseLayer::new().shutdown(shutdown.clone());
    let mut senders = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..50 {
        let (tx, items) = channel();
        let mut body = serve(layer.clone(), items).await;
        next(&mut body).await.unwrap();
        senders.push(tx);
        bodies.push(body);
    }
    let drained = bodies.into_iter().map(|mut body| {
        tokio::spawn(async move {
            let mut frames = Vec::new();
            while let Some(frame) = next(&mut body).await {
                frames.push(frame);
            }
            frames
        })
    });
    let drained: Vec<_> = drained.collect();
    tokio::task::yield_now().await;
    shutdown.trigger();

    let mut retries = Vec::new();
    for task in drained {
        let frames = timeout(Duration::from_secs(1), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(frames.len(), 1, "{frames:?}");
        let text = std::str::from_utf8(&frames[0]).unwrap();
        let retry = text
            .strip_prefix("event: bye\ndata: restarting\n\nretry: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("unexpected drain frame {text:?}"));
        retries.push(retry.parse::<u64>().unwrap());
    }
    assert!(retries.iter().all(|ms| *ms <= 10_000));
    assert!(retries.iter().any(|ms| *ms != retries[0]), "not spread");

    // A stream that starts after the trigger drains right after its opening frame.
    let (_tx, items) = channel();
    let mut late = serve(layer, items).await;
    assert_eq!(next(&mut late).await.unwrap(), ":\n\n");
    assert!(next(&mut late).await.unwrap().starts_with(b"event: bye\n"));
    assert_eq!(next(&mut late).await, None);
}

// ---------------------------------------------------------------------------------------
// Keep-alive jitter

/// Reads each body's next frame in its own task and returns when each came, after `start`.
async fn next_frame_times(bodies: Vec<Body>, start: Instant) -> Vec<(Duration, Bytes, Body)> {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|mut body| {
            tokio::spawn(async move {
                let frame = next(&mut body).await.unwrap();
                (start.elapsed(), frame, body)
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        times.push(task.await.unwrap());
    }
    times
}

/// Serves `items` through `layer` for a request that came on `connection`.
async fn serve_on(layer: SseLayer, connection: ConnectionKey, items: Items) -> Body {
    let cell = std::sync::Mutex::new(Some(items));
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |_req: Request<()>| {
            let items = cell.lock().unwrap().take().unwrap();
            async move { Ok::<_, Infallible>(Response::new(items)) }
        });
    let mut request = Request::new(());
    request.extensions_mut().insert(connection);
    Box::pin(service.oneshot(request).await.unwrap().into_body())
}

/// The streams of one connection (requests with the same `ConnectionKey`, as over one
/// HTTP/2 connection) send their keep-alives at the same instant, so they share a wake-up
/// and a write; the next connection's come at another instant of the window.
#[tokio::test(start_paused = true)]
async fn streams_of_one_connection_keep_alive_together() {
    let mut bodies = Vec::new();
    let mut senders = Vec::new();
    let connections = [ConnectionKey::next(), ConnectionKey::next()];
    for connection in connections {
        for _ in 0..3 {
            let (tx, items) = channel();
            let mut body = serve_on(SseLayer::new(), connection, items).await;
            assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
            senders.push(tx);
            bodies.push(body);
        }
    }
    let start = Instant::now();
    let times: Vec<_> = next_frame_times(bodies, start)
        .await
        .into_iter()
        .map(|(at, frame, _)| {
            assert_eq!(frame, ":\n\n");
            at
        })
        .collect();
    assert!(times[..3].iter().all(|at| *at == times[0]), "{times:?}");
    assert!(times[3..].iter().all(|at| *at == times[3]), "{times:?}");
    assert_ne!(times[0], times[3]);
    let window = Duration::from_secs(12)..=Duration::from_secs(15);
    assert!(times.iter().all(|at| window.contains(at)), "{times:?}");
}

/// Streams opened at the same instant do not send their first keep-alive at the same
/// instant: each comes at a point of [12 s, 15 s], never after the 15 s interval.
/// The next one of the same silence comes one whole interval later.
#[tokio::test(start_paused = true)]
async fn first_keep_alives_of_streams_opened_together_are_spread() {
    let mut bodies = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..100 {
        let (tx, items) = channel();
        let mut body = serve(SseLayer::new(), items).await;
        assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
        senders.push(tx);
        bodies.push(body);
    }
    let start = Instant::now();
    let first = next_frame_times(bodies, start).await;
    let window = Duration::from_secs(12)..=Duration::from_secs(15);
    for (at, frame, _) in &first {
        assert_eq!(frame, ":\n\n");
        assert!(window.contains(at), "first keep-alive at {at:?}");
    }
    let mut distinct: Vec<_> = first.iter().map(|(at, ..)| *at).collect();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 10,
        "only {} distinct instants",
        distinct.len()
    );

    // Within one silence, the next keep-alive is exactly one interval after the last.
    let (at, _, mut body) = first.into_iter().next().unwrap();
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), at + Duration::from_secs(15));
}

/// Streams woken together by one broadcast event spread their next keep-alive as well.
#[tokio::test(start_paused = true)]
async fn keep_alives_after_a_shared_event_are_spread() {
    let mut bodies = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..100 {
        let (tx, items) = channel();
        let mut body = serve(SseLayer::new(), items).await;
        next(&mut body).await.unwrap();
        senders.push(tx);
        bodies.push(body);
    }
    advance(Duration::from_secs(5)).await;
    for tx in &senders {
        tx.send("news").unwrap();
    }
    let mut after_event = Vec::new();
    for mut body in bodies {
        assert_eq!(next(&mut body).await.unwrap(), "data: news\n\n");
        after_event.push(body);
    }
    let start = Instant::now();
    let times = next_frame_times(after_event, start).await;
    let window = Duration::from_secs(12)..=Duration::from_secs(15);
    assert!(times
        .iter()
        .all(|(at, frame, _)| frame == ":\n\n" && window.contains(at)));
    assert!(times.iter().any(|(at, ..)| *at != times[0].0), "not spread");
}

/// A stream whose frames are never further apart than the shortest jittered delay
/// (12 s of 15 s) sends no keep-alive at all.
#[tokio::test(start_paused = true)]
async fn busy_stream_sends_no_keep_alive_with_jitter() {
    for _ in 0..20 {
        let (tx, items) = channel();
        let mut body = serve(SseLayer::new(), items).await;
        next(&mut body).await.unwrap();
        for _ in 0..10 {
            assert_eq!(
                next_within(&mut body, Duration::from_millis(11_999)).await,
                None
            );
            tx.send("tick").unwrap();
            assert_eq!(next(&mut body).await.unwrap(), "data: tick\n\n");
        }
        let start = Instant::now();
        assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
        let at = start.elapsed();
        assert!(
            (Duration::from_secs(12)..=Duration::from_secs(15)).contains(&at),
            "{at:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Per-response options

/// The response's keep-alive replaces the layer's; the layer's retry still applies.
#[tokio::test(start_paused = true)]
async fn response_keep_alive_overrides_the_layer_and_the_rest_falls_back() {
    let layer = SseLayer::new()
        .retry(Duration::from_millis(1000))
        .keep_alive(exact().text("layer"));
    let options =
        SseOptions::new().keep_alive(exact().interval(Duration::from_secs(2)).text("route"));

    let (_tx, items) = channel();
    let mut body = serve_with(layer.clone(), Some(options), items).await;
    assert_eq!(next(&mut body).await.unwrap(), "retry: 1000\n\n");
    let start = Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), ": route\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(next(&mut body).await.unwrap(), ": route\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(4));

    // The same layer without options: its own keep-alive.
    let (_tx, items) = channel();
    let mut body = serve_with(layer.clone(), None, items).await;
    assert_eq!(next(&mut body).await.unwrap(), "retry: 1000\n\n");
    let start = Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), ": layer\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(15));

    // Off for one response.
    let (_tx, items) = channel();
    let mut body = serve_with(layer, Some(SseOptions::new().no_keep_alive()), items).await;
    next(&mut body).await.unwrap();
    assert_eq!(
        next_within(&mut body, Duration::from_secs(3600)).await,
        None
    );
}

#[tokio::test(start_paused = true)]
async fn response_idle_timeout_and_max_duration_override_the_layer() {
    let layer = SseLayer::new()
        .no_keep_alive()
        .idle_timeout(Duration::from_secs(60))
        .max_duration(Duration::from_secs(600));

    // A shorter idle timeout for this response.
    let (_tx, items) = channel();
    let options = SseOptions::new().idle_timeout(Duration::from_secs(5));
    let mut body = serve_with(layer.clone(), Some(options), items).await;
    next(&mut body).await.unwrap();
    let start = Instant::now();
    assert_eq!(next(&mut body).await, None);
    assert_eq!(start.elapsed(), Duration::from_secs(5));

    // Without options, the layer's.
    let (_tx, items) = channel();
    let mut body = serve_with(layer.clone(), None, items).await;
    next(&mut body).await.unwrap();
    let start = Instant::now();
    assert_eq!(next(&mut body).await, None);
    assert_eq!(start.elapsed(), Duration::from_secs(60));

    // No idle limit, a 100 s lifetime with the layer's jitter of none.
    let (_tx, items) = channel();
    let options = SseOptions::new()
        .no_idle_timeout()
        .max_duration(Duration::from_secs(100));
    let mut body = serve_with(layer.clone(), Some(options), items).await;
    next(&mut body).await.unwrap();
    let start = Instant::now();
    assert_eq!(next(&mut body).await, None);
    assert_eq!(start.elapsed(), Duration::from_secs(100));

    // No limits at all, a jitter that only applies to a lifetime.
    let (_tx, items) = channel();
    let options = SseOptions::new()
        .no_idle_timeout()
        .no_max_duration()
        .max_duration_jitter(0.5);
    let mut body = serve_with(layer.clone(), Some(options), items).await;
    next(&mut body).await.unwrap();
    assert_eq!(
        next_within(&mut body, Duration::from_secs(3600)).await,
        None
    );

    // The jitter for this response shortens the layer's lifetime.
    let (_tx, items) = channel();
    let options = SseOptions::new().no_idle_timeout().max_duration_jitter(0.5);
    let mut body = serve_with(layer, Some(options), items).await;
    next(&mut body).await.unwrap();
    let start = Instant::now();
    assert_eq!(next(&mut body).await, None);
    assert!((Duration::from_secs(300)..=Duration::from_secs(600)).contains(&start.elapsed()));
}

#[tokio::test(start_paused = true)]
async fn response_retry_overrides_and_switches_off() {
    let layer = SseLayer::new().retry(Duration::from_millis(1000));
    let (_tx, items) = channel();
    let options = SseOptions::new().retry(Duration::from_millis(250));
    let mut body = serve_with(layer.clone(), Some(options), items).await;
    assert_eq!(next(&mut body).await.unwrap(), "retry: 250\n\n");

    let (_tx, items) = channel();
    let mut body = serve_with(layer, Some(SseOptions::new().no_retry()), items).await;
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
}

// ---------------------------------------------------------------------------------------
// Opening frame

#[tokio::test(start_paused = true)]
async fn no_opening_frame_sends_the_first_event_first() {
    let (tx, items) = channel();
    let mut body = serve(SseLayer::new().no_opening_frame(), items).await;
    assert_eq!(next_within(&mut body, Duration::from_secs(1)).await, None);
    tx.send("a").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\n");

    // The default, for contrast.
    let (_tx, items) = channel();
    let mut body = serve(SseLayer::new(), items).await;
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
}

/// With the opening frame off, the `retry:` hint rides in front of the first frame,
/// whether that is an event, a keep-alive, or the end of the stream.
#[tokio::test(start_paused = true)]
async fn without_opening_frame_retry_goes_out_with_the_first_frame() {
    let layer = SseLayer::new()
        .no_opening_frame()
        .retry(Duration::from_millis(1000))
        .keep_alive(exact().interval(Duration::from_secs(5)));

    let (tx, items) = channel();
    let mut body = serve(layer.clone(), items).await;
    tx.send("a").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "retry: 1000\n\ndata: a\n\n");
    tx.send("b").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: b\n\n");

    let (_tx, items) = channel();
    let mut body = serve(layer.clone(), items).await;
    let start = Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), "retry: 1000\n\n:\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");

    // A stream that ends before sending anything still tells the browser when to retry.
    let (tx, items) = channel();
    let mut body = serve(layer.clone(), items).await;
    drop(tx);
    assert_eq!(next(&mut body).await.unwrap(), "retry: 1000\n\n");
    assert_eq!(next(&mut body).await, None);
    assert!(body.is_end_stream());

    // Skipped items send nothing, so the hint keeps waiting.
    let (tx, rx) = mpsc::unbounded_channel();
    let items = UnboundedReceiverStream::new(rx).boxed();
    let mut body = serve(layer.on_item_error(OnItemError::Skip), items).await;
    tx.send(Fallible(Err(std::io::Error::other("bad"))))
        .unwrap();
    assert_eq!(next_within(&mut body, Duration::from_secs(1)).await, None);
    tx.send(event("c")).unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "retry: 1000\n\ndata: c\n\n");
}

#[tokio::test(start_paused = true)]
async fn opening_frame_per_response_both_ways() {
    // Off on the layer, on for one response.
    let layer = SseLayer::new()
        .no_opening_frame()
        .retry(Duration::from_millis(700));
    let (_tx, items) = channel();
    let mut body = serve_with(layer, Some(SseOptions::new().opening_frame()), items).await;
    assert_eq!(next(&mut body).await.unwrap(), "retry: 700\n\n");

    // On on the layer, off for one response.
    let (tx, items) = channel();
    let options = SseOptions::new().no_opening_frame();
    let mut body = serve_with(SseLayer::new(), Some(options), items).await;
    tx.send("first").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: first\n\n");
}

#[tokio::test(start_paused = true)]
async fn no_opening_frame_with_a_deferred_retry_and_shutdown() {
    let shutdown = Shutdown::new().reconnect_window(Duration::ZERO);
    let layer = SseLayer::new()
        .no_opening_frame()
        .retry(Duration::from_millis(1000))
        .shutdown(shutdown.clone());
    let (_tx, items) = channel();
    let mut body = serve(layer, items).await;
    assert_eq!(next_within(&mut body, Duration::from_secs(1)).await, None);
    shutdown.trigger();
    // No farewell and no drain retry: the layer's hint still goes out before the end.
    assert_eq!(next(&mut body).await.unwrap(), "retry: 1000\n\n");
    assert_eq!(next(&mut body).await, None);
}

// ---------------------------------------------------------------------------------------
// Ways to attach options, and responses that are not streamed

/// `Response::builder().extension(options)` works as well as `SseOptions::response`, and
/// the options do not leak into the response the server sends.
#[tokio::test(start_paused = true)]
async fn options_through_the_response_builder() {
    let service =
        ServiceBuilder::new()
            .layer(SseLayer::new())
            .service_fn(|_req: Request<()>| async {
                let response = Response::builder()
                    .extension(SseOptions::new().no_opening_frame())
                    .body(stream::iter([Event::new().data("only")]))
                    .unwrap();
                Ok::<_, Infallible>(response)
            });
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert!(response.extensions().get::<SseOptions>().is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "data: only\n\n");
}

#[tokio::test(start_paused = true)]
async fn maybe_stream_answers_a_status_or_streams() {
    let service =
        ServiceBuilder::new()
            .layer(SseLayer::new())
            .service_fn(|req: Request<()>| async move {
                let events = stream::iter([Event::new().data("hi")]);
                Ok::<_, Infallible>(match req.uri().path() {
                    "/gone" => MaybeStream::status(http::StatusCode::NO_CONTENT),
                    "/none" => Response::new(MaybeStream::none()),
                    _ => MaybeStream::response(events),
                })
            });
    let get = |path: &str| Request::get(path).body(()).unwrap();

    let response = service.clone().oneshot(get("/gone")).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::NO_CONTENT);
    assert!(response.headers().is_empty());
    assert!(response.body().is_end_stream());
    assert!(response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());

    // `200 OK` without a stream: the opening frame, then the end.
    let response = service.clone().oneshot(get("/none")).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, ":\n\n");

    let response = service.oneshot(get("/events")).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, ":\n\ndata: hi\n\n");
}

/// 10,000 streams opened in the same instant: their first keep-alives spread over the
/// 3 s window instead of all firing in one millisecond, as they did without jitter, yet
/// fall on a few dozen shared instants rather than thousands.
#[tokio::test(start_paused = true)]
async fn ten_thousand_streams_do_not_keep_alive_in_one_burst() {
    const STREAMS: usize = 10_000;
    let mut bodies = Vec::with_capacity(STREAMS);
    let mut senders = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        let (tx, items) = channel();
        let mut body = serve(SseLayer::new(), items).await;
        next(&mut body).await.unwrap();
        senders.push(tx);
        bodies.push(body);
    }
    let start = Instant::now();
    let times = next_frame_times(bodies, start).await;
    let mut per_instant = std::collections::HashMap::<u128, usize>::new();
    let mut per_100_ms = std::collections::HashMap::<u128, usize>::new();
    for (at, frame, _) in &times {
        assert_eq!(frame, ":\n\n");
        assert!((Duration::from_secs(12)..=Duration::from_secs(15)).contains(at));
        *per_instant.entry(at.as_millis()).or_default() += 1;
        *per_100_ms.entry(at.as_millis() / 100).or_default() += 1;
    }
    // Spread over the window: no 100 ms holds more than a twentieth of the streams.
    let busiest = per_100_ms.values().copied().max().unwrap();
    assert!(busiest <= STREAMS / 20, "{busiest} keep-alives in 100 ms");
    // On a grid of at most 32 points: streams due together wake the runtime together.
    assert!(
        (20..=32).contains(&per_instant.len()),
        "{} distinct instants",
        per_instant.len()
    );
}
