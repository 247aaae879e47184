//! What the decoder yields: [`MessageEvent`]s, and the [`Decoded`] items around them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One dispatched event, as the browser's `EventSource` hands it to a `MessageEvent`
/// listener: its type, its data and the last event id.
///
/// Line breaks inside the data are LF, whatever the stream used; text that was not valid
/// UTF-8 holds U+FFFD REPLACEMENT CHARACTER in its place, as in the browser.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// Empty when the block had no `event` field, or an empty one: reads as `message`.
    pub(crate) event_type: String,
    pub(crate) data: String,
    /// Shared with the decoder and every event until the next `id`, so that carrying the
    /// id over costs no allocation.
    pub(crate) last_event_id: Arc<str>,
    pub(crate) has_id: bool,
}

impl MessageEvent {
    /// The event type: the block's `event` field, or `message` when it had none (or an
    /// empty one). It selects the `addEventListener` handler in a browser.
    pub fn event_type(&self) -> &str {
        if self.event_type.is_empty() {
            "message"
        } else {
            &self.event_type
        }
    }

    /// The data: the block's `data` fields joined with LF.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// Takes the data without copying it.
    pub fn into_data(self) -> String {
        self.data
    }

    /// `MessageEvent.lastEventId`: the value of the last `id` field seen, in this block or
    /// an earlier one (the empty string when there was none, or after an empty `id`).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The value of this block's own `id` field, if it had one that took effect (an `id`
    /// holding NUL is ignored). Use [`last_event_id`](Self::last_event_id) to resume.
    pub fn id(&self) -> Option<&str> {
        self.has_id.then(|| &*self.last_event_id)
    }
}

impl fmt::Debug for MessageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEvent")
            .field("event_type", &self.event_type())
            .field("data", &self.data)
            .field("last_event_id", &self.last_event_id())
            .field("has_id", &self.has_id)
            .finish()
    }
}

/// The same event, to send on: its type (unless `message`), its own `id` field (if the
/// block had one, even an empty one, which clears the id downstream as it did here) and its
/// data. A relay re-serves what it reads without copying fields by hand.
///
/// ```
/// use tower_sse::decode::{Decoded, Decoder};
/// use tower_sse::Event;
///
/// let mut decoder = Decoder::new();
/// decoder.push(b"event: token\nid: 7\ndata: Hi\n\n");
/// let Some(Decoded::Event(read)) = decoder.next_item()? else { panic!("no event") };
/// let event = Event::from(read);
/// assert_eq!(event.encode().as_bytes(), &b"id: 7\nevent: token\ndata: Hi\n\n"[..]);
/// # Ok::<(), tower_sse::decode::DecodeError>(())
/// ```
impl From<MessageEvent> for crate::Event {
    fn from(event: MessageEvent) -> Self {
        let mut out = crate::Event::new();
        // A decoded type never holds a line break, nor a decoded id a line break or NUL:
        // neither setter can fail, so no field is lost below.
        if !event.event_type.is_empty() {
            out = out.event(event.event_type.as_str()).unwrap_or_default();
        }
        if event.has_id {
            out = out.id(&*event.last_event_id).unwrap_or_default();
        }
        out.data(event.data)
    }
}

/// One thing the decoder read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoded {
    /// A blank line dispatched an event.
    Event(MessageEvent),
    /// A valid `retry` field set the reconnection time, in whole milliseconds. It applies
    /// at once, as in the browser, whether or not its block dispatches an event; the last
    /// value is also kept by [`Decoder::retry`](super::Decoder::retry).
    Retry(Duration),
    /// A comment line (starting with `:`), without the colon and one space after it.
    /// Only yielded when [`Decoder::comments`](super::Decoder::comments) is on.
    Comment(String),
}

impl Decoded {
    /// The event, if this item is one.
    pub fn into_event(self) -> Option<MessageEvent> {
        match self {
            Self::Event(event) => Some(event),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;

    fn relayed(input: &[u8]) -> Vec<Vec<u8>> {
        let mut decoder = Decoder::new();
        decoder.push(input);
        let mut frames = Vec::new();
        while let Some(item) = decoder.next_item().unwrap() {
            if let Decoded::Event(event) = item {
                frames.push(crate::Event::from(event).encode().as_bytes().to_vec());
            }
        }
        frames
    }

    #[test]
    fn an_event_is_relayed_with_its_own_fields_only() {
        let frames = relayed(b"id: 1\ndata: a\n\ndata: b\nevent: x\n\nid\ndata: c\n\n");
        assert_eq!(frames[0], b"id: 1\ndata: a\n\n");
        // The id carried over is not repeated: the receiver carries it over too.
        assert_eq!(frames[1], b"event: x\ndata: b\n\n");
        // An empty id clears the receiver's id, as it cleared ours.
        assert_eq!(frames[2], b"id: \ndata: c\n\n");
    }
}
