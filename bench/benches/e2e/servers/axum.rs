//! The axum server: axum's own `Sse`, as axum's users write it.

use std::convert::Infallible;
use std::future::ready;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, StreamExt};
use http::Uri;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::{param, Payload, Tick, IDLE_KEEP_ALIVE};

pub(super) fn router() -> Router {
    // The capacity matches the EventLog's default window of 1024 events.
    let (tx, _) = broadcast::channel::<Option<Tick>>(1024);
    let burst = |uri: Uri| async move {
        Sse::new(stream::iter(0..param(&uri, "n")).map(|seq| {
            // axum takes ids as text; `itoa` is the cheapest way to give it one.
            Event::default()
                .id(itoa::Buffer::new().format(seq))
                .json_data(Payload::new(seq))
        }))
    };
    let idle = || async {
        Sse::new(stream::pending::<Result<Event, Infallible>>())
            .keep_alive(KeepAlive::new().interval(IDLE_KEEP_ALIVE))
    };
    let fanout = |State(tx): State<broadcast::Sender<Option<Tick>>>| async move {
        // What axum users do: a receiver per client, lagged errors skipped, each event
        // framed for each client.
        let events = BroadcastStream::new(tx.subscribe()).filter_map(|msg| {
            ready(msg.ok().map(|tick| {
                match tick {
                    Some(tick) => Event::default()
                        .id(itoa::Buffer::new().format(tick.seq))
                        .json_data(tick),
                    None => Ok(Event::default().event("end").data("")),
                }
            }))
        });
        Sse::new(events).keep_alive(KeepAlive::default())
    };
    let start = |State(tx): State<broadcast::Sender<Option<Tick>>>, uri: Uri| async move {
        let (events, rate) = (param(&uri, "events"), param(&uri, "rate"));
        tokio::spawn(super::tower_sse::run_source(events, rate, move |tick| {
            let _ = tx.send(tick);
        }));
        "started"
    };
    Router::new()
        .route("/floor", get(super::floor))
        .route("/burst", get(burst))
        .route("/idle", get(idle))
        .route("/fanout", get(fanout))
        .route("/start", get(start))
        .with_state(tx)
}
