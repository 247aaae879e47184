//! The [`Event`] builder and [`EncodedEvent`], an event framed once and sent many times.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::encode::{self, COMMENT, DATA, EVENT, ID, RETRY};
use crate::error::EventError;

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
#[derive(Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Event {
    comment: Option<Cow<'static, str>>,
    id: Option<Id>,
    event: Option<Cow<'static, str>>,
    retry: Option<Duration>,
    data: Option<Data>,
}

#[derive(Clone, PartialEq, Eq)]
enum Id {
    Text(Cow<'static, str>),
    Number(u64),
}

#[derive(Clone, PartialEq, Eq)]
enum Data {
    Text(Cow<'static, str>),
    /// Kept as the `Vec` serde_json wrote: turning it into `Bytes` would cost a second
    /// allocation per event, for a value that is only ever copied into a frame.
    #[cfg(feature = "json")]
    Json(Vec<u8>),
}

impl Event {
    /// An empty event; add fields with the builder methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the data to `text`, sent as is, one `data:` line per line.
    pub fn data(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        self.data = Some(Data::Text(text.into()));
        self
    }

    /// Sets the data to the JSON serialization of `value`.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialize.
    #[cfg(feature = "json")]
    pub fn json_data<T>(mut self, value: &T) -> Result<Self, EventError>
    where
        T: serde::Serialize + ?Sized,
    {
        let json = serde_json::to_vec(value).map_err(EventError::json)?;
        self.data = Some(Data::Json(json));
        Ok(self)
    }

    /// Sets the event type (`event:`), which selects the `addEventListener` handler.
    ///
    /// # Errors
    ///
    /// When `event` holds a CR or LF, which would end the field early.
    pub fn event(mut self, event: impl Into<Cow<'static, str>>) -> Result<Self, EventError> {
        let event = event.into();
        if has_line_break(&event) {
            return Err(EventError::event_line_break());
        }
        self.event = Some(event);
        Ok(self)
    }

    /// Sets the event id (`id:`), which the browser sends back as `Last-Event-ID`.
    ///
    /// # Errors
    ///
    /// When `id` holds a CR or LF (the field would end early) or NUL (the browser ignores
    /// such an id).
    pub fn id(mut self, id: impl Into<Cow<'static, str>>) -> Result<Self, EventError> {
        let id = id.into();
        if has_line_break(&id) {
            return Err(EventError::id_line_break());
        }
        if id.as_bytes().contains(&0) {
            return Err(EventError::id_nul());
        }
        self.id = Some(Id::Text(id));
        Ok(self)
    }

    /// Sets a numeric event id; always valid, and written without allocating.
    pub fn id_u64(mut self, id: u64) -> Self {
        self.id = Some(Id::Number(id));
        self
    }

    /// Sets the reconnection delay hint (`retry:`), written in whole milliseconds.
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = Some(delay);
        self
    }

    /// Sets a comment, which the browser ignores; line breaks make several comment lines.
    pub fn comment(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        self.comment = Some(text.into());
        self
    }

    /// Drops the id, for stores that assign it after framing (a Redis stream's entry id).
    #[cfg(feature = "redis")]
    pub(crate) fn without_id(mut self) -> Self {
        self.id = None;
        self
    }

    /// Frames this event once, for sending the same bytes to many clients.
    pub fn encode(&self) -> EncodedEvent {
        let mut buf = BytesMut::new();
        self.encode_into(&mut buf);
        EncodedEvent(buf.freeze())
    }

    pub(crate) fn encode_into(&self, buf: &mut BytesMut) {
        if let Some(comment) = &self.comment {
            encode::put_lines(buf, COMMENT, comment.as_bytes());
        }
        match &self.id {
            Some(Id::Text(id)) => encode::put_field(buf, ID, id.as_bytes()),
            Some(Id::Number(id)) => encode::put_u64_field(buf, ID, *id),
            None => {}
        }
        if let Some(event) = &self.event {
            encode::put_field(buf, EVENT, event.as_bytes());
        }
        if let Some(retry) = self.retry {
            encode::put_u64_field(buf, RETRY, duration_millis(retry));
        }
        match &self.data {
            Some(Data::Text(text)) => encode::put_lines(buf, DATA, text.as_bytes()),
            #[cfg(feature = "json")]
            Some(Data::Json(json)) => encode::put_lines(buf, DATA, json),
            None => {}
        }
        encode::end_event(buf);
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown as the frame it encodes to: that is what a reader of a log wants to see.
        f.debug_tuple("Event").field(&self.encode()).finish()
    }
}

/// An event already framed as SSE bytes: encode once, then send the same [`Bytes`] to
/// every subscriber without serializing again.
///
/// # Example
///
/// ```
/// use tower_sse::Event;
///
/// let frame = Event::new().id_u64(7).data("hi").encode();
/// assert_eq!(frame.as_bytes(), &b"id: 7\ndata: hi\n\n"[..]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedEvent(Bytes);

impl EncodedEvent {
    /// Frames `value` as a data-only event carrying its JSON.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialize.
    #[cfg(feature = "json")]
    pub fn json<T>(value: &T) -> Result<Self, EventError>
    where
        T: serde::Serialize + ?Sized,
    {
        let mut buf = BytesMut::new();
        encode::put_json_data(&mut buf, value).map_err(EventError::json)?;
        encode::end_event(&mut buf);
        Ok(Self(buf.freeze()))
    }

    /// The frame's bytes, ending with the blank line that dispatches it.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The frame's bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Wraps bytes that already are one complete frame, written by this crate's encoder.
    #[cfg(feature = "redis")]
    pub(crate) fn from_frame(frame: Bytes) -> Self {
        Self(frame)
    }
}

impl From<Event> for EncodedEvent {
    fn from(event: Event) -> Self {
        event.encode()
    }
}

impl fmt::Debug for EncodedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncodedEvent")
            .field(&String::from_utf8_lossy(&self.0))
            .finish()
    }
}

fn has_line_break(value: &str) -> bool {
    memchr::memchr2(b'\n', b'\r', value.as_bytes()).is_some()
}

fn duration_millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
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
