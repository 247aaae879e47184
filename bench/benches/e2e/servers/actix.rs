//! The actix-web-lab server: its `sse` responder on actix-web's `HttpServer` with one
//! worker, the nearest actix-web comes to the other servers' one runtime thread (its
//! accept loop has a thread of its own). Fan-out goes through a `tokio::sync::broadcast`
//! channel, as for axum: actix-web-lab has no broadcast of its own.

use std::convert::Infallible;
use std::future::ready;
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, Responder};
use actix_web_lab::sse::{self, Sse};
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::{query_param, Payload, Tick, IDLE_KEEP_ALIVE};

type Ticks = broadcast::Sender<Option<Tick>>;

/// `h2c`: HTTP/1.1 and HTTP/2 with prior knowledge on one port, for `h2idle`.
pub(super) fn run(port: u16, h2c: bool) {
    // The capacity matches the EventLog's default window of 1024 events.
    let (ticks, _) = broadcast::channel::<Option<Tick>>(1024);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(ticks.clone()))
                .route("/burst", web::get().to(burst))
                .route("/idle", web::get().to(idle))
                .route("/floor", web::get().to(floor))
                .route("/fanout", web::get().to(fanout))
                .route("/start", web::get().to(start))
        })
        .workers(1)
        // The idle scenario opens 10,000 connections; actix-web's default cap is 25,000
        // per worker, and its backlog 1024 (the client opens in waves of 500).
        .max_connections(100_000);
        let server = if h2c {
            server.bind_auto_h2c(("127.0.0.1", port))
        } else {
            server.bind(("127.0.0.1", port))
        };
        server.expect("bind").run().await.expect("server");
    });
}

async fn burst(req: HttpRequest) -> impl Responder {
    let n = query_param(req.query_string(), "n");
    Sse::from_infallible_stream(stream::iter(0..n).map(|seq| {
        // actix-web-lab takes ids as text, like axum.
        sse::Data::new_json(Payload::new(seq))
            .expect("json")
            .id(itoa::Buffer::new().format(seq).to_owned())
            .into()
    }))
}

async fn idle() -> impl Responder {
    Sse::from_infallible_stream(stream::pending::<sse::Event>()).with_keep_alive(IDLE_KEEP_ALIVE)
}

/// What actix-web-lab's users do, as for axum: a receiver per client, lagged errors
/// skipped, each event framed for each client; the keep-alive at axum's default, 15 s.
async fn fanout(ticks: web::Data<Ticks>) -> impl Responder {
    let events = BroadcastStream::new(ticks.subscribe()).filter_map(|msg| {
        ready(msg.ok().map(|tick| {
            let event = match tick {
                Some(tick) => sse::Data::new_json(tick)
                    .expect("json")
                    .id(itoa::Buffer::new().format(tick.seq).to_owned()),
                None => sse::Data::new("").event("end"),
            };
            Ok::<_, Infallible>(event.into())
        }))
    });
    Sse::from_stream(events).with_keep_alive(Duration::from_secs(15))
}

async fn start(ticks: web::Data<Ticks>, req: HttpRequest) -> &'static str {
    let query = req.query_string();
    let (events, rate) = (query_param(query, "events"), query_param(query, "rate"));
    let ticks = ticks.get_ref().clone();
    actix_web::rt::spawn(super::tower_sse::run_source(events, rate, move |tick| {
        let _ = ticks.send(tick);
    }));
    "started"
}

/// A streaming response that never sends a byte: actix-web's floor.
async fn floor() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(stream::pending::<Result<bytes::Bytes, Infallible>>())
}
