//! The two routes' handlers: authentication, event filtering, payload parsing, and the
//! answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use george_core::Result;

use super::target::Coalescer;
use super::{RefreshMode, WebhookConfig, verify};

pub(super) struct Hook {
    pub(super) config: WebhookConfig,
    pub(super) runner: Arc<Coalescer>,
}

/// A push, as both senders describe it.
struct Push {
    reference: String,
    after: Option<String>,
    deleted: bool,
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    reply(status, serde_json::json!({ "error": message }))
}

/// A refusal: its status and a short reason for the sender.
struct Reject(StatusCode, &'static str);

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// A header as text for logs: Debug-escaped (quoted) and cut to 100 characters; `-`
/// when absent.
fn header_for_log(headers: &HeaderMap, name: &str) -> String {
    let value = headers.get(name).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(100)
            .collect::<String>()
    });
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:?}"))
}

fn read_body(
    sender: &str,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Bytes, Reject> {
    body.map_err(|rejection| {
        let status = rejection.status();
        tracing::warn!(sender, status = status.as_u16(), "webhook: unreadable body");
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body too large"
        } else {
            "unreadable body"
        };
        Reject(status, message)
    })
}

fn unauthorized(sender: &str, delivery: String, why: &str) -> Response {
    tracing::warn!(sender, delivery = %delivery, "webhook: rejected delivery: {why}");
    error(StatusCode::UNAUTHORIZED, why)
}

pub(super) async fn github(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body("github", body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let delivery = header_for_log(&headers, "x-github-delivery");
    let Some(secret) = &hook.config.github else {
        return error(StatusCode::NOT_FOUND, "not configured");
    };
    let Some(signature) = headers.get("x-hub-signature-256") else {
        return unauthorized("github", delivery, "missing X-Hub-Signature-256");
    };
    if !secret.verify_github(signature.as_bytes(), &body) {
        return unauthorized("github", delivery, "bad signature");
    }
    let event = headers.get("x-github-event").map(|v| v.as_bytes());
    match event {
        None => error(StatusCode::BAD_REQUEST, "missing X-GitHub-Event"),
        Some(b"ping") => reply(StatusCode::OK, serde_json::json!({ "status": "pong" })),
        Some(b"push") => {
            let form = headers.get(header::CONTENT_TYPE).is_some_and(|v| {
                v.as_bytes()
                    .starts_with(b"application/x-www-form-urlencoded")
            });
            let json = if form {
                match verify::form_payload(&body) {
                    Some(p) => Bytes::from(p),
                    None => return error(StatusCode::BAD_REQUEST, "no payload field"),
                }
            } else {
                body
            };
            match parse_push(&json, |v| {
                v.get("deleted").and_then(serde_json::Value::as_bool) == Some(true)
            }) {
                Ok(push) => act(&hook, "github", delivery, push).await,
                Err(r) => r.into_response(),
            }
        }
        Some(_) => ignored("github", delivery, "not a push event"),
    }
}

pub(super) async fn gitlab(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body("gitlab", body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let delivery = header_for_log(&headers, "x-gitlab-event-uuid");
    let Some(secret) = &hook.config.gitlab else {
        return error(StatusCode::NOT_FOUND, "not configured");
    };
    let Some(token) = headers.get("x-gitlab-token") else {
        return unauthorized("gitlab", delivery, "missing X-Gitlab-Token");
    };
    if !secret.verify_token(token.as_bytes()) {
        return unauthorized("gitlab", delivery, "bad token");
    }
    match headers.get("x-gitlab-event").map(|v| v.as_bytes()) {
        None => error(StatusCode::BAD_REQUEST, "missing X-Gitlab-Event"),
        Some(b"Push Hook" | b"Tag Push Hook") => {
            // GitLab marks a deleted branch or tag with a null `checkout_sha`.
            match parse_push(&body, |v| {
                v.get("checkout_sha")
                    .is_some_and(serde_json::Value::is_null)
            }) {
                Ok(push) => act(&hook, "gitlab", delivery, push).await,
                Err(r) => r.into_response(),
            }
        }
        Some(_) => ignored("gitlab", delivery, "not a push event"),
    }
}

/// Reads `ref`, `after` and whether the ref was deleted (by `deleted`, or an `after`
/// of all zeros, which both senders use for a deletion).
fn parse_push(json: &[u8], deleted: impl Fn(&serde_json::Value) -> bool) -> Result<Push, Reject> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|_| Reject(StatusCode::BAD_REQUEST, "the payload is not JSON"))?;
    let Some(reference) = value.get("ref").and_then(serde_json::Value::as_str) else {
        return Err(Reject(
            StatusCode::BAD_REQUEST,
            "the payload has no \"ref\"",
        ));
    };
    let after = value
        .get("after")
        .and_then(serde_json::Value::as_str)
        .filter(|a| a.len() <= 64 && a.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let zeros = after
        .as_deref()
        .is_some_and(|a| a.bytes().all(|b| b == b'0'));
    Ok(Push {
        reference: reference.to_owned(),
        deleted: zeros || deleted(&value),
        after,
    })
}

fn ignored(sender: &str, delivery: String, why: &str) -> Response {
    tracing::debug!(sender, delivery = %delivery, "webhook: ignored: {why}");
    StatusCode::NO_CONTENT.into_response()
}

async fn act(hook: &Hook, sender: &str, delivery: String, push: Push) -> Response {
    if push.reference != hook.config.followed_ref {
        return ignored(sender, delivery, "another ref");
    }
    if push.deleted {
        tracing::warn!(sender, delivery = %delivery, reference = %push.reference,
            "webhook: the followed ref was deleted; nothing to refresh");
        return ignored(sender, delivery, "ref deleted");
    }
    let after = push.after.unwrap_or_default();
    tracing::info!(sender, delivery = %delivery, reference = %push.reference, after = %after,
        "webhook: push to the followed ref");
    let body = serde_json::json!({ "status": "refresh", "ref": push.reference, "after": after });
    match hook.config.mode {
        RefreshMode::Background => {
            hook.runner.request();
            reply(StatusCode::ACCEPTED, body)
        }
        RefreshMode::Wait => match hook.runner.target().refresh().await {
            Ok(()) => reply(StatusCode::OK, body),
            Err(e) => {
                tracing::warn!(sender, delivery = %delivery, error = %e, "webhook: the refresh failed");
                error(StatusCode::SERVICE_UNAVAILABLE, "the refresh failed")
            }
        },
    }
}
