//! [`Builder`]: the client's settings and their defaults; [`RetryPolicy`] for statuses
//! worth retrying; the backoff computed from them.

use std::time::Duration;

use http::StatusCode;

use super::{EventSource, HttpService, MakeRequest};
use crate::decode::Decoder;
use crate::jitter;

/// The default [`Builder::reconnection_time`]: 3 s, within the standard's "a few seconds"
/// and what browsers use.
pub const DEFAULT_RECONNECTION_TIME: Duration = Duration::from_secs(3);
/// The default [`Builder::max_backoff`]: 30 s.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The default [`Builder::jitter`]: a wait is up to half as long again.
pub const DEFAULT_JITTER: f64 = 0.5;
/// The default [`Builder::connect_timeout`]: 30 s from the request to the response head.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`Builder::read_timeout`]: 5 min without a byte.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);
/// The default [`Builder::max_redirects`]: 20, fetch's limit.
pub const DEFAULT_MAX_REDIRECTS: u32 = 20;
/// The default [`Builder::error_body_limit`]: 8 KiB of a refused response's body.
pub const DEFAULT_ERROR_BODY_LIMIT: usize = 8 * 1024;
/// The client's default [`Builder::max_line_len`]: 16 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 16 << 20;
/// The client's default [`Builder::max_event_len`]: 32 MiB.
pub const DEFAULT_MAX_EVENT_LEN: usize = 32 << 20;

/// The least the backoff doubles from, whatever the reconnection time: 250 ms.
const BACKOFF_FLOOR: Duration = Duration::from_millis(250);

/// Settings of an [`EventSource`]: reconnection, backoff, timeouts, limits. Cheap to clone;
/// one builder makes any number of streams.
///
/// The defaults follow the browser where it has a rule (reconnect after the reconnection
/// time, follow redirects, stop on `204`, fail on any other status) and add what a service
/// needs: jittered exponential backoff capped at 30 s, a 30 s connect timeout, a 5 min
/// read timeout, and decoder limits of 16 MiB a line and 32 MiB an event (a browser has
/// none; these take the multi-megabyte base64 lines real feeds send, yet bound memory).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::client::{Builder, RetryPolicy};
///
/// let builder = Builder::new()
///     .reconnection_time(Duration::from_secs(1))
///     .max_backoff(Duration::from_secs(60))
///     .retry_policy(RetryPolicy::transient())
///     .max_attempts(10)
///     .read_timeout(Duration::from_secs(45))
///     .last_event_id("42");
/// # let _ = builder;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    pub(crate) config: Config,
    pub(crate) last_event_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) reconnection_time: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) jitter: f64,
    pub(crate) retry_policy: RetryPolicy,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) max_redirects: u32,
    pub(crate) error_body_limit: usize,
    pub(crate) max_line_len: usize,
    pub(crate) max_event_len: usize,
    pub(crate) comments: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// The default settings.
    pub fn new() -> Self {
        Self {
            config: Config {
                reconnection_time: DEFAULT_RECONNECTION_TIME,
                max_backoff: DEFAULT_MAX_BACKOFF,
                jitter: DEFAULT_JITTER,
                retry_policy: RetryPolicy::never(),
                max_attempts: None,
                max_elapsed: None,
                connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
                read_timeout: Some(DEFAULT_READ_TIMEOUT),
                max_redirects: DEFAULT_MAX_REDIRECTS,
                error_body_limit: DEFAULT_ERROR_BODY_LIMIT,
                max_line_len: DEFAULT_MAX_LINE_LEN,
                max_event_len: DEFAULT_MAX_EVENT_LEN,
                comments: false,
            },
            last_event_id: None,
        }
    }

    /// The reconnection time until the server sends a `retry:` field, which replaces it.
    /// The first reconnection after a connection that delivered events waits this long
    /// (plus jitter).
    pub fn reconnection_time(mut self, time: Duration) -> Self {
        self.config.reconnection_time = time;
        self
    }

    /// The cap on the exponential backoff: each failed attempt in a row (no event between
    /// them) doubles the wait, from the reconnection time (at least 250 ms from the second
    /// attempt on, so `retry: 0` cannot cause a loop) up to this (or up to the reconnection
    /// time, if the server asked for longer). An event resets it.
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.config.max_backoff = cap;
        self
    }

    /// How much longer than the backoff a wait may be, as a fraction of it, drawn at random
    /// for each wait (clamped to 0..=1): clients dropped together do not come back
    /// together. A wait is never shorter than the reconnection time the server asked for.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.config.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Which refused statuses to retry rather than fail on ([`RetryPolicy::never`] by
    /// default, as the browser).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config.retry_policy = policy;
        self
    }

    /// Gives up ([`Error::GaveUp`](super::Error::GaveUp)) instead of making more than
    /// `attempts` reconnection attempts in a row without an event; `0` never reconnects.
    /// No cap by default, as the browser.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = Some(attempts);
        self
    }

    /// Gives up ([`Error::GaveUp`](super::Error::GaveUp)) instead of waiting for an
    /// attempt that would start more than `time` after the first failure since the last
    /// event. No cap by default.
    pub fn max_elapsed(mut self, time: Duration) -> Self {
        self.config.max_elapsed = Some(time);
        self
    }

    /// How long an attempt may take from the request to the response head (each redirect
    /// hop has its own); then it counts as failed and the client reconnects.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = Some(timeout);
        self
    }

    /// No connect timeout: the service's own, if any, applies.
    pub fn no_connect_timeout(mut self) -> Self {
        self.config.connect_timeout = None;
        self
    }

    /// How long an open stream may go without a byte (keep-alive comments count) before
    /// the client drops it and reconnects. Set it a little above the server's keep-alive
    /// interval to notice a dead connection soon.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.read_timeout = Some(timeout);
        self
    }

    /// No read timeout: a silent connection is kept for as long as it stays open.
    pub fn no_read_timeout(mut self) -> Self {
        self.config.read_timeout = None;
        self
    }

    /// How many redirects (301, 302, 303, 307, 308) one attempt follows; more is
    /// [`RedirectError::TooMany`](super::RedirectError::TooMany). `0` follows none.
    pub fn max_redirects(mut self, redirects: u32) -> Self {
        self.config.max_redirects = redirects;
        self
    }

    /// How much of a refused response's body the error keeps.
    pub fn error_body_limit(mut self, bytes: usize) -> Self {
        self.config.error_body_limit = bytes;
        self
    }

    /// The longest line accepted ([`Decoder::max_line_len`]; 16 MiB by default, where the
    /// decoder alone takes 1 MiB).
    pub fn max_line_len(mut self, bytes: usize) -> Self {
        self.config.max_line_len = bytes;
        self
    }

    /// The most data one event may hold ([`Decoder::max_event_len`]; 32 MiB by default).
    pub fn max_event_len(mut self, bytes: usize) -> Self {
        self.config.max_event_len = bytes;
        self
    }

    /// Whether to yield comment lines as [`Item::Comment`](super::Item::Comment) (off by
    /// default: servers send them as keep-alives).
    pub fn comments(mut self, yield_comments: bool) -> Self {
        self.config.comments = yield_comments;
        self
    }

    /// The last event id to start from, as if an earlier connection had read it: the first
    /// request carries it as `Last-Event-ID`.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = Some(id.into());
        self
    }

    /// A stream of events from `service`, each attempt's request made by `request` (a
    /// `Request<B>` with a `Clone` body, or a closure: [`MakeRequest`]).
    pub fn build<S, R, B>(&self, service: S, request: R) -> EventSource<S, R, B>
    where
        S: HttpService<B>,
        R: MakeRequest<B>,
    {
        let mut decoder = Decoder::new()
            .max_line_len(self.config.max_line_len)
            .max_event_len(self.config.max_event_len)
            .comments(self.config.comments);
        if let Some(id) = &self.last_event_id {
            decoder = decoder.initial_last_event_id(id);
        }
        EventSource::from_parts(service, request, self.config.clone(), decoder)
    }
}

impl Config {
    /// The wait before attempt `attempt` (counted from 1 since the last event), never
    /// shorter than the reconnection time: that doubled per failure in a row, capped, then
    /// lengthened by up to `jitter` of itself. From the second attempt on, the doubling
    /// starts from at least [`BACKOFF_FLOOR`], so a `retry: 0` from a server that then
    /// drops every connection cannot make the client loop.
    pub(crate) fn backoff(&self, reconnection_time: Duration, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = if attempt > 1 {
            reconnection_time.max(BACKOFF_FLOOR)
        } else {
            reconnection_time
        };
        let cap = self.max_backoff.max(reconnection_time);
        let wait = base
            .checked_mul(1 << doublings)
            .map_or(cap, |wait| wait.min(cap));
        if self.jitter <= 0.0 {
            return wait;
        }
        // `jittered` shortens a duration by up to a fraction of it: shorten the longest
        // wait, `wait * (1 + jitter)`, by up to `jitter / (1 + jitter)`, which lands in
        // `wait..=wait * (1 + jitter)`.
        let longest =
            Duration::try_from_secs_f64(wait.as_secs_f64() * (1.0 + self.jitter)).unwrap_or(wait);
        jitter::jittered(longest, self.jitter / (1.0 + self.jitter)).max(wait)
    }
}

/// Which refused statuses the client retries (with its backoff, or after `Retry-After`
/// when the server sends a longer one) instead of failing.
///
/// The browser retries none: any status but `200`, `204` and redirects fails the
/// connection. An API behind a load balancer answers `503` during a deploy and `429` when
/// rate limited; [`transient`](Self::transient) retries those.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use tower_sse::client::RetryPolicy;
///
/// let policy = RetryPolicy::transient().max_retry_after(Duration::from_secs(120));
/// assert!(policy.retries(StatusCode::SERVICE_UNAVAILABLE));
/// assert!(policy.retries(StatusCode::TOO_MANY_REQUESTS));
/// assert!(!policy.retries(StatusCode::NOT_IMPLEMENTED));
/// assert!(!policy.retries(StatusCode::UNAUTHORIZED));
/// assert!(!RetryPolicy::never().retries(StatusCode::SERVICE_UNAVAILABLE));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    transient: bool,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::never()
    }
}

impl RetryPolicy {
    /// Retries no status, as the browser (the default).
    pub fn never() -> Self {
        Self {
            transient: false,
            max_retry_after: Duration::from_secs(600),
        }
    }

    /// Retries `408`, `429` and every `5xx` but `501 Not Implemented` and `505 HTTP
    /// Version Not Supported`, which another attempt would get again.
    pub fn transient() -> Self {
        Self {
            transient: true,
            ..Self::never()
        }
    }

    /// The longest `Retry-After` honoured (10 min by default); a longer one waits this.
    pub fn max_retry_after(mut self, longest: Duration) -> Self {
        self.max_retry_after = longest;
        self
    }

    /// Whether a response with `status` is retried.
    pub fn retries(&self, status: StatusCode) -> bool {
        self.transient
            && (status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error()
                    && status != StatusCode::NOT_IMPLEMENTED
                    && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
    }

    pub(crate) fn retry_after(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.max_retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_upwards() {
        let config = Builder::new()
            .max_backoff(Duration::from_secs(10))
            .jitter(0.0)
            .config;
        let second = Duration::from_secs(1);
        let waits: Vec<_> = (1..=6)
            .map(|n| config.backoff(second, n).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        // The server's own long `retry:` is honoured over the cap.
        assert_eq!(
            config.backoff(Duration::from_secs(60), 3),
            Duration::from_secs(60)
        );
        // `retry: 0` reconnects at once after a stream that worked, but not in a loop.
        let zero = Duration::ZERO;
        let waits: Vec<_> = (1..=4)
            .map(|n| config.backoff(zero, n).as_millis())
            .collect();
        assert_eq!(waits, [0, 500, 1000, 2000]);
        // No overflow on absurd values.
        assert_eq!(config.backoff(second, u32::MAX), Duration::from_secs(10));
        assert_eq!(config.backoff(Duration::MAX, 40), Duration::MAX);

        let jittered = Builder::new()
            .max_backoff(Duration::from_secs(10))
            .jitter(0.5)
            .config;
        let samples: Vec<_> = (0..200).map(|_| jittered.backoff(second, 2)).collect();
        assert!(samples
            .iter()
            .all(|wait| (Duration::from_secs(2)..=Duration::from_secs(3)).contains(wait)));
        assert!(samples.iter().any(|wait| *wait != samples[0]), "no spread");
        assert!((0..200).all(|_| jittered.backoff(second, 9) <= Duration::from_secs(15)));
    }

    #[test]
    fn jitter_is_clamped() {
        assert_eq!(Builder::new().jitter(f64::NAN).config.jitter, 0.0);
        assert_eq!(Builder::new().jitter(7.0).config.jitter, 1.0);
        assert_eq!(Builder::new().jitter(-1.0).config.jitter, 0.0);
    }

    #[test]
    fn retry_after_is_capped() {
        let policy = RetryPolicy::transient().max_retry_after(Duration::from_secs(5));
        assert_eq!(
            policy.retry_after(Duration::from_secs(60)),
            Duration::from_secs(5)
        );
        assert!(policy.retries(StatusCode::REQUEST_TIMEOUT));
        assert!(policy.retries(StatusCode::BAD_GATEWAY));
        assert!(!policy.retries(StatusCode::HTTP_VERSION_NOT_SUPPORTED));
        assert!(!policy.retries(StatusCode::NOT_FOUND));
    }
}
