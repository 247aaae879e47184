//! [`EventLog`] and its builder: publishing, retention, subscribing.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{Response, StatusCode};
use tokio::time::Instant;

use crate::error::EventError;
use crate::event::Event;
use crate::last_event_id::LastEventId;

use super::policy::{Gap, GapReason, OnLag, OnUnknownId};
use super::stats::{Counters, ReplayStats};
use super::store::{Limits, MemoryStore};
use super::subscription::{Start, Subscription};
use super::waiters::Waiters;

const DEFAULT_MAX_EVENTS: usize = 1024;
const DEFAULT_MAX_BYTES: usize = 1024 * 1024;
const DEFAULT_GAP_EVENT: &str = "reset";

/// A bounded log of recent events that many clients stream from, and resume from after a
/// reconnect without losing or repeating an event.
///
/// Each published event gets the next sequence number (1, 2, 3, ...) as its `id`, is framed
/// once, and is kept until the retention window evicts it. A [`Subscription`] is a stream of
/// those frames from a cursor: first the retained events after the client's
/// `Last-Event-ID`, then new ones as they are published, through the same read path.
///
/// `EventLog` is a cheap handle: clones share the same log. See [`EventLogBuilder`] for the
/// retention window, [`OnLag`] for slow subscribers and [`OnUnknownId`] for ids it cannot
/// resume from.
///
/// # Example
///
/// ```
/// use futures_util::StreamExt;
/// use tower_sse::{Event, EventLog, LastEventId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = EventLog::new();
/// for text in ["a", "b", "c"] {
///     log.publish(Event::new().data(text));
/// }
///
/// // A client that saw event 1 reconnects: it gets 2 and 3, then whatever comes next.
/// let events = log.subscribe(Some(&LastEventId::new("1")));
/// let frames: Vec<_> = events.take(2).map(|frame| frame.into_bytes()).collect().await;
/// assert_eq!(frames, ["id: 2\ndata: b\n\n", "id: 3\ndata: c\n\n"]);
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
/// use tower_sse::{Event, EventLog, LastEventId, SseLayer};
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
/// for text in ["a", "b", "c"] {
///     log.publish(Event::new().data(text));
/// }
/// let request = Request::get("/events").header("last-event-id", "1").body(()).unwrap();
/// let body = events.oneshot(request).await.unwrap().into_body();
/// let mut body = std::pin::pin!(body);
/// let opening = body.frame().await.unwrap().unwrap().into_data().unwrap();
/// assert_eq!(opening, ":\n\n");
/// // Events that are ready together go out in one frame.
/// let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
/// assert_eq!(frame, "id: 2\ndata: b\n\nid: 3\ndata: c\n\n");
/// # }
/// ```
///
/// # Storage
///
/// Events live in memory, behind one lock held only to append, evict or copy out one frame
/// handle. A backend on a shared store (for several server nodes) would take the place of
/// that in-memory window; [`publish_with_id`](Self::publish_with_id) already lets a node
/// feed events carrying the store's own ids (such as Redis stream ids), in order.
#[derive(Clone)]
pub struct EventLog {
    shared: Arc<Shared>,
}

/// Everything the log's handles and subscriptions share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: Config,
    /// Serializes publishers and holds the next sequence number, so that the costly part of
    /// publishing (framing) runs outside the lock subscriptions read through.
    publisher: Mutex<u64>,
    pub(super) state: Mutex<State>,
    pub(super) counters: Counters,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) store: MemoryStore,
    pub(super) waiters: Waiters,
}

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) limits: Limits,
    pub(super) on_lag: OnLag,
    pub(super) on_unknown_id: OnUnknownId,
    /// The gap event without id and data.
    pub(super) gap: Event,
}

/// Locks, recovering from poisoning: no critical section here leaves the state half
/// updated when it panics, as none calls out to user code.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Appends `event` with the next sequence number as its id, replacing any id it had,
    /// and wakes waiting subscriptions. Returns the sequence number.
    ///
    /// The event is framed once here; subscriptions send that frame as is.
    pub fn publish(&self, event: Event) -> u64 {
        self.append(event, None, true)
    }

    /// Publishes `value`'s JSON as an event's data, serializing it once.
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

    /// Appends `event` under the caller's `id` rather than the sequence number, replacing
    /// any id it had. Returns the sequence number it got.
    ///
    /// Clients resume from such an id like from any other. This is how events that already
    /// carry ids from elsewhere (a database, a Redis stream) are fed in, in their order.
    /// When an id is used twice, resuming from it resumes after the later event.
    ///
    /// # Errors
    ///
    /// When `id` holds a line break or NUL (see [`Event::id`]); nothing is published then.
    pub fn publish_with_id(
        &self,
        id: impl Into<Cow<'static, str>>,
        event: Event,
    ) -> Result<u64, EventError> {
        let id = id.into();
        let external = Arc::<str>::from(id.as_ref());
        let event = event.id(id)?;
        Ok(self.append(event, Some(external), false))
    }

    fn append(&self, event: Event, external: Option<Arc<str>>, numbered: bool) -> u64 {
        let shared = &*self.shared;
        let mut next_seq = lock(&shared.publisher);
        let seq = *next_seq;
        let event = if numbered { event.id_u64(seq) } else { event };
        let frame = event.encode();
        let at = shared.config.limits.max_age.map(|_| Instant::now());
        let (evicted, wakers) = {
            let mut state = lock(&shared.state);
            state.store.append(seq, frame, external, at);
            let evicted = state.store.evict(&shared.config.limits, at);
            (evicted, state.waiters.take_armed())
        };
        *next_seq = seq + 1;
        drop(next_seq);

        Counters::add(&shared.counters.published, 1);
        Counters::add(&shared.counters.evicted, evicted);
        for waker in wakers {
            waker.wake();
        }
        seq
    }

    /// A stream of the events after `last_event_id`, then of new events as they come.
    ///
    /// - `None` (a first connection): only events published from now on. The log cannot
    ///   tell how much history a new client wants; a client that wants all of it can send
    ///   `Last-Event-ID: 0`, which names the start of a log that has evicted nothing.
    /// - An id the log knows (a retained event, or the newest evicted one): the events
    ///   after it, then new ones. The newest event's id replays nothing.
    /// - Any other id: [`OnUnknownId`] decides.
    ///
    /// Pass what [`SseLayer`](crate::SseLayer) put in the request's extensions:
    /// `log.subscribe(req.extensions().get::<LastEventId>())`.
    pub fn subscribe(&self, last_event_id: Option<&LastEventId>) -> Subscription {
        let shared = &*self.shared;
        let config = &shared.config;
        let now = config.limits.max_age.map(|_| Instant::now());
        let (start, gap_at) = {
            let mut state = lock(&shared.state);
            let evicted = state.store.evict(&config.limits, now);
            Counters::add(&shared.counters.evicted, evicted);
            let store = &state.store;
            let next = store.next_seq();
            let at = |cursor| Start::At {
                cursor,
                replay_end: next,
            };
            match last_event_id.map(|id| (id, store.resolve(id.as_str()))) {
                None => (at(next), None),
                Some((_, Some(seq))) => (at(seq + 1), None),
                Some((id, None)) => {
                    let first = store.first_seq();
                    let reason = if store.is_evicted_seq(id.as_str()) {
                        GapReason::CursorTooOld
                    } else {
                        GapReason::UnknownId
                    };
                    match config.on_unknown_id {
                        OnUnknownId::ResetFromOldest => {
                            (at(first), Some((store.wire_id(first - 1), reason, first)))
                        }
                        OnUnknownId::ResetFromLive => {
                            (at(next), Some((store.wire_id(next - 1), reason, next)))
                        }
                        OnUnknownId::NoContent => (Start::Rejected, None),
                    }
                }
            }
        };
        let gap =
            gap_at.map(|(id, reason, resume_from)| Gap::new(&config.gap, id, reason, resume_from));
        Subscription::new(self.shared.clone(), start, gap)
    }

    /// Subscribes, and wraps the subscription in a response for [`SseLayer`](crate::SseLayer):
    /// `200 OK`, or `204 No Content` when [`OnUnknownId::NoContent`] refused the id (the
    /// layer passes any status but 200 through with an empty body).
    pub fn response(&self, last_event_id: Option<&LastEventId>) -> Response<Subscription> {
        let subscription = self.subscribe(last_event_id);
        let rejected = subscription.is_rejected();
        let mut response = Response::new(subscription);
        if rejected {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        response
    }

    /// The log's counters so far.
    pub fn stats(&self) -> ReplayStats {
        self.shared.counters.snapshot()
    }
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first, next, bytes) = {
            let state = lock(&self.shared.state);
            let store = &state.store;
            (store.first_seq(), store.next_seq(), store.bytes())
        };
        f.debug_struct("EventLog")
            .field("retained", &(first..next))
            .field("retained_bytes", &bytes)
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Configures an [`EventLog`]: its retention window and its policies.
///
/// The window keeps at most `max_events` events, `max_bytes` bytes of frames and events no
/// older than `max_age`; all three are enforced on every publish, evicting the oldest first,
/// and age also when a subscription subscribes or reads. The newest event is always kept,
/// even when it alone is larger than `max_bytes`, so subscriptions waiting for it get it.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::{EventLog, OnLag, OnUnknownId};
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
    config: Config,
}

impl Default for EventLogBuilder {
    fn default() -> Self {
        Self {
            config: Config {
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

    /// Builds the log.
    pub fn build(self) -> EventLog {
        EventLog {
            shared: Arc::new(Shared {
                config: self.config,
                publisher: Mutex::new(1),
                state: Mutex::new(State {
                    store: MemoryStore::new(),
                    waiters: Waiters::default(),
                }),
                counters: Counters::default(),
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
        assert_eq!(lock(&log.shared.state).waiters.capacity(), (3, 0, 3));
        log.publish(Event::new());
        assert_eq!(lock(&log.shared.state).waiters.capacity(), (3, 0, 0));
        drop(waiting);
        assert_eq!(lock(&log.shared.state).waiters.capacity(), (3, 3, 0));
        assert_eq!(log.stats().live_subscribers, 0);
    }
}
