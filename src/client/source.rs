//! [`EventSource`]: the `Stream`, and its poll as the standard's steps.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Buf;
use futures_core::Stream;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::builder::{Builder, Config};
use super::error::{Error, RedirectError, RefusedResponse};
use super::handle::{self, Handle, Shared};
use super::item::{Cause, Closed, Item, Opened, Reconnecting};
use super::request::{self, MakeRequest, Redirect};
use crate::decode::{Decoded, Decoder};
use crate::error::BoxError;

/// A [`Service`] that answers `http::Response`s: every `Service<Request<B>, Response =
/// Response<Body>>` is one. It only names the response body's type for [`EventSource`];
/// there is nothing to implement.
pub trait HttpService<B>: Service<Request<B>> {
    /// The response body.
    type ResponseBody;

    #[doc(hidden)]
    fn into_http_response(response: Self::Response) -> Response<Self::ResponseBody>;
}

impl<S, B, RB> HttpService<B> for S
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type ResponseBody = RB;

    fn into_http_response(response: Self::Response) -> Response<RB> {
        response
    }
}

pin_project! {
    /// A reconnecting event stream over any tower [`Service`]: the browser's
    /// `EventSource`, as a [`Stream`] of [`Item`]s.
    ///
    /// It follows the WHATWG processing model: each attempt sends the request with
    /// `Accept: text/event-stream`, `Cache-Control: no-cache` and, when the last event id is
    /// not empty, `Last-Event-ID`; a `200` with `text/event-stream` opens the stream; `204`
    /// closes it for good; redirects are followed; any other status or content type fails
    /// it ([`Error`]); an ended or broken stream is reconnected after the reconnection time
    /// (which `retry:` sets), an unfinished event being discarded. See [`Builder`] for
    /// what it adds (backoff, timeouts, caps, a retry policy).
    ///
    /// Nothing runs in the background: the stream reads only when polled, one chunk at a
    /// time, so a consumer that stops polling stops the reading (the connection's own
    /// buffers then fill and TCP pushes back on the server). Errors end the stream: after
    /// an `Err`, or after [`Item::Closed`], it yields `None`.
    ///
    /// Its timers are Tokio's: poll it on a Tokio runtime with time enabled (as
    /// `#[tokio::main]` sets up). It can be built anywhere; the first timer is made on the
    /// first poll.
    ///
    /// The stream is `Unpin` when the service's future and its response body are (as
    /// hyper-util's client's are); otherwise pin it (`std::pin::pin!`, `Box::pin`) to call
    /// `StreamExt::next`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use futures_util::{stream, StreamExt};
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceBuilder};
    /// use tower_sse::client::{EventSource, Item};
    /// use tower_sse::{Event, SseLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_sse::client::Error> {
    /// // An in-process server; a hyper-util `Client` is used the same way.
    /// let server = ServiceBuilder::new()
    ///     .layer(SseLayer::new().no_opening_frame())
    ///     .service_fn(|_req: Request<String>| async {
    ///         let events = stream::iter([Event::new().id("1")?.data("hello")]);
    ///         Ok::<_, tower_sse::EventError>(Response::new(events))
    ///     });
    /// let request = Request::post("/v1/stream").body(String::from("{}")).unwrap();
    /// // `service_fn`'s future is not `Unpin`, so neither is the stream: pin it.
    /// let mut source = std::pin::pin!(EventSource::new(server, request));
    ///
    /// assert!(matches!(source.next().await.transpose()?, Some(Item::Open(_))));
    /// let Some(Item::Event(event)) = source.next().await.transpose()? else { panic!() };
    /// assert_eq!((event.data(), event.last_event_id()), ("hello", "1"));
    /// // The server ended the stream: the client will reconnect with `Last-Event-ID: 1`.
    /// let Some(Item::Reconnecting(next)) = source.next().await.transpose()? else { panic!() };
    /// assert_eq!(next.attempt(), 1);
    /// assert_eq!(source.last_event_id(), "1");
    /// # Ok(())
    /// # }
    /// ```
    // The bound is on the struct, as on tower's `Oneshot`: the state holds the service's
    // future and its response body, which only the bound names.
    #[must_use = "streams do nothing unless polled"]
    #[project = SourceProj]
    pub struct EventSource<S, R, B>
    where
        S: HttpService<B>,
    {
        service: S,
        make_request: R,
        config: Config,
        // Keeps the last event id and the reconnection time across connections.
        decoder: Decoder,
        reconnection_time: Duration,
        // Failed attempts since the last event, and when the first of them failed.
        attempt: u32,
        failing_since: Option<Instant>,
        redirect: Option<Redirect>,
        redirects: u32,
        // The method and URI of the request in flight, to resolve a redirect against.
        in_flight: Option<(Method, Uri)>,
        // The one timer: the wait before an attempt, the connect timeout or the read timeout.
        timer: Timer,
        last_read: Instant,
        shared: Arc<Shared>,
        #[pin]
        state: State<S::Future, S::ResponseBody>,
        _request_body: PhantomData<fn() -> B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, RB> {
        // The first poll, or right after a wait or a requested reconnect.
        Start,
        Wait,
        Ready,
        Connecting { #[pin] future: F },
        Open { #[pin] body: RB },
        Refusing {
            #[pin]
            body: RB,
            refused: Option<Box<RefusedResponse>>,
            // The start of the body, up to `error_body_limit` bytes.
            prefix: Vec<u8>,
            // A `200` with another content type, rather than another status.
            content_type: bool,
        },
        Done,
    }
}

/// Where a stream is, as the browser's `EventSource.readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadyState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// A stream is open.
    Open,
    /// Closed or failed: the stream yields nothing more.
    Closed,
}

impl<S, R, B> EventSource<S, R, B>
where
    S: HttpService<B>,
{
    /// A stream with the default settings ([`Builder::new`]); `request` makes each
    /// attempt's request ([`MakeRequest`]).
    pub fn new(service: S, request: R) -> Self
    where
        R: MakeRequest<B>,
    {
        Builder::new().build(service, request)
    }

    pub(crate) fn from_parts(
        service: S,
        make_request: R,
        config: Config,
        decoder: Decoder,
    ) -> Self {
        Self {
            reconnection_time: config.reconnection_time,
            service,
            make_request,
            config,
            decoder,
            attempt: 0,
            failing_since: None,
            redirect: None,
            redirects: 0,
            in_flight: None,
            timer: Timer::default(),
            last_read: Instant::now(),
            shared: Arc::default(),
            state: State::Start,
            _request_body: PhantomData,
        }
    }

    /// The last event id: sent as `Last-Event-ID` on the next connection when not empty.
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The reconnection time: the server's last `retry:`, or the configured one.
    pub fn reconnection_time(&self) -> Duration {
        self.reconnection_time
    }

    /// Connecting, open or closed.
    pub fn ready_state(&self) -> ReadyState {
        match self.state {
            State::Open { .. } => ReadyState::Open,
            State::Done => ReadyState::Closed,
            _ => ReadyState::Connecting,
        }
    }

    /// A handle to reconnect or close this stream from elsewhere.
    pub fn handle(&self) -> Handle {
        Handle::new(self.shared.clone())
    }

    /// The service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }
}

impl<S, R, B> fmt::Debug for EventSource<S, R, B>
where
    S: HttpService<B>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("ready_state", &self.ready_state())
            .field("last_event_id", &self.last_event_id())
            .field("reconnection_time", &self.reconnection_time)
            .field("attempt", &self.attempt)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, R, B> Stream for EventSource<S, R, B>
where
    S: HttpService<B>,
    S::Error: Into<BoxError>,
    S::ResponseBody: Body,
    <S::ResponseBody as Body>::Error: Into<BoxError>,
    R: MakeRequest<B>,
    B: Default,
{
    type Item = Result<Item, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let poll = this.poll_item(cx);
        // Only a stream someone holds a `Handle` to needs waking for a request.
        if poll.is_pending() && Arc::strong_count(this.shared) > 1 {
            this.shared.register(cx.waker());
            if this.shared.is_requested() {
                cx.waker().wake_by_ref();
            }
        }
        poll
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.state {
            State::Done => (0, Some(0)),
            _ => (0, None),
        }
    }
}

type Next = Poll<Option<Result<Item, Error>>>;

/// Body frames read in one poll without an item to yield, before the task yields.
const FRAME_BUDGET: usize = 64;

fn yield_item(item: Item) -> Next {
    Poll::Ready(Some(Ok(item)))
}

impl<S, R, B> SourceProj<'_, S, R, B>
where
    S: HttpService<B>,
    S::Error: Into<BoxError>,
    S::ResponseBody: Body,
    <S::ResponseBody as Body>::Error: Into<BoxError>,
    R: MakeRequest<B>,
    B: Default,
{
    /// The steps, in order: a handle's request, then the current state's step, until one
    /// yields or waits.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Next {
        loop {
            if let Some(request) = self.shared.take() {
                if let Some(next) = self.on_request(request) {
                    return next;
                }
            }
            let next = match self.state.as_mut().project() {
                StateProj::Start => {
                    self.start_attempt();
                    continue;
                }
                StateProj::Wait => match self.timer.poll(cx) {
                    Poll::Ready(()) => {
                        self.state.set(State::Start);
                        continue;
                    }
                    Poll::Pending => return Poll::Pending,
                },
                StateProj::Ready => self.poll_ready(cx),
                StateProj::Connecting { .. } => self.poll_response(cx),
                StateProj::Open { .. } => self.poll_open(cx),
                StateProj::Refusing { .. } => self.poll_refused_body(cx),
                StateProj::Done => return Poll::Ready(None),
            };
            match next {
                // A step that only changed the state.
                Poll::Ready(None) => continue,
                Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn on_request(&mut self, request: handle::Request) -> Option<Next> {
        if matches!(self.state.as_ref().get_ref(), State::Done) {
            return None;
        }
        match request {
            handle::Request::Close => {
                self.state.set(State::Done);
                Some(yield_item(Item::Closed(Closed::Requested)))
            }
            handle::Request::Reconnect => {
                self.reset_attempt();
                self.state.set(State::Start);
                Some(yield_item(Item::Reconnecting(Reconnecting {
                    attempt: self.attempt.saturating_add(1),
                    delay: Duration::ZERO,
                    cause: Cause::Requested,
                })))
            }
        }
    }

    /// Arms the connect timeout (each redirect hop has its own) and waits for the service.
    fn start_attempt(&mut self) {
        let deadline = self
            .config
            .connect_timeout
            .map(|timeout| deadline_after(Instant::now(), timeout));
        self.timer.set(deadline);
        self.state.set(State::Ready);
    }

    /// `poll_ready`, then the attempt's request. A ready service beats an expired timer.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Next {
        match self.service.poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => return self.reconnect(Cause::Service(error.into()), None),
            Poll::Pending => return self.poll_connect_timeout(cx),
        }
        let mut request = self.make_request.make_request();
        request::prepare(
            &mut request,
            self.redirect.as_ref(),
            self.decoder.last_event_id(),
        );
        *self.in_flight = Some((request.method().clone(), request.uri().clone()));
        let future = self.service.call(request);
        self.state.set(State::Connecting { future });
        Poll::Ready(None)
    }

    fn poll_connect_timeout(&mut self, cx: &mut Context<'_>) -> Next {
        match self.timer.poll(cx) {
            Poll::Ready(()) => self.reconnect(Cause::ConnectTimeout, None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The response head; a ready response beats an expired timer.
    fn poll_response(&mut self, cx: &mut Context<'_>) -> Next {
        let StateProj::Connecting { future } = self.state.as_mut().project() else {
            return Poll::Ready(None);
        };
        match future.poll(cx) {
            Poll::Ready(Ok(response)) => self.on_response(S::into_http_response(response)),
            Poll::Ready(Err(error)) => self.reconnect(Cause::Service(error.into()), None),
            Poll::Pending => self.poll_connect_timeout(cx),
        }
    }

    /// The standard's checks on the response: open, close, redirect, retry or fail.
    fn on_response(&mut self, response: Response<S::ResponseBody>) -> Next {
        let (parts, body) = response.into_parts();
        let status = parts.status;
        if status == StatusCode::OK && request::is_event_stream(&parts.headers) {
            let redirects = std::mem::take(self.redirects);
            *self.redirect = None;
            self.arm_read_timeout();
            self.state.set(State::Open { body });
            return yield_item(Item::Open(Opened {
                status,
                headers: parts.headers,
                redirects,
            }));
        }
        if status == StatusCode::NO_CONTENT {
            self.state.set(State::Done);
            return yield_item(Item::Closed(Closed::NoContent));
        }
        if request::is_redirect(status) {
            return self.follow(status, &parts.headers);
        }
        if self.config.retry_policy.retries(status) {
            let retry_after = request::retry_after(&parts.headers, SystemTime::now());
            return self.reconnect(
                Cause::Status {
                    status,
                    retry_after,
                },
                retry_after,
            );
        }
        self.arm_read_timeout();
        self.state.set(State::Refusing {
            body,
            refused: Some(Box::new(RefusedResponse {
                status,
                headers: parts.headers,
                body: bytes::Bytes::new(),
                body_truncated: false,
            })),
            prefix: Vec::new(),
            content_type: status == StatusCode::OK,
        });
        Poll::Ready(None)
    }

    fn follow(&mut self, status: StatusCode, headers: &http::HeaderMap) -> Next {
        *self.redirects = self.redirects.saturating_add(1);
        if *self.redirects > self.config.max_redirects {
            return self.fail(Error::Redirect(RedirectError::TooMany {
                limit: self.config.max_redirects,
            }));
        }
        let Some((method, uri)) = self.in_flight.take() else {
            return self.fail(Error::Redirect(RedirectError::MissingLocation(status)));
        };
        match Redirect::follow(status, &method, &uri, headers, self.redirect.as_ref()) {
            Ok(redirect) => {
                *self.redirect = Some(redirect);
                self.start_attempt();
                Poll::Ready(None)
            }
            Err(error) => self.fail(Error::Redirect(error)),
        }
    }

    /// Items already decoded first (a ready event beats an expired timer), then the body,
    /// then the read timeout.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Next {
        let mut frames = 0;
        loop {
            match self.decoder.next_item() {
                Ok(Some(Decoded::Event(event))) => {
                    // An event is what proves the connection works: the backoff restarts.
                    *self.attempt = 0;
                    *self.failing_since = None;
                    return yield_item(Item::Event(event));
                }
                Ok(Some(Decoded::Retry(time))) => {
                    *self.reconnection_time = time;
                    continue;
                }
                Ok(Some(Decoded::Comment(comment))) => return yield_item(Item::Comment(comment)),
                Ok(None) => {}
                Err(error) => return self.fail(Error::Decode(error)),
            }
            let StateProj::Open { body } = self.state.as_mut().project() else {
                return Poll::Ready(None);
            };
            // A server that floods comments (skipped) or frames without events must not
            // keep this task from yielding: after a budget of frames, poll again later.
            if frames == FRAME_BUDGET {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            frames += 1;
            match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        push_buf(self.decoder, data);
                        if self.config.read_timeout.is_some() {
                            *self.last_read = Instant::now();
                        }
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    return self.reconnect(Cause::Body(error.into()), None)
                }
                Poll::Ready(None) => return self.reconnect(Cause::Ended, None),
                Poll::Pending if self.read_timed_out(cx) => {
                    return self.reconnect(Cause::ReadTimeout, None)
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Whether no byte came for the read timeout. It runs from the last byte: the timer is
    /// not reset per chunk, but when it fires early it moves to the real deadline.
    fn read_timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = self.config.read_timeout else {
            return false;
        };
        loop {
            if self.timer.poll(cx).is_pending() {
                return false;
            }
            let deadline = deadline_after(*self.last_read, timeout);
            if Instant::now() >= deadline {
                return true;
            }
            self.timer.set(Some(deadline));
        }
    }

    fn arm_read_timeout(&mut self) {
        let now = Instant::now();
        *self.last_read = now;
        self.timer.set(
            self.config
                .read_timeout
                .map(|timeout| deadline_after(now, timeout)),
        );
    }

    /// Reads up to `error_body_limit` bytes of a refused response, then fails with it.
    fn poll_refused_body(&mut self, cx: &mut Context<'_>) -> Next {
        let limit = self.config.error_body_limit;
        let complete = loop {
            let StateProj::Refusing { body, prefix, .. } = self.state.as_mut().project() else {
                return Poll::Ready(None);
            };
            if prefix.len() >= limit {
                break body.is_end_stream();
            }
            match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() && prefix.len() < limit {
                            let chunk = data.chunk();
                            let take = chunk.len().min(limit - prefix.len());
                            prefix.extend_from_slice(&chunk[..take]);
                            data.advance(take);
                        }
                        if data.has_remaining() {
                            break false;
                        }
                    }
                }
                // A broken body: what arrived is what the error keeps.
                Poll::Ready(Some(Err(_))) => break false,
                Poll::Ready(None) => break true,
                Poll::Pending if self.read_timed_out(cx) => break false,
                Poll::Pending => return Poll::Pending,
            }
        };
        let StateProj::Refusing {
            refused,
            prefix,
            content_type,
            ..
        } = self.state.as_mut().project()
        else {
            return Poll::Ready(None);
        };
        let Some(mut response) = refused.take() else {
            return Poll::Ready(None);
        };
        response.body = std::mem::take(prefix).into();
        response.body_truncated = !complete;
        let error = if *content_type {
            Error::ContentType(response)
        } else {
            Error::Status(response)
        };
        self.fail(error)
    }

    fn fail(&mut self, error: Error) -> Next {
        tracing::debug!(%error, "event stream failed");
        self.state.set(State::Done);
        Poll::Ready(Some(Err(error)))
    }

    /// Forgets the attempt in progress: its redirects and any unfinished event.
    fn reset_attempt(&mut self) {
        *self.redirect = None;
        *self.redirects = 0;
        *self.in_flight = None;
        self.decoder.finish();
    }

    /// "Reestablish the connection": waits the backoff (or a longer `Retry-After`), unless
    /// a cap says to give up.
    fn reconnect(&mut self, cause: Cause, retry_after: Option<Duration>) -> Next {
        self.reset_attempt();
        *self.attempt = self.attempt.saturating_add(1);
        let attempt = *self.attempt;
        let now = Instant::now();
        let since = *self.failing_since.get_or_insert(now);
        let mut delay = self.config.backoff(*self.reconnection_time, attempt);
        if let Some(retry_after) = retry_after {
            delay = delay.max(self.config.retry_policy.retry_after(retry_after));
        }
        let over_attempts = self.config.max_attempts.is_some_and(|max| attempt > max);
        let over_time = self
            .config
            .max_elapsed
            .is_some_and(|max| deadline_after(now, delay).saturating_duration_since(since) > max);
        if over_attempts || over_time {
            tracing::debug!(attempt, %cause, "event stream gave up");
            return self.fail(Error::GaveUp {
                attempts: attempt - 1,
                cause: Box::new(cause),
            });
        }
        tracing::debug!(attempt, ?delay, %cause, "event stream reconnecting");
        self.timer.set(Some(deadline_after(now, delay)));
        self.state.set(State::Wait);
        yield_item(Item::Reconnecting(Reconnecting {
            attempt,
            delay,
            cause,
        }))
    }
}

/// `start + duration`, or far ahead when that overflows.
fn deadline_after(start: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    start
        .checked_add(duration)
        .or_else(|| start.checked_add(FAR))
        .unwrap_or(start)
}

/// Pushes every chunk of `data` (a `Buf` may hold several).
fn push_buf(decoder: &mut Decoder, mut data: impl Buf) {
    while data.has_remaining() {
        let chunk = data.chunk();
        let len = chunk.len();
        decoder.push(chunk);
        data.advance(len);
    }
}

/// One `Sleep`, made on first use (so a stream can be built outside a runtime) and reset
/// in place after that.
#[derive(Default)]
struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    deadline: Option<Instant>,
}

impl Timer {
    /// Arms the timer for `deadline`, or disarms it.
    fn set(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        if let (Some(deadline), Some(sleep)) = (deadline, &mut self.sleep) {
            sleep.as_mut().reset(deadline);
        }
    }

    /// Ready once the deadline has passed; never when disarmed.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        sleep.as_mut().poll(cx)
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("deadline", &self.deadline)
            .finish()
    }
}
