//! [`EventType`] and [`EventId`]: field values checked once, then set without a `Result`.

use std::borrow::Cow;
use std::fmt;

use crate::error::EventError;

/// An event type (`event:`) checked once, so that setting it cannot fail.
///
/// [`Event::event`](super::Event::event) checks its argument on every call and returns a
/// `Result`; an `EventType` is checked when it is made, and
/// [`Event::with_event`](super::Event::with_event) takes it as is. A literal checked in a
/// `const` fails the build if it holds a line break:
///
/// ```
/// use tower_sse::{Event, EventType};
///
/// const TOKEN: EventType = EventType::from_static("token");
///
/// let event = Event::new().with_event(TOKEN).data("Hello");
/// assert_eq!(event.encode().as_bytes(), &b"event: token\ndata: Hello\n\n"[..]);
/// ```
///
/// ```compile_fail
/// # use tower_sse::EventType;
/// const BROKEN: EventType = EventType::from_static("two\nlines");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventType(Cow<'static, str>);

impl EventType {
    /// An event type from a literal.
    ///
    /// # Panics
    ///
    /// When `name` holds a CR or LF: at compile time in a `const`, otherwise on first use,
    /// as [`HeaderValue::from_static`](http::HeaderValue::from_static) does. For values
    /// that are not literals, use [`EventType::new`], which returns an error instead.
    pub const fn from_static(name: &'static str) -> Self {
        if has_line_break(name.as_bytes()) {
            panic!("an event type must not hold a line break");
        }
        Self(Cow::Borrowed(name))
    }

    /// An event type from any text.
    ///
    /// # Errors
    ///
    /// When `name` holds a CR or LF, which would end the field early.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Result<Self, EventError> {
        let name = name.into();
        if has_line_break(name.as_bytes()) {
            return Err(EventError::event_line_break());
        }
        Ok(Self(name))
    }

    /// The event type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EventType").field(&self.as_str()).finish()
    }
}

/// An event id (`id:`) checked once, so that setting it cannot fail.
///
/// The counterpart of [`EventType`] for [`Event::with_id`](super::Event::with_id); numeric
/// ids need neither, as [`Event::id_u64`](super::Event::id_u64) cannot fail.
///
/// ```
/// use tower_sse::{Event, EventId};
///
/// const GREETING: EventId = EventId::from_static("greeting");
///
/// let event = Event::new().with_id(GREETING).data("Hello");
/// assert_eq!(event.encode().as_bytes(), &b"id: greeting\ndata: Hello\n\n"[..]);
/// ```
///
/// ```compile_fail
/// # use tower_sse::EventId;
/// const BROKEN: EventId = EventId::from_static("nul\0");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventId(Cow<'static, str>);

impl EventId {
    /// The id that marks a stream's last event; see
    /// [`Event::end_of_stream`](super::Event::end_of_stream).
    pub const END_OF_STREAM: EventId = EventId::from_static("tower-sse:end-of-stream");

    /// An event id from a literal.
    ///
    /// # Panics
    ///
    /// When `id` holds a CR, LF or NUL: at compile time in a `const`, otherwise on first
    /// use. For values that are not literals, use [`EventId::new`].
    pub const fn from_static(id: &'static str) -> Self {
        if has_line_break(id.as_bytes()) {
            panic!("an event id must not hold a line break");
        }
        if has_nul(id.as_bytes()) {
            panic!("an event id must not hold NUL");
        }
        Self(Cow::Borrowed(id))
    }

    /// An event id from any text.
    ///
    /// # Errors
    ///
    /// When `id` holds a CR or LF (the field would end early) or NUL (the browser ignores
    /// such an id).
    pub fn new(id: impl Into<Cow<'static, str>>) -> Result<Self, EventError> {
        let id = id.into();
        if has_line_break(id.as_bytes()) {
            return Err(EventError::id_line_break());
        }
        if has_nul(id.as_bytes()) {
            return Err(EventError::id_nul());
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EventId").field(&self.as_str()).finish()
    }
}

const fn has_line_break(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || bytes[i] == b'\r' {
            return true;
        }
        i += 1;
    }
    false
}

const fn has_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_cannot_be_framed_are_refused() {
        assert!(EventType::new("a\rb").is_err());
        assert!(EventType::new(String::from("a\nb")).is_err());
        assert!(EventId::new("a\nb").is_err());
        assert!(EventId::new("a\0b").is_err());
        assert_eq!(EventId::new("42").unwrap().as_str(), "42");
    }

    #[test]
    #[should_panic(expected = "an event type must not hold a line break")]
    fn a_broken_literal_panics_on_first_use() {
        let _ = EventType::from_static("two\r\nlines");
    }
}
