//! The request/response steps every adapter shares.

use std::future::Future;
use std::time::Duration;

use george_core::{Error, ErrorKind, Result};

use crate::config::ProviderConfig;
use crate::error::{ErrorBody, from_status};
use crate::transport::{HttpRequest, HttpResponse};

/// Runs `call` within `timeout`; past it, a `Timeout` error (retryable) naming the
/// provider and the limit.
pub async fn within<T>(
    provider: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "{provider}: no complete answer within {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

/// Adds the configuration's extra headers to `req`, sends it, and returns the response
/// when its status is 2xx. A 3xx is an error naming its `Location` (never followed:
/// a redirect would carry the key and the conversation to a host no profile names).
/// Otherwise reads the body (at most 64 KiB), lets `parse_error` read the provider's
/// error envelope, and returns the mapped error ([`from_status`]).
pub async fn send(
    config: &ProviderConfig,
    provider: &str,
    mut req: HttpRequest,
    parse_error: fn(&[u8]) -> ErrorBody,
) -> Result<HttpResponse> {
    for (n, v) in &config.extra_headers {
        req.headers.push((n.clone(), v.clone()));
    }
    let resp = config.transport.send(req).await?;
    if (200..300).contains(&resp.status) {
        return Ok(resp);
    }
    let status = resp.status;
    if (300..400).contains(&status) {
        return Err(redirect_refused(provider, status, resp.header("location")));
    }
    let headers = resp.headers.clone();
    let body = resp.bytes(64 << 10).await.unwrap_or_default();
    let mut parsed = parse_error(&body);
    if parsed.message.is_none() && parsed.code.is_none() && !body.is_empty() {
        let text = String::from_utf8_lossy(&body);
        parsed.message = Some(text.chars().take(300).collect());
    }
    Err(from_status(provider, status, &headers, &parsed))
}

/// The error for a redirect: terminal, naming where it pointed.
fn redirect_refused(provider: &str, status: u16, location: Option<&str>) -> Error {
    let to: String = location
        .unwrap_or("(no Location header)")
        .chars()
        .take(300)
        .collect();
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "{provider}: HTTP {status} redirect to {to}, not followed: provider calls never \
             follow redirects (they would carry the API key and the conversation to another \
             host); set the provider profile's base_url to where the provider answers"
        ),
    )
    .terminal()
}
