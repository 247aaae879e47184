//! The tonic example: a gRPC health call and SSE streams against one port, served by
//! `axum::serve` on 127.0.0.1:0.
// The shared test support keeps the library's MSRV (1.75), older than `is_multiple_of`.
#![allow(clippy::manual_is_multiple_of)]

#[path = "../../../tests/support/blocks.rs"]
#[allow(dead_code)] // The suites' shared helpers: this test uses a part.
mod blocks;
#[path = "../../../tests/support/server.rs"]
#[allow(dead_code)] // The server half is not used: this test runs `axum::serve`.
mod server;

#[path = "../src/main.rs"]
#[allow(dead_code)] // Its `main` is not used here.
mod example;

use std::net::Ipv4Addr;
use std::time::Duration;

use http::{header, StatusCode};
use tokio::net::TcpListener;
use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use blocks::{within, Blocks};
use server::{empty, Client, Proto};

/// Long enough that the clock never ticks a second time during the test.
const NEVER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn grpc_and_sse_share_one_port() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let app = example::app(NEVER).await;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // An SSE stream stays open on its own connection while gRPC calls come and go.
    let mut sse_client = Client::connect(addr, Proto::Http1).await;
    let response = sse_client.send(empty(sse_client.get("/clock"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut clock = Blocks::new(response.into_body());
    assert_eq!(clock.next().await, "retry: 1000\n\n");
    assert!(clock.next().await.starts_with("id: 0\ndata: "));

    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    let channel = within("gRPC connect", endpoint.connect())
        .await
        .expect("gRPC connection");
    let mut health = HealthClient::new(channel);
    for (service, expected) in [
        ("", ServingStatus::Serving),
        (example::CLOCK_SERVICE, ServingStatus::Serving),
    ] {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let response = within("health check", health.check(request))
            .await
            .expect("health check answered");
        assert_eq!(response.into_inner().status(), expected, "{service:?}");
    }
    // A real gRPC status from the same port, not an HTTP error page.
    let request = HealthCheckRequest {
        service: "no.such.Service".to_owned(),
    };
    let status = within("health check", health.check(request))
        .await
        .expect_err("unknown service");
    assert_eq!(status.code(), tonic::Code::NotFound);

    // And SSE over HTTP/2 on the same port, beside the gRPC connection's protocol.
    let mut h2_client = Client::connect(addr, Proto::Http2).await;
    let request = h2_client.get("/clock").header("last-event-id", "9");
    let response = h2_client.send(empty(request)).await;
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut resumed = Blocks::new(response.into_body());
    assert_eq!(resumed.next().await, "retry: 1000\n\n");
    assert!(resumed.next().await.starts_with("id: 10\ndata: "));

    server.abort();
}
