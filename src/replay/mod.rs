//! A replay log for server-sent events: [`EventLog`] keeps a bounded window of recent
//! events, framed once, and each [`Subscription`] streams them from a client's
//! `Last-Event-ID` on, so a reconnecting client loses and repeats nothing.
//!
//! | file | holds |
//! | --- | --- |
//! | `log.rs` | [`EventLog`], [`EventLogBuilder`]: publish, retention, subscribe |
//! | `feed.rs` | [`EventLog::feed`]: a log driven by a `Stream`, [`FeedItem`], [`Lagged`] |
//! | `subscription.rs` | [`Subscription`]: the stream, one cursor per client |
//! | `window.rs` | the window and its lock: publishers write it, subscriptions read it |
//! | `store.rs` | the in-memory window, the seam for a shared-store backend |
//! | `waiters.rs` | wakers of subscriptions waiting for the next event |
//! | `policy.rs` | [`OnLag`], [`OnUnknownId`] and the gap event |
//! | `stats.rs` | [`ReplayStats`] |
//! | `redis/` | `RedisLog`: the window fed from a Redis stream (feature `redis`) |
//!
//! Imports run one way: `log` and `redis/` publish into a `window` and make
//! `subscription`s of it; a `subscription` reads the `window`; the `window` keeps a
//! `store`, its `waiters` and the `stats`.

mod feed;
mod log;
mod policy;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod stats;
mod store;
mod subscription;
mod waiters;
mod window;

pub use self::feed::{Feed, FeedEnd, FeedItem, Lagged};
pub use self::log::{EventLog, EventLogBuilder};
pub use self::policy::{OnLag, OnUnknownId};
#[cfg(feature = "redis")]
pub use self::redis::{ConnectError, PublishError, RedisLog, RedisLogBuilder, StreamId};
pub use self::stats::ReplayStats;
pub use self::subscription::Subscription;
