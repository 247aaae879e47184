//! One stream's gzip framing (RFC 1952): the header, DEFLATE blocks frame by frame, and the
//! CRC-32 and size trailer at the end.

use bytes::Bytes;

use super::deflate::{self, Deflater};
use super::{Compression, FrameKind};

/// The 10-byte member header: magic, DEFLATE, no flags, no time, no extra flags, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A gzip member written one frame at a time; each frame decodes in full on arrival.
///
/// The compressor is made on the first event and dropped at each quiet frame (a keep-alive
/// sent after a silence, the opening comment), which are written as stored blocks: an idle
/// stream holds only this struct. A compressor made afresh never points back before its
/// start, so the stream stays one valid DEFLATE stream across the drops.
#[derive(Debug)]
pub(crate) struct GzipStream {
    settings: Compression,
    crc: crc32fast::Hasher,
    /// Bytes of input so far: the trailer's ISIZE is this modulo 2^32.
    position: u64,
    started: bool,
    finished: bool,
    // Boxed with its window: a quiet stream keeps only the few bytes above.
    deflater: Option<Box<Deflater>>,
}

impl GzipStream {
    pub(crate) fn new(settings: Compression) -> Self {
        Self {
            settings,
            crc: crc32fast::Hasher::new(),
            position: 0,
            started: false,
            finished: false,
            deflater: None,
        }
    }

    /// Encodes one frame into the bytes that go on the wire in its place.
    pub(crate) fn frame(&mut self, frame: &[u8], kind: FrameKind) -> Bytes {
        if self.finished {
            // Nothing may follow the trailer; the body never asks, but stay well-formed.
            return Bytes::new();
        }
        let mut out = Vec::with_capacity(frame.len() / 2 + HEADER.len() + 16);
        if !self.started {
            self.started = true;
            out.extend_from_slice(&HEADER);
        }
        self.crc.update(frame);
        match kind {
            FrameKind::Quiet => {
                self.deflater = None;
                deflate::stored(&mut out, frame);
            }
            FrameKind::Events => {
                let (window_bits, hash_bits) = (self.settings.window_bits, self.settings.hash_bits);
                let position = self.position;
                self.deflater
                    .get_or_insert_with(|| {
                        Box::new(Deflater::new(window_bits, hash_bits, position))
                    })
                    .compress(frame, &mut out);
            }
        }
        self.position += frame.len() as u64;
        Bytes::from(out)
    }

    /// The last frame: the final block and the trailer, once; `None` after that.
    pub(crate) fn finish(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        self.finished = true;
        self.deflater = None;
        let mut out = Vec::with_capacity(HEADER.len() + 13);
        if !self.started {
            out.extend_from_slice(&HEADER);
        }
        deflate::final_block(&mut out);
        out.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
        out.extend_from_slice(&(self.position as u32).to_le_bytes());
        Some(Bytes::from(out))
    }

    /// Whether the trailer is still to be sent.
    pub(crate) fn is_pending(&self) -> bool {
        !self.finished
    }

    /// Heap bytes the compressor holds now (none while idle).
    #[cfg(test)]
    pub(crate) fn compressor_bytes(&self) -> usize {
        self.deflater
            .as_ref()
            .map_or(0, |deflater| deflater.heap_bytes())
    }
}
