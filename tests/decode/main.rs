//! The other side of the wire: the decoder against the WHATWG reference, and the relay example.

#[path = "../support/mod.rs"]
mod support;

mod decode;
mod relay;
