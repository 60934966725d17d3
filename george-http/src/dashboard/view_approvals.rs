//! `GET /ui/approvals`: the inbox — each open request with its plan, actions, the diff
//! each action would make, the step's earlier rejected plans, who may decide, and the
//! approve / reject forms — and the decided requests. The decisions (`POST`) go through
//! the API's own code: roles, the engine's rule check and the digest of the plan shown.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use george_core::approval::check_rule;
use george_core::state::{ApprovalRequest, ApprovalStatus, Rejection};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Nav, badge, duration, error_page, json_block, time_el, urlencode};
use super::session::{Viewer, see_other};
use crate::api::approval_types::ApiActionPreview;
use crate::api::approvals::{approve_as, reject_as};
use crate::auth::Role;
use crate::state::AppState;

/// How many decided requests the inbox lists.
const DECIDED: usize = 50;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A unified diff, its lines marked for colour.
fn diff_block(diff: &str) -> Markup {
    html! {
        pre.diff data-testid="plan-diff" tabindex="0" {
            @for line in diff.lines() {
                @let class = if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff ") {
                    "file"
                } else if line.starts_with('+') { "add" }
                else if line.starts_with('-') { "del" }
                else if line.starts_with("@@") { "hunk" }
                else { "ctx" };
                span class=(class) { (line) } "\n"
            }
        }
    }
}

fn rule_text(req: &ApprovalRequest) -> String {
    let r = &req.rule;
    let who = if r.approvers.is_empty() {
        "anyone with the decide role".to_string()
    } else {
        r.approvers.join(", ")
    };
    let mut s = format!("{who}; {} approval", r.min_approvals.max(1));
    if r.min_approvals > 1 {
        s.push('s');
    }
    s.push_str(" needed");
    if r.forbid_self_approval {
        s.push_str("; the commit's author may not approve");
    }
    s
}

fn open_request(
    v: &Viewer,
    req: &ApprovalRequest,
    previews: &[ApiActionPreview],
    rejections: &[Rejection],
    now: u64,
) -> Markup {
    let approver = v.who.approver();
    let may_decide = v.can(Role::Decide)
        && check_rule(&req.rule, &approver, req.commit_author.as_deref(), false).is_ok();
    let id_enc = urlencode(&req.id);
    let job_url = format!("{}/jobs/{}", v.base, urlencode(&req.job));
    let diffs: Vec<&str> = previews
        .iter()
        .filter_map(|p| p.preview.as_ref()?.diff.as_deref())
        .collect();
    html! {
        article.approval data-testid="approval" data-approval-id=(req.id) data-job=(req.job) data-step=(req.step) aria-labelledby={ "a-" (req.id) } {
            h2 id={ "a-" (req.id) } {
                a href=(job_url) { (req.job) } " / " (req.step) " "
                span.muted { "attempt " (req.attempt) ", by agent " (req.agent) }
            }
            p.muted { "Waiting " (duration(now.saturating_sub(req.requested_at_ms))) " (since " (time_el(req.requested_at_ms)) ")" }
            h3 { "Plan" }
            p data-testid="plan-summary" { (req.plan.summary) }
            h3 { "Actions" }
            ol data-testid="plan-actions" {
                @for (i, a) in req.plan.actions.iter().enumerate() {
                    li {
                        code { (a.tool) }
                        @if let Some(p) = previews.iter().find(|p| p.index == i + 1) {
                            @if let Some(t) = &p.preview { " — " (t.summary) @if t.is_error { " " span.badge.s-bad { "would fail" } } }
                            @if let Some(e) = &p.error { " — " span.muted { "no preview: " (e) } }
                        }
                        details { summary { "Arguments" } (json_block(&a.arguments)) }
                    }
                }
                @if req.plan.actions.is_empty() { li.muted { "No action: the plan only needs a decision." } }
            }
            h3 { "Diff" }
            @if diffs.is_empty() {
                pre.diff data-testid="plan-diff" tabindex="0" { "(no file would change)" }
            } @else {
                (diff_block(&diffs.join("\n")))
            }
            h3 { "Earlier rejected plans of this step" }
            ol data-testid="rejection-history" {
                @for r in rejections {
                    li { strong { (r.plan) } " — rejected by " (r.by) ": " span.reason { (r.reason) } }
                }
            }
            @if rejections.is_empty() { p.muted { "None." } }
            h3 { "Who may decide" }
            p data-testid="approver-rule" { (rule_text(req)) }
            @if !req.votes.is_empty() {
                p { "Approved so far by: " @for vote in &req.votes { (vote.by) " " } }
            }
            @if may_decide {
                div.decide {
                    form data-testid="approve-form" method="post" action={ (v.base) "/approvals/" (id_enc) "/approve" } {
                        input type="hidden" name="csrf" value=(v.csrf);
                        input type="hidden" name="digest" value=(req.digest);
                        label for={ "note-" (req.id) } { "Note (optional)" }
                        input type="text" id={ "note-" (req.id) } name="note";
                        button.primary type="submit" { "Approve" }
                    }
                    form data-testid="reject-form" method="post" action={ (v.base) "/approvals/" (id_enc) "/reject" } {
                        input type="hidden" name="csrf" value=(v.csrf);
                        input type="hidden" name="digest" value=(req.digest);
                        label for={ "reason-" (req.id) } { "Reason" }
                        textarea id={ "reason-" (req.id) } name="reason" required {}
                        button.danger type="submit" { "Reject" }
                    }
                }
            } @else {
                p.muted { "You (" (v.who.user) ") may not decide this request." }
            }
        }
    }
}

fn decided(v: &Viewer, reqs: &[ApprovalRequest]) -> Markup {
    html! {
        @if reqs.is_empty() { p.muted { "No decision yet." } }
        ul.decided {
            @for r in reqs {
                @let (word, by, at, why) = match &r.status {
                    ApprovalStatus::Approved { by, at_ms, note } => ("approved", by.as_str(), *at_ms, note.clone().unwrap_or_default()),
                    ApprovalStatus::Rejected { by, at_ms, reason } => ("rejected", by.as_str(), *at_ms, reason.clone()),
                    ApprovalStatus::Cancelled { at_ms, reason } => ("cancelled", "engine", *at_ms, reason.clone()),
                    ApprovalStatus::Open => ("open", "", r.requested_at_ms, String::new()),
                };
                li data-testid="decided" data-approval-id=(r.id) data-status=(word) {
                    (badge(word)) " "
                    a href={ (v.base) "/jobs/" (urlencode(&r.job)) } { (r.job) } " / " (r.step) ": "
                    em { (r.plan.summary) } " — "
                    span data-testid="decided-by" { (by) } ", "
                    (time_el(at))
                    @if !why.is_empty() { ": " span data-testid="decided-why" { (why) } }
                }
            }
        }
    }
}

/// The live part: open requests and decided ones.
async fn body(state: &AppState, v: &Viewer) -> Result<Markup, String> {
    let mut all = state
        .engine
        .approvals(false)
        .await
        .map_err(|e| e.to_string())?;
    all.sort_by(|a, b| (a.requested_at_ms, &a.id).cmp(&(b.requested_at_ms, &b.id)));
    let (open, mut done): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|r| r.status == ApprovalStatus::Open);
    let at = |r: &ApprovalRequest| match &r.status {
        ApprovalStatus::Approved { at_ms, .. }
        | ApprovalStatus::Rejected { at_ms, .. }
        | ApprovalStatus::Cancelled { at_ms, .. } => *at_ms,
        ApprovalStatus::Open => r.requested_at_ms,
    };
    done.sort_by_key(|r| std::cmp::Reverse(at(r)));
    done.truncate(DECIDED);
    let mut rejections: HashMap<(String, String), Vec<Rejection>> = HashMap::new();
    let mut items = Vec::new();
    let now = now_ms();
    for req in &open {
        let key = (req.job.clone(), req.step.clone());
        if !rejections.contains_key(&key) {
            let list = match state.engine.job(&req.job).await {
                Ok(Some(rec)) => rec
                    .step(&req.step)
                    .map(|s| s.rejections.clone())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            rejections.insert(key.clone(), list);
        }
        let previews: Vec<ApiActionPreview> = state
            .engine
            .preview_request(req)
            .await
            .iter()
            .map(ApiActionPreview::of)
            .collect();
        items.push(open_request(v, req, &previews, &rejections[&key], now));
    }
    Ok(html! {
        section aria-labelledby="h-open" {
            h2 #h-open { "Open requests " span.muted { "(" (open.len()) ")" } }
            @if open.is_empty() { p data-testid="no-open" { "Nothing waits for a decision." } }
            @for item in items { (item) }
        }
        section aria-labelledby="h-decided" {
            h2 #h-decided { "Decided" }
            (decided(v, &done))
        }
    })
}

/// `GET /ui/approvals`.
pub(crate) async fn inbox(State(state): State<AppState>, v: Viewer) -> Response {
    match body(&state, &v).await {
        Ok(b) => layout::page(
            &v,
            Some(Nav::Approvals),
            "Approvals",
            html! {
                div #approvals-live data-live-src={ (v.base) "/approvals/fragment" } { (b) }
            },
        ),
        Err(e) => error_page(&v, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// `GET /ui/approvals/fragment`: the live part of the inbox.
pub(crate) async fn fragment(State(state): State<AppState>, v: Viewer) -> Response {
    match body(&state, &v).await {
        Ok(b) => layout::respond(StatusCode::OK, b),
        Err(e) => layout::respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            html! { p.notice.error { (e) } },
        ),
    }
}

/// A decision form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DecisionForm {
    csrf: Option<String>,
    digest: Option<String>,
    reason: Option<String>,
    note: Option<String>,
}

fn refused(v: &Viewer, form: &DecisionForm) -> Option<Response> {
    if !v.csrf_ok(form.csrf.as_deref()) {
        return Some(error_page(
            v,
            StatusCode::FORBIDDEN,
            "The form's CSRF token is missing or wrong: nothing was changed. Reload the inbox and try again.",
        ));
    }
    if !v.can(Role::Decide) {
        return Some(error_page(
            v,
            StatusCode::FORBIDDEN,
            &format!("user {} may not decide (role decide needed)", v.who.user),
        ));
    }
    None
}

fn digest(form: &DecisionForm) -> Option<String> {
    form.digest.clone().filter(|d| !d.trim().is_empty())
}

/// `POST /ui/approvals/{id}/approve`: 303 to the inbox, or the refusal.
pub(crate) async fn approve(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Some(r) = refused(&v, &form) {
        return r;
    }
    let note = form.note.clone().filter(|n| !n.trim().is_empty());
    match approve_as(&state, &v.who, &id, note, digest(&form)).await {
        Ok(_) => see_other(&format!("{}/approvals", v.base)),
        Err(p) => error_page(&v, p.status(), &p.detail),
    }
}

/// `POST /ui/approvals/{id}/reject`: 303 to the inbox, or the refusal.
pub(crate) async fn reject(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Some(r) = refused(&v, &form) {
        return r;
    }
    let reason = form.reason.clone().unwrap_or_default();
    match reject_as(&state, &v.who, &id, reason, digest(&form)).await {
        Ok(_) => see_other(&format!("{}/approvals", v.base)),
        Err(p) => error_page(&v, p.status(), &p.detail),
    }
}
