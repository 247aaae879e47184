//! The [`Event`] builder and [`EncodedEvent`], an event framed once and sent many times.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | [`Event`]: the builder, and the checks on `id` and `event` |
//! | `checked.rs` | [`EventType`] and [`EventId`]: those checks done once, for literals and reuse |
//! | `fields.rs` | an event's framed field lines in wire order, and where each one lies |
//! | `pool.rs` | the per-thread pool that recycles those buffers |
//! | `encoded.rs` | [`EncodedEvent`]: one frame's bytes, shared by every client |
//!
//! Imports run one way: `mod.rs` builds into `fields` taken from the `pool`, and encodes
//! into an `encoded` frame.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::BytesMut;

use crate::encode::{self, COMMENT, DATA, EVENT, ID};
use crate::error::EventError;

mod checked;
mod encoded;
mod fields;
mod pool;

pub use checked::{EventId, EventType};
pub use encoded::EncodedEvent;
use fields::{Fields, COMMENT_FIELD, DATA_FIELD, EVENT_FIELD, ID_FIELD, RETRY_FIELD};

/// One server-sent event: optional comment, `id`, `event` type, `retry` hint and data.
///
/// Fields that the browser's parser could misread are checked when they are set: an `id`
/// or `event` holding a line break, or an `id` holding NUL, is refused with an
/// [`EventError`] instead of being altered. Data may hold any text: each line of it
/// becomes its own `data:` line, whatever the line break (CRLF, LF or a lone CR).
///
/// Setting a field twice keeps the last value.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::Event;
///
/// let event = Event::new()
///     .event("token")?
///     .id("42")?
///     .retry(Duration::from_secs(2))
///     .data("Hello,\nworld");
///
/// assert_eq!(
///     event.encode().as_bytes(),
///     &b"id: 42\nevent: token\nretry: 2000\ndata: Hello,\ndata: world\n\n"[..],
/// );
/// # Ok::<(), tower_sse::EventError>(())
/// ```
///
/// Text arguments are borrowed and copied (`&str`, `&String`, `String`, `Cow<str>`, ...):
/// each field is framed into the event's own buffer as it is set. That buffer comes from a
/// small per-thread pool and goes back to it when the event is dropped, so a stream that
/// builds its events on the thread that sends them allocates nothing per event.
///
/// Two events are equal when they frame to the same bytes.
#[derive(Default)]
#[must_use]
pub struct Event {
    /// Boxed so that the builder's by-value moves copy one pointer, not a buffer header
    /// that was just written (which stalls on store forwarding); `None` until a field is
    /// set.
    fields: Option<Box<Fields>>,
}

impl Event {
    /// An empty event; add fields with the builder methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the data to `text`, sent as is, one `data:` line per line.
    ///
    /// `text` may be borrowed (`&str`, `&String`) or owned; it is copied into the frame.
    ///
    /// ```
    /// use tower_sse::Event;
    ///
    /// let entry = String::from("a\nb");
    /// let event = Event::new().data(&entry);
    /// assert_eq!(event.encode().as_bytes(), &b"data: a\ndata: b\n\n"[..]);
    /// ```
    pub fn data<'a>(mut self, text: impl Into<Cow<'a, str>>) -> Self {
        self.replace(DATA_FIELD, |buf| {
            encode::put_lines(buf, DATA, text.into().as_bytes())
        });
        self
    }

    /// Sets the data to the JSON serialization of `value`, written straight into the
    /// event's buffer.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialize.
    #[cfg(feature = "json")]
    pub fn json_data<T>(mut self, value: &T) -> Result<Self, EventError>
    where
        T: serde::Serialize + ?Sized,
    {
        self.set(DATA_FIELD, |buf| encode::put_json_data(buf, value))
            .map_err(EventError::json)?;
        Ok(self)
    }

    /// Sets the event type (`event:`), which selects the `addEventListener` handler.
    ///
    /// # Errors
    ///
    /// When `event` holds a CR or LF, which would end the field early.
    pub fn event<'a>(mut self, event: impl Into<Cow<'a, str>>) -> Result<Self, EventError> {
        let event = event.into();
        if has_line_break(&event) {
            return Err(EventError::event_line_break());
        }
        self.put_field(EVENT_FIELD, EVENT, event.as_bytes());
        Ok(self)
    }

    /// Sets the event id (`id:`), which the browser sends back as `Last-Event-ID`.
    ///
    /// # Errors
    ///
    /// When `id` holds a CR or LF (the field would end early) or NUL (the browser ignores
    /// such an id).
    pub fn id<'a>(mut self, id: impl Into<Cow<'a, str>>) -> Result<Self, EventError> {
        let id = id.into();
        if has_line_break(&id) {
            return Err(EventError::id_line_break());
        }
        if id.as_bytes().contains(&0) {
            return Err(EventError::id_nul());
        }
        self.put_field(ID_FIELD, ID, id.as_bytes());
        Ok(self)
    }

    /// Sets an event type checked when it was made; cannot fail.
    ///
    /// ```
    /// use tower_sse::{Event, EventType};
    ///
    /// const DONE: EventType = EventType::from_static("done");
    /// let event = Event::new().with_event(DONE).data("");
    /// assert_eq!(event.encode().as_bytes(), &b"event: done\ndata: \n\n"[..]);
    /// ```
    pub fn with_event(mut self, event: EventType) -> Self {
        self.put_field(EVENT_FIELD, EVENT, event.as_str().as_bytes());
        self
    }

    /// Sets an event id checked when it was made; cannot fail.
    pub fn with_id(mut self, id: EventId) -> Self {
        self.put_field(ID_FIELD, ID, id.as_str().as_bytes());
        self
    }

    /// Marks this event as its stream's last, for good: its id becomes
    /// [`EventId::END_OF_STREAM`].
    ///
    /// When the stream ends, `EventSource` reconnects and sends that id back as
    /// `Last-Event-ID`; the layer answers `204 No Content` without calling the inner
    /// service, and a `204` makes `EventSource` stop for good. In axum, the
    /// `Option<LastEventId>` extractor answers the same. Nothing is kept per stream: the id
    /// itself says the stream is over. Send it as the last item and end the stream.
    ///
    /// ```
    /// use tower_sse::{Event, EventType};
    ///
    /// let last = Event::new().with_event(EventType::from_static("done")).data("").end_of_stream();
    /// assert_eq!(
    ///     last.encode().as_bytes(),
    ///     &b"id: tower-sse:end-of-stream\nevent: done\ndata: \n\n"[..],
    /// );
    /// ```
    pub fn end_of_stream(self) -> Self {
        self.with_id(EventId::END_OF_STREAM)
    }

    /// Sets a numeric event id; always valid, and written without formatting machinery.
    pub fn id_u64(mut self, id: u64) -> Self {
        self.replace(ID_FIELD, |buf| encode::put_u64_field(buf, ID, id));
        self
    }

    /// Sets the reconnection delay hint (`retry:`), written in whole milliseconds.
    pub fn retry(mut self, delay: Duration) -> Self {
        self.replace(RETRY_FIELD, |buf| encode::put_retry_field(buf, delay));
        self
    }

    /// Sets a comment, which the browser ignores; line breaks make several comment lines.
    pub fn comment<'a>(mut self, text: impl Into<Cow<'a, str>>) -> Self {
        self.replace(COMMENT_FIELD, |buf| {
            encode::put_lines(buf, COMMENT, text.into().as_bytes())
        });
        self
    }

    /// Drops the id, for stores that assign it after framing (a Redis stream's entry id).
    #[cfg(feature = "redis")]
    pub(crate) fn without_id(mut self) -> Self {
        if let Some(fields) = self.fields.as_deref_mut() {
            fields.remove(ID_FIELD);
        }
        self
    }

    /// Frames this event once, for sending the same bytes to many clients.
    pub fn encode(&self) -> EncodedEvent {
        let mut buf = BytesMut::with_capacity(self.lines().len() + 1);
        self.encode_into(&mut buf);
        EncodedEvent::from_frame(buf.freeze())
    }

    pub(crate) fn encode_into(&self, buf: &mut BytesMut) {
        let lines = self.lines();
        buf.reserve(lines.len() + 1);
        buf.extend_from_slice(lines);
        encode::end_event(buf);
    }

    /// The field lines, without the blank line that ends the event.
    fn lines(&self) -> &[u8] {
        self.fields.as_deref().map_or(&[], |fields| &fields.buf[..])
    }

    #[inline]
    fn put_field(&mut self, field: usize, prefix: &[u8], value: &[u8]) {
        self.replace(field, |buf| encode::put_field(buf, prefix, value));
    }

    /// Replaces `field` with what `write` appends to the buffer.
    #[inline]
    fn replace(&mut self, field: usize, write: impl FnOnce(&mut BytesMut)) {
        let result = self.set(field, |buf| {
            write(buf);
            Ok::<_, std::convert::Infallible>(())
        });
        match result {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    /// Replaces `field` with what `write` appends to the buffer; on error, leaves the
    /// event as it was.
    #[inline]
    fn set<E>(
        &mut self,
        field: usize,
        write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        self.fields.get_or_insert_with(pool::take).set(field, write)
    }
}

impl From<Event> for EncodedEvent {
    fn from(event: Event) -> Self {
        event.encode()
    }
}

impl Clone for Event {
    fn clone(&self) -> Self {
        let fields = self.fields.as_deref().map(|fields| {
            let mut copy = pool::take();
            copy.buf.extend_from_slice(&fields.buf);
            copy.lens = fields.lens;
            copy
        });
        Self { fields }
    }
}

// The field layout is canonical (wire order, each field once), so equal lines mean equal
// fields.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.lines() == other.lines()
    }
}

impl Eq for Event {}

impl Drop for Event {
    fn drop(&mut self) {
        if let Some(fields) = self.fields.take() {
            pool::give(fields);
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown as the frame it encodes to: that is what a reader of a log wants to see.
        f.debug_tuple("Event").field(&self.encode()).finish()
    }
}

fn has_line_break(value: &str) -> bool {
    memchr::memchr2(b'\n', b'\r', value.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::fields::FIELDS;
    use super::*;

    fn frame(event: &Event) -> String {
        String::from_utf8(event.encode().into_bytes().to_vec()).unwrap()
    }

    #[test]
    fn writes_every_field() {
        let event = Event::new()
            .comment("a\nb")
            .id("x")
            .unwrap()
            .event("e")
            .unwrap()
            .retry(Duration::from_millis(1500))
            .data("d");
        assert_eq!(
            frame(&event),
            ": a\n: b\nid: x\nevent: e\nretry: 1500\ndata: d\n\n"
        );
    }

    #[test]
    fn comment_only_event() {
        assert_eq!(frame(&Event::new().comment("ping")), ": ping\n\n");
    }

    #[test]
    fn refuses_unframeable_fields() {
        for bad in ["a\nb", "a\rb", "\r\n", "\n"] {
            assert_eq!(
                Event::new().id(bad).unwrap_err().to_string(),
                "event id contains a line break"
            );
            assert_eq!(
                Event::new().event(bad).unwrap_err().to_string(),
                "event type contains a line break"
            );
        }
        assert_eq!(
            Event::new().id("a\0b").unwrap_err().to_string(),
            "event id contains a NUL character"
        );
        // NUL is harmless in an event type.
        assert!(Event::new().event("a\0b").is_ok());
    }

    #[test]
    fn setting_twice_replaces() {
        let event = Event::new().data("a").data("b").id_u64(1).id_u64(2);
        assert_eq!(frame(&event), "id: 2\ndata: b\n\n");
    }

    #[test]
    fn huge_retry_saturates() {
        let event = Event::new().retry(Duration::MAX);
        assert_eq!(frame(&event), format!("retry: {}\n\n", u64::MAX));
    }

    #[test]
    fn takes_text_borrowed_from_a_local() {
        fn relay(entry: &String, kind: &str) -> Event {
            let id = format!("{}-{}", kind, entry.len());
            Event::new()
                .comment(kind)
                .id(&id)
                .unwrap()
                .event(kind)
                .unwrap()
                .data(entry)
        }
        let entry = String::from("x\ny");
        assert_eq!(
            frame(&relay(&entry, "note")),
            ": note\nid: note-3\nevent: note\ndata: x\ndata: y\n\n"
        );
        // What compiled before still does: `&'static str`, `String`, `Cow<'static, str>`.
        let cow: Cow<'static, str> = "c".into();
        let event = Event::new()
            .data(String::from("s"))
            .comment(cow)
            .event(String::from("e"))
            .unwrap();
        assert_eq!(frame(&event), ": c\nevent: e\ndata: s\n\n");
    }

    /// Every sequence of up to four setter calls frames as the last value of each field,
    /// in wire order, whatever order they came in.
    #[test]
    fn any_setter_order_frames_like_the_last_values() {
        // (field, setter, lines it frames to)
        type Set = fn(Event) -> Event;
        let setters: [(usize, Set, &str); 8] = [
            (COMMENT_FIELD, |e| e.comment("c\nd"), ": c\n: d\n"),
            (COMMENT_FIELD, |e| e.comment(""), ": \n"),
            (ID_FIELD, |e| e.id_u64(12), "id: 12\n"),
            (ID_FIELD, |e| e.id("abc").unwrap(), "id: abc\n"),
            (EVENT_FIELD, |e| e.event("tick").unwrap(), "event: tick\n"),
            (
                RETRY_FIELD,
                |e| e.retry(Duration::from_millis(5)),
                "retry: 5\n",
            ),
            (DATA_FIELD, |e| e.data("x\r\ny"), "data: x\ndata: y\n"),
            (
                DATA_FIELD,
                |e| e.data("long data line"),
                "data: long data line\n",
            ),
        ];
        let mut cases = 0;
        let mut sequence = Vec::new();
        for len in 0..=4u32 {
            for mut code in 0..setters.len().pow(len) {
                sequence.clear();
                for _ in 0..len {
                    sequence.push(code % setters.len());
                    code /= setters.len();
                }
                let mut event = Event::new();
                let mut last: [Option<&str>; FIELDS] = [None; FIELDS];
                for &i in &sequence {
                    let (field, set, lines) = setters[i];
                    event = set(event);
                    last[field] = Some(lines);
                }
                let expected: String = last.iter().flatten().copied().collect();
                assert_eq!(frame(&event), expected + "\n", "{sequence:?}");
                assert_eq!(event, event.clone());
                cases += 1;
            }
        }
        assert_eq!(cases, 1 + 8 + 64 + 512 + 4096);
    }

    #[test]
    fn equal_when_framed_alike() {
        let a = Event::new().id_u64(1).data("x");
        let b = Event::new().data("y").id("1").unwrap().data("x");
        assert_eq!(a, b);
        assert_ne!(a, Event::new().id_u64(1).data("y"));
        assert_eq!(Event::new(), Event::default());
    }

    #[test]
    fn failed_write_leaves_the_event_as_it_was() {
        let mut event = Event::new().id_u64(1).data("x");
        let result = event.set(ID_FIELD, |buf| {
            buf.extend_from_slice(b"id: partial");
            Err(())
        });
        assert!(result.is_err());
        assert_eq!(frame(&event), "id: 1\ndata: x\n\n");
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_data() {
        let event = Event::new()
            .json_data(&serde_json::json!({"a": "x\ny"}))
            .unwrap();
        assert_eq!(frame(&event), "data: {\"a\":\"x\\ny\"}\n\n");
        let frame = EncodedEvent::json(&[1, 2]).unwrap();
        assert_eq!(frame.as_bytes(), &b"data: [1,2]\n\n"[..]);
    }
}
