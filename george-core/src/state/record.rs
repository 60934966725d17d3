//! Job and step records: what a store keeps per job (the observed state).

use serde::{Deserialize, Serialize};

use super::StepState;
use crate::provider::Usage;

/// A human's rejection of a plan, kept on the step so the next planning attempt sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The rejected plan's summary.
    pub plan: String,
    /// Why it was rejected, in the human's words.
    pub reason: String,
    /// Who rejected it (`human:<id>`).
    pub by: String,
    /// The approval request that was rejected.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request: String,
    /// The rejected plan's digest ([`Plan::digest`](super::Plan::digest)).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
}

/// The link from a planning step to the human approval of its plan: set when the
/// request is approved, checked again when the plan is executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedPlan {
    /// The approval request's id.
    pub request: String,
    /// The approved plan's digest ([`Plan::digest`](super::Plan::digest)).
    pub digest: String,
    /// The job generation the approval belongs to.
    pub generation: u64,
    /// Whether an `execute_approved` step has run it to the end.
    #[serde(default)]
    pub executed: bool,
}

/// The recorded effect of one approved action: written durably right after the action
/// ran, so an action whose effect was recorded is never run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEffect {
    /// 1-based index of the action in the approved plan.
    pub index: usize,
    /// The idempotency key it ran under (`<approval id>/<index>`).
    pub key: String,
    /// The tool.
    pub tool: String,
    /// What the tool returned.
    pub content: String,
    /// Structured data the tool returned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// The observed state of one step of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step id from the template (shared by every copy of the record, and with the
    /// compiled template).
    pub id: std::sync::Arc<str>,
    /// Current state.
    #[serde(flatten)]
    pub state: StepState,
    /// Attempts started so far.
    pub attempt: u32,
    /// Outputs, once succeeded (a JSON object). Shared: a record is copied on every
    /// change, its outputs are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<std::sync::Arc<serde_json::Value>>,
    /// The last reason: why it failed, is blocked, or is deferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Rejected plans, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejections: Vec<Rejection>,
    /// For a planning step that succeeded by a human's approval: which approval.
    /// Outputs without it are never executed as an approved plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Box<ApprovedPlan>>,
    /// For an `execute_approved` step: the approved actions that have taken effect, in
    /// order (kept across attempts, so none runs twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<ActionEffect>,
    /// Tokens used by all attempts of this step.
    #[serde(default, skip_serializing_if = "Usage::is_zero")]
    pub usage: Usage,
    /// The jobs this step's success resolved (`report_success {resolves}`), recorded
    /// with the outcome; the engine then ends each of them (see
    /// [`JobRecord::resolved_by`]), and repairs an interrupted one on restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolves: Vec<Resolves>,
    /// The child jobs this step ordered ([sub-jobs](crate::children)), in order,
    /// across attempts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<crate::children::ChildLink>,
    /// Set by the engine (never by an agent) when the step succeeded at autonomy
    /// `autonomous` although its approval is required: its agent made its changes
    /// itself, so an `execute_approved` step after it runs nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub autonomous: bool,
}

/// One job a step's success resolves, and the generation of it that was checked (a
/// job edited since is not resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolves {
    /// The job.
    pub job: String,
    /// Its generation when the agent reported.
    pub generation: u64,
}

impl StepRecord {
    /// A new `Pending` step.
    pub fn new(id: impl Into<std::sync::Arc<str>>) -> Self {
        StepRecord {
            id: id.into(),
            state: StepState::Pending,
            attempt: 0,
            outputs: None,
            message: None,
            rejections: Vec::new(),
            approved: None,
            effects: Vec::new(),
            usage: Usage::default(),
            resolves: Vec::new(),
            children: Vec::new(),
            autonomous: false,
        }
    }
}

/// Whether two step ids are equal. Sibling ids often have the same length (`s1`, `s2`;
/// `plan`, `test`), where `==` calls `memcmp` for each mismatch of a lookup; their first
/// and last bytes are compared first, which rejects almost every mismatch inline.
#[inline]
pub(crate) fn same_id(a: &str, b: &str) -> bool {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    x.len() == y.len() && x.first() == y.first() && x.last() == y.last() && x == y
}

/// The summary status of a job, derived from its steps by the reconciler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
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
    /// Cancelled (removed from Git).
    Cancelled,
}

impl JobStatus {
    /// `Succeeded`, `Failed` or `Cancelled`.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// The status's name.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Pending => "Pending",
            JobStatus::Running => "Running",
            JobStatus::AwaitingApproval => "AwaitingApproval",
            JobStatus::Blocked => "Blocked",
            JobStatus::Succeeded => "Succeeded",
            JobStatus::Failed => "Failed",
            JobStatus::Cancelled => "Cancelled",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The observed state of one job: one record per `Job` manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// `metadata.name` of the Job.
    pub name: String,
    /// Starts at 1; incremented each time the job's desired definition changes.
    pub generation: u64,
    /// Hash of the desired definition (job, template, agents) of `generation`.
    pub spec_hash: u64,
    /// The commit the current generation was built from (shared: a record is copied on
    /// every change).
    pub commit: std::sync::Arc<str>,
    /// The repository path of the Job manifest (`jobs/...yaml`), shared.
    pub path: std::sync::Arc<str>,
    /// The template name, shared.
    pub template: std::sync::Arc<str>,
    /// Summary status.
    pub status: JobStatus,
    /// Whether the manifest was removed from Git (and the job kept by policy, or cancelled).
    #[serde(default)]
    pub removed: bool,
    /// The job's `on_removal: keep` policy, recorded so it is known after the manifest is gone.
    #[serde(default)]
    pub keep_on_removal: bool,
    /// Per-step state, in template order. Each step is shared (`Arc`): a record is
    /// copied on every change, and a change touches one step, which
    /// [`step_mut`](Self::step_mut) (`Arc::make_mut`) copies alone. Serialized as a
    /// plain list.
    pub steps: Vec<std::sync::Arc<StepRecord>>,
    /// Optimistic-concurrency revision: set by the store; every write must name the
    /// revision it read, and a stale one is a `Conflict`.
    pub revision: u64,
    /// Creation time.
    pub created_at_ms: u64,
    /// Last write time.
    pub updated_at_ms: u64,
    /// What the job works on (the job's `target` over its template's): free keys, see
    /// [`crate::model::JobSpec::target`]; empty when it has none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub target: std::collections::BTreeMap<String, String>,
    /// Set when another job's success resolved this one: the job is `Succeeded` (its
    /// unfinished steps `Cancelled`) whatever its steps say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<ResolvedBy>,
    /// For a child job ([sub-jobs](crate::children)): who ordered it, with what, at
    /// which commit. `None` for a job from a manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_by: Option<crate::children::OrderedBy>,
}

/// The step attempt whose `report_success {resolves}` ended a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedBy {
    /// The reporting job.
    pub job: String,
    /// Its step.
    pub step: String,
    /// The attempt.
    pub attempt: u32,
}

impl std::fmt::Display for ResolvedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} (attempt {})", self.job, self.step, self.attempt)
    }
}

impl JobRecord {
    /// The canonical key of the job's target ([`crate::model::target_key`]).
    pub fn target_key(&self) -> String {
        crate::model::target_key(&self.target)
    }

    /// The step with `id`.
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| same_id(&s.id, id)).map(|s| &**s)
    }

    /// The step with `id`, mutably.
    pub fn step_mut(&mut self, id: &str) -> Option<&mut StepRecord> {
        self.steps
            .iter_mut()
            .find(|s| same_id(&s.id, id))
            .map(std::sync::Arc::make_mut)
    }

    /// Every step, mutably (each one shared with other copies of the record is copied).
    pub fn steps_mut(&mut self) -> impl Iterator<Item = &mut StepRecord> {
        self.steps.iter_mut().map(std::sync::Arc::make_mut)
    }

    /// Tokens and cost of the whole job: the sum over its steps (all attempts).
    pub fn usage(&self) -> Usage {
        let mut total = Usage::default();
        for s in &self.steps {
            total.add(&s.usage);
        }
        total
    }

    /// Whether the job is at rest: finished, or waiting for a person (an approval, a
    /// block) with no step ready or running. Nothing this engine does moves it until an
    /// outside event (a decision, a commit, an operator's action) does, so the engine's
    /// cache drops its record and reads it from the store when that event comes; this is
    /// what keeps an idle job's memory to its desired state and a cache slot.
    pub fn at_rest(&self) -> bool {
        let waiting_or_done = self.status.is_finished()
            || matches!(
                self.status,
                JobStatus::AwaitingApproval | JobStatus::Blocked
            );
        waiting_or_done
            && !self
                .steps
                .iter()
                .any(|s| matches!(s.state, StepState::Ready | StepState::Running { .. }))
    }

    /// When the job next needs the reconciler (ms since the Unix epoch), or `None`
    /// when only an outside event (a human's decision, a new commit) can move it.
    ///
    /// The earliest of: `updated_at_ms` for a `Ready` step; a `Running` step's lease
    /// expiry; the end of a deferral or a backoff. A job that is not finished, with
    /// `Pending` steps and nothing else in flight or waiting, is due at `updated_at_ms`
    /// (its next steps were not made ready, e.g. after a crash between two writes).
    /// Stores keep this per job for [`StateStore::claim_due`](crate::store::StateStore::claim_due).
    pub fn wake_at_ms(&self) -> Option<u64> {
        let mut wake: Option<u64> = None;
        let (mut pending, mut waiting) = (false, false);
        for s in &self.steps {
            let at = match &s.state {
                StepState::Ready => Some(self.updated_at_ms),
                StepState::Running { lease_until_ms, .. } => Some(*lease_until_ms),
                StepState::Failed {
                    retry_at_ms: Some(t),
                } => Some(*t),
                StepState::Deferred { until_ms } => Some(*until_ms),
                StepState::Pending => {
                    pending = true;
                    None
                }
                StepState::AwaitingApproval { .. }
                | StepState::Blocked
                | StepState::WaitingForChildren { .. } => {
                    waiting = true;
                    None
                }
                StepState::Succeeded | StepState::Failed { .. } | StepState::Cancelled => None,
            };
            if let Some(at) = at {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        match wake {
            None if pending && !waiting && !self.status.is_finished() => Some(self.updated_at_ms),
            w => w,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_change_to_one_step_copies_that_step_only() {
        let mut rec: JobRecord = serde_json::from_value(serde_json::json!({
            "name": "j", "generation": 1, "spec_hash": 1, "commit": "c", "path": "jobs/j.yaml",
            "template": "t", "status": "running", "revision": 1, "created_at_ms": 0,
            "updated_at_ms": 0,
            "steps": [{"id": "a", "state": "succeeded", "attempt": 1},
                      {"id": "b", "state": "ready", "attempt": 0},
                      {"id": "c", "state": "pending", "attempt": 0}],
        }))
        .expect("record");
        let before = rec.clone();
        rec.step_mut("b").expect("b").state = StepState::Succeeded;
        let shared: Vec<bool> = before
            .steps
            .iter()
            .zip(&rec.steps)
            .map(|(x, y)| Arc::ptr_eq(x, y))
            .collect();
        assert_eq!(shared, [true, false, true]);
        assert_eq!(
            before.steps[1].state,
            StepState::Ready,
            "the copy kept its own"
        );
        // Serialized as a plain list, as before steps were shared.
        let json = serde_json::to_value(&rec).expect("json");
        assert_eq!(json["steps"][1]["state"], "succeeded");
    }

    #[test]
    fn step_ids_compare_as_strings() {
        for (a, b, want) in [
            ("s1", "s1", true),
            ("s1", "s2", false),
            ("s1", "t1", false),
            ("plan", "test", false),
            ("plan", "plbn", false),
            ("plan", "plan", true),
            ("", "", true),
            ("", "a", false),
            ("a", "a", true),
            ("é", "é", true),
            ("é", "è", false),
            ("step-10", "step-1", false),
        ] {
            assert_eq!(same_id(a, b), want, "{a:?} {b:?}");
            assert_eq!(same_id(a, b), a == b, "{a:?} {b:?}");
        }
    }
}
