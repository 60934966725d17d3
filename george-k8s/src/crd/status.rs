//! The `status` of the custom resources: standard conditions and `observedGeneration`
//! on all three kinds, and a bounded summary of a job's run on `Job`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most steps a `Job` status lists (a template may have more: the rest are counted in
/// [`JobStatus::steps_omitted`]). Keeps the object far below etcd's size limit.
pub const MAX_STEPS: usize = 100;
/// Most open approval ids a `Job` status lists.
pub const MAX_APPROVALS: usize = 20;
/// Longest step message kept in a status, in characters.
pub const MAX_MESSAGE: usize = 400;

/// A standard Kubernetes condition (`metav1.Condition`); the list is keyed by `type`
/// (`x-kubernetes-list-type: map`), so server-side apply merges it entry by entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling`, `Stalled`, `AwaitingApproval`.
    #[serde(rename = "type")]
    #[schemars(length(max = 316))]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// The `metadata.generation` this condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
    /// A CamelCase reason (the job's phase, `Approved`, …).
    #[schemars(length(max = 1024))]
    pub reason: String,
    /// Details for humans.
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// The status of a [`Condition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// Not known.
    Unknown,
}

/// The status of an `AgentSpec` or `TaskTemplate`: whether the engine accepted it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionStatus {
    /// The `metadata.generation` last validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (valid, with the failing field in its message when not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A job's summary status, as George's `JobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// No step started yet.
    Pending,
    /// Work in progress.
    Running,
    /// At least one step waits for a human.
    AwaitingApproval,
    /// A step is blocked; nothing else can run.
    Blocked,
    /// Every step succeeded.
    Succeeded,
    /// A step failed with no retry left.
    Failed,
    /// Cancelled.
    Cancelled,
}

/// The status of a `Job` CR: written by the engine's
/// [`StatusProjector`](crate::status::StatusProjector) from the store of record. Bounded:
/// a summary per step (at most [`MAX_STEPS`]), open approval ids (at most
/// [`MAX_APPROVALS`]); events, transcripts and outputs stay in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// The CR's `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The job's summary status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `Ready` (succeeded), `Reconciling` (work in progress), `Stalled` (blocked or failed),
    /// `AwaitingApproval`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The step running, waiting or last failed (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// The first open approval request, if any (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_approval: Option<String>,
    /// Open approval request ids (decide them with `george approve <id>` or the API).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub open_approvals: Vec<String>,
    /// One summary per step, in template order (keyed by `id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub steps: Vec<StepSummary>,
    /// Steps beyond [`MAX_STEPS`] not listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_omitted: Option<u32>,
    /// George's generation of the job: its definition's revision in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub george_generation: Option<i64>,
    /// The commit the job's current generation was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Tokens used by every step attempt so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// When the engine last wrote the job (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: Option<String>,
}

/// One step of a job, in a [`JobStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepSummary {
    /// The step id.
    pub id: String,
    /// `Pending`, `Ready`, `Running`, `Succeeded`, `Failed`, `Blocked`,
    /// `AwaitingApproval`, `Deferred`, `Cancelled`.
    pub state: String,
    /// Attempts started.
    pub attempt: u32,
    /// Why it failed, is blocked or deferred (shortened to [`MAX_MESSAGE`] characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1600))]
    pub message: Option<String>,
    /// The approval request it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// When a deferred or failed step runs again (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub next_attempt_at: Option<String>,
}
