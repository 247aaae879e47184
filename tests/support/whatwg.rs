//! A test-only `text/event-stream` parser written from the WHATWG HTML standard,
//! "Server-sent events", section "Interpreting an event stream".
//!
//! It is deliberately independent of the crate under test and favours a literal reading of
//! the algorithm over speed. It models the browser's `EventSource` parser: bytes arrive in
//! arbitrary chunks, are UTF-8 decoded (errors replaced, one leading BOM stripped), split
//! into lines at CRLF, LF or a lone CR, and interpreted field by field.
//!
//! Use it from a test file with `#[path = "support/whatwg.rs"] mod whatwg;`.

// Each test file that includes this module uses a different part of it.
#![allow(dead_code)]

/// An event as the browser's `EventSource` would dispatch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DispatchedEvent {
    /// `MessageEvent.type`: the `event` field, or `message` when it was empty.
    pub(crate) event_type: String,
    /// `MessageEvent.data`: the `data` lines joined with LF.
    pub(crate) data: String,
    /// `MessageEvent.lastEventId`: the last `id` seen, on this event or an earlier one.
    pub(crate) last_event_id: String,
}

/// Everything a whole stream told the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The dispatched events, in order.
    pub(crate) events: Vec<DispatchedEvent>,
    /// The reconnection time from the last valid `retry` field, in milliseconds.
    pub(crate) retry: Option<u64>,
}

/// Parses a whole stream given as one buffer.
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
    parse_chunks([bytes])
}

/// Parses a whole stream given as consecutive chunks.
pub(crate) fn parse_chunks<I, B>(chunks: I) -> Parsed
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut parser = Parser::new();
    for chunk in chunks {
        parser.feed(chunk.as_ref());
    }
    parser.finish()
}

/// An incremental parser: [`feed`](Parser::feed) chunks, then [`finish`](Parser::finish).
#[derive(Debug, Default)]
pub(crate) struct Parser {
    decoder: Utf8Decoder,
    lines: LineSplitter,
    state: EventState,
}

impl Parser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk of the stream; chunks may split lines, CRLF pairs and even
    /// UTF-8 sequences anywhere.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        let mut text = String::new();
        self.decoder.decode(bytes, &mut text);
        let state = &mut self.state;
        self.lines.push(&text, |line| state.process_line(line));
    }

    /// Events dispatched so far, without ending the stream.
    pub(crate) fn events(&self) -> &[DispatchedEvent] {
        &self.state.parsed.events
    }

    /// Ends the stream.
    ///
    /// "Once the end of the file is reached, any pending data must be discarded. (If the
    /// file ends in the middle of an event, before the final empty line, the incomplete
    /// event is not dispatched.)" So the unfinished line and the buffers are dropped.
    pub(crate) fn finish(self) -> Parsed {
        self.state.parsed
    }
}

/// Incremental UTF-8 decoding, as the standard's "UTF-8 decode": a leading BOM is removed,
/// and invalid sequences become U+FFFD. Rust's replacement rule (one U+FFFD per maximal
/// invalid subpart) is the one the WHATWG Encoding standard uses.
#[derive(Debug, Default)]
struct Utf8Decoder {
    /// The bytes of a sequence cut by the end of the last chunk (at most 3), or of a
    /// possible BOM not yet complete.
    pending: Vec<u8>,
    /// Whether the start of the stream has been checked for a BOM.
    bom_checked: bool,
}

impl Utf8Decoder {
    const BOM: &'static [u8] = b"\xEF\xBB\xBF";

    fn decode(&mut self, chunk: &[u8], out: &mut String) {
        self.pending.extend_from_slice(chunk);
        let input = std::mem::take(&mut self.pending);
        let mut rest = &input[..];

        if !self.bom_checked {
            let n = rest.len().min(Self::BOM.len());
            if rest[..n] != Self::BOM[..n] {
                self.bom_checked = true;
            } else if n == Self::BOM.len() {
                self.bom_checked = true;
                rest = &rest[n..];
            } else {
                // Could still be a BOM: decide when more bytes come.
                self.pending = input;
                return;
            }
        }

        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).expect("checked by from_utf8"));
                    match error.error_len() {
                        Some(len) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[len..];
                        }
                        None => {
                            // An incomplete sequence at the end of the chunk.
                            self.pending = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Splits decoded text into lines at CRLF, LF or a lone CR, across chunk boundaries.
#[derive(Debug, Default)]
struct LineSplitter {
    line: String,
    /// The last character seen was a CR: an LF right after it belongs to the same break,
    /// even when it arrives in the next chunk.
    after_cr: bool,
}

impl LineSplitter {
    fn push(&mut self, text: &str, mut on_line: impl FnMut(&str)) {
        for c in text.chars() {
            if std::mem::take(&mut self.after_cr) && c == '\n' {
                continue;
            }
            match c {
                '\r' => {
                    // A CR ends the line at once; waiting for a possible LF would delay
                    // the event until the next chunk.
                    on_line(&self.line);
                    self.line.clear();
                    self.after_cr = true;
                }
                '\n' => {
                    on_line(&self.line);
                    self.line.clear();
                }
                c => self.line.push(c),
            }
        }
    }
}

/// The buffers of the algorithm: data, event type, last event ID; plus the output.
#[derive(Debug, Default)]
struct EventState {
    data: String,
    event_type: String,
    last_event_id_buffer: String,
    parsed: Parsed,
}

impl EventState {
    fn process_line(&mut self, line: &str) {
        // "If the line is empty (a blank line): Dispatch the event."
        if line.is_empty() {
            self.dispatch();
            return;
        }
        // "If the line starts with a U+003A COLON character (:): Ignore the line."
        if line.starts_with(':') {
            return;
        }
        // "If the line contains a U+003A COLON character (:)": split at the first colon,
        // and drop one U+0020 SPACE at the start of the value. "Otherwise, the string is
        // not empty but does not contain a U+003A COLON character (:)": the whole line is
        // the field name and the value is empty.
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        self.process_field(name, value);
    }

    fn process_field(&mut self, name: &str, value: &str) {
        match name {
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // "If the field value does not contain U+0000 NULL, then set the last event ID
            // buffer to the field value. Otherwise, ignore the field."
            "id" if !value.contains('\0') => {
                self.last_event_id_buffer.clear();
                self.last_event_id_buffer.push_str(value);
            }
            // "If the field value consists of only ASCII digits, then interpret the field
            // value as an integer in base ten" (otherwise the field is ignored). An empty
            // value holds no integer to interpret. The standard sets no upper bound;
            // saturating keeps an absurd value absurd instead of dropping it.
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let millis = value.bytes().fold(0u64, |n, digit| {
                    n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
                });
                self.parsed.retry = Some(millis);
            }
            // "Otherwise: The field is ignored."
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        // 1. The last event ID string is set even when nothing is dispatched, and the
        //    buffer is not reset.
        let last_event_id = self.last_event_id_buffer.clone();
        // 2. "If the data buffer is an empty string, set the data buffer and the event type
        //    buffer to the empty string and return."
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        // 3. "If the data buffer's last character is a U+000A LINE FEED (LF) character,
        //    then remove the last character from the data buffer."
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        // 5-6. The type is `message` unless the event type buffer holds something else.
        let event_type = match std::mem::take(&mut self.event_type) {
            event_type if event_type.is_empty() => "message".to_owned(),
            event_type => event_type,
        };
        self.parsed.events.push(DispatchedEvent {
            event_type,
            data,
            last_event_id,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let input = b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n";
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
}
