//! From a job record (the store of record) to a `Job` CR's status, and from one status
//! to the next to the Kubernetes Events that tell the story. Pure functions: the same
//! record gives the same status, so an unchanged job is never written again.

use george_core::state::{JobRecord, JobStatus as CoreStatus, StepRecord, StepState};
use kube::runtime::events::EventType;

use crate::crd::{
    Condition, ConditionStatus, JobStatus, MAX_APPROVALS, MAX_MESSAGE, MAX_STEPS, Phase,
    StepSummary,
};

/// RFC 3339, to the second, of a time in milliseconds since the epoch.
pub(crate) fn rfc3339(ms: u64) -> String {
    k8s_openapi::jiff::Timestamp::from_second((ms / 1000) as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn phase(s: CoreStatus) -> Phase {
    match s {
        CoreStatus::Pending => Phase::Pending,
        CoreStatus::Running => Phase::Running,
        CoreStatus::AwaitingApproval => Phase::AwaitingApproval,
        CoreStatus::Blocked => Phase::Blocked,
        CoreStatus::Succeeded => Phase::Succeeded,
        CoreStatus::Failed => Phase::Failed,
        CoreStatus::Cancelled => Phase::Cancelled,
    }
}

/// The CamelCase name of a step state, as the status shows it.
pub(crate) fn state_name(s: &StepState) -> &'static str {
    match s {
        StepState::Pending => "Pending",
        StepState::Ready => "Ready",
        StepState::Running { .. } => "Running",
        StepState::Succeeded => "Succeeded",
        StepState::Failed { .. } => "Failed",
        StepState::Blocked => "Blocked",
        StepState::AwaitingApproval { .. } => "AwaitingApproval",
        StepState::Deferred { .. } => "Deferred",
        StepState::Cancelled => "Cancelled",
        StepState::WaitingForChildren { .. } => "WaitingForChildren",
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn step_summary(s: &StepRecord) -> StepSummary {
    let (approval, next) = match &s.state {
        StepState::AwaitingApproval { request } => (Some(request.clone()), None),
        StepState::Deferred { until_ms } => (None, Some(rfc3339(*until_ms))),
        StepState::Failed {
            retry_at_ms: Some(at),
        } => (None, Some(rfc3339(*at))),
        _ => (None, None),
    };
    StepSummary {
        id: s.id.to_string(),
        state: state_name(&s.state).to_string(),
        attempt: s.attempt,
        message: s.message.as_deref().map(|m| shorten(m, MAX_MESSAGE)),
        approval,
        next_attempt_at: next,
    }
}

/// The step `kubectl get` shows: running, else waiting for a human, blocked, failed,
/// deferred, ready — the first in template order.
fn current_step(rec: &JobRecord) -> Option<String> {
    let order: [fn(&StepState) -> bool; 6] = [
        |s| matches!(s, StepState::Running { .. }),
        |s| matches!(s, StepState::AwaitingApproval { .. }),
        |s| matches!(s, StepState::Blocked),
        |s| matches!(s, StepState::Failed { .. }),
        |s| matches!(s, StepState::Deferred { .. }),
        |s| matches!(s, StepState::Ready),
    ];
    order
        .iter()
        .find_map(|f| rec.steps.iter().find(|s| f(&s.state)))
        .map(|s| s.id.to_string())
}

/// The status of `rec`'s `Job` CR, whose `metadata.generation` is `generation`;
/// conditions whose status is unchanged from `previous` keep their transition time.
pub(crate) fn job_status(
    rec: &JobRecord,
    generation: Option<i64>,
    previous: Option<&JobStatus>,
    now_ms: u64,
) -> JobStatus {
    let steps: Vec<StepSummary> = rec
        .steps
        .iter()
        .take(MAX_STEPS)
        .map(|s| step_summary(s))
        .collect();
    let open: Vec<String> = rec
        .steps
        .iter()
        .filter_map(|s| match &s.state {
            StepState::AwaitingApproval { request } => Some(request.clone()),
            _ => None,
        })
        .take(MAX_APPROVALS)
        .collect();
    let tokens = rec.usage().total();
    let mut status = JobStatus {
        observed_generation: generation,
        phase: Some(phase(rec.status)),
        conditions: Vec::new(),
        current_step: if rec.status.is_finished() {
            None
        } else {
            current_step(rec)
        },
        waiting_approval: open.first().cloned(),
        open_approvals: open,
        steps,
        steps_omitted: (rec.steps.len() > MAX_STEPS).then(|| (rec.steps.len() - MAX_STEPS) as u32),
        george_generation: Some(rec.generation as i64),
        commit: (!rec.commit.is_empty()).then(|| rec.commit.to_string()),
        tokens: (tokens > 0).then_some(tokens),
        updated_at: Some(rfc3339(rec.updated_at_ms)),
    };
    status.conditions = conditions(rec, &status, generation, previous, now_ms);
    status
}

fn conditions(
    rec: &JobRecord,
    status: &JobStatus,
    generation: Option<i64>,
    previous: Option<&JobStatus>,
    now_ms: u64,
) -> Vec<Condition> {
    use ConditionStatus::{False, True};
    let p = rec.status;
    let name = p.name();
    let done = rec
        .steps
        .iter()
        .filter(|s| s.state == StepState::Succeeded)
        .count();
    let progress = format!("{done} of {} steps succeeded", rec.steps.len());
    let stuck = rec
        .steps
        .iter()
        .find(|s| {
            matches!(
                s.state,
                StepState::Blocked | StepState::Failed { retry_at_ms: None }
            )
        })
        .map(|s| {
            format!(
                "step {}: {}",
                s.id,
                shorten(
                    s.message.as_deref().unwrap_or(state_name(&s.state)),
                    MAX_MESSAGE
                )
            )
        });
    let approvals = status.open_approvals.join(", ");
    let list = [
        (
            "Ready",
            if p == CoreStatus::Succeeded {
                True
            } else {
                False
            },
            name.to_string(),
            progress.clone(),
        ),
        (
            "Reconciling",
            if matches!(p, CoreStatus::Pending | CoreStatus::Running) {
                True
            } else {
                False
            },
            name.to_string(),
            status.current_step.as_ref().map_or(progress.clone(), |s| {
                format!("{progress}; current step {s}")
            }),
        ),
        (
            "Stalled",
            if matches!(p, CoreStatus::Blocked | CoreStatus::Failed) {
                True
            } else {
                False
            },
            name.to_string(),
            stuck.unwrap_or_default(),
        ),
        (
            "AwaitingApproval",
            if status.open_approvals.is_empty() {
                False
            } else {
                True
            },
            if status.open_approvals.is_empty() {
                "NoOpenApproval"
            } else {
                "ApprovalRequested"
            }
            .to_string(),
            if approvals.is_empty() {
                String::new()
            } else {
                format!("decide {approvals} (george approve/reject, or the API)")
            },
        ),
    ];
    list.into_iter()
        .map(|(type_, st, reason, message)| {
            let kept = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
                .filter(|c| c.status == st)
                .map(|c| c.last_transition_time.clone());
            Condition {
                type_: type_.to_string(),
                status: st,
                observed_generation: generation,
                last_transition_time: kept.unwrap_or_else(|| rfc3339(now_ms)),
                reason,
                message,
            }
        })
        .collect()
}

/// One Kubernetes Event to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) type_: EventType,
    pub(crate) reason: String,
    pub(crate) note: String,
}

fn t(type_: EventType, reason: &str, note: String) -> Transition {
    Transition {
        type_,
        reason: reason.to_string(),
        note,
    }
}

/// The Events for going from `before` to `after`: the job's phase, and each step that
/// started, succeeded, failed, was blocked, deferred or cancelled, asked for approval or
/// had its plan rejected. With no `before` (a CR never projected), only the phase.
pub(crate) fn transitions(before: Option<&JobStatus>, after: &JobStatus) -> Vec<Transition> {
    use EventType::{Normal, Warning};
    let mut out = Vec::new();
    if before.and_then(|b| b.phase) != after.phase
        && let Some(p) = after.phase
    {
        let (ty, note) = match p {
            Phase::Pending => (Normal, "the job is waiting to start".to_string()),
            Phase::Running => (Normal, "the job is running".to_string()),
            Phase::AwaitingApproval => (
                Normal,
                format!("waiting for approval: {}", after.open_approvals.join(", ")),
            ),
            Phase::Blocked => (
                Warning,
                "a step is blocked; nothing else can run".to_string(),
            ),
            Phase::Succeeded => (Normal, "every step succeeded".to_string()),
            Phase::Failed => (Warning, "a step failed with no retry left".to_string()),
            Phase::Cancelled => (Warning, "the job was cancelled".to_string()),
        };
        out.push(t(ty, &format!("Job{p:?}"), note));
    }
    let Some(before) = before else { return out };
    for s in &after.steps {
        let prev = before.steps.iter().find(|b| b.id == s.id);
        let was = prev.map_or("Pending", |b| b.state.as_str());
        if was == s.state && prev.is_some_and(|b| b.attempt == s.attempt) {
            continue;
        }
        let msg = s.message.clone().unwrap_or_default();
        let id = &s.id;
        let ev = match s.state.as_str() {
            "Ready" | "Running" if was == "AwaitingApproval" => t(
                Warning,
                "PlanRejected",
                format!("step {id}: plan rejected, planning again"),
            ),
            "Running" => t(
                Normal,
                "StepStarted",
                format!("step {id}: attempt {}", s.attempt),
            ),
            "Succeeded" if was == "AwaitingApproval" => {
                t(Normal, "StepApproved", format!("step {id}: plan approved"))
            }
            "Succeeded" => t(Normal, "StepSucceeded", format!("step {id} succeeded")),
            "Failed" => t(Warning, "StepFailed", format!("step {id}: {msg}")),
            "Blocked" => t(Warning, "StepBlocked", format!("step {id}: {msg}")),
            "Deferred" => t(Normal, "StepDeferred", format!("step {id}: {msg}")),
            "Cancelled" => t(Warning, "StepCancelled", format!("step {id} cancelled")),
            "AwaitingApproval" => t(
                Normal,
                "ApprovalRequested",
                format!(
                    "step {id} waits for approval request {}",
                    s.approval.as_deref().unwrap_or("?")
                ),
            ),
            _ => continue,
        };
        out.push(ev);
    }
    out
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
