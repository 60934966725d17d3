//! `/approvals`: open (or all) requests, one request with its plan and digest, and
//! the decisions.
//!
//! A decision is made as the authenticated caller ([`Identity::approver`]) and checked
//! by the engine against the rule stored with the request: outside the rule is 403.
//! A request is decided once: another decision is 409 — except the same decision again
//! (the same identity, verdict, note or reason, and digest if one is sent), which
//! answers 200 with the request as it stands, so a client may retry a decision whose
//! answer it did not get.
//!
//! [`Identity::approver`]: crate::Identity::approver

use axum::Json;
use axum::extract::State;
use george_core::ErrorKind;
use george_core::approval::{Approver, Decision, Verdict};
use george_core::state::{ApprovalRequest, ApprovalStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use super::approval_types::{
    ApiActionPreview, ApprovalDetail, ApprovalList, ApprovalSummary, ApproveBody, RejectBody,
};
use crate::auth::{Caller, Identity, Role};
use crate::body::{ApiPath, ApiQuery, JsonBody, check_text};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// Which requests `GET /approvals` lists.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// `open` (the default) or `all` (decided and cancelled too).
    #[param(pattern = "^(open|all)$")]
    pub status: Option<String>,
    /// Only the requests of this job.
    pub job: Option<String>,
}

/// Lists approval requests, oldest first.
#[utoipa::path(
    get, path = "/approvals", tag = "approvals", operation_id = "list_approvals",
    params(ApprovalQuery),
    responses(
        (status = 200, description = "The requests", body = ApprovalList),
        (status = 400, description = "A bad status", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_approvals(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<ApprovalQuery>,
) -> ApiResult<Json<ApprovalList>> {
    who.require(Role::Read)?;
    let open_only = match q.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => {
            return Err(Problem::invalid(format!(
                "status: {other:?} is neither open nor all"
            )));
        }
    };
    let mut all = state.engine.approvals(open_only).await?;
    all.retain(|r| q.job.as_ref().is_none_or(|j| *j == r.job));
    all.sort_by(|a, b| (a.requested_at_ms, &a.id).cmp(&(b.requested_at_ms, &b.id)));
    Ok(Json(ApprovalList {
        approvals: all.iter().map(ApprovalSummary::of).collect(),
    }))
}

/// One approval request: the plan (the exact actions), its digest, who may decide, the
/// decision once made, and what each action would change (`previews`: for a Git
/// commit, a unified diff of the files against the branch head), computed by the tools
/// without changing anything.
#[utoipa::path(
    get, path = "/approvals/{id}", tag = "approvals", operation_id = "get_approval",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = ApprovalDetail),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_approval(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApprovalDetail>> {
    who.require(Role::Read)?;
    let req = load(&state, &id).await?;
    let mut detail = ApprovalDetail::of(&req);
    detail.previews = state
        .engine
        .preview_request(&req)
        .await
        .iter()
        .map(ApiActionPreview::of)
        .collect();
    Ok(Json(detail))
}

async fn load(state: &AppState, id: &str) -> ApiResult<ApprovalRequest> {
    state
        .engine
        .approval(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no approval request {id}")))
}

/// Approves the plan as the caller. With a rule that needs several approvers, the
/// approval is recorded as a vote until enough have approved.
#[utoipa::path(
    post, path = "/approvals/{id}/approve", tag = "approvals", operation_id = "approve",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = Option<ApproveBody>, description = "A note and the digest of the plan shown (both optional)"),
    responses(
        (status = 200, description = "Approved (or the vote recorded; or the same approval again)", body = ApprovalDetail),
        (status = 400, description = "A bad body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller may not decide, or is outside the step's approval rule", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided or cancelled already, or another digest", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn approve(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<ApproveBody>,
) -> ApiResult<Json<ApprovalDetail>> {
    approve_as(&state, &who, &id, body.note, body.digest)
        .await
        .map(Json)
}

/// Approves request `id` as `who` (the API's and the dashboard's one way to approve):
/// the role, the note, then the engine's rule and digest checks.
pub(crate) async fn approve_as(
    state: &AppState,
    who: &Identity,
    id: &str,
    note: Option<String>,
    digest: Option<String>,
) -> ApiResult<ApprovalDetail> {
    who.require(Role::Decide)?;
    check_text("note", note.as_deref())?;
    let mut decision = Decision::approve(note.as_deref());
    if let Some(d) = digest {
        decision = decision.with_digest(d);
    }
    decide(state, id, &who.approver(), decision).await
}

/// Rejects the plan as the caller, with a reason the next planning attempt is given.
#[utoipa::path(
    post, path = "/approvals/{id}/reject", tag = "approvals", operation_id = "reject",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = RejectBody, description = "The reason (required) and the digest of the plan shown"),
    responses(
        (status = 200, description = "Rejected (or the same rejection again)", body = ApprovalDetail),
        (status = 400, description = "No reason, or a bad body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller may not decide, or is outside the step's approval rule", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided or cancelled already, or another digest", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn reject(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<RejectBody>,
) -> ApiResult<Json<ApprovalDetail>> {
    reject_as(&state, &who, &id, body.reason, body.digest)
        .await
        .map(Json)
}

/// Rejects request `id` as `who` with `reason` (the API's and the dashboard's one way
/// to reject).
pub(crate) async fn reject_as(
    state: &AppState,
    who: &Identity,
    id: &str,
    reason: String,
    digest: Option<String>,
) -> ApiResult<ApprovalDetail> {
    who.require(Role::Decide)?;
    if reason.trim().is_empty() {
        return Err(Problem::invalid("reason: a rejection needs a reason"));
    }
    check_text("reason", Some(&reason))?;
    let mut decision = Decision::reject(reason);
    if let Some(d) = digest {
        decision = decision.with_digest(d);
    }
    decide(state, id, &who.approver(), decision).await
}

async fn decide(
    state: &AppState,
    id: &str,
    approver: &Approver,
    decision: Decision,
) -> ApiResult<ApprovalDetail> {
    load(state, id).await?;
    match state.engine.decide(id, approver, &decision).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Conflict => {
            let now = load(state, id).await?;
            if !already_made(&now, approver, &decision) {
                return Err(e.into());
            }
        }
        Err(e) => return Err(e.into()),
    }
    load(state, id).await.map(|r| ApprovalDetail::of(&r))
}

/// Whether `decision` by `approver` is already what `req` records.
fn already_made(req: &ApprovalRequest, approver: &Approver, decision: &Decision) -> bool {
    if decision.digest.as_ref().is_some_and(|d| *d != req.digest) {
        return false;
    }
    let actor = approver.actor();
    let voted = || {
        req.votes
            .iter()
            .any(|v| v.by == actor && v.note == decision.text)
    };
    match (&req.status, decision.verdict) {
        (ApprovalStatus::Open, Verdict::Approve) => voted(),
        (ApprovalStatus::Approved { by, note, .. }, Verdict::Approve) => {
            (*by == actor && *note == decision.text) || voted()
        }
        (ApprovalStatus::Rejected { by, reason, .. }, Verdict::Reject) => {
            *by == actor && Some(reason) == decision.text.as_ref()
        }
        _ => false,
    }
}
