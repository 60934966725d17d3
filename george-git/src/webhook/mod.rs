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
//! let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(source.clone())).build()?;
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
//! With a [`RemoteGitSource`](crate::RemoteGitSource), the same: `EngineSync::new(remote, engine)`
//! fetches, then syncs (the engine must be built over that remote source).
//!
//! [`Engine::sync`]: george_core::engine::Engine::sync
//! [`Router::nest`]: axum::Router::nest

mod handlers;
mod target;
mod verify;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use george_core::{Error, Result};

pub use target::{EngineSync, RefreshTarget};
pub use verify::WebhookSecret;

use handlers::{Hook, github, gitlab};
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
