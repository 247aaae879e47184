//! [`ConnectError`] and [`PublishError`].

use std::error::Error as StdError;
use std::fmt;

use crate::error::EventError;

/// [`RedisLogBuilder::connect`](crate::replay::redis::RedisLogBuilder::connect) failed: the URL is not a
/// Redis URL, Redis could not be reached, or reading the stream failed (for example the key
/// holds something other than a stream, or the server is older than Redis 7.0).
#[derive(Debug)]
pub struct ConnectError {
    source: redis::RedisError,
}

impl ConnectError {
    pub(super) fn new(source: redis::RedisError) -> Self {
        Self { source }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("could not connect the replay log to its redis stream")
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// [`RedisLog::publish`](crate::replay::redis::RedisLog::publish) did not publish the event.
///
/// Usually Redis was unreachable and the event was not appended: publish it again later,
/// or tell whoever sent it. When the connection broke while the command was on its way,
/// Redis may have appended it all the same, and publishing it again sends it twice.
#[derive(Debug)]
pub struct PublishError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Redis(redis::RedisError),
    /// Only made with the `json` feature; kept without it so the type stays the same.
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    Event(EventError),
}

impl PublishError {
    pub(super) fn redis(source: redis::RedisError) -> Self {
        Self {
            kind: Kind::Redis(source),
        }
    }

    #[cfg(feature = "json")]
    pub(super) fn event(source: EventError) -> Self {
        Self {
            kind: Kind::Event(source),
        }
    }

    /// Whether the event itself was at fault (its data failed to serialize), rather than
    /// Redis: publishing it again fails again.
    pub fn is_event(&self) -> bool {
        matches!(self.kind, Kind::Event(_))
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Redis(_) => "could not append the event to the redis stream",
            Kind::Event(_) => "could not frame the event",
        })
    }
}

impl StdError for PublishError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            Kind::Redis(source) => Some(source),
            Kind::Event(source) => Some(source),
        }
    }
}
