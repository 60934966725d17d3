//! `/jobs`: the list, one job, its event log, a step attempt's transcript, and the
//! operator's cancel and retry.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::job_types::{
    ApiChild, ApiEvent, ApiParent, ApiStep, EventPage, JobActionBody, JobDetail, JobList,
    JobSummary, Transcript,
};
use super::list::{self, JobQuery};
use crate::auth::{Caller, Role};
use crate::body::{ApiPath, ApiQuery, JsonBody, check_text};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// The largest page of events.
pub const MAX_EVENTS: usize = 1000;

/// `value` as an event sequence number: at most `i64::MAX` (what every store keeps, and
/// what the OpenAPI document's `int64` allows).
///
/// # Errors
/// 400 naming `what` above that.
pub(crate) fn seq(what: &str, value: u64) -> Result<u64, Problem> {
    if i64::try_from(value).is_err() {
        return Err(Problem::invalid(format!(
            "{what}: a sequence number is at most {}",
            i64::MAX
        )));
    }
    Ok(value)
}

/// A page of the event log.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events with a sequence number above this (default 0: from the start).
    pub after: Option<u64>,
    /// Events per page: 1 to 1,000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Lists jobs, filtered, sorted and paged.
#[utoipa::path(
    get, path = "/jobs", tag = "jobs", operation_id = "list_jobs",
    params(JobQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobList),
        (status = 400, description = "A bad filter, sort, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_jobs(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> ApiResult<Json<JobList>> {
    who.require(Role::Read)?;
    let jobs = state.engine.jobs().await?;
    Ok(Json(list::page(jobs, &q, &state.agents_by_template())?))
}

/// One job: its steps, statuses, outputs, usage and cost, generation and commit.
#[utoipa::path(
    get, path = "/jobs/{name}", tag = "jobs", operation_id = "get_job",
    params(("name" = String, Path, description = "The job's name")),
    responses(
        (status = 200, description = "The job", body = JobDetail),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_job(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<JobDetail>> {
    who.require(Role::Read)?;
    detail(&state, &name).await.map(Json)
}

pub(crate) async fn detail(state: &AppState, name: &str) -> ApiResult<JobDetail> {
    let Some(rec) = state.engine.job(name).await? else {
        return Err(Problem::not_found(format!("no job {name}")));
    };
    let step_agents = state.step_agents(&rec.template);
    let agents = state
        .agents_by_template()
        .remove(&*rec.template)
        .unwrap_or_default();
    Ok(JobDetail {
        summary: JobSummary::of(&rec, agents),
        revision: rec.revision,
        steps: rec
            .steps
            .iter()
            .map(|s| ApiStep::of(s, step_agents.get(&*s.id).cloned()))
            .collect(),
        parent: ApiParent::of(&rec),
        children: ApiChild::all(&rec),
    })
}

/// A page of a job's event log (the audit trail), oldest first. Follow it by asking
/// again with `after` = the last page's `next_after`.
#[utoipa::path(
    get, path = "/jobs/{name}/events", tag = "jobs", operation_id = "list_job_events",
    params(("name" = String, Path, description = "The job's name"), EventQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "A bad limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    who.require(Role::Read)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS).contains(&limit) {
        return Err(Problem::invalid(format!(
            "limit: must be 1 to {MAX_EVENTS}"
        )));
    }
    if state.engine.job(&name).await?.is_none() {
        return Err(Problem::not_found(format!("no job {name}")));
    }
    let after = seq("after", q.after.unwrap_or(0))?;
    let events = state.engine.events_after(&name, after, limit).await?;
    let more = events.len() == limit;
    let next_after = events.last().map_or(after, |e| e.seq);
    Ok(Json(EventPage {
        job: name,
        events: events.into_iter().map(ApiEvent::from).collect(),
        next_after,
        more,
    }))
}

/// The transcript (conversation) of one step attempt.
#[utoipa::path(
    get, path = "/jobs/{name}/steps/{step}/attempts/{attempt}/transcript", tag = "jobs",
    operation_id = "get_transcript",
    params(
        ("name" = String, Path, description = "The job's name"),
        ("step" = String, Path, description = "The step's id"),
        ("attempt" = u32, Path, description = "The attempt, 1-based"),
    ),
    responses(
        (status = 200, description = "The transcript", body = Transcript),
        (status = 400, description = "A path parameter that does not parse (`attempt` is a non-negative integer)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job or transcript (never written, or compacted)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_transcript(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath((name, step, attempt)): ApiPath<(String, String, u32)>,
) -> ApiResult<Json<Transcript>> {
    who.require(Role::Read)?;
    let Some(messages) = state.engine.transcript(&name, &step, attempt).await? else {
        return Err(Problem::not_found(format!(
            "no transcript of {name}/{step} attempt {attempt}"
        )));
    };
    let messages = messages
        .iter()
        .map(|m| serde_json::to_value(m).unwrap_or_default())
        .collect();
    Ok(Json(Transcript {
        job: name,
        step,
        attempt,
        messages,
    }))
}

/// Cancels a job: every unfinished step is cancelled and open approval requests are
/// cancelled, recorded as done by the caller. Cancelling a cancelled job changes nothing.
#[utoipa::path(
    post, path = "/jobs/{name}/cancel", tag = "jobs", operation_id = "cancel_job",
    params(("name" = String, Path, description = "The job's name")),
    request_body(content = Option<JobActionBody>, description = "Why (optional)"),
    responses(
        (status = 200, description = "The job after the cancellation", body = JobDetail),
        (status = 400, description = "A body that is not a `JobActionBody` (unknown fields, a reason over 4,096 characters)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job succeeded or failed already", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn cancel_job(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<JobActionBody>,
) -> ApiResult<Json<JobDetail>> {
    who.require(Role::Admin)?;
    check_text("reason", body.reason.as_deref())?;
    let reason = body.reason.unwrap_or_default();
    state
        .engine
        .cancel_job(&name, &who.approver(), &reason)
        .await?;
    detail(&state, &name).await.map(Json)
}

/// Retries a `failed`, `cancelled` or `blocked` job: its failed, cancelled and blocked
/// steps start over (one more attempt each), recorded as done by the caller.
#[utoipa::path(
    post, path = "/jobs/{name}/retry", tag = "jobs", operation_id = "retry_job",
    params(("name" = String, Path, description = "The job's name")),
    request_body(content = Option<JobActionBody>, description = "Why (optional)"),
    responses(
        (status = 200, description = "The job after the retry", body = JobDetail),
        (status = 400, description = "A body that is not a `JobActionBody` (unknown fields, a reason over 4,096 characters)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not failed, cancelled or blocked, or has no valid manifest", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn retry_job(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<JobActionBody>,
) -> ApiResult<Json<JobDetail>> {
    who.require(Role::Admin)?;
    check_text("reason", body.reason.as_deref())?;
    let reason = body.reason.unwrap_or_default();
    state
        .engine
        .retry_job(&name, &who.approver(), &reason)
        .await?;
    detail(&state, &name).await.map(Json)
}
