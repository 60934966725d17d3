//! Mapping HTTP statuses and provider error bodies to [`george_core::Error`] kinds,
//! with a retry status that honours `Retry-After`.

use std::time::{Duration, SystemTime};

use george_core::{Error, ErrorKind, RetryStatus};

use crate::transport::header;

/// How long the server asked us to wait: `retry-after-ms` (OpenAI), then `retry-after`
/// in seconds or as an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_millis(ms as u64));
    }
    let v = header(headers, "retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// What a provider's error body said, when an adapter could read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// The provider's own error type or code (e.g. `overloaded_error`,
    /// `context_length_exceeded`, `RESOURCE_EXHAUSTED`).
    pub code: Option<String>,
    /// Its message.
    pub message: Option<String>,
}

/// The error for a non-success `status` from `provider`.
///
/// | status | kind | retried |
/// |---|---|---|
/// | 400, 404, 413, 422 | `InvalidInput`, or `ContextTooLong` when the body says so | no |
/// | 401 | `Unauthenticated` | no |
/// | 403 | `PermissionDenied` | no |
/// | 408 | `Timeout` | yes |
/// | 429 | `RateLimited` | yes, after `Retry-After` |
/// | 503, 529 | `Overloaded` | yes, after `Retry-After` |
/// | other 5xx | `Backend` | yes |
///
/// The body's code refines this: `overloaded_error` is `Overloaded`, codes and
/// messages about the context length, window or size are `ContextTooLong` (llama.cpp's
/// type `exceed_context_size_error` and message "request (N tokens) exceeds the
/// available context size (M tokens)", each on its own),
/// `insufficient_quota` is not retried. A code that only repeats the status (`400`)
/// is left out of the message.
pub fn from_status(
    provider: &str,
    status: u16,
    headers: &[(String, String)],
    body: &ErrorBody,
) -> Error {
    let code = body.code.as_deref().unwrap_or("");
    let text = body.message.as_deref().unwrap_or("");
    let lower = format!("{code} {text}").to_ascii_lowercase();
    let context = lower.contains("context_length")
        || lower.contains("context length")
        || lower.contains("context window")
        || lower.contains("context size")
        || lower.contains("context_size")
        || lower.contains("prompt is too long")
        || lower.contains("too many tokens")
        || lower.contains("maximum context");
    let kind = match status {
        _ if code == "overloaded_error" => ErrorKind::Overloaded,
        400 | 404 | 413 | 422 if context => ErrorKind::ContextTooLong,
        400 | 404 | 413 | 422 => ErrorKind::InvalidInput,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        408 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Overloaded,
        500..=599 => ErrorKind::Backend,
        _ => ErrorKind::InvalidInput,
    };
    let mut message = format!("{provider}: HTTP {status}");
    if !code.is_empty() && code != status.to_string() {
        message.push_str(&format!(" {code}"));
    }
    if !text.is_empty() {
        message.push_str(&format!(": {text}"));
    }
    let mut err = Error::new(kind, message);
    let quota = code == "insufficient_quota";
    if quota {
        err = err.with_retry(RetryStatus::Never);
    } else if err.is_retryable() {
        err = err.with_retry(RetryStatus::Transient {
            after: retry_after(headers),
        });
    }
    err
}

/// A response that does not follow the provider's protocol.
pub fn malformed(provider: &str, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::MalformedResponse,
        format!("{provider}: malformed response: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&h(&[("Retry-After", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after-ms", "250"), ("retry-after", "3")])),
            Some(Duration::from_millis(250))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = retry_after(&h(&[("retry-after", &later)])).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(retry_after(&h(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn statuses_map_to_kinds() {
        let none = ErrorBody::default();
        let e = from_status("p", 429, &h(&[("retry-after", "2")]), &none);
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(
            e.retry(),
            RetryStatus::Transient {
                after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            from_status("p", 401, &[], &none).kind(),
            ErrorKind::Unauthenticated
        );
        assert!(!from_status("p", 400, &[], &none).is_retryable());
        assert_eq!(
            from_status("p", 529, &[], &none).kind(),
            ErrorKind::Overloaded
        );
        assert!(from_status("p", 500, &[], &none).is_retryable());
        let ctx = ErrorBody {
            code: Some("context_length_exceeded".into()),
            message: None,
        };
        assert_eq!(
            from_status("p", 400, &[], &ctx).kind(),
            ErrorKind::ContextTooLong
        );
        // llama.cpp's body, as a real server sends it (george-llm/tests/live_local_model.rs):
        // its type and its message each say so.
        for body in [
            ErrorBody {
                code: Some("exceed_context_size_error".into()),
                message: None,
            },
            ErrorBody {
                code: None,
                message: Some(
                    "request (4114 tokens) exceeds the available context size (2048 tokens), \
                     try increasing it"
                        .into(),
                ),
            },
        ] {
            assert_eq!(
                from_status("p", 400, &[], &body).kind(),
                ErrorKind::ContextTooLong,
                "{body:?}"
            );
        }
        let quota = ErrorBody {
            code: Some("insufficient_quota".into()),
            message: None,
        };
        assert!(!from_status("p", 429, &[], &quota).is_retryable());
    }
}
