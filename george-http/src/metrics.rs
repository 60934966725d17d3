//! `GET /metrics`: the OpenMetrics text format that Prometheus scrapes
//! (`prometheus-client`), read from the store
//! at each scrape, so the figures are the store's (every engine sharing it), survive
//! restarts, and need no instrumentation in the engine — except the rows marked
//! *this engine's*: those the serving engine measures in memory since it started
//! ([`crate::metrics_engine`]). Scraping needs the `read` role
//! (Prometheus: `authorization: {credentials: <token>}` in the scrape config).
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `george_jobs` | gauge | `status` | jobs by status (every status, 0 included) |
//! | `george_step_attempts_total` | counter | | step attempts started, over all jobs |
//! | `george_approval_requests_total` | counter | | approval requests made |
//! | `george_approval_decisions_total` | counter | `decision`: `approved`, `rejected`, `cancelled`; `decided_by`: `human`, `policy`, `engine` | requests closed, by how and by whom (a committed Policy, or the engine cancelling) |
//! | `george_approvals_open` | gauge | | requests waiting for a human |
//! | `george_approval_latency_seconds` | histogram | `decision`: `approved`, `rejected`; `decided_by`: `human`, `policy`; `template`, `autonomy` (as in [`crate::metrics_steps`]) | from the request to the decision |
//! | `george_tokens_total` | counter | `agent`, `provider`, `model`, `type`: `input`, `output`, `cache_read`, `cache_write` | tokens used by steps |
//! | `george_cost_usd_total` | counter | `agent`, `provider`, `model` | their cost in US dollars |
//! | `george_manifest_errors` | gauge | | manifest errors at the current commit |
//! | `george_git_in_sync` | gauge | | 1 when the engine has reconciled the source's head |
//! | `george_engine_reconciles_total` | counter | | job reconciles run by this engine |
//! | `george_engine_attempts_started_total` | counter | | step attempts started by this engine |
//! | `george_engine_leases_held` | gauge | | step attempts this engine holds a lease on |
//! | `george_engine_queue_depth` | gauge | | *this engine's*: keys in its work queue ready to be reconciled now |
//! | `george_engine_queue_delayed` | gauge | | *this engine's*: keys in its work queue waiting for a later time (backoff, timers) |
//! | `george_step_duration_seconds` | histogram | `mode`: `agent`, `command`, `approved` | *this engine's, since start*: step attempts that ended with an outcome, from their start to their report (buckets 10 ms … 1 h) |
//! | `george_store_commit_seconds` | histogram | | *this engine's, since start*: its job writes to the store (`StateStore::commit`, conflicts included; buckets 100 µs … 1 s) |
//! | `george_git_lag_commits` | gauge | | commits the source's head has that the reconciled commit has not (0 in sync; counting stops at 10,000); absent when the Git source cannot tell |
//!
//! Step attempts by mode, finished steps by outcome and the autonomy ratio per template:
//! [`crate::metrics_steps`].
//!
//! Labels never name a job: their values come from the manifests (agents and their
//! providers and models, a handful each) and from fixed sets. Tokens and cost are
//! attributed to the agent of each step in the template at the current commit, and to
//! that agent's provider and model (`unknown` when the template or agent is gone).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use george_core::state::{ApprovalStatus, JobStatus, StepState};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::auth::{Caller, Role};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

type Labels = Vec<(&'static str, String)>;

/// The content type of the OpenMetrics text format.
const TEXT_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics of the engine and its store (see the module's table).
#[utoipa::path(
    get, path = "/metrics", tag = "system", operation_id = "get_metrics",
    responses(
        (status = 200, description = "OpenMetrics text format", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<impl IntoResponse> {
    who.require(Role::Read)?;
    let text = scrape(&state).await?;
    Ok(([(CONTENT_TYPE, TEXT_FORMAT)], text))
}

async fn scrape(state: &AppState) -> ApiResult<String> {
    let e = &state.engine;
    let jobs = e.jobs().await?;
    let approvals = e.approvals(false).await?;
    let mut registry = Registry::with_prefix("george");

    let by_status = Family::<Labels, Gauge>::default();
    for s in [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::AwaitingApproval,
        JobStatus::Blocked,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ] {
        let _ = by_status.get_or_create_owned(&status_label(s));
    }
    let attempts = Counter::<u64>::default();
    let leases = Gauge::<i64>::default();
    let tokens = Family::<Labels, Counter>::default();
    let cost = Family::<Labels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
    let models = model_of_steps(state);
    for j in &jobs {
        by_status.get_or_create(&status_label(j.status)).inc();
        for s in &j.steps {
            attempts.inc_by(u64::from(s.attempt));
            if matches!(&s.state, StepState::Running { holder, .. } if &**holder == e.id()) {
                leases.inc();
            }
            if s.usage.is_zero() {
                continue;
            }
            let unknown = (
                "unknown".to_string(),
                "unknown".to_string(),
                "unknown".to_string(),
            );
            let (agent, provider, model) = models
                .get(&(j.template.to_string(), s.id.to_string()))
                .unwrap_or(&unknown)
                .clone();
            let base: Labels = vec![("agent", agent), ("provider", provider), ("model", model)];
            for (kind, n) in [
                ("input", s.usage.input_tokens),
                ("output", s.usage.output_tokens),
                ("cache_read", s.usage.cache_read_tokens),
                ("cache_write", s.usage.cache_write_tokens),
            ] {
                let mut labels = base.clone();
                labels.push(("type", kind.to_string()));
                tokens.get_or_create(&labels).inc_by(n);
            }
            cost.get_or_create(&base).inc_by(s.usage.cost_usd);
        }
    }

    let requests = Counter::<u64>::default();
    let open = Gauge::<i64>::default();
    let decisions = Family::<Labels, Counter>::default();
    let latency = Family::<Labels, Histogram>::new_with_constructor(|| {
        Histogram::new(exponential_buckets(1.0, 4.0, 10))
    });
    for (d, by) in [
        ("approved", "human"),
        ("approved", "policy"),
        ("rejected", "human"),
        ("rejected", "policy"),
        ("cancelled", "engine"),
    ] {
        let _ = decisions.get_or_create_owned(&vec![
            ("decision", d.to_string()),
            ("decided_by", by.to_string()),
        ]);
    }
    let decider = |by: &str| {
        if by.starts_with("policy:") {
            "policy"
        } else {
            "human"
        }
    };
    // The template and autonomy level of each request's job.
    let levels = crate::metrics_steps::levels(e);
    let template_of: HashMap<&str, &str> = jobs
        .iter()
        .map(|j| (j.name.as_str(), &*j.template))
        .collect();
    let mut by_policy = std::collections::HashSet::new();
    for r in &approvals {
        requests.inc();
        let decided = match &r.status {
            ApprovalStatus::Open => {
                open.inc();
                continue;
            }
            ApprovalStatus::Approved { at_ms, by, .. } => {
                if by.starts_with("policy:") {
                    by_policy.insert(r.id.as_str());
                }
                Some(("approved", decider(by), *at_ms))
            }
            ApprovalStatus::Rejected { at_ms, by, .. } => Some(("rejected", decider(by), *at_ms)),
            ApprovalStatus::Cancelled { .. } => None,
        };
        let (label, by) = decided.map_or(("cancelled", "engine"), |(d, by, _)| (d, by));
        decisions
            .get_or_create(&vec![
                ("decision", label.to_string()),
                ("decided_by", by.to_string()),
            ])
            .inc();
        if let Some((d, by, at)) = decided {
            let seconds = at.saturating_sub(r.requested_at_ms) as f64 / 1000.0;
            let template = template_of
                .get(r.job.as_str())
                .copied()
                .unwrap_or("unknown");
            let level = levels.get(template).copied().unwrap_or("unknown");
            latency
                .get_or_create(&vec![
                    ("decision", d.to_string()),
                    ("decided_by", by.to_string()),
                    ("template", template.to_string()),
                    ("autonomy", level.to_string()),
                ])
                .observe(seconds);
        }
    }

    let commit = e.commit();
    let head = e.source_head().await.ok();
    let stats = e.stats();
    let gauge = |v: usize| {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        g
    };
    let counter = |v: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        c
    };
    registry.register("jobs", "Jobs by status", by_status);
    registry.register(
        "step_attempts",
        "Step attempts started, over all jobs",
        attempts,
    );
    registry.register("approval_requests", "Approval requests made", requests);
    registry.register(
        "approval_decisions",
        "Approval requests closed, by how",
        decisions,
    );
    registry.register(
        "approvals_open",
        "Approval requests waiting for a human",
        open,
    );
    registry.register(
        "approval_latency_seconds",
        "Time from an approval request to its decision",
        latency,
    );
    registry.register(
        "tokens",
        "Tokens used by steps, by agent, provider and model",
        tokens,
    );
    registry.register(
        "cost_usd",
        "Cost of steps in US dollars, by agent, provider and model",
        cost,
    );
    registry.register(
        "manifest_errors",
        "Manifest errors at the current commit",
        gauge(e.manifest_errors().len()),
    );
    registry.register(
        "git_in_sync",
        "1 when the engine has reconciled the head of the source",
        gauge(usize::from(commit.is_some() && commit == head)),
    );
    registry.register(
        "engine_reconciles",
        "Job reconciles run by this engine",
        counter(stats.reconciles),
    );
    registry.register(
        "engine_attempts_started",
        "Step attempts started by this engine",
        counter(stats.attempts),
    );
    registry.register(
        "engine_leases_held",
        "Step attempts this engine holds a lease on",
        leases,
    );
    crate::metrics_steps::register(&mut registry, e, &jobs, &by_policy);
    crate::metrics_engine::register(&mut registry, e, head.as_ref()).await;

    let mut out = String::new();
    encode(&mut out, &registry).map_err(|e| {
        Problem::from(george_core::Error::backend(format!(
            "encoding metrics: {e}"
        )))
    })?;
    Ok(out)
}

fn status_label(s: JobStatus) -> Labels {
    let name = serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    vec![("status", name)]
}

/// (agent, provider, model) of each (template, step) at the current commit.
fn model_of_steps(state: &AppState) -> HashMap<(String, String), (String, String, String)> {
    let c = state.engine.catalogue();
    let agents: HashMap<&str, (&str, &str)> = c
        .agents
        .iter()
        .map(|a| {
            let spec = &a.value.spec;
            (
                a.value.metadata.name.as_str(),
                (spec.provider.as_str(), &*spec.model),
            )
        })
        .collect();
    let mut out = HashMap::new();
    for t in &c.templates {
        for s in &t.value.spec.steps {
            let Some(agent) = &s.agent else { continue };
            let (provider, model) = agents
                .get(agent.as_str())
                .copied()
                .unwrap_or(("unknown", "unknown"));
            out.insert(
                (t.value.metadata.name.clone(), s.id.clone()),
                (agent.clone(), provider.to_string(), model.to_string()),
            );
        }
    }
    out
}
