//! What the examples' servers do alike: logging, the address to listen on, and hyper's
//! accept loop. Each example's own file keeps what it shows: its routes and its stream.

// Each example uses the part it needs.
#![allow(dead_code)]

use std::convert::Infallible;
use std::error::Error as StdError;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

/// Logs to stderr at `info`, or as `RUST_LOG` says.
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
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

/// Serves `app` on every connection `listener` accepts, over HTTP/1.1 or HTTP/2, until the
/// task is dropped.
///
/// The version is read with `peek` and each connection gets the builder of its own
/// version, instead of hyper-util's `auto::Builder`: a connection's task holds a future as
/// large as the largest version it might speak, and the HTTP/2 one is much larger (see
/// docs/deployment.md, "Memory per connection").
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
    // Built once: each holds its timer in an `Arc` that the connections share.
    let builders = (http1(), http2());
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically out of file descriptors: other connections still need serving,
                // and a short pause lets some close instead of spinning on the same error.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let (http1, http2) = (builders.0.clone(), builders.1.clone());
        tokio::spawn(async move {
            let connection = if is_http2(&tcp).await {
                // Boxed, so the task of an HTTP/1.1 connection is not as large as an
                // HTTP/2 connection's state (1.5 KB against 0.6 KB).
                Box::pin(http2.serve_connection(TokioIo::new(tcp), service)).await
            } else {
                http1.serve_connection(TokioIo::new(tcp), service).await
            };
            if let Err(error) = connection {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// hyper's HTTP/1.1 settings for a server of long-lived streams.
pub(crate) fn http1() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        // A client has 10 s to send its request head; without a timer hyper never times
        // it out, and a half-open connection holds its buffers for good.
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        // Frames are copied into hyper's one write buffer instead of queued: no queue to
        // allocate on a connection's first frame (about 0.3 KiB per connection), and SSE
        // frames are small.
        .writev(false)
        // What hyper buffers for a client that reads slowly, before it stops polling the
        // body: 64 KiB instead of about 400 KiB.
        .max_buf_size(64 * 1024);
    builder
}

/// hyper's HTTP/2 settings for a server of long-lived streams.
pub(crate) fn http2() -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        // What h2 queues per stream for a client that reads slowly: 64 KiB instead of
        // about 400 KiB, as for HTTP/1.1.
        .max_send_buf_size(64 * 1024);
    builder
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
