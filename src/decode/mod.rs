//! Reading Server-Sent Events: a spec-exact `text/event-stream` decoder (feature `decode`).
//!
//! The other side of the wire: services consume SSE too, relaying a language model's token
//! stream to a browser or following another service's feed. This module reads a stream
//! exactly as the browser's `EventSource` does (WHATWG HTML, "Interpreting an event
//! stream"), in bounded memory:
//!
//! - [`Decoder`]: the sans-I/O core. Push bytes in chunks cut anywhere, pull [`Decoded`] items.
//! - [`DecodeBody`] and [`DecodeStream`]: the decoder over an [`http_body::Body`] (a hyper
//!   client's response) or over a `Stream` of byte chunks, as a `Stream` of items.
//! - [`collect`] and [`Collector`]: a whole response body as events and how it ended, for
//!   testing a handler without a server.
//!
//! # What comes out
//!
//! A blank line dispatches a [`MessageEvent`] (type, data, last event id) as
//! [`Decoded::Event`]. A valid `retry` field is reported at once as [`Decoded::Retry`], as the
//! browser applies it at once, and the last one is kept by [`Decoder::retry`]. Comments are
//! skipped unless [`Decoder::comments`] asks for [`Decoded::Comment`]s. The last event id is
//! on every event and on [`Decoder::last_event_id`], which also follows blocks that set an
//! id without dispatching.
//!
//! At the end of the stream an unfinished event is discarded, as the standard says;
//! [`Decoder::finish`] reports how many bytes that was, and [`CollectEnd::MidEvent`] says so.
//!
//! # Limits
//!
//! A line longer than [`Decoder::max_line_len`] (1 MiB by default) or event data longer
//! than [`Decoder::max_event_len`] (4 MiB) is a [`DecodeError`], so a peer that never
//! sends a line break cannot grow the buffer without bound. Errors end the stream.
//!
//! # Example
//!
//! ```
//! use futures_util::{stream, StreamExt};
//! use tower_sse::decode::{DecodeStream, Decoder, Decoded};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower_sse::decode::DecodeError> {
//! // A BOM, CRLF line ends cut between chunks, a comment, a `retry`.
//! let chunks: [&[u8]; 3] = [b"\xEF\xBB\xBF: hi\r\nretry: 500\r", b"\nid: 1\r\ndata: a\r\n\r", b"\n"];
//! let source = stream::iter(chunks).map(Ok::<_, std::io::Error>);
//! let mut items = DecodeStream::with_decoder(source, Decoder::new().max_line_len(4096));
//!
//! assert_eq!(items.next().await.transpose()?, Some(Decoded::Retry(std::time::Duration::from_millis(500))));
//! let Some(Decoded::Event(event)) = items.next().await.transpose()? else { panic!() };
//! assert_eq!((event.event_type(), event.data(), event.last_event_id()), ("message", "a", "1"));
//! assert!(items.next().await.is_none());
//! # Ok(())
//! # }
//! ```

mod collect;
mod error;
mod event;
mod parser;
mod stream;

pub use collect::{collect, CollectEnd, Collected, Collector};
pub use error::DecodeError;
pub use event::{Decoded, MessageEvent};
pub use parser::{Decoder, DEFAULT_MAX_EVENT_LEN, DEFAULT_MAX_LINE_LEN};
pub use stream::{DecodeBody, DecodeStream};
