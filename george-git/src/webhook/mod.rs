//! Push-triggered refresh: a webhook handler for GitHub- and GitLab-style push events,
//! as an [`axum::Router`] to mount in your own server (feature `webhook`).
//!
//! [`router`] answers two routes:
//!
//! | route | sender | authentication | events |
//! |---|---|---|---|
//! | `POST /github` | GitHub (and Gitea/Forgejo, which send the same headers) | `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256(secret, raw body), checked in constant time | `X-GitHub-Event: push` (JSON or form-encoded `payload=`), `ping` |
//! | `POST /gitlab` | GitLab | `X-Gitlab-Token` equal to the secret, compared in constant time | `X-Gitlab-Event: Push Hook` and `Tag Push Hook` |
//!
//! A route whose secret is not configured is not mounted (404). Mount the router
//! under a prefix with [`Router::nest`] (e.g. `/hooks/github`), or merge it.
//!
//! ## Answers
//!
//! | status | when |
//! |---|---|
//! | 202 Accepted | a push to the followed ref: a refresh was started ([`RefreshMode::Background`]) |
//! | 200 OK | the same in [`RefreshMode::Wait`], once the refresh succeeded; and `ping` |
//! | 204 No Content | ignored: another ref, a branch deletion, another event |
//! | 400 Bad Request | no event header, a payload that is not JSON or has no `ref` |
//! | 401 Unauthorized | a missing or wrong signature or token (logged at `warn`, never the secret) |
//! | 413 Payload Too Large | a body over [`WebhookConfig::max_body_bytes`] (default 1 MiB) |
//! | 503 Service Unavailable | in [`RefreshMode::Wait`], the refresh failed |
//!
//! The body is read (up to the limit) before the signature is checked, because the
//! signature covers it; nothing in it is parsed before the check passes.
//!
//! ## What a push triggers
//!
//! A [`RefreshTarget`]. The engine learns a new commit through [`Engine::sync`], so the
//! usual target is [`EngineSync`]: refresh the source (for a remote source, fetch), then
//! sync the engine, which reconciles only the jobs whose files changed. By default the
//! handler answers 202 at once and runs the target in the background, coalescing
//! deliveries (at most one run waits behind the running one), so the sender's
//! connection is never held for a fetch and a reconcile, and a burst of pushes costs
//! at most two refreshes. [`RefreshMode::Wait`] answers after the target returns.
//!
//! ```no_run
//! use std::sync::Arc;
//! use george_core::engine::Engine;
//! use george_core::memory::InMemoryStateStore;
//! use george_git::LocalGitSource;
//! use george_git::webhook::{EngineSync, WebhookConfig, router};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let source = LocalGitSource::open("/srv/ops.git", "main")?;
//! let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(source.clone())).build();
//! engine.start().await?;
//! let _loop = engine.spawn();
//!
//! let config = WebhookConfig::new("main")
//!     .github_secret(std::env::var("GITHUB_WEBHOOK_SECRET")?)
//!     .gitlab_token(std::env::var("GITLAB_WEBHOOK_TOKEN")?);
//! let hooks = router(config, EngineSync::new(source, engine))?;
//! let app: axum::Router = axum::Router::new().nest("/hooks", hooks); // POST /hooks/github
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! With a remote source, wire its refresh (a fetch) the same way, e.g. with a closure:
//! `EngineSync::new(move || { let s = remote.clone(); async move { s.refresh().await.map(|_| ()) } }, engine)`.
//!
//! [`Engine::sync`]: george_core::engine::Engine::sync
//! [`Router::nest`]: axum::Router::nest

mod target;
mod verify;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use george_core::{Error, Result};

pub use target::{EngineSync, RefreshTarget};
pub use verify::WebhookSecret;

use target::Coalescer;

/// The default body limit: 1 MiB (GitHub caps payloads at 25 MB, but a push event
/// with the usual 20 commits is a few tens of KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// When the handler answers a push it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RefreshMode {
    /// Answer 202 at once; run the target in the background, coalescing deliveries
    /// (the default: senders time out after about 10 s).
    #[default]
    Background,
    /// Run the target, then answer 200 (or 503 if it failed).
    Wait,
}

/// The webhook handler's settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    followed_ref: String,
    github: Option<WebhookSecret>,
    gitlab: Option<WebhookSecret>,
    max_body_bytes: usize,
    mode: RefreshMode,
}

impl WebhookConfig {
    /// Acts on pushes to `reference`: a branch name (`main` means `refs/heads/main`) or
    /// a full ref name starting with `refs/` (e.g. `refs/tags/v1`).
    pub fn new(reference: impl Into<String>) -> Self {
        let reference = reference.into();
        let followed_ref = if reference.starts_with("refs/") {
            reference
        } else {
            format!("refs/heads/{reference}")
        };
        WebhookConfig {
            followed_ref,
            github: None,
            gitlab: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            mode: RefreshMode::Background,
        }
    }

    /// Mounts `POST /github`, checking signatures with this secret (the "Secret" of the
    /// GitHub webhook).
    pub fn github_secret(mut self, secret: impl Into<WebhookSecret>) -> Self {
        self.github = Some(secret.into());
        self
    }

    /// Mounts `POST /gitlab`, accepting this token (the "Secret token" of the GitLab
    /// webhook).
    pub fn gitlab_token(mut self, token: impl Into<WebhookSecret>) -> Self {
        self.gitlab = Some(token.into());
        self
    }

    /// The largest body accepted, in bytes (default [`DEFAULT_MAX_BODY_BYTES`]); larger
    /// ones get 413.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// When to answer (default [`RefreshMode::Background`]).
    pub fn refresh_mode(mut self, mode: RefreshMode) -> Self {
        self.mode = mode;
        self
    }

    /// The full name of the followed ref, e.g. `refs/heads/main`.
    pub fn followed_ref(&self) -> &str {
        &self.followed_ref
    }
}

/// Builds the webhook service: `POST /github` and/or `POST /gitlab` (see the
/// [module docs](self)), calling `target` on each valid push to the followed ref.
///
/// The returned router has its state applied, so it fits any `Router<S>` (nest or
/// merge it). Handlers spawn on the Tokio runtime that serves them.
///
/// # Errors
/// `InvalidInput` if neither secret is configured, or a configured secret is empty.
pub fn router<S>(config: WebhookConfig, target: impl RefreshTarget) -> Result<Router<S>>
where
    S: Clone + Send + Sync + 'static,
{
    if config.github.is_none() && config.gitlab.is_none() {
        return Err(Error::invalid_input(
            "webhook: configure a GitHub secret or a GitLab token",
        ));
    }
    if [&config.github, &config.gitlab]
        .into_iter()
        .flatten()
        .any(WebhookSecret::is_empty)
    {
        return Err(Error::invalid_input("webhook: a secret must not be empty"));
    }
    let limit = config.max_body_bytes;
    let mut routes = Router::new();
    if config.github.is_some() {
        routes = routes.route("/github", post(github));
    }
    if config.gitlab.is_some() {
        routes = routes.route("/gitlab", post(gitlab));
    }
    let hook = Arc::new(Hook {
        config,
        runner: Coalescer::new(Arc::new(target)),
    });
    Ok(routes.layer(DefaultBodyLimit::max(limit)).with_state(hook))
}

struct Hook {
    config: WebhookConfig,
    runner: Arc<Coalescer>,
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

/// A header as text for logs: Debug-escaped and cut to 100 characters.
fn header_for_log(headers: &HeaderMap, name: &str) -> String {
    let value = headers.get(name).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(100)
            .collect::<String>()
    });
    format!("{value:?}")
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

async fn github(
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

async fn gitlab(
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
