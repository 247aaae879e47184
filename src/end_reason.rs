//! [`EndReason`]: why a stream ended, as the body's log line and the stream metrics name it.
//!
//! A leaf, below the body and `metrics.rs`, which both name the reasons.

use std::fmt;

/// Why an SSE stream ended, as written in the stream's `tracing` log line and in the
/// `sse.end_reason` label of the stream metrics (feature `metrics`).
///
/// # Example
///
/// ```
/// use tower_sse::EndReason;
///
/// assert_eq!(EndReason::IdleTimeout.as_str(), "idle_timeout");
/// assert_eq!(EndReason::ClientGone.to_string(), "client_gone");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The source stream ended.
    SourceEnded,
    /// The stream reached its `max_duration`.
    MaxDuration,
    /// The source produced no item for `idle_timeout`.
    IdleTimeout,
    /// An item failed and the [`OnItemError`](crate::OnItemError) policy ended the stream.
    ItemError,
    /// The server's [`Shutdown`](crate::Shutdown) was triggered.
    Shutdown,
    /// The response was not `200 OK`, so no stream was sent.
    NotStreamed,
    /// The body was dropped before it ended: the client went away, or the server stopped.
    ClientGone,
}

impl EndReason {
    /// A short stable name, as written in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SourceEnded => "source_ended",
            Self::MaxDuration => "max_duration",
            Self::IdleTimeout => "idle_timeout",
            Self::ItemError => "item_error",
            Self::Shutdown => "shutdown",
            Self::NotStreamed => "not_streamed",
            Self::ClientGone => "client_gone",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
