//! The HTTP transport under every adapter: a trait, so users can add proxies, custom
//! TLS or their own client, and tests can use a local server.
//!
//! Provider calls never follow redirects: [`ReqwestTransport`] is built with
//! `redirect::Policy::none()`, and a 3xx answer is an error naming its `Location`
//! ([`crate::call::send`]) — a redirect would carry the API key and the conversation to
//! a host no profile names. Link-local and metadata addresses are refused as
//! [`crate::guard`] describes.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use george_core::{Error, ErrorKind, Result};

#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "reqwest")]
pub use self::reqwest::ReqwestTransport;

/// An HTTP request, as an adapter builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ….
    pub method: String,
    /// The full URL, query included.
    pub url: String,
    /// Header names (lower case) and values. May hold credentials: never log them.
    pub headers: Vec<(String, String)>,
    /// The body (JSON for every adapter here).
    pub body: Bytes,
}

impl HttpRequest {
    /// A `POST` of a JSON body to `url`.
    pub fn post_json(url: impl Into<String>, body: Vec<u8>) -> Self {
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// An HTTP response whose body arrives as a stream of chunks.
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, chunk by chunk; an `Err` means the connection broke.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Reads the whole body, at most `limit` bytes.
    ///
    /// # Errors
    /// `Backend` (transient) when the connection breaks; `MalformedResponse`
    /// (terminal) naming the cap as soon as the body grows past `limit`, without
    /// reading the rest.
    pub async fn bytes(self, limit: usize) -> Result<Bytes> {
        let mut body = self.body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > limit {
                return Err(over_cap("response body", limit));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }
}

/// `body`, ending with an error naming the cap once more than `limit` bytes came:
/// what reads it (an event-stream parser) never buffers more than that.
pub fn capped(
    body: BoxStream<'static, Result<Bytes>>,
    what: String,
    limit: usize,
) -> BoxStream<'static, Result<Bytes>> {
    // `None` once the cap was passed: the stream ends after that error.
    body.scan(Some(0usize), move |seen, chunk| {
        let item = match (seen.as_mut(), chunk) {
            (None, _) => None,
            (Some(_), Err(e)) => Some(Err(e)),
            (Some(n), Ok(c)) => {
                *n = n.saturating_add(c.len());
                if *n > limit {
                    *seen = None;
                    Some(Err(over_cap(&what, limit)))
                } else {
                    Some(Ok(c))
                }
            }
        };
        futures::future::ready(item)
    })
    .boxed()
}

/// The error for a body past its cap (terminal: the same request would get the same).
fn over_cap(what: &str, limit: usize) -> Error {
    Error::new(
        ErrorKind::MalformedResponse,
        format!("{what} exceeded the cap of {limit} bytes; the rest was not read"),
    )
    .terminal()
}

/// The first value of header `name` in `headers` (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Sends HTTP requests. Implement it to route calls through your own client.
///
/// # Errors
/// `Timeout` when connecting takes too long; `Backend` (transient) for connection
/// failures. A response with any status is `Ok`: adapters map statuses to errors.
#[async_trait]
pub trait HttpTransport: Send + Sync + Debug + 'static {
    /// Sends `request` and returns the response head, with the body still streaming.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse>;
}
