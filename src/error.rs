//! Error types, and the policy for items that fail.

use std::error::Error as StdError;
use std::fmt;

/// A type-erased error, as used across the Tower ecosystem.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// An [`Event`](crate::Event) field that cannot be framed, or data that failed to serialize.
#[derive(Debug)]
pub struct EventError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    IdLineBreak,
    IdNul,
    EventLineBreak,
    IdNotIncreasing(IdNotIncreasing),
    #[cfg(feature = "json")]
    Json(serde_json::Error),
}

impl EventError {
    pub(crate) fn id_line_break() -> Self {
        Self {
            kind: Kind::IdLineBreak,
        }
    }

    pub(crate) fn id_nul() -> Self {
        Self { kind: Kind::IdNul }
    }

    pub(crate) fn event_line_break() -> Self {
        Self {
            kind: Kind::EventLineBreak,
        }
    }

    pub(crate) fn id_not_increasing(err: IdNotIncreasing) -> Self {
        Self {
            kind: Kind::IdNotIncreasing(err),
        }
    }

    #[cfg(feature = "json")]
    pub(crate) fn json(err: serde_json::Error) -> Self {
        Self {
            kind: Kind::Json(err),
        }
    }

    /// Whether the data failed to serialize (rather than a field being unframeable).
    pub fn is_serialization(&self) -> bool {
        match self.kind {
            #[cfg(feature = "json")]
            Kind::Json(_) => true,
            _ => false,
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::IdLineBreak => "event id contains a line break",
            Kind::IdNul => "event id contains a NUL character",
            Kind::EventLineBreak => "event type contains a line break",
            Kind::IdNotIncreasing(_) => "event id is not above the log's last id",
            #[cfg(feature = "json")]
            Kind::Json(_) => "event data failed to serialize as JSON",
        })
    }
}

impl StdError for EventError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            #[cfg(feature = "json")]
            Kind::Json(err) => Some(err),
            Kind::IdNotIncreasing(err) => Some(err),
            _ => None,
        }
    }
}

/// A caller's numeric id that is not above the last numeric id of the log it was
/// published to, so nothing was published.
///
/// Returned by [`EventLog::publish_with_u64_id`](crate::replay::EventLog::publish_with_u64_id)
/// (and, as the [`source`](StdError::source) of an [`EventError`], by
/// [`publish_with_id`](crate::replay::EventLog::publish_with_id) with a decimal id). A log
/// resolves a numeric `Last-Event-ID` by its order, so its numbers must increase.
///
/// # Example
///
/// ```
/// use tower_sse::{replay::EventLog, Event};
///
/// let log = EventLog::new();
/// log.publish_with_u64_id(7, Event::new().data("a"))?;
/// let error = log.publish_with_u64_id(7, Event::new().data("again")).unwrap_err();
/// assert_eq!((error.id(), error.last()), (7, 7));
/// assert_eq!(error.to_string(), "event id 7 is not above the log's last id 7");
/// # Ok::<(), tower_sse::replay::IdNotIncreasing>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdNotIncreasing {
    id: u64,
    last: u64,
}

impl IdNotIncreasing {
    pub(crate) fn new(id: u64, last: u64) -> Self {
        Self { id, last }
    }

    /// The id that was refused.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The log's last numeric id when it was refused (0 for a log that had none).
    pub fn last(&self) -> u64 {
        self.last
    }
}

impl fmt::Display for IdNotIncreasing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event id {} is not above the log's last id {}",
            self.id, self.last
        )
    }
}

impl StdError for IdNotIncreasing {}

/// What the body does with an item that fails: an `Err` from a [`Fallible`](crate::Fallible)
/// stream, or a value that fails to serialize.
///
/// Either way the error is logged with `tracing` at `error` level and no partial frame is
/// ever written: the response stays well-formed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnItemError {
    /// End the stream cleanly after the events already sent (the default).
    ///
    /// The browser then reconnects after its retry delay, sending `Last-Event-ID`, so a
    /// source that can resume loses nothing.
    #[default]
    End,
    /// Drop the failed item and go on with the next one.
    Skip,
}
