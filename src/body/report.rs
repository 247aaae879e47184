//! What one stream did, logged once when its body is dropped, and [`EndReason`], why it
//! ended.

use tokio::time::Instant;
use tracing::Span;

/// Why an SSE body ended; reported through `tracing` when the body is dropped.
///
/// Private until something public hands it out (stream metrics will).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
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
    /// A short stable name, as written in logs.
    pub(crate) fn as_str(self) -> &'static str {
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

/// What one stream did; logged once, in the stream's span, when the body is dropped.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) span: Span,
    pub(super) reason: Option<EndReason>,
    pub(super) started_at: Option<Instant>,
    pub(super) events: u64,
    pub(super) bytes: u64,
    pub(super) keep_alives: u64,
}

impl Report {
    pub(super) fn new(span: Span) -> Self {
        Self {
            span,
            reason: None,
            started_at: None,
            events: 0,
            bytes: 0,
            keep_alives: 0,
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        let reason = self.reason.unwrap_or(EndReason::ClientGone);
        let duration = self.started_at.map(|at| at.elapsed()).unwrap_or_default();
        let _in_span = self.span.enter();
        tracing::debug!(
            reason = reason.as_str(),
            events = self.events,
            bytes = self.bytes,
            keep_alives = self.keep_alives,
            duration_ms = duration.as_millis() as u64,
            "sse stream ended"
        );
    }
}
