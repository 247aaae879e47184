//! [`EncodedEvent`]: an event framed once, then sent as the same bytes to every client.

use std::fmt;

use bytes::Bytes;
#[cfg(feature = "json")]
use bytes::BytesMut;

#[cfg(feature = "json")]
use crate::encode;
#[cfg(feature = "json")]
use crate::error::EventError;

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
    #[inline]
    pub(crate) fn from_frame(frame: Bytes) -> Self {
        Self(frame)
    }
}

impl fmt::Debug for EncodedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncodedEvent")
            .field(&String::from_utf8_lossy(&self.0))
            .finish()
    }
}
