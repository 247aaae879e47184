//! Graceful drain over real connections: hyper-util's `GracefulShutdown` finishes only
//! because `Shutdown` ends every live SSE stream at an event boundary.

use crate::support::server;

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use server::{empty, Client, Proto};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::timeout;
use tower::ServiceBuilder;
use tower_sse::{Event, Shutdown, SseLayer};

const STREAMS: u64 = 20;
const WINDOW: Duration = Duration::from_secs(2);

#[tokio::test]
async fn graceful_shutdown_drains_every_live_stream() {
    let shutdown = Shutdown::new()
        .farewell(Event::new().event("bye").unwrap().data("restarting"))
        .reconnect_window(WINDOW);
    let service = ServiceBuilder::new()
        .layer(SseLayer::new().shutdown(shutdown.clone()))
        .service_fn(|_req: Request<Incoming>| async {
            // Streams that never end by themselves: only the drain can finish them.
            Ok::<_, Infallible>(Response::new(stream::pending::<Event>()))
        });

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let graceful = GracefulShutdown::new();
            let mut stopped = std::pin::pin!(stopped);
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let service = TowerToHyperService::new(service.clone());
                        let connection = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .into_owned();
                        let connection = graceful.watch(connection);
                        tokio::spawn(async move {
                            let _ = connection.await;
                        });
                    }
                    _ = &mut stopped => break,
                }
            }
            // The order that matters: end the streams, then wait for the connections.
            shutdown.trigger();
            graceful.shutdown().await;
        }
    });

    let mut readers = Vec::new();
    for n in 0..STREAMS {
        let mut client = Client::connect(addr, Proto::alternating(n)).await;
        let response = client.send(empty(client.get("/events"))).await;
        let mut body = response.into_body();
        let opening = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(opening, ":\n\n");
        readers.push(tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Some(frame) = body.frame().await {
                rest.extend_from_slice(&frame.expect("clean end").into_data().unwrap());
            }
            drop(client);
            Bytes::from(rest)
        }));
    }

    stop.send(()).unwrap();
    timeout(Duration::from_secs(10), server)
        .await
        .expect("graceful shutdown finished")
        .unwrap();

    for reader in readers {
        let rest = timeout(Duration::from_secs(10), reader)
            .await
            .unwrap()
            .unwrap();
        let text = std::str::from_utf8(&rest).unwrap();
        let retry: u64 = text
            .strip_prefix("event: bye\ndata: restarting\n\nretry: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("unexpected final frames {text:?}"))
            .parse()
            .unwrap();
        assert!(retry <= WINDOW.as_millis() as u64);
    }
}
