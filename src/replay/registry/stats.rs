//! [`RegistryStats`] and [`KeyStats`]: what a [`LogRegistry`](super::LogRegistry) holds
//! and has done, as a whole and per key.

use tokio::time::Instant;

use crate::replay::ReplayStats;

/// Counters of a [`LogRegistry`](super::LogRegistry), read with
/// [`LogRegistry::stats`](super::LogRegistry::stats).
///
/// `keys` and `subscribers` are what exists now; the others are totals since the registry
/// was built. The snapshot reads one shard at a time, so while the registry is busy it need
/// not be consistent across shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryStats {
    /// Keys that have a log now.
    pub keys: u64,
    /// Subscriptions made through the registry that have not been dropped, over all keys.
    pub subscribers: u64,
    /// Logs made, one per key on its first use (again after an eviction).
    pub created: u64,
    /// Logs evicted: idle for the idle time, or the idlest when a new key needed room.
    pub evicted: u64,
    /// New keys refused with [`RegistryFull`](super::RegistryFull).
    pub refused: u64,
}

/// What one key's log holds and has done, read with
/// [`LogRegistry::key_stats`](super::LogRegistry::key_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// The counters of the key's [`EventLog`](crate::replay::EventLog).
    pub replay: ReplayStats,
    /// Subscriptions made through the registry that have not been dropped.
    pub subscribers: u64,
    /// The last publish, subscribe or dropped subscription, to the millisecond: the idle
    /// time counts from here.
    pub last_activity: Instant,
}
