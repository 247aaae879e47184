//! [`EventLog::feed`]: a log driven by any `Stream`, with lag at the source made a gap
//! event instead of a silent loss.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use pin_project_lite::pin_project;
use tokio::sync::oneshot;

use crate::event::Event;

use super::log::{EventLog, WeakLog};

/// Items read from the source in one poll at most, so that a source that is always ready
/// does not hold its task's thread.
const BUDGET: usize = 64;

/// One item of a log's source, as [`EventLog::feed`] publishes it.
///
/// Sources rarely build it by name: a stream of [`Event`]s, of `(u64, Event)` pairs or of
/// `Result<_, Lagged>` converts to it (as does tokio-stream's `BroadcastStream` item with
/// the `tokio-stream` feature).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FeedItem {
    /// Published with the log's next id, as by [`EventLog::publish`].
    Event(Event),
    /// Published under the source's own numeric id, as by
    /// [`EventLog::publish_with_u64_id`].
    Numbered(u64, Event),
    /// The source lost this many events: the log publishes a gap event in their place.
    Lagged(Lagged),
}

impl From<Event> for FeedItem {
    fn from(event: Event) -> Self {
        Self::Event(event)
    }
}

impl From<(u64, Event)> for FeedItem {
    fn from((id, event): (u64, Event)) -> Self {
        Self::Numbered(id, event)
    }
}

impl From<Lagged> for FeedItem {
    fn from(lagged: Lagged) -> Self {
        Self::Lagged(lagged)
    }
}

/// `Ok` items publish, `Err` ones are a loss at the source.
impl<T, E> From<Result<T, E>> for FeedItem
where
    T: Into<FeedItem>,
    E: Into<Lagged>,
{
    fn from(item: Result<T, E>) -> Self {
        match item {
            Ok(item) => item.into(),
            Err(lagged) => Self::Lagged(lagged.into()),
        }
    }
}

/// A source lost events before they reached the log, such as a broadcast receiver that
/// fell behind its channel: `Err(Lagged::new(n))` in a feed's source.
///
/// With the `tokio-stream` feature, tokio-stream's `BroadcastStreamRecvError` converts to
/// it, so a `BroadcastStream<Event>` feeds a log as it is. Without it, map the error:
/// `.map(|item| item.map_err(|BroadcastStreamRecvError::Lagged(n)| Lagged::new(n)))`.
///
/// # Example
///
/// ```
/// use futures_util::{stream, StreamExt};
/// use tower_sse::{replay::{EventLog, Lagged}, Event};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = EventLog::new();
/// let mut events = log.subscribe(None);
/// let source = stream::iter([Ok(Event::new().data("a")), Err(Lagged::new(3))]);
/// log.feed(source).await;
///
/// assert!(events.next().await.unwrap().as_bytes().ends_with(b"\ndata: a\n\n"));
/// // Subscribers read of the loss where it happened, as the log's second event.
/// let gap = events.next().await.unwrap();
/// assert!(gap.as_bytes().ends_with(
///     b"\nevent: reset\ndata: {\"reason\":\"source_lagged\",\"missed\":3,\"resume_from\":3}\n\n"
/// ));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged {
    missed: u64,
}

impl Lagged {
    /// `missed` events were lost.
    pub fn new(missed: u64) -> Self {
        Self { missed }
    }

    /// How many events were lost.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source lost {} events", self.missed)
    }
}

impl StdError for Lagged {}

/// A lagging broadcast receiver, read through tokio-stream's `BroadcastStream`.
#[cfg(feature = "tokio-stream")]
impl From<tokio_stream::wrappers::errors::BroadcastStreamRecvError> for Lagged {
    fn from(error: tokio_stream::wrappers::errors::BroadcastStreamRecvError) -> Self {
        match error {
            tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(missed) => {
                Self::new(missed)
            }
        }
    }
}

/// Why a [`Feed`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedEnd {
    /// The source ended: everything it gave was published.
    SourceEnded,
    /// Every [`EventLog`] handle was dropped; the source was dropped unread from there.
    LogDropped,
}

pin_project! {
    /// The future of [`EventLog::feed`]: it publishes its source's items into the log until
    /// the source ends or the log is dropped, and resolves to which of the two happened.
    #[must_use = "futures do nothing unless polled; spawn it"]
    pub struct Feed<St> {
        log: WeakLog,
        dropped: oneshot::Receiver<()>,
        // `None` once the feed ended: the source is dropped as soon as it is not needed.
        #[pin]
        source: Option<St>,
        ended: Option<FeedEnd>,
    }
}

impl EventLog {
    /// Publishes every item of `source` into the log, until the source ends or the log is
    /// dropped; spawn the returned future (`tokio::spawn(log.feed(source))`).
    ///
    /// `source` is any `Stream` whose items convert to a [`FeedItem`]:
    ///
    /// - [`Event`]: published with the log's next id, as by [`publish`](Self::publish).
    /// - `(u64, Event)`: published under the source's own numeric id, as by
    ///   [`publish_with_u64_id`](Self::publish_with_u64_id). Its numbers must increase: an
    ///   item whose number is not above the log's last one is left out (a client that
    ///   resumed by its number could otherwise skip or repeat events), logged at `warn` and
    ///   counted in [`ReplayStats::out_of_order`](crate::replay::ReplayStats::out_of_order);
    ///   the feed goes on with the next item.
    /// - `Result<_, Lagged>`, or with the `tokio-stream` feature the items of a
    ///   `BroadcastStream<Event>` (`Result<Event, BroadcastStreamRecvError>`): an `Err` says
    ///   the source lost events. The log then publishes a gap event in their place, under
    ///   its next id, so that every subscriber (and every later replay) reads
    ///   of the loss where it happened: type `reset` (see
    ///   [`EventLogBuilder::gap_event`](crate::replay::EventLogBuilder::gap_event)), data
    ///   `{"reason":"source_lagged","missed":3,"resume_from":8}`. The loss is also logged at
    ///   `warn` and counted in [`ReplayStats::source_lost`](crate::replay::ReplayStats::source_lost).
    ///   The gap event takes the log's next automatic id: in a log whose first numeric id
    ///   was a numbered item's, the number after the last item's, so the source's next
    ///   number must be above it (a source that lost events has moved past their numbers
    ///   anyway).
    ///
    /// # When it ends
    ///
    /// - When the source ends ([`FeedEnd::SourceEnded`]): an mpsc whose senders are all
    ///   gone, a broadcast channel that closed, a change feed that finished.
    /// - When the log is dropped ([`FeedEnd::LogDropped`]): the last [`EventLog`] clone is
    ///   gone. The feed does not keep the log alive, and neither do subscriptions: a
    ///   [`Subscription`](crate::replay::Subscription) holds the window it reads, not the log, and
    ///   goes on sending what the window retains, then waits for events that no longer
    ///   come. Dropping the last handle wakes the feed, which then drops its source without
    ///   reading it further, even while the source has nothing to give.
    ///
    /// # Example
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use tokio::sync::mpsc;
    /// use tokio_stream::wrappers::ReceiverStream;
    /// use tower_sse::{replay::{EventLog, FeedEnd}, Event};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let log = EventLog::new();
    /// let mut events = log.subscribe(None);
    /// let (tx, rx) = mpsc::channel(16);
    /// let feed = tokio::spawn(log.feed(ReceiverStream::new(rx)));
    ///
    /// tx.send(Event::new().data("hello")).await.unwrap();
    /// assert!(events.next().await.unwrap().as_bytes().ends_with(b"\ndata: hello\n\n"));
    /// drop(tx);
    /// assert_eq!(feed.await.unwrap(), FeedEnd::SourceEnded);
    /// # }
    /// ```
    pub fn feed<St>(&self, source: St) -> Feed<St>
    where
        St: Stream,
        St::Item: Into<FeedItem>,
    {
        Feed {
            log: self.downgrade(),
            dropped: self.on_drop(),
            source: Some(source),
            ended: None,
        }
    }
}

impl<St> Future for Feed<St>
where
    St: Stream,
    St::Item: Into<FeedItem>,
{
    type Output = FeedEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<FeedEnd> {
        let mut this = self.project();
        if let Some(end) = *this.ended {
            return Poll::Ready(end);
        }
        // The log first: once it is gone, nothing more is read from the source. The
        // receiver completes only with an error, when its sender is dropped with the log.
        if Pin::new(&mut *this.dropped).poll(cx).is_ready() {
            return finish(this.source, this.ended, FeedEnd::LogDropped);
        }
        // One upgrade per poll, not per item: it is held only while this poll publishes.
        let Some(log) = this.log.upgrade() else {
            return finish(this.source, this.ended, FeedEnd::LogDropped);
        };
        for _ in 0..BUDGET {
            let Some(source) = this.source.as_mut().as_pin_mut() else {
                return finish(this.source, this.ended, FeedEnd::SourceEnded);
            };
            let item = match source.poll_next(cx) {
                Poll::Ready(Some(item)) => item.into(),
                Poll::Ready(None) => return finish(this.source, this.ended, FeedEnd::SourceEnded),
                Poll::Pending => return Poll::Pending,
            };
            match item {
                FeedItem::Event(event) => {
                    log.publish(event);
                }
                FeedItem::Numbered(id, event) => {
                    if let Err(refused) = log.publish_with_u64_id(id, event) {
                        log.count_out_of_order(refused);
                    }
                }
                FeedItem::Lagged(lagged) if lagged.missed() > 0 => {
                    log.publish_source_gap(lagged.missed());
                }
                FeedItem::Lagged(_) => {}
            }
        }
        // Out of budget with the source still ready: let other tasks run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn finish<St>(
    mut source: Pin<&mut Option<St>>,
    ended: &mut Option<FeedEnd>,
    end: FeedEnd,
) -> Poll<FeedEnd> {
    source.set(None);
    *ended = Some(end);
    Poll::Ready(end)
}

impl<St> fmt::Debug for Feed<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
