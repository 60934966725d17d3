//! `GET /ui/`: the overview — jobs by status, approvals waiting (with age), recent
//! failures and blocks with their reasons, cost and tokens today and this week, the
//! autonomy ratio, and the engine's health.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use george_core::state::{JobRecord, JobStatus, StepState};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Nav, badge, count, duration, error_page, time_el, urlencode, usd};
use super::session::Viewer;
use crate::state::AppState;

const ALL: [JobStatus; 7] = [
    JobStatus::Pending,
    JobStatus::Running,
    JobStatus::AwaitingApproval,
    JobStatus::Blocked,
    JobStatus::Succeeded,
    JobStatus::Failed,
    JobStatus::Cancelled,
];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn api_status(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Pending => "pending",
        JobStatus::Running => "running",
        JobStatus::AwaitingApproval => "awaiting_approval",
        JobStatus::Blocked => "blocked",
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "failed",
        JobStatus::Cancelled => "cancelled",
    }
}

/// The share of started steps that needed no human decision: (ratio, started steps).
pub(crate) fn autonomy(jobs: &[JobRecord]) -> (Option<f64>, usize) {
    let mut started = 0usize;
    let mut human = 0usize;
    for s in jobs.iter().flat_map(|j| &j.steps) {
        if s.attempt == 0 && !matches!(s.state, StepState::Succeeded) {
            continue;
        }
        started += 1;
        if s.approved.is_some()
            || !s.rejections.is_empty()
            || matches!(s.state, StepState::AwaitingApproval { .. })
        {
            human += 1;
        }
    }
    let ratio = (started > 0).then(|| (started - human) as f64 / started as f64);
    (ratio, started)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct OverviewQuery {
    fragment: Option<String>,
}

async fn body(state: &AppState, v: &Viewer) -> Result<Markup, String> {
    let e = &state.engine;
    let jobs = e.jobs().await.map_err(|x| x.to_string())?;
    let open = e.approvals(true).await.map_err(|x| x.to_string())?;
    let now = now_ms();
    let day_start = now - now % 86_400_000;
    let week_start = now.saturating_sub(7 * 86_400_000);
    let (mut cost_day, mut tok_day, mut cost_week, mut tok_week) = (0.0, 0u64, 0.0, 0u64);
    for j in &jobs {
        let u = j.usage();
        if j.updated_at_ms >= day_start {
            cost_day += u.cost_usd;
            tok_day += u.input_tokens + u.output_tokens;
        }
        if j.updated_at_ms >= week_start {
            cost_week += u.cost_usd;
            tok_week += u.input_tokens + u.output_tokens;
        }
    }
    let mut troubled: Vec<&JobRecord> = jobs
        .iter()
        .filter(|j| matches!(j.status, JobStatus::Failed | JobStatus::Blocked))
        .collect();
    troubled.sort_by_key(|j| std::cmp::Reverse(j.updated_at_ms));
    troubled.truncate(10);
    let (ratio, started) = autonomy(&jobs);
    let commit = e.commit().map(|c| c.0);
    let head_id = e.source_head().await.ok();
    let lag = match &head_id {
        Some(h) => e.commits_behind(h).await.ok().flatten(),
        None => None,
    };
    let head = head_id.map(|c| c.0);
    let mut holders: std::collections::BTreeMap<String, usize> = Default::default();
    for s in jobs.iter().flat_map(|j| &j.steps) {
        if let StepState::Running { holder, .. } = &s.state {
            *holders.entry(holder.to_string()).or_default() += 1;
        }
    }
    let leases: usize = holders.values().sum();
    let stats = e.stats();
    let errors = e.manifest_errors().len();
    let base = &v.base;
    Ok(html! {
        section aria-labelledby="h-status" {
            h2 #h-status { "Jobs by status" }
            div.cards data-testid="jobs-by-status" {
                @for s in ALL {
                    @let n = jobs.iter().filter(|j| j.status == s).count();
                    a.card href={ (base) "/jobs?status=" (api_status(s)) } data-status=(s.name()) {
                        div.big { (n) } (badge(s.name()))
                    }
                }
            }
        }
        section aria-labelledby="h-waiting" {
            h2 #h-waiting { "Approvals waiting " span.muted { "(" (open.len()) ")" } }
            @if open.is_empty() { p { "Nothing waits for a decision." } }
            ul data-testid="waiting" {
                @for r in &open {
                    li {
                        a href={ (base) "/approvals#a-" (r.id) } { (r.job) " / " (r.step) } ": " (r.plan.summary)
                        " — waiting " (duration(now.saturating_sub(r.requested_at_ms)))
                    }
                }
            }
        }
        section aria-labelledby="h-trouble" {
            h2 #h-trouble { "Recent failures and blocks" }
            @if troubled.is_empty() { p { "None." } }
            ul data-testid="troubled" {
                @for j in &troubled {
                    li {
                        a href={ (base) "/jobs/" (urlencode(&j.name)) } { (j.name) } " " (badge(j.status.name())) " "
                        (time_el(j.updated_at_ms))
                        ul {
                            @for s in j.steps.iter().filter(|s| matches!(s.state, StepState::Failed { .. } | StepState::Blocked)) {
                                li { (s.id) ": " (s.message.as_deref().unwrap_or("(no reason recorded)")) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="h-cost" {
            h2 #h-cost { "Cost and tokens" }
            div.cards {
                div.card data-testid="cost-today" { div.big { (usd(cost_day)) } (count(tok_day)) " tokens today (UTC), jobs active today" }
                div.card data-testid="cost-week" { div.big { (usd(cost_week)) } (count(tok_week)) " tokens in the last 7 days" }
                div.card data-testid="autonomy" {
                    div.big { @if let Some(r) = ratio { (format!("{:.0}%", r * 100.0)) } @else { "—" } }
                    "autonomy: share of " (started) " started steps that needed no human decision"
                }
            }
        }
        section aria-labelledby="h-health" {
            h2 #h-health { "Engine health" }
            dl.facts data-testid="health" {
                dt { "Engine" } dd { (e.id()) " (" (e.reference()) ")" }
                dt { "Commit" } dd { code { (commit.as_deref().unwrap_or("(none yet)")) } }
                dt { "Source head" } dd { code { (head.as_deref().unwrap_or("(unknown)")) } }
                dt { "Sync" } dd {
                    @if commit.is_some() && commit == head { "in sync" }
                    @else if let Some(n) = lag { (n) " commits behind" }
                    @else { "behind" }
                }
                dt { "Leases" } dd {
                    (leases) " step attempts running"
                    @if !holders.is_empty() {
                        " (" @for (i, (h, n)) in holders.iter().enumerate() { @if i > 0 { ", " } (h) ": " (n) } ")"
                    }
                }
                dt { "Reconciles" } dd { (count(stats.reconciles)) }
                dt { "Attempts" } dd { (count(stats.attempts)) }
                dt { "Manifest errors" } dd { a href={ (base) "/catalogue#h-errors" } { (errors) } }
            }
        }
    })
}

/// `GET /ui/` (with `fragment=1`: only the live part).
pub(crate) async fn overview(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<OverviewQuery>,
) -> Response {
    match body(&state, &v).await {
        Ok(b) if q.fragment.is_some() => layout::respond(StatusCode::OK, b),
        Ok(b) => layout::page(
            &v,
            Some(Nav::Overview),
            "Overview",
            html! { div #overview-live data-live-src={ (v.base) "/?fragment=1" } { (b) } },
        ),
        Err(x) => error_page(&v, StatusCode::INTERNAL_SERVER_ERROR, &x),
    }
}
