//! A client that never reads holds a bounded amount of the server's memory: hyper's write
//! buffer plus one frame, not the whole stream.
//!
//! A binary of its own: the counting global allocator (`cap`) sees every allocation of the
//! process, so nothing else may run in it.

use std::alloc;
use std::convert::Infallible;
use std::future::ready;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use cap::Cap;
use futures_util::stream::{self, StreamExt};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_sse::{Event, SseLayer};

#[global_allocator]
static ALLOCATOR: Cap<alloc::System> = Cap::new(alloc::System, usize::MAX);

/// One event's data.
const EVENT: usize = 16 * 1024;
/// What the source offers in all: far more than any bound below, so a server that
/// buffered the stream would show it.
const EVENTS: usize = 4 * 1024;
/// The write buffer limit given to hyper (`http1::Builder::max_buf_size`).
const MAX_BUF: usize = 64 * 1024;
/// The body's coalescing limit (`SseLayer::max_frame_bytes`, its default); a frame can pass
/// it by one event.
const MAX_FRAME: usize = 32 * 1024;
/// Socket buffers, kept small so the kernel holds little of the stream.
const SOCKET_BUF: u32 = 64 * 1024;

/// Serves `count` events of `EVENT` bytes to each request; `produced` counts the events the
/// body has taken from the source.
async fn serve(produced: watch::Sender<usize>) -> SocketAddr {
    let socket = TcpSocket::new_v4().expect("socket");
    // Accepted sockets inherit these, so the server's send buffer stays small.
    socket.set_send_buffer_size(SOCKET_BUF).expect("SO_SNDBUF");
    socket
        .bind((Ipv4Addr::LOCALHOST, 0).into())
        .expect("bind 127.0.0.1:0");
    let listener = socket.listen(16).expect("listen");
    let addr = listener.local_addr().expect("local address");
    let produced = Arc::new(produced);
    let app = ServiceBuilder::new()
        .layer(SseLayer::new().no_keep_alive())
        .service_fn(move |_: Request<Incoming>| {
            let produced = produced.clone();
            let data = "x".repeat(EVENT);
            let events = stream::iter(0..EVENTS).map(move |_| {
                produced.send_modify(|n| *n += 1);
                Event::new().data(data.clone())
            });
            ready(Ok::<_, Infallible>(Response::new(events)))
        });
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut builder = http1::Builder::new();
        builder.max_buf_size(MAX_BUF);
        let _ = builder
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app))
            .await;
    });
    addr
}

/// The paused clock advances only when every task is idle: with the client never
/// reading, that is when the server can write no more. Waits for a quiet spell in which
/// the source gave nothing.
async fn until_stalled(produced: &mut watch::Receiver<usize>) -> usize {
    loop {
        let seen = *produced.borrow_and_update();
        match tokio::time::timeout(Duration::from_secs(60), produced.changed()).await {
            Err(_) if *produced.borrow() == seen => return seen,
            Err(_) | Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("server went away"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_reader_that_never_reads_holds_the_write_buffer_and_one_frame() {
    let (tx, mut produced) = watch::channel(0);
    let addr = serve(tx).await;
    // Warm the runtime and the socket paths, then take the baseline.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(SOCKET_BUF).expect("SO_RCVBUF");
    let mut tcp: TcpStream = socket.connect(addr).await.expect("connect");
    let baseline = ALLOCATOR.allocated();

    tcp.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let events = until_stalled(&mut produced).await;
    let held = ALLOCATOR.allocated().saturating_sub(baseline);

    // The source gave what the socket buffers, hyper's queue and one frame hold, and was
    // then left alone: it is nowhere near its end.
    assert!(events > 0, "the body never started");
    assert!(
        events < EVENTS / 4,
        "the body took {events} of {EVENTS} events"
    );
    // hyper's queue stops taking frames at MAX_BUF, so it holds less than MAX_BUF plus
    // one frame; the body holds at most the frame it is building; hyper's read buffer,
    // the connection and the response add a few KiB.
    let bound = MAX_BUF + 2 * (MAX_FRAME + EVENT) + 32 * 1024;
    assert!(
        held <= bound,
        "a stalled stream holds {held} bytes (bound {bound}); it took {events} events"
    );
    eprintln!("slow reader: {held} bytes held after {events} events (bound {bound})");
    drop(tcp);
}
