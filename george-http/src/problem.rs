//! Errors as RFC 9457 problem details: every error answer of the API is an
//! `application/problem+json` body `{type, title, status, detail}`.
//!
//! | status | `type` (under `https://george.dev/problems/`) | when |
//! |---|---|---|
//! | 400 | `invalid-input` | a body, query or path that does not parse or validate (the detail names the field) |
//! | 401 | `unauthenticated` | no identity: no or an unknown bearer token, no trusted proxy header |
//! | 403 | `forbidden` | the identity lacks the route's role, or is outside the step's approval rule |
//! | 404 | `not-found` | no such job, step attempt transcript or approval request |
//! | 404 | `no-such-route` | no route at this path |
//! | 405 | `method-not-allowed` | the path exists, the method does not |
//! | 409 | `conflict` | the request was decided already, the job is in a status that refuses the action, a digest that is not the plan's |
//! | 413 | `payload-too-large` | a body over the limit |
//! | 415 | `unsupported-media-type` | a body that is not `application/json` |
//! | 500 | `internal` | the store or the Git source failed (the detail says what) |
//! | 503 | `unavailable` | the store or the Git source failed transiently (retry) |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use george_core::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The base of every problem `type`.
pub const PROBLEM_BASE: &str = "https://george.dev/problems/";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://george.dev/problems/conflict",
    "title": "Conflict",
    "status": 409,
    "detail": "approval request j~plan~1~1 is no longer open (approved by human:alice)"
}))]
pub struct Problem {
    /// A URI naming the kind of problem (`https://george.dev/problems/<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
}

impl Problem {
    /// A problem with `status`, the kind's slug (`not-found`) and a detail.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("{PROBLEM_BASE}{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// 400 `invalid-input`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-input", detail)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 `not-found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl From<Error> for Problem {
    /// Classifies an engine error by its kind, once (see the module's table).
    fn from(e: Error) -> Self {
        let (status, slug) = match e.kind() {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, "forbidden"),
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "invalid-input"),
            ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ErrorKind::RateLimited | ErrorKind::Overloaded | ErrorKind::Timeout => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, "operator API: engine error");
        }
        Problem::new(status, slug, e.to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"george\""),
            );
        }
        res
    }
}

/// The answer of a path no route serves: 404 `no-such-route`.
pub(crate) async fn no_such_route(uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        format!("no route at {}", uri.path()),
    )
}

/// The answer of a method a path does not serve: 405 `method-not-allowed`.
pub(crate) async fn method_not_allowed(method: axum::http::Method) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("{method} is not served at this path"),
    )
}

/// A handler's result: a value or a problem.
pub type ApiResult<T> = Result<T, Problem>;
