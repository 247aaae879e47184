//! Ids as the replay logs write and read them: canonical decimal numbers and the id an
//! event went out with. Both logs parse a client's `Last-Event-ID` through here.

use std::sync::Arc;

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
    fn publisher_ids_are_numbers_when_canonical() {
        assert_eq!(WireId::parse("42"), WireId::Number(42));
        assert_eq!(WireId::parse("042"), WireId::Text("042".into()));
        assert_eq!(WireId::parse("1-0"), WireId::Text("1-0".into()));
    }
}
