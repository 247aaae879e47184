//! [`SseBody`]: polls the stream, runs the timers, coalesces ready events into frames.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;
use tokio::time::Instant;
use tracing::Span;

use crate::config::Config;
use crate::error::OnItemError;
use crate::item::sealed::Sealed;
use crate::item::SseItem;
use crate::keep_alive::KeepAlive;

mod deadline;
mod report;

use deadline::{Deadline, Delay};
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
        lifetime: Deadline,
        // Counts from the last item, even a skipped one: it measures the source's silence.
        idle: Deadline,
        // Counts from the last frame: any frame keeps proxies from closing the connection.
        keep_alive: Deadline,
        // Boxed, and only when configured, as the deadlines' timers are: an idle stream
        // then holds one boxed `Sleep` (the keep-alive) and no other timer state.
        shutdown: Option<Pin<Box<OwnedNotified>>>,
        phase: Phase,
        buf: BytesMut,
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
        Self {
            stream,
            lifetime: Deadline::OFF,
            idle: Deadline::OFF,
            keep_alive: Deadline::OFF,
            shutdown: None,
            phase,
            buf: BytesMut::new(),
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
        if let Some(delay) = lifetime_delay(config) {
            *self.lifetime = Deadline::start(now, delay);
        }
        if let Some(delay) = idle_delay(config) {
            *self.idle = Deadline::start(now, delay);
        }
        if let Some(keep_alive) = &config.keep_alive {
            // Jittered, so that streams opened together do not all wake together.
            *self.keep_alive = Deadline::start(now, keep_alive_delay(keep_alive));
        }
        if let Some(shutdown) = &config.shutdown {
            *self.shutdown = Some(Box::pin(shutdown.notified()));
        }
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
        *self.lifetime = Deadline::OFF;
        *self.idle = Deadline::OFF;
        *self.keep_alive = Deadline::OFF;
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

/// How long a stream lives: `max_duration`, shortened by a random part of its jitter so
/// that clients that connected together do not all reconnect together.
fn lifetime_delay(config: &Config) -> Option<Delay> {
    let max = config.max_duration?;
    Some(Delay::jittered(max, config.max_duration_jitter))
}

/// How long the source may stay silent.
fn idle_delay(config: &Config) -> Option<Delay> {
    config.idle_timeout.map(Delay::exact)
}

/// How long after the last frame the first keep-alive of a silence goes out: a random point
/// of `[(1 - jitter) * interval, interval]`, never later than the interval.
fn keep_alive_delay(keep_alive: &KeepAlive) -> Delay {
    Delay::jittered(keep_alive.interval, keep_alive.jitter)
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
        if let Some(delay) = lifetime_delay(this.config) {
            if this.lifetime.poll_expired(cx, delay).is_ready() {
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
            this.idle.restart(now);
        }
        if let Some(reason) = source_end {
            this.finish(reason);
        }
        if this.buf.len() > waiting {
            // Skipped items send nothing, so only a real frame restarts the keep-alive.
            if let Some(now) = now {
                this.keep_alive.restart(now);
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

        if let Some(delay) = idle_delay(this.config) {
            if this.idle.poll_expired(cx, delay).is_ready() {
                this.finish(EndReason::IdleTimeout);
                return this.flush_with(Bytes::new());
            }
        }
        if let Some(keep_alive) = &this.config.keep_alive {
            let delay = keep_alive_delay(keep_alive);
            if this.keep_alive.poll_expired(cx, delay).is_ready() {
                this.report.keep_alives += 1;
                let frame = keep_alive.frame.clone();
                // Within one silence, keep-alives are one whole interval apart.
                this.keep_alive
                    .restart_exact(Instant::now(), keep_alive.interval);
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
