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
use tower_sse::{Event, Fallible, KeepAlive, OnItemError, Shutdown, SseBody, SseLayer};

type Items = BoxStream<'static, Fallible<Result<Event, std::io::Error>>>;
/// The body holds its timers inline, so it is `!Unpin`; tests pin it on the heap.
type Body = Pin<Box<SseBody<Items>>>;

/// Serves `items` through `layer` and returns the body.
async fn serve(layer: SseLayer, items: Items) -> Body {
    let cell = std::sync::Mutex::new(Some(items));
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |_req: Request<()>| {
            let items = cell.lock().unwrap().take().unwrap();
            async move { Ok::<_, Infallible>(Response::new(items)) }
        });
    Box::pin(service.oneshot(Request::new(())).await.unwrap().into_body())
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
    let layer = SseLayer::new().keep_alive(KeepAlive::new().text("ping"));
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
    let mut body = serve(SseLayer::new(), items).await;
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
    let mut body = serve(SseLayer::new(), items).await;
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
    let layer = SseLayer::new().on_item_error(OnItemError::Skip);
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
