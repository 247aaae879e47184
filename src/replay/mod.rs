//! Resume and fan-out: logs of recent events that many clients stream from, and resume from
//! after a reconnect without losing or repeating an event.
//!
//! - [`EventLog`] keeps a bounded window of recent events in memory, each framed once; build
//!   one with [`EventLog::builder`] to set its retention and its policies ([`OnLag`] for a
//!   client that falls behind, [`OnUnknownId`] for an id it cannot resume from).
//! - [`Subscription`] is one client's stream from its `Last-Event-ID` on: the inner stream a
//!   handler answers with behind [`SseLayer`](crate::SseLayer).
//! - [`EventLog::feed`] publishes from any `Stream` ([`Feed`], [`FeedItem`], [`Lagged`]).
//! - [`ReplayStats`] counts what a log has done.
//! - [`LogRegistry`] keeps a log per key (rooms, users, documents): made on first use, evicted
//!   when idle, at most `max_keys` of them ([`WhenFull`], [`RegistryFull`], [`KeySubscription`]).
//! - `redis` (feature `redis`): `RedisLog`, the same window fed from a Redis stream shared by
//!   several server nodes; `RedisLogRegistry`, a stream per key, all read by one reader
//!   connection per node.
//!
//! Words, used in this one sense each throughout:
//! - a **gap**: events a client will not get (evicted before it read or resumed, or lost
//!   before they reached the log); it always hears of one, through the gap event.
//! - **`reset`**: the default event type of the gap event on the wire.
//! - **lagged**: a loss at the source ([`Lagged`]), or a subscription that fell behind the
//!   window ([`OnLag`]); both end in a gap event.
//! - an **unknown id**: a `Last-Event-ID` the log cannot place ([`OnUnknownId`]).
//!
//! ```
//! use futures_util::StreamExt;
//! use tower_sse::replay::EventLog;
//! use tower_sse::{Event, LastEventId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let log = EventLog::new();
//! let first = log.publish(Event::new().data("a"));
//! log.publish(Event::new().data("b"));
//!
//! // A client that saw the first event reconnects: it gets the second.
//! let mut events = log.subscribe(Some(&LastEventId::new(first.to_string())));
//! let frame = events.next().await.unwrap();
//! assert!(frame.as_bytes().ends_with(b"data: b\n\n"));
//! # }
//! ```
//!
//! | file | holds |
//! | --- | --- |
//! | `log.rs` | [`EventLog`], [`EventLogBuilder`]: publish, retention, subscribe |
//! | `feed.rs` | [`EventLog::feed`]: a log driven by a `Stream`, [`FeedItem`], [`Lagged`] |
//! | `subscription.rs` | [`Subscription`]: the stream, one cursor per client |
//! | `window.rs` | the window and its lock: publishers write it, subscriptions read it |
//! | `store/mod.rs` | the retained events in memory, in order, and how an id resolves to them |
//! | `store/keyed.rs` | the same, appended and resolved by Redis stream id order (feature `redis`) |
//! | `id.rs` | ids as written and read: canonical decimal numbers, the id an event went out with |
//! | `waiters.rs` | wakers of subscriptions waiting for the next event |
//! | `policy.rs` | [`OnLag`], [`OnUnknownId`] and the gap event |
//! | `stats.rs` | [`ReplayStats`] |
//! | `registry/` | [`LogRegistry`]: a log per key, made on first use, evicted when idle |
//! | `redis/` | `RedisLog`: the window fed from a Redis stream; `RedisLogRegistry` (feature `redis`) |
//!
//! Imports run one way: `log` and `redis/` publish into a `window` and make
//! `subscription`s of it; a `subscription` reads the `window`; the `window` keeps a
//! `store`, its `waiters` and the `stats`; every file that reads or writes an id does it
//! through `id`.

mod feed;
mod id;
mod log;
mod policy;
#[cfg(feature = "redis")]
pub mod redis;
mod registry;
mod stats;
mod store;
mod subscription;
mod waiters;
mod window;

pub use crate::error::IdNotIncreasing;

pub use self::feed::{Feed, FeedEnd, FeedItem, Lagged};
pub use self::log::{EventLog, EventLogBuilder};
pub use self::policy::{OnLag, OnUnknownId};
pub use self::registry::{
    KeyStats, KeySubscription, LogRegistry, LogRegistryBuilder, RegistryFull, RegistryStats,
    WhenFull,
};
pub use self::stats::ReplayStats;
pub use self::subscription::Subscription;
