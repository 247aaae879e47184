//! The one Lua script every read of the stream goes through, and its reply.
//!
//! A read returns entries together with the stream's counters, taken atomically (a script
//! runs alone on the server): `entries-added` (every entry ever appended) and `length`
//! (those still there). Trimming removes entries from the front only, so the entries gone
//! are exactly the first `entries-added - length` ever appended. A node that counts the
//! entries it has read can tell from that, exactly, whether entries after the last one it
//! read were trimmed before it could read them. (`max-deleted-entry-id` cannot: trimming
//! does not update it, only `XDEL` does.)

use bytes::Bytes;
use redis::aio::ConnectionLike;
use redis::{ErrorKind, RedisError, RedisResult, Script, Value};

use super::id::StreamId;

/// The entry field that holds the frame.
pub(super) const FIELD: &str = "f";

/// `KEYS[1]`: the stream. `ARGV[1]`: `info`, `tail` (the newest `ARGV[2]` entries, newest
/// first) or `after` (up to `ARGV[2]` entries after id `ARGV[3]`, oldest first, and
/// whether the entry `ARGV[3]` itself is still there).
const SOURCE: &str = r"
local last, added, length, first = '0-0', 0, 0, ''
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  local found = false
  for i = 1, #info, 2 do
    local name, value = info[i], info[i + 1]
    if name == 'entries-added' then
      added = value
      found = true
    elseif name == 'last-generated-id' then
      last = value
    elseif name == 'length' then
      length = value
    elseif name == 'first-entry' and value then
      first = value[1]
    end
  end
  if not found then
    return redis.error_reply('tower-sse needs Redis 7.0 or later (XINFO STREAM entries-added)')
  end
end
local entries, has_after = {}, 0
if ARGV[1] == 'tail' then
  entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[2])
elseif ARGV[1] == 'after' then
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[3], '+', 'COUNT', ARGV[2])
  has_after = #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
end
return {last, added, length, first, has_after, entries}
";

pub(super) fn script() -> Script {
    Script::new(SOURCE)
}

/// What to read.
#[derive(Debug, Clone, Copy)]
pub(super) enum Range {
    /// No entries, only the ids.
    Info,
    /// The newest `count` entries, newest first.
    Tail(usize),
    /// Up to `count` entries after an id, oldest first.
    After(StreamId, usize),
}

/// The stream as one script call saw it.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// The largest id the stream ever gave (`0-0`: none, or no stream).
    pub(super) last: StreamId,
    /// Entries ever appended (`entries-added`).
    pub(super) added: u64,
    /// Entries still there.
    pub(super) length: u64,
    /// The oldest entry still there.
    pub(super) first: Option<StreamId>,
    /// For `after`: whether the entry it read after is still there, in which case nothing
    /// after it has been trimmed.
    pub(super) has_after: bool,
    pub(super) entries: Vec<Entry>,
}

impl Snapshot {
    /// How many entries were trimmed: the first this many ever appended.
    pub(super) fn trimmed(&self) -> u64 {
        self.added.saturating_sub(self.length)
    }
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) id: StreamId,
    /// The id as Redis wrote it, which is the canonical form `StreamId` parses.
    pub(super) id_text: Bytes,
    /// The frame without its `id:` line; `None` for an entry that is not a frame this
    /// crate published (no such field, or not one event), which is passed over.
    pub(super) body: Option<Bytes>,
}

pub(super) async fn read<C>(
    script: &Script,
    connection: &mut C,
    key: &str,
    range: Range,
) -> RedisResult<Snapshot>
where
    C: ConnectionLike,
{
    let mut invocation = script.key(key);
    match range {
        Range::Info => invocation.arg("info"),
        Range::Tail(count) => invocation.arg("tail").arg(count),
        Range::After(after, count) => invocation.arg("after").arg(count).arg(after.to_string()),
    };
    let reply: Value = invocation.invoke_async(connection).await?;
    parse(reply).ok_or_else(|| {
        RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "unexpected reply from the tower-sse stream script",
        ))
    })
}

fn parse(reply: Value) -> Option<Snapshot> {
    let Value::Array(parts) = reply else {
        return None;
    };
    let [last, added, length, first, has_after, Value::Array(entries)] =
        <[Value; 6]>::try_from(parts).ok()?
    else {
        return None;
    };
    let first = bulk(first)?;
    Some(Snapshot {
        last: StreamId::parse(&bulk(last)?)?,
        added: int(added)?,
        length: int(length)?,
        first: match &first[..] {
            [] => None,
            id => Some(StreamId::parse(id)?),
        },
        has_after: int(has_after)? > 0,
        entries: entries.into_iter().map(entry).collect::<Option<_>>()?,
    })
}

fn int(value: Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

/// One `[id, [field, value, ...]]` of `XRANGE`.
fn entry(value: Value) -> Option<Entry> {
    let Value::Array(pair) = value else {
        return None;
    };
    let [id, Value::Array(fields)] = <[Value; 2]>::try_from(pair).ok()? else {
        return None;
    };
    let id_text = Bytes::from(bulk(id)?);
    let id = StreamId::parse(&id_text)?;
    let mut body = None;
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if bulk(name).is_some_and(|name| name == FIELD.as_bytes()) {
            body = bulk(value)
                .map(Bytes::from)
                .filter(|body| is_one_frame(body));
            break;
        }
    }
    Some(Entry { id, id_text, body })
}

fn bulk(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

/// Whether `body`, after an `id:` line, is exactly one event as the encoder writes it:
/// LF line ends only, and the one blank line that dispatches it at the very end. Anything
/// else would let a foreign entry end our event early or run into the next one.
pub(super) fn is_one_frame(body: &[u8]) -> bool {
    if memchr::memchr(b'\r', body).is_some() {
        return false;
    }
    match body {
        [] => false,
        // An event without fields: with the id line in front it only sets the id.
        [b'\n'] => true,
        [b'\n', ..] => false,
        // `ends_with` first: it also guards the subtraction for a one-byte body.
        _ => body.ends_with(b"\n\n") && memchr::memmem::find(body, b"\n\n") == Some(body.len() - 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk_of(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn frames_are_checked() {
        for good in [
            "\n",
            "data: a\n\n",
            "event: x\ndata: a\ndata: b\n\n",
            ": c\ndata: \n\n",
        ] {
            assert!(is_one_frame(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "",
            "a",
            "data: a",
            "data: a\n",
            "data: a\n\ndata: b\n\n",
            "\ndata: a\n\n",
            "data: a\r\n\r\n",
            "data: a\n\n\n",
        ] {
            assert!(!is_one_frame(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn parses_a_snapshot() {
        let reply = Value::Array(vec![
            bulk_of("9-1"),
            Value::Int(12),
            Value::Int(4),
            bulk_of("8-0"),
            Value::Int(1),
            Value::Array(vec![
                Value::Array(vec![
                    bulk_of("9-0"),
                    Value::Array(vec![bulk_of(FIELD), bulk_of("data: a\n\n")]),
                ]),
                // Not ours: passed over, but its id still counts as read.
                Value::Array(vec![
                    bulk_of("9-1"),
                    Value::Array(vec![bulk_of("other"), bulk_of("x")]),
                ]),
            ]),
        ]);
        let snapshot = parse(reply).unwrap();
        assert_eq!(snapshot.last.to_string(), "9-1");
        assert_eq!(
            (snapshot.added, snapshot.length, snapshot.trimmed()),
            (12, 4, 8)
        );
        assert_eq!(snapshot.first.unwrap().to_string(), "8-0");
        assert!(snapshot.has_after);
        assert_eq!(snapshot.entries.len(), 2);
        assert_eq!(snapshot.entries[0].id_text, "9-0");
        assert_eq!(
            snapshot.entries[0].body.as_deref(),
            Some(&b"data: a\n\n"[..])
        );
        assert!(snapshot.entries[1].body.is_none());

        let empty = Value::Array(vec![
            bulk_of("0-0"),
            Value::Int(0),
            Value::Int(0),
            bulk_of(""),
            Value::Int(0),
            Value::Array(vec![]),
        ]);
        assert!(parse(empty).unwrap().first.is_none());
        assert!(parse(Value::Array(vec![bulk_of("0-0"), Value::Int(0)])).is_none());
        assert!(parse(Value::Nil).is_none());
    }
}
