//! A small streaming DEFLATE (RFC 1951) encoder: greedy LZ77 matching over a bounded window,
//! one block per frame (fixed Huffman codes, or codes of its own when the block is large
//! enough to pay for them), and a sync flush after every frame.
//!
//! Why not zlib: an SSE stream compresses well mostly by pointing back at the events before
//! it (repeated JSON keys, ids, the `data:` prefixes), so what matters is the window.
//! zlib-rs holds a fixed 128 KiB hash table per stream whatever its window and memory level,
//! and miniz_oxide about 300 KiB; this encoder holds its window and a hash table sized by the
//! caller (32 KiB in all by default), allocated only while a stream is active. Small frames
//! use the fixed codes, which need no table in the block, so a flush costs a few bytes.

use std::sync::OnceLock;

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

        let mut tokens = Vec::with_capacity(data.len() / 4 + 1);
        let mut i = offset;
        while i < buf.len() {
            let matched = self.longest_match(&buf, i);
            if matched >= MIN_MATCH {
                let distance = i - self.lookup(&buf, i);
                // Both in range: 3..=258 and 1..=32768.
                tokens.push(Token::Match(matched as u16, distance as u16));
                for at in i..i + matched {
                    self.insert(&buf, at);
                }
                i += matched;
            } else {
                self.insert(&buf, i);
                tokens.push(Token::Literal(buf[i]));
                i += 1;
            }
        }
        let mut bits = Bits::default();
        write_block(&tokens, &mut bits, out);
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

/// One LZ77 step: a byte, or a copy of `length` bytes from `distance` back.
#[derive(Debug, Clone, Copy)]
enum Token {
    Literal(u8),
    Match(u16, u16),
}

/// Blocks that take fewer bits with the fixed codes are not tried with codes of their own.
const DYNAMIC_AFTER_BITS: u64 = 8 * 192;

/// The order in which a dynamic block lists the code-length code's lengths.
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// The length code (0..29, for symbol 257 + code) of a match length.
fn length_code(length: u16) -> usize {
    LENGTH_BASE.partition_point(|&base| base <= length) - 1
}

/// The distance code (0..30) of a match distance.
fn distance_code(distance: u16) -> usize {
    DIST_BASE.partition_point(|&base| base <= distance) - 1
}

/// A prefix code: per symbol its length in bits (0 for unused) and its code.
struct Code {
    lengths: Vec<u8>,
    codes: Vec<u16>,
}

impl Code {
    /// The canonical code for `lengths` (RFC 1951, 3.2.2).
    fn canonical(lengths: Vec<u8>) -> Self {
        let mut count = [0u16; 16];
        for &length in &lengths {
            count[usize::from(length)] += 1;
        }
        count[0] = 0;
        let mut next = [0u16; 16];
        let mut code = 0u16;
        for bits in 1..16 {
            code = (code + count[bits - 1]) << 1;
            next[bits] = code;
        }
        let codes = lengths
            .iter()
            .map(|&length| {
                let length = usize::from(length);
                let code = next[length];
                next[length] = next[length].wrapping_add(1);
                code
            })
            .collect();
        Self { lengths, codes }
    }

    /// The fixed literal/length and distance codes (RFC 1951, 3.2.6), built once.
    fn fixed() -> &'static (Self, Self) {
        static FIXED: OnceLock<(Code, Code)> = OnceLock::new();
        FIXED.get_or_init(|| {
            let mut lengths = vec![8u8; 288];
            lengths[144..256].fill(9);
            lengths[256..280].fill(7);
            (Self::canonical(lengths), Self::canonical(vec![5; 30]))
        })
    }

    /// Huffman code lengths for `freq`, none longer than `limit`. Keeps at least two
    /// symbols in use, so every code is complete, as all inflaters accept.
    fn for_frequencies(freq: &[u32], limit: u8) -> Self {
        let mut freq = freq.to_vec();
        for symbol in 0..2 {
            if freq.iter().filter(|&&f| f > 0).count() < 2 && freq[symbol] == 0 {
                freq[symbol] = 1;
            }
        }
        loop {
            let lengths = huffman_lengths(&freq);
            if lengths.iter().all(|&length| length <= limit) {
                return Self::canonical(lengths);
            }
            // Flatter frequencies, shallower tree; every used symbol stays used.
            for f in freq.iter_mut().filter(|f| **f > 0) {
                *f = (*f).div_ceil(2);
            }
        }
    }

    fn put(&self, bits: &mut Bits, out: &mut Vec<u8>, symbol: usize) {
        bits.put_code(
            out,
            u32::from(self.codes[symbol]),
            u32::from(self.lengths[symbol]),
        );
    }

    fn cost(&self, symbol: usize) -> u64 {
        u64::from(self.lengths[symbol])
    }
}

/// Unlimited Huffman code lengths for the used symbols of `freq` (at least two): the
/// two-queue construction over the symbols sorted by frequency, no heap.
fn huffman_lengths(freq: &[u32]) -> Vec<u8> {
    let mut leaves: Vec<(u32, usize)> = freq
        .iter()
        .enumerate()
        .filter(|(_, &f)| f > 0)
        .map(|(symbol, &f)| (f, symbol))
        .collect();
    leaves.sort_unstable();
    // Nodes 0..m are the used symbols in that order, m.. the internal nodes, which are
    // made in order of weight.
    let m = leaves.len();
    let mut weight = vec![0u64; 2 * m];
    let mut parent = vec![usize::MAX; 2 * m];
    for (node, &(f, _)) in leaves.iter().enumerate() {
        weight[node] = u64::from(f);
    }
    let (mut leaf, mut internal, mut next) = (0, m, m);
    for _ in 1..m {
        let mut pair = [0; 2];
        for slot in &mut pair {
            let use_leaf = leaf < m && (internal == next || weight[leaf] <= weight[internal]);
            *slot = if use_leaf { leaf } else { internal };
            if use_leaf {
                leaf += 1;
            } else {
                internal += 1;
            }
        }
        weight[next] = weight[pair[0]] + weight[pair[1]];
        parent[pair[0]] = next;
        parent[pair[1]] = next;
        next += 1;
    }
    // Depths from the root (the last node made) down: a parent is made after its children.
    let mut depth = vec![0u8; 2 * m];
    for node in (0..next.saturating_sub(1)).rev() {
        depth[node] = depth[parent[node]].saturating_add(1);
    }
    let mut lengths = vec![0u8; freq.len()];
    for (node, &(_, symbol)) in leaves.iter().enumerate() {
        lengths[symbol] = depth[node];
    }
    lengths
}

/// Writes `tokens` and the end of block as one block, with fixed codes or with codes of
/// their own (a dynamic block), whichever takes fewer bits.
fn write_block(tokens: &[Token], bits: &mut Bits, out: &mut Vec<u8>) {
    let mut lit_freq = [0u32; 286];
    let mut dist_freq = [0u32; 30];
    let mut extra_bits = 0u64;
    for token in tokens {
        match *token {
            Token::Literal(byte) => lit_freq[usize::from(byte)] += 1,
            Token::Match(length, distance) => {
                let (lc, dc) = (length_code(length), distance_code(distance));
                lit_freq[257 + lc] += 1;
                dist_freq[dc] += 1;
                extra_bits += u64::from(LENGTH_EXTRA[lc]) + u64::from(DIST_EXTRA[dc]);
            }
        }
    }
    lit_freq[256] = 1;
    let body_cost = |lit: &Code, dist: &Code| {
        let lits: u64 = (0..286).map(|s| u64::from(lit_freq[s]) * lit.cost(s)).sum();
        let dists: u64 = (0..30)
            .map(|s| u64::from(dist_freq[s]) * dist.cost(s))
            .sum();
        lits + dists + extra_bits
    };

    let (fixed_lit, fixed_dist) = Code::fixed();
    let fixed_cost = 3 + body_cost(fixed_lit, fixed_dist);
    // A dynamic header takes some 30 to 80 bytes: a small block cannot pay for it, and
    // building the codes would cost more CPU than the whole block.
    if fixed_cost < DYNAMIC_AFTER_BITS {
        bits.put(out, 0b010, 3); // BFINAL = 0, BTYPE = 01 (fixed codes)
        write_tokens(tokens, fixed_lit, fixed_dist, bits, out);
        return;
    }

    let lit = Code::for_frequencies(&lit_freq, 15);
    let dist = Code::for_frequencies(&dist_freq, 15);
    let header = DynamicHeader::new(&lit, &dist);
    let dynamic_cost = 3 + header.cost() + body_cost(&lit, &dist);

    if dynamic_cost < fixed_cost {
        bits.put(out, 0b100, 3); // BFINAL = 0, BTYPE = 10 (dynamic codes)
        header.write(bits, out);
        write_tokens(tokens, &lit, &dist, bits, out);
    } else {
        bits.put(out, 0b010, 3); // BFINAL = 0, BTYPE = 01 (fixed codes)
        write_tokens(tokens, fixed_lit, fixed_dist, bits, out);
    }
}

fn write_tokens(tokens: &[Token], lit: &Code, dist: &Code, bits: &mut Bits, out: &mut Vec<u8>) {
    for token in tokens {
        match *token {
            Token::Literal(byte) => lit.put(bits, out, usize::from(byte)),
            Token::Match(length, distance) => {
                let code = length_code(length);
                lit.put(bits, out, 257 + code);
                let extra = length - LENGTH_BASE[code];
                bits.put(out, u32::from(extra), u32::from(LENGTH_EXTRA[code]));
                let code = distance_code(distance);
                dist.put(bits, out, code);
                let extra = distance - DIST_BASE[code];
                bits.put(out, u32::from(extra), u32::from(DIST_EXTRA[code]));
            }
        }
    }
    lit.put(bits, out, 256);
}

/// A dynamic block's header: the two codes' lengths, run-length coded, and the code for
/// those runs.
struct DynamicHeader {
    hlit: usize,
    hdist: usize,
    hclen: usize,
    /// (symbol 0..=18, extra value, extra bits)
    runs: Vec<(u8, u8, u8)>,
    code: Code,
}

impl DynamicHeader {
    fn new(lit: &Code, dist: &Code) -> Self {
        let used = |lengths: &[u8], least: usize| {
            lengths
                .iter()
                .rposition(|&l| l > 0)
                .map_or(least, |last| (last + 1).max(least))
        };
        let hlit = used(&lit.lengths, 257);
        let hdist = used(&dist.lengths, 1);
        let lengths: Vec<u8> = lit.lengths[..hlit]
            .iter()
            .chain(&dist.lengths[..hdist])
            .copied()
            .collect();
        let runs = run_lengths(&lengths);
        let mut freq = [0u32; 19];
        for &(symbol, _, _) in &runs {
            freq[usize::from(symbol)] += 1;
        }
        let code = Code::for_frequencies(&freq, 7);
        let hclen = CODE_LENGTH_ORDER
            .iter()
            .rposition(|&symbol| code.lengths[symbol] > 0)
            .map_or(4, |last| (last + 1).max(4));
        Self {
            hlit,
            hdist,
            hclen,
            runs,
            code,
        }
    }

    fn cost(&self) -> u64 {
        let runs: u64 = self
            .runs
            .iter()
            .map(|&(symbol, _, extra)| self.code.cost(usize::from(symbol)) + u64::from(extra))
            .sum();
        14 + 3 * self.hclen as u64 + runs
    }

    fn write(&self, bits: &mut Bits, out: &mut Vec<u8>) {
        bits.put(out, (self.hlit - 257) as u32, 5);
        bits.put(out, (self.hdist - 1) as u32, 5);
        bits.put(out, (self.hclen - 4) as u32, 4);
        for &symbol in &CODE_LENGTH_ORDER[..self.hclen] {
            bits.put(out, u32::from(self.code.lengths[symbol]), 3);
        }
        for &(symbol, value, extra) in &self.runs {
            self.code.put(bits, out, usize::from(symbol));
            bits.put(out, u32::from(value), u32::from(extra));
        }
    }
}

/// Run-length codes the code lengths: 16 repeats the previous length 3 to 6 times, 17 and
/// 18 give 3 to 10 and 11 to 138 zeros.
fn run_lengths(lengths: &[u8]) -> Vec<(u8, u8, u8)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < lengths.len() {
        let length = lengths[i];
        let mut run = lengths[i..].iter().take_while(|&&l| l == length).count();
        i += run;
        if length == 0 {
            while run >= 11 {
                let n = run.min(138);
                runs.push((18, (n - 11) as u8, 7));
                run -= n;
            }
            if run >= 3 {
                runs.push((17, (run - 3) as u8, 3));
                run = 0;
            }
        } else {
            runs.push((length, 0, 0));
            run -= 1;
            while run >= 3 {
                let n = run.min(6);
                runs.push((16, (n - 3) as u8, 2));
                run -= n;
            }
        }
        for _ in 0..run {
            runs.push((length, 0, 0));
        }
    }
    runs
}
