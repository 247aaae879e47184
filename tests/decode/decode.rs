//! The decoder (feature `decode`) against the WHATWG reference parser in
//! `support/whatwg.rs`, on generated streams cut at random chunk boundaries; the round trip
//! from the crate's own encoder; the adapters, the limits and the `collect` helper.

use crate::support::cases;
use crate::support::whatwg;

use std::cell::Cell;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, FutureExt, StreamExt};
use http::{Request, Response};
use http_body_util::StreamBody;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseResult;
use tower::{ServiceBuilder, ServiceExt};
use tower_sse::decode::{
    self, CollectEnd, Collector, DecodeBody, DecodeError, DecodeStream, Decoded, Decoder,
    MessageEvent,
};
use tower_sse::{Event, SseLayer};

use whatwg::DispatchedEvent;

/// Everything `decoder` yields for `chunks`, pushed one by one; stops at the first error.
fn decode_chunks<B: AsRef<[u8]>>(
    decoder: &mut Decoder,
    chunks: &[B],
) -> (Vec<Decoded>, Option<DecodeError>) {
    let mut items = Vec::new();
    for chunk in chunks {
        decoder.push(chunk.as_ref());
        loop {
            match decoder.next_item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(error) => return (items, Some(error)),
            }
        }
    }
    decoder.finish();
    (items, None)
}

fn as_dispatched(event: &MessageEvent) -> DispatchedEvent {
    DispatchedEvent {
        event_type: event.event_type().to_owned(),
        data: event.data().to_owned(),
        last_event_id: event.last_event_id().to_owned(),
    }
}

/// The items as the reference parser reports them: events, and the last retry in ms.
fn as_parsed(items: &[Decoded]) -> whatwg::Parsed {
    let mut parsed = whatwg::Parsed::default();
    for item in items {
        match item {
            Decoded::Event(event) => parsed.events.push(as_dispatched(event)),
            Decoded::Retry(retry) => parsed.retry = Some(retry.as_millis() as u64),
            _ => {}
        }
    }
    parsed
}

/// What the decoder makes of `chunks`, through the core and through `DecodeStream`
/// (checked to agree).
fn parse_chunks<B: AsRef<[u8]>>(chunks: &[B]) -> whatwg::Parsed {
    let (items, error) = decode_chunks(&mut Decoder::new(), chunks);
    assert!(error.is_none(), "{error:?}");
    let via_stream: Vec<Decoded> = DecodeStream::new(stream::iter(
        chunks
            .iter()
            .map(|chunk| Ok::<_, Infallible>(Bytes::copy_from_slice(chunk.as_ref()))),
    ))
    .map(Result::unwrap)
    .collect()
    .now_or_never()
    .expect("an iterator stream is always ready");
    assert_eq!(items, via_stream);
    as_parsed(&items)
}

fn message(data: &str, id: &str) -> DispatchedEvent {
    DispatchedEvent {
        event_type: "message".to_owned(),
        data: data.to_owned(),
        last_event_id: id.to_owned(),
    }
}

/// The decoder and the reference agree on `input` however it is cut in two, and byte by
/// byte; returns what they found.
fn assert_like_reference(input: &[u8]) -> whatwg::Parsed {
    let expected = whatwg::parse(input);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(parse_chunks(&[a, b]), expected, "{input:?} split at {at}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(parse_chunks(&bytes), expected, "{input:?} byte by byte");
    expected
}

// ---------------------------------------------------------------------------------------
// One test per rule of the standard, each also checked against the reference.

#[test]
fn spec_examples() {
    let parsed = assert_like_reference(b"data: YHOO\ndata: +2\ndata: 10\n\n");
    assert_eq!(parsed.events, [message("YHOO\n+2\n10", "")]);
    let parsed = assert_like_reference(
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
    );
    // The third event has no blank line after it: discarded at the end.
    assert_eq!(
        parsed.events,
        [message("first event", "1"), message("second event", "")]
    );
    let parsed = assert_like_reference(b"data\n\ndata\ndata\n\ndata:");
    assert_eq!(parsed.events, [message("", ""), message("\n", "")]);
    let parsed = assert_like_reference(b"data:test\n\ndata: test\n\n");
    assert_eq!(parsed.events, [message("test", ""), message("test", "")]);
}

#[test]
fn line_ends_crlf_lf_cr_also_across_chunks() {
    for input in [
        &b"data: a\ndata: b\n\n"[..],
        b"data: a\r\ndata: b\r\n\r\n",
        b"data: a\rdata: b\r\r",
        b"data: a\r\ndata: b\r\r\n",
        b"data: a\rdata: b\n\r",
    ] {
        assert_eq!(assert_like_reference(input).events, [message("a\nb", "")]);
    }
    // A CR ends its line at once: the event is out before the next byte arrives.
    let mut decoder = Decoder::new();
    decoder.push(b"data: a\r\r");
    assert!(matches!(decoder.next_item(), Ok(Some(Decoded::Event(_)))));
    // And the LF of that CRLF, arriving next, is no second blank line.
    decoder.push(b"\ndata: b\n\n");
    let Ok(Some(Decoded::Event(event))) = decoder.next_item() else {
        panic!("no second event")
    };
    assert_eq!(event.data(), "b");
}

#[test]
fn bom_stripped_once_at_the_start_only() {
    assert_eq!(
        assert_like_reference("\u{feff}data: a\n\n".as_bytes()).events,
        [message("a", "")]
    );
    assert_eq!(
        assert_like_reference("\u{feff}\u{feff}data: a\n\ndata: b\n\n".as_bytes()).events,
        [message("b", "")]
    );
    assert_eq!(
        assert_like_reference("data: \u{feff}\n\n".as_bytes()).events,
        [message("\u{feff}", "")]
    );
}

#[test]
fn fields_without_colon_and_leading_space() {
    assert_eq!(
        assert_like_reference(b"data\n\ndata:  two\n\ndata:\tx\n\ndata: a: b\n\n").events,
        [
            message("", ""),
            message(" two", ""),
            message("\tx", ""),
            message("a: b", "")
        ]
    );
}

#[test]
fn retry_digits_only_and_applied_at_once() {
    assert_eq!(
        assert_like_reference(b"retry: 3000\n\ndata: a\n\n").retry,
        Some(3000)
    );
    for ignored in [
        &b"retry: +5\n"[..],
        b"retry: 1.5\n",
        b"retry: 1 \n",
        b"retry\n",
    ] {
        assert_eq!(assert_like_reference(ignored).retry, None, "{ignored:?}");
    }
    assert_eq!(
        assert_like_reference(b"retry: 5\nretry: x\n").retry,
        Some(5)
    );
}

#[test]
fn id_with_nul_ignored_and_last_id_carried_over() {
    let parsed = assert_like_reference(
        b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\nid: 3\n\ndata: c\n\nid\ndata: d\n\n",
    );
    assert_eq!(
        parsed.events,
        [
            message("a", "1"),
            message("b", "1"),
            // The block with only an id dispatched nothing, but set the id.
            message("c", "3"),
            message("d", ""),
        ]
    );
}

#[test]
fn event_type_defaults_to_message_and_resets_per_block() {
    let parsed = assert_like_reference(b"event: lost\n\nevent: add\ndata: 1\n\ndata: 2\n\n");
    let types: Vec<_> = parsed
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["add", "message"]);
}

#[test]
fn invalid_utf8_and_cut_multibyte_characters() {
    assert_eq!(
        assert_like_reference(b"data: a\xFFb\xE2\x82\n\n").events,
        [message("a\u{fffd}b\u{fffd}", "")]
    );
    assert_eq!(
        assert_like_reference("data: é€😀\n\n".as_bytes()).events,
        [message("é€😀", "")]
    );
}

/// The inputs of `eventsource_stream_deviations` in tests/framing.rs: on each, this
/// decoder reads what the standard says.
#[test]
fn where_eventsource_stream_deviates_this_decoder_does_not() {
    assert_eq!(
        assert_like_reference(b"data: a\r\r").events,
        [message("a", "")]
    );
    assert_eq!(
        assert_like_reference(b"retry: 3000\n\ndata: a\n\n").retry,
        Some(3000)
    );
    assert_eq!(
        assert_like_reference("\u{feff}data: a\n\n".as_bytes()).events,
        [message("a", "")]
    );
    assert_eq!(assert_like_reference(b"retry: +5\ndata: a\n\n").retry, None);
}

#[test]
fn event_ids_and_comments_through_the_public_api() {
    let mut decoder = Decoder::new().comments(true);
    let (items, error) = decode_chunks(
        &mut decoder,
        &[b": keep-alive\nid: 5\ndata: x\n\ndata: y\n\n"],
    );
    assert!(error.is_none());
    assert_eq!(items[0], Decoded::Comment("keep-alive".to_owned()));
    let events: Vec<_> = items.into_iter().filter_map(Decoded::into_event).collect();
    assert_eq!(events[0].id(), Some("5"));
    assert_eq!(events[1].id(), None);
    assert_eq!(events[1].last_event_id(), "5");
    assert_eq!(events[1].clone().into_data(), "y");
    assert_eq!(decoder.last_event_id(), "5");
}

// ---------------------------------------------------------------------------------------
// Limits.

#[test]
fn too_long_line_is_a_typed_error_not_growth() {
    let mut decoder = Decoder::new().max_line_len(64);
    let (items, error) = decode_chunks(&mut decoder, &[&b"data: ok\n\n"[..], &[b'x'; 1000]]);
    assert_eq!(items.len(), 1);
    let error = error.expect("the line is too long");
    assert!(matches!(error, DecodeError::LineTooLong { limit: 64 }));
    assert!(error.is_limit());
    assert_eq!(error.to_string(), "event stream line longer than 64 bytes");
    // Terminal until `finish`.
    decoder.push(b"\n\ndata: later\n\n");
    assert!(decoder.next_item().unwrap().is_none());
}

#[test]
fn too_much_data_in_one_event_is_a_typed_error() {
    let line = [&b"data: "[..], &[b'x'; 50], b"\n"].concat();
    let input = line.repeat(10);
    let mut decoder = Decoder::new().max_line_len(100).max_event_len(200);
    let (items, error) = decode_chunks(&mut decoder, &[&input]);
    assert!(items.is_empty());
    let error = error.expect("the event is too long");
    assert!(matches!(error, DecodeError::EventTooLong { limit: 200 }));
    assert_eq!(error.to_string(), "event data longer than 200 bytes");
}

#[tokio::test]
async fn limit_error_ends_the_stream_adapters() {
    let chunks = stream::iter([Ok::<_, Infallible>(Bytes::from_static(
        b"data: aaaaaaaa\n\n",
    ))]);
    let mut items = DecodeStream::with_decoder(chunks, Decoder::new().max_line_len(4));
    assert!(matches!(
        items.next().await,
        Some(Err(DecodeError::LineTooLong { limit: 4 }))
    ));
    assert!(items.next().await.is_none());
    assert!(items.next().await.is_none());
}

// ---------------------------------------------------------------------------------------
// Adapters and errors from the source.

#[tokio::test]
async fn body_error_passes_through_as_source() {
    let frames = stream::iter([
        Ok(http_body::Frame::data(Bytes::from_static(
            b"data: a\n\ndata: b",
        ))),
        Err(std::io::Error::other("connection reset")),
    ]);
    let mut items = DecodeBody::new(StreamBody::new(frames));
    assert!(matches!(items.next().await, Some(Ok(Decoded::Event(_)))));
    let error = items.next().await.unwrap().unwrap_err();
    assert!(matches!(error, DecodeError::Body(_)));
    assert_eq!(error.to_string(), "event stream body failed");
    let source = std::error::Error::source(&error).expect("a source");
    assert_eq!(source.to_string(), "connection reset");
    assert!(source.downcast_ref::<std::io::Error>().is_some());
    assert!(items.next().await.is_none(), "terminal after an error");
}

#[tokio::test]
async fn stream_error_passes_through_as_source() {
    let chunks = stream::iter([
        Ok(Bytes::from_static(b"data: a\n\n")),
        Err(std::io::Error::other("boom")),
    ]);
    let items: Vec<_> = DecodeStream::new(chunks).collect().await;
    assert!(matches!(items[0], Ok(Decoded::Event(_))));
    let error = items[1].as_ref().unwrap_err();
    assert_eq!(
        std::error::Error::source(error).unwrap().to_string(),
        "boom"
    );
    assert_eq!(items.len(), 2);
}

#[tokio::test]
async fn body_trailers_are_ignored_and_decoder_reusable_after_end() {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-done", "1".parse().unwrap());
    let frames = stream::iter([
        Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(
            b"id: 9\ndata: a\n\ndata: cut",
        ))),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    let mut items = DecodeBody::new(StreamBody::new(frames));
    let event = items.next().await.unwrap().unwrap().into_event().unwrap();
    assert_eq!(event.data(), "a");
    assert!(items.next().await.is_none());
    assert_eq!(items.decoder().last_event_id(), "9");
    // The decoder goes on with the next connection, keeping the last event id.
    let (_, decoder) = items.into_parts();
    let next = stream::iter([Ok::<_, Infallible>(Bytes::from_static(b"data: b\n\n"))]);
    let items: Vec<_> = DecodeStream::with_decoder(next, decoder).collect().await;
    let event = items[0].as_ref().unwrap().clone().into_event().unwrap();
    assert_eq!((event.data(), event.last_event_id()), ("b", "9"));
}

// ---------------------------------------------------------------------------------------
// The collect helper.

/// A service answering `GET` with `items` through the real layer.
async fn collect_from_stack(items: Vec<Event>, collector: Collector) -> decode::Collected {
    let mut items = Some(items);
    let service = ServiceBuilder::new()
        .layer(
            SseLayer::new()
                .no_keep_alive()
                .retry(Duration::from_millis(1500)),
        )
        .service_fn(move |_: Request<()>| {
            let items = items.take().unwrap_or_default();
            async move { Ok::<_, Infallible>(Response::new(stream::iter(items))) }
        });
    let response = service.oneshot(Request::new(())).await.unwrap();
    collector.collect(response.into_body()).await
}

#[tokio::test]
async fn collect_reports_events_retry_and_a_clean_end() {
    let events = vec![
        Event::new().id_u64(1).event("token").unwrap().data("Hel"),
        Event::new().id_u64(2).event("token").unwrap().data("lo"),
        Event::new().event("done").unwrap().data(""),
    ];
    let collected = collect_from_stack(events, Collector::new()).await;
    assert!(collected.ended.is_clean(), "{:?}", collected.ended);
    assert_eq!(collected.data(), ["Hel", "lo", ""]);
    assert_eq!(collected.ids(), ["1", "2", "2"]);
    assert_eq!(collected.events[2].event_type(), "done");
    assert_eq!(collected.retry, Some(Duration::from_millis(1500)));
    assert_eq!(collected.last_event_id, "2");
    assert!(collected.comments.is_empty());
}

#[tokio::test]
async fn collect_stops_at_max_events() {
    let events = (0..10).map(|n| Event::new().id_u64(n).data("x")).collect();
    let collected = collect_from_stack(events, Collector::new().max_events(3)).await;
    assert!(matches!(collected.ended, CollectEnd::MaxEvents));
    assert_eq!(collected.ids(), ["0", "1", "2"]);
}

#[tokio::test]
async fn collect_says_when_the_body_ends_mid_event() {
    let body = http_body_util::Full::new(Bytes::from_static(b"data: a\n\nid: 2\ndata: cut"));
    let collected = decode::collect(body).await;
    assert_eq!(collected.data(), ["a"]);
    assert!(matches!(
        collected.ended,
        CollectEnd::MidEvent { discarded: 15 }
    ));
    // The unfinished block's id never took effect.
    assert_eq!(collected.last_event_id, "");
}

#[tokio::test]
async fn collect_reports_body_and_limit_errors() {
    let frames = stream::iter([
        Ok(http_body::Frame::data(Bytes::from_static(b"data: a\n\n"))),
        Err(std::io::Error::other("reset")),
    ]);
    let collected = decode::collect(StreamBody::new(frames)).await;
    assert_eq!(collected.data(), ["a"]);
    assert!(matches!(
        collected.ended,
        CollectEnd::Error(DecodeError::Body(_))
    ));

    let collector = Collector::new().decoder(Decoder::new().max_line_len(8));
    let body = http_body_util::Full::new(Bytes::from_static(b"data: a\n\ndata: too long\n\n"));
    let collected = collector.collect(body).await;
    assert_eq!(collected.data(), ["a"]);
    assert!(matches!(
        collected.ended,
        CollectEnd::Error(DecodeError::LineTooLong { limit: 8 })
    ));
}

// ---------------------------------------------------------------------------------------
// Generated streams against the reference parser.

/// Pieces that make parsers disagree: every line break, NUL, BOM and partial BOM, colons
/// and spaces, field names with and without values, retry values valid and not, comments,
/// invalid and multi-byte UTF-8.
const PIECES: &[&[u8]] = &[
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\r",
    b"\r\r",
    b"\n\n",
    b"\0",
    b" ",
    b"  ",
    b":",
    b": ",
    b"\xEF\xBB\xBF",
    b"\xEF\xBB",
    b"data",
    b"data:",
    b"data: ",
    b"id",
    b"id:",
    b"id: ",
    b"event",
    b"event:",
    b"event: ",
    b"retry:",
    b"retry: ",
    b"retry: 1500",
    b"retry:+5",
    b"retry: 1.5",
    b"12",
    b"99999999999999999999999",
    b"\nretry: 1500\n",
    b"\rretry:7\r\n",
    b"\nid: 7\n",
    b"\nid: 1\0\n",
    b"\ndata: x\n\n",
    b"\r\n\r\n",
    b": comment",
    b":",
    b"x",
    b"abc",
    "é".as_bytes(),
    "😀".as_bytes(),
    b"\xFF",
    b"\xE2\x82",
    b"Data",
    b"data :",
];

fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
        1 => "[ -~]{0,6}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    stream: Vec<u8>,
    cuts: Vec<Index>,
    cut_every_crlf: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::bool::weighted(0.25),
        prop::collection::vec(piece(), 0..48),
        prop::collection::vec(any::<Index>(), 0..10),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(bom, pieces, cuts, cut_every_crlf)| {
            let mut stream = if bom {
                b"\xEF\xBB\xBF".to_vec()
            } else {
                Vec::new()
            };
            stream.extend(pieces.concat());
            Case {
                stream,
                cuts,
                cut_every_crlf,
            }
        })
}

/// Cuts `bytes` into chunks at the case's cuts (empty chunks included: a source may send
/// them), and between every CR and LF if asked.
fn chunks<'a>(case: &Case, bytes: &'a [u8]) -> Vec<&'a [u8]> {
    cases::cut(bytes, &case.cuts, case.cut_every_crlf, true)
}

#[derive(Debug, Default)]
struct Coverage {
    events: Cell<u32>,
    crlf_cut: Cell<u32>,
    bom: Cell<u32>,
    retry: Cell<u32>,
    id_with_nul: Cell<u32>,
    limited: Cell<u32>,
}

use cases::bump;

fn check_case(case: &Case, coverage: &Coverage) -> TestCaseResult {
    let chunks = chunks(case, &case.stream);
    let expected = whatwg::parse(&case.stream);
    prop_assert_eq!(&whatwg::parse_chunks(&chunks), &expected);

    let (items, error) = decode_chunks(&mut Decoder::new(), &chunks);
    prop_assert!(error.is_none());
    prop_assert_eq!(&as_parsed(&items), &expected);

    bump(&coverage.events, !expected.events.is_empty());
    bump(&coverage.bom, case.stream.starts_with(b"\xEF\xBB\xBF"));
    bump(&coverage.retry, expected.retry.is_some());
    bump(
        &coverage.crlf_cut,
        chunks
            .windows(2)
            .any(|w| w[0].ends_with(b"\r") && w[1].starts_with(b"\n")),
    );
    bump(
        &coverage.id_with_nul,
        case.stream
            .windows(4)
            .any(|w| w == b"id: " || w == b"id:\0")
            && case.stream.contains(&0),
    );

    // With small limits, it either reads what the reference reads, or stops with a limit
    // error after a prefix of it; never anything else, never a panic.
    let limit = case.stream.len() % 24;
    let mut small = Decoder::new().max_line_len(limit).max_event_len(limit);
    let (items, error) = decode_chunks(&mut small, &chunks);
    let parsed = as_parsed(&items);
    match error {
        None => prop_assert_eq!(&parsed.events, &expected.events),
        Some(error) => {
            bump(&coverage.limited, true);
            prop_assert!(error.is_limit());
            prop_assert!(expected.events.starts_with(&parsed.events));
        }
    }
    Ok(())
}

#[test]
fn generated_streams_decode_like_the_reference() {
    let cases = 10_000;
    let coverage = Coverage::default();
    cases::run(cases, file!(), &case(), |case| check_case(&case, &coverage));
    cases::assert_covered(
        cases,
        &[
            ("dispatched events", &coverage.events),
            ("chunks cut between CR and LF", &coverage.crlf_cut),
            ("leading BOM", &coverage.bom),
            ("valid retry", &coverage.retry),
            ("ids and NUL", &coverage.id_with_nul),
            ("limit errors", &coverage.limited),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Round trip: whatever the crate's encoder accepts decodes to itself.

/// Text with every kind of line break, NUL, spaces, colons, a BOM, and anything else.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<String>(),
        1 => prop::collection::vec(any::<char>(), 0..4).prop_map(String::from_iter),
        4 => prop::sample::select(&[
            "\r", "\n", "\r\n", "\n\r", "\0", " ", ":", ": ", "\u{feff}", "data: x", "id: 9", "é",
        ][..])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

#[derive(Debug, Clone)]
struct Fields {
    comment: Option<String>,
    event_type: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    data: Option<String>,
}

fn fields() -> impl Strategy<Value = Fields> {
    let field = prop_oneof![3 => "[ -~]{0,8}", 1 => text()];
    (
        prop::option::weighted(0.3, text()),
        prop::option::of(field.clone()),
        prop::option::of(field),
        prop::option::weighted(0.2, any::<u64>()),
        prop::option::weighted(0.9, text()),
    )
        .prop_map(|(comment, event_type, id, retry, data)| Fields {
            comment,
            event_type,
            id,
            retry,
            data,
        })
}

impl Fields {
    /// The event, through the public builder only; `None` when it refuses a field.
    fn build(&self) -> Option<Event> {
        let mut event = Event::new();
        if let Some(comment) = &self.comment {
            event = event.comment(comment.clone());
        }
        if let Some(id) = &self.id {
            event = event.id(id.clone()).ok()?;
        }
        if let Some(event_type) = &self.event_type {
            event = event.event(event_type.clone()).ok()?;
        }
        if let Some(millis) = self.retry {
            event = event.retry(Duration::from_millis(millis));
        }
        if let Some(data) = &self.data {
            event = event.data(data.clone());
        }
        Some(event)
    }
}

fn split_lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_encoded_event_decodes_to_itself() {
    let strategy = (
        prop::collection::vec(fields(), 1..5),
        prop::collection::vec(any::<Index>(), 0..6),
    );
    cases::run(10_000, file!(), &strategy, |(events, cuts)| {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        let mut last_event_id = String::new();
        for fields in &events {
            let Some(event) = fields.build() else {
                continue;
            };
            wire.extend_from_slice(event.encode().as_bytes());
            if let Some(comment) = &fields.comment {
                expected.extend(split_lines(comment).into_iter().map(Seen::Comment));
            }
            if let Some(id) = &fields.id {
                last_event_id.clone_from(id);
            }
            if let Some(millis) = fields.retry {
                expected.push(Seen::Retry(Duration::from_millis(millis)));
            }
            if let Some(data) = &fields.data {
                let event_type = match fields.event_type.as_deref() {
                    None | Some("") => "message",
                    Some(event_type) => event_type,
                };
                expected.push(Seen::Event {
                    event_type: event_type.to_owned(),
                    data: split_lines(data).join("\n"),
                    last_event_id: last_event_id.clone(),
                    id: fields.id.clone(),
                });
            }
        }
        let case = Case {
            stream: Vec::new(),
            cuts,
            cut_every_crlf: false,
        };
        let chunks = chunks(&case, &wire);
        let (items, error) = decode_chunks(&mut Decoder::new().comments(true), &chunks);
        prop_assert!(error.is_none());
        prop_assert_eq!(items.iter().map(Seen::from).collect::<Vec<_>>(), expected);
        Ok(())
    });
}

/// An item in plain terms, including what `MessageEvent::id` says.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Event {
        event_type: String,
        data: String,
        last_event_id: String,
        id: Option<String>,
    },
    Retry(Duration),
    Comment(String),
}

impl From<&Decoded> for Seen {
    fn from(item: &Decoded) -> Self {
        match item {
            Decoded::Event(event) => Seen::Event {
                event_type: event.event_type().to_owned(),
                data: event.data().to_owned(),
                last_event_id: event.last_event_id().to_owned(),
                id: event.id().map(str::to_owned),
            },
            Decoded::Retry(retry) => Seen::Retry(*retry),
            Decoded::Comment(text) => Seen::Comment(text.clone()),
            other => panic!("unexpected item {other:?}"),
        }
    }
}
