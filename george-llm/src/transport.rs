//! The HTTP transport under every adapter: a trait, so users can add proxies, custom
//! TLS or their own client, and tests can use a local server.

use std::fmt::Debug;
#[cfg(feature = "reqwest")]
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use george_core::{Error, ErrorKind, Result};

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
    /// `Backend` (transient) when the connection breaks, `MalformedResponse` when the
    /// body is larger than `limit`.
    pub async fn bytes(self, limit: usize) -> Result<Bytes> {
        use futures::StreamExt;
        let mut body = self.body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > limit {
                return Err(Error::new(
                    ErrorKind::MalformedResponse,
                    format!("response body larger than {limit} bytes"),
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }
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

/// The default transport: a [`reqwest::Client`] with rustls, HTTP/1.1 and HTTP/2, a
/// connect timeout and the system proxy settings.
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

#[cfg(feature = "reqwest")]
impl ReqwestTransport {
    /// A client with the given connect timeout.
    ///
    /// # Errors
    /// `Backend` when the TLS backend cannot be set up.
    pub fn new(connect_timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| Error::backend("building the HTTP client").with_source(e))?;
        Ok(ReqwestTransport { client })
    }

    /// Wraps a client you configured (proxies, certificates, …).
    pub fn from_client(client: reqwest::Client) -> Self {
        ReqwestTransport { client }
    }
}

#[cfg(feature = "reqwest")]
#[async_trait]
impl HttpTransport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        use futures::StreamExt;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| Error::invalid_input("HTTP method").with_source(e))?;
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .body(request.body)
            .send()
            .await
            .map_err(reqwest_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(reqwest_error))
            .boxed();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(feature = "reqwest")]
fn reqwest_error(e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Backend
    };
    let what = if e.is_connect() {
        "cannot connect to the provider"
    } else if e.is_timeout() {
        "the provider did not answer in time"
    } else {
        "HTTP transport error"
    };
    // reqwest's Display names the URL, never the headers: no credential leaks here.
    Error::new(kind, format!("{what}: {e}")).with_source(e)
}
