//! # george-http: the operator's HTTP surface
//!
//! [`router`] turns an [`Engine`] into an [`axum::Router`] that a host service mounts
//! under any prefix of its own app (as it mounts `george_git::webhook::router`):
//!
//! | route (under `/api/v1`) | role | what |
//! |---|---|---|
//! | `GET /jobs` | read | jobs, filtered (`status`, `template`, `agent`, `text`), sorted (`sort`), paged (`limit` with `cursor` or `page`) |
//! | `GET /jobs/{name}` | read | one job: steps, statuses, outputs, usage and cost, generation, commit |
//! | `GET /jobs/{name}/events` | read | its event log, paged by `after` |
//! | `GET /jobs/{name}/events/stream` | read | the same log followed live as Server-Sent Events, resumable exactly ([`follow`]) |
//! | `GET /jobs/{name}/steps/{step}/attempts/{attempt}/transcript` | read | a step attempt's conversation |
//! | `POST /jobs/{name}/cancel`, `POST /jobs/{name}/retry` | admin | cancel or retry a job (see `Engine::cancel_job`, `Engine::retry_job`) |
//! | `GET /approvals` | read | open (or `?status=all`) approval requests |
//! | `GET /approvals/{id}` | read | one request: the plan's exact actions with their previews (the diff each would make), its digest, the rule, the decision |
//! | `POST /approvals/{id}/approve`, `POST /approvals/{id}/reject` | decide | decide, as the authenticated caller (a rejection needs a `reason`; either may carry the `digest` the human saw) |
//! | `GET /catalogue` | read | agents, templates, tools with their effect classes |
//! | `GET /manifest-errors` | read | manifests of the current commit that do not validate |
//! | `GET /health` | read | commit against the source's head, counters, leases, jobs by status |
//! | `GET /stream` | read | Server-Sent Events of job changes, resumable with `Last-Event-ID` ([`live`]) |
//! | `GET /openapi.json` | none | the OpenAPI 3.1 document, generated from the code ([`openapi`]) |
//! | `GET /metrics` (no prefix) | read | Prometheus text format ([`metrics`]) |
//!
//! With the feature `dashboard` (and [`ApiConfig::dashboard`], on by default), the same
//! router serves the dashboard's HTML under `/ui` (`dashboard` module: why it is built
//! this way, its sessions and CSRF protection):
//!
//! | route (under `/ui`) | role | what |
//! |---|---|---|
//! | `GET /login`, `POST /login`, `POST /logout` | none | an API token exchanged for a session cookie (`HttpOnly`, `SameSite=Strict`) |
//! | `GET /` | read | overview: jobs by status, approvals waiting, failures and blocks, cost and tokens, autonomy ratio, engine health |
//! | `GET /jobs` | read | the job list: filters, sort, page and grouping in the URL |
//! | `GET /jobs/{name}` | read | a job: step graph and timeline (SVG), steps, usage and cost, event log, child jobs; live |
//! | `GET /jobs/{name}/steps/{step}/attempts/{n}` | read | an attempt's transcript, with the tools' effect classes |
//! | `GET /approvals` | read | the inbox: plan, actions, diff, earlier rejections, rule; forms for deciders |
//! | `POST /approvals/{id}/approve`, `POST /approvals/{id}/reject` | decide | a decision from a form (CSRF token and digest checked) |
//! | `GET /catalogue` | read | agents, templates, tools, manifest errors |
//! | `GET /manifest` | read | a manifest's text at a commit ([`ApiConfig::with_source`]) |
//! | `GET /live` | read | Server-Sent Events telling a page to refetch its live fragments |
//!
//! Errors are RFC 9457 problem details ([`Problem`]); bodies are capped
//! ([`ApiConfig::max_body_bytes`]) and unknown fields in bodies and queries are refused.
//! Who may do what is in [`auth`]: no identity is 401, never an anonymous decision, and a
//! decision is made as the authenticated identity, checked against the step's rule by
//! the engine.
//!
//! ```
//! use std::sync::Arc;
//! use george_core::engine::Engine;
//! use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
//! use george_http::{AuthConfig, Identity, Role};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder(
//!     Arc::new(InMemoryStateStore::new()),
//!     Arc::new(InMemoryGitSource::new()),
//! )
//! .build()?;
//! // In production: AuthConfig::from_token_file("/etc/george/tokens.toml")?
//! let auth = AuthConfig::new().token("s3cret-token", Identity::new("alice", Role::Decide));
//! let app = axum::Router::new().nest("/ops", george_http::router(engine, auth));
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/ops/api/v1/health", listener.local_addr()?);
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let client = reqwest::Client::new();
//! let anonymous = client.get(&url).send().await?;
//! assert_eq!(anonymous.status(), 401);
//! assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
//! let alice = client.get(&url).bearer_auth("s3cret-token").send().await?;
//! assert_eq!(alice.status(), 200);
//! # Ok(()) }
//! ```

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod api;
pub mod auth;
mod body;
#[cfg(feature = "dashboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
pub mod dashboard;
pub mod follow;
pub mod live;
pub mod metrics;
pub mod metrics_engine;
pub mod metrics_steps;
#[cfg(feature = "notify")]
#[cfg_attr(docsrs, doc(cfg(feature = "notify")))]
pub mod notify;
pub mod problem;
mod state;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use george_core::engine::Engine;
use george_core::git::GitSource;

pub use api::PREFIX;
pub use auth::{AuthConfig, AuthFileError, Identity, ProxyAuth, Role, sha256_hex};
pub use problem::Problem;

use live::Hub;
use state::AppState;

/// The shapes of the API's requests and answers (version 1), for clients.
pub mod types {
    pub use crate::api::approval_types::*;
    pub use crate::api::approvals::ApprovalQuery;
    pub use crate::api::job_types::*;
    pub use crate::api::jobs::{EventQuery, MAX_EVENTS};
    pub use crate::api::list::{JobQuery, MAX_LIMIT};
    pub use crate::api::system::{
        ApiAgent, ApiManifestError, ApiTemplate, ApiTemplateStep, ApiTool, Catalogue, Health,
        ManifestErrors,
    };
    pub use crate::follow::FollowQuery;
    pub use crate::live::{ApprovalChange, JobChange, SseEvent, StreamQuery, StreamReady};
}

/// The default cap on request bodies: 64 KiB (decisions and operator actions are small).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// The router's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiConfig {
    /// The largest request body accepted, in bytes (default [`DEFAULT_MAX_BODY_BYTES`]);
    /// larger ones get 413.
    pub max_body_bytes: usize,
    /// How many recent job changes are kept for resuming live updates (default 4,096).
    pub replay_buffer: usize,
    /// Whether the router serves the dashboard under `/ui` (default: `true` when the
    /// crate's `dashboard` feature is on; without the feature there is no dashboard).
    pub dashboard: bool,
    /// The engine's Git source, when the host shares it ([`ApiConfig::with_source`]):
    /// the dashboard then shows the manifests' text at a commit and the offending lines
    /// of manifest errors.
    pub source: Option<Arc<dyn GitSource>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            replay_buffer: 4096,
            dashboard: cfg!(feature = "dashboard"),
            source: None,
        }
    }
}

impl ApiConfig {
    /// Sets the body cap, in bytes.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets how many recent changes are kept for resuming live updates.
    pub fn with_replay_buffer(mut self, changes: usize) -> Self {
        self.replay_buffer = changes;
        self
    }

    /// Serves the dashboard under `/ui`, or not (no effect without the `dashboard`
    /// feature: then there is none).
    pub fn with_dashboard(mut self, on: bool) -> Self {
        self.dashboard = on;
        self
    }

    /// Shares the engine's Git source (the one given to `Engine::builder`), so the
    /// dashboard can show a job's manifest at its commit and the lines of manifest
    /// errors. Only manifest paths are ever read from it.
    pub fn with_source(mut self, source: Arc<dyn GitSource>) -> Self {
        self.source = Some(source);
        self
    }
}

/// The operator API of `engine` with the default [`ApiConfig`]: mount it where you like
/// (`Router::nest("/ops", …)`, or `merge`); its routes start with [`PREFIX`], but for
/// `/metrics`.
///
/// Call it within a Tokio runtime, so live updates count every change from now on
/// (outside one, they start with the first `GET /stream`).
pub fn router(engine: Engine, auth: AuthConfig) -> Router {
    router_with(engine, auth, ApiConfig::default())
}

/// [`router`] with settings.
pub fn router_with(engine: Engine, auth: AuthConfig, config: ApiConfig) -> Router {
    let hub = Hub::new(&engine, config.replay_buffer);
    if tokio::runtime::Handle::try_current().is_ok() {
        hub.start();
    }
    let doc = Arc::new(OnceLock::new());
    let (routes, document) = api::routes().split_for_parts();
    let _ = doc.set(document.to_pretty_json().unwrap_or_default());
    let max_body = config.max_body_bytes;
    let state = AppState {
        engine,
        auth: Arc::new(auth),
        hub,
        doc,
        #[cfg(feature = "dashboard")]
        ui: Arc::new(dashboard::Ui::new()),
        #[cfg(feature = "dashboard")]
        source: config.source.clone(),
    };
    #[cfg(feature = "dashboard")]
    let routes = if config.dashboard {
        routes.merge(dashboard::routes())
    } else {
        routes
    };
    routes
        .fallback(problem::no_such_route)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// The OpenAPI 3.1 document of the API, generated from the routes the router serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::routes().into_openapi()
}

/// [`openapi`] as pretty JSON: what `GET /api/v1/openapi.json` serves and
/// `george-http/openapi.json` holds.
pub fn openapi_json() -> String {
    openapi().to_pretty_json().unwrap_or_default()
}
