//! [`RedisLogRegistry`]: a [`RedisLog`] per key, each on a stream of its own, all read by
//! one reader connection per node; made on first use, evicted when idle, bounded.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::stream::{FusedStream, Stream};
use http::{Response, StatusCode};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::event::{EncodedEvent, Event};
use crate::last_event_id::LastEventId;
use crate::maybe_stream::MaybeStream;
use crate::replay::{
    EventLog, EventLogBuilder, RegistryFull, RegistryStats, Subscription, WhenFull,
};

use super::error::{ConnectError, PublishError, SubscribeError};
use super::id::StreamId;
use super::log::{Follower, RedisLog};
use super::script;
use super::topics::{self, Loaded, ReaderState, Topics};

const DEFAULT_IDLE: Duration = Duration::from_secs(300);
const DEFAULT_MAX_KEYS: usize = 10_000;
const DEFAULT_READER_NAME: &str = "tower-sse-reader";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a subscription to a new key waits for its stream to be read into the window.
const LOAD_TIMEOUT: Duration = Duration::from_secs(2);

/// A [`RedisLog`] per key (a chat room, a user, a document), each on the Redis stream
/// `<prefix><key>`, shared by several server nodes; the keyed counterpart of
/// [`LogRegistry`](crate::replay::LogRegistry).
///
/// - **One reader per node.** All the keys a node serves are read by one task on one
///   connection, named with [`reader_name`](RedisLogRegistryBuilder::reader_name) (see
///   `CLIENT LIST`): a single `XREAD BLOCK` over every key's stream, issued again when keys
///   come or go. A new key interrupts the blocked read (`CLIENT UNBLOCK`, sent on the
///   publishing connection), so it is followed at once, not at the next block timeout.
///   Publishing goes over the node's one publishing connection, as for [`RedisLog`].
/// - **Per key, as `RedisLog`.** Each key has its own window with the registry's
///   retention ([`log`](RedisLogRegistryBuilder::log)), its own stream, trimmed as
///   [`RedisLog`] trims it, and its own checks for entries trimmed before this node read
///   them; ids are the stream's ids, so a client resumes a key on any node.
/// - **First use.** Publishing or subscribing makes a missing key's log; its window is filled
///   from its stream before a subscription resolves the client's id, so a client coming
///   from another node resumes here with nothing lost or repeated.
/// - **Eviction and bound.** As for [`LogRegistry`](crate::replay::LogRegistry): a key is
///   evicted from the node (its window and its place in the read; the stream stays in Redis
///   for the other nodes and for the next use) after the
///   [`idle time`](RedisLogRegistryBuilder::idle_eviction) without subscriber or publish;
///   at most [`max_keys`](RedisLogRegistryBuilder::max_keys) keys, a new one beyond that
///   refused or taking the idlest key's place ([`WhenFull`]). As the stream stays, a key
///   made again later fills its window from it: evicting on one node loses no history.
///
/// Clones share the keys, the connections and the reader; the reader stops when the last
/// clone is dropped.
///
/// # Example
///
/// ```no_run
/// use futures_util::StreamExt;
/// use tower_sse::replay::redis::RedisLogRegistry;
/// use tower_sse::{Event, LastEventId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let rooms = RedisLogRegistry::<String>::builder("chat:")
///     .connect("redis://127.0.0.1/")
///     .await?;
/// // Appended to the stream `chat:kitchen`.
/// let id = rooms.publish("kitchen", Event::new().data("who took the milk?")).await?;
///
/// // A client that saw `id` on any node resumes right after it, here or elsewhere.
/// let mut kitchen = rooms.subscribe("kitchen", Some(&LastEventId::new(id.to_string()))).await?;
/// # let _ = kitchen.next().await;
/// # Ok(())
/// # }
/// ```
pub struct RedisLogRegistry<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    /// One lock, held only to find, make or evict a key's slot; publishing and subscribing
    /// talk to Redis outside it.
    map: Mutex<Map<K>>,
    prefix: String,
    log: EventLogBuilder,
    client: redis::Client,
    manager: ConnectionManager,
    script: Script,
    topics: Topics,
    reader: JoinHandle<()>,
    state: Arc<ReaderState>,
    idle_ms: u64,
    max_keys: usize,
    when_full: WhenFull,
    epoch: Instant,
    created: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
}

struct Map<K> {
    slots: HashMap<K, Arc<Slot>>,
    swept_ms: u64,
}

impl<K> Drop for Shared<K> {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One key's log, whether its window is filled, and what decides its eviction.
#[derive(Debug)]
struct Slot {
    log: RedisLog,
    loaded: Arc<Loaded>,
    subscribers: AtomicU64,
    last_activity: AtomicU64,
}

impl Slot {
    fn touch(&self, now_ms: u64) {
        self.last_activity.fetch_max(now_ms, Ordering::Relaxed);
    }

    fn subscribers(&self) -> u64 {
        self.subscribers.load(Ordering::Acquire)
    }

    fn is_idle(&self, now_ms: u64, idle_ms: u64) -> bool {
        self.subscribers() == 0
            && now_ms.saturating_sub(self.last_activity.load(Ordering::Relaxed)) >= idle_ms
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing user-supplied runs under the lock, and the map is never left half changed.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl<K> RedisLogRegistry<K> {
    /// Configures a registry whose keys' streams are named `<prefix><key>`.
    pub fn builder(prefix: impl Into<String>) -> RedisLogRegistryBuilder<K> {
        RedisLogRegistryBuilder {
            prefix: prefix.into(),
            log: EventLog::builder(),
            idle: DEFAULT_IDLE,
            max_keys: DEFAULT_MAX_KEYS,
            when_full: WhenFull::default(),
            reader_name: DEFAULT_READER_NAME.to_owned(),
            _key: std::marker::PhantomData,
        }
    }

    /// The number of keys that have a log on this node now.
    pub fn len(&self) -> usize {
        lock(&self.shared.map).slots.len()
    }

    /// Whether no key has a log on this node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The registry's counters, and its keys and subscribers now.
    pub fn stats(&self) -> RegistryStats {
        let shared = &*self.shared;
        let (keys, subscribers) = {
            let map = lock(&shared.map);
            let subscribers = map.slots.values().map(|slot| slot.subscribers()).sum();
            (map.slots.len() as u64, subscribers)
        };
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RegistryStats {
            keys,
            subscribers,
            created: read(&shared.created),
            evicted: read(&shared.evicted),
            refused: read(&shared.refused),
        }
    }

    /// How many times the node's reader lost its Redis connection and made a new one.
    pub fn reconnects(&self) -> u64 {
        self.shared.state.reconnects.load(Ordering::Relaxed)
    }

    /// Evicts every key that has had no subscriber and no publish for the idle time, now.
    /// Returns how many it evicted.
    pub fn sweep(&self) -> usize {
        let now = self.shared.now_ms();
        self.shared.sweep(&mut lock(&self.shared.map), now)
    }

    /// A task that [`sweep`](Self::sweep)s every `period` (at least 1 ms), until the
    /// registry's last handle is dropped.
    pub fn sweeper(&self, period: Duration) -> impl Future<Output = ()> + Send + 'static
    where
        K: Send + 'static,
    {
        crate::replay::registry::sweep_every(Arc::downgrade(&self.shared), period, |shared| {
            RedisLogRegistry { shared }.sweep();
        })
    }
}

impl<K: Hash + Eq + fmt::Display> RedisLogRegistry<K> {
    /// Appends `event` to `key`'s stream, making the key's log on this node if it has none;
    /// returns the id Redis gave it (see [`RedisLog::publish`]).
    ///
    /// # Errors
    ///
    /// When the key is new and the registry has no room for it
    /// ([`PublishError::is_full`]), or as [`RedisLog::publish`].
    pub async fn publish<Q>(&self, key: &Q, event: Event) -> Result<StreamId, PublishError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let slot = self.slot(key, false).map_err(PublishError::full)?;
        slot.log.publish(event).await
    }

    /// Publishes `value`'s JSON as an event's data to `key`, serializing it once.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish), and when `value` fails to serialize
    /// ([`PublishError::is_event`]).
    #[cfg(feature = "json")]
    pub async fn publish_json<Q, T>(&self, key: &Q, value: &T) -> Result<StreamId, PublishError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        T: serde::Serialize + ?Sized,
    {
        let event = Event::new().json_data(value).map_err(PublishError::event)?;
        self.publish(key, event).await
    }

    /// A stream of `key`'s events after `last_event_id`, then of new ones, as
    /// [`RedisLog::subscribe`] makes it; makes the key's log if it has none, and waits until
    /// its window is filled from the stream. The key is not evicted while it lives.
    ///
    /// # Errors
    ///
    /// When the key is new and the registry has no room for it, or its stream could not be
    /// read within about two seconds (Redis is unreachable); see [`SubscribeError`].
    pub async fn subscribe<Q>(
        &self,
        key: &Q,
        last_event_id: Option<&LastEventId>,
    ) -> Result<RedisKeySubscription, SubscribeError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let slot = self.slot(key, true).map_err(SubscribeError::full)?;
        // Counted already: dropped on any way out, the hold gives the count back.
        let hold = Hold {
            slot,
            epoch: self.shared.epoch,
        };
        if !hold.slot.loaded.is_set()
            && tokio::time::timeout(LOAD_TIMEOUT, hold.slot.loaded.wait())
                .await
                .is_err()
        {
            return Err(SubscribeError::not_loaded());
        }
        let inner = hold.slot.log.subscribe(last_event_id).await;
        Ok(RedisKeySubscription { inner, hold })
    }

    /// Subscribes, and answers for [`SseLayer`](crate::SseLayer): `200 OK` with the
    /// subscription, `204 No Content` when the key's log refused the `Last-Event-ID`,
    /// `503 Service Unavailable` when [`subscribe`](Self::subscribe) failed.
    pub async fn response<Q>(
        &self,
        key: &Q,
        last_event_id: Option<&LastEventId>,
    ) -> Response<MaybeStream<RedisKeySubscription>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.subscribe(key, last_event_id).await {
            Ok(subscription) => {
                let rejected = subscription.is_rejected();
                let mut response = MaybeStream::response(subscription);
                if rejected {
                    *response.status_mut() = StatusCode::NO_CONTENT;
                }
                response
            }
            Err(_) => MaybeStream::status(StatusCode::SERVICE_UNAVAILABLE),
        }
    }

    /// A handle to `key`'s log on this node, if it has one; makes none. Read its
    /// [`stats`](RedisLog::stats) with it. Using it is not activity the registry sees: the
    /// key may be evicted while the handle lives, and its window is no longer fed then (nor
    /// once the registry is dropped). Subscribe through the registry: a key made a moment
    /// ago may not have its window filled yet, which only the registry waits for.
    pub fn get<Q>(&self, key: &Q) -> Option<RedisLog>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.shared.map)
            .slots
            .get(key)
            .map(|slot| slot.log.clone())
    }

    /// `key`'s slot, made (and handed to the reader) if it has none and there is room;
    /// touched, and for a subscriber counted, under the lock.
    fn slot<Q>(&self, key: &Q, subscribe: bool) -> Result<Arc<Slot>, RegistryFull>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let shared = &*self.shared;
        let now = shared.now_ms();
        let mut map = lock(&shared.map);
        if let Some(slot) = map.slots.get(key) {
            slot.touch(now);
            if subscribe {
                slot.subscribers.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(slot.clone());
        }
        if now.saturating_sub(map.swept_ms) >= shared.idle_ms / 4
            || map.slots.len() >= shared.max_keys
        {
            shared.sweep(&mut map, now);
        }
        if map.slots.len() >= shared.max_keys
            && !(shared.when_full == WhenFull::EvictIdlest && shared.evict_idlest(&mut map))
        {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            return Err(RegistryFull {
                max_keys: shared.max_keys,
            });
        }
        let key = key.to_owned();
        let slot = Arc::new(shared.make(&key, now, subscribe));
        map.slots.insert(key, slot.clone());
        shared.created.fetch_add(1, Ordering::Relaxed);
        Ok(slot)
    }
}

impl<K> Shared<K> {
    fn now_ms(&self) -> u64 {
        millis(Instant::now().saturating_duration_since(self.epoch))
    }

    fn make(&self, key: &K, now: u64, subscribe: bool) -> Slot
    where
        K: fmt::Display,
    {
        let stream = Arc::from(format!("{}{key}", self.prefix));
        let (reader, make) = RedisLog::parts(
            stream,
            self.log.clone(),
            self.client.clone(),
            self.script.clone(),
        );
        let (leave, loaded) = self.topics.join(reader);
        Slot {
            log: make(self.manager.clone(), Follower::Shared(leave)),
            loaded,
            subscribers: AtomicU64::new(u64::from(subscribe)),
            last_activity: AtomicU64::new(now),
        }
    }

    fn sweep(&self, map: &mut Map<K>, now: u64) -> usize {
        let before = map.slots.len();
        map.slots.retain(|_, slot| !slot.is_idle(now, self.idle_ms));
        map.swept_ms = now;
        let evicted = before - map.slots.len();
        self.evicted.fetch_add(evicted as u64, Ordering::Relaxed);
        evicted
    }

    fn evict_idlest(&self, map: &mut Map<K>) -> bool {
        let Some(idlest) = map
            .slots
            .values()
            .filter(|slot| slot.subscribers() == 0)
            .min_by_key(|slot| slot.last_activity.load(Ordering::Relaxed))
            .cloned()
        else {
            return false;
        };
        map.slots.retain(|_, slot| !Arc::ptr_eq(slot, &idlest));
        self.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }
}

impl<K> Clone for RedisLogRegistry<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K> fmt::Debug for RedisLogRegistry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        f.debug_struct("RedisLogRegistry")
            .field("prefix", &shared.prefix)
            .field("keys", &self.len())
            .field("max_keys", &shared.max_keys)
            .field("when_full", &shared.when_full)
            .field("idle_ms", &shared.idle_ms)
            .field("reconnects", &self.reconnects())
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisLogRegistry`]: the streams' prefix, each key's retention and
/// policies, the idle time, the bound on keys, the reader connection's name.
///
/// Defaults as for [`LogRegistryBuilder`](crate::replay::LogRegistryBuilder): each key's
/// window as [`EventLog::new`] makes it, eviction after 5 minutes with no subscriber and no
/// publish, at most 10,000 keys, [`WhenFull::Refuse`]; the reader is named
/// `tower-sse-reader`.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use tower_sse::replay::redis::RedisLogRegistry;
/// use tower_sse::replay::{EventLog, WhenFull};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let rooms = RedisLogRegistry::<String>::builder("chat:")
///     .log(EventLog::builder().max_events(100).max_age(Duration::from_secs(3600)))
///     .idle_eviction(Duration::from_secs(60))
///     .max_keys(1_000)
///     .when_full(WhenFull::EvictIdlest)
///     .reader_name("chat-node-1")
///     .connect("redis://127.0.0.1/")
///     .await?;
/// # let _ = rooms;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct RedisLogRegistryBuilder<K> {
    prefix: String,
    log: EventLogBuilder,
    idle: Duration,
    max_keys: usize,
    when_full: WhenFull,
    reader_name: String,
    _key: std::marker::PhantomData<fn(&K)>,
}

impl<K> Clone for RedisLogRegistryBuilder<K> {
    fn clone(&self) -> Self {
        Self {
            prefix: self.prefix.clone(),
            log: self.log.clone(),
            idle: self.idle,
            max_keys: self.max_keys,
            when_full: self.when_full,
            reader_name: self.reader_name.clone(),
            _key: std::marker::PhantomData,
        }
    }
}

impl<K> fmt::Debug for RedisLogRegistryBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLogRegistryBuilder")
            .field("prefix", &self.prefix)
            .field("log", &self.log)
            .field("idle", &self.idle)
            .field("max_keys", &self.max_keys)
            .field("when_full", &self.when_full)
            .field("reader_name", &self.reader_name)
            .finish()
    }
}

impl<K> RedisLogRegistryBuilder<K> {
    /// Gives each key's window `template`'s retention and policies; the retention also
    /// trims each key's stream, as [`RedisLogBuilder`](super::RedisLogBuilder) says.
    pub fn log(mut self, template: EventLogBuilder) -> Self {
        self.log = template;
        self
    }

    /// Evicts a key from this node once it has had no subscriber and no publish for `idle`
    /// (default 5 minutes). Eviction is lazy, on a new key, at most every quarter of `idle`;
    /// call [`RedisLogRegistry::sweep`] or spawn [`RedisLogRegistry::sweeper`] for sooner.
    pub fn idle_eviction(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Holds at most `keys` keys on this node (default 10,000); 0 counts as 1.
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.max_keys = keys.max(1);
        self
    }

    /// Sets what a new key gets when the registry is full; see [`WhenFull`].
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Names the reader's connection (`CLIENT SETNAME`; default `tower-sse-reader`), so
    /// that `CLIENT LIST` shows it. Redis refuses names with spaces: `connect` fails then.
    pub fn reader_name(mut self, name: impl Into<String>) -> Self {
        self.reader_name = name.into();
        self
    }

    /// Connects the publishing connection and starts the reader; no key has a log yet.
    ///
    /// # Errors
    ///
    /// When `url` is not a Redis URL, Redis cannot be reached, or the reader's name is not
    /// one Redis takes.
    pub async fn connect(self, url: &str) -> Result<RedisLogRegistry<K>, ConnectError> {
        let client = redis::Client::open(url).map_err(ConnectError::new)?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(25))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(PUBLISH_TIMEOUT));
        let manager = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(ConnectError::new)?;
        // The reader names every connection it makes; a name Redis refuses would fail there
        // forever, so it is checked here, where it can be reported.
        if !is_client_name(&self.reader_name) {
            return Err(ConnectError::new(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a redis client name is printable ASCII without spaces",
            ))));
        }
        let state = Arc::new(ReaderState::default());
        let (topics, reader) = topics::spawn(
            client.clone(),
            manager.clone(),
            self.reader_name,
            state.clone(),
        );
        Ok(RedisLogRegistry {
            shared: Arc::new(Shared {
                map: Mutex::new(Map {
                    slots: HashMap::new(),
                    swept_ms: 0,
                }),
                prefix: self.prefix,
                log: self.log,
                client,
                manager,
                script: script::script(),
                topics,
                reader,
                state,
                idle_ms: millis(self.idle),
                max_keys: self.max_keys,
                when_full: self.when_full,
                epoch: Instant::now(),
                created: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        })
    }
}

/// Whether Redis takes `name` for `CLIENT SETNAME`: empty (no name), or printable ASCII
/// without spaces.
fn is_client_name(name: &str) -> bool {
    name.bytes().all(|byte| (b'!'..=b'~').contains(&byte))
}

/// Gives back a subscriber's count when dropped.
#[derive(Debug)]
struct Hold {
    slot: Arc<Slot>,
    epoch: Instant,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let now = millis(Instant::now().saturating_duration_since(self.epoch));
        // Activity first, so a sweep that sees no subscriber sees this activity.
        self.slot.touch(now);
        self.slot.subscribers.fetch_sub(1, Ordering::Release);
    }
}

/// A stream of one key's events from a [`RedisLogRegistry`]: a [`Subscription`] to the
/// key's log that also counts as the key's subscriber, so the key is not evicted while it
/// lives. Made by [`RedisLogRegistry::subscribe`].
#[must_use = "streams do nothing unless polled"]
pub struct RedisKeySubscription {
    inner: Subscription,
    hold: Hold,
}

impl RedisKeySubscription {
    /// Whether the key's log refused the client's `Last-Event-ID`; see
    /// [`Subscription::is_rejected`].
    pub fn is_rejected(&self) -> bool {
        self.inner.is_rejected()
    }
}

impl Stream for RedisKeySubscription {
    type Item = EncodedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EncodedEvent>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl FusedStream for RedisKeySubscription {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl fmt::Debug for RedisKeySubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKeySubscription")
            .field("inner", &self.inner)
            .field("stream", &self.hold.slot.log.key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_are_printable_ascii_without_spaces() {
        for good in ["", "tower-sse-reader", "node:1/a"] {
            assert!(is_client_name(good), "{good:?}");
        }
        for bad in ["a b", "a\nb", "caf\u{e9}", "\u{7f}"] {
            assert!(!is_client_name(bad), "{bad:?}");
        }
    }
}
