//! [`Slot`]: one key's log with its subscriber count and last activity, shared by the
//! registry's map and the key's subscriptions; [`Clock`], the coarse clock it reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::replay::EventLog;

/// Milliseconds since the registry was built, read from tokio's clock (so a paused test
/// clock drives eviction). A `u64` of milliseconds fits in an atomic, which an `Instant`
/// does not.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(super) fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        millis(Instant::now().saturating_duration_since(self.epoch))
    }

    pub(super) fn instant(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }
}

/// A duration in whole milliseconds, saturating (after 584 million years).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// One key's log and what decides when it may be evicted.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) log: EventLog,
    /// Live [`KeySubscription`](super::KeySubscription)s. Raised under the shard's lock, so
    /// a sweep (which holds it too) never evicts a log someone is subscribing to.
    subscribers: AtomicU64,
    /// Milliseconds on the registry's [`Clock`] of the last publish, subscribe or dropped
    /// subscription. The clock itself is the registry's and each subscription's, not
    /// every key's.
    last_activity: AtomicU64,
}

impl Slot {
    pub(super) fn new(log: EventLog, now_ms: u64) -> Self {
        Self {
            log,
            subscribers: AtomicU64::new(0),
            last_activity: AtomicU64::new(now_ms),
        }
    }

    /// Records activity at `now_ms`; a caller that read the clock earlier than another
    /// does not move the activity back.
    pub(super) fn touch(&self, now_ms: u64) {
        self.last_activity.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Called under the shard's lock.
    pub(super) fn subscribed(&self, now_ms: u64) {
        self.touch(now_ms);
        self.subscribers.fetch_add(1, Ordering::Relaxed);
    }

    /// Called without the lock, when a subscription is dropped: the activity is stored
    /// before the count falls, so a sweep that reads no subscribers reads this activity.
    pub(super) fn unsubscribed(&self, now_ms: u64) {
        self.touch(now_ms);
        self.subscribers.fetch_sub(1, Ordering::Release);
    }

    pub(super) fn subscribers(&self) -> u64 {
        self.subscribers.load(Ordering::Acquire)
    }

    pub(super) fn last_activity_ms(&self) -> u64 {
        self.last_activity.load(Ordering::Relaxed)
    }

    /// Whether nothing holds the log and it has been idle for `idle_ms` at `now_ms`.
    pub(super) fn is_idle(&self, now_ms: u64, idle_ms: u64) -> bool {
        self.subscribers() == 0 && now_ms.saturating_sub(self.last_activity_ms()) >= idle_ms
    }
}
