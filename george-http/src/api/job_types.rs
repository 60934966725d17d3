//! The API's job shapes (version 1): what the engine's records look like on the wire.
//! Times are milliseconds since the Unix epoch (`*_ms`); costs are US dollars.

use george_core::provider::Usage;
use george_core::state::{Event, JobRecord, JobStatus, StepRecord, StepState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A job's summary status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiJobStatus {
    /// No step started yet.
    Pending,
    /// Work in progress (including deferred and backing-off steps).
    Running,
    /// At least one step waits for a human.
    AwaitingApproval,
    /// A step is blocked; nothing else can run.
    Blocked,
    /// Every step succeeded.
    Succeeded,
    /// A step failed with no retry left.
    Failed,
    /// Cancelled (removed from Git, or by an operator).
    Cancelled,
}

impl From<JobStatus> for ApiJobStatus {
    fn from(s: JobStatus) -> Self {
        match s {
            JobStatus::Pending => ApiJobStatus::Pending,
            JobStatus::Running => ApiJobStatus::Running,
            JobStatus::AwaitingApproval => ApiJobStatus::AwaitingApproval,
            JobStatus::Blocked => ApiJobStatus::Blocked,
            JobStatus::Succeeded => ApiJobStatus::Succeeded,
            JobStatus::Failed => ApiJobStatus::Failed,
            JobStatus::Cancelled => ApiJobStatus::Cancelled,
        }
    }
}

/// Tokens and cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiUsage {
    /// Input tokens not read from a cache.
    pub input_tokens: u64,
    /// Output tokens, including reasoning tokens.
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Of `output_tokens`, those spent on reasoning.
    pub reasoning_tokens: u64,
    /// Cost in US dollars (0 when unknown).
    pub cost_usd: f64,
}

impl From<&Usage> for ApiUsage {
    fn from(u: &Usage) -> Self {
        ApiUsage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_tokens: u.cache_read_tokens,
            cache_write_tokens: u.cache_write_tokens,
            reasoning_tokens: u.reasoning_tokens,
            cost_usd: u.cost_usd,
        }
    }
}

/// One job in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobSummary {
    /// `metadata.name` of the Job manifest.
    pub name: String,
    /// The template.
    pub template: String,
    /// The agents of the template's steps at the current commit.
    pub agents: Vec<String>,
    /// Summary status.
    pub status: ApiJobStatus,
    /// Starts at 1; grows each time the job's definition changes in Git.
    pub generation: u64,
    /// The commit the current generation was built from.
    pub commit: String,
    /// The path of the Job manifest.
    pub path: String,
    /// Whether the manifest was removed from Git.
    pub removed: bool,
    /// Steps in all, and how many succeeded.
    pub steps_total: usize,
    /// Steps that succeeded.
    pub steps_succeeded: usize,
    /// Tokens and cost of all attempts of all steps.
    pub usage: ApiUsage,
    /// Creation time.
    pub created_at_ms: u64,
    /// Last change.
    pub updated_at_ms: u64,
    /// What the job works on (free keys, e.g. `kind: service, name: darwin-store`);
    /// absent when it has no target.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub target: std::collections::BTreeMap<String, String>,
}

impl JobSummary {
    /// The summary of `rec`, whose template has `agents`.
    pub(crate) fn of(rec: &JobRecord, agents: Vec<String>) -> Self {
        JobSummary {
            name: rec.name.clone(),
            template: rec.template.to_string(),
            agents,
            status: rec.status.into(),
            generation: rec.generation,
            commit: rec.commit.to_string(),
            path: rec.path.to_string(),
            removed: rec.removed,
            steps_total: rec.steps.len(),
            steps_succeeded: rec
                .steps
                .iter()
                .filter(|s| s.state == StepState::Succeeded)
                .count(),
            usage: (&rec.usage()).into(),
            created_at_ms: rec.created_at_ms,
            updated_at_ms: rec.updated_at_ms,
            target: rec.target.clone(),
        }
    }
}

/// A page of jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// The jobs of this page, in the requested order.
    pub jobs: Vec<JobSummary>,
    /// How many jobs match the filters (all pages).
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A plan a human rejected, kept on its step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiRejection {
    /// The rejected plan's summary.
    pub plan: String,
    /// Why, in the human's words.
    pub reason: String,
    /// Who (`human:<id>`).
    pub by: String,
    /// The approval request.
    pub request: String,
    /// The rejected plan's digest.
    pub digest: String,
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiStep {
    /// The step id.
    pub id: String,
    /// `pending`, `ready`, `running`, `succeeded`, `failed`, `blocked`,
    /// `awaiting_approval`, `deferred` or `cancelled`.
    pub state: String,
    /// The agent running it at the current commit (none for command steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Attempts started so far (attempt numbers are 1-based).
    pub attempt: u32,
    /// While `running`: the engine holding the attempt's lease, and its expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_holder: Option<String>,
    /// While `running`: the lease's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<u64>,
    /// While `awaiting_approval`: the approval request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request: Option<String>,
    /// While `deferred`: when it is checked again; while `failed` with a retry left: when
    /// it is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at_ms: Option<u64>,
    /// Why it failed, is blocked or deferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its outputs once succeeded (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    /// Plans humans rejected, oldest first.
    pub rejections: Vec<ApiRejection>,
    /// For a step that succeeded by approval: the approval request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_request: Option<String>,
    /// Approved actions that took effect (an `execute_approved` step).
    pub effects: usize,
    /// Tokens and cost of all its attempts.
    pub usage: ApiUsage,
}

impl ApiStep {
    pub(crate) fn of(s: &StepRecord, agent: Option<String>) -> Self {
        let (mut lease_holder, mut lease_until_ms, mut approval_request, mut wake_at_ms) =
            (None, None, None, None);
        match &s.state {
            StepState::Running {
                holder,
                lease_until_ms: until,
            } => {
                lease_holder = Some(holder.to_string());
                lease_until_ms = Some(*until);
            }
            StepState::AwaitingApproval { request } => approval_request = Some(request.clone()),
            StepState::Deferred { until_ms } => wake_at_ms = Some(*until_ms),
            StepState::Failed { retry_at_ms } => wake_at_ms = *retry_at_ms,
            _ => {}
        }
        ApiStep {
            id: s.id.to_string(),
            state: s.state.name().to_string(),
            agent,
            attempt: s.attempt,
            lease_holder,
            lease_until_ms,
            approval_request,
            wake_at_ms,
            message: s.message.clone(),
            outputs: s.outputs.as_deref().cloned(),
            rejections: s
                .rejections
                .iter()
                .map(|r| ApiRejection {
                    plan: r.plan.clone(),
                    reason: r.reason.clone(),
                    by: r.by.clone(),
                    request: r.request.clone(),
                    digest: r.digest.clone(),
                })
                .collect(),
            approved_request: s.approved.as_ref().map(|a| a.request.clone()),
            effects: s.effects.len(),
            usage: (&s.usage).into(),
        }
    }
}

/// One job in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The record's revision (grows with every write).
    pub revision: u64,
    /// The steps, in template order.
    pub steps: Vec<ApiStep>,
    /// For a child job (sub-jobs): the job, step and attempt that ordered it, and the
    /// commit its definition is pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ApiParent>,
    /// The child jobs this job's steps ordered, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ApiChild>,
}

/// Who ordered a child job (`george::children::OrderedBy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiParent {
    /// The parent job.
    pub job: String,
    /// Its step that ordered this job.
    pub step: String,
    /// The attempt of that step that ordered it.
    pub attempt: u32,
    /// The commit of the parent's generation: this job's definition is pinned to it.
    pub commit: String,
    /// 1 for a child of a Git job, 2 for a grandchild, …
    pub depth: u32,
    /// What the parent's cancellation does to this job: `cancel`, `finish` or `abandon`.
    pub parent_close: String,
    /// Whether the parent closed and abandoned it.
    pub abandoned: bool,
}

/// A child job a step ordered (`george::children::ChildLink`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiChild {
    /// The child job's name.
    pub job: String,
    /// The step that ordered it.
    pub step: String,
    /// Its template.
    pub template: String,
    /// Whether the step waits for it.
    pub wait: bool,
    /// Its status once finished, as the parent saw it (absent before; the child's own
    /// record has the live status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApiJobStatus>,
    /// What the parent's cancellation does to it: `cancel`, `finish` or `abandon`.
    pub parent_close: String,
    /// Whether the parent-close policy was applied.
    pub closed: bool,
}

impl ApiParent {
    pub(crate) fn of(rec: &JobRecord) -> Option<Self> {
        rec.ordered_by.as_ref().map(|o| ApiParent {
            job: o.job.clone(),
            step: o.step.clone(),
            attempt: o.attempt,
            commit: o.commit.clone(),
            depth: o.depth,
            parent_close: o.parent_close.as_str().to_string(),
            abandoned: o.abandoned,
        })
    }
}

impl ApiChild {
    pub(crate) fn all(rec: &JobRecord) -> Vec<Self> {
        rec.steps
            .iter()
            .flat_map(|s| {
                s.children.iter().map(|l| ApiChild {
                    job: l.job.clone(),
                    step: s.id.to_string(),
                    template: l.template.clone(),
                    wait: l.wait,
                    status: l.status.map(Into::into),
                    parent_close: l.parent_close.as_str().to_string(),
                    closed: l.closed,
                })
            })
            .collect()
    }
}

/// One entry of a job's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiEvent {
    /// 1, 2, 3, … without gaps within a job.
    pub seq: u64,
    /// When.
    pub at_ms: u64,
    /// Who: `engine`, `agent:<name>`, `human:<id>`, `git`.
    pub actor: String,
    /// What: `job.created`, `step.started`, `approval.rejected`, … (see
    /// `george::events::EventAction`).
    pub action: String,
    /// The step, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Detail.
    pub detail: String,
}

impl From<Event> for ApiEvent {
    fn from(e: Event) -> Self {
        ApiEvent {
            seq: e.seq,
            at_ms: e.at_ms,
            actor: e.actor,
            action: e.action,
            step: e.step,
            detail: e.detail,
        }
    }
}

/// A page of a job's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// The job.
    pub job: String,
    /// Events with `seq` above the request's `after`, in order.
    pub events: Vec<ApiEvent>,
    /// Pass as `after` for the next page: the last `seq` of this page (or the request's
    /// `after` when the page is empty, to poll for new events).
    pub next_after: u64,
    /// Whether more events were already there (the page is full).
    pub more: bool,
}

/// The conversation of one step attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    /// The job.
    pub job: String,
    /// The step.
    pub step: String,
    /// The attempt (1-based).
    pub attempt: u32,
    /// Messages in order, each tagged by `role`: `user` (`content`), `assistant`
    /// (`content`, `tool_calls: [{id, name, arguments}]`), `tool` (`tool_call_id`,
    /// `name`, `content`, `is_error`).
    pub messages: Vec<Value>,
}

/// Why an operator cancels or retries a job (optional), for the event log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobActionBody {
    /// Why (at most 4,096 characters).
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub reason: Option<String>,
}
