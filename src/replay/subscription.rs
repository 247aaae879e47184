//! [`Subscription`]: one client's stream of frames from an [`EventLog`](crate::replay::EventLog).

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use crate::event::EncodedEvent;

use super::policy::{Gap, GapReason, OnLag};
use super::stats::Counters;
use super::store::MemoryStore;
use super::window::{Cursor, Read, Resume, Start, Window};

/// A stream of one client's events from an [`EventLog`](crate::replay::EventLog): the retained
/// events after its `Last-Event-ID`, then new events as they are published.
///
/// Made by [`EventLog::subscribe`](crate::replay::EventLog::subscribe). Its items are
/// [`EncodedEvent`]s framed once at publish time, so [`SseLayer`](crate::SseLayer) sends
/// them without encoding again. It holds only a handle to the log's window and a cursor;
/// the events themselves stay in the window.
///
/// It ends when it falls behind the retention window under
/// [`OnLag::Disconnect`](crate::replay::OnLag::Disconnect), and at once when it was refused (see
/// [`is_rejected`](Self::is_rejected)); otherwise it waits for events forever, also after
/// every [`EventLog`](crate::replay::EventLog) handle is gone (it keeps the window, so it still
/// sends what is retained). Each poll takes the window's lock once.
#[must_use = "streams do nothing unless polled"]
pub struct Subscription {
    window: Arc<Window>,
    cursor: Cursor,
    /// Sent before anything else.
    gap: Option<Gap>,
    state: SubscriptionState,
    replay_end: u64,
    /// Replayed events not yet added to the shared counter, which is touched once per
    /// catch-up rather than once per event.
    replayed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubscriptionState {
    Reading,
    Ended,
    Rejected,
}

impl Subscription {
    /// Subscribes to `window` where `resolve` places the client; see [`Window::start`].
    pub(super) fn start(window: Arc<Window>, resolve: impl FnOnce(&MemoryStore) -> Resume) -> Self {
        let (start, gap) = window.start(resolve);
        let counters = window.counters();
        let (state, cursor, replay_end) = match start {
            Start::At { cursor, replay_end } => {
                Counters::add(&counters.live_subscribers, 1);
                (SubscriptionState::Reading, cursor, replay_end)
            }
            Start::Rejected => {
                Counters::add(&counters.rejected, 1);
                tracing::debug!("sse replay refused an unknown Last-Event-ID");
                let cursor = Cursor {
                    next: 0,
                    floor: None,
                    slot: None,
                };
                (SubscriptionState::Rejected, cursor, 0)
            }
        };
        Self {
            window,
            cursor,
            gap,
            state,
            replay_end,
            replayed: 0,
        }
    }

    /// Whether the log refused the client's `Last-Event-ID` under
    /// [`OnUnknownId::NoContent`](crate::replay::OnUnknownId::NoContent): the stream is empty, and
    /// the response should be `204 No Content` so that `EventSource` stops reconnecting.
    pub fn is_rejected(&self) -> bool {
        self.state == SubscriptionState::Rejected
    }

    fn send_gap(&mut self, gap: Gap) -> EncodedEvent {
        Counters::add(&self.window.counters().gap_events, 1);
        tracing::debug!(
            reason = gap.reason.as_str(),
            resume_from = gap.resume_from,
            "sse replay sent a gap event"
        );
        gap.frame
    }

    fn end(&mut self) {
        if self.state == SubscriptionState::Reading {
            self.state = SubscriptionState::Ended;
            self.window
                .counters()
                .live_subscribers
                .fetch_sub(1, Ordering::Relaxed);
        }
        self.flush_replayed();
    }

    fn flush_replayed(&mut self) {
        Counters::add(
            &self.window.counters().replayed,
            std::mem::take(&mut self.replayed),
        );
    }
}

impl Stream for Subscription {
    type Item = EncodedEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EncodedEvent>> {
        let this = self.get_mut();
        if this.state != SubscriptionState::Reading {
            return Poll::Ready(None);
        }
        if let Some(gap) = this.gap.take() {
            return Poll::Ready(Some(this.send_gap(gap)));
        }
        match this.window.read(&mut this.cursor, cx.waker()) {
            Read::Frame(frame) => {
                let seq = this.cursor.next;
                this.cursor.next += 1;
                if seq < this.replay_end {
                    this.replayed += 1;
                    if this.cursor.next == this.replay_end {
                        this.flush_replayed();
                    }
                }
                Poll::Ready(Some(frame))
            }
            Read::Wait => Poll::Pending,
            Read::Behind { first, id } => match this.window.config().on_lag {
                OnLag::SkipAhead => {
                    this.cursor.next = first;
                    let gap = Gap::new(&this.window.config().gap, id, GapReason::Lagged, first);
                    Poll::Ready(Some(this.send_gap(gap)))
                }
                OnLag::Disconnect => {
                    Counters::add(&this.window.counters().lag_disconnects, 1);
                    tracing::debug!(
                        cursor = this.cursor.next,
                        oldest = first,
                        "sse subscriber fell behind the replay window, disconnecting"
                    );
                    this.end();
                    Poll::Ready(None)
                }
            },
        }
    }

    /// At least the pending gap event; no upper bound while it reads, as the log may
    /// grow, and no more lower bound than that, as eviction may end the stream or move it ahead.
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.state {
            SubscriptionState::Reading => (usize::from(self.gap.is_some()), None),
            SubscriptionState::Ended | SubscriptionState::Rejected => (0, Some(0)),
        }
    }
}

impl FusedStream for Subscription {
    fn is_terminated(&self) -> bool {
        self.state != SubscriptionState::Reading
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(slot) = self.cursor.slot.take() {
            self.window.release(slot);
        }
        self.end();
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("cursor", &self.cursor.next)
            .field("state", &self.state)
            .field("gap_pending", &self.gap.is_some())
            .finish_non_exhaustive()
    }
}
