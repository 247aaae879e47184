//! What the layer serves: a [`SseStream`] of [`SseItem`]s, and the [`Fallible`] wrapper.

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

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

/// A response body the layer can serve: a [`Stream`] whose items are [`SseItem`]s.
///
/// Implemented for every such stream; nothing needs to implement it by hand. It exists so
/// that serving something else, such as `Router::layer(SseLayer::new())` in axum, whose
/// routes answer `axum::body::Body`, is reported as what it is, with the way out (with the
/// `axum` feature, on Rust 1.85 and later).
///
/// ```
/// use futures_util::stream;
/// use tower_sse::{Event, SseStream};
///
/// fn served<S: SseStream>(_: S) {}
/// served(stream::iter([Event::new().data("hello")]));
/// ```
#[cfg_attr(
    feature = "axum",
    diagnostic::on_unimplemented(
        message = "`{Self}` is not a stream of events, so `SseLayer` cannot serve it",
        label = "the inner service answers `Response<{Self}>`",
        note = "`SseLayer` wraps services answering `Response<impl Stream<Item = impl SseItem>>`",
        note = "in axum, return `tower_sse::axum::SseResponse::new(stream)` from the handler \
                instead of `Router::layer(SseLayer::new())`"
    )
)]
pub trait SseStream: Stream<Item = <Self as SseStream>::Event> {
    /// The stream's item, [`Stream::Item`] by another name.
    type Event: SseItem;
}

// Not recommended in diagnostics: a type that is no `Stream` is reported as "not a stream of
// events" with the notes above, rather than as a missing `Stream` impl.
#[cfg_attr(feature = "axum", diagnostic::do_not_recommend)]
impl<S> SseStream for S
where
    S: Stream,
    S::Item: SseItem,
{
    type Event = S::Item;
}

pub(crate) mod sealed {
    use super::*;

    #[allow(unreachable_pub)] // Sealed: nameable only inside the crate.
    pub trait Sealed {
        /// Appends this item's frame to `buf`, or leaves `buf` untouched and fails.
        fn encode_into(self, buf: &mut BytesMut) -> Result<(), BoxError>;

        /// This item's frame as it is, when it is one already: a lone ready event then
        /// goes out without a copy. Otherwise the item back, to encode.
        fn into_frame(self) -> Result<Bytes, Self>
        where
            Self: Sized,
        {
            Err(self)
        }
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

    fn into_frame(self) -> Result<Bytes, Self> {
        Ok(self.into_bytes())
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

    fn into_frame(self) -> Result<Bytes, Self> {
        match self.0 {
            Ok(item) => item.into_frame().map_err(|item| Self(Ok(item))),
            Err(error) => Err(Self(Err(error))),
        }
    }
}
