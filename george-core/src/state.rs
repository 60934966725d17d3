//! Observed state: job and step records, the step state machine, events and approvals.
//!
//! Times are milliseconds since the Unix epoch (`*_ms`), as given by the engine's
//! [`Clock`](crate::clock::Clock).

use serde::{Deserialize, Serialize};

use crate::provider::Usage;

/// The state of one step. See [`StepState::apply`] for the transition table.
///
/// ```text
/// Pending → Ready → Running → {Succeeded | Failed | Blocked | AwaitingApproval | Deferred}
/// AwaitingApproval → {Succeeded (approved) | Ready (rejected: feedback added) | Cancelled}
/// Deferred(until) → Ready ;  Failed(retryable) → Ready ;  Running → Ready (interrupted)
/// Running → WaitingForChildren → {Ready (every child finished) | Failed (a child failed)}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for its dependencies.
    Pending,
    /// Dependencies met; waiting for a free slot.
    Ready,
    /// An attempt is in flight, held by `holder` under a lease until `lease_until_ms`.
    Running {
        /// The engine that holds the attempt (shared: records are copied often, and
        /// the engine's id is the same in all of them).
        holder: std::sync::Arc<str>,
        /// Lease expiry; past it another engine may take the attempt over.
        lease_until_ms: u64,
    },
    /// Done, with outputs in [`StepRecord::outputs`].
    Succeeded,
    /// The attempt failed; `retry_at_ms` is set while the retry policy allows another attempt.
    Failed {
        /// When the next attempt may start; `None`: terminal failure.
        retry_at_ms: Option<u64>,
    },
    /// The agent lacks a capability or a condition is not met; it stopped and said why
    /// ([`StepRecord::message`]). A new generation of the job makes it `Ready` again.
    Blocked,
    /// A plan waits for a human's decision on approval request `request`.
    AwaitingApproval {
        /// The id of the [`ApprovalRequest`].
        request: String,
    },
    /// Waiting until `until_ms` before checking again.
    Deferred {
        /// When the step becomes `Ready` again.
        until_ms: u64,
    },
    /// Cancelled (job removed from Git, or cancelled by a human).
    Cancelled,
    /// The attempt ordered child jobs with `wait: true` ([sub-jobs](crate::children)) and
    /// ended waiting for them. Not `AwaitingApproval`: no human is asked, and it cannot be
    /// deferred; stored with the record, so it survives restarts. When every child is
    /// finished the step becomes `Ready` and is attempted again with their outputs.
    WaitingForChildren {
        /// The child jobs' names. (Not `children`: the state is flattened into
        /// [`StepRecord`], whose `children` are the links to every child it ordered.)
        waiting_on: Vec<String>,
    },
}

/// What happens to a step: the input of [`StepState::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEvent {
    /// Dependencies succeeded (from `Pending`), a deferral or backoff ended, or a blocked
    /// step's job got a new generation.
    MakeReady,
    /// An engine claims the attempt.
    Start {
        /// The engine's id.
        holder: std::sync::Arc<str>,
        /// Lease expiry.
        lease_until_ms: u64,
    },
    /// The holder extends its lease.
    Renew {
        /// New lease expiry.
        lease_until_ms: u64,
    },
    /// The attempt succeeded.
    Succeed,
    /// The attempt failed; `retry_at_ms` when another attempt is allowed.
    Fail {
        /// When to retry, or `None` for a terminal failure.
        retry_at_ms: Option<u64>,
    },
    /// The attempt found the step cannot proceed.
    Block,
    /// The attempt produced a plan that needs a human.
    RequestApproval {
        /// The approval request id.
        request: String,
    },
    /// The attempt asked to be checked again later.
    Defer {
        /// When.
        until_ms: u64,
    },
    /// A human approved the plan.
    Approve,
    /// A human rejected the plan: a new attempt re-plans with the feedback.
    Reject,
    /// The attempt was interrupted (engine stopped, lease expired): it runs again.
    Interrupt,
    /// Cancel the step.
    Cancel,
    /// The attempt ordered child jobs and waits for them.
    WaitForChildren {
        /// The child jobs' names.
        children: Vec<String>,
    },
    /// A child the step waits for failed, and its order said `on_child_failure: fail`.
    ChildFailed,
}

/// A transition that the state machine does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no transition from {from} on {event}")]
pub struct InvalidTransition {
    /// The state's name.
    pub from: &'static str,
    /// The event's name.
    pub event: &'static str,
}

impl StepState {
    /// The state's name (`pending`, `running`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Ready => "ready",
            StepState::Running { .. } => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed { .. } => "failed",
            StepState::Blocked => "blocked",
            StepState::AwaitingApproval { .. } => "awaiting_approval",
            StepState::Deferred { .. } => "deferred",
            StepState::Cancelled => "cancelled",
            StepState::WaitingForChildren { .. } => "waiting_for_children",
        }
    }

    /// `Succeeded`, `Cancelled` or a `Failed` with no retry left.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            StepState::Succeeded | StepState::Cancelled | StepState::Failed { retry_at_ms: None }
        )
    }

    /// The transition table. Everything not listed is an [`InvalidTransition`]; in
    /// particular `AwaitingApproval` has no `Defer` edge: a step that waits for a human
    /// cannot also be deferred.
    ///
    /// | from | event | to |
    /// |---|---|---|
    /// | Pending, Deferred, Failed(retry), Blocked, WaitingForChildren | MakeReady | Ready |
    /// | Ready | Start | Running |
    /// | Running | Renew | Running (new lease) |
    /// | Running | Succeed / Fail / Block / RequestApproval / Defer | the matching state |
    /// | Running | Interrupt | Ready |
    /// | AwaitingApproval | Approve | Succeeded |
    /// | AwaitingApproval | Reject | Ready |
    /// | Running | WaitForChildren | WaitingForChildren |
    /// | WaitingForChildren | ChildFailed | Failed (no retry) |
    /// | any but Succeeded, Cancelled | Cancel | Cancelled |
    pub fn apply(&self, event: StepEvent) -> Result<StepState, InvalidTransition> {
        use StepEvent as E;
        use StepState as S;
        let next = match (self, event) {
            (
                S::Pending | S::Deferred { .. } | S::Blocked | S::WaitingForChildren { .. },
                E::MakeReady,
            ) => S::Ready,
            (
                S::Failed {
                    retry_at_ms: Some(_),
                },
                E::MakeReady,
            ) => S::Ready,
            (
                S::Ready,
                E::Start {
                    holder,
                    lease_until_ms,
                },
            ) => S::Running {
                holder,
                lease_until_ms,
            },
            (S::Running { holder, .. }, E::Renew { lease_until_ms }) => S::Running {
                holder: holder.clone(),
                lease_until_ms,
            },
            (S::Running { .. }, E::Succeed) => S::Succeeded,
            (S::Running { .. }, E::Fail { retry_at_ms }) => S::Failed { retry_at_ms },
            (S::Running { .. }, E::Block) => S::Blocked,
            (S::Running { .. }, E::RequestApproval { request }) => S::AwaitingApproval { request },
            (S::Running { .. }, E::Defer { until_ms }) => S::Deferred { until_ms },
            (S::Running { .. }, E::Interrupt) => S::Ready,
            (S::AwaitingApproval { .. }, E::Approve) => S::Succeeded,
            (S::AwaitingApproval { .. }, E::Reject) => S::Ready,
            (S::Running { .. }, E::WaitForChildren { children }) => S::WaitingForChildren {
                waiting_on: children,
            },
            (S::WaitingForChildren { .. }, E::ChildFailed) => S::Failed { retry_at_ms: None },
            (s, E::Cancel) if !matches!(s, S::Succeeded | S::Cancelled) => S::Cancelled,
            (s, e) => {
                return Err(InvalidTransition {
                    from: s.name(),
                    event: e.name(),
                });
            }
        };
        Ok(next)
    }
}

impl StepEvent {
    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            StepEvent::MakeReady => "make_ready",
            StepEvent::Start { .. } => "start",
            StepEvent::Renew { .. } => "renew",
            StepEvent::Succeed => "succeed",
            StepEvent::Fail { .. } => "fail",
            StepEvent::Block => "block",
            StepEvent::RequestApproval { .. } => "request_approval",
            StepEvent::Defer { .. } => "defer",
            StepEvent::Approve => "approve",
            StepEvent::Reject => "reject",
            StepEvent::Interrupt => "interrupt",
            StepEvent::Cancel => "cancel",
            StepEvent::WaitForChildren { .. } => "wait_for_children",
            StepEvent::ChildFailed => "child_failed",
        }
    }
}

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
    /// The rejected plan's digest ([`Plan::digest`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
}

/// The link from a planning step to the human approval of its plan: set when the
/// request is approved, checked again when the plan is executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedPlan {
    /// The approval request's id.
    pub request: String,
    /// The approved plan's digest ([`Plan::digest`]).
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
    /// The commit the current generation was built from.
    pub commit: String,
    /// The repository path of the Job manifest (`jobs/...yaml`).
    pub path: String,
    /// The template name.
    pub template: String,
    /// Summary status.
    pub status: JobStatus,
    /// Whether the manifest was removed from Git (and the job kept by policy, or cancelled).
    #[serde(default)]
    pub removed: bool,
    /// The job's `on_removal: keep` policy, recorded so it is known after the manifest is gone.
    #[serde(default)]
    pub keep_on_removal: bool,
    /// Per-step state, in template order.
    pub steps: Vec<StepRecord>,
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
        self.steps.iter().find(|s| *s.id == *id)
    }

    /// The step with `id`, mutably.
    pub fn step_mut(&mut self, id: &str) -> Option<&mut StepRecord> {
        self.steps.iter_mut().find(|s| *s.id == *id)
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

/// One entry of a job's append-only event log (the audit trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The job.
    pub job: String,
    /// 1, 2, 3, ... without gaps within a job.
    pub seq: u64,
    /// When.
    pub at_ms: u64,
    /// Who: `engine`, `agent:<name>`, `human:<name>`, `git`.
    pub actor: String,
    /// What: `job.created`, `step.started`, `tool.called`, `approval.rejected`, ...
    pub action: String,
    /// The step, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Free-form detail (a reason, a tool name and result, a commit).
    pub detail: String,
}

/// An event to append; the store assigns the job and the sequence number.
///
/// The actor and the step are shared (`Arc<str>`) and the action is usually static, so
/// an event is one allocation (its detail) to make and to copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// Who: `engine`, `agent:<name>`, `human:<name>`, `git`, `policy:<name>`.
    pub actor: std::sync::Arc<str>,
    /// What: an [`EventAction`](crate::events::EventAction)'s name.
    pub action: std::borrow::Cow<'static, str>,
    /// The step, if any.
    pub step: Option<std::sync::Arc<str>>,
    /// Detail.
    pub detail: String,
}

impl NewEvent {
    /// A new event. `action` is an [`EventAction`](crate::events::EventAction), a
    /// `&'static str` or a `String`.
    pub fn new(
        at_ms: u64,
        actor: impl Into<std::sync::Arc<str>>,
        action: impl Into<std::borrow::Cow<'static, str>>,
        step: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        NewEvent {
            at_ms,
            actor: actor.into(),
            action: action.into(),
            step: step.map(Into::into),
            detail: detail.into(),
        }
    }

    /// A new event about `step`, with an actor and a step id already shared: nothing
    /// but the detail is allocated.
    pub fn shared(
        at_ms: u64,
        actor: &std::sync::Arc<str>,
        action: crate::events::EventAction,
        step: Option<&std::sync::Arc<str>>,
        detail: impl Into<String>,
    ) -> Self {
        NewEvent {
            at_ms,
            actor: actor.clone(),
            action: std::borrow::Cow::Borrowed(action.as_str()),
            step: step.cloned(),
            detail: detail.into(),
        }
    }
}

/// One action of a plan: a tool call, exactly as it will run once approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// The tool's name.
    pub tool: String,
    /// The tool's arguments (a JSON object).
    pub arguments: serde_json::Value,
}

/// A plan submitted for approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// What the plan does and why, for the human.
    pub summary: String,
    /// The exact actions that run once approved.
    #[serde(default)]
    pub actions: Vec<PlannedAction>,
}

impl Plan {
    /// The plan's digest: `sha256:<hex>` of its canonical JSON (object keys sorted, no
    /// whitespace) `{"actions":[{"arguments":…,"tool":…},…],"summary":…}`. A decision
    /// may carry the digest of the plan the human saw; it is refused when it differs.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        let mut canonical = String::with_capacity(256);
        let value = serde_json::json!({ "summary": self.summary, "actions": self.actions });
        write_canonical(&value, &mut canonical);
        let hash = sha2::Sha256::digest(canonical.as_bytes());
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in hash.iter() {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        out
    }
}

/// Canonical JSON: object keys sorted by byte order, no whitespace, strings and numbers
/// as serde_json writes them.
fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// One approver's approval of a request that needs several (`min_approvals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Who (`human:<id>`).
    pub by: String,
    /// When.
    pub at_ms: u64,
    /// An optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The state of an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Open,
    /// Approved.
    Approved {
        /// Who.
        by: String,
        /// When.
        at_ms: u64,
        /// An optional note.
        note: Option<String>,
    },
    /// Rejected.
    Rejected {
        /// Who.
        by: String,
        /// When.
        at_ms: u64,
        /// Why: handed to the next planning attempt.
        reason: String,
    },
    /// Cancelled: a new generation of the job, or the job's removal, made the plan
    /// moot before anyone decided.
    Cancelled {
        /// When.
        at_ms: u64,
        /// Why.
        #[serde(default)]
        reason: String,
    },
}

impl ApprovalStatus {
    /// The state's name, without its details: `open`, `approved`, `rejected` or
    /// `cancelled` (what stores keep in their `status` column).
    pub fn name(&self) -> &'static str {
        match self {
            ApprovalStatus::Open => "open",
            ApprovalStatus::Approved { .. } => "approved",
            ApprovalStatus::Rejected { .. } => "rejected",
            ApprovalStatus::Cancelled { .. } => "cancelled",
        }
    }
}

/// A plan waiting for (or having had) a human's decision.
///
/// A request record is never replaced: it is inserted once `Open`, and its status moves
/// from `Open` to `Approved`, `Rejected` or `Cancelled` once (stores refuse anything
/// else with `Conflict`). While `Open`, approvals of a rule that needs several are
/// collected in `votes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Unique for the life of the store and safe in a URL path: see [`ApprovalRequest::make_id`].
    pub id: String,
    /// The job.
    pub job: String,
    /// The step.
    pub step: String,
    /// The job generation the plan was made for: a decision counts only for it.
    #[serde(default)]
    pub generation: u64,
    /// The attempt that produced the plan.
    pub attempt: u32,
    /// The agent that proposed it.
    pub agent: String,
    /// The plan.
    pub plan: Plan,
    /// The plan's digest ([`Plan::digest`]).
    #[serde(default)]
    pub digest: String,
    /// Who may decide: the step's rule at the request's generation.
    #[serde(default)]
    pub rule: crate::model::ApprovalRule,
    /// The author of the commit the job's generation was built from (`Name <email>`),
    /// when the Git source knows it; used by `forbid_self_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_author: Option<String>,
    /// Approvals so far, while more are needed (`min_approvals` > 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Vote>,
    /// When it was requested.
    pub requested_at_ms: u64,
    /// Open or decided.
    #[serde(flatten)]
    pub status: ApprovalStatus,
}

impl ApprovalRequest {
    /// The id of the request made by `attempt` of `job`/`step` at `generation`:
    /// `<job>~<step>~<generation>~<attempt>`, with the step id escaped so the id holds only
    /// URL-unreserved characters (`[A-Za-z0-9._~-]`; any other byte of the step id, and
    /// `.`, becomes `.xx` in hex). Job names never contain `~` and generations only grow,
    /// so an id is never made twice for the life of a store.
    pub fn make_id(job: &str, step: &str, generation: u64, attempt: u32) -> String {
        let mut id = String::with_capacity(job.len() + step.len() + 16);
        id.push_str(job);
        id.push('~');
        for b in step.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                id.push(char::from(b));
            } else {
                id.push('.');
                id.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                id.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
            }
        }
        id.push('~');
        id.push_str(&generation.to_string());
        id.push('~');
        id.push_str(&attempt.to_string());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awaiting_approval_cannot_be_deferred() {
        let s = StepState::AwaitingApproval {
            request: "j~s~1~1".into(),
        };
        let err = s.apply(StepEvent::Defer { until_ms: 5 }).unwrap_err();
        assert_eq!(err.from, "awaiting_approval");
        assert_eq!(err.event, "defer");
        assert_eq!(s.apply(StepEvent::Approve), Ok(StepState::Succeeded));
        assert_eq!(s.apply(StepEvent::Reject), Ok(StepState::Ready));
    }

    /// The rows of waiting for children, as a table: (from, event, to or refusal).
    #[test]
    fn table_of_waiting_for_children() {
        let running = StepState::Running {
            holder: "e".into(),
            lease_until_ms: 1,
        };
        let waiting = StepState::WaitingForChildren {
            waiting_on: vec!["p--s--k".into()],
        };
        let wait = StepEvent::WaitForChildren {
            children: vec!["p--s--k".into()],
        };
        let rows: Vec<(StepState, StepEvent, Result<StepState, &str>)> = vec![
            (running.clone(), wait.clone(), Ok(waiting.clone())),
            (waiting.clone(), StepEvent::MakeReady, Ok(StepState::Ready)),
            (
                waiting.clone(),
                StepEvent::ChildFailed,
                Ok(StepState::Failed { retry_at_ms: None }),
            ),
            (waiting.clone(), StepEvent::Cancel, Ok(StepState::Cancelled)),
            // Waiting for children is neither deferrable nor a human's to decide, and
            // no attempt is in flight to interrupt.
            (
                waiting.clone(),
                StepEvent::Defer { until_ms: 5 },
                Err("defer"),
            ),
            (waiting.clone(), StepEvent::Approve, Err("approve")),
            (waiting.clone(), StepEvent::Interrupt, Err("interrupt")),
            (waiting.clone(), wait.clone(), Err("wait_for_children")),
            (StepState::Ready, wait.clone(), Err("wait_for_children")),
            (
                StepState::AwaitingApproval {
                    request: "r".into(),
                },
                wait,
                Err("wait_for_children"),
            ),
            (running, StepEvent::ChildFailed, Err("child_failed")),
        ];
        for (from, event, want) in rows {
            let got = from.apply(event.clone());
            match want {
                Ok(to) => assert_eq!(got, Ok(to), "{from:?} on {event:?}"),
                Err(name) => {
                    let e = got.unwrap_err();
                    assert_eq!((e.from, e.event), (from.name(), name), "{from:?}");
                }
            }
        }
        assert!(!waiting.is_terminal());
    }

    #[test]
    fn at_rest_is_finished_or_waiting_for_a_person_with_nothing_to_run() {
        let running = StepState::Running {
            holder: "e".into(),
            lease_until_ms: 1,
        };
        let waiting = StepState::AwaitingApproval {
            request: "r".into(),
        };
        let cases = [
            (JobStatus::Pending, vec![StepState::Pending], false),
            (
                JobStatus::Running,
                vec![StepState::Succeeded, running.clone()],
                false,
            ),
            (JobStatus::Succeeded, vec![StepState::Succeeded], true),
            (
                JobStatus::Failed,
                vec![StepState::Failed { retry_at_ms: None }],
                true,
            ),
            (JobStatus::Cancelled, vec![StepState::Cancelled], true),
            (
                JobStatus::AwaitingApproval,
                vec![waiting.clone(), StepState::Pending],
                true,
            ),
            (
                JobStatus::AwaitingApproval,
                vec![waiting.clone(), StepState::Ready],
                false,
            ),
            (JobStatus::AwaitingApproval, vec![waiting, running], false),
            (JobStatus::Blocked, vec![StepState::Blocked], true),
        ];
        for (status, states, want) in cases {
            let rec = JobRecord {
                name: "j".into(),
                generation: 1,
                spec_hash: 0,
                commit: String::new(),
                path: String::new(),
                template: String::new(),
                status,
                removed: false,
                keep_on_removal: false,
                steps: states
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let mut r = StepRecord::new(format!("s{i}"));
                        r.state = s.clone();
                        r
                    })
                    .collect(),
                revision: 1,
                created_at_ms: 0,
                updated_at_ms: 0,
                target: Default::default(),
                resolved_by: None,
                ordered_by: None,
            };
            assert_eq!(rec.at_rest(), want, "{status:?} {states:?}");
        }
    }

    #[test]
    fn terminal_failure_is_not_retried() {
        let s = StepState::Failed { retry_at_ms: None };
        assert!(s.is_terminal());
        assert!(s.apply(StepEvent::MakeReady).is_err());
        let s = StepState::Failed {
            retry_at_ms: Some(10),
        };
        assert_eq!(s.apply(StepEvent::MakeReady), Ok(StepState::Ready));
    }

    #[test]
    fn succeeded_cannot_be_cancelled_or_restarted() {
        assert!(StepState::Succeeded.apply(StepEvent::Cancel).is_err());
        assert!(
            StepState::Succeeded
                .apply(StepEvent::Start {
                    holder: "e".into(),
                    lease_until_ms: 1
                })
                .is_err()
        );
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn approval_ids_are_url_safe_and_distinct() {
        let a = ApprovalRequest::make_id("job.a", "plan/x", 2, 1);
        assert_eq!(a, "job.a~plan.2fx~2~1");
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
        );
        assert_ne!(
            ApprovalRequest::make_id("j", "a.b", 1, 1),
            ApprovalRequest::make_id("j", "a.2eb", 1, 1)
        );
        assert_ne!(
            ApprovalRequest::make_id("j", "s", 1, 1),
            ApprovalRequest::make_id("j", "s", 2, 1)
        );
    }

    #[test]
    fn plan_digest_is_canonical_and_covers_actions() {
        let p = |args: serde_json::Value| Plan {
            summary: "s".into(),
            actions: vec![PlannedAction {
                tool: "t".into(),
                arguments: args,
            }],
        };
        let a = p(serde_json::json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}));
        let b: Plan = serde_json::from_str(
            r#"{"actions":[{"tool":"t","arguments":{"b":[1,{"x":1,"y":2}],"a":1}}],"summary":"s"}"#,
        )
        .unwrap();
        assert_eq!(a.digest(), b.digest());
        assert!(a.digest().starts_with("sha256:"));
        assert_eq!(a.digest().len(), 7 + 64);
        assert_ne!(a.digest(), p(serde_json::json!({"a": 2})).digest());
    }
}
