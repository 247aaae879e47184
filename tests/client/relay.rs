//! The relay example end to end over real hyper servers on 127.0.0.1: an upstream that ends
//! every response after a few tokens, the relay decoding and re-encoding it, and a client
//! reading the relay over HTTP/1.1 and HTTP/2. The client must see every token once, in
//! order, and the upstream must see each reconnection resume after the last id.

#[path = "../../examples/relay.rs"]
#[allow(dead_code)] // Its `main` is not used here.
mod example;
use crate::support::server;

use std::time::Duration;

use tokio::net::TcpListener;
use tower_sse::decode::{Collected, Collector};

use server::{empty, Client, Proto};

/// Bounds every test: nothing here waits on a timer, so this only catches a hang.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts an upstream ending each response after `per_connection` tokens and a relay in
/// front of it; reads the relay's `/answer` with `last_event_id`, to its end.
async fn relay_answer(
    per_connection: usize,
    proto: Proto,
    last_event_id: Option<&str>,
) -> (Collected, example::Upstream) {
    let upstream = example::Upstream::new(per_connection);
    let upstream_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream_listener.local_addr().unwrap();
    let upstream_task = tokio::spawn(example::serve_upstream(upstream_listener, upstream.clone()));

    let relay_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay_listener.local_addr().unwrap();
    let relay_task = tokio::spawn(example::serve_relay(relay_listener, upstream_addr));

    let mut client = Client::connect(relay_addr, proto).await;
    let mut request = client.get("/answer");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = client.send(empty(request)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // A relay that repeats tokens would never reach `done`: stop it one event past the
    // most a correct one sends (every token, then `done`).
    let collector = Collector::new().max_events(example::ANSWER.len() + 2);
    let collected = tokio::time::timeout(TEST_TIMEOUT, collector.collect(response.into_body()))
        .await
        .expect("the relayed stream ends");

    relay_task.abort();
    upstream_task.abort();
    (collected, upstream)
}

/// Checks the relayed stream holds exactly the tokens after `first`, then `done`.
fn assert_tokens_from(collected: &Collected, first: usize) {
    assert!(
        collected.ended.is_clean(),
        "{:?} after ids {:?}",
        collected.ended,
        collected.ids()
    );
    let (done, tokens) = collected.events.split_last().expect("events");
    assert_eq!(done.event_type(), "done");
    let expected_ids: Vec<String> = (first..example::ANSWER.len())
        .map(|i| i.to_string())
        .collect();
    let ids: Vec<&str> = tokens
        .iter()
        .map(|e| e.id().expect("each token has its id"))
        .collect();
    assert_eq!(ids, expected_ids, "no gap, no repeat");
    assert!(tokens.iter().all(|e| e.event_type() == "token"));
    let text: String = tokens.iter().map(|e| e.data()).collect();
    assert_eq!(text, example::ANSWER[first..].concat());
    // `done` carried no id of its own: the browser keeps the last token's.
    assert_eq!(done.id(), None);
    assert_eq!(
        done.last_event_id(),
        (example::ANSWER.len() - 1).to_string()
    );
}

/// The ids the upstream saw as `Last-Event-ID`: each connection resumes after the last
/// token of the one before.
fn expected_resumes(first: Option<usize>, per_connection: usize) -> Vec<Option<String>> {
    let mut resumes = vec![first.map(|id| id.to_string())];
    let mut next = first.map_or(0, |id| id + 1);
    while next + per_connection < example::ANSWER.len() {
        next += per_connection;
        resumes.push(Some((next - 1).to_string()));
    }
    // The connection that sends the last token also sends `done`.
    resumes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_resumes_upstream_without_gap_or_repeat_http1() {
    let (collected, upstream) = relay_answer(4, Proto::Http1, None).await;
    assert_tokens_from(&collected, 0);
    let resumes = upstream.resumes();
    assert_eq!(resumes, expected_resumes(None, 4));
    assert!(
        resumes.len() >= 7,
        "the upstream dropped the stream {} times",
        resumes.len() - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_resumes_upstream_without_gap_or_repeat_http2() {
    let (collected, upstream) = relay_answer(3, Proto::Http2, None).await;
    assert_tokens_from(&collected, 0);
    assert_eq!(upstream.resumes(), expected_resumes(None, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_last_event_id_goes_upstream_on_the_first_connection() {
    let (collected, upstream) = relay_answer(5, Proto::Http1, Some("10")).await;
    assert_tokens_from(&collected, 11);
    assert_eq!(upstream.resumes(), expected_resumes(Some(10), 5));
    assert_eq!(upstream.resumes()[0].as_deref(), Some("10"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_upstream_connection_when_it_never_drops() {
    let (collected, upstream) = relay_answer(usize::MAX, Proto::Http1, None).await;
    assert_tokens_from(&collected, 0);
    assert_eq!(upstream.resumes(), [None]);
}
