//! [`LogRegistryBuilder`]: how a registry makes each key's log, when it evicts one, and how
//! many keys it holds ([`WhenFull`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::replay::{EventLog, EventLogBuilder};

use super::LogRegistry;

const DEFAULT_IDLE: Duration = Duration::from_secs(300);
const DEFAULT_MAX_KEYS: usize = 10_000;
const MAX_SHARDS: usize = 1024;

/// What a [`LogRegistry`] does with a new key when it already holds `max_keys` keys.
///
/// Either way a key that has a subscriber is never evicted: its clients would stay on a log
/// nothing publishes to any more. Keys idle for the idle time are evicted first in both
/// cases, so "full" means full of keys that were used within the idle time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenFull {
    /// Refuse the new key with [`RegistryFull`](super::RegistryFull) (the default): the
    /// keys in use keep their history, and newcomers wait for an eviction.
    #[default]
    Refuse,
    /// Evict the key that has had no subscriber and no publish for the longest time, and
    /// refuse only when every key has a subscriber. New keys always find room, at the cost
    /// of the history of the least recently used one.
    ///
    /// "Longest" is looked for in the new key's shard first (one lock, a fraction of the
    /// keys), and in the other shards, one at a time, only when that one has no key without
    /// a subscriber: an approximation of the idlest of all that costs `max_keys / shards`
    /// per new key rather than `max_keys`. With [`shards(1)`](LogRegistryBuilder::shards)
    /// it is exact.
    EvictIdlest,
}

/// How each key's log is made.
pub(super) enum MakeLog<K> {
    Template(EventLogBuilder),
    Custom(Arc<dyn Fn(&K) -> EventLog + Send + Sync>),
}

impl<K> MakeLog<K> {
    pub(super) fn make(&self, key: &K) -> EventLog {
        match self {
            Self::Template(builder) => builder.clone().build(),
            Self::Custom(make) => make(key),
        }
    }
}

impl<K> Clone for MakeLog<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Template(builder) => Self::Template(builder.clone()),
            Self::Custom(make) => Self::Custom(make.clone()),
        }
    }
}

impl<K> fmt::Debug for MakeLog<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Template(builder) => f.debug_tuple("Template").field(builder).finish(),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Configures a [`LogRegistry`]: the retention of each key's log, the idle time after
/// which a key's log is evicted, and the bound on keys.
///
/// Defaults: each key's log as [`EventLog::new`] makes it, eviction after 5 minutes with no
/// subscriber and no publish, at most 10,000 keys, [`WhenFull::Refuse`], and as many shards
/// as the next power of two of four times the available cores.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse::replay::{EventLog, LogRegistry, WhenFull};
///
/// let rooms: LogRegistry<String> = LogRegistry::builder()
///     .log(EventLog::builder().max_events(100).max_age(Duration::from_secs(3600)))
///     .idle_eviction(Duration::from_secs(60))
///     .max_keys(1_000)
///     .when_full(WhenFull::EvictIdlest)
///     .build();
/// assert!(rooms.is_empty());
/// ```
#[must_use]
pub struct LogRegistryBuilder<K> {
    make: MakeLog<K>,
    idle: Duration,
    max_keys: usize,
    when_full: WhenFull,
    shards: Option<usize>,
}

impl<K> Default for LogRegistryBuilder<K> {
    fn default() -> Self {
        Self {
            make: MakeLog::Template(EventLog::builder()),
            idle: DEFAULT_IDLE,
            max_keys: DEFAULT_MAX_KEYS,
            when_full: WhenFull::default(),
            shards: None,
        }
    }
}

impl<K> Clone for LogRegistryBuilder<K> {
    fn clone(&self) -> Self {
        Self {
            make: self.make.clone(),
            idle: self.idle,
            max_keys: self.max_keys,
            when_full: self.when_full,
            shards: self.shards,
        }
    }
}

impl<K> fmt::Debug for LogRegistryBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogRegistryBuilder")
            .field("make", &self.make)
            .field("idle", &self.idle)
            .field("max_keys", &self.max_keys)
            .field("when_full", &self.when_full)
            .field("shards", &self.shards)
            .finish()
    }
}

impl<K> LogRegistryBuilder<K> {
    /// Makes each key's log with `template`'s retention and policies; every key gets a log
    /// of its own, with its own ids.
    pub fn log(mut self, template: EventLogBuilder) -> Self {
        self.make = MakeLog::Template(template);
        self
    }

    /// Makes each key's log with `make`, for logs that differ by key. It is called under
    /// the lock of the key's shard, once per log made, so it should be quick.
    ///
    /// ```
    /// use tower_sse::replay::{EventLog, LogRegistry};
    ///
    /// // The lobby keeps more history than the other rooms.
    /// let rooms = LogRegistry::<String>::builder()
    ///     .make_log(|room: &String| {
    ///         let events = if room == "lobby" { 1_000 } else { 50 };
    ///         EventLog::builder().max_events(events).build()
    ///     })
    ///     .build();
    /// # let _ = rooms;
    /// ```
    pub fn make_log<F>(mut self, make: F) -> Self
    where
        F: Fn(&K) -> EventLog + Send + Sync + 'static,
    {
        self.make = MakeLog::Custom(Arc::new(make));
        self
    }

    /// Evicts a key's log once it has had no subscriber and no publish for `idle` (default
    /// 5 minutes). Its history goes with it; the next use of the key makes a new log.
    ///
    /// Eviction is lazy: a new key sweeps its shard, at most every quarter of `idle`, and a
    /// full registry sweeps every shard before refusing. Call
    /// [`LogRegistry::sweep`] or spawn [`LogRegistry::sweeper`] to free memory sooner.
    pub fn idle_eviction(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Holds at most `keys` keys (default 10,000); 0 counts as 1. What a new key gets once
    /// they are all taken is [`when_full`](Self::when_full)'s to say.
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.max_keys = keys.max(1);
        self
    }

    /// Sets what a new key gets when the registry is full; see [`WhenFull`].
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Splits the keys over `shards` locks (rounded up to a power of two, at most 1024),
    /// so that publishers to different keys seldom wait for each other.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.clamp(1, MAX_SHARDS).next_power_of_two());
        self
    }

    /// Builds the registry, empty.
    pub fn build(self) -> LogRegistry<K> {
        let shards = self.shards.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            cores
                .saturating_mul(4)
                .clamp(1, MAX_SHARDS)
                .next_power_of_two()
        });
        LogRegistry::from_parts(self.make, self.idle, self.max_keys, self.when_full, shards)
    }
}
