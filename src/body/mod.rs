//! [`SseBody`]: polls the stream, runs the timers, coalesces ready events into frames.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{sleep_until, Instant, Sleep};
use tracing::Span;

use crate::config::Config;
use crate::error::OnItemError;
use crate::item::sealed::Sealed;
use crate::item::SseItem;
use crate::jitter::{jittered, shortest};
use crate::keep_alive::KeepAlive;

mod report;

pub use report::EndReason;
use report::Report;

/// Most items taken from the source in one poll, so an always-ready source (or a run of
/// skipped errors) cannot starve the other tasks on the runtime.
const ITEMS_PER_POLL: usize = 256;

/// The most room reserved ahead for the next frame of a busy stream, whatever
/// `max_frame_bytes` says (it may be huge, to coalesce without bound).
const MAX_FRAME_RESERVE: usize = 256 * 1024;

pin_project! {
    /// The `text/event-stream` body made by [`Sse`](crate::Sse) from a stream of
    /// [`SseItem`]s.
    ///
    /// It sends an opening frame at once (the `retry:` hint, or an empty comment) so the
    /// client sees the response before the first event exists, unless the layer or the
    /// response's [`SseOptions`](crate::SseOptions) turn it off. Events that are ready
    /// together are encoded into one frame; the body never waits to fill a frame. It never
    /// fails: time limits and failed items end it cleanly, after whole events only.
    ///
    /// Its timers need a Tokio runtime with the time driver enabled.
    #[project = SseBodyProj]
    #[must_use = "bodies do nothing unless polled"]
    pub struct SseBody<St> {
        #[pin]
        stream: Option<St>,
        // Timers and the shutdown signal are boxed, and only when configured: an idle
        // connection then holds one boxed `Sleep` (the keep-alive), not three inline ones,
        // which matters at tens of thousands of open streams.
        lifetime: Option<Pin<Box<Sleep>>>,
        idle: Option<Pin<Box<Sleep>>>,
        keep_alive: Option<Pin<Box<Sleep>>>,
        shutdown: Option<Pin<Box<OwnedNotified>>>,
        phase: Phase,
        buf: BytesMut,
        last_frame_at: Instant,
        last_item_at: Instant,
        config: Arc<Config>,
        report: Report,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Opening,
    Streaming,
    Done,
}

impl<St> SseBody<St> {
    pub(crate) fn new(stream: St, config: Arc<Config>, span: Span) -> Self {
        Self::with_phase(Some(stream), Phase::Opening, config, span)
    }

    /// A body with nothing to send, for responses that are not streamed.
    pub(crate) fn empty(config: Arc<Config>, span: Span) -> Self {
        let mut body = Self::with_phase(None, Phase::Done, config, span);
        body.report.reason = Some(EndReason::NotStreamed);
        body
    }

    fn with_phase(stream: Option<St>, phase: Phase, config: Arc<Config>, span: Span) -> Self {
        let now = Instant::now();
        Self {
            stream,
            lifetime: None,
            idle: None,
            keep_alive: None,
            shutdown: None,
            phase,
            buf: BytesMut::new(),
            last_frame_at: now,
            last_item_at: now,
            config,
            report: Report::new(span),
        }
    }
}

/// An empty body that has already ended, as layers such as tower-http's `CorsLayer` and
/// `TimeoutLayer` need for the responses they make themselves.
impl<St> Default for SseBody<St> {
    fn default() -> Self {
        Self::empty(Arc::default(), Span::none())
    }
}

impl<St> SseBodyProj<'_, St> {
    /// Arms the configured timers and returns the opening frame, if there is one.
    fn open(&mut self) -> Option<Bytes> {
        let now = Instant::now();
        let config = &**self.config;
        if let Some(max) = config.max_duration {
            let lifetime = jittered(max, config.max_duration_jitter);
            arm(self.lifetime, now, lifetime);
        }
        if let Some(idle) = config.idle_timeout {
            arm(self.idle, now, idle);
        }
        if let Some(keep_alive) = &config.keep_alive {
            // Jittered, so that streams opened together do not all wake together.
            arm(self.keep_alive, now, keep_alive_delay(keep_alive));
        }
        if let Some(shutdown) = &config.shutdown {
            *self.shutdown = Some(Box::pin(shutdown.notified()));
        }
        *self.last_frame_at = now;
        *self.last_item_at = now;
        *self.phase = Phase::Streaming;
        self.report.started_at = Some(now);
        if let Some(retry) = config.deferred_retry() {
            // Waits in the buffer for the first frame, which carries it.
            self.buf.extend_from_slice(retry);
        }
        config.opening()
    }

    /// Sends what waits in the buffer (a deferred `retry:` hint) followed by `frame`; or the
    /// end of the body if both are empty.
    fn flush_with(&mut self, frame: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.buf.is_empty() {
            if frame.is_empty() {
                return Poll::Ready(None);
            }
            return self.data_frame(frame);
        }
        self.buf.extend_from_slice(&frame);
        let frame = self.buf.split().freeze();
        self.data_frame(frame)
    }

    /// Ends the body: drops the source and the timers at once, keeps the reason for the log.
    fn finish(&mut self, reason: EndReason) {
        *self.phase = Phase::Done;
        self.report.reason = Some(reason);
        self.stream.set(None);
        *self.lifetime = None;
        *self.idle = None;
        *self.keep_alive = None;
        *self.shutdown = None;
    }

    /// Whether the server's [`Shutdown`](crate::Shutdown) has been triggered.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(notified) = self.shutdown.as_mut() else {
            return false;
        };
        // The flag covers a trigger that came before this body subscribed.
        notified.as_mut().poll(cx).is_ready()
            || self
                .config
                .shutdown
                .as_ref()
                .is_some_and(|s| s.is_triggered())
    }

    fn data_frame(&mut self, bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.report.bytes += bytes.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

/// How long after the last frame the first keep-alive of a silence goes out: a random point
/// of `[(1 - jitter) * interval, interval]`, never later than the interval.
fn keep_alive_delay(keep_alive: &KeepAlive) -> Duration {
    jittered(keep_alive.interval, keep_alive.jitter)
        .max(shortest(keep_alive.interval, keep_alive.jitter))
}

fn arm(sleep: &mut Option<Pin<Box<Sleep>>>, now: Instant, after: Duration) {
    // A deadline past the end of time is never reached: leave the timer off.
    if let Some(deadline) = now.checked_add(after) {
        *sleep = Some(Box::pin(sleep_until(deadline)));
    }
}

/// Polls a timer that is reset lazily: frames only record when they were sent, and when the
/// timer fires it checks the real deadline, re-arming itself if that lies ahead. This keeps
/// timer-wheel updates off the per-event path.
///
/// Returns whether `since + after` has passed.
fn poll_lazy(
    sleep: &mut Option<Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
    since: Instant,
    after: Duration,
) -> bool {
    let Some(sleep) = sleep.as_mut() else {
        return false;
    };
    if sleep.as_mut().poll(cx).is_pending() {
        return false;
    }
    let Some(deadline) = since.checked_add(after) else {
        return false;
    };
    if deadline <= Instant::now() {
        return true;
    }
    sleep.as_mut().reset(deadline);
    // Registers the waker for the new deadline; it lies ahead, so this is pending.
    let _ = sleep.as_mut().poll(cx);
    false
}

/// Polls the keep-alive timer, which is reset lazily as in [`poll_lazy`], with jitter.
///
/// A keep-alive is due once the stream has been silent for the shortest jittered delay.
/// When the timer fires early because frames went out since it was armed, it re-arms at a
/// fresh random point of the window after the last frame, at most one interval after it.
/// So each silence draws its own delay, and the draw happens once per timer wake-up, never
/// per event.
fn poll_keep_alive(
    sleep: &mut Option<Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
    since: Instant,
    keep_alive: &KeepAlive,
) -> bool {
    let Some(sleep) = sleep.as_mut() else {
        return false;
    };
    if sleep.as_mut().poll(cx).is_pending() {
        return false;
    }
    let Some(earliest) = since.checked_add(shortest(keep_alive.interval, keep_alive.jitter)) else {
        return false;
    };
    if earliest <= Instant::now() {
        return true;
    }
    let Some(deadline) = since.checked_add(keep_alive_delay(keep_alive)) else {
        return false;
    };
    sleep.as_mut().reset(deadline);
    // Registers the waker for the new deadline; it lies ahead, so this is pending.
    let _ = sleep.as_mut().poll(cx);
    false
}

impl<St> Body for SseBody<St>
where
    St: Stream,
    St::Item: SseItem,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        match *this.phase {
            Phase::Done => return Poll::Ready(None),
            Phase::Opening => {
                if let Some(opening) = this.open() {
                    return this.data_frame(opening);
                }
                // No opening frame: go on and poll the source at once.
            }
            Phase::Streaming => {}
        }

        // Poll order: shutdown and lifetime first, so that a source that is always ready
        // still ends on time; then the source, whose ready items beat the idle and
        // keep-alive timers.
        // A deferred `retry:` hint (no opening frame) goes out with the first frame of any
        // kind, or alone just before the end.
        if this.poll_shutdown(cx) {
            let frame = this.config.shutdown.as_ref().map(|s| s.drain_frame());
            this.finish(EndReason::Shutdown);
            return this.flush_with(frame.unwrap_or_default());
        }
        if let Some(lifetime) = this.lifetime.as_mut() {
            if lifetime.as_mut().poll(cx).is_ready() {
                this.finish(EndReason::MaxDuration);
                return this.flush_with(Bytes::new());
            }
        }

        // Anything already in the buffer is a deferred hint, not an event.
        let waiting = this.buf.len();
        let mut source_end = None;
        let mut items = 0;
        if let Some(mut stream) = this.stream.as_mut().as_pin_mut() {
            while items < ITEMS_PER_POLL {
                let item = match stream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(item)) => item,
                    Poll::Ready(None) => {
                        source_end = Some(EndReason::SourceEnded);
                        break;
                    }
                    Poll::Pending => break,
                };
                items += 1;
                match item.encode_into(this.buf) {
                    Ok(()) => this.report.events += 1,
                    Err(error) => {
                        let policy = this.config.on_item_error;
                        this.report.span.in_scope(|| {
                            tracing::error!(error = %error, ?policy, "sse item failed");
                        });
                        if this.config.on_item_error == OnItemError::End {
                            source_end = Some(EndReason::ItemError);
                            break;
                        }
                    }
                }
                // Never wait for more items: this only bounds what is gathered from ready ones.
                if this.buf.len() >= this.config.max_frame_bytes {
                    break;
                }
            }
        }

        // One clock read per poll that saw items, not one per item.
        let now = (items > 0).then(Instant::now);
        if let Some(now) = now {
            *this.last_item_at = now;
        }
        if let Some(reason) = source_end {
            this.finish(reason);
        }
        if this.buf.len() > waiting {
            // Skipped items send nothing, so only a real frame restarts the keep-alive.
            if let Some(now) = now {
                *this.last_frame_at = now;
            }
            let max_frame_bytes = this.config.max_frame_bytes;
            let full = this.buf.len() >= max_frame_bytes;
            let frame = this.buf.split().freeze();
            if full && source_end.is_none() {
                // A source that fills one frame likely fills the next: room for a whole
                // frame now is one allocation, where growing the buffer while encoding
                // copies it several times. Quiet streams never fill a frame, so they never
                // hold this room.
                this.buf.reserve(
                    max_frame_bytes
                        .saturating_add(max_frame_bytes / 4)
                        .min(MAX_FRAME_RESERVE),
                );
            }
            return this.data_frame(frame);
        }
        if source_end.is_some() {
            return this.flush_with(Bytes::new());
        }

        if let Some(idle) = this.config.idle_timeout {
            if poll_lazy(this.idle, cx, *this.last_item_at, idle) {
                this.finish(EndReason::IdleTimeout);
                return this.flush_with(Bytes::new());
            }
        }
        if let Some(keep_alive) = &this.config.keep_alive {
            if poll_keep_alive(this.keep_alive, cx, *this.last_frame_at, keep_alive) {
                let now = Instant::now();
                *this.last_frame_at = now;
                this.report.keep_alives += 1;
                let frame = keep_alive.frame.clone();
                // Within one silence, keep-alives are one whole interval apart.
                match now.checked_add(keep_alive.interval) {
                    Some(next) => {
                        if let Some(sleep) = this.keep_alive.as_mut() {
                            sleep.as_mut().reset(next);
                        }
                    }
                    None => *this.keep_alive = None,
                }
                return this.flush_with(frame);
            }
        }

        if items == ITEMS_PER_POLL {
            // The source is still ready but gave nothing to send: come back after others ran.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.phase == Phase::Done
    }

    fn size_hint(&self) -> SizeHint {
        if self.phase == Phase::Done {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

impl<St> fmt::Debug for SseBody<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("phase", &self.phase)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream::Pending;

    use super::*;
    use crate::Event;

    /// Tens of thousands of idle streams each hold one body: timers that are not configured
    /// must not take room in it (three inline `Sleep`s made it 568 bytes).
    #[test]
    fn idle_body_holds_no_inline_timer() {
        let size = std::mem::size_of::<SseBody<Pending<Event>>>();
        assert!(size <= 256, "SseBody is {size} bytes");
    }

    #[test]
    fn default_body_is_empty_and_ended() {
        let body = SseBody::<Pending<Event>>::default();
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
    }
}
