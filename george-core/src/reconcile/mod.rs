//! The reconciler: a pure function from desired state (a [`DesiredJob`]), observed state
//! (a [`JobRecord`]) and the time to a list of [`Action`]s, plus the
//! [`WorkQueue`](queue::WorkQueue) that feeds it.
//!
//! The engine's shell ([`crate::engine`]) applies the actions to the store and
//! dispatches ready steps; nothing here does I/O, so every transition is table-tested.

pub mod outcome;
pub mod queue;

pub use outcome::{Outcome, OutcomeContext, Recorded, record_decision, record_outcome};

use crate::events::EventAction;
use crate::manifest::DesiredJob;
use crate::model::{RemovalPolicy, StepSpec};
use crate::state::record::same_id;
use crate::state::{JobRecord, JobStatus, StepEvent, StepRecord, StepState};

/// What the reconciler wants done to one job. Apply them in order with [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Create the job record (generation 1) with the definition's steps, all `Pending`.
    CreateJob(JobDefinition),
    /// The desired definition changed: bump the generation. Steps not started take the new
    /// definition, running ones finish; new steps are added `Pending`, steps no longer in
    /// the template are dropped (unless running), blocked and terminally failed steps start
    /// over. Approvals never carry across generations: a step waiting for a human has its
    /// request cancelled and plans again; a plan approved but not yet executed is voided
    /// and planned again; a gated step that succeeded without an approval plans again.
    NewGeneration(JobDefinition),
    /// The manifest is gone from Git: mark the job removed and, unless kept, cancel it.
    Remove {
        /// Whether unfinished steps are cancelled.
        cancel: bool,
    },
    /// Apply a state-machine event to a step.
    Transition {
        /// The step id (shared with the record's).
        step: std::sync::Arc<str>,
        /// The event.
        event: StepEvent,
        /// Why, for the event log.
        reason: std::borrow::Cow<'static, str>,
    },
    /// Start an attempt of this `Ready` step (subject to the engine's concurrency limits).
    Dispatch {
        /// The step id (shared with the record's).
        step: std::sync::Arc<str>,
    },
    /// Change the job's summary status.
    SetStatus(JobStatus),
    /// Reconcile this job again at `at_ms` (a deferral ends, a backoff ends, a lease expires).
    RequeueAt(u64),
}

/// What the observed record keeps of a job's desired definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefinition {
    /// Repository path of the manifest (shared with the desired job's).
    pub path: std::sync::Arc<str>,
    /// Template name.
    pub template: std::sync::Arc<str>,
    /// Desired-definition hash.
    pub spec_hash: u64,
    /// Step ids in template order (shared with the desired job's).
    pub steps: std::sync::Arc<[std::sync::Arc<str>]>,
    /// `on_removal: keep`.
    pub keep_on_removal: bool,
    /// Steps whose outcome needs a human's approval (`approval.required`): a new
    /// generation re-plans such a step when it succeeded without an approval (see
    /// [`Action::NewGeneration`]).
    pub gated: Vec<String>,
    /// The generation the source itself gives the job, when it versions its objects
    /// (a Kubernetes `Job` CR's `metadata.generation`, carried in the annotation
    /// [`SOURCE_GENERATION_ANNOTATION`](crate::model::SOURCE_GENERATION_ANNOTATION));
    /// `None` for Git. The job's generation follows it: a new record starts at it, a new
    /// generation takes it unless that would not move forward (generations only grow: a
    /// template edit bumps the job's generation without touching the CR's).
    pub source_generation: Option<u64>,
    /// The job's target: its own keys over its template's.
    pub target: std::collections::BTreeMap<String, String>,
}

impl JobDefinition {
    /// The definition of `d`.
    pub fn of(d: &DesiredJob) -> Self {
        JobDefinition {
            path: d.path.clone(),
            template: d.template.metadata.name.as_str().into(),
            spec_hash: d.hash,
            steps: d.step_ids.clone(),
            keep_on_removal: d.job.spec.on_removal == RemovalPolicy::Keep,
            gated: d
                .template
                .spec
                .steps
                .iter()
                .filter(|s| s.approval.required)
                .map(|s| s.id.clone())
                .collect(),
            source_generation: d.source_generation(),
            target: target_of(d),
        }
    }
}

/// The target of `d`: the job's `target` keys over its template's.
pub fn target_of(d: &DesiredJob) -> std::collections::BTreeMap<String, String> {
    let mut t = d.template.spec.target.clone();
    t.extend(
        d.job
            .spec
            .target
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    t
}

/// The job status of `rec` implied by its step states ([`derive_status`]), except that
/// a job another job resolved ([`JobRecord::resolved_by`]) is `Succeeded`.
pub fn record_status(rec: &JobRecord) -> JobStatus {
    if rec.resolved_by.is_some() {
        return JobStatus::Succeeded;
    }
    derive_status(rec.steps.iter().map(|s| &s.state), rec.removed)
}

/// Reconciles one job.
///
/// - `desired`: the job's valid desired state at the current commit, or `None` when the
///   manifest is absent;
/// - `desired_invalid`: the manifest exists but does not validate — the job is left as it
///   is (never cancelled because of a typo);
/// - `observed`: the stored record, if any;
/// - `now_ms`: the time.
///
/// Pure and idempotent: called again on the result of applying its actions, it returns
/// only `Dispatch` / `RequeueAt` actions (or nothing).
pub fn reconcile(
    desired: Option<&DesiredJob>,
    desired_invalid: bool,
    observed: Option<&JobRecord>,
    now_ms: u64,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(rec) = observed else {
        if let Some(d) = desired {
            actions.push(Action::CreateJob(JobDefinition::of(d)));
        }
        return actions;
    };

    let Some(d) = desired else {
        if desired_invalid || rec.removed {
            return actions;
        }
        actions.push(Action::Remove {
            cancel: !rec.keep_on_removal,
        });
        if !rec.keep_on_removal {
            for s in &rec.steps {
                if !matches!(s.state, StepState::Succeeded | StepState::Cancelled) {
                    actions.push(Action::Transition {
                        step: s.id.clone(),
                        event: StepEvent::Cancel,
                        reason: "job manifest removed from Git".into(),
                    });
                }
            }
            if rec.status != JobStatus::Cancelled && !rec.status.is_finished() {
                actions.push(Action::SetStatus(JobStatus::Cancelled));
            }
        }
        return actions;
    };

    if d.hash != rec.spec_hash || rec.removed {
        actions.push(Action::NewGeneration(JobDefinition::of(d)));
        // The next pass sees the new generation's steps.
        return actions;
    }
    if rec.resolved_by.is_some() {
        // Resolved by another job: `Succeeded`, and left alone until a new generation.
        if rec.status != JobStatus::Succeeded {
            actions.push(Action::SetStatus(JobStatus::Succeeded));
        }
        return actions;
    }
    if rec.status == JobStatus::Cancelled {
        return actions;
    }
    step_pass(&d.template.spec.steps, rec, now_ms, &mut actions);
    actions
}

/// Reconciles a job whose manifest was removed from Git but that is kept by policy
/// (`on_removal: keep`): `last` is its last known definition. Only the step pass runs.
pub fn reconcile_kept(last: &DesiredJob, observed: &JobRecord, now_ms: u64) -> Vec<Action> {
    let mut actions = Vec::new();
    if observed.status != JobStatus::Cancelled {
        step_pass(&last.template.spec.steps, observed, now_ms, &mut actions);
    }
    actions
}

/// The step pass: readiness, wake-ups, lease expiry, dispatch and status.
fn step_pass(specs: &[StepSpec], rec: &JobRecord, now_ms: u64, actions: &mut Vec<Action>) {
    // Fast path: nothing can move.
    let quiet = rec.steps.iter().all(|s| {
        matches!(
            s.state,
            StepState::Succeeded
                | StepState::Cancelled
                | StepState::Blocked
                | StepState::AwaitingApproval { .. }
                | StepState::WaitingForChildren { .. }
                | StepState::Failed { retry_at_ms: None }
        )
    });
    if quiet {
        let status = record_status(rec);
        if status != rec.status {
            actions.push(Action::SetStatus(status));
        }
        return;
    }

    // The state of each step after this pass's transitions (small: ~10 steps).
    let mut states: Vec<StepState> = rec.steps.iter().map(|s| s.state.clone()).collect();
    let mut requeue: Option<u64> = None;
    let mut wake = |at: u64| requeue = Some(requeue.map_or(at, |r: u64| r.min(at)));
    for (i, step) in rec.steps.iter().enumerate() {
        let spec = spec_of(specs, i, &step.id);
        // A state that ends at `at`: past it, `event` makes the step ready; before it,
        // the job is requeued for then.
        let mut timed = |at: u64, event: StepEvent, reason: &'static str| {
            if at <= now_ms {
                actions.push(Action::Transition {
                    step: step.id.clone(),
                    event,
                    reason: reason.into(),
                });
                states[i] = StepState::Ready;
            } else {
                wake(at);
            }
        };
        match &step.state {
            StepState::Pending => {
                let deps = spec.map(|s| s.depends_on.as_slice()).unwrap_or(&[]);
                let mut all_ok = true;
                let mut dead: Option<&str> = None;
                for dep in deps {
                    match rec.steps.iter().position(|s| same_id(&s.id, dep)) {
                        Some(j) => match &rec.steps[j].state {
                            StepState::Succeeded => {}
                            StepState::Cancelled | StepState::Failed { retry_at_ms: None } => {
                                dead = Some(dep);
                                all_ok = false;
                            }
                            _ => all_ok = false,
                        },
                        None => all_ok = false,
                    }
                }
                if let Some(dep) = dead {
                    actions.push(Action::Transition {
                        step: step.id.clone(),
                        event: StepEvent::Cancel,
                        reason: format!("dependency {dep} did not succeed").into(),
                    });
                    states[i] = StepState::Cancelled;
                } else if all_ok {
                    actions.push(Action::Transition {
                        step: step.id.clone(),
                        event: StepEvent::MakeReady,
                        reason: "dependencies succeeded".into(),
                    });
                    states[i] = StepState::Ready;
                }
            }
            StepState::Deferred { until_ms } => {
                timed(*until_ms, StepEvent::MakeReady, "deferral ended")
            }
            StepState::Failed {
                retry_at_ms: Some(at),
            } => timed(*at, StepEvent::MakeReady, "backoff ended"),
            StepState::Running { lease_until_ms, .. } => timed(
                *lease_until_ms,
                StepEvent::Interrupt,
                "lease expired: the attempt is taken over",
            ),
            _ => {}
        }
        if states[i] == StepState::Ready {
            actions.push(Action::Dispatch {
                step: step.id.clone(),
            });
        }
    }
    let status = if rec.resolved_by.is_some() {
        JobStatus::Succeeded
    } else {
        derive_status(states.iter(), rec.removed)
    };
    if status != rec.status {
        actions.push(Action::SetStatus(status));
    }
    if let Some(at) = requeue {
        actions.push(Action::RequeueAt(at));
    }
}

fn spec_of<'a>(specs: &'a [StepSpec], i: usize, id: &str) -> Option<&'a StepSpec> {
    match specs.get(i) {
        Some(s) if same_id(&s.id, id) => Some(s),
        _ => specs.iter().find(|s| same_id(&s.id, id)),
    }
}

/// The job status implied by its step states.
pub fn derive_status<'a>(states: impl Iterator<Item = &'a StepState>, removed: bool) -> JobStatus {
    let (mut total, mut succeeded, mut cancelled, mut failed) = (0, 0, 0, 0);
    let (mut awaiting, mut blocked, mut active, mut started) = (0, 0, 0, 0);
    for s in states {
        total += 1;
        match s {
            StepState::Succeeded => succeeded += 1,
            StepState::Cancelled => cancelled += 1,
            StepState::Failed { retry_at_ms: None } => failed += 1,
            StepState::AwaitingApproval { .. } => awaiting += 1,
            StepState::Blocked => blocked += 1,
            StepState::Pending => {}
            StepState::Ready => active += 1,
            _ => {
                active += 1;
                started += 1;
            }
        }
    }
    if succeeded == total {
        JobStatus::Succeeded
    } else if awaiting > 0 {
        JobStatus::AwaitingApproval
    } else if active > 0 {
        JobStatus::Running
    } else if failed > 0 {
        JobStatus::Failed
    } else if blocked > 0 {
        JobStatus::Blocked
    } else if cancelled > 0 && (removed || cancelled + succeeded == total) {
        JobStatus::Cancelled
    } else if succeeded == 0 && started == 0 {
        JobStatus::Pending
    } else {
        JobStatus::Running
    }
}

/// What [`apply`] changed: one entry per change for the event log, and the approval
/// requests the caller must cancel in the same write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// `(step, action, detail)` for the event log.
    pub changes: Vec<(Option<std::sync::Arc<str>>, EventAction, String)>,
    /// `(request id, reason)` of open approval requests to cancel.
    pub cancel_approvals: Vec<(String, String)>,
}

/// Applies `actions` to `record`, returning a description of each change for the event
/// log and the approval requests to cancel. `Dispatch` and `RequeueAt` are left to the
/// caller (they need the engine); invalid transitions are skipped and reported.
pub fn apply(record: &mut JobRecord, actions: &[Action], commit: &str) -> Applied {
    let mut out = Applied::default();
    for a in actions {
        match a {
            Action::CreateJob(_) => {
                // Creation builds a fresh record: see `new_record`.
            }
            Action::NewGeneration(JobDefinition {
                path,
                template,
                spec_hash,
                steps,
                keep_on_removal,
                gated,
                source_generation,
                target,
            }) => {
                record.generation = next_generation(record.generation, *source_generation);
                record.target.clone_from(target);
                // A new definition is new work: a resolution of the old one ends here.
                record.resolved_by = None;
                record.spec_hash = *spec_hash;
                record.commit = commit.into();
                record.path = path.clone();
                record.template = template.clone();
                record.keep_on_removal = *keep_on_removal;
                record.removed = false;
                let generation = record.generation;
                let mut old = std::mem::take(&mut record.steps);
                let mut next = Vec::with_capacity(steps.len());
                for id in steps.iter() {
                    match old.iter().position(|s| same_id(&s.id, id)) {
                        Some(j) => {
                            let mut s = old.swap_remove(j);
                            let is_gated = gated.iter().any(|g| g.as_str() == &**id);
                            new_generation_step(
                                std::sync::Arc::make_mut(&mut s),
                                is_gated,
                                generation,
                                &mut out,
                            );
                            next.push(s);
                        }
                        None => next.push(std::sync::Arc::new(StepRecord::new(id.clone()))),
                    }
                }
                // Running steps no longer in the template finish; the rest are dropped
                // (their open requests cancelled).
                for s in old {
                    if matches!(s.state, StepState::Running { .. }) {
                        next.push(s);
                    } else if let StepState::AwaitingApproval { request } = &s.state {
                        out.cancel_approvals.push((
                            request.clone(),
                            format!("step {} was removed in generation {generation}", s.id),
                        ));
                    }
                }
                record.steps = next;
                out.changes.push((
                    None,
                    EventAction::JobGeneration,
                    format!(
                        "generation {} from commit {}",
                        record.generation,
                        short(commit)
                    ),
                ));
            }
            Action::Remove { cancel } => {
                record.removed = true;
                out.changes.push((
                    None,
                    EventAction::JobRemoved,
                    if *cancel {
                        "manifest removed from Git: cancelling".to_string()
                    } else {
                        "manifest removed from Git: kept by policy".to_string()
                    },
                ));
            }
            Action::Transition {
                step,
                event,
                reason,
            } => {
                if let Some(s) = record.step_mut(step) {
                    match s.state.apply(event.clone()) {
                        Ok(next) => {
                            if let StepState::AwaitingApproval { request } = &s.state {
                                out.cancel_approvals
                                    .push((request.clone(), reason.to_string()));
                            }
                            let detail = crate::events::detail!(
                                "{} → {}: {reason}",
                                s.state.name(),
                                next.name()
                            );
                            s.state = next;
                            out.changes.push((
                                Some(s.id.clone()),
                                EventAction::StepTransition,
                                detail,
                            ));
                        }
                        Err(e) => out.changes.push((
                            Some(s.id.clone()),
                            EventAction::StepInvalid,
                            e.to_string(),
                        )),
                    }
                }
            }
            Action::SetStatus(status) => {
                if record.status != *status {
                    out.changes.push((
                        None,
                        EventAction::JobStatus,
                        crate::events::detail!("{} → {}", record.status, status),
                    ));
                    record.status = *status;
                }
            }
            Action::Dispatch { .. } | Action::RequeueAt(_) => {}
        }
    }
    out
}

/// The actions that end a job with `status` (`Cancelled` by an operator, `Succeeded`
/// when another job resolved it): every step not yet succeeded or cancelled is
/// cancelled, giving `reason`, then the status is set.
pub fn end_job(rec: &JobRecord, status: JobStatus, reason: &str) -> Vec<Action> {
    let mut actions: Vec<Action> = rec
        .steps
        .iter()
        .filter(|s| !matches!(s.state, StepState::Succeeded | StepState::Cancelled))
        .map(|s| Action::Transition {
            step: s.id.clone(),
            event: StepEvent::Cancel,
            reason: reason.to_string().into(),
        })
        .collect();
    actions.push(Action::SetStatus(status));
    actions
}

/// One kept step of a new generation: blocked and terminally failed steps start over;
/// approvals never carry over (see [`Action::NewGeneration`]).
fn new_generation_step(s: &mut StepRecord, gated: bool, generation: u64, out: &mut Applied) {
    match &s.state {
        StepState::Blocked | StepState::Cancelled | StepState::Failed { retry_at_ms: None } => {
            s.state = StepState::Pending;
            s.message = None;
        }
        StepState::AwaitingApproval { request } => {
            out.cancel_approvals.push((
                request.clone(),
                format!("the job changed (generation {generation}): the step plans again"),
            ));
            out.changes.push((
                Some(s.id.clone()),
                EventAction::StepTransition,
                format!("awaiting_approval → pending: generation {generation} cancels {request}"),
            ));
            s.state = StepState::Pending;
            s.message = None;
        }
        StepState::Succeeded => {
            let voided = match &s.approved {
                Some(p) if !p.executed => Some(format!(
                    "approved plan {} ({}) voided by generation {generation} before it ran: the step plans again",
                    p.request, p.digest
                )),
                Some(_) => None,
                None if gated => Some(format!(
                    "generation {generation} needs an approved plan; the step's outputs have none: the step plans again"
                )),
                None => None,
            };
            if let Some(why) = voided {
                out.changes
                    .push((Some(s.id.clone()), EventAction::ApprovalVoided, why));
                s.state = StepState::Pending;
                s.outputs = None;
                s.approved = None;
                s.message = None;
            }
        }
        _ => {}
    }
}

/// The record a `CreateJob` action creates (revision 0: not stored yet).
pub fn new_record(name: &str, action: &Action, commit: &str, now_ms: u64) -> Option<JobRecord> {
    let Action::CreateJob(JobDefinition {
        path,
        template,
        spec_hash,
        steps,
        keep_on_removal,
        source_generation,
        target,
        ..
    }) = action
    else {
        return None;
    };
    Some(JobRecord {
        name: name.to_string(),
        generation: source_generation.unwrap_or(1).max(1),
        spec_hash: *spec_hash,
        commit: commit.into(),
        path: path.clone(),
        template: template.clone(),
        status: JobStatus::Pending,
        removed: false,
        keep_on_removal: *keep_on_removal,
        steps: steps
            .iter()
            .map(|s| std::sync::Arc::new(StepRecord::new(s.clone())))
            .collect(),
        revision: 0,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        target: target.clone(),
        resolved_by: None,
        ordered_by: None,
    })
}

/// The generation after `current`: the source's own when it is ahead, else one more.
pub fn next_generation(current: u64, source_generation: Option<u64>) -> u64 {
    let next = current.saturating_add(1);
    source_generation.map_or(next, |g| g.max(next))
}

fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

#[cfg(test)]
mod outcome_tests;
#[cfg(test)]
mod tests;
