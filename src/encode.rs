//! Pure framing of SSE fields into a reused [`BytesMut`]: no I/O, no timers.
//!
//! The browser's parser (WHATWG HTML, "Parsing an event stream") ends a line at CRLF, at LF
//! and at a lone CR, and strips exactly one space after the colon. So every value is written
//! as `name: value`, and a multi-line value becomes one field line per line of the value.
//!
//! The writers append to the body's frame buffer, or to the buffer an
//! [`Event`](crate::Event) keeps its fields in.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

/// Field name prefixes, each with the colon and the one space the parser strips.
pub(crate) const DATA: &[u8] = b"data: ";
pub(crate) const COMMENT: &[u8] = b": ";
pub(crate) const EVENT: &[u8] = b"event: ";
pub(crate) const ID: &[u8] = b"id: ";
pub(crate) const RETRY: &[u8] = b"retry: ";

/// An empty comment: the opening frame and the default keep-alive.
pub(crate) const EMPTY_COMMENT: Bytes = Bytes::from_static(b":\n\n");

/// Writes `retry: <ms>\n` for `delay` in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn put_retry_field(buf: &mut BytesMut, delay: Duration) {
    put_u64_field(
        buf,
        RETRY,
        u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
    );
}

/// Writes `prefix value\n` for a value already known to hold no line break.
pub(crate) fn put_field(buf: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    buf.reserve(prefix.len() + value.len() + 1);
    buf.put_slice(prefix);
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

/// Writes `prefix n\n` in decimal, without going through `fmt`.
pub(crate) fn put_u64_field(buf: &mut BytesMut, prefix: &[u8], n: u64) {
    put_field(buf, prefix, itoa::Buffer::new().format(n).as_bytes());
}

/// Writes `text` as one `prefix line\n` per line, splitting on CRLF, LF and lone CR.
///
/// An empty `text` is one empty line, and a trailing line break yields a trailing empty
/// line, so the parser rebuilds the value exactly (with every break normalized to LF).
pub(crate) fn put_lines(buf: &mut BytesMut, prefix: &'static [u8], text: &[u8]) {
    let mut lines = LineWriter::new(buf, prefix);
    lines.write(text);
    lines.finish();
}

/// Writes a value that arrives in chunks as field lines.
///
/// A CR at the end of one chunk followed by an LF at the start of the next is one line
/// break, not two: that is why this keeps state between chunks.
pub(crate) struct LineWriter<'a> {
    buf: &'a mut BytesMut,
    prefix: &'static [u8],
    after_cr: bool,
}

impl<'a> LineWriter<'a> {
    pub(crate) fn new(buf: &'a mut BytesMut, prefix: &'static [u8]) -> Self {
        // A value always has at least one line, possibly empty.
        buf.reserve(prefix.len() + 1);
        buf.put_slice(prefix);
        Self {
            buf,
            prefix,
            after_cr: false,
        }
    }

    pub(crate) fn write(&mut self, mut chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if std::mem::take(&mut self.after_cr) && chunk[0] == b'\n' {
            chunk = &chunk[1..];
        }
        // One reservation for the common single-line value.
        self.buf.reserve(chunk.len() + 1);
        while let Some(at) = memchr::memchr2(b'\n', b'\r', chunk) {
            self.buf.reserve(at + 1 + self.prefix.len());
            self.buf.put_slice(&chunk[..at]);
            self.buf.put_u8(b'\n');
            self.buf.put_slice(self.prefix);
            let mut next = at + 1;
            if chunk[at] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            chunk = &chunk[next..];
        }
        self.buf.put_slice(chunk);
    }

    pub(crate) fn finish(self) {
        self.buf.put_u8(b'\n');
    }
}

/// Serializes `value` as JSON into one or more `data:` lines.
///
/// serde_json's compact output escapes every control character, so the JSON is written
/// straight into the buffer without a scan: only a `RawValue` can carry raw line breaks,
/// and [`DataLines`] splits those as they are written. On error the buffer is left as it
/// was, so no partial frame ever reaches the wire.
#[cfg(feature = "json")]
pub(crate) fn put_json_data<T>(buf: &mut BytesMut, value: &T) -> Result<(), serde_json::Error>
where
    T: serde::Serialize + ?Sized,
{
    let start = buf.len();
    buf.put_slice(DATA);
    let result = value.serialize(&mut serde_json::Serializer::with_formatter(
        JsonWriter(&mut *buf),
        DataLines,
    ));
    if let Err(err) = result {
        buf.truncate(start);
        return Err(err);
    }
    buf.put_u8(b'\n');
    Ok(())
}

/// An `io::Write` that appends to a `BytesMut` and never fails.
#[cfg(feature = "json")]
struct JsonWriter<'a>(&'a mut BytesMut);

#[cfg(feature = "json")]
impl std::io::Write for JsonWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// serde_json's compact format, except that a raw fragment's line breaks (CRLF, LF or a
/// lone CR) start a new `data:` line. The rest of the output never holds one: strings
/// escape every control character.
///
/// A fragment is always followed by punctuation or the end, never by another fragment's
/// LF, so a CR that ends a fragment is a line break of its own, as in [`put_lines`].
#[cfg(feature = "json")]
struct DataLines;

#[cfg(feature = "json")]
impl serde_json::ser::Formatter for DataLines {
    fn write_raw_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> std::io::Result<()>
    where
        W: ?Sized + std::io::Write,
    {
        const NEXT_LINE: &[u8] = b"\ndata: ";
        let mut rest = fragment.as_bytes();
        while let Some(at) = memchr::memchr2(b'\n', b'\r', rest) {
            writer.write_all(&rest[..at])?;
            writer.write_all(NEXT_LINE)?;
            let mut next = at + 1;
            if rest[at] == b'\r' && rest.get(next) == Some(&b'\n') {
                next += 1;
            }
            rest = &rest[next..];
        }
        writer.write_all(rest)
    }
}

/// Ends an event: the blank line that makes the parser dispatch it.
pub(crate) fn end_event(buf: &mut BytesMut) {
    buf.put_u8(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&str]) -> String {
        let mut buf = BytesMut::new();
        let mut writer = LineWriter::new(&mut buf, DATA);
        for chunk in chunks {
            writer.write(chunk.as_bytes());
        }
        writer.finish();
        String::from_utf8(buf.to_vec()).unwrap()
    }

    #[test]
    fn splits_on_every_kind_of_line_break() {
        assert_eq!(
            lines(&["a\nb\r\nc\rd"]),
            "data: a\ndata: b\ndata: c\ndata: d\n"
        );
    }

    #[test]
    fn keeps_empty_and_trailing_lines() {
        assert_eq!(lines(&[""]), "data: \n");
        assert_eq!(lines(&["a\n"]), "data: a\ndata: \n");
        assert_eq!(lines(&["\n\n"]), "data: \ndata: \ndata: \n");
        assert_eq!(lines(&["\r\r\n"]), "data: \ndata: \ndata: \n");
    }

    #[test]
    fn keeps_leading_space() {
        assert_eq!(lines(&[" a"]), "data:  a\n");
    }

    #[test]
    fn crlf_split_across_chunks_is_one_break() {
        assert_eq!(lines(&["a\r", "\nb"]), "data: a\ndata: b\n");
        assert_eq!(lines(&["a\r", "", "\nb"]), "data: a\ndata: b\n");
        assert_eq!(lines(&["a\r", "b"]), "data: a\ndata: b\n");
        assert_eq!(lines(&["a\r", "\r", "\n"]), "data: a\ndata: \ndata: \n");
    }

    #[test]
    fn writes_integers_without_fmt() {
        for n in [0, 7, 10, 1_000, u64::MAX] {
            let mut buf = BytesMut::new();
            put_u64_field(&mut buf, RETRY, n);
            assert_eq!(buf, format!("retry: {n}\n").as_bytes());
        }
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_error_leaves_no_partial_frame() {
        struct Broken;
        impl serde::Serialize for Broken {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("broken"))
            }
        }
        let mut buf = BytesMut::from(&b"id: 1\n"[..]);
        assert!(put_json_data(&mut buf, &Broken).is_err());
        assert_eq!(buf, &b"id: 1\n"[..]);
    }

    #[cfg(feature = "json")]
    #[test]
    fn raw_json_line_breaks_are_split() {
        let raw = serde_json::value::RawValue::from_string("{\n\"a\": 1\r}".into()).unwrap();
        let mut buf = BytesMut::new();
        put_json_data(&mut buf, &raw).unwrap();
        assert_eq!(buf, &b"data: {\ndata: \"a\": 1\ndata: }\n"[..]);

        // Several fragments, a CRLF, a lone CR: split as `put_lines` splits the text.
        let parts = [
            serde_json::value::RawValue::from_string("[1\r\n]".into()).unwrap(),
            serde_json::value::RawValue::from_string("[2\r,3]".into()).unwrap(),
        ];
        let mut buf = BytesMut::new();
        put_json_data(&mut buf, &parts).unwrap();
        let mut text = BytesMut::new();
        put_lines(&mut text, DATA, b"[[1\r\n],[2\r,3]]");
        assert_eq!(buf, text);
        assert_eq!(buf, &b"data: [[1\ndata: ],[2\ndata: ,3]]\n"[..]);
    }
}
