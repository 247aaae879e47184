//! The WHATWG processing model over a real hyper server: headers, `Last-Event-ID`, `retry:`,
//! statuses, content types, redirects, and what is sent again on reconnection. Every wait
//! runs on a paused clock.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use tower_sse::client::{
    Builder, Cause, Closed, Error, EventSource, Item, RedirectError, RetryPolicy,
};

use crate::upstream::{events, get, http_client, next, next_event, plain, upstream};

#[tokio::test(start_paused = true)]
async fn reconnects_with_the_last_event_id_after_a_drop() {
    let (server, log) = upstream(|n, _| match n {
        0 => events(["id: 1\ndata: a\n\n"]),
        // No id of its own: the event carries the earlier one, and so does the next request.
        1 => events(["data: b\n\n"]),
        _ => events(["id: 3\ndata: c\n\n"]),
    })
    .await;
    let mut source = EventSource::new(http_client(), get(&server, "/events"));

    let Item::Open(opened) = next(&mut source).await else {
        panic!("expected an open")
    };
    assert_eq!(opened.status(), 200);
    assert_eq!(opened.headers()["content-type"], "text/event-stream");
    assert_eq!(opened.redirects(), 0);
    assert_eq!(next_event(&mut source).await, ("a".into(), "1".into()));
    assert_eq!(next_event(&mut source).await, ("b".into(), "1".into()));
    assert_eq!(next_event(&mut source).await, ("c".into(), "3".into()));
    assert_eq!(source.last_event_id(), "3");

    let first = log.get(0);
    assert_eq!(first.header("accept"), Some("text/event-stream"));
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    assert_eq!(
        first.header("last-event-id"),
        None,
        "nothing to resume on the first request"
    );
    assert_eq!(log.get(1).header("last-event-id"), Some("1"));
    assert_eq!(
        log.get(2).header("last-event-id"),
        Some("1"),
        "id carried over"
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_id_clears_the_last_event_id() {
    let (server, log) = upstream(|n, _| match n {
        0 => events(["id: 5\ndata: a\n\nid\ndata: b\n\n"]),
        _ => events(["data: c\n\n"]),
    })
    .await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    assert_eq!(next_event(&mut source).await, ("a".into(), "5".into()));
    assert_eq!(next_event(&mut source).await, ("b".into(), "".into()));
    assert_eq!(next_event(&mut source).await, ("c".into(), "".into()));
    assert_eq!(
        log.get(1).header("last-event-id"),
        None,
        "no empty Last-Event-ID header"
    );
}

#[tokio::test(start_paused = true)]
async fn an_initial_last_event_id_goes_on_the_first_request() {
    let (server, log) = upstream(|_, _| events(["data: a\n\n"])).await;
    let mut source = Builder::new()
        .last_event_id("41")
        .build(http_client(), get(&server, "/"));
    assert_eq!(next_event(&mut source).await, ("a".into(), "41".into()));
    assert_eq!(log.get(0).header("last-event-id"), Some("41"));
}

#[tokio::test(start_paused = true)]
async fn retry_sets_the_reconnection_time() {
    let (server, log) = upstream(|n, _| match n {
        0 => events(["retry: 10000\ndata: a\n\n"]),
        _ => events(["data: b\n\n"]),
    })
    .await;
    let mut source = Builder::new()
        .jitter(0.0)
        .build(http_client(), get(&server, "/"));
    assert_eq!(source.reconnection_time(), Duration::from_secs(3));
    next_event(&mut source).await;
    assert_eq!(source.reconnection_time(), Duration::from_secs(10));
    let Item::Reconnecting(reconnecting) = next(&mut source).await else {
        panic!("expected a reconnection")
    };
    assert_eq!(reconnecting.delay(), Duration::from_secs(10));
    assert!(matches!(reconnecting.cause(), Cause::Ended));
    next_event(&mut source).await;
    let waited = log.get(1).at - log.get(0).at;
    assert!(
        (Duration::from_secs(10)..Duration::from_secs(11)).contains(&waited),
        "{waited:?}"
    );

    // With jitter, the wait is never shorter than what the server asked for.
    let (server, _log) = upstream(|_, _| events(["retry: 2000\ndata: a\n\n"])).await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    for _ in 0..10 {
        next_event(&mut source).await;
        let Item::Reconnecting(reconnecting) = next(&mut source).await else {
            panic!("expected a reconnection")
        };
        let delay = reconnecting.delay();
        assert!(
            (Duration::from_secs(2)..=Duration::from_secs(3)).contains(&delay),
            "{delay:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn no_content_closes_for_good_after_one_request() {
    let (server, log) = upstream(|_, _| plain(204, &[], "")).await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    assert!(matches!(
        next(&mut source).await,
        Item::Closed(Closed::NoContent)
    ));
    assert!(source.next_item_is_none().await);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(log.len(), 1);
}

/// `futures_util::StreamExt::next` returning `None`, as a method for readability.
trait EndsExt {
    async fn next_item_is_none(&mut self) -> bool;
}

impl<S> EndsExt for S
where
    S: futures_util::Stream + Unpin,
{
    async fn next_item_is_none(&mut self) -> bool {
        futures_util::StreamExt::next(self).await.is_none()
    }
}

#[tokio::test(start_paused = true)]
async fn other_statuses_fail_without_reconnecting() {
    for status in [500, 503, 404, 201] {
        let (server, log) = upstream(move |_, _| {
            plain(
                status,
                &[("x-request-id", "r1"), ("content-type", "application/json")],
                r#"{"error":"no"}"#,
            )
        })
        .await;
        let mut source = EventSource::new(http_client(), get(&server, "/"));
        let error = futures_util::StreamExt::next(&mut source)
            .await
            .unwrap()
            .unwrap_err();
        let Error::Status(refused) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(refused.status(), status);
        assert_eq!(refused.headers()["x-request-id"], "r1");
        assert_eq!(refused.body(), r#"{"error":"no"}"#);
        assert!(!refused.body_truncated());
        assert!(source.next_item_is_none().await);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(log.len(), 1, "{status}: no reconnection");
    }
}

#[tokio::test(start_paused = true)]
async fn a_wrong_content_type_fails_with_a_bounded_body_prefix() {
    let (server, log) = upstream(|_, _| {
        plain(
            200,
            &[("content-type", "text/html")],
            "<html>a long page that goes on and on</html>",
        )
    })
    .await;
    let mut source = Builder::new()
        .error_body_limit(6)
        .build(http_client(), get(&server, "/"));
    let error = futures_util::StreamExt::next(&mut source)
        .await
        .unwrap()
        .unwrap_err();
    let Error::ContentType(refused) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(refused.body(), "<html>");
    assert!(refused.body_truncated());
    assert_eq!(
        error.to_string(),
        "event stream response has content type \"text/html\", not text/event-stream"
    );
    assert!(source.next_item_is_none().await);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(log.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn service_unavailable_with_retry_after_is_retried_under_the_policy() {
    let (server, log) = upstream(|n, _| match n {
        0 => plain(503, &[("retry-after", "7")], "down"),
        1 => plain(429, &[], "slow down"),
        _ => events(["data: up\n\n"]),
    })
    .await;
    let mut source = Builder::new()
        .jitter(0.0)
        .reconnection_time(Duration::from_secs(1))
        .retry_policy(RetryPolicy::transient())
        .build(http_client(), get(&server, "/"));

    let Item::Reconnecting(first) = next(&mut source).await else {
        panic!("expected a reconnection")
    };
    assert!(matches!(
        first.cause(),
        Cause::Status { status, retry_after: Some(after) } if *status == 503 && *after == Duration::from_secs(7)
    ));
    assert_eq!(first.delay(), Duration::from_secs(7));
    let Item::Reconnecting(second) = next(&mut source).await else {
        panic!("expected a reconnection")
    };
    // No Retry-After: the backoff, doubled for the second failure in a row.
    assert_eq!(
        (second.attempt(), second.delay()),
        (2, Duration::from_secs(2))
    );
    assert_eq!(next_event(&mut source).await.0, "up");
    let waited = log.get(1).at - log.get(0).at;
    assert!(waited >= Duration::from_secs(7), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn redirects_are_followed() {
    let (server, log) = upstream(|_, seen| match seen.path.as_str() {
        "/old" => plain(301, &[("location", "/moved")], ""),
        // An absolute location on the same server.
        "/moved" => {
            let host = seen.header("host").unwrap().to_owned();
            let location = format!("http://{host}/final");
            let mut response = plain(307, &[], "");
            response
                .headers_mut()
                .insert("location", location.parse().unwrap());
            response
        }
        _ => events(["data: here\n\n"]),
    })
    .await;
    let mut source = EventSource::new(http_client(), get(&server, "/old"));
    let Item::Open(opened) = next(&mut source).await else {
        panic!("expected an open")
    };
    assert_eq!(opened.redirects(), 2);
    assert_eq!(next_event(&mut source).await.0, "here");
    let paths: Vec<String> = (0..3).map(|n| log.get(n).path).collect();
    assert_eq!(paths, ["/old", "/moved", "/final"]);
}

#[tokio::test(start_paused = true)]
async fn a_post_keeps_its_body_through_307_and_becomes_a_get_after_303() {
    let (server, log) = upstream(|_, seen| match seen.path.as_str() {
        "/a" => plain(307, &[("location", "/b")], ""),
        "/b" => plain(303, &[("location", "/c")], ""),
        _ => events(["data: x\n\n"]),
    })
    .await;
    let request = Request::post(format!("http://{}/a", server.addr()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"q\":1}")))
        .unwrap();
    let mut source = EventSource::new(http_client(), request);
    next_event(&mut source).await;
    assert_eq!(
        (log.get(1).method, log.get(1).body.clone()),
        (Method::POST, Bytes::from_static(b"{\"q\":1}"))
    );
    assert_eq!(log.get(2).method, Method::GET);
    assert!(log.get(2).body.is_empty());
    assert_eq!(log.get(2).header("content-type"), None);
}

#[tokio::test(start_paused = true)]
async fn a_redirect_without_location_is_an_error() {
    let (server, log) = upstream(|_, _| plain(302, &[], "")).await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    let error = futures_util::StreamExt::next(&mut source)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(error, Error::Redirect(RedirectError::MissingLocation(status)) if status == 302),
        "{error:?}"
    );
    assert!(source.next_item_is_none().await);
    assert_eq!(log.len(), 1);

    // A loop ends at the limit.
    let (server, log) = upstream(|_, _| plain(307, &[("location", "/again")], "")).await;
    let mut source = Builder::new()
        .max_redirects(3)
        .build(http_client(), get(&server, "/"));
    let error = futures_util::StreamExt::next(&mut source)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(error, Error::Redirect(RedirectError::TooMany { limit: 3 })),
        "{error:?}"
    );
    assert_eq!(log.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_post_is_sent_again_whole_on_reconnection() {
    let (server, log) = upstream(|n, _| events([format!("id: {n}\ndata: {n}\n\n")])).await;
    let body = Bytes::from_static(br#"{"model":"m","stream":true}"#);
    let request = Request::post(format!("http://{}/v1/chat", server.addr()))
        .header("authorization", "Bearer sk-test")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let mut source = EventSource::new(http_client(), request);
    for n in 0..3 {
        assert_eq!(next_event(&mut source).await.0, n.to_string());
    }
    for n in 0..3 {
        let seen = log.get(n);
        assert_eq!(seen.method, Method::POST);
        assert_eq!(seen.body, body);
        assert_eq!(seen.header("authorization"), Some("Bearer sk-test"));
        assert_eq!(seen.header("content-type"), Some("application/json"));
    }
    assert_eq!(log.get(2).header("last-event-id"), Some("1"));

    // A closure makes each attempt's request: a fresh token each time.
    let (server, log) = upstream(|_, _| events(["data: x\n\n"])).await;
    let addr = server.addr();
    let mut tokens = 0;
    let make = move || {
        tokens += 1;
        Request::post(format!("http://{addr}/"))
            .header("authorization", format!("Bearer {tokens}"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    };
    let mut source = EventSource::new(http_client(), make);
    next_event(&mut source).await;
    next_event(&mut source).await;
    assert_eq!(log.get(1).header("authorization"), Some("Bearer 2"));
}

#[tokio::test(start_paused = true)]
async fn a_partial_event_is_discarded() {
    let (server, _log) = upstream(|n, _| match n {
        0 => events(["data: a\n\ndata: cut", " off"]),
        _ => events(["data: b\n\n"]),
    })
    .await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    assert_eq!(next_event(&mut source).await.0, "a");
    assert_eq!(next_event(&mut source).await.0, "b");
}

#[tokio::test(start_paused = true)]
async fn comments_only_when_asked() {
    let (server, _log) = upstream(|_, _| events([": keep-alive\ndata: a\n\n"])).await;
    let mut quiet = EventSource::new(http_client(), get(&server, "/"));
    assert!(matches!(next(&mut quiet).await, Item::Open(_)));
    assert!(matches!(next(&mut quiet).await, Item::Event(_)));

    let mut chatty = Builder::new()
        .comments(true)
        .build(http_client(), get(&server, "/"));
    assert!(matches!(next(&mut chatty).await, Item::Open(_)));
    assert!(matches!(next(&mut chatty).await, Item::Comment(text) if text == "keep-alive"));
    assert!(matches!(next(&mut chatty).await, Item::Event(_)));
}

#[tokio::test(start_paused = true)]
async fn over_http2_and_through_tower_http_layers() {
    let (server, log) = upstream(|n, _| match n {
        0 => events(["id: 1\ndata: a\n\n"]),
        _ => events(["data: b\n\n"]),
    })
    .await;
    // hyper-util's client speaking HTTP/2 (prior knowledge), behind tower-http's trace and
    // decompression layers: the response body is theirs, not hyper's.
    let http2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let stack = tower::ServiceBuilder::new()
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::decompression::DecompressionLayer::new())
        .service(http2);
    let mut source = EventSource::new(stack, get(&server, "/"));
    assert_eq!(next_event(&mut source).await, ("a".into(), "1".into()));
    assert_eq!(next_event(&mut source).await, ("b".into(), "1".into()));
    assert_eq!(log.get(1).header("last-event-id"), Some("1"));
    assert!(
        log.get(0).header("accept-encoding").is_some(),
        "through the decompression layer"
    );
}
