//! What a subscription does when it cannot go on from where it is: [`OnLag`],
//! [`OnUnknownId`], and the gap event that tells the client it missed events.

use crate::event::{EncodedEvent, Event};

use super::id::WireId;

/// What a subscription does when it falls behind the retention window: events it had not
/// read yet were evicted before it read them.
///
/// # Example
///
/// ```
/// use futures_util::StreamExt;
/// use tower_sse::{replay::{EventLog, OnLag}, Event};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = EventLog::builder().max_events(2).on_lag(OnLag::SkipAhead).build();
/// let mut slow = log.subscribe(None);
/// let [a, b, _] = ["a", "b", "c"].map(|text| log.publish(Event::new().data(text)));
/// // `a` went before `slow` read it: it hears of the gap, then goes on from `b`.
/// let gap = slow.next().await.unwrap();
/// assert_eq!(
///     gap.into_bytes(),
///     format!("id: {a}\nevent: reset\ndata: {{\"reason\":\"lagged\",\"resume_from\":2}}\n\n"),
/// );
/// assert_eq!(slow.next().await.unwrap().into_bytes(), format!("id: {b}\ndata: b\n\n"));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnLag {
    /// End the stream (the default).
    ///
    /// The browser reconnects with the last id it received, which the log no longer
    /// holds, so [`OnUnknownId`] decides what happens next: by default the client hears of
    /// the gap and resumes from the oldest retained event.
    #[default]
    Disconnect,
    /// Send the gap event at the point where events were lost, then go on from the oldest
    /// retained event, on the same connection.
    SkipAhead,
}

/// What [`EventLog::subscribe`](crate::replay::EventLog::subscribe) does with a
/// `Last-Event-ID` it cannot resume from.
///
/// An id is **too old** when the log gave it but the events after it have left the
/// window. It is **unknown** when the log never gave it or has forgotten it:
///
/// - a number below the log's first numeric id: from before this log was made (an earlier
///   process, or a log of the same name dropped and made again) or from another log;
/// - a number above the log's newest numeric id: from another log, or from the future;
/// - a number within that range that names none of the retained events (nor the newest
///   evicted one): the log never gave it;
/// - text that names none of them (text ids are forgotten once evicted), or a number
///   spelled otherwise than in canonical decimal (`"07"`).
///
/// Both get the gap event, then what this policy says. See
/// [`EventLog`'s ids](crate::replay::EventLog#ids) for why an id from before a restart can
/// never be taken for one of a new log's.
///
/// The gap event is an event of type `reset` (see
/// [`EventLogBuilder::gap_event`](crate::replay::EventLogBuilder::gap_event)) whose data is JSON such
/// as `{"reason":"cursor_too_old","resume_from":5}`. The reason is `cursor_too_old` for an
/// id that is too old, `unknown_id` for an unknown one, `lagged` under
/// [`OnLag::SkipAhead`], and `source_lagged` for events a fed source lost (see
/// [`EventLog::feed`](crate::replay::EventLog::feed); its data also says how many were `missed`).
/// `resume_from` is the place in the log of the next event sent, counting from 1 for the
/// first event the log held; it is not an id. The gap event's own id is that of the event
/// just before (`0`, the start of the log, when nothing was evicted), so the browser's last
/// id moves on and a reconnect right after it loses nothing more.
///
/// # Example
///
/// ```
/// use futures_util::StreamExt;
/// use tower_sse::{replay::{EventLog, OnUnknownId}, Event, LastEventId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = EventLog::builder().max_events(2).build();
/// let [a, b, _] = ["a", "b", "c"].map(|text| log.publish(Event::new().data(text)));
/// // The default, ResetFromOldest: the gap, then every retained event.
/// let mut events = log.subscribe(Some(&LastEventId::new("restarted-server-id")));
/// assert_eq!(
///     events.next().await.unwrap().into_bytes(),
///     format!("id: {a}\nevent: reset\ndata: {{\"reason\":\"unknown_id\",\"resume_from\":2}}\n\n"),
/// );
/// assert_eq!(events.next().await.unwrap().into_bytes(), format!("id: {b}\ndata: b\n\n"));
///
/// // An id from before a restart is below this log's first id: unknown as well.
/// let mut events = log.subscribe(Some(&LastEventId::new("3")));
/// assert!(events.next().await.unwrap().as_bytes().ends_with(b"\"unknown_id\",\"resume_from\":2}\n\n"));
///
/// let strict = EventLog::builder().on_unknown_id(OnUnknownId::NoContent).build();
/// let response = strict.response(Some(&LastEventId::new("41")));
/// assert_eq!(response.status(), 204);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnUnknownId {
    /// Send the gap event, then every retained event from the oldest on (the default):
    /// the client loses only what the log no longer has.
    #[default]
    ResetFromOldest,
    /// Send the gap event, then only events published from now on.
    ResetFromLive,
    /// Send nothing: the subscription ends at once and
    /// [`Subscription::is_rejected`](crate::replay::Subscription::is_rejected) is true.
    ///
    /// Answer such a request with `204 No Content`, which tells `EventSource` to stop
    /// reconnecting; [`EventLog::response`](crate::replay::EventLog::response) does that.
    NoContent,
}

/// Why a gap event was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GapReason {
    /// The client's id was assigned by the log but has been evicted.
    CursorTooOld,
    /// The log never assigned the client's id, or has forgotten it.
    UnknownId,
    /// The subscription fell behind the window while reading.
    Lagged,
    /// The log's source lost events before they reached the log.
    SourceLagged,
}

impl GapReason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::CursorTooOld => "cursor_too_old",
            Self::UnknownId => "unknown_id",
            Self::Lagged => "lagged",
            Self::SourceLagged => "source_lagged",
        }
    }
}

/// A gap event ready to send.
#[derive(Debug)]
pub(super) struct Gap {
    pub(super) frame: EncodedEvent,
    pub(super) reason: GapReason,
    pub(super) resume_from: u64,
}

impl Gap {
    /// Frames the gap event from `template` (an event carrying only the configured type).
    ///
    /// Rare, so it is built with `format!` rather than straight into a buffer.
    pub(super) fn new(template: &Event, id: WireId, reason: GapReason, resume_from: u64) -> Self {
        let event = template.clone();
        let event = match id {
            WireId::Number(number) => event.id_u64(number),
            // Checked when it was published, so this cannot fail; if it did, an event
            // without an id leaves the browser's last id as it was, which is still safe.
            WireId::Text(id) => event.clone().id(String::from(&*id)).unwrap_or(event),
        };
        // Written by hand so the frame is the same with or without the `json` feature.
        let data = format!(
            "{{\"reason\":\"{}\",\"resume_from\":{resume_from}}}",
            reason.as_str()
        );
        Self {
            frame: event.data(data).encode(),
            reason,
            resume_from,
        }
    }

    /// Frames the gap event a log publishes, with id `id` at sequence number `seq`, when
    /// its source lost `missed` events: every subscriber reads it in order, like any other
    /// event.
    pub(super) fn source_lagged(template: &Event, id: u64, seq: u64, missed: u64) -> Self {
        let reason = GapReason::SourceLagged;
        let resume_from = seq.saturating_add(1);
        let data = format!(
            "{{\"reason\":\"{}\",\"missed\":{missed},\"resume_from\":{resume_from}}}",
            reason.as_str()
        );
        Self {
            frame: template.clone().id_u64(id).data(data).encode(),
            reason,
            resume_from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_the_gap_with_the_previous_id() {
        let template = Event::new().event("reset").unwrap();
        let gap = Gap::new(&template, WireId::Number(4), GapReason::CursorTooOld, 5);
        assert_eq!(
            gap.frame.as_bytes(),
            "id: 4\nevent: reset\ndata: {\"reason\":\"cursor_too_old\",\"resume_from\":5}\n\n"
        );
        let gap = Gap::new(&template, WireId::Text("17-0".into()), GapReason::Lagged, 9);
        assert_eq!(
            gap.frame.as_bytes(),
            "id: 17-0\nevent: reset\ndata: {\"reason\":\"lagged\",\"resume_from\":9}\n\n"
        );
    }
}
