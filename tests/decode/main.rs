//! The other side of the wire: the decoder against the WHATWG reference.

#[path = "../support/mod.rs"]
mod support;

mod decode;
