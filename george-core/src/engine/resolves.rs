//! `report_success {…, resolves: [job]}`: the check when the agent reports, the record
//! with its outcome, and the second write that ends each resolved job (see the
//! [`targets`](super::targets) module for the whole protocol).

use crate::state::record::same_id;
use serde_json::Value;

use super::Engine;
use super::io::{ROUNDS, commit, events_of, load, slot};
use crate::error::{ErrorKind, Result};
use crate::events::EventAction;
use crate::model::AgentSpec;
use crate::reconcile;
use crate::state::{JobRecord, JobStatus, NewEvent, ResolvedBy, Resolves, StepState};
use crate::store::{JobWrite, StateStore};

/// Parses `report_success`'s `resolves` (absent: none): a list of job names, strictly.
pub(super) fn parse_resolves(args: &Value) -> std::result::Result<Vec<String>, String> {
    let Some(v) = args.get("resolves") else {
        return Ok(Vec::new());
    };
    let Some(list) = v.as_array() else {
        return Err("`resolves` must be a list of job names".into());
    };
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for x in list {
        match x.as_str() {
            Some(n) if !n.is_empty() => {
                if !names.iter().any(|m| m == n) {
                    names.push(n.to_string());
                }
            }
            _ => return Err("`resolves` must be a list of job names (non-empty strings)".into()),
        }
    }
    Ok(names)
}

/// Checks that the job `record`'s agent `agent` may resolve each job in `names` (see
/// the [module docs](self)); returns what to record, or why not (the tool error).
pub(super) async fn check_resolves(
    store: &dyn StateStore,
    record: &JobRecord,
    agent: &AgentSpec,
    names: &[String],
) -> std::result::Result<Vec<Resolves>, String> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    if !agent.spec.may_resolve {
        return Err(format!(
            "agent {} may not resolve other jobs (its spec does not set `may_resolve: true`); \
             report success without `resolves`",
            agent.metadata.name
        ));
    }
    if record.target.is_empty() {
        return Err("this job has no target: it cannot resolve other jobs".into());
    }
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        if *n == record.name {
            return Err("a job cannot resolve itself".into());
        }
        let other = match store.get_job(n).await {
            Ok(Some(o)) => o,
            Ok(None) => return Err(format!("there is no job {n:?}")),
            Err(e) => return Err(format!("checking job {n:?} failed: {e}; try again")),
        };
        if other.target != record.target {
            return Err(format!(
                "job {n:?} is not on this job's target ({}): it cannot be resolved from here",
                record.target_key()
            ));
        }
        if other.status.is_finished() {
            return Err(format!(
                "job {n:?} is already {}: there is nothing to resolve",
                other.status
            ));
        }
        out.push(Resolves {
            job: n.clone(),
            generation: other.generation,
        });
    }
    Ok(out)
}

/// Records `resolves` on the step `step` of `rec` when its outcome made it `Succeeded`,
/// with a `job.resolved` event (`resolves <job>`) each: in the outcome's write.
pub(super) fn record_resolves(
    rec: &mut JobRecord,
    step: &str,
    resolves: Vec<Resolves>,
    now: u64,
    events: &mut Vec<NewEvent>,
) {
    if resolves.is_empty() {
        return;
    }
    let Some(s) = rec.step_mut(step) else {
        return;
    };
    if s.state != StepState::Succeeded {
        return;
    }
    for r in &resolves {
        events.push(NewEvent::shared(
            now,
            &crate::events::engine_actor(),
            EventAction::JobResolved,
            Some(&s.id),
            format!("resolves {} (generation {})", r.job, r.generation),
        ));
    }
    s.resolves = resolves;
}

/// Ends every job the succeeded steps of `job` resolve and that is not resolved yet:
/// the second write of a resolution, also run at start to repair an interrupted one.
/// Idempotent.
pub(super) async fn complete_resolutions(engine: &Engine, job: &str) -> Result<()> {
    let shared = &engine.shared;
    let rec = {
        let slot = slot(shared, job);
        let mut guard = slot.lock().await;
        load(shared, job, &mut guard).await?;
        match guard.as_deref() {
            Some(r) => r.clone(),
            None => match shared.store.get_job(job).await? {
                Some(r) => r,
                None => return Ok(()),
            },
        }
    };
    let agent_of_step = |step: &str| {
        super::io::desired_of(shared, job)
            .0
            .and_then(|d| {
                d.template
                    .spec
                    .steps
                    .iter()
                    .find(|s| same_id(&s.id, step))
                    .and_then(|s| s.agent.clone())
            })
            .map_or_else(crate::events::engine_actor, |a| {
                std::sync::Arc::from(format!("agent:{a}"))
            })
    };
    for s in &rec.steps {
        if s.state != StepState::Succeeded {
            continue;
        }
        for r in &s.resolves {
            let by = ResolvedBy {
                job: rec.name.clone(),
                step: s.id.to_string(),
                attempt: s.attempt,
            };
            resolve_one(engine, r, &rec.target, &by, &agent_of_step(&s.id)).await?;
        }
    }
    Ok(())
}

/// Ends the job `r.job` as resolved by `by` (unless it changed since: other target,
/// other generation, finished or already resolved).
async fn resolve_one(
    engine: &Engine,
    r: &Resolves,
    target: &std::collections::BTreeMap<String, String>,
    by: &ResolvedBy,
    actor: &std::sync::Arc<str>,
) -> Result<()> {
    let shared = &engine.shared;
    let slot = slot(shared, &r.job);
    let mut guard = slot.lock().await;
    for round in 1..=ROUNDS {
        load(shared, &r.job, &mut guard).await?;
        let Some(rec) = guard.as_deref() else {
            return Ok(());
        };
        if rec.resolved_by.is_some()
            || rec.status.is_finished()
            || rec.generation != r.generation
            || rec.target != *target
        {
            return Ok(());
        }
        let why = format!("resolved by {}/{}", by.job, by.step);
        let actions = reconcile::end_job(rec, JobStatus::Succeeded, &why);
        let mut next = rec.clone();
        next.resolved_by = Some(by.clone());
        let applied = reconcile::apply(&mut next, &actions, &rec.commit);
        let now = shared.clock.now_ms();
        next.updated_at_ms = now;
        let mut events: Vec<NewEvent> = events_of(now, applied.changes).collect();
        events.push(NewEvent::new(
            now,
            actor.clone(),
            EventAction::JobResolved,
            None,
            format!("resolved by {by}"),
        ));
        let cancelled =
            super::dispatch::cancel_requests(shared, &applied.cancel_approvals, now, &mut events)
                .await?;
        let mut w = JobWrite::update(next).events(events);
        for req in &cancelled {
            w = w.update_approval(req.clone());
        }
        match commit(shared, &mut guard, w).await {
            Ok(_) => {
                drop(guard);
                for req in &cancelled {
                    if let Err(e) = shared.human.approval_cancelled(req).await {
                        tracing::warn!(id = %req.id, error = %e, "notifying the human channel failed");
                    }
                }
                engine.requeue(&r.job);
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::Conflict && round < ROUNDS => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether a step of `rec` recorded resolutions (that an engine start re-checks).
pub(super) fn has_resolutions(rec: &JobRecord) -> bool {
    rec.steps
        .iter()
        .any(|s| s.state == StepState::Succeeded && !s.resolves.is_empty())
}

/// At start: completes the resolutions recorded by succeeded steps of `jobs` (see
/// [`complete_resolutions`]); a failure is logged, the rest go on.
pub(super) async fn repair_resolutions(engine: &Engine, jobs: &[String]) {
    for j in jobs {
        if let Err(e) = complete_resolutions(engine, j).await {
            tracing::warn!(job = %j, error = %e, "completing a job's resolutions failed");
        }
    }
}
