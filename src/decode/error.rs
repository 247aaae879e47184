//! The decoder's error type.

use std::error::Error as StdError;
use std::fmt;

use crate::error::BoxError;

/// Why decoding stopped: a limit was exceeded, or the body or stream being read failed.
///
/// A decoder or stream that returned an error is finished: it yields nothing more, because
/// where the next event would start is no longer known.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line was longer than [`Decoder::max_line_len`](super::Decoder::max_line_len)
    /// bytes, line break excluded.
    LineTooLong {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The data of one event grew past
    /// [`Decoder::max_event_len`](super::Decoder::max_event_len) bytes.
    EventTooLong {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The body or stream being decoded failed; the cause is its [`source`](StdError::source).
    Body(BoxError),
}

impl DecodeError {
    pub(crate) fn body(error: impl Into<BoxError>) -> Self {
        Self::Body(error.into())
    }

    /// Whether a size limit was exceeded (rather than the input failing).
    pub fn is_limit(&self) -> bool {
        matches!(self, Self::LineTooLong { .. } | Self::EventTooLong { .. })
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong { limit } => write!(f, "event stream line longer than {limit} bytes"),
            Self::EventTooLong { limit } => write!(f, "event data longer than {limit} bytes"),
            Self::Body(_) => f.write_str("event stream body failed"),
        }
    }
}

impl StdError for DecodeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Body(error) => Some(&**error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_sources() {
        let line = DecodeError::LineTooLong { limit: 8 };
        assert_eq!(line.to_string(), "event stream line longer than 8 bytes");
        assert!(line.is_limit() && line.source().is_none());
        let event = DecodeError::EventTooLong { limit: 9 };
        assert_eq!(event.to_string(), "event data longer than 9 bytes");
        assert!(event.is_limit());

        let body = DecodeError::body(std::io::Error::other("reset"));
        assert_eq!(body.to_string(), "event stream body failed");
        assert!(!body.is_limit());
        let source = body.source().unwrap();
        assert_eq!(source.to_string(), "reset");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }
}
