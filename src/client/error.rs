//! Why a client stream failed for good: [`Error`], and the response it refused.

use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::decode::DecodeError;
use crate::error::BoxError;

/// Why an [`EventSource`](super::EventSource) failed the connection ("fail the
/// connection" in the standard): it yields this once, then ends, and does not reconnect.
///
/// Failures the standard reconnects after (a network error, a stream that ends or
/// breaks) are not errors: they are [`Item::Reconnecting`](super::Item::Reconnecting),
/// until a cap set with [`Builder::max_attempts`](super::Builder::max_attempts) or
/// [`Builder::max_elapsed`](super::Builder::max_elapsed) is reached, which
/// is [`Error::GaveUp`].
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use futures_util::StreamExt;
/// use http::{Request, Response, StatusCode};
/// use tower::service_fn;
/// use tower_sse::client::{Error, EventSource};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // An API refusing the request with a JSON error.
/// let api = service_fn(|_req: Request<()>| async {
///     let mut response = Response::new(String::from(r#"{"error":"invalid api key"}"#));
///     *response.status_mut() = StatusCode::UNAUTHORIZED;
///     Ok::<_, Infallible>(response)
/// });
/// let mut source = Box::pin(EventSource::new(api, || Request::new(())));
/// let Some(Err(error)) = source.next().await else { panic!("expected an error") };
/// assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
/// let refused = error.response().unwrap();
/// assert_eq!(refused.body(), r#"{"error":"invalid api key"}"#);
/// assert!(matches!(error, Error::Status(_)));
/// assert!(source.next().await.is_none(), "no reconnection");
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The server answered a status other than `200`, `204` or a redirect (and the
    /// [`RetryPolicy`](super::RetryPolicy) did not retry it).
    Status(Box<RefusedResponse>),
    /// The server answered `200` with a content type other than `text/event-stream`.
    ContentType(Box<RefusedResponse>),
    /// A redirect could not be followed.
    Redirect(RedirectError),
    /// The stream broke a decoder limit (a line or an event too long); reconnecting would
    /// read the same bytes again.
    Decode(DecodeError),
    /// The cap on reconnection attempts or on time spent reconnecting was reached; the
    /// last attempt's cause is the [`source`](StdError::source).
    GaveUp {
        /// Attempts made since the last event arrived.
        attempts: u32,
        /// Why the last attempt failed.
        cause: Box<super::Cause>,
    },
}

impl Error {
    /// The refused response's status, headers and the first bytes of its body, if this
    /// error is about one.
    pub fn response(&self) -> Option<&RefusedResponse> {
        match self {
            Self::Status(response) | Self::ContentType(response) => Some(response),
            _ => None,
        }
    }

    /// The refused response's status, if this error is about one.
    pub fn status(&self) -> Option<StatusCode> {
        self.response().map(RefusedResponse::status)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(response) => {
                write!(f, "event stream request answered {}", response.status)
            }
            Self::ContentType(response) => match response.content_type() {
                Some(content_type) => write!(
                    f,
                    "event stream response has content type {content_type:?}, not text/event-stream"
                ),
                None => f.write_str("event stream response has no content type"),
            },
            Self::Redirect(_) => f.write_str("event stream redirect failed"),
            Self::Decode(_) => f.write_str("event stream could not be decoded"),
            Self::GaveUp { attempts, .. } => {
                write!(
                    f,
                    "event stream gave up after {attempts} reconnection attempts"
                )
            }
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Redirect(error) => Some(error),
            Self::Decode(error) => Some(error),
            Self::GaveUp { cause, .. } => Some(&**cause),
            _ => None,
        }
    }
}

/// A response the client would not read as an event stream: its status, its headers and
/// a bounded prefix of its body (an API's JSON error, say), at most
/// [`Builder::error_body_limit`](super::Builder::error_body_limit) bytes.
#[derive(Debug, Clone)]
pub struct RefusedResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) body_truncated: bool,
}

impl RefusedResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `Content-Type` header, if it is text.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
    }

    /// The first bytes of the body, as received.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the body went on past [`body`](Self::body) (or failed, or timed out,
    /// before its end).
    pub fn body_truncated(&self) -> bool {
        self.body_truncated
    }
}

/// Why a redirect could not be followed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedirectError {
    /// A redirect status without a `Location` header, or with an empty one.
    MissingLocation(StatusCode),
    /// A `Location` that is not a URI the client can request.
    InvalidLocation(BoxError),
    /// More redirects in a row than [`Builder::max_redirects`](super::Builder::max_redirects).
    TooMany {
        /// The configured limit.
        limit: u32,
    },
}

impl fmt::Display for RedirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLocation(status) => write!(f, "redirect {status} without a location"),
            Self::InvalidLocation(_) => f.write_str("redirect location is not a valid uri"),
            Self::TooMany { limit } => write!(f, "more than {limit} redirects"),
        }
    }
}

impl StdError for RedirectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::InvalidLocation(error) => Some(&**error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_sources() {
        let refused = RefusedResponse {
            status: StatusCode::BAD_GATEWAY,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
            body_truncated: false,
        };
        let status = Error::Status(Box::new(refused.clone()));
        assert_eq!(
            status.to_string(),
            "event stream request answered 502 Bad Gateway"
        );
        assert_eq!(status.status(), Some(StatusCode::BAD_GATEWAY));
        assert_eq!(status.response().unwrap().body(), "{}");
        let content_type = Error::ContentType(Box::new(refused));
        assert_eq!(
            content_type.to_string(),
            "event stream response has no content type"
        );

        let redirect = Error::Redirect(RedirectError::MissingLocation(StatusCode::FOUND));
        assert_eq!(redirect.to_string(), "event stream redirect failed");
        assert_eq!(
            redirect.source().unwrap().to_string(),
            "redirect 302 Found without a location"
        );
        assert_eq!(
            RedirectError::TooMany { limit: 3 }.to_string(),
            "more than 3 redirects"
        );
    }
}
