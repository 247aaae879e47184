//! The servers under test. tower-sse and axum share one hyper accept loop on a
//! current-thread Tokio runtime, with the setup named after the `/` in the peer's name;
//! actix-web-lab runs on actix-web's own server with one worker.

mod actix;
mod axum;
mod tower_sse;

// The examples' server settings, so the bench measures what the examples and docs recommend.
#[path = "../../../../examples/support/mod.rs"]
mod support;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

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
        "actix-web-lab" => return actix::run(port, matches!(setup, Setup::H2)),
        other => panic!("unknown server {other}"),
    };
    // Built once: a builder with a timer holds it in an `Arc`, shared by its connections.
    let (tuned_http1, tuned_http2) = (support::http1(), support::http2());
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
            // As docs/deployment.md recommends: a key per connection, so that the
            // keep-alives of one HTTP/2 connection's streams share wake-ups and writes.
            let key = ::tower_sse::ConnectionKey::next();
            let service = TowerToHyperService::new(router.clone().map_request(
                move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(key);
                    req
                },
            ));
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
                        if support::is_http2(&stream).await {
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
