//! What real feeds send: multi-byte characters cut byte by byte, and multi-megabyte base64
//! payloads on one `data:` line, within the client's default limits.

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{stream, StreamExt};
use tower_sse::client::{EventSource, Item};

use crate::upstream::{events, get, http_client, next_event, stream_response, upstream};

#[tokio::test(start_paused = true)]
async fn multi_byte_characters_split_byte_by_byte() {
    const TEXT: &str = "id: é-1\nevent: ünïcode\ndata: héllo wörld 😀 世界\n\n";
    let (server, _log) = upstream(|_, _| {
        let bytes: Vec<Bytes> = TEXT.bytes().map(|byte| Bytes::from(vec![byte])).collect();
        stream_response(stream::iter(bytes).boxed())
    })
    .await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    let event = loop {
        if let Item::Event(event) = crate::upstream::next(&mut source).await {
            break event;
        }
    };
    assert_eq!(event.data(), "héllo wörld 😀 世界");
    assert_eq!(event.event_type(), "ünïcode");
    assert_eq!(event.last_event_id(), "é-1");
}

/// `len` bytes of every value, in a scrambled order.
fn binary(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_five_mib_binary_payload_on_one_base64_line() {
    let payload = binary(5 << 20);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&payload);
    assert!(encoded.len() > 6_900_000, "about 7 MB: {}", encoded.len());
    let frame = Bytes::from(format!("data: {encoded}\n\n"));
    let (server, _log) = upstream(move |_, _| events([frame.clone()])).await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    let (data, _) = next_event(&mut source).await;
    assert_eq!(data.len(), encoded.len());
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
        payload
    );
}

#[tokio::test(start_paused = true)]
async fn a_ten_mib_payload_split_over_two_chunks() {
    let payload = binary(10 << 20);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&payload);
    let frame = format!("data: {encoded}\n\n");
    let (first, second) = frame.split_at(frame.len() / 2);
    let chunks = [
        Bytes::from(first.to_owned()),
        Bytes::from(second.to_owned()),
    ];
    let (server, _log) = upstream(move |_, _| events(chunks.clone())).await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    let (data, _) = next_event(&mut source).await;
    assert_eq!(data.len(), encoded.len());
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
        payload
    );
}

#[tokio::test(start_paused = true)]
async fn past_the_limit_is_an_error_not_a_reconnection() {
    let (server, log) = upstream(|_, _| events([format!("data: {}\n\n", "x".repeat(2048))])).await;
    let mut source = tower_sse::client::Builder::new()
        .max_line_len(1024)
        .build(http_client(), get(&server, "/"));
    let error = loop {
        match source.next().await {
            Some(Ok(_)) => continue,
            Some(Err(error)) => break error,
            None => panic!("ended without an error"),
        }
    };
    assert!(
        matches!(error, tower_sse::client::Error::Decode(ref e) if e.is_limit()),
        "{error:?}"
    );
    assert!(source.next().await.is_none());
    assert_eq!(log.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn invalid_utf8_is_replaced_not_a_stall() {
    let (server, _log) = upstream(|_, _| {
        events([
            Bytes::from_static(b"data: a\xFFb\xE2\x82\n\n"),
            Bytes::from_static(b"data: next\n\n"),
        ])
    })
    .await;
    let mut source = EventSource::new(http_client(), get(&server, "/"));
    assert_eq!(next_event(&mut source).await.0, "a\u{FFFD}b\u{FFFD}");
    assert_eq!(next_event(&mut source).await.0, "next");
}
