//! The examples' accept loop (`examples/support/mod.rs`, the one docs/deployment.md
//! recommends) against clients that connect and then stall, over real sockets on
//! 127.0.0.1: each is closed by the deadline the deployment notes name for it, and a server
//! out of file descriptors serves again once they are closed. Also the examples' answers
//! to odd requests: the largest `Last-Event-ID` (hello, the README's program) and a wrong
//! method (broadcast).
//!
//! The deadlines are shrunk to a few hundred milliseconds, and each test checks that a
//! connection is closed no sooner than its deadline and well before a generous bound, so
//! the timing cannot make a test flaky. One test lowers the process's descriptor limit: it
//! runs alone (`FDS`), the others side by side.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{Full, StreamBody};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, RwLock};
use tokio::time::{timeout, Instant};
use tower::ServiceBuilder;
use tower_sse::SseLayer;

#[path = "../examples/support/mod.rs"]
mod support;

#[path = "../examples/hello.rs"]
#[allow(dead_code)] // Its `main` is not used here.
mod hello;

// It declares `mod support;` itself, a second copy of the same file, private to it.
#[path = "../examples/broadcast.rs"]
#[allow(dead_code)] // Its `main` is not used here.
#[allow(clippy::duplicate_mod)]
mod broadcast;

use support::Deadlines;

/// Held for writing by the test that lowers the descriptor limit, for reading by the rest:
/// a lowered limit would make their sockets fail.
static FDS: RwLock<()> = RwLock::const_new(());

/// Longer than any deadline here can take to close a connection, however loaded the machine.
const BOUND: Duration = Duration::from_secs(10);
/// The shrunk deadline under test.
const SHORT: Duration = Duration::from_millis(300);
/// A deadline that must not be the one that closes the connection.
const LONG: Duration = Duration::from_secs(60);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_SETTINGS: u8 = 0x4;
const H2_HEADERS: u8 = 0x1;
const H2_PING: u8 = 0x6;
const H2_ACK: u8 = 0x1;
const H2_END_STREAM: u8 = 0x1;
const H2_END_HEADERS: u8 = 0x4;

/// Serves a plain `ok` on 127.0.0.1 with `deadlines`, until the test's runtime ends.
async fn start(deadlines: Deadlines) -> SocketAddr {
    let app = tower::service_fn(|_: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(support::serve_with(listener, app, deadlines));
    addr
}

/// Reads until the server closes the connection and returns what it sent; panics if that
/// takes longer than `BOUND`.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    let read_all = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    timeout(BOUND, read_all)
        .await
        .expect("the server kept the connection open");
    received
}

/// Sends `request` over HTTP/1.1 and returns the whole answer as text; the request should
/// ask for `Connection: close`.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    String::from_utf8(read_until_closed(&mut tcp).await).unwrap()
}

/// An HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The type and flags of each whole frame in `bytes`.
fn h2_frames(mut bytes: &[u8]) -> Vec<(u8, u8)> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        frames.push((bytes[3], bytes[4]));
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    frames
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_deadline() {
    let _shared = FDS.read().await;
    let addr = start(Deadlines {
        header: SHORT,
        ..Deadlines::default()
    })
    .await;

    let opened = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let received = read_until_closed(&mut tcp).await;
    assert!(
        opened.elapsed() >= SHORT,
        "closed after {:?}",
        opened.elapsed()
    );
    assert!(received.is_empty(), "{received:?}");
}

#[tokio::test]
async fn a_request_head_sent_a_line_at_a_time_is_cut_at_the_header_deadline() {
    let _shared = FDS.read().await;
    let addr = start(Deadlines {
        header: SHORT,
        ..Deadlines::default()
    })
    .await;

    let opened = Instant::now();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    // Each line arrives well within the deadline; the head as a whole never ends.
    let trickle = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(20));
        let mut line: &[u8] = b"GET / HTTP/1.1\r\n";
        loop {
            every.tick().await;
            if write.write_all(line).await.is_err() {
                break;
            }
            line = b"x-slow: 1\r\n";
        }
    });
    let mut buf = [0; 1024];
    let closed = timeout(BOUND, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    assert!(closed.is_ok(), "the server kept the connection open");
    assert!(
        opened.elapsed() >= SHORT,
        "closed after {:?}",
        opened.elapsed()
    );
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_at_the_header_deadline() {
    let _shared = FDS.read().await;
    let addr = start(Deadlines {
        header: SHORT,
        ..Deadlines::default()
    })
    .await;

    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    // The whole answer, then the connection stays open for a next request that never comes.
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\nok") {
        let mut buf = [0; 1024];
        let n = timeout(BOUND, tcp.read(&mut buf)).await.unwrap().unwrap();
        assert_ne!(n, 0, "closed before the answer ended: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    let answered = Instant::now();
    assert!(read_until_closed(&mut tcp).await.is_empty());
    // What was left of the deadline when hyper took the connection: nearly all of it.
    let idle = answered.elapsed();
    assert!(idle >= SHORT / 2, "closed after {idle:?}");
}

#[tokio::test]
async fn a_stalled_http2_preface_is_closed_at_the_header_deadline() {
    let _shared = FDS.read().await;
    let addr = start(Deadlines {
        header: SHORT,
        ping_interval: LONG,
        ping_timeout: LONG,
        ..Deadlines::default()
    })
    .await;

    let opened = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // Enough for the server to take it for HTTP/2; the preface's last 8 bytes never come.
    tcp.write_all(&H2_PREFACE[..16]).await.unwrap();
    read_until_closed(&mut tcp).await;
    assert!(
        opened.elapsed() >= SHORT,
        "closed after {:?}",
        opened.elapsed()
    );
}

#[tokio::test]
async fn an_http2_connection_without_a_request_is_closed_at_the_header_deadline() {
    let _shared = FDS.read().await;
    let addr = start(Deadlines {
        header: SHORT,
        ping_interval: LONG,
        ping_timeout: LONG,
        ..Deadlines::default()
    })
    .await;

    let opened = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // A whole handshake: the preface, then the client's (empty) SETTINGS; then nothing.
    tcp.write_all(H2_PREFACE).await.unwrap();
    tcp.write_all(&h2_frame(H2_SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    let received = read_until_closed(&mut tcp).await;
    assert!(
        opened.elapsed() >= SHORT,
        "closed after {:?}",
        opened.elapsed()
    );
    // The server did take it for HTTP/2: it sent its own SETTINGS first.
    assert_eq!(h2_frames(&received).first(), Some(&(H2_SETTINGS, 0)));
}

#[tokio::test]
async fn an_http2_client_that_stops_answering_pings_is_closed() {
    let _shared = FDS.read().await;
    let (interval, wait) = (Duration::from_millis(200), Duration::from_millis(200));
    let addr = start(Deadlines {
        header: LONG,
        ping_interval: interval,
        ping_timeout: wait,
        ..Deadlines::default()
    })
    .await;

    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(H2_PREFACE).await.unwrap();
    tcp.write_all(&h2_frame(H2_SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    // GET / (HPACK: indexed :method GET, :scheme http, :path /, then :authority "a").
    let get = [0x82, 0x86, 0x84, 0x41, 0x01, b'a'];
    let flags = H2_END_HEADERS | H2_END_STREAM;
    // Before the write: the server's PING timer runs from the last frame it read.
    let requested = Instant::now();
    tcp.write_all(&h2_frame(H2_HEADERS, flags, 1, &get))
        .await
        .unwrap();
    // The client reads everything and answers nothing, not even a PING.
    let received = read_until_closed(&mut tcp).await;
    let closed = requested.elapsed();

    let frames = h2_frames(&received);
    assert!(frames.contains(&(H2_HEADERS, H2_END_HEADERS)), "{frames:?}");
    assert!(frames.contains(&(H2_PING, 0)), "{frames:?}");
    assert!(!frames.contains(&(H2_PING, H2_ACK)), "{frames:?}");
    assert!(closed >= interval + wait, "closed after {closed:?}");
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_at_the_write_deadline() {
    let _shared = FDS.read().await;
    // The body holds `alive` until the server drops it with the connection.
    let (alive, dropped) = oneshot::channel::<()>();
    let alive = Arc::new(Mutex::new(Some(alive)));
    let app = tower::service_fn(move |_: Request<Incoming>| {
        let alive = alive.lock().unwrap().take();
        let frames = futures_util::stream::repeat_with(move || {
            let _alive = &alive;
            Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))
        });
        async move { Ok::<_, Infallible>(Response::new(StreamBody::new(frames))) }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let deadlines = Deadlines {
        write_stall: SHORT,
        ..Deadlines::default()
    };
    tokio::spawn(support::serve_with(listener, app, deadlines));

    // A small receive window, so the buffers between the body and the client fill soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    let since = Instant::now();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    // The client reads nothing from here on.
    let ended = timeout(BOUND, dropped).await;
    assert!(
        ended.is_ok(),
        "the server kept writing to a client that reads nothing"
    );
    assert!(
        since.elapsed() >= SHORT,
        "closed after {:?}",
        since.elapsed()
    );
    drop(tcp);
}

/// Lowers the soft limit on open file descriptors, restoring it when dropped.
#[cfg(target_os = "linux")]
struct LowerFdLimit {
    soft: u64,
    hard: u64,
}

#[cfg(target_os = "linux")]
impl LowerFdLimit {
    fn to(limit: u64) -> Self {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        rlimit::setrlimit(rlimit::Resource::NOFILE, limit, hard).unwrap();
        Self { soft, hard }
    }
}

#[cfg(target_os = "linux")]
impl Drop for LowerFdLimit {
    fn drop(&mut self) {
        let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, self.soft, self.hard);
    }
}

/// The server and its clients share this process's descriptors, so the clients' sockets
/// are all made before the limit is lowered: connecting them takes no new descriptor, and
/// only the server's accepts run out.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn out_of_descriptors_the_server_backs_off_and_serves_again() {
    let _alone = FDS.write().await;
    let addr = start(Deadlines {
        header: SHORT,
        ..Deadlines::default()
    })
    .await;

    // More silent clients than the server will be able to accept, and one that wants an
    // answer.
    const SILENT: usize = 24;
    let sockets: Vec<_> = (0..=SILENT)
        .map(|_| tokio::net::TcpSocket::new_v4().unwrap())
        .collect();
    // Leave the server 8 descriptors (9: read_dir's own, counted as open, is closed again).
    const FREE: u64 = 8;
    let open: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let free_below = |limit: u64| limit - open.iter().filter(|&&fd| fd < limit).count() as u64;
    let limit = (0..).find(|&limit| free_below(limit) >= FREE).unwrap();
    let lowered = LowerFdLimit::to(limit);

    let since = Instant::now();
    let mut sockets = sockets.into_iter();
    let mut silent_clients = Vec::new();
    for socket in sockets.by_ref().take(SILENT) {
        silent_clients.push(socket.connect(addr).await.unwrap());
    }
    // Queued behind the silent ones: the server can accept it only once the header
    // deadline has closed some of them.
    let mut tcp = sockets.next().unwrap().connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(read_until_closed(&mut tcp).await).unwrap();
    let answered = since.elapsed();
    drop(lowered);

    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    // Sooner, and the descriptors had not run out: the test would show nothing.
    assert!(answered >= SHORT, "answered after {answered:?}");
    // Every silent client was closed by the server, none by the test.
    for mut client in silent_clients {
        assert!(read_until_closed(&mut client).await.is_empty());
    }
}

/// The README's program (`examples/hello.rs`): `id + 1` on the largest id overflowed.
#[tokio::test]
async fn hello_answers_the_largest_last_event_id_and_ends_the_stream() {
    let _shared = FDS.read().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = ServiceBuilder::new()
        .layer(SseLayer::new().retry(Duration::from_secs(1)))
        .service_fn(hello::ticks);
    tokio::spawn(support::serve(listener, service));

    let request = |last: u64| {
        format!("GET / HTTP/1.1\r\nhost: a\r\nlast-event-id: {last}\r\nconnection: close\r\n\r\n")
    };
    // No id follows the largest: the stream ends with no event, rather than wrap to 0.
    let answer = exchange(addr, &request(u64::MAX)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("content-type: text/event-stream\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("retry: 1000\n\n\r\n0\r\n\r\n"), "{answer}");

    // The one before it gets the largest id, then the stream ends.
    let answer = exchange(addr, &request(u64::MAX - 1)).await;
    let last = format!(
        "id: {max}\ndata: tick {max}\n\n\r\n0\r\n\r\n",
        max = u64::MAX
    );
    assert!(answer.ends_with(&last), "{answer}");
}

#[tokio::test]
async fn broadcast_names_the_allowed_methods_on_405() {
    let _shared = FDS.read().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(broadcast::serve(
        listener,
        tower_sse::replay::EventLog::default(),
    ));

    for (method, path, allow) in [
        ("DELETE", "/publish", "POST"),
        ("GET", "/publish", "POST"),
        ("POST", "/events", "GET"),
        ("PUT", "/", "GET"),
    ] {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let answer = exchange(addr, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{method} {path}: {answer}"
        );
        assert!(
            answer.contains(&format!("\r\nallow: {allow}\r\n")),
            "{method} {path}: {answer}"
        );
    }
}
