//! Each attempt's request: [`MakeRequest`], the headers the standard adds, redirects, and
//! reading the response head (content type, `Retry-After`).

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{Parts, PathAndQuery, Uri};
use http::{Method, Request, StatusCode};

use crate::error::BoxError;
use crate::LAST_EVENT_ID;

const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// Makes the request of each connection attempt: the first, every reconnection and every
/// redirect hop, so a `POST` with a JSON body and an `Authorization` header is sent again,
/// whole, each time.
///
/// Implemented for a `Request<B>` whose body is `Clone` (`Full<Bytes>`, `String`, ...),
/// which is cloned each time, and for closures `FnMut() -> Request<B>`, which can refresh
/// a token between attempts. The client then sets `Accept: text/event-stream` (unless the
/// request has an `Accept` of its own, as MCP servers want `application/json,
/// text/event-stream`), `Cache-Control: no-cache` and `Last-Event-ID` (only when the last
/// event id is not empty; a `Last-Event-ID` the request had is replaced or removed).
///
/// # Example
///
/// ```
/// use http::Request;
/// use tower_sse::client::MakeRequest;
///
/// let mut template = Request::post("http://127.0.0.1:3000/v1/chat")
///     .header("authorization", "Bearer token")
///     .body(String::from(r#"{"stream":true}"#))?;
/// let attempt = template.make_request();
/// assert_eq!(attempt.method(), "POST");
/// assert_eq!(attempt.body(), r#"{"stream":true}"#);
///
/// let mut fresh = || Request::get("/events").body(()).unwrap_or_default();
/// assert_eq!(fresh.make_request().uri(), "/events");
/// # Ok::<(), http::Error>(())
/// ```
pub trait MakeRequest<B> {
    /// The request for the next attempt.
    fn make_request(&mut self) -> Request<B>;
}

impl<B: Clone> MakeRequest<B> for Request<B> {
    fn make_request(&mut self) -> Request<B> {
        self.clone()
    }
}

impl<F, B> MakeRequest<B> for F
where
    F: FnMut() -> Request<B>,
{
    fn make_request(&mut self) -> Request<B> {
        self()
    }
}

/// Where a redirect sends the next hop, and what it changes in the request.
#[derive(Debug, Clone)]
pub(crate) struct Redirect {
    pub(crate) uri: Uri,
    /// 303, or 301 / 302 after a `POST`: the next hop is a `GET` without a body, as fetch
    /// does.
    pub(crate) to_get: bool,
    /// Another origin: credentials the caller meant for the first one are not sent there.
    pub(crate) cross_origin: bool,
}

impl Redirect {
    /// The hop after a `status` redirect from `request_uri` (itself maybe redirected).
    pub(crate) fn follow(
        status: StatusCode,
        method: &Method,
        request_uri: &Uri,
        headers: &HeaderMap,
        earlier: Option<&Redirect>,
    ) -> Result<Self, super::RedirectError> {
        let location = headers
            .get(header::LOCATION)
            .map(HeaderValue::as_bytes)
            .filter(|location| !location.iter().all(u8::is_ascii_whitespace))
            .ok_or(super::RedirectError::MissingLocation(status))?;
        let uri = resolve(request_uri, location).map_err(super::RedirectError::InvalidLocation)?;
        let to_get = status == StatusCode::SEE_OTHER && method != Method::HEAD
            || matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                && method == Method::POST;
        let cross_origin = earlier.is_some_and(|earlier| earlier.cross_origin)
            || uri.authority().is_some()
                && (uri.authority() != request_uri.authority()
                    || uri.scheme() != request_uri.scheme());
        Ok(Self {
            uri,
            to_get: to_get || earlier.is_some_and(|earlier| earlier.to_get),
            cross_origin,
        })
    }
}

pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// `location` resolved against `base`: absolute, scheme-relative (`//host/path`),
/// absolute-path (`/path`) or relative (`path`, `?query`) references. A fragment is
/// dropped, as it is never sent.
fn resolve(base: &Uri, location: &[u8]) -> Result<Uri, BoxError> {
    let location = std::str::from_utf8(location)?.trim();
    let location = location.split('#').next().unwrap_or_default();
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.scheme_str().unwrap_or("http");
        return Ok(format!("{scheme}://{rest}").parse()?);
    }
    let uri: Uri = if location.starts_with('/') || location.contains("://") {
        location.parse()?
    } else {
        let base_path = base.path();
        let joined = if location.is_empty() || location.starts_with('?') {
            format!("{base_path}{location}")
        } else {
            let directory = &base_path[..base_path.rfind('/').map_or(0, |slash| slash + 1)];
            if directory.is_empty() {
                format!("/{location}")
            } else {
                format!("{directory}{location}")
            }
        };
        joined.parse()?
    };
    if uri.scheme().is_some() {
        if uri.authority().is_none() {
            return Err("redirect location has a scheme but no host".into());
        }
        return Ok(uri);
    }
    // A path: on the base's scheme and authority, if it had them (a request in origin
    // form, as HTTP/1.1 clients send, has neither).
    let mut parts = Parts::default();
    parts.scheme = base.scheme().cloned();
    parts.authority = base.authority().cloned();
    parts.path_and_query = Some(
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    Ok(Uri::from_parts(parts)?)
}

/// Applies a redirect and the standard's headers to an attempt's request.
pub(crate) fn prepare<B: Default>(
    request: &mut Request<B>,
    redirect: Option<&Redirect>,
    last_event_id: &str,
) {
    if let Some(redirect) = redirect {
        *request.uri_mut() = redirect.uri.clone();
        let headers = request.headers_mut();
        if redirect.to_get {
            headers.remove(header::CONTENT_TYPE);
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::CONTENT_ENCODING);
        }
        if redirect.cross_origin {
            headers.remove(header::AUTHORIZATION);
            headers.remove(header::PROXY_AUTHORIZATION);
            headers.remove(header::COOKIE);
            headers.remove(header::HOST);
        }
        if redirect.to_get {
            *request.method_mut() = Method::GET;
            *request.body_mut() = B::default();
        }
    }
    let headers = request.headers_mut();
    if !headers.contains_key(header::ACCEPT) {
        headers.insert(header::ACCEPT, EVENT_STREAM);
    }
    headers.insert(header::CACHE_CONTROL, NO_CACHE);
    // An id the decoder kept holds no CR, LF or NUL, but may hold other control characters
    // a header cannot: such an id is not sent, rather than failing the request.
    match HeaderValue::from_bytes(last_event_id.as_bytes()) {
        Ok(value) if !last_event_id.is_empty() => {
            headers.insert(LAST_EVENT_ID, value);
        }
        _ => {
            headers.remove(LAST_EVENT_ID);
        }
    }
}

/// `text/event-stream`, in any case, with or without parameters.
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|value| {
        let essence = value.as_bytes().split(|&byte| byte == b';').next();
        essence.is_some_and(|essence| trim(essence).eq_ignore_ascii_case(b"text/event-stream"))
    })
}

/// `bytes` without leading and trailing ASCII whitespace (`<[u8]>::trim_ascii` is newer
/// than the MSRV).
fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !first.is_ascii_whitespace() {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !last.is_ascii_whitespace() {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past is no delay).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // Saturates rather than failing on a huge number of seconds.
        let seconds = value.bytes().fold(0u64, |n, digit| {
            n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
        });
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(
        status: u16,
        method: Method,
        base: &str,
        location: &str,
    ) -> Result<Redirect, String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, HeaderValue::from_str(location).unwrap());
        Redirect::follow(
            StatusCode::from_u16(status).unwrap(),
            &method,
            &base.parse().unwrap(),
            &headers,
            None,
        )
        .map_err(|error| error.to_string())
    }

    #[test]
    fn locations_resolve_against_the_request() {
        let base = "http://a.test/feeds/one?x=1";
        let cases = [
            ("http://b.test/x", "http://b.test/x"),
            ("//c.test/y", "http://c.test/y"),
            ("/root", "http://a.test/root"),
            ("two", "http://a.test/feeds/two"),
            ("?page=2", "http://a.test/feeds/one?page=2"),
            ("/frag#top", "http://a.test/frag"),
        ];
        for (location, expected) in cases {
            let hop = redirect(307, Method::GET, base, location).unwrap();
            assert_eq!(hop.uri, expected, "{location}");
        }
        // Origin form (HTTP/1.1 with Host): the path stays a path.
        assert_eq!(redirect(302, Method::GET, "/a/b", "c").unwrap().uri, "/a/c");
        assert_eq!(redirect(302, Method::GET, "/a", "/z").unwrap().uri, "/z");
    }

    #[test]
    fn bad_locations_are_errors() {
        let mut headers = HeaderMap::new();
        let none = Redirect::follow(
            StatusCode::FOUND,
            &Method::GET,
            &Uri::from_static("/"),
            &headers,
            None,
        );
        assert_eq!(
            none.unwrap_err().to_string(),
            "redirect 302 Found without a location"
        );
        headers.insert(header::LOCATION, HeaderValue::from_static(""));
        let empty = Redirect::follow(
            StatusCode::FOUND,
            &Method::GET,
            &Uri::from_static("/"),
            &headers,
            None,
        );
        assert!(empty.is_err());
        assert!(redirect(301, Method::GET, "/", "http://").is_err());
        assert!(redirect(301, Method::GET, "/", "a b").is_err());
    }

    #[test]
    fn methods_and_origins() {
        let see_other = redirect(303, Method::POST, "http://a.test/", "/x").unwrap();
        assert!(see_other.to_get && !see_other.cross_origin);
        assert!(
            redirect(302, Method::POST, "http://a.test/", "/x")
                .unwrap()
                .to_get
        );
        assert!(
            !redirect(307, Method::POST, "http://a.test/", "/x")
                .unwrap()
                .to_get
        );
        assert!(
            !redirect(308, Method::POST, "http://a.test/", "/x")
                .unwrap()
                .to_get
        );
        assert!(
            redirect(307, Method::GET, "http://a.test/", "http://b.test/")
                .unwrap()
                .cross_origin
        );
        assert!(
            redirect(307, Method::GET, "http://a.test/", "https://a.test/")
                .unwrap()
                .cross_origin
        );
    }

    #[test]
    fn headers_for_each_attempt() {
        let mut request = Request::post("http://a.test/")
            .header(header::AUTHORIZATION, "Bearer t")
            .header(header::CONTENT_TYPE, "application/json")
            .header(LAST_EVENT_ID, "stale")
            .body(String::from("{}"))
            .unwrap();
        prepare(&mut request, None, "");
        assert_eq!(request.headers()[header::ACCEPT], "text/event-stream");
        assert_eq!(request.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(!request.headers().contains_key(LAST_EVENT_ID));
        prepare(&mut request, None, "7");
        assert_eq!(request.headers()[LAST_EVENT_ID], "7");
        // A control character cannot be sent: no header rather than a failure.
        prepare(&mut request, None, "a\u{1}b");
        assert!(!request.headers().contains_key(LAST_EVENT_ID));

        let hop = redirect(303, Method::POST, "http://a.test/", "http://b.test/x").unwrap();
        prepare(&mut request, Some(&hop), "");
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.body(), "");
        assert_eq!(request.uri(), "http://b.test/x");
        assert!(!request.headers().contains_key(header::AUTHORIZATION));
        assert!(!request.headers().contains_key(header::CONTENT_TYPE));

        let mut mcp = Request::post("/mcp")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(String::new())
            .unwrap();
        prepare(&mut mcp, None, "");
        assert_eq!(
            mcp.headers()[header::ACCEPT],
            "application/json, text/event-stream"
        );
    }

    #[test]
    fn content_types() {
        let check = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_event_stream(&headers)
        };
        assert!(check("text/event-stream"));
        assert!(check("Text/Event-Stream; charset=utf-8"));
        assert!(check(" text/event-stream ;x=y"));
        assert!(!check("text/plain"));
        assert!(!check("text/event-streams"));
        assert!(!is_event_stream(&HeaderMap::new()));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let parse = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(value));
            retry_after(&headers, now)
        };
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("-5"), None);
        assert_eq!(parse("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
