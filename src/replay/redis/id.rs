//! [`StreamId`]: a Redis stream entry id, which is also the event's `id:` on the wire.

use std::fmt;

use crate::replay::id::parse_decimal;

/// The id Redis gave a stream entry, written `<milliseconds>-<sequence>` (for example
/// `1700000000000-0`).
///
/// It is the `id:` of the event on the wire, so it is what a reconnecting browser sends
/// back as `Last-Event-ID`. Ids of one stream are ordered as the entries were appended,
/// which is what lets any node resume a client from any id, including one it has not
/// received yet. [`RedisLog::publish`](crate::replay::redis::RedisLog::publish) returns it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    ms: u64,
    seq: u64,
}

impl StreamId {
    /// `0-0`, before every entry: the start of a stream.
    pub(super) const ZERO: Self = Self { ms: 0, seq: 0 };

    /// The milliseconds part: the Redis server's clock when the entry was appended.
    pub fn ms(self) -> u64 {
        self.ms
    }

    /// The sequence part, which orders entries appended in the same millisecond.
    pub fn seq(self) -> u64 {
        self.seq
    }

    /// The ordering key of the replay window: ids compare as their keys do.
    pub(in crate::replay) fn key(self) -> u128 {
        (u128::from(self.ms) << 64) | u128::from(self.seq)
    }

    /// The largest id before this one: where a window starts when all it knows of the
    /// entries before `self` is that they are gone.
    pub(super) fn just_before(self) -> Self {
        match (self.ms, self.seq) {
            (ms, 0) if ms > 0 => Self {
                ms: ms - 1,
                seq: u64::MAX,
            },
            (ms, seq) => Self {
                ms,
                seq: seq.saturating_sub(1),
            },
        }
    }

    /// Parses an id as Redis writes them, `<ms>-<seq>` in canonical decimal (no sign, no
    /// leading zero), or the single `0` that [`EventLog`](crate::replay::EventLog) uses for the
    /// start of a log. Anything else is not an id Redis gave: `None`.
    pub(super) fn parse(text: &[u8]) -> Option<Self> {
        if text == b"0" {
            return Some(Self::ZERO);
        }
        let dash = memchr::memchr(b'-', text)?;
        Some(Self {
            ms: parse_decimal(&text[..dash])?,
            seq: parse_decimal(&text[dash + 1..])?,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_ids_only() {
        let id = StreamId::parse(b"1700000000000-3").unwrap();
        assert_eq!((id.ms(), id.seq()), (1_700_000_000_000, 3));
        assert_eq!(id.to_string(), "1700000000000-3");
        assert_eq!(StreamId::parse(b"0"), Some(StreamId::ZERO));
        assert_eq!(StreamId::parse(b"0-0"), Some(StreamId::ZERO));
        let max = StreamId::parse(b"18446744073709551615-18446744073709551615").unwrap();
        assert_eq!(max.key(), u128::MAX);
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1",
            "01-0",
            "1-00",
            "+1-0",
            "1-0-0",
            "1 -0",
            "18446744073709551616-0",
            "1700000000000",
            "abc",
        ] {
            assert_eq!(StreamId::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn just_before_is_the_previous_key() {
        for (id, before) in [
            ("5-3", "5-2"),
            ("5-0", "4-18446744073709551615"),
            ("0-0", "0-0"),
        ] {
            let id = StreamId::parse(id.as_bytes()).unwrap();
            assert_eq!(id.just_before().to_string(), before);
            if id != StreamId::ZERO {
                assert_eq!(id.just_before().key(), id.key() - 1);
            }
        }
    }

    #[test]
    fn keys_order_like_ids() {
        let ids = ["0-0", "0-1", "1-0", "1-18446744073709551615", "2-0", "10-0"];
        let keys: Vec<u128> = ids
            .iter()
            .map(|id| StreamId::parse(id.as_bytes()).unwrap().key())
            .collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
    }
}
