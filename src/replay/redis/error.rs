//! [`ConnectError`], [`PublishError`] and [`SubscribeError`].

use std::error::Error as StdError;
use std::fmt;

use crate::error::EventError;
use crate::replay::RegistryFull;

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
    /// A new key of a [`RedisLogRegistry`](super::RedisLogRegistry) found no room.
    Full(RegistryFull),
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

    pub(super) fn full(source: RegistryFull) -> Self {
        Self {
            kind: Kind::Full(source),
        }
    }

    /// Whether a [`RedisLogRegistry`](super::RedisLogRegistry) had no room for the event's
    /// new key ([`RegistryFull`] is the cause): nothing was sent to Redis.
    pub fn is_full(&self) -> bool {
        matches!(self.kind, Kind::Full(_))
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
            Kind::Full(_) => "no room for the event's key",
        })
    }
}

impl StdError for PublishError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            Kind::Redis(source) => Some(source),
            Kind::Event(source) => Some(source),
            Kind::Full(source) => Some(source),
        }
    }
}

/// [`RedisLogRegistry::subscribe`](super::RedisLogRegistry::subscribe) made no
/// subscription: the key is new and the registry has no room for it, or its stream could
/// not be read from Redis in time (Redis is unreachable). An HTTP handler answers
/// `503 Service Unavailable`, as
/// [`RedisLogRegistry::response`](super::RedisLogRegistry::response) does.
#[derive(Debug)]
pub struct SubscribeError {
    full: Option<RegistryFull>,
}

impl SubscribeError {
    pub(super) fn full(source: RegistryFull) -> Self {
        Self { full: Some(source) }
    }

    pub(super) fn not_loaded() -> Self {
        Self { full: None }
    }

    /// Whether the registry had no room for the key ([`RegistryFull`] is the cause), rather
    /// than Redis being unreachable.
    pub fn is_full(&self) -> bool {
        self.full.is_some()
    }
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.full {
            Some(_) => "no room for the key",
            None => "could not read the key's redis stream in time",
        })
    }
}

impl StdError for SubscribeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.full.as_ref().map(|full| full as _)
    }
}
