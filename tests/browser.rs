//! The examples in a real browser.
//!
//! - clock: Chromium's `EventSource` reads the stream, sees it end after the example's 10 s
//!   lifetime, reconnects with `Last-Event-ID`, and the count goes on with no gap and no
//!   repeat.
//! - tokens: the answer arrives whole, its last event marked as the end of the stream;
//!   `EventSource` reconnects once, gets `204`, and closes for good.
//! - chat: a room's page resumes after it drops its connection (with the `lastEventId`
//!   query parameter) and after the server ends its stream (with the `Last-Event-ID`
//!   header), and sees every message of its room once, in order, and none of another's.
//! - compressed (feature `compression`): a gzip stream whose server sends each event only
//!   after the page acknowledged the one before, so every event reached `EventSource`
//!   decoded and alone, with nothing held back.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` (playwright-core); without them the test
//! prints a notice and passes, unless `TOWER_SSE_REQUIRE_BROWSER` is set.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::process::Command;

#[path = "../examples/clock.rs"]
#[allow(dead_code)] // Its `main` is not used here.
mod clock;

// Each example is a program of its own with its own `mod support`: loaded twice here.
#[path = "../examples/tokens.rs"]
#[allow(dead_code, clippy::duplicate_mod)] // Its `main` is not used here.
mod tokens;

#[path = "../examples/chat.rs"]
#[allow(dead_code, clippy::duplicate_mod)] // Its `main` is not used here.
mod chat;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The script bounds its own wait at 25 s and itself at 50 s; this is the backstop.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct TokensSummary {
    answer: String,
    opens: u32,
    tokens: u32,
    #[serde(rename = "readyState")]
    ready_state: u8,
    state: String,
}

#[derive(Debug, Deserialize)]
struct ChatSummary {
    seen: Vec<Seen>,
    opens: u32,
    state: String,
}

#[derive(Debug, Deserialize)]
struct Seen {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: String,
}

#[derive(Debug, Deserialize)]
struct Summary {
    ticks: Vec<u64>,
    opens: u32,
    text: String,
    state: String,
}

/// What is missing to run the test, if anything.
async fn missing_tool(root: &Path) -> Option<&'static str> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await;
    if !node.is_ok_and(|status| status.success()) {
        return Some("node not found");
    }
    if !Path::new(CHROMIUM).exists() {
        return Some("chromium not found");
    }
    if !root.join("node_modules/playwright-core").is_dir() {
        return Some("node_modules/playwright-core not found (run `npm ci`)");
    }
    None
}

/// Runs `tests/browser/<script>` against `url` and returns its JSON summary; `None` when a
/// tool is missing and the browser is not required.
async fn run_script<T: serde::de::DeserializeOwned>(script: &str, url: &str) -> Option<T> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(missing) = missing_tool(root).await {
        assert!(
            std::env::var_os("TOWER_SSE_REQUIRE_BROWSER").is_none(),
            "browser test required, but {missing}"
        );
        eprintln!("skipping browser test: {missing}");
        return None;
    }

    // CARGO_TARGET_TMPDIR is `<target>/tmp`: the picture goes next to the build outputs.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let screenshot = target.join(script.replace(".mjs", ".png"));

    let run = Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .arg(url)
        .arg(&screenshot)
        .arg(CHROMIUM)
        .current_dir(root)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(CHILD_TIMEOUT, run)
        .await
        .expect("browser script timed out and was killed")
        .expect("node could not be started");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser script failed ({}):\n{stderr}{stdout}",
        output.status
    );
    eprintln!("screenshot at {}", screenshot.display());
    let summary = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("bad summary {stdout:?}: {error}\n{stderr}"));
    Some(summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_resumes_across_reconnect_in_chromium() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(clock::serve(listener, Duration::from_secs(10)));
    let summary: Option<Summary> = run_script("clock.mjs", &url).await;
    server.abort();
    let Some(summary) = summary else { return };
    eprintln!("{summary:?}");

    assert!(
        is_clock_time(&summary.text),
        "page shows {:?}, not a time",
        summary.text
    );
    assert!(
        summary.state.starts_with("open"),
        "page state {:?}",
        summary.state
    );
    assert!(
        summary.opens >= 2,
        "EventSource opened {} times",
        summary.opens
    );
    // The first connection carries at most ticks 0 to 10, so 12 ticks span the reconnect.
    assert!(summary.ticks.len() >= 12, "ticks {:?}", summary.ticks);
    let expected: Vec<u64> = (0..summary.ticks.len() as u64).collect();
    assert_eq!(summary.ticks, expected, "sequence has a gap or a repeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_answer_closes_event_source_in_chromium() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(tokens::serve(listener, Duration::from_millis(5)));
    let summary: Option<TokensSummary> = run_script("tokens.mjs", &url).await;
    server.abort();
    let Some(summary) = summary else { return };
    eprintln!("{summary:?}");

    // The whole answer, once: the reconnect after `done` did not start it again.
    assert_eq!(summary.answer, tokens::ANSWER.concat(), "{summary:?}");
    assert_eq!(summary.tokens as usize, tokens::ANSWER.len(), "{summary:?}");
    assert_eq!(
        summary.opens, 1,
        "the reconnect opened a stream: {summary:?}"
    );
    // Closed by the server's 204, not by the page.
    assert_eq!(summary.ready_state, 2, "{summary:?}");
    assert!(
        summary.state.ends_with("done, closed by the server"),
        "{summary:?}"
    );
}

/// `HH:MM:SS`, as the page shows it.
fn is_clock_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 8
        && bytes.iter().enumerate().all(|(i, b)| match i {
            2 | 5 => *b == b':',
            _ => b.is_ascii_digit(),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_room_resumes_across_reconnects_in_chromium() {
    const ROOM: &str = "browser-test";
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/?room={ROOM}", listener.local_addr().unwrap());
    let rooms = chat::rooms();
    // Streams end after 3 s, so the browser's own reconnect happens within the test.
    let server = tokio::spawn(chat::serve(listener, rooms.clone(), Duration::from_secs(3)));
    let summary: Option<ChatSummary> = run_script("chat.mjs", &url).await;
    server.abort();
    let Some(summary) = summary else { return };
    eprintln!("{summary:?}");

    let data: Vec<&str> = summary.seen.iter().map(|seen| seen.data.as_str()).collect();
    assert_eq!(
        data,
        ["m1", "m2", "m3", "m4", "m5", "m6"],
        "lost, repeated or foreign"
    );
    assert!(summary.seen.iter().all(|seen| seen.kind == "message"));
    let ids: Vec<u64> = summary
        .seen
        .iter()
        .map(|seen| seen.id.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids {ids:?}");
    assert!(
        summary.opens >= 3,
        "EventSource opened {} times",
        summary.opens
    );
    assert!(
        summary.state.starts_with("open"),
        "page state {:?}",
        summary.state
    );

    // m3 and m4 at least came from the room's log on a resume, not live.
    let stats = rooms.key_stats(ROOM).expect("the room exists");
    assert!(stats.replay.replayed >= 2, "{stats:?}");
    assert_eq!(stats.replay.published, 6);
    assert_eq!(rooms.key_stats("elsewhere").unwrap().replay.published, 1);
}

/// A gzip event stream in Chromium: its `EventSource` sends `Accept-Encoding: gzip, deflate,
/// br, zstd`, gets gzip, and acknowledges each event (a `POST /ack`) before the server sends
/// the next; an event held back by a buffer would stall the chain and time the page out.
#[cfg(feature = "compression")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_events_arrive_one_by_one_in_chromium() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = compressed::Seen::default();
    let server = tokio::spawn(compressed::serve(listener, seen.clone()));
    let summary: Option<CompressedSummary> = run_script("compressed.mjs", &url).await;
    server.abort();
    let Some(summary) = summary else { return };
    eprintln!("{summary:?}");

    let expected: Vec<String> = (0..compressed::EVENTS).map(compressed::data).collect();
    assert_eq!(summary.events, expected, "{summary:?}");
    assert_eq!(summary.opens, 1, "{summary:?}");
    let seen = seen.lock().unwrap();
    assert!(
        seen.accept_encoding.contains("gzip"),
        "Chromium sent {:?}",
        seen.accept_encoding
    );
    assert_eq!(seen.content_encoding, "gzip");
    // Every event but the last was acknowledged before the next was sent.
    assert_eq!(seen.acks, compressed::EVENTS - 1);
}

#[cfg(feature = "compression")]
#[derive(Debug, Deserialize)]
struct CompressedSummary {
    events: Vec<String>,
    opens: u32,
}

#[cfg(feature = "compression")]
mod compressed {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http::{header, Method, Request, Response};
    use http_body_util::{Either, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;
    use tower::{service_fn, ServiceBuilder, ServiceExt};
    use tower_sse::{Compression, Event, KeepAlive, SseLayer};

    pub(super) const EVENTS: usize = 6;

    const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>compressed</title>
<pre id="log"></pre>
<script>
window.events = [];
window.opens = 0;
window.done = false;
const source = new EventSource("/events");
source.onopen = () => { window.opens += 1; };
source.onmessage = async (message) => {
  window.events.push(message.data);
  document.getElementById("log").textContent += message.data + "\n";
  const last = JSON.parse(message.data).last;
  if (last) { source.close(); window.done = true; return; }
  await fetch("/ack", { method: "POST" });
};
</script>
"#;

    /// The JSON of event `seq`, as the page should see it.
    pub(super) fn data(seq: usize) -> String {
        format!(
            r#"{{"seq":{seq},"object":"chat.completion.chunk","delta":{{"content":"token {seq}"}},"last":{}}}"#,
            seq + 1 == EVENTS
        )
    }

    #[derive(Debug, Default)]
    pub(super) struct Recorded {
        pub(super) accept_encoding: String,
        pub(super) content_encoding: String,
        pub(super) acks: usize,
    }

    pub(super) type Seen = Arc<Mutex<Recorded>>;

    /// Serves the page, `/events` (gzip, the next event after each `/ack`) and `/ack`.
    pub(super) async fn serve(listener: TcpListener, seen: Seen) {
        // The acknowledgements drive the events: one ack, one more event.
        let (ack_tx, mut ack_rx) = mpsc::channel::<()>(EVENTS);
        let (event_tx, event_rx) = mpsc::channel::<Event>(1);
        tokio::spawn(async move {
            for seq in 0..EVENTS {
                if seq > 0 && ack_rx.recv().await.is_none() {
                    return;
                }
                if event_tx.send(Event::new().data(data(seq))).await.is_err() {
                    return;
                }
            }
            // Keep the stream open after the last event: the page closes it.
            std::future::pending::<()>().await;
        });
        let source = Arc::new(Mutex::new(Some(ReceiverStream::new(event_rx))));
        let layer = SseLayer::new()
            .compression(Compression::gzip())
            .keep_alive(KeepAlive::new());
        let app = service_fn(move |req: Request<Incoming>| {
            let (seen, ack_tx, source, layer) =
                (seen.clone(), ack_tx.clone(), source.clone(), layer.clone());
            async move {
                let response = match (req.method(), req.uri().path()) {
                    (&Method::GET, "/events") => {
                        let accept = req.headers().get(header::ACCEPT_ENCODING);
                        let accept = accept.and_then(|v| v.to_str().ok()).unwrap_or("");
                        seen.lock().unwrap().accept_encoding = accept.to_owned();
                        let mut stream = source.lock().unwrap().take();
                        let events = ServiceBuilder::new().layer(layer).service_fn(
                            move |_req: Request<Incoming>| {
                                let stream = stream.take().expect("one stream only");
                                std::future::ready(Ok::<_, Infallible>(Response::new(stream)))
                            },
                        );
                        let response = events.oneshot(req).await?;
                        let coding = response.headers().get(header::CONTENT_ENCODING);
                        seen.lock().unwrap().content_encoding = coding
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        response.map(Either::Right)
                    }
                    (&Method::POST, "/ack") => {
                        seen.lock().unwrap().acks += 1;
                        let _ = ack_tx.send(()).await;
                        Response::new(Either::Left(Full::new(Bytes::new())))
                    }
                    _ => {
                        let mut page = Response::new(Either::Left(Full::new(Bytes::from(PAGE))));
                        page.headers_mut().insert(
                            header::CONTENT_TYPE,
                            header::HeaderValue::from_static("text/html; charset=utf-8"),
                        );
                        page
                    }
                };
                Ok::<_, Infallible>(response)
            }
        });
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}
