//! What an [`EventSource`](super::EventSource) yields: events, and the connection's state
//! changes around them.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, StatusCode};

use crate::decode::MessageEvent;
use crate::error::BoxError;

/// One thing an [`EventSource`](super::EventSource) yields.
///
/// The browser's `EventSource` fires `open`, `message` and `error` events and has a
/// `readyState`; this is the same, with the cause and the delay of each reconnection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Item {
    /// A connection was opened (`200` with `text/event-stream`): the browser's `open`.
    Open(Opened),
    /// An event arrived: the browser's `message` (or named) event.
    Event(MessageEvent),
    /// A comment line, without its colon and one space after it. Only yielded when
    /// [`Builder::comments`](super::Builder::comments) is on.
    Comment(String),
    /// The connection was lost (or never made) and the client waits before the next
    /// attempt: the browser's `error` event with `readyState` `CONNECTING`.
    Reconnecting(Reconnecting),
    /// The stream is over without an error; the next poll ends it.
    Closed(Closed),
}

impl Item {
    /// The event, if this item is one.
    pub fn into_event(self) -> Option<MessageEvent> {
        match self {
            Self::Event(event) => Some(event),
            _ => None,
        }
    }
}

/// An opened connection: the response head's status and headers (a session id an MCP
/// server sends, a rate limit), after any redirects.
#[derive(Debug, Clone)]
pub struct Opened {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) redirects: u32,
}

impl Opened {
    /// The status: `200 OK`.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// How many redirects were followed to get here.
    pub fn redirects(&self) -> u32 {
        self.redirects
    }
}

/// A reconnection about to happen: which attempt, after how long, and why.
#[derive(Debug)]
pub struct Reconnecting {
    pub(crate) attempt: u32,
    pub(crate) delay: Duration,
    pub(crate) cause: Cause,
}

impl Reconnecting {
    /// The attempt about to be made, counted from 1 since the last event arrived (an
    /// event resets the backoff).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long the client waits before it.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Why the connection was lost or not made.
    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// Takes the cause.
    pub fn into_cause(self) -> Cause {
        self.cause
    }
}

/// Why the client reconnects (or, in [`Error::GaveUp`](super::Error::GaveUp), why its last
/// attempt failed).
#[derive(Debug)]
#[non_exhaustive]
pub enum Cause {
    /// The response body ended, as servers end streams (a time limit, a deploy).
    Ended,
    /// The response body failed (a reset connection).
    Body(BoxError),
    /// The service failed to produce a response (a refused connection, a DNS failure).
    Service(BoxError),
    /// No response head within [`Builder::connect_timeout`](super::Builder::connect_timeout).
    ConnectTimeout,
    /// No byte within [`Builder::read_timeout`](super::Builder::read_timeout).
    ReadTimeout,
    /// A status the [`RetryPolicy`](super::RetryPolicy) retries (`503`, `429`), with
    /// its `Retry-After` if it had a valid one.
    Status {
        /// The status.
        status: StatusCode,
        /// The `Retry-After` header's delay.
        retry_after: Option<Duration>,
    },
    /// [`Handle::reconnect`](super::Handle::reconnect) asked for it.
    Requested,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ended => f.write_str("event stream ended"),
            Self::Body(_) => f.write_str("event stream body failed"),
            Self::Service(_) => f.write_str("event stream request failed"),
            Self::ConnectTimeout => f.write_str("event stream response timed out"),
            Self::ReadTimeout => f.write_str("event stream read timed out"),
            Self::Status { status, .. } => write!(f, "event stream request answered {status}"),
            Self::Requested => f.write_str("event stream reconnection requested"),
        }
    }
}

impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Body(error) | Self::Service(error) => Some(&**error),
            _ => None,
        }
    }
}

/// Why a stream closed without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Closed {
    /// The server answered `204 No Content`: the standard's way to stop a client for good.
    NoContent,
    /// [`Handle::close`](super::Handle::close) was called.
    Requested,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_read_well() {
        let cause = Cause::Body(std::io::Error::other("reset").into());
        assert_eq!(cause.to_string(), "event stream body failed");
        assert_eq!(cause.source().unwrap().to_string(), "reset");
        let status = Cause::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: None,
        };
        assert_eq!(
            status.to_string(),
            "event stream request answered 503 Service Unavailable"
        );
        assert!(Cause::ReadTimeout.source().is_none());
    }
}
