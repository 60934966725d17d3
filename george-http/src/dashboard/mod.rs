//! The dashboard: server-rendered HTML views of jobs, approvals and the catalogue, under
//! `/ui` of the same [`router`](crate::router) as the API (feature `dashboard`).
//!
//! | route (under `/ui`) | role | what |
//! |---|---|---|
//! | `GET /login`, `POST /login` | none | a form that exchanges an API token for a session cookie |
//! | `POST /logout` | session | ends the session |
//! | `GET /` | read | overview: jobs by status, approvals waiting, recent failures and blocks, cost and tokens today and this week, autonomy ratio, engine health |
//! | `GET /jobs` | read | jobs, filtered (`status`, `template`, `agent`, `text`, `from`, `to`), sorted (`sort`), paged (`page`), grouped (`group=template` or `status`), all in the URL |
//! | `GET /jobs/{name}` | read | one job: step graph, timeline, outputs, usage and cost per step, generation and commit, event log (filters `step`, `actor`), child jobs |
//! | `GET /jobs/{name}/fragment` | read | the live part of the job page (status, graph, timeline, steps, events), for live updates |
//! | `GET /jobs/{name}/steps/{step}/attempts/{n}` | read | an attempt's transcript: messages, tool calls and results, with each tool's effect class |
//! | `GET /approvals` | read | the inbox: open requests with plan, actions, diff, earlier rejections, rule, and (decide) the forms; decided requests |
//! | `POST /approvals/{id}/approve`, `POST /approvals/{id}/reject` | decide | decide as the signed-in identity (form fields `csrf`, `digest`, `reason`) |
//! | `GET /catalogue` | read | agents, templates (parameters, step graph), tools, manifest errors (with the offending lines when the source is shared) |
//! | `GET /manifest?commit=…&path=…` | read | a manifest's text at a commit (when the host shares the engine's Git source: `ApiConfig::with_source`) |
//! | `GET /live` | read | Server-Sent Events `change` when something a page shows changed (`?job=` for one job) |
//! | `GET /assets/…` | none | the stylesheet and the script, embedded, cached for a year |
//!
//! # Why it is built this way
//!
//! - **Server-rendered HTML ([maud]), no front-end build.** The views are functions of the
//!   engine's records, compiled with the crate: no Node.js, no network and no generated
//!   bundle to keep in step with the API, and every read view works without JavaScript.
//!   maud escapes every interpolation, so a job name or a plan summary cannot inject
//!   markup.
//! - **One small plain-JavaScript file** (no framework) does the live updates: an
//!   `EventSource` on `/ui/live` (authenticated by the session cookie), and on each
//!   `change` it fetches the page's live fragment and swaps it in. The stylesheet and the
//!   script are embedded with `include_str!` and served under a versioned URL with a
//!   one-year cache.
//! - **The step graph and the timeline are inline SVG** drawn in Rust: the `depends_on`
//!   DAG in layers (a pure function, [`graph::layout`], tested by tables) and attempts and
//!   approval waits on a time axis. No client-side layout library.
//! - **Mounted by the same router**, so a host that nests the router under a prefix
//!   (`Router::nest("/ops", …)`) gets the dashboard at `/ops/ui`: every link, form and
//!   cookie path is derived from the request's prefix (axum's `OriginalUri` against the
//!   nested `Uri`), never written as `/ui`.
//! - **Login** exchanges an API token (checked by the same [`AuthConfig`](crate::AuthConfig))
//!   for a server-side session: a random 32-byte id in a cookie `george_session`
//!   (`HttpOnly; SameSite=Strict; Path=<prefix>/ui`, `Secure` over HTTPS), the identity
//!   and a CSRF token in memory, for 12 hours. A trusted proxy's identity (or a bearer
//!   token) works without a session.
//! - **CSRF**: every form carries a synchronizer token bound to the session (or, for a
//!   proxy's identity, derived from a per-router key and the user), compared in constant
//!   time; a POST without it is 403 and changes nothing. Decisions go through the API's
//!   own code (roles, the engine's rule check, the digest of the plan shown).

mod assets;
mod graph_svg;
mod layout;
mod live;
mod manifest;
mod session;
mod timeline;
mod view_approvals;
mod view_catalogue;
mod view_children;
mod view_job;
mod view_jobs;
mod view_overview;

pub mod graph;

use axum::Router;
use axum::routing::{get, post};

pub(crate) use session::Ui;

use crate::state::AppState;

/// Every route of the dashboard, under `/ui`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(view_overview::overview))
        .route("/ui/", get(view_overview::overview))
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/jobs", get(view_jobs::jobs))
        .route("/ui/jobs/{name}", get(view_job::job))
        .route("/ui/jobs/{name}/fragment", get(view_job::fragment))
        .route(
            "/ui/jobs/{name}/steps/{step}/attempts/{attempt}",
            get(view_job::transcript),
        )
        .route("/ui/approvals", get(view_approvals::inbox))
        .route("/ui/approvals/fragment", get(view_approvals::fragment))
        .route("/ui/approvals/{id}/approve", post(view_approvals::approve))
        .route("/ui/approvals/{id}/reject", post(view_approvals::reject))
        .route("/ui/catalogue", get(view_catalogue::catalogue))
        .route("/ui/manifest", get(manifest::manifest))
        .route("/ui/live", get(live::live))
        .route("/ui/assets/{file}", get(assets::asset))
}
