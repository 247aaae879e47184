//! Connection churn against a real hyper server on 127.0.0.1: 10,000 connect / read /
//! disconnect cycles, cut at different points of a stream's life, leave no live stream
//! behind and give the memory back.
//!
//! In a binary of its own, so the memory it compares is not disturbed by other tests. It
//! compares the live heap, counted by a counting global allocator (`cap`), which any leak
//! moves and nothing else does, and the process's RSS. Frames are kept small
//! (`max_frame_bytes`): with 32 KiB frames and 8 KiB events in flight on 64 connections,
//! where glibc's free chunks fell made the RSS move by 5 % between runs with nothing leaked.

use std::alloc;
use std::convert::Infallible;
use std::future::ready;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tower::ServiceBuilder;
use tower_sse::{Event, KeepAlive, SseLayer};

#[global_allocator]
static ALLOCATOR: cap::Cap<alloc::System> = cap::Cap::new(alloc::System, usize::MAX);

/// Upper bound on any single wait, so a broken build fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(20);
/// Connections open at once: well under the default soft limit of 1024 descriptors, with
/// the server's and the client's end of each in this process.
const CONCURRENCY: usize = 64;
/// The data of one `/events` event.
const EVENT: usize = 2 * 1024;
/// Socket buffers on both ends (the kernel doubles them).
const SOCKET_BUF: u32 = 16 * 1024;

/// Live inner streams and live server connections, with a wake-up whenever one ends.
#[derive(Debug, Default)]
struct Live {
    streams: AtomicUsize,
    connections: AtomicUsize,
    changed: Notify,
}

impl Live {
    fn ended(&self, counter: &AtomicUsize) {
        counter.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Waits until no stream and no connection is live, each step bounded by `LIMIT`.
    async fn wait_idle(&self) {
        loop {
            let changed = self.changed.notified();
            if self.streams.load(Ordering::SeqCst) == 0
                && self.connections.load(Ordering::SeqCst) == 0
            {
                return;
            }
            tokio::time::timeout(LIMIT, changed)
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "still live after {LIMIT:?}: {} streams, {} connections",
                        self.streams.load(Ordering::SeqCst),
                        self.connections.load(Ordering::SeqCst)
                    )
                });
        }
    }
}

/// The inner stream, counted while it lives.
struct Counted<St> {
    inner: St,
    live: Arc<Live>,
}

impl<St> Counted<St> {
    fn new(inner: St, live: Arc<Live>) -> Self {
        live.streams.fetch_add(1, Ordering::SeqCst);
        Self { inner, live }
    }
}

impl<St> Drop for Counted<St> {
    fn drop(&mut self) {
        self.live.ended(&self.live.streams);
    }
}

impl<St: Stream + Unpin> Stream for Counted<St> {
    type Item = St::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<St::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

type Events = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// `/events`: an endless run of `EVENT`-byte events, so a reader that stops is cut mid-event;
/// `/quiet`: no events, a keep-alive every millisecond (the interval is input only: the
/// client reads the keep-alive, it never waits for time to pass).
async fn serve(live: Arc<Live>) -> SocketAddr {
    let socket = TcpSocket::new_v4().expect("socket");
    // Accepted sockets inherit it: the server fills a small send buffer and stops, instead
    // of encoding megabytes for a reader that is about to go away.
    socket.set_send_buffer_size(SOCKET_BUF).expect("SO_SNDBUF");
    socket
        .bind((Ipv4Addr::LOCALHOST, 0).into())
        .expect("bind 127.0.0.1:0");
    let listener = socket.listen(1024).expect("listen");
    let addr = listener.local_addr().expect("local address");
    let big = "x".repeat(EVENT);
    let app = ServiceBuilder::new()
        .layer(
            SseLayer::new()
                .keep_alive(KeepAlive::new().interval(Duration::from_millis(1)))
                // Small frames keep what a cycle allocates small next to the process, so
                // the memory compared moves with leaks, not with the allocator's luck.
                .max_frame_bytes(4 * 1024),
        )
        .service_fn({
            let live = live.clone();
            move |req: Request<Incoming>| {
                let events: Events = if req.uri().path() == "/events" {
                    let big = big.clone();
                    Box::pin(stream::repeat_with(move || Event::new().data(big.clone())))
                } else {
                    Box::pin(stream::pending())
                };
                ready(Ok::<_, Infallible>(Response::new(Counted::new(
                    events,
                    live.clone(),
                ))))
            }
        });
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            live.connections.fetch_add(1, Ordering::SeqCst);
            let (live, service) = (live.clone(), TowerToHyperService::new(app.clone()));
            tokio::spawn(async move {
                // Every cycle ends with the client going away: an error is the norm here.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
                live.ended(&live.connections);
            });
        }
    });
    addr
}

/// Where a cycle cuts its connection.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Right after sending the request: the response may not exist yet.
    AfterRequest,
    /// After the first bytes of the response head, before the opening frame is read.
    InHead,
    /// After part of the first event.
    MidEvent,
    /// After a keep-alive, while the body waits for the next one.
    MidKeepAlive,
}

async fn cycle(addr: SocketAddr, cut: Cut) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(SOCKET_BUF).expect("SO_RCVBUF");
    let mut tcp = socket.connect(addr).await.expect("connect");
    let path = match cut {
        Cut::MidEvent => "/events",
        _ => "/quiet",
    };
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut seen = Vec::new();
    // Smaller than an event, so a reader can stop inside one.
    let mut buf = [0; 512];
    // What has to have arrived before the cut.
    let enough = |seen: &[u8]| match cut {
        Cut::AfterRequest => true,
        Cut::InHead => !seen.is_empty(),
        Cut::MidEvent => memchr::memmem::find(seen, b"data: x").is_some(),
        // The head, the opening comment `:\n\n`, then a keep-alive `:\n\n`.
        Cut::MidKeepAlive => memchr::memmem::find_iter(seen, b":\n\n").count() >= 2,
    };
    while !enough(&seen) {
        let n = tcp.read(&mut buf).await.expect("read");
        assert!(n > 0, "server closed first ({cut:?})");
        seen.extend_from_slice(&buf[..n]);
    }
    if let Cut::MidEvent = cut {
        // Not the whole event: its data cannot fit in what was read.
        assert!(seen.len() < EVENT, "read {} bytes", seen.len());
    }
    // Dropping the socket closes it; unread bytes make the kernel send a reset.
}

/// Runs `n` cycles, `CONCURRENCY` at a time, cutting each at the next point in turn.
async fn churn(addr: SocketAddr, n: usize) {
    const CUTS: [Cut; 4] = [
        Cut::AfterRequest,
        Cut::InHead,
        Cut::MidEvent,
        Cut::MidKeepAlive,
    ];
    let mut running = JoinSet::new();
    for i in 0..n {
        if running.len() == CONCURRENCY {
            join_one(&mut running).await;
        }
        running.spawn(cycle(addr, CUTS[i % CUTS.len()]));
    }
    while !running.is_empty() {
        join_one(&mut running).await;
    }
}

async fn join_one(running: &mut JoinSet<()>) {
    let joined = tokio::time::timeout(LIMIT, running.join_next())
        .await
        .expect("a cycle took longer than LIMIT");
    if let Some(Err(error)) = joined {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// A `Vm*` line of `/proc/self/status`, in KiB.
fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// The live heap, the peak RSS and the current RSS, in KiB.
fn memory() -> (u64, u64, u64) {
    let heap = ALLOCATOR.allocated() as u64 / 1024;
    (heap, vm_kib("VmHWM"), vm_kib("VmRSS"))
}

// One thread, so one allocator arena: the RSS compared is not spread over per-thread
// arenas that each keep their own free memory.
#[tokio::test]
async fn ten_thousand_cut_connections_leave_nothing_behind() {
    let live = Arc::new(Live::default());
    let addr = serve(live.clone()).await;

    // Warm-up: the allocator's arenas, the runtime's slabs and the sockets' first pages
    // reach their working size here, so the comparison below sees only what leaks.
    churn(addr, 2_000).await;
    live.wait_idle().await;
    let (heap_before, peak_before, rss_before) = memory();

    churn(addr, 10_000).await;
    live.wait_idle().await;
    let (heap_after, peak_after, rss_after) = memory();

    eprintln!(
        "churn, KiB after the warm-up -> after 10,000 cycles: live heap {heap_before} -> \
         {heap_after}, peak RSS {peak_before} -> {peak_after}, RSS {rss_before} -> {rss_after}"
    );
    assert_eq!(live.streams.load(Ordering::SeqCst), 0);
    assert!(
        heap_after as f64 <= heap_before as f64 * 1.05,
        "the live heap grew from {heap_before} KiB to {heap_after} KiB over 10,000 cycles"
    );
    assert!(
        rss_after as f64 <= rss_before as f64 * 1.05,
        "RSS grew from {rss_before} KiB to {rss_after} KiB over 10,000 cycles"
    );
}
