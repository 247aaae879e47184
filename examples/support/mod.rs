//! What the examples' servers do alike: logging, the address to listen on, and hyper's
//! accept loop. Each example's own file keeps what it shows: its routes and its stream.

// Each example uses the part it needs.
#![allow(dead_code)]

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{sleep, sleep_until, timeout_at, Instant, Sleep};
use tower::{Service, ServiceExt};
use tower_sse::ConnectionKey;

/// Logs to stderr at `info`, or as `RUST_LOG` says.
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Binds the address given as the first argument, else in the variable `env`, else
/// `default`.
pub(crate) async fn listen(env: &str, default: &str) -> std::io::Result<TcpListener> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| default.to_owned());
    let listener = TcpListener::bind(&addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    Ok(listener)
}

/// How long a client may take before the server closes its connection: what stops a
/// client that connects and then stalls from holding a socket, a file descriptor and a task
/// for good (docs/deployment.md, "Hostile clients").
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    /// From accept to the end of the first request head, on either version; 10 s.
    ///
    /// It covers the peek that reads the version, then hyper's read of the head (HTTP/1.1)
    /// or the preface, the handshake and the first request's headers (HTTP/2). On HTTP/1.1
    /// hyper applies what is left of it to every later head on the connection too, so an
    /// idle keep-alive connection closes after it.
    pub(crate) header: Duration,
    /// HTTP/2: how long the client may send nothing before the server sends a PING; 20 s.
    pub(crate) ping_interval: Duration,
    /// HTTP/2: how long a PING may go unanswered before the connection closes; 20 s.
    pub(crate) ping_timeout: Duration,
    /// How long a write may wait for the client to read before the connection closes;
    /// 60 s. TCP alone keeps a connection whose client reads nothing open for as long as
    /// the client acknowledges its probes of the closed window.
    pub(crate) write_stall: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            ping_timeout: Duration::from_secs(20),
            write_stall: Duration::from_secs(60),
        }
    }
}

impl Deadlines {
    /// hyper's HTTP/1.1 settings for a server of long-lived streams.
    pub(crate) fn http1(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            // hyper times the head only with a timer; without one, a half-open connection
            // holds its buffers for good. `serve_with` shortens it by what the peek took.
            .timer(TokioTimer::new())
            .header_read_timeout(self.header)
            // Frames are copied into hyper's one write buffer instead of queued: no queue
            // to allocate on a connection's first frame (about 0.3 KiB per connection),
            // and SSE frames are small.
            .writev(false)
            // What hyper buffers for a client that reads slowly, before it stops polling
            // the body: 64 KiB instead of about 400 KiB.
            .max_buf_size(64 * 1024);
        builder
    }

    /// hyper's HTTP/2 settings for a server of long-lived streams.
    pub(crate) fn http2(&self) -> http2::Builder<TokioExecutor> {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            // A client that stops answering (gone, or not reading) is found by a PING
            // it does not acknowledge; hyper sends none unless asked.
            .keep_alive_interval(self.ping_interval)
            .keep_alive_timeout(self.ping_timeout)
            // What h2 queues per stream for a client that reads slowly: 64 KiB instead of
            // about 400 KiB, as for HTTP/1.1.
            .max_send_buf_size(64 * 1024);
        builder
    }
}

/// [`Deadlines::http1`] with the default deadlines.
pub(crate) fn http1() -> http1::Builder {
    Deadlines::default().http1()
}

/// [`Deadlines::http2`] with the default deadlines.
pub(crate) fn http2() -> http2::Builder<TokioExecutor> {
    Deadlines::default().http2()
}

/// [`serve_with`] the default [`Deadlines`].
pub(crate) async fn serve<S, B>(listener: TcpListener, app: S)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    serve_with(listener, app, Deadlines::default()).await;
}

/// Serves `app` on every connection `listener` accepts, over HTTP/1.1 or HTTP/2, until the
/// task is dropped, closing connections whose client misses one of `deadlines`.
///
/// The version is read with `peek` and each connection gets the builder of its own
/// version, instead of hyper-util's `auto::Builder`: a connection's task holds a future as
/// large as the largest version it might speak, and the HTTP/2 one is much larger (see
/// docs/deployment.md, "Memory per connection").
pub(crate) async fn serve_with<S, B>(listener: TcpListener, app: S, deadlines: Deadlines)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    // Built once: each holds its timer in an `Arc` that the connections share.
    let builders = (deadlines.http1(), deadlines.http2());
    let mut failed: u32 = 0;
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // One connection's failure (reset before it was accepted): the next may be fine.
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(%error, "accept failed for one connection");
                continue;
            }
            Err(error) => {
                // Typically out of file descriptors (EMFILE, ENFILE), which the listener
                // reports again at once: pause, longer while it lasts, so the open
                // connections get served and some close, then try again. Logged once per
                // run of failures, not every few milliseconds.
                failed = failed.saturating_add(1);
                if failed == 1 {
                    tracing::warn!(%error, "accept failed; retrying with a back-off");
                }
                tokio::time::sleep(accept_backoff(failed)).await;
                continue;
            }
        };
        if failed > 0 {
            tracing::info!(failed, "accepting again");
            failed = 0;
        }
        // The keep-alives of one HTTP/2 connection's streams then share wake-ups and writes.
        let key = ConnectionKey::next();
        let service =
            TowerToHyperService::new(app.clone().map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(key);
                req
            }));
        let (http1, http2) = (builders.0.clone(), builders.1.clone());
        let deadline = Instant::now() + deadlines.header;
        let write_stall = deadlines.write_stall;
        // A block, not an `async fn`: the same steps as an `async fn` made each task's
        // future 0.2 KB larger (1,288 against 1,072 bytes in a debug build).
        tokio::spawn(async move {
            let connection = match timeout_at(deadline, is_http2(&tcp)).await {
                Err(_elapsed) => {
                    tracing::debug!(%peer, "closed: no byte before the header deadline");
                    return;
                }
                // Boxed, so the task of an HTTP/1.1 connection is not as large as an
                // HTTP/2 connection's state (1.5 KB against 0.6 KB).
                Ok(true) => {
                    let io = WriteDeadline::new(tcp, write_stall);
                    Box::pin(serve_http2(&http2, io, service, deadline)).await
                }
                Ok(false) => {
                    let mut http1 = http1;
                    http1.header_read_timeout(deadline.saturating_duration_since(Instant::now()));
                    let io = WriteDeadline::new(tcp, write_stall);
                    http1.serve_connection(TokioIo::new(io), service).await
                }
            };
            if let Err(error) = connection {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// Serves one HTTP/2 connection, dropping it if no request has come by `deadline`.
///
/// hyper has no header timeout for HTTP/2, and its PINGs start only once the handshake is
/// done: a client that sends part of the preface, or the preface and then nothing, would
/// otherwise hold the connection for good.
async fn serve_http2<S, B>(
    http2: &http2::Builder<TokioExecutor>,
    io: WriteDeadline,
    service: TowerToHyperService<S>,
    deadline: Instant,
) -> Result<(), hyper::Error>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let requested = Arc::new(Notify::new());
    let service = {
        let requested = Arc::clone(&requested);
        hyper::service::service_fn(move |req| {
            requested.notify_one();
            hyper::service::Service::call(&service, req)
        })
    };
    let mut connection = pin!(http2.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        biased;
        ended = connection.as_mut() => return ended,
        () = requested.notified() => {}
        () = sleep_until(deadline) => {
            // Nothing to drain: no stream was ever opened.
            tracing::debug!("closed: no HTTP/2 request before the header deadline");
            return Ok(());
        }
    }
    connection.await
}

/// A connection's socket whose writes fail with `TimedOut` once one has waited `limit` for
/// the client to make room, so hyper ends the connection.
///
/// A client that stops reading fills the socket's buffers, then hyper's (64 KiB); from
/// then on neither the body nor hyper's timers run, and TCP keeps the connection open for
/// as long as the client acknowledges the probes of its closed window. The timer is
/// allocated only while a write waits.
#[derive(Debug)]
struct WriteDeadline {
    tcp: TcpStream,
    limit: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl WriteDeadline {
    fn new(tcp: TcpStream, limit: Duration) -> Self {
        Self {
            tcp,
            limit,
            waiting: None,
        }
    }

    /// Passes a write's result on, starting the deadline when it waits and clearing it
    /// when it does not.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let limit = self.limit;
        let waiting = self.waiting.get_or_insert_with(|| Box::pin(sleep(limit)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing within the write deadline",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.timed(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.timed(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.tcp).poll_flush(cx);
        self.timed(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.tcp).poll_shutdown(cx);
        self.timed(cx, polled)
    }
}

/// Whether an accept error concerns only the connection being accepted.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// The pause after the `failed`-th accept error in a row: 10 ms, doubling to 320 ms.
fn accept_backoff(failed: u32) -> Duration {
    Duration::from_millis(10) * 2u32.pow(failed.saturating_sub(1).min(5))
}

/// Whether the client opened with the HTTP/2 preface (`PRI * HTTP/2.0`: no HTTP/1.1 method
/// is `PRI`), read with `peek` so hyper still sees every byte.
pub(crate) async fn is_http2(tcp: &TcpStream) -> bool {
    const PREFIX: &[u8] = b"PRI ";
    let mut buf = [0; PREFIX.len()];
    // A client that sends part of `PRI ` and stops (or closes: `peek` keeps returning the
    // bytes) is handed to HTTP/1.1 after 100 ms, whose header read timeout then applies.
    for _ in 0..100 {
        match tcp.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n == PREFIX.len() || buf[..n] != PREFIX[..n] => return buf[..n] == *PREFIX,
            // Part of `PRI ` so far, from a client that writes byte by byte.
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    false
}

/// A request body read as text, at most `limit` bytes (invalid UTF-8 replaced); otherwise
/// the status and message to answer with: `413` over the limit, `400` for a failed read.
pub(crate) async fn read_text(
    body: Incoming,
    limit: usize,
) -> Result<String, (http::StatusCode, String)> {
    use http_body_util::{BodyExt, LengthLimitError, Limited};

    match Limited::new(body, limit).collect().await {
        Ok(body) => Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned()),
        Err(error) => {
            let status = if error.is::<LengthLimitError>() {
                http::StatusCode::PAYLOAD_TOO_LARGE
            } else {
                http::StatusCode::BAD_REQUEST
            };
            Err((status, format!("could not read the body: {error}\n")))
        }
    }
}

/// A whole (not streamed) response with `status`, `content_type` and `body`, on the left
/// of the `Either` whose right side is an example's event stream.
pub(crate) fn text<B>(
    status: http::StatusCode,
    content_type: &'static str,
    body: hyper::body::Bytes,
) -> Response<http_body_util::Either<http_body_util::Full<hyper::body::Bytes>, B>> {
    let mut response = Response::new(http_body_util::Either::Left(http_body_util::Full::new(
        body,
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
