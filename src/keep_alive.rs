//! Keep-alive comments, sent when a stream has been quiet for a while.

use std::borrow::Cow;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::encode::{self, COMMENT};

/// Sends a comment frame after the stream has sent nothing for an interval.
///
/// The interval restarts with every frame sent, so a busy stream sends no keep-alives at
/// all. Proxies and load balancers close connections that stay silent past their idle
/// timeout; choose an interval below the smallest of those (the default is 15 s).
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
    pub(crate) frame: Bytes,
}

impl KeepAlive {
    /// The default: an empty comment (`:`) after 15 seconds of silence.
    pub fn new() -> Self {
        Self {
            interval: Duration::from_secs(15),
            frame: Bytes::from_static(b":\n\n"),
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
    fn zero_interval_is_raised() {
        let keep_alive = KeepAlive::new().interval(Duration::ZERO);
        assert_eq!(keep_alive.interval, Duration::from_millis(1));
    }
}
