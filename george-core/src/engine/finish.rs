//! An attempt's outcome: recorded by the pure [`record_outcome`], fenced by the lease,
//! and reconciled in the same write so a chain of steps takes one commit per step.

use crate::state::record::same_id;
use std::sync::Arc;

use tracing::Instrument as _;

use super::attempt::AttemptReport;
use super::dispatch::{d_agents, release_all, start_ready};
use super::io::{ROUNDS, commit_after, desired_of, events_of, load, retained_of, slot};
use super::lease::{Next, spawn_attempt};
use super::{Engine, lock};
use crate::backoff::backoff_ms;
use crate::error::{ErrorKind, Result};
use crate::git::CommitId;
use crate::manifest::DesiredJob;
use crate::model::ApprovalRule;
use crate::policy::{Applied, apply_verdict};
use crate::reconcile::{self, Action, Outcome, OutcomeContext, record_outcome};
use crate::state::{ApprovalRequest, JobRecord};
use crate::store::{JobWrite, TranscriptKey};

/// Records an attempt's outcome, fenced: only the lease holder of that attempt may.
/// Returns whether the job was also reconciled in the same write (no requeue needed).
///
/// A `Conflict` means another write to the job came first (another step's outcome, a
/// human's decision, another engine): the record is reloaded and, while this engine
/// still holds the attempt's lease, the outcome is applied again on top of it.
pub(super) async fn finish(
    engine: &Engine,
    d: &DesiredJob,
    job: &str,
    step: &str,
    attempt: u32,
    mut report: AttemptReport,
    next: &mut Option<Next>,
) -> Result<bool> {
    let shared = &engine.shared;
    super::redact::redact_report(&shared.secrets, &mut report);
    let spec = d.template.spec.steps.iter().find(|s| same_id(&s.id, step));
    let agent = spec.and_then(|s| s.agent.clone()).unwrap_or_default();
    // The rule a plan's request carries: the step's, or any approver when the autonomy
    // level (manual) makes the step plan; at `autonomous` a gated step does not plan.
    let mut rule = spec.map(|s| s.approval.clone()).unwrap_or_default();
    let plans = super::policy::plans(shared, d, spec, &agent);
    let autonomous = rule.required && !plans;
    if !rule.required && plans {
        rule = ApprovalRule::required();
    }
    let mut author = None;
    if matches!(report.outcome, Outcome::NeedsApproval(_)) && rule.forbid_self_approval {
        let commit_id = lock_commit(engine, job).await;
        author = match shared.git.commit_author(&CommitId(commit_id)).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(job, step, error = %e, "reading the commit's author failed");
                None
            }
        };
    }
    let actor = shared.actors.agent(&agent);
    let slot = slot(shared, job);
    let mut guard = slot.lock().await;
    // The transcript is shared between rounds: a retry after a `Conflict` does not
    // copy it.
    let mut report = Some(Outcomes {
        outcome: report.outcome,
        usage: report.usage,
        transcript: report.transcript,
        events: report.events,
        resolves: report.resolves,
    });
    for round in 1..=ROUNDS {
        let Some(this) = (if round == ROUNDS {
            report.take()
        } else {
            report.clone()
        }) else {
            break;
        };
        load(shared, job, &mut guard).await?;
        // The cached record is taken, not copied, when nothing else shares it (the
        // attempt dropped its own before finishing); `commit` puts the new one back.
        let Some(rec) = guard.take().map(Arc::unwrap_or_clone) else {
            return Ok(false);
        };
        let before = rec.status;
        let now = shared.clock.now_ms();
        let policy = spec.map(|s| s.retry).unwrap_or_default();
        let ctx = OutcomeContext {
            now_ms: now,
            holder: &shared.config.id,
            attempt,
            retry_at_ms: (attempt < policy.attempts).then(|| now + backoff_ms(&policy, attempt)),
            agent: &agent,
            actor: Some(&actor),
            rule: &rule,
            commit_author: author.as_deref(),
            executes: spec.and_then(|s| s.execute_approved.as_deref()),
            autonomous,
        };
        match finish_once(
            engine,
            (job, step),
            (rec, before),
            this,
            &ctx,
            &mut guard,
            next,
        )
        .await
        {
            Err(e) if e.kind() == ErrorKind::Conflict && round < ROUNDS => {
                tracing::debug!(
                    job,
                    step,
                    attempt,
                    "outcome write conflicted; reloaded, retrying"
                );
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {
                tracing::warn!(job, step, attempt, error = %e, "outcome of an attempt whose lease was lost: discarded");
                return Ok(false);
            }
            Err(e) => return Err(e),
            Ok((reconciled, approval)) => {
                drop(guard);
                if let Some(req) = approval
                    && let Err(e) = shared.human.approval_requested(&req).await
                {
                    tracing::warn!(id = %req.id, error = %e, "notifying the human channel failed");
                }
                return Ok(reconciled);
            }
        }
    }
    Ok(false)
}

/// An attempt's report as [`finish`] keeps it between rounds.
#[derive(Clone)]
struct Outcomes {
    outcome: Outcome,
    usage: crate::provider::Usage,
    transcript: Arc<Vec<crate::provider::Message>>,
    events: Vec<crate::state::NewEvent>,
    resolves: Vec<crate::state::Resolves>,
}

/// The commit of the job's current generation.
async fn lock_commit(engine: &Engine, job: &str) -> String {
    let slot = slot(&engine.shared, job);
    let mut guard = slot.lock().await;
    if load(&engine.shared, job, &mut guard).await.is_err() {
        return String::new();
    }
    guard
        .as_ref()
        .map(|r| r.commit.to_string())
        .unwrap_or_default()
}

async fn finish_once(
    engine: &Engine,
    (job, step): (&str, &str),
    (mut rec, before): (JobRecord, crate::state::JobStatus),
    report: Outcomes,
    ctx: &OutcomeContext<'_>,
    guard: &mut tokio::sync::MutexGuard<'_, Option<std::sync::Arc<JobRecord>>>,
    next: &mut Option<Next>,
) -> Result<(bool, Option<ApprovalRequest>)> {
    let shared = &engine.shared;
    let now = ctx.now_ms;
    match rec.step_mut(step) {
        Some(s) if super::dispatch::holds_step(s, ctx.attempt, ctx.holder) => {
            s.usage.add(&report.usage);
        }
        _ => {
            tracing::warn!(
                job,
                step,
                attempt = ctx.attempt,
                "outcome of an attempt whose lease was lost: discarded"
            );
            **guard = Some(Arc::new(rec));
            return Ok((false, None));
        }
    }
    let recorded = record_outcome(&mut rec, step, report.outcome, ctx)?;
    let mut approval = recorded.insert;
    rec.updated_at_ms = now;
    let mut w_events = report.events;
    w_events.extend(recorded.events);
    // A plan the committed policies decide is decided here, in the same write, as a
    // person's decision would be (`policy:<name>`); the rest wait for a person.
    let mut decided = None;
    if let Some(req) = &approval {
        let verdict = super::policy::verdict(shared, &rec, req);
        if let Applied::Decided(d, events) = apply_verdict(&mut rec, req, &verdict, now)? {
            w_events.extend(events);
            decided = Some(d);
        }
    }
    // A success that resolves other jobs records them with the outcome (the first of
    // the resolution's two writes: see `targets`).
    super::resolves::record_resolves(&mut rec, step, report.resolves, now, &mut w_events);
    // Dispatch what this outcome made ready in the same write: one commit per step on a
    // chain of steps instead of two.
    let mut to_start = Vec::new();
    let mut reconciled = false;
    let (desired_now, _, commit_id) = desired_of(shared, job);
    let desired_now = if rec.removed && rec.keep_on_removal {
        retained_of(shared, job)
    } else {
        desired_now.filter(|dn| dn.hash == rec.spec_hash && !rec.removed)
    };
    if let Some(dn) = &desired_now {
        let actions = reconcile::reconcile(Some(dn), false, Some(&rec), now);
        let structural = actions.iter().any(|a| {
            matches!(
                a,
                Action::CreateJob(_) | Action::NewGeneration(_) | Action::Remove { .. }
            )
        });
        reconciled = !structural;
        if !structural {
            let applied = reconcile::apply(&mut rec, &actions, &commit_id);
            w_events.extend(events_of(now, applied.changes));
            let requeue;
            (to_start, requeue) = start_ready(engine, dn, &mut rec, &actions, now, &mut w_events);
            if let Some(at) = requeue {
                lock(&shared.queue).add_at(job, at);
            }
        }
    }
    // The key shares the record's step id.
    let step_id = rec.step(step).map_or_else(|| step.into(), |s| s.id.clone());
    let mut w = JobWrite::update(rec).events(w_events);
    if !report.transcript.is_empty() {
        w = w.transcript(
            TranscriptKey {
                job: job.into(),
                step: step_id,
                attempt: ctx.attempt,
            },
            report.transcript,
        );
    }
    if let Some(req) = &approval {
        w = w.insert_approval(req.clone());
    }
    if let Some(d) = decided {
        w = w.update_approval(*d);
        // Decided: nobody is asked.
        approval = None;
    }
    let span = tracing::info_span!("store.commit", write = "outcome");
    if let Err(e) = commit_after(shared, guard, w, Some(before))
        .instrument(span)
        .await
    {
        release_all(engine, job, d_agents(&desired_now, &to_start));
        return Err(e);
    }
    if let (Some(dn), Some(rec)) = (&desired_now, guard.as_ref()) {
        // The first step started goes on in this attempt's task (see `spawn_attempt`).
        for (step, n) in to_start {
            if next.is_none() {
                *next = Some(Next {
                    d: dn.clone(),
                    rec: rec.clone(),
                    step,
                    attempt: n,
                });
            } else {
                spawn_attempt(engine, dn.clone(), rec.clone(), step, n);
            }
        }
    }
    Ok((reconciled, approval))
}
