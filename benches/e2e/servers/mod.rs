//! The servers under test. tower-sse and axum share one hyper accept loop on a
//! current-thread Tokio runtime, with the setup named after the `/` in the peer's name;
//! actix-web-lab runs on actix-web's own server with one worker.

mod actix;
mod axum;
mod tower_sse;

use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

use crate::current_thread;

/// How hyper serves each connection.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// `http1::Builder::new()`: hyper's defaults.
    Http1,
    /// The HTTP/1.1 settings docs/deployment.md recommends (`support::http1`).
    Tuned,
    /// hyper-util's `auto::Builder` with its defaults, as many servers start.
    Auto,
    /// The recommended setup for HTTP/1.1 and HTTP/2 on one port (`support::serve`): the
    /// version is sniffed with `peek`, then the tuned builder of that version serves.
    AutoTuned,
    /// `http2::Builder::new()` with prior knowledge: hyper's HTTP/2 defaults.
    H2,
}

pub(crate) fn run(which: &str, port: u16) {
    // `+jemalloc` is for the script, which preloads jemalloc for such a server.
    let which = which.split('+').next().unwrap_or(which);
    let (peer, setup) = which.split_once('/').unwrap_or((which, "http1"));
    let setup = match setup {
        "http1" => Setup::Http1,
        "tuned" => Setup::Tuned,
        "auto" => Setup::Auto,
        "auto-tuned" => Setup::AutoTuned,
        "h2" => Setup::H2,
        other => panic!("unknown setup {other}"),
    };
    let router = match peer {
        "tower-sse" => tower_sse::router(),
        "axum" => axum::router(),
        "actix-web-lab" => return actix::run(port),
        other => panic!("unknown server {other}"),
    };
    // Built once: a builder with a timer holds it in an `Arc`, shared by its connections.
    let (tuned_http1, tuned_http2) = (tuned_http1(), tuned_http2());
    current_thread().block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors: the client sees the refusal; keep serving the rest.
                Err(error) => {
                    eprintln!("accept: {error}");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            match setup {
                Setup::Http1 => {
                    tokio::spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Setup::Tuned => {
                    let http1 = tuned_http1.clone();
                    tokio::spawn(async move {
                        let _ = http1.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                Setup::Auto => {
                    tokio::spawn(async move {
                        let _ = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Setup::AutoTuned => {
                    let (http1, http2) = (tuned_http1.clone(), tuned_http2.clone());
                    tokio::spawn(async move {
                        if is_h2(&stream).await {
                            // Boxed, so the task of an HTTP/1.1 connection, the common
                            // case, is not as large as an HTTP/2 connection's state.
                            let conn = http2.serve_connection(TokioIo::new(stream), service);
                            let _ = Box::pin(conn).await;
                        } else {
                            let _ = http1.serve_connection(TokioIo::new(stream), service).await;
                        }
                    });
                }
                Setup::H2 => {
                    tokio::spawn(async move {
                        let _ = http2::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    });
}

/// Keep in step with `examples/support/mod.rs`.
fn tuned_http1() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .writev(false)
        .max_buf_size(64 * 1024);
    builder
}

/// Keep in step with `examples/support/mod.rs`.
fn tuned_http2() -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_send_buf_size(64 * 1024);
    builder
}

/// Whether the client opens with the HTTP/2 preface (`PRI * ..`; no HTTP/1.1 method is
/// `PRI`), read with `peek` so hyper still sees every byte.
async fn is_h2(stream: &TcpStream) -> bool {
    const PREFIX: &[u8] = b"PRI ";
    let mut buf = [0; PREFIX.len()];
    loop {
        match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n == PREFIX.len() || buf[..n] != PREFIX[..n] => return buf[..n] == *PREFIX,
            // A prefix of `PRI ` so far (a client writing byte by byte): wait for the rest.
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// A streaming response that never sends a byte of body: the per-connection floor.
async fn floor() -> http::Response<::axum::body::Body> {
    let body = http_body_util::StreamBody::new(futures_util::stream::pending::<
        Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>,
    >());
    let mut response = http::Response::new(::axum::body::Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// Prints the size of each setup's connection future over a tower-sse router: the part of
/// a connection's memory that lives in its task, before any buffer is allocated.
pub(crate) fn print_sizes() {
    current_thread().block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut clients = Vec::new();
        let mut accepted = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.expect("connect"));
            accepted.push(TokioIo::new(listener.accept().await.expect("accept").0));
        }
        let service = TowerToHyperService::new(tower_sse::router());
        let h2 = http2::Builder::new(TokioExecutor::new())
            .serve_connection(accepted.pop().expect("io"), service.clone());
        let auto = auto::Builder::new(TokioExecutor::new());
        let auto = auto.serve_connection(accepted.pop().expect("io"), service.clone());
        let http1 = http1::Builder::new().serve_connection(accepted.pop().expect("io"), service);
        println!(
            "http1::Builder connection future: {} bytes",
            std::mem::size_of_val(&http1)
        );
        println!(
            "auto::Builder connection future: {} bytes",
            std::mem::size_of_val(&auto)
        );
        println!(
            "http2::Builder connection future: {} bytes",
            std::mem::size_of_val(&h2)
        );
    });
}
