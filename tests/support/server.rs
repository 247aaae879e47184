//! A real hyper server on 127.0.0.1:0 and clients that pick their HTTP version explicitly.
//!
//! The server uses hyper-util's `auto` builder, which serves HTTP/1.1 and HTTP/2 with prior
//! knowledge (h2c) on the same port, so one server covers both protocols and the client
//! decides which one a test exercises.

use std::error::Error as StdError;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use hyper::body::{Body, Incoming};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::Service;

type BoxError = Box<dyn StdError + Send + Sync>;

/// The HTTP version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Http1,
    /// HTTP/2 over cleartext with prior knowledge: no upgrade round trip.
    Http2,
}

/// Runs each listed `async fn(Proto)` once over HTTP/1.1 and once over HTTP/2, as the
/// tests `NAME::http1` and `NAME::http2`; the suite must import [`Proto`].
#[allow(unused_macros)] // Not every suite runs over both protocols.
macro_rules! over_both_protocols {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn http1() {
                    super::$name(super::Proto::Http1).await;
                }

                #[tokio::test]
                async fn http2() {
                    super::$name(super::Proto::Http2).await;
                }
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use over_both_protocols;

impl Proto {
    /// HTTP/1.1 for even `n`, HTTP/2 for odd: for suites that open many connections.
    #[allow(dead_code)] // Not every suite opens many.
    pub(crate) fn alternating(n: u64) -> Self {
        if n % 2 == 0 {
            Self::Http1
        } else {
            Self::Http2
        }
    }
}

/// A running server; dropping it stops it too, but [`Server::shutdown`] waits until it has.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and aborts every open connection, which drops their response bodies.
    ///
    /// Not a graceful drain: an SSE response never finishes by itself, so waiting for open
    /// connections could wait forever.
    pub(crate) async fn shutdown(self) {
        // The accept loop also stops when the sender is dropped, so a send error is fine.
        let _ = self.stop.send(());
        self.task.await.expect("server task panicked");
    }
}

/// Serves `service` on a fresh port of 127.0.0.1 until the returned [`Server`] stops.
pub(crate) async fn serve<S, B>(service: S) -> Server
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Dropping the set when the loop ends aborts the connections still open.
        let mut connections = JoinSet::new();
        loop {
            let stream = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => stream,
                    // Per-connection accept errors (e.g. the peer reset first) are not fatal.
                    Err(_) => continue,
                },
                // Reap finished connections so the set does not grow across a long test.
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let service = TowerToHyperService::new(service.clone());
            connections.spawn(async move {
                // A client that goes away mid-response makes this an error; that is the
                // point of some tests, not a failure of the server.
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server { addr, stop, task }
}

/// One client connection speaking `proto`, driven by a task of its own.
#[derive(Debug)]
pub(crate) struct Client {
    proto: Proto,
    addr: SocketAddr,
    sender: Sender,
    connection: JoinHandle<()>,
}

#[derive(Debug)]
enum Sender {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr, proto: Proto) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let io = TokioIo::new(stream);
        let (sender, connection) = match proto {
            Proto::Http1 => {
                let (sender, connection) = http1::handshake(io).await.expect("http/1.1 handshake");
                (Sender::Http1(sender), tokio::spawn(drive(connection)))
            }
            Proto::Http2 => {
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("http/2 handshake");
                (Sender::Http2(sender), tokio::spawn(drive(connection)))
            }
        };
        Self {
            proto,
            addr,
            sender,
            connection,
        }
    }

    /// A `GET` for `path_and_query`, in the form this client's protocol expects.
    pub(crate) fn get(&self, path_and_query: &str) -> http::request::Builder {
        match self.proto {
            // Origin form plus `Host`, as HTTP/1.1 clients send it.
            Proto::Http1 => {
                Request::get(path_and_query).header(http::header::HOST, self.addr.to_string())
            }
            // HTTP/2 needs `:scheme` and `:authority`, which come from an absolute URI.
            Proto::Http2 => Request::get(format!("http://{}{}", self.addr, path_and_query)),
        }
    }

    /// Sends a request, returning the response head as soon as it arrives.
    pub(crate) async fn send(&mut self, request: Request<Empty<Bytes>>) -> Response<Incoming> {
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await.expect("http/1.1 connection ready");
                sender.send_request(request).await
            }
            Sender::Http2(sender) => {
                sender.ready().await.expect("http/2 connection ready");
                sender.send_request(request).await
            }
        };
        response.expect("response")
    }

    /// Closes the TCP connection at once, as a browser tab that is closed does.
    pub(crate) fn disconnect(self) {
        // Aborting the task drops the hyper connection, and with it the socket.
        self.connection.abort();
    }
}

async fn drive<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), hyper::Error>>,
{
    // Errors show up on the request or body that was in flight, where tests check them.
    let _ = connection.await;
}

/// A request without a body.
pub(crate) fn empty(builder: http::request::Builder) -> Request<Empty<Bytes>> {
    builder.body(Empty::new()).expect("valid request")
}
