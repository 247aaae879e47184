//! What a stream may yield: [`SseItem`] and the [`Fallible`] wrapper.

use bytes::BytesMut;

use crate::error::BoxError;
use crate::event::{EncodedEvent, Event};

/// A stream item the SSE body knows how to frame.
///
/// Implemented for:
///
/// - [`Event`], framed from its fields;
/// - [`EncodedEvent`], sent as is, without encoding again;
/// - any `T: serde::Serialize` (feature `json`, on by default): one event whose `data` is
///   the value's JSON;
/// - [`Fallible`]`<Result<T, E>>` for any of the above, for streams that can fail.
///
/// The trait is sealed: convert other types into an [`Event`] first.
pub trait SseItem: sealed::Sealed {}

impl<T: sealed::Sealed> SseItem for T {}

pub(crate) mod sealed {
    use super::*;

    #[allow(unreachable_pub)] // Sealed: nameable only inside the crate.
    pub trait Sealed {
        /// Appends this item's frame to `buf`, or leaves `buf` untouched and fails.
        fn encode_into(self, buf: &mut BytesMut) -> Result<(), BoxError>;
    }
}

impl sealed::Sealed for Event {
    fn encode_into(self, buf: &mut BytesMut) -> Result<(), BoxError> {
        Event::encode_into(&self, buf);
        Ok(())
    }
}

impl sealed::Sealed for EncodedEvent {
    fn encode_into(self, buf: &mut BytesMut) -> Result<(), BoxError> {
        buf.extend_from_slice(self.as_bytes());
        Ok(())
    }
}

#[cfg(feature = "json")]
impl<T: serde::Serialize> sealed::Sealed for T {
    fn encode_into(self, buf: &mut BytesMut) -> Result<(), BoxError> {
        crate::encode::put_json_data(buf, &self)?;
        crate::encode::end_event(buf);
        Ok(())
    }
}

/// Marks a `Result` item as "an item or an error", rather than a value to serialize.
///
/// serde implements `Serialize` for `Result`, so a stream of `Result`s would otherwise be
/// sent as JSON objects like `{"Ok": ...}`. Wrap each item instead, typically with
/// `.map(Fallible)`; an `Err` then goes through the layer's
/// [`OnItemError`](crate::OnItemError) policy.
///
/// # Example
///
/// ```
/// use futures_util::{stream, StreamExt};
/// use tower_sse::Fallible;
///
/// let results = stream::iter([Ok(1), Err(std::io::Error::other("source failed"))]);
/// let items = results.map(Fallible);
/// # let _ = items;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallible<R>(pub R);

impl<T, E> sealed::Sealed for Fallible<Result<T, E>>
where
    T: sealed::Sealed,
    E: Into<BoxError>,
{
    fn encode_into(self, buf: &mut BytesMut) -> Result<(), BoxError> {
        self.0.map_err(Into::into)?.encode_into(buf)
    }
}
