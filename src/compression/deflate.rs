//! A small streaming DEFLATE (RFC 1951) encoder: greedy LZ77 matching over a bounded window,
//! fixed Huffman codes, and a sync flush after every frame.
//!
//! Why not zlib: an SSE stream compresses well mostly by pointing back at the events before
//! it (repeated JSON keys, ids, the `data:` prefixes), so what matters is the window, not
//! entropy coding. zlib-rs holds a fixed 128 KiB hash table per stream whatever its window
//! and memory level, and miniz_oxide about 300 KiB; this encoder holds its window and a hash
//! table sized by the caller (32 KiB in all by default), allocated only while a stream is
//! active. Fixed Huffman codes need no tables per block, so a flush costs a few bytes.

/// Shortest and longest matches DEFLATE can express.
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;

/// Base lengths of the length codes 257..=285, and their extra bits.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Base distances of the distance codes 0..=29, and their extra bits.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Least-significant-bit-first bit writer into a `Vec<u8>`, as DEFLATE packs its bits.
#[derive(Debug, Default)]
pub(super) struct Bits {
    acc: u64,
    len: u32,
}

impl Bits {
    /// Appends the low `n` bits of `value` (n <= 32).
    fn put(&mut self, out: &mut Vec<u8>, value: u32, n: u32) {
        self.acc |= u64::from(value) << self.len;
        self.len += n;
        while self.len >= 8 {
            out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    /// Pads with zero bits to a byte boundary.
    fn align(&mut self, out: &mut Vec<u8>) {
        if self.len > 0 {
            out.push(self.acc as u8);
        }
        self.acc = 0;
        self.len = 0;
    }

    /// Appends a Huffman code, which DEFLATE stores most significant bit first.
    fn put_code(&mut self, out: &mut Vec<u8>, code: u32, n: u32) {
        self.put(out, code.reverse_bits() >> (32 - n), n);
    }
}

/// Writes `data` as stored (uncompressed) blocks, not final, at a byte boundary: what a
/// stream without a compressor sends, at the cost of 5 bytes per 64 KiB.
pub(super) fn stored(out: &mut Vec<u8>, data: &[u8]) {
    for chunk in data.chunks(usize::from(u16::MAX)) {
        out.push(0); // BFINAL = 0, BTYPE = 00, then padding to the byte
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// The final block: empty, stored. Ends the DEFLATE stream at a byte boundary.
pub(super) fn final_block(out: &mut Vec<u8>) {
    out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
}

/// One stream's compressor: its window of past input and a hash table into it.
#[derive(Debug)]
pub(super) struct Deflater {
    /// The last `window` bytes of input, to match against.
    history: Vec<u8>,
    /// Per hash of three bytes, the stream position (minus `epoch`) plus one of the last
    /// place they were seen; zero for none.
    head: Box<[u32]>,
    hash_bits: u32,
    window: usize,
    /// Stream position of `history[0]`.
    start: u64,
    /// What `head` entries are relative to, moved before they could overflow.
    epoch: u64,
}

impl Deflater {
    /// A compressor with a window of `1 << window_bits` bytes (9..=15) and a hash table of
    /// `1 << hash_bits` entries (8..=16).
    pub(super) fn new(window_bits: u8, hash_bits: u8, position: u64) -> Self {
        let window = 1usize << window_bits.clamp(9, 15);
        let hash_bits = u32::from(hash_bits.clamp(8, 16));
        Self {
            history: Vec::with_capacity(window),
            head: vec![0; 1 << hash_bits].into_boxed_slice(),
            hash_bits,
            window,
            start: position,
            epoch: position,
        }
    }

    /// The bytes this compressor holds.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.history.capacity() + self.head.len() * 4
    }

    fn hash(&self, bytes: &[u8]) -> usize {
        let key = u32::from(bytes[0]) | u32::from(bytes[1]) << 8 | u32::from(bytes[2]) << 16;
        (key.wrapping_mul(0x9E37_79B1) >> (32 - self.hash_bits)) as usize
    }

    /// Compresses `data` as one fixed-Huffman block followed by a sync flush (an empty
    /// stored block), so the output ends at a byte boundary and decodes in full at once.
    pub(super) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        // Positions kept relative to `epoch` fit a u32; move it long before they would not.
        let end = self.start + (self.history.len() + data.len()) as u64;
        if end - self.epoch > u64::from(u32::MAX / 2) {
            self.head.fill(0);
            self.epoch = self.start;
        }
        // Matching runs over the window and the new data as one slice.
        let offset = self.history.len();
        let mut buf = std::mem::take(&mut self.history);
        buf.extend_from_slice(data);

        let mut bits = Bits::default();
        bits.put(out, 0b010, 3); // BFINAL = 0, BTYPE = 01 (fixed codes)
        let mut i = offset;
        while i < buf.len() {
            let matched = self.longest_match(&buf, i);
            if matched >= MIN_MATCH {
                let candidate = self.lookup(&buf, i);
                let distance = i - candidate;
                put_match(&mut bits, out, matched, distance);
                for at in i..i + matched {
                    self.insert(&buf, at);
                }
                i += matched;
            } else {
                self.insert(&buf, i);
                put_literal(&mut bits, out, buf[i]);
                i += 1;
            }
        }
        bits.put_code(out, 0, 7); // end of block (256)
                                  // Sync flush: an empty stored block, then padding to the byte.
        bits.put(out, 0, 3);
        bits.align(out);
        out.extend_from_slice(&[0, 0, 0xff, 0xff]);

        // Keep only the last window of input.
        let keep = buf.len().min(self.window);
        let drop = buf.len() - keep;
        buf.drain(..drop);
        // A frame larger than the window grew the buffer: give the room back.
        buf.shrink_to(2 * self.window);
        self.start += drop as u64;
        self.history = buf;
    }

    /// Where the three bytes at `i` were last seen, if within the window (else `i`).
    fn lookup(&self, buf: &[u8], i: usize) -> usize {
        if i + MIN_MATCH > buf.len() {
            return i;
        }
        let entry = self.head[self.hash(&buf[i..])];
        if entry == 0 {
            return i;
        }
        let position = self.epoch + u64::from(entry - 1);
        let Some(at) = position.checked_sub(self.start) else {
            return i;
        };
        let at = at as usize;
        if at >= i || i - at > self.window {
            return i;
        }
        at
    }

    /// The length of the match at `i` against the last place its hash was seen.
    fn longest_match(&self, buf: &[u8], i: usize) -> usize {
        let at = self.lookup(buf, i);
        if at == i {
            return 0;
        }
        let max = (buf.len() - i).min(MAX_MATCH);
        buf[at..at + max]
            .iter()
            .zip(&buf[i..i + max])
            .take_while(|(a, b)| a == b)
            .count()
    }

    fn insert(&mut self, buf: &[u8], i: usize) {
        if i + MIN_MATCH > buf.len() {
            return;
        }
        let hash = self.hash(&buf[i..]);
        // Past u32 (one frame of gigabytes) the position is not recorded: a lost match, as
        // a stale entry is, since every match is checked byte by byte.
        let entry = u32::try_from(self.start + i as u64 - self.epoch)
            .ok()
            .and_then(|position| position.checked_add(1));
        if let Some(entry) = entry {
            self.head[hash] = entry;
        }
    }
}

fn put_literal(bits: &mut Bits, out: &mut Vec<u8>, byte: u8) {
    let byte = u32::from(byte);
    if byte < 144 {
        bits.put_code(out, 0x30 + byte, 8);
    } else {
        bits.put_code(out, 0x190 + byte - 144, 9);
    }
}

fn put_match(bits: &mut Bits, out: &mut Vec<u8>, length: usize, distance: usize) {
    // Callers keep both in range: 3..=258 and 1..=32768.
    let length = length as u16;
    let code = LENGTH_BASE.partition_point(|&base| base <= length) - 1;
    let symbol = 257 + code as u32;
    if symbol < 280 {
        bits.put_code(out, symbol - 256, 7);
    } else {
        bits.put_code(out, 0xc0 + symbol - 280, 8);
    }
    bits.put(
        out,
        u32::from(length - LENGTH_BASE[code]),
        u32::from(LENGTH_EXTRA[code]),
    );
    let distance = distance as u16;
    let code = DIST_BASE.partition_point(|&base| base <= distance) - 1;
    bits.put_code(out, code as u32, 5);
    bits.put(
        out,
        u32::from(distance - DIST_BASE[code]),
        u32::from(DIST_EXTRA[code]),
    );
}
