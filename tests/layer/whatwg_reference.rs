//! The reference parser (`support/whatwg.rs`) against the WHATWG algorithm's own cases, once:
//! the framing and decode suites trust it as their oracle.

use crate::support::whatwg::*;

fn event(event_type: &str, data: &str, last_event_id: &str) -> DispatchedEvent {
    DispatchedEvent {
        event_type: event_type.to_owned(),
        data: data.to_owned(),
        last_event_id: last_event_id.to_owned(),
    }
}

fn message(data: &str) -> DispatchedEvent {
    event("message", data, "")
}

/// Every way of cutting `input` in two, plus byte by byte, must parse like the whole.
fn parse_every_split(input: &[u8]) -> Parsed {
    let whole = parse(input);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(parse_chunks([a, b]), whole, "split at {at} of {input:?}");
    }
    assert_eq!(
        parse_chunks(input.chunks(1)),
        whole,
        "byte by byte: {input:?}"
    );
    whole
}

#[test]
fn spec_example_stock_ticker() {
    let parsed = parse_every_split(b"data: YHOO\ndata: +2\ndata: 10\n\n");
    assert_eq!(parsed.events, [message("YHOO\n+2\n10")]);
}

#[test]
fn spec_example_comment_ids_and_leading_spaces() {
    let input = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n";
    let parsed = parse_every_split(input);
    assert_eq!(
        parsed.events,
        [
            event("message", "first event", "1"),
            // A bare `id` line resets the last event ID to the empty string.
            event("message", "second event", ""),
        ],
        "the third event has no blank line after it, so it is never dispatched"
    );
}

#[test]
fn spec_example_empty_data_lines() {
    // "The first block fires events with the data set to the empty string, as would the
    // last block if it was followed by a blank line. The middle block fires an event
    // with the data set to a single newline character."
    let parsed = parse_every_split(b"data\n\ndata\ndata\n\ndata:");
    assert_eq!(parsed.events, [message(""), message("\n")]);
    let parsed = parse_every_split(b"data\n\ndata\ndata\n\ndata:\n\n");
    assert_eq!(parsed.events, [message(""), message("\n"), message("")]);
}

#[test]
fn spec_example_space_after_colon_is_optional() {
    // "The following stream fires two identical events."
    let parsed = parse_every_split(b"data:test\n\ndata: test\n\n");
    assert_eq!(parsed.events, [message("test"), message("test")]);
}

#[test]
fn spec_example_event_types() {
    let input =
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n";
    let parsed = parse_every_split(input);
    assert_eq!(
        parsed.events,
        [
            event("add", "73857293", ""),
            event("remove", "2153", ""),
            event("add", "113411", ""),
        ]
    );
}

#[test]
fn only_one_space_is_stripped() {
    let parsed = parse_every_split(b"data:  two\n\ndata:\tx\n\n");
    assert_eq!(parsed.events, [message(" two"), message("\tx")]);
}

#[test]
fn value_splits_at_the_first_colon_only() {
    let parsed = parse_every_split(b"data: a: b:c\n\n");
    assert_eq!(parsed.events, [message("a: b:c")]);
}

#[test]
fn crlf_lf_and_lone_cr_each_end_one_line() {
    let expected = [message("a\nb")];
    for input in [
        &b"data: a\ndata: b\n\n"[..],
        b"data: a\r\ndata: b\r\n\r\n",
        b"data: a\rdata: b\r\r",
        b"data: a\r\ndata: b\r\r\n",
        b"data: a\rdata: b\n\r",
    ] {
        assert_eq!(parse_every_split(input).events, expected, "{input:?}");
    }
}

#[test]
fn cr_then_lf_in_the_next_chunk_is_one_break() {
    // As one break: a single blank line follows `data: a`, so one event.
    let parsed = parse_chunks([&b"data: a\r"[..], b"\n", b"data: b\r", b"\n\r", b"\n"]);
    assert_eq!(parsed.events, [message("a\nb")]);
    // A CR followed by CR is two breaks, even across chunks.
    let parsed = parse_chunks([&b"data: a\r"[..], b"\r"]);
    assert_eq!(parsed.events, [message("a")]);
}

#[test]
fn lone_cr_dispatches_without_waiting_for_more_input() {
    let mut parser = Parser::new();
    parser.feed(b"data: a\r\r");
    assert_eq!(parser.events(), [message("a")]);
}

#[test]
fn lf_cr_is_two_breaks() {
    assert_eq!(parse(b"data: a\n\r").events, [message("a")]);
}

#[test]
fn one_leading_bom_is_stripped() {
    let bom = "\u{feff}";
    let parsed = parse_every_split(format!("{bom}data: a\n\n").as_bytes());
    assert_eq!(parsed.events, [message("a")]);
    // The second BOM is part of the first line's field name, so it is no `data` field.
    let parsed = parse_every_split(format!("{bom}{bom}data: a\n\ndata: b\n\n").as_bytes());
    assert_eq!(parsed.events, [message("b")]);
    // A BOM later in the stream is ordinary text.
    let parsed = parse_every_split(format!("data: {bom}a\n\n").as_bytes());
    assert_eq!(parsed.events, [message("\u{feff}a")]);
}

#[test]
fn partial_bom_is_not_stripped() {
    // EF BB then `d`: not a BOM, and the two bytes are an invalid sequence, so the
    // first line's name is not `data`.
    let parsed = parse_every_split(b"\xEF\xBBdata: a\n\ndata: b\n\n");
    assert_eq!(parsed.events, [message("b")]);
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let parsed = parse_every_split(b"data: a\xFFb\xE2\x82\n\n");
    assert_eq!(parsed.events, [message("a\u{fffd}b\u{fffd}")]);
    // Multi-byte characters survive being cut by a chunk boundary.
    let parsed = parse_every_split("data: é€😀\n\n".as_bytes());
    assert_eq!(parsed.events, [message("é€😀")]);
}

#[test]
fn id_with_nul_is_ignored() {
    let parsed = parse_every_split(b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n");
    assert_eq!(
        parsed.events,
        [event("message", "a", "1"), event("message", "b", "1")]
    );
}

#[test]
fn last_event_id_persists_and_is_set_without_dispatch() {
    let input = b"id: 7\n\ndata: a\n\nid: 8\ndata: b\n\nid\ndata: c\n\n";
    let parsed = parse_every_split(input);
    assert_eq!(
        parsed.events,
        [
            event("message", "a", "7"),
            event("message", "b", "8"),
            event("message", "c", ""),
        ]
    );
}

#[test]
fn event_type_resets_after_each_block_even_without_dispatch() {
    let parsed = parse_every_split(b"event: lost\n\ndata: a\n\nevent: \ndata: b\n\n");
    assert_eq!(parsed.events, [message("a"), message("b")]);
}

#[test]
fn retry_needs_only_ascii_digits() {
    let retry = |input: &[u8]| parse_every_split(input).retry;
    assert_eq!(retry(b"retry: 1500\n"), Some(1500));
    assert_eq!(retry(b"retry:0\n"), Some(0));
    // The field applies at once, without a blank line.
    assert_eq!(retry(b"retry: 10\nretry: 20\n"), Some(20));
    for ignored in [
        &b"retry: 1.5\n"[..],
        b"retry: -1\n",
        b"retry: +1\n",
        b"retry: 1 \n",
        b"retry:  1\n",
        b"retry: \xD9\xA1\n", // ARABIC-INDIC DIGIT ONE is no ASCII digit.
        b"retry: \n",
        b"retry\n",
    ] {
        assert_eq!(retry(ignored), None, "{ignored:?}");
    }
    // An invalid value leaves the previous one.
    assert_eq!(retry(b"retry: 5\nretry: x\n"), Some(5));
    assert_eq!(retry(b"retry: 99999999999999999999999\n"), Some(u64::MAX));
}

#[test]
fn unknown_fields_and_comments_are_ignored() {
    let parsed = parse_every_split(b": hi\nfoo: bar\nData: x\ndata : y\n:data: z\ndata: a\n\n");
    assert_eq!(parsed.events, [message("a")]);
}

#[test]
fn unfinished_event_is_discarded_at_end() {
    assert_eq!(parse(b"data: a\n").events, []);
    assert_eq!(parse(b"data: a").events, []);
    assert_eq!(parse(b"").events, []);
}
