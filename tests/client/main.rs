//! The client (feature `client`) against real hyper servers on 127.0.0.1, every timing on a
//! paused clock; the relay and OpenAI examples end to end.

#[path = "../support/mod.rs"]
mod support;

mod upstream;

mod openai;
mod payloads;
mod protocol;
mod relay;
mod resilience;
