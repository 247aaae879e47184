//! What the client adds to the standard, on a paused clock: backoff with jitter, its cap
//! and its reset, no hot loop against a server that accepts and drops, read and connect
//! timeouts, caps on attempts and time, and the handle.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use http::{Request, Response};
use tokio::time::Instant;
use tower::service_fn;
use tower_sse::client::{Builder, Cause, Closed, Error, EventSource, Item, ReadyState};

use crate::support::server;
use crate::upstream::{
    events, events_then_silence, get, http_client, next, next_event, stream_response, upstream,
};

/// The delays of the next `n` reconnections, skipping everything else.
async fn delays<S>(source: &mut S, n: usize) -> Vec<(u32, Duration)>
where
    S: futures_util::Stream<Item = Result<Item, Error>> + Unpin,
{
    let mut delays = Vec::new();
    while delays.len() < n {
        if let Item::Reconnecting(next) = next(source).await {
            delays.push((next.attempt(), next.delay()));
        }
    }
    delays
}

#[tokio::test(start_paused = true)]
async fn backoff_is_jittered_capped_and_reset_by_an_event() {
    // Accepts and ends at once, except that every 8th connection sends an event.
    let (server, _log) = upstream(|n, _| {
        if n % 8 == 7 {
            events(["data: ok\n\n"])
        } else {
            events(Vec::<Bytes>::new())
        }
    })
    .await;
    let mut source = Builder::new()
        .reconnection_time(Duration::from_secs(1))
        .max_backoff(Duration::from_secs(8))
        .jitter(0.5)
        .build(http_client(), get(&server, "/"));

    let mut all = Vec::new();
    for round in 0..4 {
        let delays = delays(&mut source, 7).await;
        for (n, (attempt, delay)) in delays.iter().enumerate() {
            let n = n as u32 + 1;
            assert_eq!(
                *attempt, n,
                "round {round}: attempts count from 1 after an event"
            );
            let base = Duration::from_secs(1 << (n - 1).min(3));
            assert!(
                *delay >= base && *delay <= base.mul_f64(1.5),
                "attempt {n}: {delay:?} outside {base:?}..={:?}",
                base.mul_f64(1.5)
            );
        }
        all.extend(delays);
        // The 8th connection delivers an event: the next failure starts over.
        assert_eq!(next_event(&mut source).await.0, "ok");
    }
    let capped: Vec<Duration> = all
        .iter()
        .filter(|(n, _)| *n >= 4)
        .map(|(_, d)| *d)
        .collect();
    assert!(capped.iter().all(|d| *d <= Duration::from_secs(12)));
    assert!(
        capped.iter().any(|d| *d != capped[0]),
        "jitter spreads the waits: {capped:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_accepts_and_closes_gets_few_requests() {
    // A `200 text/event-stream` that ends at once, forever: the standard says reconnect.
    let (server, log) = upstream(|_, _| events(Vec::<Bytes>::new())).await;
    let source = EventSource::new(http_client(), get(&server, "/"));
    let started = Instant::now();
    let window = Duration::from_secs(60);
    let drained = tokio::time::timeout(window, source.for_each(|_| async {})).await;
    assert!(drained.is_err(), "the stream keeps reconnecting");
    assert_eq!(Instant::now() - started, window);
    // Defaults: 3 s, then 6, 12, 24 (plus jitter): at most 5 requests in a minute.
    let requests = log.len();
    assert!(
        (3..=5).contains(&requests),
        "{requests} requests in {window:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_zero_does_not_make_a_hot_loop() {
    // `retry: 0`, then the stream ends without an event, forever.
    let (server, log) = upstream(|_, _| events(["retry: 0\n\n"])).await;
    let source = EventSource::new(http_client(), get(&server, "/"));
    let window = Duration::from_secs(60);
    let drained = tokio::time::timeout(window, source.for_each(|_| async {})).await;
    assert!(drained.is_err(), "the stream keeps reconnecting");
    // Waits of 0, then 0.5, 1, 2, 4, 8, 16, 30 s (plus jitter).
    let requests = log.len();
    assert!(
        (5..=9).contains(&requests),
        "{requests} requests in {window:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_read_timeout_reconnects_and_keep_alives_hold_it_off() {
    // The first response keeps alive every 2 s for 10 s, then goes silent.
    let (server, log) = upstream(|n, _| match n {
        0 => {
            let keep_alives = stream::unfold(0, |n| async move {
                if n == 5 {
                    return None;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                Some((Bytes::from_static(b":\n"), n + 1))
            });
            stream_response(
                stream::once(async { Bytes::from_static(b"data: a\n\n") })
                    .chain(keep_alives)
                    .chain(stream::pending())
                    .boxed(),
            )
        }
        _ => events_then_silence(["data: b\n\n"]),
    })
    .await;
    let mut source = Builder::new()
        .read_timeout(Duration::from_secs(5))
        .jitter(0.0)
        .reconnection_time(Duration::from_millis(100))
        .build(http_client(), get(&server, "/"));
    let opened = Instant::now();
    assert_eq!(next_event(&mut source).await.0, "a");
    let Item::Reconnecting(reconnecting) = next(&mut source).await else {
        panic!("expected a reconnection")
    };
    assert!(matches!(reconnecting.cause(), Cause::ReadTimeout));
    // The last keep-alive came at 10 s; the timeout fired 5 s after it, not 5 s after open.
    let timed_out = Instant::now() - opened;
    assert!(
        (Duration::from_secs(15)..Duration::from_millis(15_500)).contains(&timed_out),
        "{timed_out:?}"
    );
    assert_eq!(next_event(&mut source).await.0, "b");
    assert_eq!(log.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_connect_timeout_reconnects() {
    // A server that never answers the first request.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
        let first = !answered.swap(true, std::sync::atomic::Ordering::SeqCst);
        async move {
            if first {
                std::future::pending::<()>().await;
            }
            Ok::<_, Infallible>(events(["data: late\n\n"]))
        }
    });
    let server = server::serve(service).await;
    let mut source = Builder::new()
        .connect_timeout(Duration::from_secs(4))
        .jitter(0.0)
        .build(http_client(), get(&server, "/"));
    let started = Instant::now();
    let Item::Reconnecting(reconnecting) = next(&mut source).await else {
        panic!("expected a reconnection")
    };
    assert!(matches!(reconnecting.cause(), Cause::ConnectTimeout));
    assert_eq!(Instant::now() - started, Duration::from_secs(4));
    assert_eq!(next_event(&mut source).await.0, "late");
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_then_given_up_at_the_cap() {
    // Nothing listens on this port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let request = Request::get(format!("http://{addr}/"))
        .body(http_body_util::Full::<Bytes>::default())
        .unwrap();
    let mut source = Builder::new().max_attempts(3).build(http_client(), request);
    for attempt in 1..=3 {
        let Item::Reconnecting(reconnecting) = next(&mut source).await else {
            panic!("expected a reconnection")
        };
        assert_eq!(reconnecting.attempt(), attempt);
        assert!(matches!(reconnecting.cause(), Cause::Service(_)));
    }
    let error = source.next().await.unwrap().unwrap_err();
    assert!(
        matches!(&error, Error::GaveUp { attempts: 3, cause } if matches!(**cause, Cause::Service(_))),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "event stream gave up after 3 reconnection attempts"
    );
    assert!(source.next().await.is_none());
    assert_eq!(source.ready_state(), ReadyState::Closed);

    // The cap on time: the waits are 3, 6, 12 s; a 15 s budget allows two.
    let request = Request::get(format!("http://{addr}/"))
        .body(http_body_util::Full::<Bytes>::default())
        .unwrap();
    let mut source = Builder::new()
        .jitter(0.0)
        .max_elapsed(Duration::from_secs(15))
        .build(http_client(), request);
    assert_eq!(
        delays(&mut source, 2).await,
        [(1, Duration::from_secs(3)), (2, Duration::from_secs(6))]
    );
    assert!(matches!(
        source.next().await,
        Some(Err(Error::GaveUp { attempts: 2, .. }))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_broken_body_reconnects() {
    let (server, log) = upstream(|n, _| match n {
        0 => {
            // The error comes a second after the first frame, so the frame is flushed
            // before the server aborts the response.
            let body = http_body_util::StreamBody::new(
                stream::iter([
                    Ok(hyper::body::Frame::data(Bytes::from_static(
                        b"id: 1\ndata: a\n\ndata: b",
                    ))),
                    Err(tower_sse::BoxError::from("reset")),
                ])
                .then(|frame| async move {
                    if frame.is_err() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    frame
                }),
            );
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(http_body_util::BodyExt::boxed_unsync(body))
                .unwrap()
        }
        _ => events(["data: c\n\n"]),
    })
    .await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    assert_eq!(next_event(&mut source).await.0, "a");
    let Item::Reconnecting(reconnecting) = next(&mut source).await else {
        panic!("expected a reconnection")
    };
    assert!(
        matches!(reconnecting.cause(), Cause::Body(_)),
        "{:?}",
        reconnecting.cause()
    );
    assert_eq!(next_event(&mut source).await, ("c".into(), "1".into()));
    assert_eq!(log.get(1).header("last-event-id"), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn a_handle_reconnects_and_closes() {
    let (server, log) = upstream(|n, _| events_then_silence([format!("data: {n}\n\n")])).await;
    let mut source = Builder::new()
        .no_read_timeout()
        .build(http_client(), get(&server, "/"));
    let handle = source.handle();
    assert_eq!(next_event(&mut source).await.0, "0");
    assert_eq!(source.ready_state(), ReadyState::Open);

    // From another task, while the stream waits on a silent connection.
    let reconnect = handle.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        reconnect.reconnect();
    });
    let Item::Reconnecting(reconnecting) = next(&mut source).await else {
        panic!("expected a reconnection")
    };
    assert!(matches!(reconnecting.cause(), Cause::Requested));
    assert_eq!(reconnecting.delay(), Duration::ZERO);
    assert_eq!(next_event(&mut source).await.0, "1");

    handle.close();
    assert!(matches!(
        next(&mut source).await,
        Item::Closed(Closed::Requested)
    ));
    assert!(source.next().await.is_none());
    handle.reconnect();
    assert!(
        source.next().await.is_none(),
        "a closed stream stays closed"
    );
    assert_eq!(log.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_comments_does_not_starve_other_tasks() {
    // In process, so the body is always ready: comments without end, never an event.
    // Without a budget, the reader would loop on this one thread forever.
    let flood = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(stream_response(
            stream::repeat(Bytes::from_static(b": flood\n")).boxed(),
        ))
    });
    let mut source = Box::pin(EventSource::new(flood, || Request::new(())));
    let reader = tokio::spawn(async move { while source.next().await.is_some() {} });
    // Another task on the same thread still gets to run while the client reads.
    let ticks = tokio::spawn(async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    });
    ticks.await.unwrap();
    reader.abort();
}
