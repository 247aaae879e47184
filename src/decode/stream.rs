//! Adapters from a byte source to a [`Stream`] of [`Decoded`] items: [`DecodeStream`] for
//! a `Stream` of byte chunks, [`DecodeBody`] for an [`http_body::Body`].

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use futures_core::Stream;
use http_body::Body;
use pin_project_lite::pin_project;

use super::error::DecodeError;
use super::event::Decoded;
use super::parser::Decoder;
use crate::error::BoxError;

pin_project! {
    /// A [`Stream`] of [`Decoded`] items decoded from a `Stream<Item = Result<B, E>>` of byte
    /// chunks (`B: AsRef<[u8]>`, such as `Bytes`).
    ///
    /// An error from the source ends the stream with [`DecodeError::Body`], its cause
    /// behind [`source`](std::error::Error::source). When the source ends, an unfinished
    /// event is discarded, as the standard says, and the stream ends.
    ///
    /// # Example
    ///
    /// ```
    /// use bytes::Bytes;
    /// use futures_util::{stream, StreamExt, TryStreamExt};
    /// use tower_sse::decode::{DecodeStream, Decoded};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_sse::decode::DecodeError> {
    /// let chunks = stream::iter(["id: 1\ndata: {\"tok", "en\":\"Hi\"}\n\n"])
    ///     .map(|chunk| Ok::<_, std::io::Error>(Bytes::from(chunk)));
    /// let events: Vec<_> = DecodeStream::new(chunks)
    ///     .try_filter_map(|item| async move { Ok(item.into_event()) })
    ///     .try_collect()
    ///     .await?;
    /// assert_eq!(events[0].data(), r#"{"token":"Hi"}"#);
    /// assert_eq!(events[0].last_event_id(), "1");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct DecodeStream<S> {
        #[pin]
        inner: S,
        decoder: Decoder,
        done: bool,
    }
}

impl<S> DecodeStream<S> {
    /// Decodes `inner` with a default [`Decoder`].
    pub fn new(inner: S) -> Self {
        Self::with_decoder(inner, Decoder::new())
    }

    /// Decodes `inner` with `decoder`: its limits, and its state (a decoder that read an
    /// earlier connection's stream carries the last event id over).
    pub fn with_decoder(inner: S, decoder: Decoder) -> Self {
        Self {
            inner,
            decoder,
            done: false,
        }
    }

    /// The decoder, for its [`last_event_id`](Decoder::last_event_id) and
    /// [`retry`](Decoder::retry).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The source and the decoder. Once the stream has ended (or failed), the decoder has
    /// been [`finish`](Decoder::finish)ed, ready for the next connection; before that, call
    /// `finish` before reading another stream with it.
    pub fn into_parts(self) -> (S, Decoder) {
        (self.inner, self.decoder)
    }
}

impl<S, B, E> Stream for DecodeStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Into<BoxError>,
{
    type Item = Result<Decoded, DecodeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let mut inner = this.inner;
        poll_decoded(this.done, this.decoder, |decoder| {
            let chunk = ready!(inner.as_mut().poll_next(cx));
            Poll::Ready(chunk.map(|chunk| chunk.map(|chunk| decoder.push(chunk.as_ref()))))
        })
    }
}

impl<S> fmt::Debug for DecodeStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeStream")
            .field("decoder", &self.decoder)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// A [`Stream`] of [`Decoded`] items decoded from an [`http_body::Body`], such as a hyper
    /// client's response body. Trailers are ignored.
    ///
    /// A body error ends the stream with [`DecodeError::Body`], its cause behind
    /// [`source`](std::error::Error::source). When the body ends, an unfinished event is
    /// discarded, as the standard says, and the stream ends.
    ///
    /// # Example
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use http_body_util::Full;
    /// use tower_sse::decode::{DecodeBody, Decoded};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_sse::decode::DecodeError> {
    /// let body = Full::new(bytes::Bytes::from_static(b"event: token\ndata: Hi\n\n"));
    /// let mut items = DecodeBody::new(body);
    /// let Some(Decoded::Event(event)) = items.next().await.transpose()? else { panic!() };
    /// assert_eq!((event.event_type(), event.data()), ("token", "Hi"));
    /// assert!(items.next().await.is_none());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct DecodeBody<B> {
        #[pin]
        body: B,
        decoder: Decoder,
        done: bool,
    }
}

impl<B> DecodeBody<B> {
    /// Decodes `body` with a default [`Decoder`].
    pub fn new(body: B) -> Self {
        Self::with_decoder(body, Decoder::new())
    }

    /// Decodes `body` with `decoder`: its limits, and its state (a decoder that read an
    /// earlier connection's stream carries the last event id over).
    pub fn with_decoder(body: B, decoder: Decoder) -> Self {
        Self {
            body,
            decoder,
            done: false,
        }
    }

    /// The decoder, for its [`last_event_id`](Decoder::last_event_id) and
    /// [`retry`](Decoder::retry).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The body and the decoder. Once the stream has ended (or failed), the decoder has
    /// been [`finish`](Decoder::finish)ed, ready for the next connection; before that, call
    /// `finish` before reading another stream with it.
    pub fn into_parts(self) -> (B, Decoder) {
        (self.body, self.decoder)
    }
}

impl<B> Stream for DecodeBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Item = Result<Decoded, DecodeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let mut body = this.body;
        poll_decoded(this.done, this.decoder, |decoder| {
            let frame = ready!(body.as_mut().poll_frame(cx));
            Poll::Ready(frame.map(|frame| {
                frame.map(|frame| {
                    // Trailers carry no events.
                    if let Ok(data) = frame.into_data() {
                        push_buf(decoder, data);
                    }
                })
            }))
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, if self.done { Some(0) } else { None })
    }
}

impl<B> fmt::Debug for DecodeBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeBody")
            .field("decoder", &self.decoder)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Pushes every chunk of `data`: a `Buf` may hold several (`Bytes` holds one).
pub(crate) fn push_buf(decoder: &mut Decoder, mut data: impl Buf) {
    while data.has_remaining() {
        let chunk = data.chunk();
        let len = chunk.len();
        decoder.push(chunk);
        data.advance(len);
    }
}

/// The loop both adapters share: the next decoded item, else more input from `poll_source`
/// (which pushes what it read into the decoder), until the source ends or fails.
///
/// The stream is terminal after the end or an error, and the decoder then is finished,
/// ready for the next connection.
fn poll_decoded<E: Into<BoxError>>(
    done: &mut bool,
    decoder: &mut Decoder,
    mut poll_source: impl FnMut(&mut Decoder) -> Poll<Option<Result<(), E>>>,
) -> Poll<Option<Result<Decoded, DecodeError>>> {
    loop {
        if *done {
            return Poll::Ready(None);
        }
        let error = match decoder.next_item() {
            Ok(Some(item)) => return Poll::Ready(Some(Ok(item))),
            Ok(None) => match ready!(poll_source(decoder)) {
                Some(Ok(())) => continue,
                Some(Err(error)) => DecodeError::body(error),
                None => {
                    *done = true;
                    decoder.finish();
                    return Poll::Ready(None);
                }
            },
            Err(error) => error,
        };
        *done = true;
        decoder.finish();
        return Poll::Ready(Some(Err(error)));
    }
}
