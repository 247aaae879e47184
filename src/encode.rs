//! Pure framing of SSE fields into a reused buffer: no I/O, no timers.
//!
//! The browser's parser (WHATWG HTML, "Parsing an event stream") ends a line at CRLF, at LF
//! and at a lone CR, and strips exactly one space after the colon. So every value is written
//! as `name: value`, and a multi-line value becomes one field line per line of the value.
//!
//! The writers take any [`Sink`]: the body's `BytesMut`, or the `Vec<u8>` an
//! [`Event`](crate::Event) keeps its fields in.

use bytes::{BufMut, BytesMut};

/// Field name prefixes, each with the colon and the one space the parser strips.
pub(crate) const DATA: &[u8] = b"data: ";
pub(crate) const COMMENT: &[u8] = b": ";
pub(crate) const EVENT: &[u8] = b"event: ";
pub(crate) const ID: &[u8] = b"id: ";
pub(crate) const RETRY: &[u8] = b"retry: ";

/// A growable byte buffer the writers append to.
pub(crate) trait Sink: BufMut {
    fn len(&self) -> usize;
    fn reserve(&mut self, additional: usize);
    fn truncate(&mut self, len: usize);
    fn as_slice(&self) -> &[u8];
}

impl Sink for BytesMut {
    fn len(&self) -> usize {
        BytesMut::len(self)
    }
    fn reserve(&mut self, additional: usize) {
        BytesMut::reserve(self, additional);
    }
    fn truncate(&mut self, len: usize) {
        BytesMut::truncate(self, len);
    }
    fn as_slice(&self) -> &[u8] {
        self
    }
}

impl Sink for Vec<u8> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional);
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
    fn as_slice(&self) -> &[u8] {
        self
    }
}

/// Writes `prefix value\n` for a value already known to hold no line break.
pub(crate) fn put_field<B: Sink>(buf: &mut B, prefix: &[u8], value: &[u8]) {
    buf.reserve(prefix.len() + value.len() + 1);
    buf.put_slice(prefix);
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

/// Writes `prefix n\n` in decimal, without going through `fmt`.
pub(crate) fn put_u64_field<B: Sink>(buf: &mut B, prefix: &[u8], n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    put_field(buf, prefix, &digits[at..]);
}

/// Writes `text` as one `prefix line\n` per line, splitting on CRLF, LF and lone CR.
///
/// An empty `text` is one empty line, and a trailing line break yields a trailing empty
/// line, so the parser rebuilds the value exactly (with every break normalized to LF).
pub(crate) fn put_lines<B: Sink>(buf: &mut B, prefix: &'static [u8], text: &[u8]) {
    let mut lines = LineWriter::new(buf, prefix);
    lines.write(text);
    lines.finish();
}

/// Writes a value that arrives in chunks as field lines.
///
/// A CR at the end of one chunk followed by an LF at the start of the next is one line
/// break, not two: that is why this keeps state between chunks.
pub(crate) struct LineWriter<'a, B> {
    buf: &'a mut B,
    prefix: &'static [u8],
    after_cr: bool,
}

impl<'a, B: Sink> LineWriter<'a, B> {
    pub(crate) fn new(buf: &'a mut B, prefix: &'static [u8]) -> Self {
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
/// straight into the buffer and scanned once; only a `RawValue` carrying raw line breaks
/// takes the slow path and is split like any text. On error the buffer is left as it was,
/// so no partial frame ever reaches the wire.
#[cfg(feature = "json")]
pub(crate) fn put_json_data<B, T>(buf: &mut B, value: &T) -> Result<(), serde_json::Error>
where
    B: Sink,
    T: serde::Serialize + ?Sized,
{
    let start = buf.len();
    buf.put_slice(DATA);
    let json_start = buf.len();
    if let Err(err) = serde_json::to_writer((&mut *buf).writer(), value) {
        buf.truncate(start);
        return Err(err);
    }
    if memchr::memchr2(b'\n', b'\r', &buf.as_slice()[json_start..]).is_some() {
        let json = buf.as_slice()[json_start..].to_vec();
        buf.truncate(start);
        put_lines(buf, DATA, &json);
    } else {
        buf.put_u8(b'\n');
    }
    Ok(())
}

/// Ends an event: the blank line that makes the parser dispatch it.
pub(crate) fn end_event<B: Sink>(buf: &mut B) {
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
    }
}
