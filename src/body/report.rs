//! What one stream did, logged once when its body is dropped (and recorded as metrics with
//! the `metrics` feature).

use tokio::time::Instant;
use tracing::Span;

use crate::end_reason::EndReason;

#[cfg(feature = "metrics")]
use crate::config::LayerConfig;
#[cfg(feature = "metrics")]
use crate::metrics::StreamMetrics;

/// What one stream did; logged once, in the stream's span, when the body is dropped.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) span: Span,
    pub(super) reason: Option<EndReason>,
    pub(super) started_at: Option<Instant>,
    pub(super) events: u64,
    pub(super) bytes: u64,
    pub(super) keep_alives: u64,
    /// What this stream recorded so far; only for streams, not for bodies that are not.
    #[cfg(feature = "metrics")]
    metrics: Option<StreamMetrics>,
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
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }

    /// Counts this body as an opened stream, under `config`'s route.
    #[cfg(feature = "metrics")]
    pub(super) fn opened(&mut self, config: &LayerConfig) {
        self.metrics = Some(StreamMetrics::open(&config.metrics));
    }

    /// Counts a data frame of `bytes` sent, and the events encoded into it.
    pub(super) fn frame_sent(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &mut self.metrics {
            let started_at = self.started_at;
            metrics.frame(bytes, self.events, || {
                started_at.map(|at| at.elapsed()).unwrap_or_default()
            });
        }
    }

    /// Counts a keep-alive comment about to be sent.
    pub(super) fn keep_alive_sent(&mut self) {
        self.keep_alives += 1;
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.keep_alive();
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        let reason = self.reason.unwrap_or(EndReason::ClientGone);
        let lifetime = self.started_at.map(|at| at.elapsed());
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &mut self.metrics {
            metrics.close(reason, self.events, lifetime);
        }
        let duration = lifetime.unwrap_or_default();
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
