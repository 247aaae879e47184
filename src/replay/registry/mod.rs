//! [`LogRegistry`]: one [`EventLog`] per key (a chat room, a user, a document), made on
//! first use, evicted when idle, with a bound on the number of keys.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | [`LogRegistry`]: the sharded map, publish, subscribe, eviction |
//! | `builder.rs` | [`LogRegistryBuilder`], [`WhenFull`] |
//! | `slot.rs` | one key's log with its subscriber count and last activity; the clock |
//! | `subscription.rs` | [`KeySubscription`]: a subscription that holds its key |
//! | `stats.rs` | [`RegistryStats`], [`KeyStats`] |
//! | `error.rs` | [`RegistryFull`] |

mod builder;
mod error;
mod slot;
mod stats;
mod subscription;

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{Response, StatusCode};

use crate::event::Event;
use crate::last_event_id::LastEventId;
use crate::maybe_stream::MaybeStream;
use crate::replay::EventLog;

use self::builder::MakeLog;
use self::slot::{millis, Clock, Slot};

pub use self::builder::{LogRegistryBuilder, WhenFull};
pub use self::error::RegistryFull;
pub use self::stats::{KeyStats, RegistryStats};
pub use self::subscription::KeySubscription;

/// A log per key: rooms, users, documents. Each key gets its own [`EventLog`] (its own
/// window, its own ids) the first time it is published or subscribed to, with the
/// registry's retention settings.
///
/// - **Eviction.** A key's log is evicted once it has had no subscriber and no publish for
///   the idle time ([`idle_eviction`](LogRegistryBuilder::idle_eviction)); its history
///   goes with it. A live [`KeySubscription`] keeps its key. The key's next log gives ids
///   of its own, which never meet the evicted log's: a client that resumes with an id of
///   the evicted log gets the new log's [`OnUnknownId`](crate::replay::OnUnknownId) answer
///   (by default the gap event, then what the log holds), never a resume at a
///   like-numbered event.
/// - **Bound.** At most [`max_keys`](LogRegistryBuilder::max_keys) keys; a new key beyond
///   that is refused ([`RegistryFull`]) or takes the place of the idlest key without a
///   subscriber, as [`WhenFull`] says. Keys that exist are never refused.
/// - **Who creates keys.** Publishing and subscribing both make a missing key's log, under
///   the bound: a room is open before its first message, and a client's `GET` of any key
///   costs at most one key's memory (about 600 bytes with the default retention, see
///   BENCHMARKS.md), for at most the idle time, within `max_keys`. An application whose
///   keys exist elsewhere (documents in a database) checks the key before subscribing.
/// - **Concurrency.** Keys are spread over shards, each behind its own lock, held only to
///   find or make the key's log: the publish itself runs on the log, outside it. Publishers
///   to different keys seldom meet.
///
/// `LogRegistry` is a cheap handle: clones share the same keys.
///
/// # Example
///
/// ```
/// use futures_util::StreamExt;
/// use tower_sse::replay::LogRegistry;
/// use tower_sse::{Event, LastEventId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_sse::replay::RegistryFull> {
/// let rooms = LogRegistry::<String>::new();
/// let first = rooms.publish("kitchen", Event::new().data("who took the milk?"))?;
/// rooms.publish("garden", Event::new().data("tomatoes are ripe"))?;
/// rooms.publish("kitchen", Event::new().data("me"))?;
///
/// // A client of the kitchen that saw the first message reconnects: it gets the second.
/// let mut kitchen = rooms.subscribe("kitchen", Some(&LastEventId::new(first.to_string())))?;
/// let frame = kitchen.next().await.unwrap();
/// assert!(frame.as_bytes().ends_with(b"data: me\n\n"));
/// assert_eq!(rooms.stats().keys, 2);
/// # Ok(())
/// # }
/// ```
///
/// # Serving it
///
/// [`response`](Self::response) answers a `GET` of one key behind
/// [`SseLayer`](crate::SseLayer): `200 OK` with the key's events, `204 No Content` when the
/// log refused the client's `Last-Event-ID`, `503 Service Unavailable` when the registry
/// is full.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, StatusCode};
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_sse::replay::LogRegistry;
/// use tower_sse::{LastEventId, SseLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let rooms = LogRegistry::<String>::builder().max_keys(1).build();
/// let service = ServiceBuilder::new().layer(SseLayer::new()).service_fn({
///     let rooms = rooms.clone();
///     move |req: Request<()>| {
///         let room = req.uri().path().trim_start_matches("/chat/");
///         let response = rooms.response(room, req.extensions().get::<LastEventId>());
///         async move { Ok::<_, Infallible>(response) }
///     }
/// });
///
/// let get = |path: &str| Request::get(path).body(()).unwrap();
/// let kitchen = service.clone().oneshot(get("/chat/kitchen")).await.unwrap();
/// assert_eq!(kitchen.status(), StatusCode::OK);
/// // One key at most, and the kitchen has a subscriber: no room for the garden.
/// let garden = service.oneshot(get("/chat/garden")).await.unwrap();
/// assert_eq!(garden.status(), StatusCode::SERVICE_UNAVAILABLE);
/// # }
/// ```
pub struct LogRegistry<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    shards: Box<[Padded<Mutex<Shard<K>>>]>,
    /// Picks a key's shard; each shard's map hashes again with its own state.
    hasher: RandomState,
    make: MakeLog<K>,
    idle_ms: u64,
    max_keys: usize,
    when_full: WhenFull,
    clock: Clock,
    /// Keys over all shards; a new key reserves its place here before it is inserted.
    keys: AtomicUsize,
    created: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
}

/// A shard on cache lines of its own: threads that lock neighbouring shards do not take
/// the line from each other (128 bytes: two lines, for CPUs that fetch lines in pairs).
#[repr(align(128))]
struct Padded<T>(T);

struct Shard<K> {
    map: HashMap<K, Arc<Slot>>,
    /// When this shard was last swept for idle keys, on the registry's clock.
    swept_ms: u64,
}

/// What brings a caller to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Publish,
    Subscribe,
}

/// Locks, recovering from poisoning: the map is never left half updated, as the only user
/// code called under a shard's lock (the log maker) runs before the map changes, and a
/// panic in it gives back the place it took.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K> LogRegistry<K> {
    /// Configures a registry.
    pub fn builder() -> LogRegistryBuilder<K> {
        LogRegistryBuilder::default()
    }

    fn from_parts(
        make: MakeLog<K>,
        idle: Duration,
        max_keys: usize,
        when_full: WhenFull,
        shards: usize,
    ) -> Self {
        let clock = Clock::new();
        let shards = (0..shards)
            .map(|_| {
                Padded(Mutex::new(Shard {
                    map: HashMap::new(),
                    swept_ms: 0,
                }))
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                shards,
                hasher: RandomState::new(),
                make,
                idle_ms: millis(idle),
                max_keys,
                when_full,
                clock,
                keys: AtomicUsize::new(0),
                created: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// The number of keys that have a log now.
    pub fn len(&self) -> usize {
        self.shared.keys.load(Ordering::Relaxed)
    }

    /// Whether no key has a log.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The registry's counters, and its keys and subscribers now. It visits every key, one
    /// shard's lock at a time: call it for metrics, not per request.
    pub fn stats(&self) -> RegistryStats {
        let shared = &*self.shared;
        let subscribers = shared
            .shards
            .iter()
            .map(|shard| {
                lock(&shard.0)
                    .map
                    .values()
                    .map(|slot| slot.subscribers())
                    .sum::<u64>()
            })
            .sum();
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RegistryStats {
            keys: self.len() as u64,
            subscribers,
            created: read(&shared.created),
            evicted: read(&shared.evicted),
            refused: read(&shared.refused),
        }
    }

    /// Evicts every key that has had no subscriber and no publish for the idle time, now.
    /// Returns how many it evicted.
    pub fn sweep(&self) -> usize {
        let now = self.shared.clock.now_ms();
        self.shared
            .shards
            .iter()
            .map(|shard| self.shared.sweep(&mut lock(&shard.0), now))
            .sum()
    }

    /// A task that [`sweep`](Self::sweep)s every `period` (at least 1 ms), until the
    /// registry's last handle is dropped; spawn it to free idle keys' memory without
    /// waiting for the next new key.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_sse::replay::LogRegistry;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let rooms = LogRegistry::<String>::builder()
    ///     .idle_eviction(Duration::from_secs(60))
    ///     .build();
    /// tokio::spawn(rooms.sweeper(Duration::from_secs(15)));
    /// # }
    /// ```
    pub fn sweeper(&self, period: Duration) -> impl Future<Output = ()> + Send + 'static
    where
        K: Send + Sync + 'static,
    {
        sweep_every(Arc::downgrade(&self.shared), period, |shared| {
            LogRegistry { shared }.sweep();
        })
    }
}

impl<K: Hash + Eq> LogRegistry<K> {
    /// A registry with the default settings (see [`LogRegistryBuilder`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Publishes `event` to `key`'s log, making the log if the key has none; returns the
    /// event's id in that log (see [`EventLog::publish`]).
    ///
    /// # Errors
    ///
    /// When the key has no log and the registry has no room for one ([`RegistryFull`]);
    /// nothing is published then.
    pub fn publish<Q>(&self, key: &Q, event: Event) -> Result<u64, RegistryFull>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        Ok(self.slot(key, Use::Publish)?.log.publish(event))
    }

    /// A stream of `key`'s events after `last_event_id`, then of new ones, as
    /// [`EventLog::subscribe`] makes it; makes the key's log if it has none. The key's log
    /// is not evicted while the subscription lives.
    ///
    /// # Errors
    ///
    /// When the key has no log and the registry has no room for one ([`RegistryFull`]).
    pub fn subscribe<Q>(
        &self,
        key: &Q,
        last_event_id: Option<&LastEventId>,
    ) -> Result<KeySubscription, RegistryFull>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let slot = self.slot(key, Use::Subscribe)?;
        let subscription = slot.log.subscribe(last_event_id);
        Ok(KeySubscription::new(subscription, slot, self.shared.clock))
    }

    /// Subscribes, and answers for [`SseLayer`](crate::SseLayer): `200 OK` with the
    /// subscription, `204 No Content` when the key's log refused the `Last-Event-ID` (see
    /// [`EventLog::response`]), `503 Service Unavailable` when the registry is full. The
    /// layer sends any status but 200 with an empty body.
    pub fn response<Q>(
        &self,
        key: &Q,
        last_event_id: Option<&LastEventId>,
    ) -> Response<MaybeStream<KeySubscription>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.subscribe(key, last_event_id) {
            Ok(subscription) => {
                let rejected = subscription.is_rejected();
                let mut response = MaybeStream::response(subscription);
                if rejected {
                    *response.status_mut() = StatusCode::NO_CONTENT;
                }
                response
            }
            Err(RegistryFull { .. }) => MaybeStream::status(StatusCode::SERVICE_UNAVAILABLE),
        }
    }

    /// A handle to `key`'s log, if it has one; makes none.
    ///
    /// Publishing or subscribing through the handle is not activity the registry sees: it
    /// may evict the key while the handle lives, and later uses of the key get a new log.
    /// Use it to read the log's [`stats`](EventLog::stats), or to publish under ids of
    /// your own for as long as the key has a subscriber.
    pub fn get<Q>(&self, key: &Q) -> Option<EventLog>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = lock(self.shared.shard(key));
        shard.map.get(key).map(|slot| slot.log.clone())
    }

    /// Whether `key` has a log now.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(self.shared.shard(key)).map.contains_key(key)
    }

    /// `key`'s log's counters, subscribers and last activity, if it has a log; makes none.
    pub fn key_stats<Q>(&self, key: &Q) -> Option<KeyStats>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = lock(self.shared.shard(key)).map.get(key)?.clone();
        Some(KeyStats {
            replay: slot.log.stats(),
            subscribers: slot.subscribers(),
            last_activity: self.shared.clock.instant(slot.last_activity_ms()),
        })
    }

    /// `key`'s slot, made if it has none and there is room; touched (and, for a
    /// subscriber, counted) under the shard's lock, so no sweep can evict it in between.
    fn slot<Q>(&self, key: &Q, by: Use) -> Result<Arc<Slot>, RegistryFull>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let shared = &*self.shared;
        let home = shared.shard_index(key);
        // Read before the lock, to keep the clock out of the critical section.
        let now = shared.clock.now_ms();
        // Twice at most: the second time after a full registry swept (or, evicting the
        // idlest, evicted from) the other shards.
        for attempt in 0..2 {
            let mut shard = lock(&shared.shards[home].0);
            if let Some(slot) = shard.map.get(key) {
                match by {
                    Use::Publish => slot.touch(now),
                    Use::Subscribe => slot.subscribed(now),
                }
                return Ok(slot.clone());
            }
            if now.saturating_sub(shard.swept_ms) >= shared.idle_ms / 4 {
                shared.sweep(&mut shard, now);
            }
            let admitted = shared.reserve()
                || (shared.when_full == WhenFull::EvictIdlest
                    && shared.evict_idlest(&mut shard)
                    && shared.reserve());
            if admitted {
                // Should the log maker (user code) panic, the place goes back.
                let place = Place(&shared.keys);
                let key = key.to_owned();
                let slot = Arc::new(Slot::new(shared.make.make(&key), now));
                std::mem::forget(place);
                if by == Use::Subscribe {
                    slot.subscribed(now);
                }
                shard.map.insert(key, slot.clone());
                shared.created.fetch_add(1, Ordering::Relaxed);
                return Ok(slot);
            }
            drop(shard);
            if attempt == 0 && !shared.make_room(home, now) {
                break;
            }
        }
        shared.refused.fetch_add(1, Ordering::Relaxed);
        Err(RegistryFull {
            max_keys: shared.max_keys,
        })
    }
}

impl<K: Hash + Eq> Shared<K> {
    fn shard_index<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // The shard count is a power of two: the low bits of the hash pick one.
        (self.hasher.hash_one(key) as usize) & (self.shards.len() - 1)
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &Mutex<Shard<K>> {
        &self.shards[self.shard_index(key)].0
    }
}

/// A place taken for a new key, given back if dropped before the key is in the map.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<K> Shared<K> {
    /// Takes a place for a new key, if there is one.
    fn reserve(&self) -> bool {
        self.keys
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |keys| {
                (keys < self.max_keys).then_some(keys + 1)
            })
            .is_ok()
    }

    fn evicted(&self, n: usize) {
        if n > 0 {
            self.keys.fetch_sub(n, Ordering::Relaxed);
            self.evicted.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Evicts the shard's idle keys; returns how many.
    fn sweep(&self, shard: &mut Shard<K>, now: u64) -> usize {
        let before = shard.map.len();
        shard.map.retain(|_, slot| !slot.is_idle(now, self.idle_ms));
        shard.swept_ms = now;
        let evicted = before - shard.map.len();
        self.evicted(evicted);
        evicted
    }

    /// Evicts the shard's key that has gone longest without activity and has no
    /// subscriber, if it has one.
    fn evict_idlest(&self, shard: &mut Shard<K>) -> bool
    where
        K: Hash + Eq,
    {
        let Some(idlest) = shard
            .map
            .values()
            .filter(|slot| slot.subscribers() == 0)
            .min_by_key(|slot| slot.last_activity_ms())
            .cloned()
        else {
            return false;
        };
        shard.map.retain(|_, slot| !Arc::ptr_eq(slot, &idlest));
        self.evicted(1);
        true
    }

    /// Frees a place for a new key of shard `home` from the other shards, taking one lock
    /// at a time: sweeps those due, then (evicting the idlest) evicts one. Returns whether
    /// a place may be free now.
    fn make_room(&self, home: usize, now: u64) -> bool
    where
        K: Hash + Eq,
    {
        let others = || (0..self.shards.len()).filter(move |&index| index != home);
        let mut swept = 0;
        for index in others() {
            let mut shard = lock(&self.shards[index].0);
            if now.saturating_sub(shard.swept_ms) >= self.idle_ms / 4 {
                swept += self.sweep(&mut shard, now);
            }
        }
        if swept > 0 {
            return true;
        }
        self.when_full == WhenFull::EvictIdlest
            && others().any(|index| self.evict_idlest(&mut lock(&self.shards[index].0)))
    }
}

impl<K: Hash + Eq> Default for LogRegistry<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> Clone for LogRegistry<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K> fmt::Debug for LogRegistry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        f.debug_struct("LogRegistry")
            .field("keys", &self.len())
            .field("max_keys", &shared.max_keys)
            .field("when_full", &shared.when_full)
            .field("idle_ms", &shared.idle_ms)
            .field("shards", &shared.shards.len())
            .field("make", &shared.make)
            .finish_non_exhaustive()
    }
}

/// Runs `sweep` every `period` (at least 1 ms) while the registry behind `shared` lives:
/// the sweeper of [`LogRegistry`] and of the Redis registry.
pub(super) fn sweep_every<S>(
    shared: std::sync::Weak<S>,
    period: Duration,
    sweep: impl Fn(Arc<S>) + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Send + Sync + 'static,
{
    let period = period.max(Duration::from_millis(1));
    async move {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match shared.upgrade() {
                Some(shared) => sweep(shared),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_a_power_of_two_on_lines_of_their_own() {
        let shards = |n| {
            LogRegistry::<u8>::builder()
                .shards(n)
                .build()
                .shared
                .shards
                .len()
        };
        assert_eq!([0, 1, 3, 16, 17, 5000].map(shards), [1, 1, 4, 16, 32, 1024]);
        let default = LogRegistry::<u8>::new().shared.shards.len();
        assert!(default.is_power_of_two() && default >= 4, "{default}");
        assert_eq!(std::mem::align_of::<Padded<Mutex<Shard<u8>>>>(), 128);
    }

    #[test]
    fn max_keys_of_zero_holds_one() {
        let rooms = LogRegistry::<u8>::builder().max_keys(0).build();
        assert!(rooms.publish(&1, Event::new()).is_ok());
        assert_eq!(rooms.publish(&2, Event::new()).unwrap_err().max_keys, 1);
    }

    #[test]
    fn a_key_in_use_is_found_by_its_borrowed_form() {
        let rooms = LogRegistry::<String>::new();
        let owned = String::from("a");
        rooms.publish(&owned, Event::new()).unwrap();
        rooms.publish("a", Event::new()).unwrap();
        assert_eq!(rooms.len(), 1);
        assert_eq!(rooms.get("a").unwrap().stats().published, 2);
    }

    #[test]
    fn a_panicking_log_maker_gives_its_place_back() {
        let rooms = LogRegistry::<u8>::builder()
            .max_keys(1)
            .make_log(|&key| {
                assert!(key != 0, "no log for 0");
                EventLog::new()
            })
            .build();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rooms.publish(&0, Event::new())
        }));
        assert!(panicked.is_err());
        assert!(rooms.is_empty());
        rooms.publish(&1, Event::new()).unwrap();
        assert_eq!(rooms.len(), 1);
    }

    #[test]
    fn an_idle_time_beyond_the_clock_never_evicts() {
        let rooms = LogRegistry::<u8>::builder()
            .idle_eviction(Duration::MAX)
            .build();
        rooms.publish(&1, Event::new()).unwrap();
        assert_eq!(rooms.shared.idle_ms, u64::MAX);
        assert_eq!(rooms.sweep(), 0);
    }
}
