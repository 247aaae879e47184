//! The layer end to end: bodies on a paused clock, WHATWG framing, real hyper servers over
//! HTTP/1.1 and HTTP/2, per-route options, drain, tower-http and axum stacks.

#[path = "../support/mod.rs"]
mod support;

mod body;
#[cfg(feature = "compression")]
mod compression;
mod framing;
mod http;
mod routes;
mod shutdown;
mod whatwg_reference;
mod with_axum;
mod with_tower_http;
