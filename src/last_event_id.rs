//! [`LastEventId`]: where a reconnecting client wants to resume.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use http::header::HeaderName;
use http::{HeaderMap, Uri};

/// The `Last-Event-ID` request header.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The id of the last event a reconnecting client received, read from its request.
///
/// The layer reads it from the `Last-Event-ID` header (and, if configured, a query
/// parameter) and inserts it into the request's extensions before calling the inner
/// service. It is absent on a first connection.
///
/// A value the layer cannot trust (not UTF-8, holding NUL, or longer than the configured
/// limit) is logged and treated as absent: the reconnect is served, from the start, rather
/// than refused.
///
/// # Example
///
/// ```
/// use http::Request;
/// use tower_sse::LastEventId;
///
/// /// The first id to send: 0 on a first connection, `None` after `u64::MAX`.
/// fn resume_after(req: &Request<()>) -> Option<u64> {
///     req.extensions()
///         .get::<LastEventId>()
///         .and_then(|id| id.parse().ok())
///         .map_or(Some(0), |last: u64| last.checked_add(1))
/// }
/// # let mut req = Request::new(());
/// # req.extensions_mut().insert(LastEventId::new("41"));
/// # assert_eq!(resume_after(&req), Some(42));
/// # req.extensions_mut().insert(LastEventId::new(u64::MAX.to_string()));
/// # assert_eq!(resume_after(&req), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LastEventId(String);

impl LastEventId {
    /// Wraps an id, for tests and for callers that read it themselves.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the id, as ids are often sequence numbers.
    ///
    /// # Errors
    ///
    /// When `T::from_str` fails; callers usually treat that like an unknown id.
    pub fn parse<T: FromStr>(&self) -> Result<T, T::Err> {
        self.0.parse()
    }

    /// The id as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether this is [`EventId::END_OF_STREAM`](crate::EventId::END_OF_STREAM): the
    /// client saw its stream's last event, and reconnects only because `EventSource`
    /// always does. The layer answers such a request `204 No Content` itself.
    pub fn is_end_of_stream(&self) -> bool {
        self.0 == crate::EventId::END_OF_STREAM.as_str()
    }
}

impl fmt::Debug for LastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LastEventId").field(&self.0).finish()
    }
}

impl fmt::Display for LastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LastEventId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Left in a request's extensions where a layer's policy read `Last-Event-ID` and found
/// none it trusts, so that the axum extractor does not read the raw header again.
#[cfg(feature = "axum")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastEventIdAbsent;

/// How the layer reads [`LastEventId`] from a request.
#[derive(Debug, Clone)]
pub(crate) struct LastEventIdPolicy {
    pub(crate) max_len: usize,
    pub(crate) query_param: Option<Cow<'static, str>>,
}

impl Default for LastEventIdPolicy {
    fn default() -> Self {
        Self {
            max_len: 1024,
            query_param: None,
        }
    }
}

impl LastEventIdPolicy {
    /// Reads the header, then the query fallback; `None` when absent or not trusted.
    pub(crate) fn read(&self, headers: &HeaderMap, uri: &Uri) -> Option<LastEventId> {
        if let Some(value) = headers.get(LAST_EVENT_ID) {
            return self.accept(Cow::Borrowed(value.as_bytes()), "header");
        }
        let name = self.query_param.as_deref()?;
        let value = query_value(uri.query()?, name)?;
        self.accept(value, "query")
    }

    fn accept(&self, raw: Cow<'_, [u8]>, source: &'static str) -> Option<LastEventId> {
        if raw.is_empty() {
            // Browsers send no header for an empty id; an empty one means "from the start".
            return None;
        }
        if raw.len() > self.max_len {
            tracing::debug!(
                source,
                len = raw.len(),
                max = self.max_len,
                "Last-Event-ID too long, ignored"
            );
            return None;
        }
        let Ok(id) = std::str::from_utf8(&raw) else {
            tracing::debug!(source, "Last-Event-ID is not UTF-8, ignored");
            return None;
        };
        if id.contains('\0') {
            tracing::debug!(source, "Last-Event-ID contains NUL, ignored");
            return None;
        }
        Some(LastEventId(id.to_owned()))
    }
}

/// Finds `name` in an `application/x-www-form-urlencoded` query and decodes its value.
fn query_value<'a>(query: &'a str, name: &str) -> Option<Cow<'a, [u8]>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(key).as_ref() == name.as_bytes()).then(|| form_decode(value))
    })
}

fn form_decode(text: &str) -> Cow<'_, [u8]> {
    let bytes = text.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'%' | b'+')) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                // A stray '%' stands for itself, as URL parsers treat it.
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(digit: Option<&u8>) -> Option<u8> {
    (*digit? as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Request};

    fn with_header(value: &[u8]) -> Request<()> {
        let mut req = Request::new(());
        req.headers_mut()
            .insert(LAST_EVENT_ID, HeaderValue::from_bytes(value).unwrap());
        req
    }

    fn read(policy: &LastEventIdPolicy, req: &Request<()>) -> Option<LastEventId> {
        policy.read(req.headers(), req.uri())
    }

    #[test]
    fn reads_utf8_header() {
        let policy = LastEventIdPolicy::default();
        let id = read(&policy, &with_header("é-42".as_bytes())).unwrap();
        assert_eq!(id.as_str(), "é-42");
    }

    #[test]
    fn untrusted_values_are_absent() {
        let policy = LastEventIdPolicy {
            max_len: 4,
            ..Default::default()
        };
        assert_eq!(read(&policy, &with_header(b"\xff\xfe")), None);
        assert_eq!(read(&policy, &with_header(b"12345")), None);
        assert_eq!(read(&policy, &with_header(b"")), None);
        assert_eq!(read(&policy, &Request::new(())), None);
        assert_eq!(
            read(&policy, &with_header(b"1234")).unwrap().as_str(),
            "1234"
        );
    }

    #[test]
    fn query_fallback_only_when_configured() {
        let req = Request::get("/e?x=1&last%20id=a%2Bb+c%00")
            .body(())
            .unwrap();
        assert_eq!(read(&LastEventIdPolicy::default(), &req), None);
        let policy = LastEventIdPolicy {
            query_param: Some("last id".into()),
            ..Default::default()
        };
        // Decodes to "a+b c\0": NUL makes it untrusted.
        assert_eq!(read(&policy, &req), None);
        let req = Request::get("/e?last+id=a%2Bb+c%zz%").body(()).unwrap();
        assert_eq!(read(&policy, &req).unwrap().as_str(), "a+b c%zz%");
        // The header wins over the query.
        let mut req = Request::get("/e?last+id=q").body(()).unwrap();
        req.headers_mut()
            .insert(LAST_EVENT_ID, HeaderValue::from_static("h"));
        assert_eq!(read(&policy, &req).unwrap().as_str(), "h");
    }
}
