//! A test-only `text/event-stream` parser written from the WHATWG HTML standard,
//! "Server-sent events", section "Interpreting an event stream".
//!
//! It is deliberately independent of the crate under test and favours a literal reading of
//! the algorithm over speed. It models the browser's `EventSource` parser: bytes arrive in
//! arbitrary chunks, are UTF-8 decoded (errors replaced, one leading BOM stripped), split
//! into lines at CRLF, LF or a lone CR, and interpreted field by field.

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
