//! [`Subscription`]: one client's stream of frames from an [`EventLog`](crate::EventLog).

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use tokio::time::Instant;

use crate::event::EncodedEvent;

use super::log::{lock, Shared};
use super::policy::{Gap, GapReason, OnLag};
use super::stats::Counters;
use super::store::WireId;

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Start {
    /// At this sequence number; events before `replay_end` (the next sequence number when
    /// it subscribed) count as replayed. Events whose key is at most `floor` are left out.
    At {
        cursor: u64,
        replay_end: u64,
        floor: Option<u128>,
    },
    /// Refused by [`OnUnknownId::NoContent`](crate::OnUnknownId::NoContent).
    Rejected,
}

/// A stream of one client's events from an [`EventLog`](crate::EventLog): the retained
/// events after its `Last-Event-ID`, then new events as they are published.
///
/// Made by [`EventLog::subscribe`](crate::EventLog::subscribe). Its items are
/// [`EncodedEvent`]s framed once at publish time, so [`SseLayer`](crate::SseLayer) sends
/// them without encoding again. It holds only a handle to the log and a cursor; the
/// events themselves stay in the log.
///
/// It ends when it falls behind the retention window under
/// [`OnLag::Disconnect`](crate::OnLag::Disconnect), and at once when it was refused (see
/// [`is_rejected`](Self::is_rejected)); otherwise it waits for events forever. Each poll
/// takes the log's lock once.
#[must_use = "streams do nothing unless polled"]
pub struct Subscription {
    shared: Arc<Shared>,
    /// The sequence number of the next event to send.
    cursor: u64,
    /// Events with a key up to this were seen by the client elsewhere: on another node
    /// whose reader was ahead of this one's. Cleared once an event above it is retained.
    floor: Option<u128>,
    /// This subscription's waker slot in the log, once it has waited.
    slot: Option<usize>,
    /// Sent before anything else.
    gap: Option<Gap>,
    phase: Phase,
    replay_end: u64,
    /// Replayed events not yet added to the shared counter, which is touched once per
    /// catch-up rather than once per event.
    replayed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Reading,
    Ended,
    Rejected,
}

enum Step {
    Send(EncodedEvent),
    Wait,
    /// Skip ahead to `first`, the oldest retained event; `id` is the one before it.
    SkipAhead {
        first: u64,
        id: WireId,
    },
    Disconnect {
        first: u64,
    },
}

impl Subscription {
    pub(super) fn new(shared: Arc<Shared>, start: Start, gap: Option<Gap>) -> Self {
        let (phase, cursor, replay_end, floor) = match start {
            Start::At {
                cursor,
                replay_end,
                floor,
            } => {
                Counters::add(&shared.counters.live_subscribers, 1);
                (Phase::Reading, cursor, replay_end, floor)
            }
            Start::Rejected => {
                Counters::add(&shared.counters.rejected, 1);
                tracing::debug!("sse replay refused an unknown Last-Event-ID");
                (Phase::Rejected, 0, 0, None)
            }
        };
        Self {
            shared,
            cursor,
            floor,
            slot: None,
            gap,
            phase,
            replay_end,
            replayed: 0,
        }
    }

    /// Whether the log refused the client's `Last-Event-ID` under
    /// [`OnUnknownId::NoContent`](crate::OnUnknownId::NoContent): the stream is empty, and
    /// the response should be `204 No Content` so that `EventSource` stops reconnecting.
    pub fn is_rejected(&self) -> bool {
        self.phase == Phase::Rejected
    }

    fn send_gap(&mut self, gap: Gap) -> EncodedEvent {
        Counters::add(&self.shared.counters.gap_signals, 1);
        tracing::debug!(
            reason = gap.reason.as_str(),
            resume_from = gap.resume_from,
            "sse replay gap signalled"
        );
        gap.frame
    }

    fn end(&mut self) {
        if self.phase == Phase::Reading {
            self.phase = Phase::Ended;
            self.shared
                .counters
                .live_subscribers
                .fetch_sub(1, Ordering::Relaxed);
        }
        self.flush_replayed();
    }

    fn flush_replayed(&mut self) {
        Counters::add(
            &self.shared.counters.replayed,
            std::mem::take(&mut self.replayed),
        );
    }

    fn step(&mut self, cx: &Context<'_>) -> Step {
        let shared = &*self.shared;
        let config = &shared.config;
        let now = config.limits.max_age.map(|_| Instant::now());
        let mut replaced = None;
        let (step, evicted) = {
            let mut state = lock(&shared.state);
            // Only age can have changed the window since the last publish.
            let evicted = match now {
                Some(now) => state.store.evict(&config.limits, Some(now)),
                None => 0,
            };
            if let Some(floor) = self.floor {
                let after = state.store.seq_after(floor);
                self.cursor = self.cursor.max(after);
                // Every later event has a larger key: the floor has done its work.
                if after < state.store.next_seq() {
                    self.floor = None;
                }
            }
            let first = state.store.first_seq();
            let step = if self.cursor < first {
                match config.on_lag {
                    OnLag::Disconnect => Step::Disconnect { first },
                    OnLag::SkipAhead => Step::SkipAhead {
                        first,
                        id: state.store.wire_id(first - 1),
                    },
                }
            } else if let Some((_, frame)) = state.store.get(self.cursor) {
                Step::Send(frame.clone())
            } else {
                // Registered under the same lock that saw no event at the cursor, so a
                // publish cannot slip in between the check and the registration.
                replaced = state.waiters.register(&mut self.slot, cx.waker());
                Step::Wait
            };
            (step, evicted)
        };
        drop(replaced);
        Counters::add(&shared.counters.evicted, evicted);
        step
    }
}

impl Stream for Subscription {
    type Item = EncodedEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EncodedEvent>> {
        let this = self.get_mut();
        if this.phase != Phase::Reading {
            return Poll::Ready(None);
        }
        if let Some(gap) = this.gap.take() {
            return Poll::Ready(Some(this.send_gap(gap)));
        }
        match this.step(cx) {
            Step::Send(frame) => {
                let seq = this.cursor;
                this.cursor += 1;
                if seq < this.replay_end {
                    this.replayed += 1;
                    if this.cursor == this.replay_end {
                        this.flush_replayed();
                    }
                }
                Poll::Ready(Some(frame))
            }
            Step::Wait => Poll::Pending,
            Step::SkipAhead { first, id } => {
                this.cursor = first;
                let gap = Gap::new(&this.shared.config.gap, id, GapReason::Lagged, first);
                Poll::Ready(Some(this.send_gap(gap)))
            }
            Step::Disconnect { first } => {
                Counters::add(&this.shared.counters.lag_disconnects, 1);
                tracing::debug!(
                    cursor = this.cursor,
                    oldest = first,
                    "sse subscriber fell behind the replay window, disconnecting"
                );
                this.end();
                Poll::Ready(None)
            }
        }
    }

    /// At least the pending gap event; no upper bound while it reads, as the log may
    /// grow, and no more lower bound than that, as eviction may end or skip the stream.
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.phase {
            Phase::Reading => (usize::from(self.gap.is_some()), None),
            Phase::Ended | Phase::Rejected => (0, Some(0)),
        }
    }
}

impl FusedStream for Subscription {
    fn is_terminated(&self) -> bool {
        self.phase != Phase::Reading
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let waker = lock(&self.shared.state).waiters.release(slot);
            drop(waker);
        }
        self.end();
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("cursor", &self.cursor)
            .field("phase", &self.phase)
            .field("gap_pending", &self.gap.is_some())
            .finish_non_exhaustive()
    }
}
