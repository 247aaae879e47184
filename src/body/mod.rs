//! [`SseBody`]: polls the stream, runs the timers, coalesces ready events into frames.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | [`SseBody`]: constructors, the `Body` impl, `poll_frame` as its steps |
//! | `deadline.rs` | `Deadline`: one lazily reset timer for the lifetime, idle and keep-alive |
//! | `report.rs` | the per-stream log line (and metrics, feature `metrics`); it ends with an [`EndReason`] |
//!
//! Imports run one way: `mod.rs` uses `deadline` and `report`, which use nothing of the body.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
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

use crate::compression::{Encoder, FrameKind};
use crate::config::LayerConfig;
use crate::error::OnItemError;
use crate::item::sealed::Sealed;
use crate::item::{SseItem, SseStream};
use crate::keep_alive::{ConnectionKey, KeepAlive};

mod deadline;
mod report;

use crate::end_reason::EndReason;
use deadline::{Deadline, Delay};
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
        state: BodyState,
        buf: BytesMut,
        config: Arc<LayerConfig>,
        report: Report,
        // Every frame leaves through it: compressed when negotiated, as is otherwise.
        encoder: Encoder,
        // The keep-alive's point on the grid, shared by the streams of one connection.
        keep_alive_slot: Option<u32>,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    // Over HTTP/2: the first poll lets the connection send the response head first.
    OpeningAfterHead,
    Opening,
    Streaming,
    Done,
}

impl<St> SseBody<St> {
    pub(crate) fn new(stream: St, config: Arc<LayerConfig>, span: Span) -> Self {
        #[allow(unused_mut)] // Used with the `metrics` feature.
        let mut body = Self::with_state(Some(stream), BodyState::Opening, config, span);
        #[cfg(feature = "metrics")]
        body.report.opened(&body.config);
        body
    }

    /// A body with nothing to send, for responses that are not streamed.
    pub(crate) fn empty(config: Arc<LayerConfig>, span: Span) -> Self {
        let mut body = Self::with_state(None, BodyState::Done, config, span);
        body.report.reason = Some(EndReason::NotStreamed);
        body
    }

    fn with_state(
        stream: Option<St>,
        state: BodyState,
        config: Arc<LayerConfig>,
        span: Span,
    ) -> Self {
        Self {
            stream,
            lifetime: Deadline::OFF,
            idle: Deadline::OFF,
            keep_alive: Deadline::OFF,
            shutdown: None,
            state,
            buf: BytesMut::new(),
            config,
            report: Report::new(span),
            encoder: Encoder::identity(),
            keep_alive_slot: None,
        }
    }

    /// Keeps the keep-alives due with those of the other streams of `connection`.
    pub(crate) fn on_connection(mut self, connection: Option<ConnectionKey>) -> Self {
        self.keep_alive_slot = connection.map(ConnectionKey::slot);
        self
    }

    /// Over HTTP/2, sends the opening frame one scheduler turn later, once the connection
    /// has sent the response head: h2 keeps room for as many frames as a connection ever
    /// queued at once, and a HEADERS and a DATA frame queued together for each of many
    /// streams opened together (a reconnect wave) doubled that room, about 0.35 KiB per
    /// stream for good (`scripts/bench-e2e.sh 1 h2idle`).
    pub(crate) fn over_http2(mut self, http2: bool) -> Self {
        if http2 && self.state == BodyState::Opening && self.config.opening_frame {
            self.state = BodyState::OpeningAfterHead;
        }
        self
    }

    /// Sends every frame through `encoder`, as negotiated for this response.
    pub(crate) fn with_encoder(mut self, encoder: Encoder) -> Self {
        self.encoder = encoder;
        self
    }
}

/// An empty body that has already ended, as layers such as tower-http's `CorsLayer` and
/// `TimeoutLayer` need for the responses they make themselves.
impl<St> Default for SseBody<St> {
    fn default() -> Self {
        Self::empty(Arc::default(), Span::none())
    }
}

/// What [`Body::poll_frame`] returns; a step that breaks returns it.
type PollFrame = Poll<Option<Result<Frame<Bytes>, Infallible>>>;

impl<St> Body for SseBody<St>
where
    St: SseStream,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().poll_steps(cx) {
            ControlFlow::Break(frame) => frame,
            ControlFlow::Continue(()) => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == BodyState::Done && !self.encoder.is_pending()
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_end_stream() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

/// The steps of a poll, in the order docs/architecture.md gives. Each one either breaks with
/// what the poll returns, or lets the next one run.
impl<St> SseBodyProj<'_, St>
where
    St: Stream,
    St::Item: SseItem,
{
    fn poll_steps(&mut self, cx: &mut Context<'_>) -> ControlFlow<PollFrame> {
        // Before anything else: the timers must be armed before they are polled, and an
        // ended body must not poll its source again.
        self.poll_open(cx)?;
        // Before the source, so that a source that is always ready still ends on time; the
        // shutdown first, so that a drain sends its farewell and spread-out retry hint even
        // when the lifetime is up too.
        self.poll_shutdown(cx)?;
        self.poll_lifetime(cx)?;
        // Before the idle and keep-alive timers: a ready item beats an expired timer, as in
        // tower and tokio-stream, so a busy stream never sends a keep-alive or times out.
        let source_ready = self.poll_source(cx)?;
        // The idle timeout before the keep-alive: a stream that ends sends no keep-alive first.
        self.poll_idle(cx)?;
        self.poll_keep_alive(cx)?;
        if source_ready {
            // The source is still ready but gave nothing to send: come back after others ran.
            cx.waker().wake_by_ref();
        }
        ControlFlow::Continue(())
    }

    /// The first poll arms the timers and sends the opening frame, if there is one; a body
    /// that has ended sends nothing more.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> ControlFlow<PollFrame> {
        match *self.state {
            BodyState::Done => ControlFlow::Break(self.end_of_body()),
            BodyState::Streaming => ControlFlow::Continue(()),
            BodyState::OpeningAfterHead => {
                *self.state = BodyState::Opening;
                cx.waker().wake_by_ref();
                ControlFlow::Break(Poll::Pending)
            }
            BodyState::Opening => match self.open() {
                Some(opening) => ControlFlow::Break(self.data_frame(opening, FrameKind::Quiet)),
                // No opening frame: go on and poll the source at once.
                None => ControlFlow::Continue(()),
            },
        }
    }

    /// Once the server's [`Shutdown`](crate::Shutdown) is triggered, ends the stream with its
    /// drain frame.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> ControlFlow<PollFrame> {
        if !self.shutdown_triggered(cx) {
            return ControlFlow::Continue(());
        }
        let frame = self.config.shutdown.as_ref().map(|s| s.drain_frame());
        ControlFlow::Break(self.end(EndReason::Shutdown, frame.unwrap_or_default()))
    }

    /// Ends the stream once it has lived its `max_duration`.
    fn poll_lifetime(&mut self, cx: &mut Context<'_>) -> ControlFlow<PollFrame> {
        let Some(delay) = lifetime_delay(self.config) else {
            return ControlFlow::Continue(());
        };
        if self.lifetime.poll_expired(cx, delay).is_pending() {
            return ControlFlow::Continue(());
        }
        ControlFlow::Break(self.end(EndReason::MaxDuration, Bytes::new()))
    }

    /// Sends the items that are ready, as one frame; ends the stream after them if the source
    /// ended or an item failed under [`OnItemError::End`].
    ///
    /// Continues with whether the source may still be ready: it used up the poll's budget
    /// without giving anything to send.
    fn poll_source(&mut self, cx: &mut Context<'_>) -> ControlFlow<PollFrame, bool> {
        // Anything already in the buffer is a deferred hint, not an event.
        let waiting = self.buf.len();
        let Ready { items, lone, end } = self.encode_ready(cx);
        // One clock read per poll that saw items, not one per item.
        let now = (items > 0).then(Instant::now);
        if let Some(now) = now {
            self.idle.restart(now);
        }
        if let Some(reason) = end {
            self.finish(reason);
        }
        if lone.is_some() || self.buf.len() > waiting {
            // Skipped items send nothing, so only a real frame restarts the keep-alive.
            if let Some(now) = now {
                self.keep_alive.restart(now);
            }
            return ControlFlow::Break(match lone {
                Some(frame) => self.data_frame(frame, FrameKind::Events),
                None => self.send_buffer(end.is_none()),
            });
        }
        if end.is_some() {
            return ControlFlow::Break(self.flush_with(Bytes::new()));
        }
        ControlFlow::Continue(items == ITEMS_PER_POLL)
    }

    /// Ends the stream once the source has given no item for the idle timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> ControlFlow<PollFrame> {
        let Some(delay) = idle_delay(self.config) else {
            return ControlFlow::Continue(());
        };
        if self.idle.poll_expired(cx, delay).is_pending() {
            return ControlFlow::Continue(());
        }
        ControlFlow::Break(self.end(EndReason::IdleTimeout, Bytes::new()))
    }

    /// Sends a keep-alive once the stream has sent no frame for the keep-alive's delay.
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> ControlFlow<PollFrame> {
        let Some(keep_alive) = &self.config.keep_alive else {
            return ControlFlow::Continue(());
        };
        let delay = keep_alive_delay(keep_alive, *self.keep_alive_slot);
        if self.keep_alive.poll_expired(cx, delay).is_pending() {
            return ControlFlow::Continue(());
        }
        self.report.keep_alive_sent();
        let frame = keep_alive.frame.clone();
        // Within one silence, keep-alives are one whole interval apart.
        self.keep_alive.restart_from_due(keep_alive.interval);
        ControlFlow::Break(self.flush_with(frame))
    }

    /// Encodes ready items into the buffer until none is ready, the frame is full or the
    /// poll's budget is spent; a lone item that is a frame already is kept as it is.
    fn encode_ready(&mut self, cx: &mut Context<'_>) -> Ready {
        let mut ready = Ready::default();
        let Some(mut stream) = self.stream.as_mut().as_pin_mut() else {
            return ready;
        };
        while ready.items < ITEMS_PER_POLL {
            let item = match stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) => {
                    ready.end = Some(EndReason::SourceEnded);
                    break;
                }
                Poll::Pending => break,
            };
            ready.items += 1;
            // A fan-out's event, framed once at publish: sent as it is unless another follows.
            let item = match ready.lone.take() {
                Some(lone) => {
                    self.buf.extend_from_slice(&lone);
                    item
                }
                None if self.buf.is_empty() => match item.into_frame() {
                    Ok(frame) => {
                        self.report.events += 1;
                        let full = frame.len() >= self.config.max_frame_bytes;
                        ready.lone = Some(frame);
                        if full {
                            break;
                        }
                        continue;
                    }
                    Err(item) => item,
                },
                None => item,
            };
            match item.encode_into(self.buf) {
                Ok(()) => self.report.events += 1,
                Err(error) => {
                    let policy = self.config.on_item_error;
                    self.report.span.in_scope(|| {
                        tracing::error!(error = %error, ?policy, "sse item failed");
                    });
                    if policy == OnItemError::End {
                        ready.end = Some(EndReason::ItemError);
                        break;
                    }
                }
            }
            // Never wait for more items: this only bounds what is gathered from ready ones.
            if self.buf.len() >= self.config.max_frame_bytes {
                break;
            }
        }
        ready
    }
}

/// What [`SseBodyProj::encode_ready`] took from the source in one poll.
#[derive(Default)]
struct Ready {
    items: usize,
    /// The one item taken, when it was a frame already; the buffer is then empty.
    lone: Option<Bytes>,
    /// Why the source ended, if it did.
    end: Option<EndReason>,
}

/// What the steps share.
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
            let delay = keep_alive_delay(keep_alive, *self.keep_alive_slot);
            *self.keep_alive = Deadline::start(now, delay);
        }
        if let Some(shutdown) = &config.shutdown {
            *self.shutdown = Some(Box::pin(shutdown.notified()));
        }
        *self.state = BodyState::Streaming;
        self.report.started_at = Some(now);
        if let Some(retry) = config.deferred_retry() {
            // Waits in the buffer for the first frame, which carries it.
            self.buf.extend_from_slice(retry);
        }
        config.opening()
    }

    /// Whether the server's [`Shutdown`](crate::Shutdown) has been triggered.
    fn shutdown_triggered(&mut self, cx: &mut Context<'_>) -> bool {
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

    /// Sends the buffer, a frame of events.
    fn send_buffer(&mut self, more: bool) -> PollFrame {
        let max_frame_bytes = self.config.max_frame_bytes;
        let full = self.buf.len() >= max_frame_bytes;
        let frame = self.buf.split().freeze();
        if full && more {
            // A source that fills one frame likely fills the next: room for a whole frame
            // now is one allocation, where growing the buffer while encoding copies it
            // several times. Quiet streams never fill a frame, so they never hold this room.
            self.buf.reserve(
                max_frame_bytes
                    .saturating_add(max_frame_bytes / 4)
                    .min(MAX_FRAME_RESERVE),
            );
        }
        self.data_frame(frame, FrameKind::Events)
    }

    /// Ends the body with `frame`, after what waits in the buffer.
    fn end(&mut self, reason: EndReason, frame: Bytes) -> PollFrame {
        self.finish(reason);
        self.flush_with(frame)
    }

    /// Sends what waits in the buffer (a deferred `retry:` hint) followed by `frame`; or the
    /// end of the body if both are empty. So a deferred hint goes out with the first frame
    /// of any kind, or alone just before the end.
    fn flush_with(&mut self, frame: Bytes) -> PollFrame {
        if self.buf.is_empty() {
            if frame.is_empty() {
                return self.end_of_body();
            }
            return self.data_frame(frame, FrameKind::Quiet);
        }
        self.buf.extend_from_slice(&frame);
        let frame = self.buf.split().freeze();
        self.data_frame(frame, FrameKind::Quiet)
    }

    /// The end of the body, after the encoder's last frame if it has one.
    fn end_of_body(&mut self) -> PollFrame {
        match self.encoder.finish() {
            Some(last) => self.sent(last),
            None => Poll::Ready(None),
        }
    }

    /// Ends the body: drops the source and the timers at once, keeps the reason for the log.
    fn finish(&mut self, reason: EndReason) {
        *self.state = BodyState::Done;
        self.report.reason = Some(reason);
        self.stream.set(None);
        *self.lifetime = Deadline::OFF;
        *self.idle = Deadline::OFF;
        *self.keep_alive = Deadline::OFF;
        *self.shutdown = None;
    }

    fn data_frame(&mut self, bytes: Bytes, kind: FrameKind) -> PollFrame {
        let bytes = self.encoder.frame(bytes, kind);
        self.sent(bytes)
    }

    /// Sends bytes as they go on the wire.
    fn sent(&mut self, bytes: Bytes) -> PollFrame {
        self.report.frame_sent(bytes.len());
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

/// How long a stream lives: `max_duration`, shortened by a random part of its jitter so
/// that clients that connected together do not all reconnect together.
fn lifetime_delay(config: &LayerConfig) -> Option<Delay> {
    let max = config.max_duration?;
    Some(Delay::jittered(max, config.max_duration_jitter))
}

/// How long the source may stay silent.
fn idle_delay(config: &LayerConfig) -> Option<Delay> {
    config.idle_timeout.map(Delay::exact)
}

/// How long after the last frame the first keep-alive of a silence goes out: a point of
/// `[(1 - jitter) * interval, interval]`, the connection's if it has a slot, never later
/// than the interval.
fn keep_alive_delay(keep_alive: &KeepAlive, slot: Option<u32>) -> Delay {
    Delay::jittered(keep_alive.interval, keep_alive.jitter).in_slot(slot)
}

impl<St> fmt::Debug for SseBody<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("state", &self.state)
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

    use std::task::Waker;

    use futures_util::stream;
    use http_body_util::BodyExt;

    use crate::EncodedEvent;

    fn frame_bytes(frame: Option<Result<Frame<Bytes>, Infallible>>) -> Bytes {
        frame.unwrap().unwrap().into_data().unwrap()
    }

    /// A fan-out's event is framed once at publish: alone, it goes out as that same
    /// allocation; with others ready, they share one frame.
    #[tokio::test]
    async fn a_lone_framed_event_is_sent_without_a_copy() {
        let first = Event::new().data("one").encode();
        let second = Event::new().data("two").encode();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<EncodedEvent>();
        let rx = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        let mut body = Box::pin(SseBody::new(rx, Arc::default(), Span::none()));
        assert_eq!(frame_bytes(body.frame().await), ":\n\n");

        tx.send(first.clone()).unwrap();
        let sent = frame_bytes(body.frame().await);
        assert_eq!(sent.as_ptr(), first.as_bytes().as_ptr());

        tx.send(first.clone()).unwrap();
        tx.send(second.clone()).unwrap();
        let sent = frame_bytes(body.frame().await);
        assert_eq!(
            sent,
            [first.as_bytes().clone(), second.into_bytes()].concat()
        );
    }

    /// Over HTTP/2 the first poll yields, so that the connection sends the response head
    /// before the opening frame is queued; the opening frame comes on the next poll.
    #[tokio::test]
    async fn over_http2_the_opening_frame_waits_one_turn() {
        let body = SseBody::new(stream::pending::<Event>(), Arc::default(), Span::none());
        let mut body = Box::pin(body.over_http2(true));
        let woken = Arc::new(Woken::default());
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(body.as_mut().poll_frame(&mut cx).is_pending());
        assert!(woken.0.load(std::sync::atomic::Ordering::Relaxed));
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(frame) => assert_eq!(frame_bytes(frame), ":\n\n"),
            Poll::Pending => panic!("no opening frame on the second poll"),
        }
    }

    #[derive(Default)]
    struct Woken(std::sync::atomic::AtomicBool);

    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn default_body_is_empty_and_ended() {
        let body = SseBody::<Pending<Event>>::default();
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
    }
}
