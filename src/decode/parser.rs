//! The sans-I/O core: [`Decoder`] takes bytes with [`push`](Decoder::push) and gives
//! [`Decoded`] items from [`next_item`](Decoder::next_item), following the WHATWG HTML standard,
//! "Server-sent events", section "Interpreting an event stream".
//!
//! Lines are found with `memchr` over the buffered bytes and interpreted in place: no
//! per-byte state machine, no allocation per line. The only allocations are the ones an
//! event hands out (its data, its type) and one per changed `id`.
//!
//! UTF-8 is decoded per field value rather than for the whole stream first. That gives the
//! same text: CR, LF, `:` and NUL are ASCII, and a UTF-8 decoder never takes an ASCII byte
//! into an invalid sequence, so line breaks and colons are found at the same places.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::error::DecodeError;
use super::event::{Decoded, MessageEvent};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The default [`Decoder::max_line_len`]: 1 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 1 << 20;
/// The default [`Decoder::max_event_len`]: 4 MiB.
pub const DEFAULT_MAX_EVENT_LEN: usize = 4 << 20;

/// The largest buffer allocated up front for an event's data, from the previous event's.
const MAX_DATA_HINT: usize = 64 * 1024;

/// A `text/event-stream` parser without I/O: [`push`](Self::push) the bytes as they
/// arrive, in chunks cut anywhere, then call [`next_item`](Self::next_item) until it
/// returns `Ok(None)`, and push more.
///
/// It reads the stream exactly as the browser's `EventSource` does: one leading BOM is
/// dropped; lines end at CRLF, LF or a lone CR (also when a CRLF is cut between two
/// chunks); a line without a colon is a field name with an empty value; one space after
/// the colon is dropped; `data` lines are joined with LF; a blank line dispatches the
/// event, unless no `data` was read (the id still takes effect); an `id` holding NUL is
/// ignored, and the last event id carries over to later events; `retry` is taken only when
/// it is all ASCII digits; unknown fields and comments are ignored.
///
/// Memory is bounded: a line longer than [`max_line_len`](Self::max_line_len) or event
/// data longer than [`max_event_len`](Self::max_event_len) is a [`DecodeError`], after
/// which the decoder yields nothing more (until [`finish`](Self::finish)).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::decode::{Decoder, Decoded};
///
/// let mut decoder = Decoder::new();
/// // A CRLF cut between two chunks is one line break.
/// decoder.push(b"retry: 2000\r\nid: 7\r");
/// decoder.push(b"\nevent: token\ndata: Hel");
/// assert_eq!(decoder.next_item()?, Some(Decoded::Retry(Duration::from_secs(2))));
/// assert_eq!(decoder.next_item()?, None); // needs more bytes
///
/// decoder.push(b"lo\ndata: world\n\n");
/// let Some(Decoded::Event(event)) = decoder.next_item()? else { panic!("no event") };
/// assert_eq!(event.event_type(), "token");
/// assert_eq!(event.data(), "Hello\nworld");
/// assert_eq!(event.last_event_id(), "7");
/// assert_eq!(decoder.next_item()?, None);
///
/// // At the end of the stream, an unfinished event is discarded.
/// decoder.push(b"data: cut off");
/// assert_eq!(decoder.next_item()?, None);
/// assert_eq!(decoder.finish(), 13);
/// # Ok::<(), tower_sse::decode::DecodeError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Decoder {
    config: DecoderConfig,
    lines: Lines,
    state: State,
}

#[derive(Debug, Clone, Copy)]
struct DecoderConfig {
    max_line_len: usize,
    max_event_len: usize,
    comments: bool,
}

/// The buffered bytes and where the next line starts.
#[derive(Clone, Default)]
struct Lines {
    buf: Vec<u8>,
    /// The first byte of the unfinished line.
    start: usize,
    /// Where to resume the search for a line end, so a long line arriving in many small
    /// chunks is scanned once, not once per chunk.
    scan: usize,
    bom_checked: bool,
    /// The last line ended with a CR that was the last byte buffered: an LF at the start
    /// of the next chunk is the rest of that CRLF.
    after_cr: bool,
}

/// The standard's buffers, plus what the decoder reports about them.
#[derive(Clone)]
struct State {
    data: Vec<u8>,
    event_type: Vec<u8>,
    /// The last event ID buffer (set by `id` fields).
    id_buffer: Arc<str>,
    /// Whether an `id` field of the current block took effect.
    id_in_block: bool,
    /// The last event ID string (set from the buffer at each blank line).
    last_event_id: Arc<str>,
    retry: Option<Duration>,
    /// The capacity to allocate for the next event's data.
    data_hint: usize,
    /// Bytes of the lines read since the last blank line, line breaks included.
    block_len: usize,
    failed: bool,
}

impl Decoder {
    /// A decoder with the default limits ([`DEFAULT_MAX_LINE_LEN`],
    /// [`DEFAULT_MAX_EVENT_LEN`]), comments skipped.
    pub fn new() -> Self {
        let empty: Arc<str> = Arc::from("");
        Self {
            config: DecoderConfig {
                max_line_len: DEFAULT_MAX_LINE_LEN,
                max_event_len: DEFAULT_MAX_EVENT_LEN,
                comments: false,
            },
            lines: Lines::default(),
            state: State {
                data: Vec::new(),
                event_type: Vec::new(),
                id_buffer: empty.clone(),
                id_in_block: false,
                last_event_id: empty,
                retry: None,
                data_hint: 0,
                block_len: 0,
                failed: false,
            },
        }
    }

    /// The longest line accepted, in bytes, line break excluded; a longer one is
    /// [`DecodeError::LineTooLong`], reported as soon as that many bytes are buffered
    /// without a line break. It also bounds each `event`, `id` and comment.
    pub fn max_line_len(mut self, bytes: usize) -> Self {
        self.config.max_line_len = bytes;
        self
    }

    /// The most data one event may hold, in bytes, counting an LF after each `data` line;
    /// more is [`DecodeError::EventTooLong`].
    pub fn max_event_len(mut self, bytes: usize) -> Self {
        self.config.max_event_len = bytes;
        self
    }

    /// Whether to yield comment lines as [`Decoded::Comment`] (off by default: the browser
    /// ignores them, and servers send them as keep-alives).
    pub fn comments(mut self, yield_comments: bool) -> Self {
        self.config.comments = yield_comments;
        self
    }

    /// Starts with this last event id, as a client resuming with `Last-Event-ID` does:
    /// events before the stream's first `id` field carry it.
    ///
    /// An id holding NUL could not have come from a stream, so it is ignored.
    pub fn initial_last_event_id(mut self, id: &str) -> Self {
        if !id.contains('\0') {
            let id: Arc<str> = Arc::from(id);
            self.state.id_buffer = id.clone();
            self.state.last_event_id = id;
        }
        self
    }

    /// Appends the next bytes of the stream. Chunks may be cut anywhere, even inside a
    /// CRLF or a UTF-8 sequence.
    ///
    /// Nothing is parsed until [`next_item`](Self::next_item) is called; call it until it
    /// returns `Ok(None)` before pushing more, so at most one unfinished line stays
    /// buffered.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.state.failed {
            return;
        }
        let lines = &mut self.lines;
        if lines.start > 0 {
            // Only the unfinished line is moved, once per push.
            lines.buf.drain(..lines.start);
            lines.scan -= lines.start;
            lines.start = 0;
        }
        lines.buf.extend_from_slice(bytes);
    }

    /// The next item the buffered bytes complete, or `Ok(None)` when more bytes are
    /// needed.
    ///
    /// # Errors
    ///
    /// When a limit is exceeded. The decoder then yields nothing more until
    /// [`finish`](Self::finish).
    pub fn next_item(&mut self) -> Result<Option<Decoded>, DecodeError> {
        if self.state.failed {
            return Ok(None);
        }
        match self.read() {
            Err(error) => {
                self.state.failed = true;
                // The buffers are of no use any more: give the memory back.
                self.lines = Lines::default();
                self.state.data = Vec::new();
                Err(error)
            }
            ok => ok,
        }
    }

    fn read(&mut self) -> Result<Option<Decoded>, DecodeError> {
        let config = self.config;
        let lines = &mut self.lines;
        loop {
            if !lines.bom_checked {
                let rest = &lines.buf[lines.start..];
                let n = rest.len().min(BOM.len());
                if rest[..n] != BOM[..n] {
                    lines.bom_checked = true;
                } else if n == BOM.len() {
                    lines.start += n;
                    lines.scan = lines.start;
                    lines.bom_checked = true;
                } else {
                    // Could still be a BOM: decide when more bytes come.
                    return Ok(None);
                }
            }
            if lines.after_cr {
                let Some(&first) = lines.buf.get(lines.start) else {
                    return Ok(None);
                };
                lines.after_cr = false;
                if first == b'\n' {
                    lines.start += 1;
                    lines.scan = lines.scan.max(lines.start);
                    if self.state.block_len > 0 {
                        self.state.block_len += 1;
                    }
                }
            }

            let Some(found) = memchr::memchr2(b'\n', b'\r', &lines.buf[lines.scan..]) else {
                lines.scan = lines.buf.len();
                if lines.buf.len() - lines.start > config.max_line_len {
                    return Err(DecodeError::LineTooLong {
                        limit: config.max_line_len,
                    });
                }
                return Ok(None);
            };
            let end = lines.scan + found;
            let mut next = end + 1;
            if lines.buf[end] == b'\r' {
                match lines.buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // A CR ends the line at once; waiting for a possible LF would hold the
                    // event back until the next chunk.
                    None => lines.after_cr = true,
                }
            }
            let start = std::mem::replace(&mut lines.start, next);
            lines.scan = next;
            if end - start > config.max_line_len {
                return Err(DecodeError::LineTooLong {
                    limit: config.max_line_len,
                });
            }
            let line = &lines.buf[start..end];
            if let Some(item) = self.state.process_line(line, next - end, &config)? {
                return Ok(Some(item));
            }
        }
    }

    /// Ends the stream: an unfinished event is discarded, as the standard says ("If the
    /// file ends in the middle of an event, before the final empty line, the incomplete
    /// event is not dispatched"). Returns how many bytes were discarded: those read since
    /// the last blank line, so 0 means the stream ended at an event boundary.
    ///
    /// The decoder is then ready for the next connection's stream, as `EventSource` is
    /// after reconnecting: the last event id and the retry time are kept, everything else
    /// (including a limit error) is reset.
    pub fn finish(&mut self) -> usize {
        let discarded = if self.state.failed {
            0
        } else {
            self.state.block_len + (self.lines.buf.len() - self.lines.start)
        };
        self.lines.buf.clear();
        self.lines.start = 0;
        self.lines.scan = 0;
        self.lines.bom_checked = false;
        self.lines.after_cr = false;
        let state = &mut self.state;
        state.data.clear();
        state.event_type.clear();
        state.id_buffer = state.last_event_id.clone();
        state.id_in_block = false;
        state.block_len = 0;
        state.failed = false;
        discarded
    }

    /// The last event id: what the last dispatched block (even one without data) left in
    /// the id buffer. A client reconnects with it as `Last-Event-ID`.
    pub fn last_event_id(&self) -> &str {
        &self.state.last_event_id
    }

    /// The reconnection time from the last valid `retry` field, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.state.retry
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("max_line_len", &self.config.max_line_len)
            .field("max_event_len", &self.config.max_event_len)
            .field("comments", &self.config.comments)
            .field("buffered", &(self.lines.buf.len() - self.lines.start))
            .field("last_event_id", &self.last_event_id())
            .field("retry", &self.state.retry)
            .finish()
    }
}

impl State {
    fn process_line(
        &mut self,
        line: &[u8],
        line_break: usize,
        config: &DecoderConfig,
    ) -> Result<Option<Decoded>, DecodeError> {
        if line.is_empty() {
            self.block_len = 0;
            return Ok(self.dispatch().map(Decoded::Event));
        }
        self.block_len = self.block_len.saturating_add(line.len() + line_break);
        let (name, value) = match memchr::memchr(b':', line) {
            Some(0) => {
                return Ok(config
                    .comments
                    .then(|| Decoded::Comment(to_string(strip_space(&line[1..])).into_owned())));
            }
            Some(colon) => (&line[..colon], strip_space(&line[colon + 1..])),
            // The whole line is the field name, and the value is empty.
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.data.len().saturating_add(value.len() + 1) > config.max_event_len {
                    return Err(DecodeError::EventTooLong {
                        limit: config.max_event_len,
                    });
                }
                if self.data.capacity() == 0 {
                    // One allocation per event: the size of the previous event's data, or
                    // of this line if larger (so a one-line event is one exact allocation).
                    self.data.reserve((value.len() + 1).max(self.data_hint));
                } else {
                    self.data.reserve(value.len() + 1);
                }
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            b"id" if memchr::memchr(0, value).is_none() => {
                let id = to_string(value);
                // Streams often repeat an id, or send none: keep the shared one then.
                if *id != *self.id_buffer {
                    self.id_buffer = Arc::from(&*id);
                }
                self.id_in_block = true;
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // No upper bound in the standard: saturate rather than drop a huge value.
                let millis = value.iter().fold(0u64, |n, digit| {
                    n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
                });
                let retry = Duration::from_millis(millis);
                self.retry = Some(retry);
                return Ok(Some(Decoded::Retry(retry)));
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<MessageEvent> {
        // The id takes effect even when nothing is dispatched.
        self.last_event_id = self.id_buffer.clone();
        let has_id = std::mem::take(&mut self.id_in_block);
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        // Every data line pushed an LF; the standard drops the last one.
        self.data.pop();
        // The next event is likely about as large: size its buffer so, rather than grow it
        // line by line.
        self.data_hint = (self.data.len() + 1).min(MAX_DATA_HINT);
        let data = into_string(std::mem::take(&mut self.data));
        let event_type = if self.event_type.is_empty() {
            String::new()
        } else {
            into_string(std::mem::take(&mut self.event_type))
        };
        Some(MessageEvent {
            event_type,
            data,
            last_event_id: self.last_event_id.clone(),
            has_id,
        })
    }
}

fn strip_space(value: &[u8]) -> &[u8] {
    value.strip_prefix(b" ").unwrap_or(value)
}

/// UTF-8 decoding with U+FFFD for invalid sequences, as the standard's "UTF-8 decode".
fn to_string(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (type, data, last event id) of each event, plus the retry items, from `chunks`.
    fn decode_with(decoder: &mut Decoder, chunks: &[&[u8]]) -> Vec<Decoded> {
        let mut items = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(item) = decoder.next_item().unwrap() {
                items.push(item);
            }
        }
        items
    }

    fn events(chunks: &[&[u8]]) -> Vec<(String, String, String)> {
        decode_with(&mut Decoder::new(), chunks)
            .into_iter()
            .filter_map(Decoded::into_event)
            .map(|e| {
                let t = e.event_type().to_owned();
                (t, e.data.clone(), e.last_event_id().to_owned())
            })
            .collect()
    }

    /// `events` for the whole input, checked to be the same for every cut in two and for
    /// byte-by-byte chunks.
    fn events_every_split(input: &[u8]) -> Vec<(String, String, String)> {
        let whole = events(&[input]);
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(events(&[a, b]), whole, "split at {at} of {input:?}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(events(&bytes), whole, "byte by byte: {input:?}");
        whole
    }

    fn msg(data: &str, id: &str) -> (String, String, String) {
        ("message".to_owned(), data.to_owned(), id.to_owned())
    }

    #[test]
    fn crlf_lf_and_lone_cr_end_lines() {
        for input in [
            &b"data: a\ndata: b\n\n"[..],
            b"data: a\r\ndata: b\r\n\r\n",
            b"data: a\rdata: b\r\r",
            b"data: a\r\ndata: b\r\r\n",
            b"data: a\rdata: b\n\r",
        ] {
            assert_eq!(events_every_split(input), [msg("a\nb", "")], "{input:?}");
        }
    }

    #[test]
    fn crlf_cut_between_chunks_is_one_break() {
        assert_eq!(
            events(&[b"data: a\r", b"\n", b"data: b\r", b"\n\r", b"\n"]),
            [msg("a\nb", "")]
        );
        // CR then CR in the next chunk is two breaks, and dispatches at once.
        assert_eq!(events(&[b"data: a\r", b"\r"]), [msg("a", "")]);
        assert_eq!(events(&[b"data: a\r\r"]), [msg("a", "")]);
    }

    #[test]
    fn leading_bom_is_stripped_once() {
        assert_eq!(
            events_every_split(b"\xEF\xBB\xBFdata: a\n\n"),
            [msg("a", "")]
        );
        // A second BOM belongs to the first field name, which is then unknown.
        assert_eq!(
            events_every_split(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"),
            [msg("b", "")]
        );
        // A partial BOM is invalid UTF-8 in the field name.
        assert_eq!(
            events_every_split(b"\xEF\xBBdata: a\n\ndata: b\n\n"),
            [msg("b", "")]
        );
        assert_eq!(
            events_every_split("data: \u{feff}a\n\n".as_bytes()),
            [msg("\u{feff}a", "")]
        );
    }

    #[test]
    fn line_without_colon_is_a_field_name() {
        assert_eq!(
            events_every_split(b"data\n\ndata\ndata\n\ndata:\n\n"),
            [msg("", ""), msg("\n", ""), msg("", "")]
        );
        // A bare `id` resets the id.
        assert_eq!(
            events_every_split(b"id: 1\ndata: a\n\nid\ndata: b\n\n"),
            [msg("a", "1"), msg("b", "")]
        );
    }

    #[test]
    fn one_leading_space_is_stripped() {
        assert_eq!(
            events_every_split(b"data:x\n\ndata: x\n\ndata:  x\n\ndata:\tx\n\ndata: a: b\n\n"),
            [
                msg("x", ""),
                msg("x", ""),
                msg(" x", ""),
                msg("\tx", ""),
                msg("a: b", "")
            ]
        );
    }

    #[test]
    fn retry_takes_ascii_digits_only() {
        let retry = |input: &[u8]| {
            let mut decoder = Decoder::new();
            let items = decode_with(&mut decoder, &[input]);
            let last_item = items.iter().rev().find_map(|item| match item {
                Decoded::Retry(retry) => Some(*retry),
                _ => None,
            });
            assert_eq!(last_item, decoder.retry());
            decoder.retry().map(|d| d.as_millis())
        };
        assert_eq!(retry(b"retry: 1500\n"), Some(1500));
        assert_eq!(retry(b"retry:0\n"), Some(0));
        assert_eq!(retry(b"retry: 10\nretry: 20\n"), Some(20));
        for ignored in [
            &b"retry: 1.5\n"[..],
            b"retry: -1\n",
            b"retry: +1\n",
            b"retry: 1 \n",
            b"retry:  1\n",
            b"retry: \xD9\xA1\n",
            b"retry: \n",
            b"retry\n",
        ] {
            assert_eq!(retry(ignored), None, "{ignored:?}");
        }
        assert_eq!(retry(b"retry: 5\nretry: x\n"), Some(5));
        assert_eq!(
            retry(b"retry: 99999999999999999999999\n"),
            Some(u128::from(u64::MAX))
        );
        // It applies at once, even in a block that dispatches nothing.
        assert_eq!(retry(b"retry: 3000\n\ndata: a\n\n"), Some(3000));
    }

    #[test]
    fn id_with_nul_is_ignored() {
        assert_eq!(
            events_every_split(b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"),
            [msg("a", "1"), msg("b", "1")]
        );
    }

    #[test]
    fn last_event_id_carries_over_and_updates_without_data() {
        let mut decoder = Decoder::new();
        let items = decode_with(
            &mut decoder,
            &[b"id: 7\n\ndata: a\n\nid: 8\ndata: b\n\ndata: c\n\nid: 9\n\n"],
        );
        let events: Vec<_> = items.into_iter().filter_map(Decoded::into_event).collect();
        let ids: Vec<_> = events.iter().map(|e| (e.last_event_id(), e.id())).collect();
        assert_eq!(ids, [("7", None), ("8", Some("8")), ("8", None)]);
        assert_eq!(decoder.last_event_id(), "9");
        // An id read but not yet dispatched is not the last event id yet.
        decoder.push(b"id: 10\n");
        assert_eq!(decoder.next_item().unwrap(), None);
        assert_eq!(decoder.last_event_id(), "9");
    }

    #[test]
    fn no_dispatch_without_data_and_type_resets() {
        assert_eq!(
            events_every_split(
                b"event: lost\n\ndata: a\n\nevent: add\ndata: b\n\nevent: \ndata: c\n\n"
            ),
            [
                msg("a", ""),
                ("add".to_owned(), "b".to_owned(), String::new()),
                msg("c", "")
            ]
        );
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored_unless_asked() {
        let input: &[u8] = b": hi\n:\nfoo: bar\nData: x\ndata : y\n:  two\ndata: a\n\n";
        assert_eq!(events_every_split(input), [msg("a", "")]);
        let items = decode_with(&mut Decoder::new().comments(true), &[input]);
        let comments: Vec<_> = items
            .iter()
            .filter_map(|item| match item {
                Decoded::Comment(text) => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(comments, ["hi", "", " two"]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(
            events_every_split(b"data: a\xFFb\xE2\x82\n\n"),
            [msg("a\u{fffd}b\u{fffd}", "")]
        );
        assert_eq!(
            events_every_split("data: é€😀\n\n".as_bytes()),
            [msg("é€😀", "")]
        );
    }

    #[test]
    fn unfinished_event_is_discarded_and_counted() {
        let mut decoder = Decoder::new();
        assert!(decode_with(&mut decoder, &[b"data: a\n\ndata: b\n"]).len() == 1);
        assert_eq!(decoder.finish(), 8);
        assert!(decode_with(&mut decoder, &[b"data: a\r\r\n"]).len() == 1);
        assert_eq!(
            decoder.finish(),
            0,
            "the LF after the last CR is part of its break"
        );
        assert!(decode_with(&mut decoder, &[b"data: a\r\n", b"\n"]).len() == 1);
        assert_eq!(decoder.finish(), 0);
        assert!(decode_with(&mut decoder, &[b"data: a\r", b"\n"]).is_empty());
        assert_eq!(decoder.finish(), 9);
        assert!(decode_with(&mut decoder, &[b"da"]).is_empty());
        assert_eq!(decoder.finish(), 2);
        assert_eq!(decoder.finish(), 0);
    }

    #[test]
    fn finish_keeps_last_event_id_and_resets_the_stream() {
        let mut decoder = Decoder::new();
        decode_with(&mut decoder, &[b"id: 1\ndata: a\n\nid: 2\ndata: lost"]);
        decoder.finish();
        assert_eq!(decoder.last_event_id(), "1");
        // The next stream may start with a BOM again, and carries the id over.
        let items = decode_with(&mut decoder, &[b"\xEF\xBB\xBFdata: b\n\n"]);
        let event = items.into_iter().find_map(Decoded::into_event).unwrap();
        assert_eq!((event.data(), event.last_event_id()), ("b", "1"));
    }

    #[test]
    fn initial_last_event_id_is_carried() {
        let mut decoder = Decoder::new().initial_last_event_id("41");
        let items = decode_with(&mut decoder, &[b"data: a\n\n"]);
        let event = items.into_iter().find_map(Decoded::into_event).unwrap();
        assert_eq!((event.last_event_id(), event.id()), ("41", None));
        let decoder = Decoder::new().initial_last_event_id("a\0");
        assert_eq!(decoder.last_event_id(), "");
    }

    #[test]
    fn line_limit_is_an_error_however_the_line_arrives() {
        let long = [&b"data: "[..], &[b'x'; 10][..], b"\n\n"].concat();
        // 16 bytes of line: a limit of 16 takes it, 15 does not.
        let mut decoder = Decoder::new().max_line_len(16);
        assert_eq!(decode_with(&mut decoder, &[&long]).len(), 1);
        for chunk_len in [1, 3, long.len()] {
            let mut decoder = Decoder::new().max_line_len(15);
            let mut error = None;
            for chunk in long.chunks(chunk_len) {
                decoder.push(chunk);
                match decoder.next_item() {
                    Ok(_) => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let error = error.expect("no error");
            assert!(matches!(error, DecodeError::LineTooLong { limit: 15 }));
            // Nothing more after the error, even if the input goes on.
            decoder.push(b"\ndata: b\n\n");
            assert_eq!(decoder.next_item().unwrap(), None);
        }
        // An unterminated line is refused before its end arrives: memory stays bounded.
        let mut decoder = Decoder::new().max_line_len(4);
        decoder.push(b"data:");
        assert!(decoder.next_item().is_err());
        assert!(decoder.lines.buf.capacity() == 0);
    }

    #[test]
    fn event_limit_counts_data_and_line_breaks() {
        // "ab\ncd\n" is 6 bytes.
        let input: &[u8] = b"data: ab\ndata: cd\n\n";
        let mut decoder = Decoder::new().max_event_len(6);
        assert_eq!(decode_with(&mut decoder, &[input]).len(), 1);
        let mut decoder = Decoder::new().max_event_len(5);
        decoder.push(input);
        let error = decoder.next_item().unwrap_err();
        assert!(matches!(error, DecodeError::EventTooLong { limit: 5 }));
        assert_eq!(decoder.next_item().unwrap(), None);
        // `finish` makes it usable for the next stream.
        assert_eq!(decoder.finish(), 0);
        assert_eq!(decode_with(&mut decoder, &[b"data: a\n\n"]).len(), 1);
    }

    #[test]
    fn a_long_line_in_small_chunks_is_scanned_once() {
        let mut decoder = Decoder::new();
        for _ in 0..1000 {
            decoder.push(b"xxxxxxxx");
            assert_eq!(decoder.next_item().unwrap(), None);
            assert_eq!(decoder.lines.scan, decoder.lines.buf.len());
        }
    }
}
