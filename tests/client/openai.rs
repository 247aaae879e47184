//! `examples/openai.rs` end to end: its consumer against its fake provider on 127.0.0.1.

#[path = "../../examples/openai.rs"]
// Its `main` is not used here; its `mod support;` is the relay example's too, as both
// examples share examples/support.
#[allow(dead_code, clippy::duplicate_mod)]
mod example;

use std::sync::atomic::Ordering;

use tokio::net::TcpListener;

async fn provider(provider: example::Provider) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example::serve_provider(listener, provider));
    addr
}

#[tokio::test(start_paused = true)]
async fn tokens_arrive_in_order_and_the_answer_ends_at_done() {
    let seen = example::Provider::default();
    let addr = provider(seen.clone()).await;
    let mut tokens = Vec::new();
    // The provider keeps the connection open after `[DONE]`: this returns only because the
    // consumer stops there.
    let answer = example::complete(addr, example::API_KEY, "hi", |token| {
        tokens.push(token.to_owned())
    })
    .await
    .unwrap();
    assert_eq!(tokens, example::ANSWER);
    assert_eq!(answer, example::ANSWER.concat());
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_is_waited_out_and_the_post_sent_again() {
    let seen = example::Provider {
        rate_limited: 2,
        ..example::Provider::default()
    };
    let addr = provider(seen.clone()).await;
    let started = tokio::time::Instant::now();
    let answer = example::complete(addr, example::API_KEY, "hi", |_| {})
        .await
        .unwrap();
    assert_eq!(answer, example::ANSWER.concat());
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    // `Retry-After: 1` twice.
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_wrong_key_fails_with_the_api_error() {
    let seen = example::Provider::default();
    let addr = provider(seen.clone()).await;
    let error = example::complete(addr, "sk-wrong", "hi", |_| {})
        .await
        .unwrap_err();
    let error = error
        .downcast_ref::<tower_sse::client::Error>()
        .expect("a client error");
    let refused = error.response().expect("the refused response");
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.body(), r#"{"error":"invalid api key"}"#);
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        1,
        "a 401 is not retried"
    );
}
