//! Keep-alive comments, sent when a stream has been quiet for a while.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::encode::{self, COMMENT};

/// Enough spread that 10,000 streams opened in the same millisecond wake over 3 s of a
/// 15 s interval, while the keep-alive stays at least 80 % of the interval apart.
const DEFAULT_JITTER: f64 = 0.2;

/// Sends a comment frame after the stream has sent nothing for an interval.
///
/// The interval restarts with every frame sent, so a busy stream sends no keep-alives at
/// all. Proxies and load balancers close connections that stay silent past their idle
/// timeout; choose an interval below the smallest of those (the default is 15 s).
///
/// The first keep-alive of each silence comes at a point between `(1 - jitter) * interval`
/// and `interval` (jitter 0.2 by default, so 12 to 15 s), and the following ones of that
/// silence one interval apart. Streams opened together, or woken together by one broadcast
/// event, then do not all wake and write at the same instant, and a keep-alive never comes
/// later than the interval after the last frame. The points lie on a grid shared by all
/// streams, at most 32 per window and at least 125 ms apart, taken by the streams in turn
/// (or by connection, see [`ConnectionKey`]): the streams due at one point wake together,
/// so ten thousand idle streams wake the server a few dozen times per round rather than
/// thousands.
/// A stream that sends a frame at least every `(1 - jitter) * interval` sends none; set
/// [`jitter(0.0)`](Self::jitter) for keep-alives exactly on the interval.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::{KeepAlive, SseLayer};
///
/// let layer = SseLayer::new().keep_alive(
///     KeepAlive::new().interval(Duration::from_secs(30)).text("ping"),
/// );
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct KeepAlive {
    pub(crate) interval: Duration,
    pub(crate) jitter: f64,
    pub(crate) frame: Bytes,
}

impl KeepAlive {
    /// The default: an empty comment (`:`) after 15 seconds of silence, jitter 0.2.
    pub fn new() -> Self {
        Self {
            interval: Duration::from_secs(15),
            jitter: DEFAULT_JITTER,
            frame: encode::EMPTY_COMMENT,
        }
    }

    /// Sets how long the stream may stay silent before a keep-alive is sent.
    ///
    /// An interval below one millisecond is raised to one millisecond, so a zero interval
    /// cannot spin.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets how much earlier than the interval the first keep-alive of a silence may come,
    /// as a fraction of the interval (0 to 1; default 0.2); 0 sends it exactly on the
    /// interval.
    ///
    /// Values outside 0 to 1 are clamped, and NaN counts as 0.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Sets the comment text; a line break in it starts another comment line.
    pub fn text(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        let mut buf = BytesMut::new();
        encode::put_lines(&mut buf, COMMENT, text.into().as_bytes());
        encode::end_event(&mut buf);
        self.frame = buf.freeze();
        self
    }
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self::new()
    }
}

/// Which connection a request came on, put in each request's extensions by the server:
/// [`SseLayer`](crate::SseLayer) then gives all streams of one connection the same point of
/// the keep-alive's window, so over HTTP/2 they wake together and share one write, while
/// connections still spread over the window.
///
/// Without it each stream takes the next point in turn, which is as good over HTTP/1.1 (one
/// stream per connection). Handlers that return an [`SseResponse`](crate::axum::SseResponse)
/// through axum, outside the layer, take points in turn too.
///
/// # Example
///
/// A key per accepted connection, given to every request of that connection:
///
/// ```
/// use http::Request;
/// use tower::ServiceExt;
/// use tower_sse::ConnectionKey;
///
/// # fn serve_connection<S>(_: S) {}
/// # let app = tower::service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(()) });
/// // For each accepted connection:
/// let key = ConnectionKey::next();
/// let service = app.clone().map_request(move |mut req: Request<()>| {
///     req.extensions_mut().insert(key);
///     req
/// });
/// serve_connection(service);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionKey(u32);

impl ConnectionKey {
    /// A key for a newly accepted connection. Keys are handed out in turn, so connections
    /// accepted one after another take neighbouring points of the window: they spread over
    /// it evenly.
    pub fn next() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The grid point its streams take, modulo the points per window.
    pub(crate) fn slot(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_encoded_once_as_comment_lines() {
        let keep_alive = KeepAlive::new().text("a\r\nb");
        assert_eq!(keep_alive.frame, &b": a\n: b\n\n"[..]);
        assert_eq!(KeepAlive::new().frame, &b":\n\n"[..]);
    }

    #[test]
    fn jitter_is_clamped() {
        assert_eq!(KeepAlive::new().jitter, 0.2);
        assert_eq!(KeepAlive::new().jitter(-1.0).jitter, 0.0);
        assert_eq!(KeepAlive::new().jitter(7.0).jitter, 1.0);
        assert_eq!(KeepAlive::new().jitter(f64::NAN).jitter, 0.0);
    }

    #[test]
    fn zero_interval_is_raised() {
        let keep_alive = KeepAlive::new().interval(Duration::ZERO);
        assert_eq!(keep_alive.interval, Duration::from_millis(1));
    }
}
