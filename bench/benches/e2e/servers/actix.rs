//! The actix-web-lab server: its `sse` responder on actix-web's `HttpServer` with one
//! worker, the nearest actix-web comes to the other servers' one runtime thread (its
//! accept loop has a thread of its own). No fan-out route: it has no broadcast of its own.

use std::convert::Infallible;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, Responder};
use actix_web_lab::sse::{self, Sse};
use futures_util::stream::{self, StreamExt};

use crate::{query_param, Payload, IDLE_KEEP_ALIVE};

pub(super) fn run(port: u16) {
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
                .route("/burst", web::get().to(burst))
                .route("/idle", web::get().to(idle))
                .route("/floor", web::get().to(floor))
        })
        .workers(1)
        // The idle scenario opens 10,000 connections; actix-web's default cap is 25,000
        // per worker, and its backlog 1024 (the client opens in waves of 500).
        .max_connections(100_000)
        .bind(("127.0.0.1", port))
        .expect("bind")
        .run()
        .await
        .expect("server");
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

/// A streaming response that never sends a byte: actix-web's floor.
async fn floor() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(stream::pending::<Result<bytes::Bytes, Infallible>>())
}
