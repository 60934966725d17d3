//! [`ReqwestTransport`]: the default [`HttpTransport`], over reqwest with rustls.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use george_core::{Error, ErrorKind, Result};

use super::{HttpRequest, HttpResponse, HttpTransport};
use crate::guard;

/// The default transport: a [`reqwest::Client`] with rustls, HTTP/1.1 and HTTP/2, a
/// connect timeout and the system proxy settings.
///
/// # What it refuses
/// - Redirects: the clients it builds never follow one (`redirect::Policy::none()`);
///   the 3xx answer reaches the adapter, which reports it as an error naming its
///   `Location` ([`crate::call::send`]).
/// - Link-local and cloud metadata addresses ([`crate::guard`]): a URL whose host is
///   such a literal address or name is refused before anything is sent, and the
///   clients it builds resolve names through a resolver that drops such addresses
///   (a name resolving only to them is refused). [`ReqwestTransport::allowing_link_local`]
///   lifts both, for an operator's profile that names such an address.
///
/// With [`ReqwestTransport::from_client`] the URL check still applies; redirects and
/// name resolution are as you configured that client.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    allow_link_local: bool,
}

impl ReqwestTransport {
    /// A client with the given connect timeout that follows no redirect and refuses
    /// link-local and metadata addresses.
    ///
    /// # Errors
    /// `Backend` when the TLS backend cannot be set up.
    pub fn new(connect_timeout: Duration) -> Result<Self> {
        Self::build(connect_timeout, false)
    }

    /// As [`ReqwestTransport::new`], but link-local and metadata addresses are allowed
    /// (for a provider that really lives there, e.g. a model server on a link-local
    /// network). Redirects are still not followed.
    ///
    /// # Errors
    /// `Backend` when the TLS backend cannot be set up.
    pub fn allowing_link_local(connect_timeout: Duration) -> Result<Self> {
        Self::build(connect_timeout, true)
    }

    fn build(connect_timeout: Duration, allow_link_local: bool) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none());
        if !allow_link_local {
            builder = builder.dns_resolver(GuardedResolver);
        }
        let client = builder
            .build()
            .map_err(|e| Error::backend("building the HTTP client").with_source(e))?;
        Ok(ReqwestTransport {
            client,
            allow_link_local,
        })
    }

    /// Wraps a client you configured (proxies, certificates, …). Build it with
    /// `redirect(reqwest::redirect::Policy::none())`: reqwest follows redirects by
    /// default, and a followed redirect carries the request (and, for some providers'
    /// key headers, the key) to wherever it points.
    pub fn from_client(client: reqwest::Client) -> Self {
        ReqwestTransport {
            client,
            allow_link_local: false,
        }
    }
}

#[async_trait]
impl HttpTransport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        let url = guard::check_url(&request.url, self.allow_link_local)?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| Error::invalid_input("HTTP method").with_source(e))?;
        let mut builder = self.client.request(method, url);
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

/// Resolves names with the system resolver (`getaddrinfo`, through tokio) and drops
/// link-local and metadata addresses ([`guard::filter_resolved`]); metadata host
/// names are refused without a lookup.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            if guard::is_metadata_host(&host) {
                return Err(guard::refusal(&host).message().into());
            }
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = guard::filter_resolved(&host, addrs)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

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
    let mut message = format!("{what}: {e}");
    // The resolver's refusal is in the source chain, not in reqwest's Display.
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if s.to_string().contains("allow_link_local") {
            message = format!("{what}: {s}");
            return Error::new(ErrorKind::PermissionDenied, message).with_source(e);
        }
        source = s.source();
    }
    Error::new(kind, message).with_source(e)
}
