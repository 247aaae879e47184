//! Compression of the event stream (feature `compression`): [`Compression`], the negotiation
//! of `Accept-Encoding`, and the encoder each body runs its frames through.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | [`Compression`], `AcceptEncoding`, `negotiate`, the body's `Encoder` |
//! | `gzip.rs` | one stream's gzip member: header, frames, trailer, the lazy compressor |
//! | `deflate.rs` | the DEFLATE encoder: bounded window, fixed or own codes per block, a sync flush per frame |
//!
//! Without the feature, `AcceptEncoding` and `Encoder` are empty types whose methods pass
//! frames through, so the service, future and body read the same either way.

/// What a frame carries, which decides how it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// Events: compressed against the events before them.
    Events,
    /// The opening comment, a keep-alive, a hint or a farewell: sent stored, and the
    /// stream's compressor is dropped, so a quiet stream holds none.
    Quiet,
}

#[cfg(feature = "compression")]
mod deflate;
#[cfg(feature = "compression")]
mod gzip;

#[cfg(all(test, feature = "compression"))]
mod tests;

#[cfg(not(feature = "compression"))]
pub(crate) use disabled::{headers_set, negotiate, AcceptEncoding, Encoder};
#[cfg(feature = "compression")]
pub use enabled::Compression;
#[cfg(feature = "compression")]
pub(crate) use enabled::{headers_set, negotiate, AcceptEncoding, Encoder};

#[cfg(feature = "compression")]
mod enabled {
    use bytes::Bytes;
    use http::header::{self, HeaderMap, HeaderValue};

    use super::gzip::GzipStream;
    use super::FrameKind;
    use crate::config::LayerConfig;

    /// How [`SseLayer::compression`](crate::SseLayer::compression) and
    /// [`SseOptions::compression`](crate::SseOptions::compression) compress a stream:
    /// gzip, each frame flushed as it is sent.
    ///
    /// A client that accepts gzip (`Accept-Encoding`, `q=0` refusing) gets
    /// `Content-Encoding: gzip`; every frame, events and keep-alives alike, is compressed
    /// and flushed whole, so `EventSource` sees each event as soon as it would
    /// uncompressed. Events compress against the events before them, within a window of
    /// `1 << window_bits` bytes; JSON events that repeat their keys shrink several times.
    ///
    /// Memory is the price, and it is bounded here: a stream holds a window and a hash table
    /// (`1 << window_bits` bytes of window, kept up to twice that between frames, and
    /// `4 << hash_bits` bytes of table) only while it sends events. The compressor is made
    /// on the first event and dropped at the next keep-alive, so a stream that only sends
    /// keep-alives holds none; its keep-alives go out uncompressed inside the gzip stream.
    /// docs/deployment.md has the measured trade-offs.
    ///
    /// Responses that are not `200 OK`, or already have a `Content-Encoding`, are left
    /// alone. Every response the setting applies to gets `Vary: Accept-Encoding`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use futures_util::stream;
    /// use http::{Request, Response};
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_sse::{Compression, SseLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let service = ServiceBuilder::new()
    ///     .layer(SseLayer::new().compression(Compression::gzip().window_bits(13)))
    ///     .service_fn(|_req: Request<()>| async {
    ///         Ok::<_, Infallible>(Response::new(stream::iter(["a", "b"])))
    ///     });
    ///
    /// let request = Request::get("/").header("accept-encoding", "gzip, br").body(()).unwrap();
    /// let response = service.oneshot(request).await.unwrap();
    /// assert_eq!(response.headers()["content-encoding"], "gzip");
    /// assert_eq!(response.headers()["vary"], "accept-encoding");
    /// # }
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[must_use]
    pub struct Compression {
        pub(super) window_bits: u8,
        pub(super) hash_bits: u8,
    }

    impl Compression {
        /// gzip with an 8 KiB window and a 4096-entry hash table: about 32 KiB per stream
        /// while it sends events, no window while it is idle.
        pub fn gzip() -> Self {
            Self {
                window_bits: 13,
                hash_bits: 12,
            }
        }

        /// Sets the window to `1 << bits` bytes, from 9 (512 bytes) to 15 (32 KiB, the most
        /// DEFLATE can refer back); values outside are clamped. A larger window finds more
        /// of the past events to point at, and costs its size in memory, twice over between
        /// frames.
        pub fn window_bits(mut self, bits: u8) -> Self {
            self.window_bits = bits.clamp(9, 15);
            self
        }

        /// Sets the hash table to `1 << bits` entries of 4 bytes, from 8 to 16; values
        /// outside are clamped. A larger table finds more matches in a large window.
        pub fn hash_bits(mut self, bits: u8) -> Self {
            self.hash_bits = bits.clamp(8, 16);
            self
        }
    }

    impl Default for Compression {
        fn default() -> Self {
            Self::gzip()
        }
    }

    /// The codings a request accepts, read once by the service.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub(crate) struct AcceptEncoding {
        gzip: bool,
    }

    impl AcceptEncoding {
        /// Accepts no coding but identity, as for a request the layer did not read.
        pub(crate) fn identity() -> Self {
            Self::default()
        }

        /// Reads every `Accept-Encoding` header: gzip is accepted when `gzip` or `x-gzip`
        /// has a non-zero q-value, or, when neither is listed, `*` has one.
        pub(crate) fn read(headers: &HeaderMap) -> Self {
            let mut gzip = None;
            let mut any = None;
            for value in headers.get_all(header::ACCEPT_ENCODING) {
                let Ok(value) = value.to_str() else { continue };
                for item in value.split(',') {
                    let mut parts = item.split(';');
                    let coding = parts.next().unwrap_or("").trim();
                    let accepted = parts.all(|param| !is_zero_q(param));
                    if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")
                    {
                        // A coding listed twice: refused if either says q=0.
                        gzip = Some(gzip.unwrap_or(true) && accepted);
                    } else if coding == "*" {
                        any = Some(any.unwrap_or(true) && accepted);
                    }
                }
            }
            Self {
                gzip: gzip.or(any).unwrap_or(false),
            }
        }

        /// Accepts gzip, as a test would have a request say.
        #[cfg(test)]
        pub(crate) fn gzip() -> Self {
            Self { gzip: true }
        }
    }

    /// Whether a parameter is `q=0` (also `q=0.0`, `Q = 0.000`).
    fn is_zero_q(param: &str) -> bool {
        let Some((name, value)) = param.split_once('=') else {
            return false;
        };
        if !name.trim().eq_ignore_ascii_case("q") {
            return false;
        }
        let value = value.trim();
        let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
        whole == "0" && fraction.len() <= 3 && fraction.bytes().all(|b| b == b'0')
    }

    /// How many headers [`negotiate`] may set: `Vary` and `Content-Encoding`, when on.
    pub(crate) fn headers_set(config: &LayerConfig) -> usize {
        if config.compression.is_some() {
            2
        } else {
            0
        }
    }

    /// Decides the coding of one `200 OK` response and sets its headers: the encoder its
    /// body runs frames through.
    pub(crate) fn negotiate(
        config: &LayerConfig,
        accept: AcceptEncoding,
        headers: &mut HeaderMap,
    ) -> Encoder {
        let Some(settings) = config.compression else {
            return Encoder::identity();
        };
        add_vary(headers);
        // The inner service chose a coding itself (or a layer below did): leave it.
        if headers.contains_key(header::CONTENT_ENCODING) || !accept.gzip {
            return Encoder::identity();
        }
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        Encoder(Some(Box::new(GzipStream::new(settings))))
    }

    /// Adds `accept-encoding` to `Vary`, unless it is there already (or `*` is).
    fn add_vary(headers: &mut HeaderMap) {
        let listed = headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|name| {
                let name = name.trim();
                name == "*" || name.eq_ignore_ascii_case("accept-encoding")
            });
        if !listed {
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
    }

    /// The body's encoder: none, or one stream's gzip member (boxed, so a body without
    /// compression grows by one pointer).
    #[derive(Debug, Default)]
    pub(crate) struct Encoder(Option<Box<GzipStream>>);

    impl Encoder {
        /// Frames go out as they are.
        pub(crate) fn identity() -> Self {
            Self::default()
        }

        /// What goes on the wire for `frame`.
        pub(crate) fn frame(&mut self, frame: Bytes, kind: FrameKind) -> Bytes {
            match &mut self.0 {
                Some(gzip) => gzip.frame(&frame, kind),
                None => frame,
            }
        }

        /// The last frame after the body's own end, if the coding has one to send.
        pub(crate) fn finish(&mut self) -> Option<Bytes> {
            self.0.as_mut()?.finish()
        }

        /// Whether [`finish`](Self::finish) still has a frame to give.
        pub(crate) fn is_pending(&self) -> bool {
            self.0.as_ref().is_some_and(|gzip| gzip.is_pending())
        }
    }
}

#[cfg(not(feature = "compression"))]
mod disabled {
    use bytes::Bytes;
    use http::HeaderMap;

    use super::FrameKind;
    use crate::config::LayerConfig;

    #[derive(Debug, Clone, Copy)]
    pub(crate) struct AcceptEncoding;

    impl AcceptEncoding {
        #[inline]
        pub(crate) fn identity() -> Self {
            Self
        }

        #[inline]
        pub(crate) fn read(_headers: &HeaderMap) -> Self {
            Self
        }
    }

    #[inline]
    pub(crate) fn headers_set(_config: &LayerConfig) -> usize {
        0
    }

    #[inline]
    pub(crate) fn negotiate(
        _config: &LayerConfig,
        _accept: AcceptEncoding,
        _headers: &mut HeaderMap,
    ) -> Encoder {
        Encoder
    }

    #[derive(Debug)]
    pub(crate) struct Encoder;

    impl Encoder {
        #[inline]
        pub(crate) fn identity() -> Self {
            Self
        }

        #[inline]
        pub(crate) fn frame(&mut self, frame: Bytes, _kind: FrameKind) -> Bytes {
            frame
        }

        #[inline]
        pub(crate) fn finish(&mut self) -> Option<Bytes> {
            None
        }

        #[inline]
        pub(crate) fn is_pending(&self) -> bool {
            false
        }
    }
}
