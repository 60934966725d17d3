//! Pure transitions for an attempt's outcome ([`record_outcome`]) and a human's decision
//! ([`record_decision`]): given the job record, what changes and which events say so.
//! The engine's shell loads, calls these, and commits the result; nothing here does I/O.

use crate::state::record::same_id;
use serde_json::{Value, json};

use crate::approval::{Approver, Decision, Verdict, check_rule};
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventAction;
use crate::model::ApprovalRule;
use crate::state::{
    ApprovalRequest, ApprovalStatus, ApprovedPlan, JobRecord, NewEvent, Plan, Rejection, StepEvent,
    StepState, Vote,
};

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done, with outputs (a JSON object).
    Succeeded(Value),
    /// Failed; `retryable` when another attempt may succeed.
    Failed {
        /// Why.
        reason: String,
        /// Whether a retry may help.
        retryable: bool,
    },
    /// Cannot proceed.
    Blocked(String),
    /// A plan for a human.
    NeedsApproval(Plan),
    /// Check again at `until_ms`.
    Deferred {
        /// When.
        until_ms: u64,
        /// Why.
        reason: String,
    },
    /// Wait for these child jobs ([sub-jobs](crate::children)), then run again.
    WaitForChildren(Vec<String>),
}

/// What [`record_outcome`] needs besides the record and the outcome.
#[derive(Debug, Clone)]
pub struct OutcomeContext<'a> {
    /// Now, in ms since the Unix epoch.
    pub now_ms: u64,
    /// The engine that must hold the attempt's lease.
    pub holder: &'a str,
    /// The attempt whose outcome this is.
    pub attempt: u32,
    /// For a retryable failure: when the next attempt may start (`None`: no retry left).
    pub retry_at_ms: Option<u64>,
    /// The step's agent (`""` for steps without a model).
    pub agent: &'a str,
    /// The agent's actor (`agent:<name>`) when the caller keeps one to share; `None`:
    /// it is formatted from `agent`.
    pub actor: Option<&'a std::sync::Arc<str>>,
    /// The step's approval rule at this generation (stored with a request).
    pub rule: &'a ApprovalRule,
    /// The author of the generation's commit, if known (stored with a request).
    pub commit_author: Option<&'a str>,
    /// For an `execute_approved` step: the planning step whose plan it ran.
    pub executes: Option<&'a str>,
    /// Whether the attempt ran at autonomy `autonomous` in a step whose approval is
    /// required: its agent used write tools itself instead of planning. A success then
    /// marks the step ([`StepRecord::autonomous`](crate::state::StepRecord::autonomous)),
    /// so the `execute_approved` step after it has nothing to run.
    pub autonomous: bool,
}

/// What an outcome or a decision changed besides the record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// Events to append, in order.
    pub events: Vec<NewEvent>,
    /// A new approval request to insert (from `NeedsApproval`).
    pub insert: Option<ApprovalRequest>,
}

fn actor_of(agent: &str) -> std::sync::Arc<str> {
    if agent.is_empty() {
        crate::events::engine_actor()
    } else {
        format!("agent:{agent}").into()
    }
}

/// Records `outcome` of attempt `ctx.attempt` of `step` in `job`, fenced: only while
/// `ctx.holder` holds that attempt's lease. Sets the step's state, outputs, message and
/// (for a plan) a new approval request; re-derives the job's status, with a `job.status`
/// event when it changed. Does not dispatch: the caller reconciles afterwards.
///
/// | step state | outcome | result |
/// |---|---|---|
/// | Running (this holder, this attempt) | Succeeded | Succeeded, outputs set |
/// | Running (…) | Failed | Failed (`retry_at_ms`) |
/// | Running (…) | Blocked / Deferred | Blocked / Deferred |
/// | Running (…) | NeedsApproval | AwaitingApproval, request inserted |
/// | Running (…) | WaitForChildren | WaitingForChildren |
/// | anything else | any | `Conflict`: the lease was lost, nothing changes |
///
/// # Errors
/// `Conflict` when the lease is not held; `NotFound` when the step does not exist.
pub fn record_outcome(
    job: &mut JobRecord,
    step: &str,
    outcome: Outcome,
    ctx: &OutcomeContext<'_>,
) -> Result<Recorded> {
    let now = ctx.now_ms;
    let generation = job.generation;
    // The name and the step are disjoint borrows of the record: the name is not copied.
    let name = job.name.as_str();
    let Some(s) = job.steps.iter_mut().find(|s| same_id(&s.id, step)) else {
        return Err(Error::not_found(format!("job {name} has no step {step}")));
    };
    let s = std::sync::Arc::make_mut(s);
    let held = s.attempt == ctx.attempt
        && matches!(&s.state, StepState::Running { holder, .. } if **holder == *ctx.holder);
    if !held {
        return Err(Error::conflict(format!(
            "attempt {} of {name}/{step} is no longer held by {} (step is {}, attempt {})",
            ctx.attempt,
            ctx.holder,
            s.state.name(),
            s.attempt
        )));
    }
    let mut out = Recorded::default();
    let (event, action, detail) = match outcome {
        Outcome::Succeeded(outputs) => {
            let mut d = String::with_capacity(64);
            d.push_str("succeeded: ");
            crate::text::push_clip_json(&mut d, &outputs, 160);
            s.outputs = Some(std::sync::Arc::new(outputs));
            s.message = None;
            s.autonomous = ctx.autonomous;
            (StepEvent::Succeed, EventAction::StepSucceeded, d)
        }
        Outcome::Failed { reason, retryable } => {
            let retry_at = ctx.retry_at_ms.filter(|_| retryable);
            let d = match retry_at {
                Some(at) => crate::events::detail!(
                    "failed (retry in {} ms): {reason}",
                    at.saturating_sub(now)
                ),
                None => crate::events::detail!("failed: {reason}"),
            };
            s.message = Some(reason);
            (
                StepEvent::Fail {
                    retry_at_ms: retry_at,
                },
                EventAction::StepFailed,
                d,
            )
        }
        Outcome::Blocked(reason) => {
            let d = crate::events::detail!("blocked: {reason}");
            s.message = Some(reason);
            (StepEvent::Block, EventAction::StepBlocked, d)
        }
        Outcome::Deferred { until_ms, reason } => {
            let d =
                crate::events::detail!("deferred {} ms: {reason}", until_ms.saturating_sub(now));
            s.message = Some(reason);
            (StepEvent::Defer { until_ms }, EventAction::StepDeferred, d)
        }
        Outcome::WaitForChildren(children) => {
            let d = format!("waiting for {}", children.join(", "));
            s.message = None;
            (
                StepEvent::WaitForChildren { children },
                EventAction::StepWaiting,
                d,
            )
        }
        Outcome::NeedsApproval(plan) => {
            let id = ApprovalRequest::make_id(name, step, generation, ctx.attempt);
            let digest = plan.digest();
            let d = format!(
                "plan submitted for approval ({id}, {digest}): {}",
                plan.summary
            );
            out.insert = Some(ApprovalRequest {
                id: id.clone(),
                job: name.to_string(),
                step: step.to_string(),
                generation,
                attempt: ctx.attempt,
                agent: ctx.agent.to_string(),
                plan,
                digest,
                rule: ctx.rule.clone(),
                commit_author: ctx.commit_author.map(str::to_string),
                votes: Vec::new(),
                requested_at_ms: now,
                status: ApprovalStatus::Open,
            });
            s.message = None;
            (
                StepEvent::RequestApproval { request: id },
                EventAction::ApprovalRequested,
                d,
            )
        }
    };
    let succeeded = event == StepEvent::Succeed;
    s.state = s
        .state
        .apply(event)
        .map_err(|e| Error::backend(format!("state machine: {e}")))?;
    out.events.push(NewEvent::shared(
        now,
        &ctx.actor.cloned().unwrap_or_else(|| actor_of(ctx.agent)),
        action,
        Some(&s.id),
        detail,
    ));
    if succeeded
        && let Some(src) = ctx.executes
        && let Some(plan) = job.step_mut(src).and_then(|p| p.approved.as_mut())
    {
        plan.executed = true;
    }
    status_event(
        job,
        now,
        "engine",
        format_args!("step {step}"),
        &mut out.events,
    );
    Ok(out)
}

/// Re-derives `job.status`; when it changed, appends a `job.status` event naming `cause`
/// (formatted only then).
pub(crate) fn status_event(
    job: &mut JobRecord,
    now: u64,
    actor: &str,
    cause: std::fmt::Arguments<'_>,
    events: &mut Vec<NewEvent>,
) {
    let status = super::record_status(job);
    if status != job.status {
        events.push(NewEvent::new(
            now,
            if actor == "engine" {
                crate::events::engine_actor()
            } else {
                actor.into()
            },
            EventAction::JobStatus,
            None,
            crate::events::detail!("{} → {status}: {cause}", job.status),
        ));
        job.status = status;
    }
}

/// Records `decision` by `approver` on `request` (the stored request) of `job`.
///
/// Checks, in order, each refusal changing nothing:
/// 1. the request is `Open` — else `Conflict` (decided or cancelled: decided once);
/// 2. it belongs to the job's current generation, and its step waits for it — else
///    `Conflict`;
/// 3. the decision's digest, when given, is the request's — else `Conflict`;
/// 4. the approver passes the request's rule ([`check_rule`]) — else `PermissionDenied`
///    naming the rule; an approver may approve once;
/// 5. a rejection has a reason — else `InvalidInput`.
///
/// Then an approval short of `min_approvals` adds a vote (the request stays `Open`);
/// the last needed approval approves: the step succeeds with the plan as its outputs
/// (`summary`, `actions`, `approval`, `digest`) and an [`ApprovedPlan`] link. A
/// rejection makes the step `Ready` to plan again, with the rejection recorded.
///
/// # Errors
/// As listed; the record and the request are unchanged on error.
pub fn record_decision(
    job: &mut JobRecord,
    request: &mut ApprovalRequest,
    decision: &Decision,
    approver: &Approver,
    now_ms: u64,
) -> Result<Vec<NewEvent>> {
    let id = request.id.clone();
    if request.status != ApprovalStatus::Open {
        return Err(Error::conflict(format!(
            "approval request {id} is no longer open ({})",
            status_text(&request.status)
        )));
    }
    if request.job != job.name || request.generation != job.generation {
        return Err(Error::conflict(format!(
            "approval request {id} was made for generation {} of job {}; the job is at generation {}",
            request.generation, request.job, job.generation
        )));
    }
    let waits = job.step(&request.step).is_some_and(
        |s| matches!(&s.state, StepState::AwaitingApproval { request: r } if *r == id),
    );
    if !waits {
        let state = job.step(&request.step).map_or("gone", |s| s.state.name());
        return Err(Error::conflict(format!(
            "step {} does not wait for request {id} (it is {state})",
            request.step
        )));
    }
    if let Some(seen) = &decision.digest
        && *seen != request.digest
    {
        return Err(Error::conflict(format!(
            "approval request {id}: the decision is for plan {seen}, but the request's plan is {}",
            request.digest
        )));
    }
    let approving = decision.verdict == Verdict::Approve;
    check_rule(
        &request.rule,
        approver,
        request.commit_author.as_deref(),
        approving,
    )
    .map_err(|why| Error::new(ErrorKind::PermissionDenied, format!("{id}: {why}")))?;
    let actor = approver.actor();
    if approving && request.votes.iter().any(|v| v.by == actor) {
        return Err(Error::conflict(format!("{actor} already approved {id}")));
    }
    if !approving && decision.text.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::invalid_input("a rejection needs a reason"));
    }

    let step_id = request.step.clone();
    let mut events = Vec::with_capacity(3);
    let s = job
        .step_mut(&step_id)
        .ok_or_else(|| Error::conflict(format!("step {step_id} no longer exists")))?;
    match decision.verdict {
        Verdict::Approve => {
            let needed = request.rule.min_approvals.max(1) as usize;
            if request.votes.len() + 1 < needed {
                request.votes.push(Vote {
                    by: actor.clone(),
                    at_ms: now_ms,
                    note: decision.text.clone(),
                });
                events.push(NewEvent::new(
                    now_ms,
                    actor,
                    EventAction::ApprovalVoted,
                    Some(&step_id),
                    format!(
                        "approved {id} ({} of {needed} approvals)",
                        request.votes.len()
                    ),
                ));
                return Ok(events);
            }
            s.state = s
                .state
                .apply(StepEvent::Approve)
                .map_err(|e| Error::backend(e.to_string()))?;
            s.outputs = Some(std::sync::Arc::new(json!({
                "summary": request.plan.summary,
                "actions": request.plan.actions,
                "approval": id,
                "digest": request.digest,
            })));
            s.message = None;
            s.approved = Some(Box::new(ApprovedPlan {
                request: id.clone(),
                digest: request.digest.clone(),
                generation: request.generation,
                executed: false,
            }));
            request.status = ApprovalStatus::Approved {
                by: actor.clone(),
                at_ms: now_ms,
                note: decision.text.clone(),
            };
            let by: Vec<&str> = request
                .votes
                .iter()
                .map(|v| v.by.as_str())
                .chain([actor.as_str()])
                .collect();
            events.push(NewEvent::new(
                now_ms,
                actor.clone(),
                EventAction::ApprovalApproved,
                Some(&step_id),
                format!(
                    "approved {id} ({}) by {}{}",
                    request.digest,
                    by.join(", "),
                    decision
                        .text
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                ),
            ));
        }
        Verdict::Reject => {
            let reason = decision.text.clone().unwrap_or_default();
            s.state = s
                .state
                .apply(StepEvent::Reject)
                .map_err(|e| Error::backend(e.to_string()))?;
            s.rejections.push(Rejection {
                plan: request.plan.summary.clone(),
                reason: reason.clone(),
                by: actor.clone(),
                request: id.clone(),
                digest: request.digest.clone(),
            });
            s.message = Some(format!("plan rejected: {reason}"));
            request.status = ApprovalStatus::Rejected {
                by: actor.clone(),
                at_ms: now_ms,
                reason: reason.clone(),
            };
            events.push(NewEvent::new(
                now_ms,
                actor.clone(),
                EventAction::ApprovalRejected,
                Some(&step_id),
                format!("rejected {id}: {reason}"),
            ));
        }
    }
    status_event(
        job,
        now_ms,
        &actor,
        format_args!("decision on {id}"),
        &mut events,
    );
    Ok(events)
}

fn status_text(s: &ApprovalStatus) -> String {
    match s {
        ApprovalStatus::Open => "open".into(),
        ApprovalStatus::Approved { by, .. } => format!("approved by {by}"),
        ApprovalStatus::Rejected { by, .. } => format!("rejected by {by}"),
        ApprovalStatus::Cancelled { reason, .. } => format!("cancelled: {reason}"),
    }
}
