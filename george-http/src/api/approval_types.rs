//! The API's approval shapes (version 1).

use george_core::engine::preview::ActionPreview;
use george_core::state::{ApprovalRequest, ApprovalStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiApprovalStatus {
    /// Waiting for a decision.
    Open,
    /// Approved: the plan runs (or ran).
    Approved,
    /// Rejected: the step planned again with the reason.
    Rejected,
    /// Cancelled before anyone decided (a new generation, the job's removal or
    /// cancellation).
    Cancelled,
}

/// One approval request in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalSummary {
    /// The request's id (URL-safe).
    pub id: String,
    /// The job.
    pub job: String,
    /// The planning step.
    pub step: String,
    /// The job generation the plan was made for.
    pub generation: u64,
    /// The attempt that produced the plan.
    pub attempt: u32,
    /// The agent that proposed it.
    pub agent: String,
    /// Open or decided.
    pub status: ApiApprovalStatus,
    /// The plan's summary.
    pub summary: String,
    /// How many actions the plan has.
    pub actions: usize,
    /// The plan's digest (`sha256:<hex>` of its canonical JSON).
    pub digest: String,
    /// When it was requested.
    pub requested_at_ms: u64,
}

/// One action of a plan: a tool call, exactly as it runs once approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiPlannedAction {
    /// The tool.
    pub tool: String,
    /// Its arguments (a JSON object).
    pub arguments: Value,
}

/// Who may decide a request: the step's rule at the request's generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiApprovalRule {
    /// `user:<id>` and `group:<name>` entries; empty: any identity with the `decide` role.
    pub approvers: Vec<String>,
    /// Distinct approvals needed.
    pub min_approvals: u32,
    /// Whether the author of the job's commit may not approve.
    pub forbid_self_approval: bool,
}

/// One approval of a request that needs several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiVote {
    /// Who (`human:<id>`).
    pub by: String,
    /// When.
    pub at_ms: u64,
    /// The note, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One approval request in full: the plan, its digest, the rule and the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: ApprovalSummary,
    /// The exact actions that run once approved.
    pub plan: Vec<ApiPlannedAction>,
    /// Who may decide.
    pub rule: ApiApprovalRule,
    /// The author of the commit the job's generation was built from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_author: Option<String>,
    /// Approvals so far, while more are needed.
    pub votes: Vec<ApiVote>,
    /// Who decided (`human:<id>`), once approved or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When it was decided or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_ms: Option<u64>,
    /// The approval's note, the rejection's reason, or why it was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_text: Option<String>,
    /// What each action would change if it ran now, in plan order (one entry per
    /// action): computed by the tools without changing anything, for the human who
    /// decides. Filled by `GET /approvals/{id}`; empty in the answers to decisions.
    /// For a decided request it shows what running the plan *again* would do (a Git
    /// commit already made previews as "already committed").
    #[serde(default)]
    pub previews: Vec<ApiActionPreview>,
}

/// What one action of a plan would change (an entry of an approval's `previews`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiActionPreview {
    /// The action's 1-based index in the plan.
    pub index: usize,
    /// The tool.
    pub tool: String,
    /// What the tool says the call would change; absent when the tool cannot tell,
    /// is not registered, or its preview failed (then `error` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<ApiToolPreview>,
    /// Why there is no preview: the tool is not registered, its preview failed or
    /// took too long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A tool's preview of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiToolPreview {
    /// What the call would do and against what (e.g. the branch and its head), or why
    /// it would be refused.
    pub summary: String,
    /// The file changes as a unified diff, `git diff` style (`diff --git` headers,
    /// `---`/`+++` lines, `@@` hunks with 3 lines of context); at most 256 KiB, and 2 MiB
    /// for all the actions of a plan, cut at a line end (then `truncated`). Absent when
    /// no file would change (or nothing was left of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The call would be refused or fail as it stands (a denied path, an absent text
    /// to replace…); `summary` says why.
    pub is_error: bool,
    /// The diff was cut to its size cap.
    pub truncated: bool,
}

impl ApiActionPreview {
    pub(crate) fn of(p: &ActionPreview) -> Self {
        ApiActionPreview {
            index: p.index,
            tool: p.tool.clone(),
            preview: p.preview.as_ref().map(|t| ApiToolPreview {
                summary: t.summary.clone(),
                diff: t.diff.clone(),
                is_error: t.is_error,
                truncated: t.truncated,
            }),
            error: p.error.clone(),
        }
    }
}

impl ApprovalSummary {
    pub(crate) fn of(r: &ApprovalRequest) -> Self {
        ApprovalSummary {
            id: r.id.clone(),
            job: r.job.clone(),
            step: r.step.clone(),
            generation: r.generation,
            attempt: r.attempt,
            agent: r.agent.clone(),
            status: match r.status {
                ApprovalStatus::Open => ApiApprovalStatus::Open,
                ApprovalStatus::Approved { .. } => ApiApprovalStatus::Approved,
                ApprovalStatus::Rejected { .. } => ApiApprovalStatus::Rejected,
                ApprovalStatus::Cancelled { .. } => ApiApprovalStatus::Cancelled,
            },
            summary: r.plan.summary.clone(),
            actions: r.plan.actions.len(),
            digest: r.digest.clone(),
            requested_at_ms: r.requested_at_ms,
        }
    }
}

impl ApprovalDetail {
    pub(crate) fn of(r: &ApprovalRequest) -> Self {
        let (decided_by, decided_at_ms, decision_text) = match &r.status {
            ApprovalStatus::Open => (None, None, None),
            ApprovalStatus::Approved { by, at_ms, note } => {
                (Some(by.clone()), Some(*at_ms), note.clone())
            }
            ApprovalStatus::Rejected { by, at_ms, reason } => {
                (Some(by.clone()), Some(*at_ms), Some(reason.clone()))
            }
            ApprovalStatus::Cancelled { at_ms, reason } => {
                (None, Some(*at_ms), Some(reason.clone()))
            }
        };
        ApprovalDetail {
            summary: ApprovalSummary::of(r),
            plan: r
                .plan
                .actions
                .iter()
                .map(|a| ApiPlannedAction {
                    tool: a.tool.clone(),
                    arguments: a.arguments.clone(),
                })
                .collect(),
            rule: ApiApprovalRule {
                approvers: r.rule.approvers.clone(),
                min_approvals: r.rule.min_approvals.max(1),
                forbid_self_approval: r.rule.forbid_self_approval,
            },
            commit_author: r.commit_author.clone(),
            votes: r
                .votes
                .iter()
                .map(|v| ApiVote {
                    by: v.by.clone(),
                    at_ms: v.at_ms,
                    note: v.note.clone(),
                })
                .collect(),
            decided_by,
            decided_at_ms,
            decision_text,
            previews: Vec::new(),
        }
    }
}

/// A list of approval requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalList {
    /// Oldest request first.
    pub approvals: Vec<ApprovalSummary>,
}

/// An approval: an optional note and, to be sure the plan is the one shown, its digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// A note for the event log (at most 4,096 characters).
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub note: Option<String>,
    /// The digest of the plan the human saw; the decision is refused (409) when it is
    /// not the request's.
    #[serde(default)]
    pub digest: Option<String>,
}

/// A rejection: the reason (required; handed to the next planning attempt) and,
/// optionally, the digest of the plan the human saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (1 to 4,096 characters, not blank).
    #[schema(min_length = 1, max_length = 4096, pattern = "\\S")]
    pub reason: String,
    /// The digest of the plan the human saw.
    #[serde(default)]
    pub digest: Option<String>,
}
