//! Resume and fan-out: the log in process, over real hyper servers, and on Redis.

#[path = "../support/mod.rs"]
mod support;

mod http;
mod log;
mod registry;
mod with_redis;
mod with_redis_keys;
