//! Ids as the replay logs write and read them: canonical decimal numbers, the id an event
//! went out with, and the numbers an [`EventLog`](super::EventLog) gives its events. Both
//! logs parse a client's `Last-Event-ID` through here.
//!
//! # Ids that survive a restart
//!
//! A client keeps its last id across a server restart, and a log made again (after a
//! restart, or in the same process) must not take it for one of its own: it would resume
//! the client after an event it never saw. So a log's numbers start from the clock, as
//! Redis stream ids do: its first id is the Unix time in milliseconds times
//! [`IDS_PER_MS`], above every id an earlier process gave as long as that one gave fewer
//! than 1024 ids per millisecond on average and the clock did not go back. Within a
//! process, every id given by the clock is also above every one given before it, by any
//! log ([`HIGH_WATER`]), so two logs never share one. The ids stay plain `u64`s of about
//! 16 digits (1.8e15 in 2026): numeric `Last-Event-ID`s keep their fast path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Room for this many ids per millisecond of the clock before a log's ids run ahead of it.
pub(super) const IDS_PER_MS: u64 = 1024;

/// The largest id any log of this process has given by the clock. Updated on every such
/// publish: one uncontended atomic read-modify-write, next to two lock round trips.
static HIGH_WATER: AtomicU64 = AtomicU64::new(0);

/// The next id of a log numbering by the clock whose last numeric id is `last` (0 before
/// its first): above `last`, above every id given by the clock in this process so far, and
/// for a log's first id at least the clock's `unix_time_ms * IDS_PER_MS`.
///
/// `None` only when no `u64` is left above them (in some 570,000 years, or after a
/// caller's id of `u64::MAX`).
pub(super) fn next_clock_id(last: u64) -> Option<u64> {
    let floor = if last == 0 {
        clock_floor()
    } else {
        last.checked_add(1)?
    };
    let next = |high: u64| high.checked_add(1).map(|above| above.max(floor));
    // Relaxed: the one location's read-modify-writes are ordered among themselves, which
    // is all uniqueness needs; the id is published under the log's own locks.
    let high = HIGH_WATER
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, next)
        .ok()?;
    next(high)
}

/// `unix_time_ms * IDS_PER_MS`; 0 for a clock before 1970, when the high-water mark alone
/// decides.
fn clock_floor() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|since| u64::try_from(since.as_millis()).ok())
        .and_then(|ms| ms.checked_mul(IDS_PER_MS))
        .unwrap_or(0)
}

/// The id an event went out with: a number (one the log gave it, or its publisher's), or
/// the text its publisher gave it (a Redis stream id is text here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WireId {
    Number(u64),
    Text(Arc<str>),
}

impl WireId {
    /// A publisher's id: a number when it is one in canonical decimal, else text.
    pub(super) fn parse(id: &str) -> Self {
        match parse_decimal(id.as_bytes()) {
            Some(number) => Self::Number(number),
            None => Self::Text(Arc::from(id)),
        }
    }
}

/// Parses a number written as the logs write them: ASCII digits, no sign, no leading zero
/// (`0` itself is fine), within `u64`. Anything else, `"07"` or `"+7"` included, is not
/// a number: the same text always names the same id.
pub(super) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    let canonical = match digits {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return None;
    }
    digits.iter().try_fold(0u64, |n, digit| {
        n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_decimal_only() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"42"), Some(42));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "00",
            "07",
            "+7",
            "-1",
            " 7",
            "7 ",
            "1e3",
            "١",
            "18446744073709551616",
        ] {
            assert_eq!(parse_decimal(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn clock_ids_start_from_the_clock_and_never_repeat() {
        let before = clock_floor();
        let first = next_clock_id(0).unwrap();
        assert!(first >= before, "{first} < {before}");
        // A second log started in the same millisecond starts above the first one's ids.
        let again = next_clock_id(0).unwrap();
        assert!(again > first);
        assert!(next_clock_id(first).unwrap() > again);
        assert_eq!(next_clock_id(u64::MAX), None);
        // About 16 digits: milliseconds since 1970 times 1024.
        assert_eq!(first.to_string().len(), 16);
    }

    #[test]
    fn publisher_ids_are_numbers_when_canonical() {
        assert_eq!(WireId::parse("42"), WireId::Number(42));
        assert_eq!(WireId::parse("042"), WireId::Text("042".into()));
        assert_eq!(WireId::parse("1-0"), WireId::Text("1-0".into()));
    }
}
