//! [`EventLog`] and its builder: publishing, retention, subscribing.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use http::{Response, StatusCode};
use tokio::sync::oneshot;

use crate::error::{EventError, IdNotIncreasing};
use crate::event::{EncodedEvent, Event};
use crate::last_event_id::LastEventId;

use super::id::WireId;
use super::policy::{Gap, GapReason, OnLag, OnUnknownId};
use super::stats::{Counters, ReplayStats};
use super::store::{Limits, Resolved};
use super::subscription::Subscription;
use super::window::{Numbered, Resume, Window, WindowConfig};

const DEFAULT_MAX_EVENTS: usize = 1024;
const DEFAULT_MAX_BYTES: usize = 1024 * 1024;
const DEFAULT_GAP_EVENT: &str = "reset";

/// A bounded log of recent events that many clients stream from, and resume from after a
/// reconnect without losing or repeating an event.
///
/// Each published event gets the log's next id (see [Ids](#ids)), is framed once, and is
/// kept until the retention window evicts it. A [`Subscription`] is a stream of those
/// frames from a cursor: first the retained events after the client's `Last-Event-ID`,
/// then new ones as they are published, through the same read path.
///
/// `EventLog` is a cheap handle: clones share the same log. See [`EventLogBuilder`] for the
/// retention window, [`OnLag`] for slow subscribers and [`OnUnknownId`] for ids it cannot
/// resume from.
///
/// # Example
///
/// ```
/// use futures_util::StreamExt;
/// use tower_sse::{replay::EventLog, Event, LastEventId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = EventLog::new();
/// let a = log.publish(Event::new().data("a"));
/// let b = log.publish(Event::new().data("b"));
/// let c = log.publish(Event::new().data("c"));
///
/// // A client that saw `a` reconnects: it gets `b` and `c`, then whatever comes next.
/// let events = log.subscribe(Some(&LastEventId::new(a.to_string())));
/// let frames: Vec<_> = events.take(2).map(|frame| frame.into_bytes()).collect().await;
/// assert_eq!(frames, [format!("id: {b}\ndata: b\n\n"), format!("id: {c}\ndata: c\n\n")]);
/// # }
/// ```
///
/// # Serving it
///
/// [`SseLayer`](crate::SseLayer) reads the client's `Last-Event-ID`; the handler subscribes
/// with it. The frames go out as they were framed at publish time.
///
/// ```
/// use std::convert::Infallible;
/// use http::Request;
/// use http_body_util::BodyExt;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_sse::{replay::EventLog, Event, LastEventId, SseLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = EventLog::new();
/// let events = ServiceBuilder::new().layer(SseLayer::new()).service_fn({
///     let log = log.clone();
///     move |req: Request<()>| {
///         let response = log.response(req.extensions().get::<LastEventId>());
///         async move { Ok::<_, Infallible>(response) }
///     }
/// });
///
/// let [a, b, c] = ["a", "b", "c"].map(|text| log.publish(Event::new().data(text)));
/// let request = Request::get("/events").header("last-event-id", a).body(()).unwrap();
/// let body = events.oneshot(request).await.unwrap().into_body();
/// let mut body = std::pin::pin!(body);
/// let opening = body.frame().await.unwrap().unwrap().into_data().unwrap();
/// assert_eq!(opening, ":\n\n");
/// // Events that are ready together go out in one frame.
/// let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
/// assert_eq!(frame, format!("id: {b}\ndata: b\n\nid: {c}\ndata: c\n\n"));
/// # }
/// ```
///
/// # Sources
///
/// Publish from anywhere that holds a handle. A source with its own numeric sequence (a
/// database, an offset) publishes under it with
/// [`publish_with_u64_id`](Self::publish_with_u64_id); a source that is a `Stream` (an
/// mpsc, a broadcast receiver, a change feed) drives the log with [`feed`](Self::feed),
/// which also turns a lagging source's losses into a gap event.
///
/// # Ids
///
/// The log numbers its events itself, unless the caller gives ids
/// ([`publish_with_u64_id`](Self::publish_with_u64_id),
/// [`publish_with_id`](Self::publish_with_id)). Its numbers start from the clock: the
/// first is the Unix time in milliseconds times 1024 (about 16 digits), and each next one
/// is above every id any log of this process has numbered so far. So ids of two logs never
/// meet, and a log made again (after a restart, or dropped and built anew) starts above
/// the ids of the one before it: those are unknown to it, and a client that sends one gets
/// the gap event ([`OnUnknownId`]), never a resume from the wrong place. This holds across
/// restarts as long as the clock does not go back and the earlier process gave fewer than
/// 1024 ids per millisecond on average (a million events a second).
///
/// A numeric `Last-Event-ID` resolves against the log's own range of numeric ids: below
/// its first or above its newest it is unknown; within the range it must be one the log
/// gave (too old once evicted); `0` is the start of the log.
///
/// A log whose first numeric id is the caller's counts on from the caller's numbers
/// instead, and whether clients' ids stay valid across a restart is then the caller's
/// to ensure, as with a database sequence that outlives the process.
///
/// # Storage
///
/// Events live in this process's memory, behind one lock held only to append, evict or
/// copy out one frame handle, and are gone when the process ends. For several server
/// nodes sharing one log, `RedisLog` (feature `redis`) fills the same kind of window from
/// a Redis stream.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

/// What the handles share; subscriptions hold only the window, so that a feed can tell
/// when the last handle is gone.
struct Inner {
    window: Arc<Window>,
    /// One sender per feed, dropped with the last handle: that is how a feed hears of it.
    feeds: Mutex<Vec<oneshot::Sender<()>>>,
}

/// A handle that does not keep the log alive; see [`EventLog::downgrade`].
#[derive(Clone)]
pub(super) struct WeakLog(Weak<Inner>);

impl WeakLog {
    pub(super) fn upgrade(&self) -> Option<EventLog> {
        self.0.upgrade().map(|inner| EventLog { inner })
    }
}

impl EventLog {
    /// A log with the default retention window: the last 1024 events and 1 MiB of frames,
    /// of any age.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a log.
    pub fn builder() -> EventLogBuilder {
        EventLogBuilder::default()
    }

    fn window(&self) -> &Window {
        &self.inner.window
    }

    /// Appends `event` with the log's next id, replacing any id it had, and wakes waiting
    /// subscriptions. Returns the id.
    ///
    /// The event is framed once here; subscriptions send that frame as is. See
    /// [Ids](Self#ids) for the numbers it gets.
    pub fn publish(&self, event: Event) -> u64 {
        self.publish_auto(|numbered| event.id_u64(numbered.id).encode())
    }

    fn publish_auto(&self, frame: impl FnOnce(Numbered) -> EncodedEvent) -> u64 {
        self.window().append(frame).id
    }

    /// Publishes `value`'s JSON as an event's data, serializing it once. Returns the id.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialize; nothing is published then.
    #[cfg(feature = "json")]
    pub fn publish_json<T>(&self, value: &T) -> Result<u64, EventError>
    where
        T: serde::Serialize + ?Sized,
    {
        Ok(self.publish(Event::new().json_data(value)?))
    }

    /// Appends `event` under the caller's `id`, replacing any id it had.
    ///
    /// Clients resume from such an id like from any other. This is how events that already
    /// carry ids from elsewhere (a database, a change feed) are fed in, in their order.
    /// An `id` in canonical decimal (such as `"42"`, not `"042"`) is the number, as by
    /// [`publish_with_u64_id`](Self::publish_with_u64_id), and must be above the log's last
    /// numeric id. Any other text is looked up as it is: when a text id is used twice,
    /// resuming from it resumes after the later event. Ids that name the same event after
    /// a restart are the caller's to keep (see [Ids](Self#ids)).
    ///
    /// # Errors
    ///
    /// When `id` holds a line break or NUL (see [`Event::id`]), or is a number not above
    /// the log's last numeric id (its [`source`](std::error::Error::source) is then an
    /// [`IdNotIncreasing`]); nothing is published then.
    pub fn publish_with_id(
        &self,
        id: impl Into<Cow<'static, str>>,
        event: Event,
    ) -> Result<(), EventError> {
        let id = id.into();
        let text = match WireId::parse(&id) {
            WireId::Number(number) => {
                return match self.publish_with_u64_id(number, event) {
                    Ok(_) => Ok(()),
                    Err(refused) => Err(EventError::id_not_increasing(refused)),
                }
            }
            text => text,
        };
        let event = event.id(id)?;
        match self.window().append_caller(text, |_| event.encode()) {
            Ok(_) => Ok(()),
            Err(refused) => Err(EventError::id_not_increasing(refused)),
        }
    }

    /// Appends `event` under the source's own numeric `id` (a database sequence, an
    /// offset), replacing any id it had. Returns `id`.
    ///
    /// Numeric ids must increase along a log, as a client's numeric `Last-Event-ID` is
    /// placed by their order: `id` must be above the log's last numeric id, its own or the
    /// caller's. Nothing is formatted or allocated for the id. A source whose numbers
    /// outlive the process (a database sequence) also keeps its clients' ids valid across a
    /// restart, which is then the source's to ensure (see [Ids](Self#ids)).
    ///
    /// # Errors
    ///
    /// [`IdNotIncreasing`] when `id` is not above the log's last numeric id; nothing is
    /// published then.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use tower_sse::{replay::EventLog, Event, LastEventId};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_sse::replay::IdNotIncreasing> {
    /// let log = EventLog::new();
    /// for (seq, text) in [(1001, "a"), (1002, "b")] {
    ///     log.publish_with_u64_id(seq, Event::new().data(text))?;
    /// }
    /// assert!(log.publish_with_u64_id(1002, Event::new().data("again")).is_err());
    ///
    /// let mut events = log.subscribe(Some(&LastEventId::new("1001")));
    /// assert_eq!(events.next().await.unwrap().as_bytes(), "id: 1002\ndata: b\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn publish_with_u64_id(&self, id: u64, event: Event) -> Result<u64, IdNotIncreasing> {
        self.window()
            .append_caller(WireId::Number(id), |_| event.id_u64(id).encode())
            .map(|numbered| numbered.id)
    }

    /// Publishes the gap event for `missed` events a source lost before they reached the
    /// log, under the next automatic id.
    pub(super) fn publish_source_gap(&self, missed: u64) -> u64 {
        let window = self.window();
        Counters::add(&window.counters().source_lost, missed);
        tracing::warn!(
            missed,
            "sse event log's source lost events; subscribers get a gap event"
        );
        self.publish_auto(|numbered| {
            Gap::source_lagged(&window.config().gap, numbered.id, numbered.seq, missed).frame
        })
    }

    /// Leaves out a fed item whose number is not above the log's last; see
    /// [`feed`](Self::feed).
    pub(super) fn count_out_of_order(&self, refused: IdNotIncreasing) {
        Counters::add(&self.window().counters().out_of_order, 1);
        tracing::warn!(
            id = refused.id(),
            last = refused.last(),
            "sse event log left out a fed event whose id is not above the last one"
        );
    }

    /// A stream of the events after `last_event_id`, then of new events as they come.
    ///
    /// - `None` (a first connection): only events published from now on. The log cannot
    ///   tell how much history a new client wants; a client that wants all of it can send
    ///   `Last-Event-ID: 0`, which names the start of a log that has evicted nothing.
    /// - An id the log knows (a retained event, or the newest evicted one): the events
    ///   after it, then new ones. The newest event's id replays nothing.
    /// - Any other id: [`OnUnknownId`] decides; see there for which ids are unknown and
    ///   which too old.
    ///
    /// Pass what [`SseLayer`](crate::SseLayer) put in the request's extensions:
    /// `log.subscribe(req.extensions().get::<LastEventId>())`.
    pub fn subscribe(&self, last_event_id: Option<&LastEventId>) -> Subscription {
        Subscription::start(self.inner.window.clone(), |store| match last_event_id {
            None => Resume::Live,
            Some(id) => match store.resolve(id.as_str()) {
                Resolved::After(seq) => Resume::At {
                    cursor: seq + 1,
                    floor: None,
                },
                Resolved::TooOld => Resume::Gap(GapReason::CursorTooOld),
                Resolved::Unknown => Resume::Gap(GapReason::UnknownId),
            },
        })
    }

    /// Subscribes, and wraps the subscription in a response for [`SseLayer`](crate::SseLayer):
    /// `200 OK`, or `204 No Content` when [`OnUnknownId::NoContent`] refused the id (the
    /// layer passes any status but 200 through with an empty body).
    pub fn response(&self, last_event_id: Option<&LastEventId>) -> Response<Subscription> {
        into_response(self.subscribe(last_event_id))
    }

    /// The log's counters so far.
    pub fn stats(&self) -> ReplayStats {
        self.window().stats()
    }

    /// A handle for a feed, which must not keep the log alive.
    pub(super) fn downgrade(&self) -> WeakLog {
        WeakLog(Arc::downgrade(&self.inner))
    }

    /// A receiver that completes (with an error) once the last handle is dropped.
    pub(super) fn on_drop(&self) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        let mut feeds = self
            .inner
            .feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Feeds that ended dropped their receivers: their senders go here, so the list
        // holds at most the feeds running now, plus those that ended since the last one.
        feeds.retain(|sender| !sender.is_closed());
        feeds.push(sender);
        receiver
    }
}

/// `200 OK` with the subscription, or `204 No Content` when it was refused.
pub(super) fn into_response(subscription: Subscription) -> Response<Subscription> {
    let rejected = subscription.is_rejected();
    let mut response = Response::new(subscription);
    if rejected {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("window", self.window())
            .finish_non_exhaustive()
    }
}

/// Configures an [`EventLog`]: its retention window and its policies.
///
/// The window keeps at most `max_events` events, `max_bytes` bytes of frames and events no
/// older than `max_age`; all three are enforced on every publish, evicting the oldest first,
/// and age also when a subscription subscribes or reads. The newest event is always kept,
/// even when it alone is larger than `max_bytes`, so subscriptions waiting for it get it.
/// When `max_bytes` evicts while `max_events` still had room, replay is shorter than the
/// count suggests: the log logs that at `warn`, once (see [`max_bytes`](Self::max_bytes)).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::{replay::{EventLog, OnLag, OnUnknownId}};
///
/// let log = EventLog::builder()
///     .max_events(10_000)
///     .max_bytes(8 * 1024 * 1024)
///     .max_age(Duration::from_secs(300))
///     .on_lag(OnLag::SkipAhead)
///     .on_unknown_id(OnUnknownId::ResetFromLive)
///     .gap_event("missed")?
///     .build();
/// # let _ = log;
/// # Ok::<(), tower_sse::EventError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct EventLogBuilder {
    config: WindowConfig,
}

impl Default for EventLogBuilder {
    fn default() -> Self {
        Self {
            config: WindowConfig {
                limits: Limits {
                    max_events: DEFAULT_MAX_EVENTS,
                    max_bytes: DEFAULT_MAX_BYTES,
                    max_age: None,
                },
                on_lag: OnLag::default(),
                on_unknown_id: OnUnknownId::default(),
                // A constant name without line breaks: this never falls back.
                gap: Event::new().event(DEFAULT_GAP_EVENT).unwrap_or_default(),
            },
        }
    }
}

impl EventLogBuilder {
    /// Keeps at most `events` events (default 1024); 0 counts as 1.
    pub fn max_events(mut self, events: usize) -> Self {
        self.config.limits.max_events = events.max(1);
        self
    }

    /// Keeps at most `bytes` bytes of encoded frames (default 1 MiB), though always the
    /// newest event.
    ///
    /// Whichever limit is reached first evicts: with large events, the default 1 MiB holds
    /// fewer than the default 1024 events (events of 4 KiB fill it at about 250), and
    /// replay reaches back less far than `max_events` says. The first time that happens
    /// the log says so once, at `warn`; raise `max_bytes` (or lower `max_events`) to
    /// match the events you publish.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.config.limits.max_bytes = bytes;
        self
    }

    /// Evicts events older than `age` (default: no age limit).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.config.limits.max_age = Some(age);
        self
    }

    /// Sets what a subscription that falls behind the window does; see [`OnLag`].
    pub fn on_lag(mut self, policy: OnLag) -> Self {
        self.config.on_lag = policy;
        self
    }

    /// Sets what subscribing with an id the log cannot resume from does; see
    /// [`OnUnknownId`].
    pub fn on_unknown_id(mut self, policy: OnUnknownId) -> Self {
        self.config.on_unknown_id = policy;
        self
    }

    /// Sets the event type of the gap event (default `reset`), the name a browser listens
    /// for with `addEventListener`.
    ///
    /// # Errors
    ///
    /// When `name` holds a CR or LF (see [`Event::event`]).
    pub fn gap_event(mut self, name: impl Into<Cow<'static, str>>) -> Result<Self, EventError> {
        self.config.gap = Event::new().event(name)?;
        Ok(self)
    }

    /// The retention window configured so far.
    #[cfg(feature = "redis")]
    pub(super) fn limits(&self) -> Limits {
        self.config.limits
    }

    /// The window alone, for `RedisLog`, whose reader feeds it from a Redis stream.
    #[cfg(feature = "redis")]
    pub(super) fn into_window(self) -> Window {
        Window::new(self.config)
    }

    /// Builds the log.
    pub fn build(self) -> EventLog {
        EventLog {
            inner: Arc::new(Inner {
                window: Arc::new(Window::new(self.config)),
                feeds: Mutex::new(Vec::new()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{FutureExt, StreamExt};

    #[test]
    fn waiter_slots_are_reused_and_freed() {
        let log = EventLog::new();
        for _ in 0..100 {
            let mut subscription = log.subscribe(None);
            // Pending: registers a waker in a slot, which dropping it frees.
            assert!(subscription.next().now_or_never().is_none());
        }
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let mut subscription = log.subscribe(None);
                assert!(subscription.next().now_or_never().is_none());
                subscription
            })
            .collect();
        assert_eq!(log.window().waiter_capacity(), (3, 0, 3));
        log.publish(Event::new());
        assert_eq!(log.window().waiter_capacity(), (3, 0, 0));
        drop(waiting);
        assert_eq!(log.window().waiter_capacity(), (3, 3, 0));
        assert_eq!(log.stats().live_subscribers, 0);
    }
}
