//! The replay log on a Redis stream, for several server nodes: [`RedisLog`]; and a log per
//! key, each on a stream of its own, read by one connection per node: [`RedisLogRegistry`].
//!
//! | file | holds |
//! | --- | --- |
//! | `log.rs` | [`RedisLog`], [`RedisLogBuilder`]: connect, publish, subscribe |
//! | `reader.rs` | the node's one reader of the stream: backfill, follow, reconnect |
//! | `registry.rs` | [`RedisLogRegistry`]: a log per key, each on its own stream |
//! | `topics.rs` | the registry's one reader of every key's stream: `XREAD` over them all |
//! | `script.rs` | the Lua script every read goes through, and its reply |
//! | `id.rs` | [`StreamId`] |
//! | `error.rs` | [`ConnectError`], [`PublishError`], [`SubscribeError`] |
//!
//! # The client crate
//!
//! [redis-rs](https://docs.rs/redis) (the `redis` crate, 1.x), the most used Redis client in
//! Rust, with only the features needed here (`tokio-comp`, `connection-manager`, `script`).
//! Its tokio `ConnectionManager` is what publishing needs: one multiplexed connection shared
//! by every handle, reconnecting in the background, and it hands a connection error to the
//! caller instead of sending the command again, so an `XADD` is never appended twice behind
//! the caller's back and an outage surfaces as a [`PublishError`]. (fred re-sends commands
//! after a reconnect unless told not to, and brings its own pooling and runtime layer this
//! log does not need.) A plain multiplexed connection of the same crate is the reader's
//! dedicated blocking connection. The cost: a newer Rust than the rest of the crate needs
//! (the README's feature table says which). No type of it appears in this crate's API.

mod error;
mod id;
mod log;
mod reader;
mod registry;
mod script;
mod topics;

pub use self::error::{ConnectError, PublishError, SubscribeError};
pub use self::id::StreamId;
pub use self::log::{RedisLog, RedisLogBuilder};
pub use self::registry::{RedisKeySubscription, RedisLogRegistry, RedisLogRegistryBuilder};
