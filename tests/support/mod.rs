//! What the suites share, declared once per test binary (`mod support;`, as tower's tests
//! do). Each suite uses a part of it.
#![allow(dead_code, unused_imports, unused_macros)]

pub(crate) mod blocks;
pub(crate) mod cases;
pub(crate) mod event_source;
pub(crate) mod inner;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod rng;
pub(crate) mod server;
pub(crate) mod whatwg;
