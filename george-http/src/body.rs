//! Extractors whose refusals are problem details: a JSON body (capped, `application/json`,
//! unknown fields refused by the target type), a query string and path parameters.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// A JSON request body. An empty body (or `null`) reads as `{}`; a body over the router's limit is
/// 413, one that is not `application/json` is 415, one that does not parse or names an
/// unknown field is 400 naming the field.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            let slug = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload-too-large"
            } else {
                "invalid-input"
            };
            Problem::new(status, slug, e.body_text())
        })?;
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" {
            return serde_json::from_slice(b"{}")
                .map(JsonBody)
                .map_err(|e| Problem::invalid(format!("body: {e}")));
        }
        if json != Some(true) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        // serde would read a struct from a JSON array too (`[]`): bodies are objects.
        if !trimmed.starts_with(b"{") {
            return Err(Problem::invalid("body: must be a JSON object"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Problem::invalid(format!("body: {e}")))
    }
}

/// A query string (unknown parameters refused by the target type).
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| Problem::invalid(e.body_text()))
    }
}

/// Path parameters.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|e| Problem::invalid(e.body_text()))
    }
}

/// At most 4,096 characters: notes, reasons.
pub(crate) fn check_text(field: &str, text: Option<&str>) -> Result<(), Problem> {
    match text {
        Some(t) if t.chars().count() > 4096 => Err(Problem::invalid(format!(
            "{field}: at most 4,096 characters"
        ))),
        _ => Ok(()),
    }
}
