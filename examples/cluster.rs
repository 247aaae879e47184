//! Several server nodes, one Redis stream: `cargo run --example cluster --features redis`,
//! with Redis on 127.0.0.1:6379 (`redis-server --save '' --appendonly no` will do), then
//! open http://127.0.0.1:3010 and http://127.0.0.1:3011.
//!
//! Arguments, or the environment: the Redis URL (`CLUSTER_REDIS_URL`, default
//! `redis://127.0.0.1:6379/`), the number of nodes (`CLUSTER_NODES`, default 2). Node `i`
//! listens on 127.0.0.1 at port `CLUSTER_PORT + i` (default 3010) with its own
//! [`RedisLog`] on the stream `CLUSTER_KEY` (default `tower-sse:cluster`), as separate
//! processes would; each publishes a heartbeat every 5 s.
//!
//! Every node serves `GET /events`, `POST /publish` and a page at `/`. The page's "move to
//! node N" buttons open the same page on another node, carrying the last id they saw in the
//! `lastEventId` query parameter: the other node goes on right after it. With curl:
//!
//! ```text
//! curl -N 127.0.0.1:3010/events                                # node 0, live
//! curl -d hello 127.0.0.1:3011/publish                         # publish on node 1
//! curl -N -H 'Last-Event-ID: <an id>' 127.0.0.1:3011/events    # resume on node 1
//! ```

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::time::{interval, MissedTickBehavior};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_sse::{
    replay::redis::RedisLog, replay::Subscription, Event, KeepAlive, LastEventId, SseBody, SseLayer,
};

mod support;

const PAGE: &str = include_str!("cluster.html");
const MAX_POST_BYTES: usize = 64 * 1024;

fn setting(arg: usize, env: &str, default: &str) -> String {
    std::env::args()
        .nth(arg)
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();

    let url = setting(1, "CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/");
    let nodes: u16 = setting(2, "CLUSTER_NODES", "2").parse()?;
    let first_port: u16 = std::env::var("CLUSTER_PORT").map_or(Ok(3010), |port| port.parse())?;
    let key = std::env::var("CLUSTER_KEY").unwrap_or_else(|_| "tower-sse:cluster".to_owned());
    let ports: Vec<u16> = (0..nodes).map(|i| first_port + i).collect();

    for (node, &port) in ports.iter().enumerate() {
        let log = RedisLog::builder(key.clone())
            .max_events(1_000)
            .max_age(Duration::from_secs(600))
            .connect(&url)
            .await?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        tracing::info!(node, "listening on http://{}", listener.local_addr()?);
        tokio::spawn(heartbeat(log.clone(), node));
        let page = PAGE
            .replace("/*NODE*/0", &node.to_string())
            .replace("/*PORTS*/[]", &format!("{ports:?}"));
        tokio::spawn(serve(listener, log, page));
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Publishes a heartbeat every 5 s, so the page shows the nodes' events in one order.
async fn heartbeat(log: RedisLog, node: usize) {
    let mut every = interval(Duration::from_secs(5));
    every.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        let Ok(event) = Event::new().event("heartbeat") else {
            return;
        };
        if let Err(error) = log.publish(event.data(format!("node {node}"))).await {
            tracing::warn!(node, %error, "heartbeat not published");
        }
    }
}

async fn serve(listener: TcpListener, log: RedisLog, page: String) {
    let events = ServiceBuilder::new()
        .layer(
            SseLayer::new()
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                .retry(Duration::from_secs(1))
                .last_event_id_query("lastEventId"),
        )
        .service_fn({
            let log = log.clone();
            move |req: Request<Incoming>| {
                let log = log.clone();
                let last_event_id = req.extensions().get::<LastEventId>().cloned();
                async move { Ok::<_, Infallible>(log.response(last_event_id.as_ref()).await) }
            }
        });
    let page = Bytes::from(page);
    let app = service_fn(move |req| route(req, events.clone(), log.clone(), page.clone()));
    support::serve(listener, app).await;
}

type Text = Full<Bytes>;

async fn route<S>(
    req: Request<Incoming>,
    events: S,
    log: RedisLog,
    page: Bytes,
) -> Result<Response<Either<Text, SseBody<Subscription>>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<SseBody<Subscription>>, Error = Infallible>,
{
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Ok(support::text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            page,
        )),
        (&Method::GET, "/events") => Ok(events.oneshot(req).await?.map(Either::Right)),
        (&Method::POST, "/publish") => Ok(publish(req, &log).await),
        _ => Ok(plain(StatusCode::NOT_FOUND, "not found\n".to_owned())),
    }
}

/// Publishes the request body, as text, as one event.
async fn publish<B>(req: Request<Incoming>, log: &RedisLog) -> Response<Either<Text, B>> {
    let data = match support::read_text(req.into_body(), MAX_POST_BYTES).await {
        Ok(data) => data,
        Err((status, message)) => return plain(status, message),
    };
    match log.publish(Event::new().data(data)).await {
        Ok(id) => plain(StatusCode::OK, format!("published as id {id}\n")),
        // Redis is away: say so, so the sender can try again; nothing was dropped silently.
        Err(error) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")),
    }
}

fn plain<B>(status: StatusCode, message: String) -> Response<Either<Text, B>> {
    support::text(status, "text/plain; charset=utf-8", Bytes::from(message))
}
