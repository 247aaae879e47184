//! The encoder against flate2's decoder: every frame decodes in full on arrival, the whole
//! stream checks out (CRC-32, size), and memory stays where the docs say.

use std::io::Write;

use bytes::Bytes;
use flate2::write::GzDecoder;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::gzip::GzipStream;
use super::{AcceptEncoding, Compression, FrameKind};

/// Feeds `wire` to a gzip decoder and returns what it has decoded so far.
fn decode_more(decoder: &mut GzDecoder<Vec<u8>>, wire: &[u8]) -> Vec<u8> {
    decoder.write_all(wire).unwrap();
    decoder.flush().unwrap();
    std::mem::take(decoder.get_mut())
}

fn token_delta(seq: usize) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-9x7Qk2\",\"object\":\"chat.completion.chunk\",\"created\":1733212800,\
         \"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{seq}\"}},\
         \"finish_reason\":null}}]}}\n\n"
    )
}

#[test]
fn each_frame_decodes_on_arrival_and_the_stream_ends_valid() {
    let mut gzip = GzipStream::new(Compression::gzip());
    let mut decoder = GzDecoder::new(Vec::new());
    let opening = gzip.frame(b":\n\n", FrameKind::Quiet);
    assert_eq!(decode_more(&mut decoder, &opening), b":\n\n");
    let mut plain = 0;
    let mut wire = 0;
    for seq in 0..200 {
        let event = token_delta(seq);
        let frame = gzip.frame(event.as_bytes(), FrameKind::Events);
        plain += event.len();
        wire += frame.len();
        assert_eq!(decode_more(&mut decoder, &frame), event.as_bytes());
        if seq % 50 == 49 {
            let keep_alive = gzip.frame(b":\n\n", FrameKind::Quiet);
            assert_eq!(gzip.compressor_bytes(), 0, "idle stream holds a compressor");
            assert_eq!(decode_more(&mut decoder, &keep_alive), b":\n\n");
        }
    }
    let last = gzip.finish().unwrap();
    assert_eq!(gzip.finish(), None);
    decoder.write_all(&last).unwrap();
    decoder.try_finish().unwrap();
    let ratio = wire as f64 / plain as f64;
    assert!(ratio < 0.3, "token deltas compressed to {ratio:.2}x");
}

#[test]
fn keep_alives_before_the_first_event_need_no_compressor() {
    let mut gzip = GzipStream::new(Compression::gzip());
    let mut decoder = GzDecoder::new(Vec::new());
    for _ in 0..3 {
        let frame = gzip.frame(b":\n\n", FrameKind::Quiet);
        assert_eq!(gzip.compressor_bytes(), 0);
        assert_eq!(decode_more(&mut decoder, &frame), b":\n\n");
    }
    decoder.write_all(&gzip.finish().unwrap()).unwrap();
    decoder.try_finish().unwrap();
}

#[test]
fn an_empty_stream_is_a_valid_empty_member() {
    let mut gzip = GzipStream::new(Compression::gzip());
    let mut decoder = GzDecoder::new(Vec::new());
    decoder.write_all(&gzip.finish().unwrap()).unwrap();
    assert_eq!(decoder.finish().unwrap(), b"");
}

#[test]
fn compressor_memory_follows_the_settings() {
    for (window_bits, hash_bits) in [(9, 8), (13, 12), (15, 16)] {
        let mut gzip = GzipStream::new(
            Compression::gzip()
                .window_bits(window_bits)
                .hash_bits(hash_bits),
        );
        for seq in 0..500 {
            let _ = gzip.frame(token_delta(seq).as_bytes(), FrameKind::Events);
        }
        let bound = (2 << window_bits) + (4 << hash_bits);
        let held = gzip.compressor_bytes();
        assert!(held <= bound, "{window_bits}/{hash_bits}: {held} > {bound}");
    }
}

#[test]
fn accept_encoding_reads_q_values() {
    let accepts = |values: &[&str]| {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("accept-encoding", HeaderValue::from_str(value).unwrap());
        }
        AcceptEncoding::read(&headers) == AcceptEncoding::gzip()
    };
    assert!(accepts(&["gzip"]));
    assert!(accepts(&["gzip, deflate, br, zstd"]));
    assert!(accepts(&["br;q=1.0, GZip;q=0.5"]));
    assert!(accepts(&["x-gzip"]));
    assert!(accepts(&["*"]));
    assert!(accepts(&["br", "gzip"]));
    assert!(accepts(&["gzip;q=0.001"]));
    assert!(!accepts(&[]));
    assert!(!accepts(&["identity"]));
    assert!(!accepts(&["br, deflate"]));
    assert!(!accepts(&["gzip;q=0"]));
    assert!(!accepts(&["gzip; q=0.000"]));
    assert!(!accepts(&["*;q=0"]));
    assert!(!accepts(&["*, gzip;q=0"]));
    assert!(!accepts(&["gzip", "gzip;q=0"]));
    assert!(!accepts(&["gzipped"]));
}

fn frames() -> impl Strategy<Value = Vec<(Vec<u8>, bool)>> {
    // Small alphabets repeat, so matches of every length and distance come up.
    let bytes = prop_oneof![
        prop::collection::vec(prop::sample::select(b"ab{}\":,data\n".to_vec()), 0..600),
        prop::collection::vec(any::<u8>(), 0..300),
        (0usize..70_000).prop_map(|n| (0..n).map(|i| (i % 251) as u8).collect()),
    ];
    prop::collection::vec((bytes, any::<bool>()), 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any frames, in any mix of kinds and settings: each decodes whole on arrival, and the
    /// whole stream passes gzip's checks.
    #[test]
    fn any_frames_round_trip(frames in frames(), window_bits in 9u8..=15, hash_bits in 8u8..=16) {
        let settings = Compression::gzip().window_bits(window_bits).hash_bits(hash_bits);
        let mut gzip = GzipStream::new(settings);
        let mut decoder = GzDecoder::new(Vec::new());
        for (frame, events) in &frames {
            let kind = if *events { FrameKind::Events } else { FrameKind::Quiet };
            let wire: Bytes = gzip.frame(frame, kind);
            prop_assert_eq!(&decode_more(&mut decoder, &wire), frame);
        }
        decoder.write_all(&gzip.finish().unwrap()).unwrap();
        prop_assert!(decoder.try_finish().is_ok());
    }
}

/// Events with many distinct literals (numbers) get a block with codes of their own, which
/// decodes as well and is smaller than the fixed codes would be.
#[test]
fn literal_heavy_frames_use_dynamic_codes() {
    let mut gzip = GzipStream::new(Compression::gzip());
    let mut decoder = GzDecoder::new(Vec::new());
    let numbers: String = (0..200u64)
        .map(|n| format!("{},", n.wrapping_mul(2654435761) % 99991))
        .collect();
    let event = format!("data: [{numbers}]\n\n");
    let wire = gzip.frame(event.as_bytes(), FrameKind::Events);
    // After the 10-byte header, the first block's type bits: 10, dynamic.
    assert_eq!(wire[10] & 0b110, 0b100, "not a dynamic block");
    assert_eq!(decode_more(&mut decoder, &wire), event.as_bytes());
    assert!(
        wire.len() * 10 < event.len() * 6,
        "{} of {}",
        wire.len(),
        event.len()
    );
    if let Ok(path) = std::env::var("TOWER_SSE_DUMP_GZIP") {
        let mut all = wire.to_vec();
        for seq in 0..50 {
            all.extend_from_slice(&gzip.frame(token_delta(seq).as_bytes(), FrameKind::Events));
            all.extend_from_slice(&gzip.frame(event.as_bytes(), FrameKind::Events));
        }
        all.extend_from_slice(&gzip.finish().unwrap());
        std::fs::write(path, all).unwrap();
    }
}
