//! [`RedisLog`] and its builder: publishing to the stream, subscribing from the window.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::task::JoinHandle;

use crate::error::EventError;
use crate::event::Event;
use crate::last_event_id::LastEventId;
use crate::replay::log::{into_response, EventLog, EventLogBuilder};
use crate::replay::policy::{GapReason, OnLag, OnUnknownId};
use crate::replay::stats::ReplayStats;
use crate::replay::subscription::Subscription;
use crate::replay::window::{Resume, Window};

use super::error::{ConnectError, PublishError};
use super::id::StreamId;
use super::reader::{Progress, Reader};
use super::script::{self, Range, FIELD};
use super::topics::Leave;

/// Publishing gives up on Redis this soon, so callers hear of an outage instead of waiting.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A replay log on a Redis stream, shared by several server nodes: events published on
/// any node reach the clients of every node, in one order, and a client resumes on any
/// node from the `Last-Event-ID` it got from another.
///
/// Each node connects one `RedisLog` per stream key. Publishing frames the event once and
/// appends the frame, without its id, to the stream (`XADD`); Redis gives the entry its id,
/// which becomes the event's `id:`. One reader task per `RedisLog` follows the stream on a
/// connection of its own and feeds the entries, id line in front, into a local window: an
/// [`EventLog`] window like any other, from which every [`Subscription`] on this node
/// reads. So no node serializes an event again, and no client holds a Redis connection.
///
/// Clones share the log and its reader; the reader stops when the last clone is dropped.
///
/// # Example
///
/// ```no_run
/// use futures_util::StreamExt;
/// use tower_sse::{replay::redis::RedisLog, Event, LastEventId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let log = RedisLog::builder("events:news")
///     .max_events(10_000)
///     .connect("redis://127.0.0.1/")
///     .await?;
/// let id = log.publish(Event::new().data("hello")).await?;
///
/// // A client that saw `id` on any node resumes right after it, here or elsewhere.
/// let mut events = log.subscribe(Some(&LastEventId::new(id.to_string()))).await;
/// # let _ = events.next().await;
/// # Ok(())
/// # }
/// ```
///
/// # Resuming
///
/// Ids resolve by their order, not by lookup: a client resumes at the first event after
/// its `Last-Event-ID`, so an id this node has not received yet (its reader is a few
/// milliseconds behind the node the client came from) puts the client at the live edge,
/// and the events up to that id are left out when they arrive. Only when an id is ahead of
/// everything this node has does `subscribe` ask Redis whether it was ever given; an id
/// Redis never gave is an unknown id.
///
/// Replay is served from the node's window: a client whose id is older than the window
/// gets the gap event (`cursor_too_old`), even when Redis, whose trimming is approximate,
/// still holds a few more entries. An id that is not a Redis id (`<ms>-<seq>`) gets the
/// unknown-id treatment, as on [`EventLog`]. The gap event's `resume_from` is the node's own
/// sequence number; its `id:` is a Redis id like any other.
///
/// # Retention
///
/// [`max_events`](RedisLogBuilder::max_events) bounds the window and, as `XADD ... MAXLEN ~`,
/// the stream; [`max_age`](RedisLogBuilder::max_age) evicts from the window and trims the
/// stream with `XTRIM ... MINID ~` at each publish, measured on the Redis clock (the ids).
/// Both trims are approximate (`~`): Redis drops whole internal nodes only, so the stream
/// keeps at least what the window keeps, and up to about a hundred entries more.
/// [`max_bytes`](RedisLogBuilder::max_bytes) bounds the window only. A node starting up
/// fills its window from the stream before `connect` returns.
///
/// # Faults
///
/// While Redis is unreachable, [`publish`](Self::publish) fails with a [`PublishError`]
/// (within about two seconds), nothing is dropped silently, and streams stay open with their
/// keep-alives. The reader reconnects with backoff (25 ms doubling to 2 s) and reads on
/// from the last entry it delivered, so clients see a delay, not a loss. If entries were
/// trimmed before this node could read them, its subscriptions fall behind the window and
/// get the gap event. A Redis restart that loses the stream (no persistence) loses the
/// entries no node had read yet; run Redis with persistence (AOF or RDB) where that matters.
#[derive(Clone)]
pub struct RedisLog {
    inner: Arc<Inner>,
}

struct Inner {
    key: Arc<str>,
    window: Arc<Window>,
    manager: ConnectionManager,
    script: Script,
    max_events: usize,
    max_age_ms: Option<u64>,
    progress: Arc<Progress>,
    follower: Follower,
}

/// Who feeds the window: a reader task of the log's own, or the registry's reader of many
/// streams, told to let go of this one when the log goes.
#[derive(Debug)]
pub(super) enum Follower {
    Own(JoinHandle<()>),
    Shared(Leave),
}

impl Drop for Inner {
    fn drop(&mut self) {
        match &self.follower {
            Follower::Own(reader) => reader.abort(),
            Follower::Shared(leave) => leave.send(),
        }
    }
}

impl RedisLog {
    /// Configures a log on the stream at `key`.
    pub fn builder(key: impl Into<String>) -> RedisLogBuilder {
        RedisLogBuilder {
            key: key.into(),
            log: EventLog::builder(),
        }
    }

    /// The stream's key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// Appends `event` to the stream, replacing any id it had with the entry id Redis
    /// gives it, which is returned. Every node's clients get it once their node's reader
    /// has read it (this node's too: publishing does not skip the stream).
    ///
    /// The event is framed once here; the frame is what every node sends.
    ///
    /// # Errors
    ///
    /// When Redis is unreachable or refuses the command; see [`PublishError`].
    pub async fn publish(&self, event: Event) -> Result<StreamId, PublishError> {
        self.append(event.without_id().encode().into_bytes()).await
    }

    /// Publishes `value`'s JSON as an event's data, serializing it once.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialize ([`PublishError::is_event`]), or as
    /// [`publish`](Self::publish).
    #[cfg(feature = "json")]
    pub async fn publish_json<T>(&self, value: &T) -> Result<StreamId, PublishError>
    where
        T: serde::Serialize + ?Sized,
    {
        let event = Event::new().json_data(value).map_err(PublishError::event)?;
        self.publish(event).await
    }

    async fn append(&self, body: Bytes) -> Result<StreamId, PublishError> {
        let inner = &*self.inner;
        let key = &*inner.key;
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(key)
            .arg("MAXLEN")
            .arg("~")
            .arg(inner.max_events)
            .arg("*")
            .arg(FIELD)
            .arg(&body[..]);
        let newest_ms = inner.progress.newest_ms.load(Ordering::Relaxed);
        if let Some(min_ms) = inner.max_age_ms.and_then(|age| newest_ms.checked_sub(age)) {
            pipe.cmd("XTRIM")
                .arg(key)
                .arg("MINID")
                .arg("~")
                .arg(min_ms)
                .ignore();
        }
        let mut connection = inner.manager.clone();
        let (id,): (Vec<u8>,) = pipe
            .query_async(&mut connection)
            .await
            .map_err(PublishError::redis)?;
        let id = StreamId::parse(&id).ok_or_else(|| {
            PublishError::redis(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "XADD returned something other than an entry id",
            )))
        })?;
        inner
            .progress
            .newest_ms
            .fetch_max(id.ms(), Ordering::Relaxed);
        Ok(id)
    }

    /// A stream of the events after `last_event_id`, then of new events as this node's
    /// reader delivers them; see [Resuming](Self#resuming).
    ///
    /// - `None`: only events that reach this node from now on.
    /// - A Redis id, from any node: the events after it, then new ones.
    /// - An id older than the window: the gap event ([`OnUnknownId`] decides the rest).
    /// - Anything else: [`OnUnknownId`] decides.
    pub async fn subscribe(&self, last_event_id: Option<&LastEventId>) -> Subscription {
        let window = &self.inner.window;
        let Some(text) = last_event_id.map(LastEventId::as_str) else {
            return Subscription::start(window.clone(), |_| Resume::Live);
        };
        let Some(id) = StreamId::parse(text.as_bytes()) else {
            return Subscription::start(window.clone(), |_| Resume::Gap(GapReason::UnknownId));
        };
        let key = id.key();
        if window.inspect(|store| key > store.newest_key()) && !self.was_given(id).await {
            return Subscription::start(window.clone(), |_| Resume::Gap(GapReason::UnknownId));
        }
        Subscription::start(window.clone(), |store| match store.resolve_key(key) {
            // The floor leaves out events up to the client's, should they arrive later.
            Some(cursor) => Resume::At {
                cursor,
                floor: Some(key),
            },
            None => Resume::Gap(GapReason::CursorTooOld),
        })
    }

    /// Whether Redis has given `id` (or a later one), asked when this node has not seen
    /// it: its reader may simply be behind. When Redis cannot say, the client is trusted,
    /// as its id most likely came from another node.
    async fn was_given(&self, id: StreamId) -> bool {
        let inner = &*self.inner;
        let mut connection = inner.manager.clone();
        match script::read(&inner.script, &mut connection, &inner.key, Range::Info).await {
            Ok(snapshot) => id <= snapshot.last,
            Err(error) => {
                tracing::debug!(%error, %id, "sse redis log could not check a Last-Event-ID");
                true
            }
        }
    }

    /// Subscribes, and wraps the subscription in a response for
    /// [`SseLayer`](crate::SseLayer): `200 OK`, or `204 No Content` when
    /// [`OnUnknownId::NoContent`] refused the id.
    pub async fn response(&self, last_event_id: Option<&LastEventId>) -> Response<Subscription> {
        into_response(self.subscribe(last_event_id).await)
    }

    /// This node's counters: `published` counts the events its reader delivered to the
    /// window (from any node), the others are as for [`EventLog::stats`].
    pub fn stats(&self) -> ReplayStats {
        self.inner.window.stats()
    }

    /// How many times this node's reader lost its Redis connection and made a new one.
    pub fn reconnects(&self) -> u64 {
        self.inner.progress.reconnects.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLog")
            .field("key", &self.inner.key)
            .field("window", &self.inner.window)
            .field("reconnects", &self.reconnects())
            .field("gaps", &self.inner.progress.gaps.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisLog`]: the stream key, the retention, the policies.
///
/// The retention and policy setters are those of [`EventLogBuilder`], with the same
/// defaults (1024 events, 1 MiB, no age limit); see [Retention](RedisLog#retention) for
/// how they apply to the stream.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use tower_sse::{replay::redis::RedisLog, replay::OnUnknownId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let log = RedisLog::builder("events:orders")
///     .max_events(50_000)
///     .max_age(Duration::from_secs(3600))
///     .on_unknown_id(OnUnknownId::ResetFromLive)
///     .connect("redis://127.0.0.1:6379/")
///     .await?;
/// # let _ = log;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisLogBuilder {
    key: String,
    log: EventLogBuilder,
}

impl RedisLogBuilder {
    /// Keeps at most `events` events in the window (default 1024; 0 counts as 1), and
    /// trims the stream to about that many.
    pub fn max_events(mut self, events: usize) -> Self {
        self.log = self.log.max_events(events);
        self
    }

    /// Keeps at most `bytes` bytes of frames in the window (default 1 MiB), though always
    /// the newest event. The stream is not trimmed by size.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.log = self.log.max_bytes(bytes);
        self
    }

    /// Evicts events older than `age` from the window, and trims them from the stream
    /// (default: no age limit).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.log = self.log.max_age(age);
        self
    }

    /// Sets what a subscription that falls behind the window does; see [`OnLag`].
    pub fn on_lag(mut self, policy: OnLag) -> Self {
        self.log = self.log.on_lag(policy);
        self
    }

    /// Sets what subscribing with an id the window cannot resume from does; see
    /// [`OnUnknownId`].
    pub fn on_unknown_id(mut self, policy: OnUnknownId) -> Self {
        self.log = self.log.on_unknown_id(policy);
        self
    }

    /// Sets the event type of the gap event (default `reset`).
    ///
    /// # Errors
    ///
    /// When `name` holds a CR or LF (see [`Event::event`]).
    pub fn gap_event(mut self, name: impl Into<Cow<'static, str>>) -> Result<Self, EventError> {
        self.log = self.log.gap_event(name)?;
        Ok(self)
    }

    /// Connects to Redis at `url` (such as `redis://127.0.0.1:6379/`), fills the window
    /// with the newest retained entries, and starts this node's reader, which runs on the
    /// current Tokio runtime until the last clone of the log is dropped.
    ///
    /// # Errors
    ///
    /// When `url` is not a Redis URL, Redis cannot be reached, or reading the stream fails
    /// (the key holds something else than a stream, or Redis is older than 7.0).
    pub async fn connect(self, url: &str) -> Result<RedisLog, ConnectError> {
        let client = redis::Client::open(url).map_err(ConnectError::new)?;
        // Publishing fails fast when Redis is away: one reconnect attempt per command, and
        // the manager keeps reconnecting in the background.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(25))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(PUBLISH_TIMEOUT));
        let mut manager = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(ConnectError::new)?;

        let script = script::script();
        let (mut reader, make) = RedisLog::parts(Arc::from(self.key), self.log, client, script);
        reader
            .backfill(&mut manager)
            .await
            .map_err(ConnectError::new)?;
        Ok(make(manager, Follower::Own(tokio::spawn(reader.run()))))
    }
}

impl RedisLog {
    /// A log's window with its reader, not yet reading, and what makes the log once it is
    /// known who follows the stream.
    pub(super) fn parts(
        key: Arc<str>,
        log: EventLogBuilder,
        client: redis::Client,
        script: Script,
    ) -> (Reader, impl FnOnce(ConnectionManager, Follower) -> RedisLog) {
        let limits = log.limits();
        let window = Arc::new(log.into_window());
        let progress = Arc::new(Progress::default());
        let reader = Reader::new(
            client,
            key.clone(),
            script.clone(),
            window.clone(),
            progress.clone(),
        );
        let make = move |manager, follower| RedisLog {
            inner: Arc::new(Inner {
                key,
                window,
                manager,
                script,
                max_events: limits.max_events,
                max_age_ms: limits
                    .max_age
                    .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
                progress,
                follower,
            }),
        };
        (reader, make)
    }
}
