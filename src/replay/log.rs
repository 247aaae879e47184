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

/// Where a client's `Last-Event-ID` places it in the window.
#[derive(Debug, Clone, Copy)]
pub(super) enum Resume {
    /// No id (a first connection): events published from now on.
    Live,
    /// From sequence number `cursor` on, leaving out events whose key is at most `floor`,
    /// which the client has seen (they may not have reached this window yet).
    At { cursor: u64, floor: Option<u128> },
    /// Not from where the client was: [`OnUnknownId`] decides.
    Gap(GapReason),
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
        self.subscribe_with(|store| match last_event_id {
            None => Resume::Live,
            Some(id) => match store.resolve(id.as_str()) {
                Some(seq) => Resume::At {
                    cursor: seq + 1,
                    floor: None,
                },
                None if store.is_evicted_seq(id.as_str()) => Resume::Gap(GapReason::CursorTooOld),
                None => Resume::Gap(GapReason::UnknownId),
            },
        })
    }

    /// Subscribes where `resolve` places the client in the window, which it reads under the
    /// same lock that publishing takes, so nothing is published in between.
    pub(super) fn subscribe_with(
        &self,
        resolve: impl FnOnce(&MemoryStore) -> Resume,
    ) -> Subscription {
        let shared = &*self.shared;
        let config = &shared.config;
        let now = config.limits.max_age.map(|_| Instant::now());
        let (start, gap_at) = {
            let mut state = lock(&shared.state);
            let evicted = state.store.evict(&config.limits, now);
            Counters::add(&shared.counters.evicted, evicted);
            let store = &state.store;
            let next = store.next_seq();
            let at = |cursor, floor| Start::At {
                cursor,
                replay_end: next,
                floor,
            };
            match resolve(store) {
                Resume::Live => (at(next, None), None),
                Resume::At { cursor, floor } => (at(cursor, floor), None),
                Resume::Gap(reason) => {
                    let first = store.first_seq();
                    match config.on_unknown_id {
                        OnUnknownId::ResetFromOldest => (
                            at(first, None),
                            Some((store.wire_id(first - 1), reason, first)),
                        ),
                        OnUnknownId::ResetFromLive => (
                            at(next, None),
                            Some((store.wire_id(next - 1), reason, next)),
                        ),
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

    /// Runs `change` on the window under both locks, then wakes waiting subscriptions.
    ///
    /// For a window fed from outside (a Redis stream) rather than by `publish`: `change`
    /// returns how many events it appended and how many left the window.
    #[cfg(feature = "redis")]
    pub(super) fn feed(&self, change: impl FnOnce(&mut MemoryStore, &Limits) -> (u64, u64)) {
        let shared = &*self.shared;
        // Keeps `publish` (never called on such a log) in step with the window.
        let mut next_seq = lock(&shared.publisher);
        let (appended, evicted, wakers) = {
            let mut state = lock(&shared.state);
            let (appended, evicted) = change(&mut state.store, &shared.config.limits);
            *next_seq = state.store.next_seq();
            // Every change matters to waiting subscriptions: even one that appends and
            // evicts nothing may have left a hole in the sequence numbers.
            (appended, evicted, state.waiters.take_armed())
        };
        drop(next_seq);
        Counters::add(&shared.counters.published, appended);
        Counters::add(&shared.counters.evicted, evicted);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Reads the window under its lock.
    #[cfg(feature = "redis")]
    pub(super) fn read<T>(&self, read: impl FnOnce(&MemoryStore) -> T) -> T {
        read(&lock(&self.shared.state).store)
    }

    /// The window's configuration.
    #[cfg(feature = "redis")]
    pub(super) fn limits(&self) -> Limits {
        self.shared.config.limits
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

    /// The retention window configured so far.
    #[cfg(feature = "redis")]
    pub(super) fn limits(&self) -> Limits {
        self.config.limits
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

    /// A window fed by keys, as the Redis reader feeds it: resuming by order.
    #[cfg(feature = "redis")]
    mod keyed {
        use super::*;

        fn feed(log: &EventLog, keys: &[u128]) {
            log.feed(|store, limits| {
                for &key in keys {
                    let id: Arc<str> = Arc::from(key.to_string());
                    let frame = Event::new().id(key.to_string()).unwrap().encode();
                    store.append_keyed(key, id, frame, None);
                }
                (keys.len() as u64, store.evict(limits, None))
            });
        }

        fn at(log: &EventLog, key: u128) -> Subscription {
            log.subscribe_with(|store| match store.resolve_key(key) {
                Some(cursor) => Resume::At {
                    cursor,
                    floor: Some(key),
                },
                None => Resume::Gap(GapReason::CursorTooOld),
            })
        }

        fn ready_keys(subscription: &mut Subscription) -> Vec<String> {
            let mut keys = Vec::new();
            while let Some(frame) = subscription.next().now_or_never() {
                let frame = frame.expect("does not end");
                let text = std::str::from_utf8(frame.as_bytes()).unwrap().to_owned();
                keys.push(text);
                assert!(keys.len() < 100);
            }
            keys
        }

        fn ids(keys: &[u128]) -> Vec<String> {
            keys.iter().map(|key| format!("id: {key}\n\n")).collect()
        }

        #[test]
        fn ids_resolve_by_order() {
            let log = EventLog::builder().max_events(3).build();
            log.feed(|store, _| {
                store.start_after(5, Arc::from("5"));
                (0, 0)
            });
            feed(&log, &[10, 20, 30]);
            assert_eq!(
                ready_keys(&mut at(&log, 5)),
                ids(&[10, 20, 30]),
                "the boundary"
            );
            assert_eq!(ready_keys(&mut at(&log, 10)), ids(&[20, 30]));
            // Between two events: the first one after it.
            assert_eq!(ready_keys(&mut at(&log, 25)), ids(&[30]));
            let mut old = at(&log, 4);
            let gap = ready_keys(&mut old);
            assert!(gap[0].starts_with("id: 5\nevent: reset\ndata: {\"reason\":\"cursor_too_old\""));
            assert_eq!(gap[1..], ids(&[10, 20, 30]));
        }

        #[test]
        fn an_id_not_received_yet_leaves_out_the_events_up_to_it() {
            let log = EventLog::new();
            feed(&log, &[10]);
            // The client saw 30 on another node; 20 and 30 have not reached this one.
            let mut ahead = at(&log, 30);
            assert!(ready_keys(&mut ahead).is_empty());
            feed(&log, &[20]);
            assert!(ready_keys(&mut ahead).is_empty());
            feed(&log, &[30, 40]);
            assert_eq!(ready_keys(&mut ahead), ids(&[40]));
            feed(&log, &[50]);
            assert_eq!(ready_keys(&mut ahead), ids(&[50]));
        }

        #[test]
        fn events_evicted_below_the_floor_are_not_a_lag() {
            let log = EventLog::builder().max_events(2).build();
            let mut ahead = at(&log, 30);
            assert!(ready_keys(&mut ahead).is_empty());
            // 10 and 20 come and go before the subscription reads: it did not need them.
            feed(&log, &[10, 20, 30, 40]);
            assert_eq!(ready_keys(&mut ahead), ids(&[40]));
            assert_eq!(log.stats().lag_disconnects, 0);
        }

        #[test]
        fn a_skip_puts_every_subscription_behind_the_window() {
            let log = EventLog::new();
            feed(&log, &[10]);
            let mut live = log.subscribe(None);
            assert!(ready_keys(&mut live).is_empty());
            log.feed(|store, _| (0, store.skip_to(40, Arc::from("40"))));
            feed(&log, &[50]);
            // Events 20 to 40 never reached the window: the default policy disconnects.
            assert!(live.next().now_or_never().unwrap().is_none());
            assert_eq!(log.stats().lag_disconnects, 1);
            let mut again = at(&log, 10);
            let frames = ready_keys(&mut again);
            assert!(
                frames[0].starts_with("id: 40\nevent: reset\n"),
                "{frames:?}"
            );
            assert_eq!(frames[1..], ids(&[50]));
            assert_eq!(ready_keys(&mut at(&log, 40)), ids(&[50]));
        }
    }
}
