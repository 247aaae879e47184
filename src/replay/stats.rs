//! [`ReplayStats`]: what an [`EventLog`](crate::replay::EventLog) has done so far.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of an [`EventLog`](crate::replay::EventLog), read with
/// [`EventLog::stats`](crate::replay::EventLog::stats).
///
/// All are totals since the log was built, except `live_subscribers`, the number of
/// subscriptions that exist now and have not ended. Each counter is read on its own, so a
/// snapshot taken while the log is busy need not be consistent across fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayStats {
    /// Events published.
    pub published: u64,
    /// Events evicted from the retention window.
    pub evicted: u64,
    /// Events sent to subscriptions that had been published before they subscribed, i.e.
    /// sent to catch up after a reconnect.
    pub replayed: u64,
    /// Gap events sent to subscriptions: for ids they cannot resume from, and under
    /// [`OnLag::SkipAhead`](crate::replay::OnLag::SkipAhead). Gap events a feed published for
    /// its source's losses count in `published`, not here.
    pub gap_events: u64,
    /// Subscriptions ended because they fell behind the window ([`OnLag::Disconnect`]).
    ///
    /// [`OnLag::Disconnect`]: crate::replay::OnLag::Disconnect
    pub lag_disconnects: u64,
    /// Subscriptions refused with [`OnUnknownId::NoContent`].
    ///
    /// [`OnUnknownId::NoContent`]: crate::replay::OnUnknownId::NoContent
    pub rejected: u64,
    /// Subscriptions that exist and have not ended.
    pub live_subscribers: u64,
    /// Events a fed source reported lost before they reached the log (such as a lagging
    /// broadcast receiver; see [`EventLog::feed`](crate::replay::EventLog::feed)). Each loss is
    /// published as one gap event, which `published` counts like any other event.
    pub source_lost: u64,
    /// Numbered items a feed left out because their number was not above the log's last
    /// numeric id (see [`EventLog::feed`](crate::replay::EventLog::feed)).
    pub out_of_order: u64,
}

/// The shared counters behind [`ReplayStats`]; relaxed, as they order nothing.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) published: AtomicU64,
    pub(super) evicted: AtomicU64,
    pub(super) replayed: AtomicU64,
    pub(super) gap_events: AtomicU64,
    pub(super) lag_disconnects: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) live_subscribers: AtomicU64,
    pub(super) source_lost: AtomicU64,
    pub(super) out_of_order: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(super) fn snapshot(&self) -> ReplayStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ReplayStats {
            published: read(&self.published),
            evicted: read(&self.evicted),
            replayed: read(&self.replayed),
            gap_events: read(&self.gap_events),
            lag_disconnects: read(&self.lag_disconnects),
            rejected: read(&self.rejected),
            live_subscribers: read(&self.live_subscribers),
            source_lost: read(&self.source_lost),
            out_of_order: read(&self.out_of_order),
        }
    }
}
