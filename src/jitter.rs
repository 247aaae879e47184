//! Random spread for time limits, keep-alives and reconnect hints, so that clients that
//! connected together do not all wake, or reconnect, together.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// `duration` shortened by a random part of `jitter` (a fraction of it, clamped to 1): a
/// stream's lifetime, the first keep-alive of a silence, a reconnect hint. A fresh draw on
/// every call.
pub(crate) fn jittered(duration: Duration, jitter: f64) -> Duration {
    if jitter.is_nan() || jitter <= 0.0 {
        return duration;
    }
    // std's hasher keys are random per process and step per instance: enough spread for
    // reconnects, without a random-number dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    let factor = 1.0 - jitter.min(1.0) * fraction;
    // Checked: a huge `duration` must not overflow on the way through f64.
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
        .map_or(duration, |jittered| jittered.min(duration))
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
