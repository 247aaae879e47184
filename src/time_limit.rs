//! Time limits on a stream, and the reason a stream ended.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Why an SSE body ended; reported through `tracing` when the body is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// A short stable name, as written in logs.
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

/// The lifetime of one stream: `max_duration` shortened by a random part of `jitter`, so
/// that clients that connected together do not all reconnect together.
pub(crate) fn jittered(max_duration: Duration, jitter: f64) -> Duration {
    if jitter.is_nan() || jitter <= 0.0 {
        return max_duration;
    }
    // std's hasher keys are random per process and step per instance: enough spread for
    // reconnects, without a random-number dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    let factor = 1.0 - jitter.min(1.0) * fraction;
    // Checked: a huge `max_duration` must not overflow on the way through f64.
    Duration::try_from_secs_f64(max_duration.as_secs_f64() * factor)
        .map_or(max_duration, |lifetime| lifetime.min(max_duration))
}

/// The shortest duration [`jittered`] can return: `duration * (1 - jitter)`.
pub(crate) fn shortest(duration: Duration, jitter: f64) -> Duration {
    if jitter.is_nan() || jitter <= 0.0 {
        return duration;
    }
    Duration::try_from_secs_f64(duration.as_secs_f64() * (1.0 - jitter.min(1.0)))
        .map_or(duration, |shortest| shortest.min(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_shortens_within_bounds() {
        let max = Duration::from_secs(100);
        assert_eq!(jittered(max, 0.0), max);
        let samples: Vec<_> = (0..100).map(|_| jittered(max, 0.2)).collect();
        assert!(samples
            .iter()
            .all(|d| *d <= max && *d >= Duration::from_secs(80)));
        assert!(samples.iter().any(|d| *d != samples[0]), "no spread");
        // Out-of-range fractions are clamped, never a panic.
        assert!(jittered(max, 5.0) <= max);
        assert_eq!(jittered(max, f64::NAN), max);
        assert!(jittered(Duration::MAX, 0.5) <= Duration::MAX);
    }

    #[test]
    fn shortest_is_the_lower_bound() {
        let max = Duration::from_secs(100);
        assert_eq!(shortest(max, 0.2), Duration::from_secs(80));
        assert_eq!(shortest(max, 0.0), max);
        assert_eq!(shortest(max, 2.0), Duration::ZERO);
        assert_eq!(shortest(max, f64::NAN), max);
        assert!(shortest(Duration::MAX, 0.5) <= Duration::MAX);
        assert!((0..100).all(|_| jittered(max, 0.3) >= shortest(max, 0.3)));
    }
}
