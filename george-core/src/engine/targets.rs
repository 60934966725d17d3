//! Jobs that share a target (`target: {kind: service, name: darwin-store}` on a Job or
//! its template): they see each other, may be serialised, and one may resolve another.
//!
//! - **`ops_journal`** — a `read` tool the engine offers to every agent whose job has a
//!   target (next to the outcome tools, not through an executor). It returns the recent
//!   jobs on the *calling job's* target, newest first: the target comes from the job's
//!   record, never from the model's arguments (`{limit?: 1..=100, default 20}`).
//!   Each job carries its steps (state, message and outputs, clipped) and its last
//!   [`JOURNAL_ACTIONS`] events. Cost: one [`StateStore::jobs_on_target`] (whose provided
//!   implementation reads every job) and one event read per listed job.
//! - **Concurrency** — a step under `concurrency: {key: target, limit: n}` (its own, or
//!   its template's for `execute_approved` steps: see
//!   [`TemplateSpec::concurrency_of`](crate::model::TemplateSpec::concurrency_of)) is
//!   started only while fewer than `n` such steps run on the same target: this engine's
//!   own (in-memory slots, reserved in `dispatch::try_start`, released when the attempt
//!   ends) plus other engines' with a live lease (read from the store by
//!   `refresh_foreign` in the same reconcile pass). Otherwise it stays `Ready` and its
//!   job is queued again when a slot frees (or, for another engine's hold, at the
//!   earliest of its lease's expiry and the claim interval). A restarted engine first
//!   takes its own running attempts back (they become `Ready`, see `recovery`), so it
//!   starts with no slot held and none lost; under a new id, its old incarnation's live
//!   leases count as another engine's.
//! - **`resolves`** — `report_success {…, resolves: [job]}` ends other jobs on the same
//!   target `Succeeded`. Checked when the agent reports (a refused name is a tool error:
//!   no effect at all, the model may report again): the agent's spec has
//!   `may_resolve: true`, the reporting job has a target, and each named job exists, is
//!   another job on the same target, and is not finished. Then two writes, in this
//!   order: (1) the reporter's outcome, with the step's
//!   [`resolves`](crate::state::StepRecord::resolves) and a `job.resolved` event
//!   (`resolves <job>`); (2) for each named job, under its lock and retried on
//!   conflict: its unfinished steps `Cancelled`, its open approval requests cancelled,
//!   [`resolved_by`](crate::state::JobRecord::resolved_by) set, status `Succeeded`, and a
//!   `job.resolved` event (`resolved by <job>/<step>`). A crash between the two is
//!   repaired when an engine starts: (2) is derived from the reporter's recorded step
//!   and is idempotent. Each resolution names the generation it was checked against:
//!   a job edited in Git since is not resolved.

use std::sync::OnceLock;

use serde_json::{Value, json};

use super::Engine;
use super::io::{ROUNDS, commit, events_of, load, slot};
use crate::error::{ErrorKind, Result};
use crate::events::EventAction;
use crate::manifest::DesiredJob;
use crate::model::{AgentSpec, ConcurrencyKey, StepSpec};
use crate::reconcile::{self, Action};
use crate::state::{JobRecord, JobStatus, NewEvent, ResolvedBy, Resolves, StepState};
use crate::store::{JobWrite, StateStore};
use crate::tool::{EffectClass, ToolDefinition};

/// The read tool that shows an agent the recent jobs on its job's target.
pub const OPS_JOURNAL: &str = "ops_journal";

/// The event actions `ops_journal` shows.
pub const JOURNAL_ACTIONS: &[EventAction] = &[
    EventAction::StepSucceeded,
    EventAction::StepFailed,
    EventAction::JobStatus,
    EventAction::JobResolved,
    EventAction::ActionExecuted,
];

/// Events shown per job.
const EVENTS_PER_JOB: usize = 10;

/// The definition of [`OPS_JOURNAL`] (effect `read`).
pub fn ops_journal_tool() -> &'static ToolDefinition {
    static DEF: OnceLock<ToolDefinition> = OnceLock::new();
    DEF.get_or_init(|| {
        ToolDefinition::new(
            OPS_JOURNAL,
            "The operations journal of the service (target) this job works on: the recent jobs on \
             the same target, newest first, with their status, steps and last events (outcomes, \
             executed actions, resolutions). Read it before changing the target: another job may \
             be working on it or may already have fixed it.",
            json!({
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100,
                              "description": "How many jobs (default 20)."}
                }
            }),
        )
        .with_effect(EffectClass::Read)
    })
}

/// The `(target key, limit)` step `spec` of the job `rec` counts against, if any.
pub(super) fn target_limit(
    d: &DesiredJob,
    spec: &StepSpec,
    rec: &JobRecord,
) -> Option<(String, u32)> {
    let c = d.template.spec.concurrency_of(spec)?;
    match c.key {
        ConcurrencyKey::Target if !rec.target.is_empty() => Some((rec.target_key(), c.limit)),
        ConcurrencyKey::Target => None,
    }
}

/// Counts, from the store, the running steps of *other engines* (another holder with a
/// live lease) that hold the target limit the ready steps of `rec` would take: a
/// snapshot kept in the engine's slots (`foreign`, with the time `now` it was taken)
/// for [`try_start`](super::dispatch) to add to its own count. A dispatch without a
/// snapshot of its own pass (e.g. a step made ready by an outcome, dispatched in the
/// outcome's write) does not start the step: it queues the job, whose reconcile takes
/// one. So a limit holds across
/// engines sharing a store, and across a restart under a new id while the old
/// incarnation's leases run. Reads the store only when a step to dispatch counts
/// against a target limit. While another engine holds the target, the job is requeued
/// at the earliest of those leases' expiry and the claim interval.
pub(super) async fn refresh_foreign(
    engine: &Engine,
    d: &DesiredJob,
    rec: &JobRecord,
    actions: &[Action],
    now: u64,
) -> Result<()> {
    let shared = &engine.shared;
    let key = actions.iter().find_map(|a| match a {
        Action::Dispatch { step } => d
            .template
            .spec
            .steps
            .iter()
            .find(|s| s.id == *step)
            .and_then(|s| target_limit(d, s, rec))
            .map(|(k, _)| k),
        _ => None,
    });
    let Some(key) = key else {
        return Ok(());
    };
    let me = &*shared.holder;
    let mut held = 0usize;
    let mut until: Option<u64> = None;
    for other in shared.store.jobs_on_target(&key).await? {
        if other.name == rec.name {
            continue;
        }
        let od = super::io::desired_of(shared, &other.name).0;
        for s in &other.steps {
            let StepState::Running {
                holder,
                lease_until_ms,
            } = &s.state
            else {
                continue;
            };
            if **holder == *me || *lease_until_ms <= now {
                continue;
            }
            // A step whose definition this engine does not know is counted: the limit
            // errs on the side of waiting.
            let counted = od.as_ref().is_none_or(|od| {
                od.template
                    .spec
                    .steps
                    .iter()
                    .find(|x| *x.id == *s.id)
                    .is_none_or(|x| target_limit(od, x, &other).is_some())
            });
            if counted {
                held += 1;
                until = Some(until.map_or(*lease_until_ms, |u| u.min(*lease_until_ms)));
            }
        }
    }
    super::lock(&shared.slots).foreign.insert(key, (held, now));
    if let Some(until) = until {
        let poll = u64::try_from(shared.config.claim_interval.as_millis()).unwrap_or(u64::MAX);
        super::lock(&shared.queue).add_at(&rec.name, until.min(now.saturating_add(poll)));
    }
    Ok(())
}

fn clip(s: &str, n: usize) -> String {
    super::attempt::clip(s, n)
}

/// Runs `ops_journal` for the job `record`: returns the tool result and whether it is an
/// error. `args` may set `limit`; everything else in it is ignored (the target is the
/// calling job's).
pub(super) async fn ops_journal(
    store: &dyn StateStore,
    record: &JobRecord,
    args: &Value,
) -> (String, bool) {
    let limit = match args.get("limit") {
        None | Some(Value::Null) => 20,
        Some(v) => match v.as_u64() {
            Some(n) => n.clamp(1, 100) as usize,
            None => return ("`limit` must be a positive integer".into(), true),
        },
    };
    if record.target.is_empty() {
        return ("this job has no target: there is no journal".into(), true);
    }
    let key = record.target_key();
    let mut jobs = match store.jobs_on_target(&key).await {
        Ok(j) => j,
        Err(e) => return (format!("reading the journal failed: {e}"), true),
    };
    // Never another target, whatever the store returned.
    jobs.retain(|j| j.target == record.target);
    jobs.sort_by(|a, b| {
        (b.updated_at_ms, b.created_at_ms, &a.name).cmp(&(
            a.updated_at_ms,
            a.created_at_ms,
            &b.name,
        ))
    });
    jobs.truncate(limit);
    let mut out = Vec::with_capacity(jobs.len());
    for j in &jobs {
        let events = match store.events(&j.name, 0, usize::MAX).await {
            Ok(ev) => ev,
            Err(e) => return (format!("reading the journal failed: {e}"), true),
        };
        let mut shown: Vec<Value> = events
            .iter()
            .rev()
            .filter(|e| JOURNAL_ACTIONS.iter().any(|a| e.action == *a))
            .take(EVENTS_PER_JOB)
            .map(|e| {
                json!({
                    "at_ms": e.at_ms,
                    "actor": e.actor,
                    "action": e.action,
                    "step": e.step,
                    "detail": clip(&e.detail, 200),
                })
            })
            .collect();
        shown.reverse();
        let steps: Vec<Value> = j
            .steps
            .iter()
            .map(|s| {
                let mut v = json!({"id": &*s.id, "state": s.state.name(), "attempt": s.attempt});
                if let Some(m) = &s.message {
                    v["message"] = Value::String(clip(m, 200));
                }
                if let Some(o) = &s.outputs {
                    v["outputs"] = Value::String(clip(&o.to_string(), 300));
                }
                v
            })
            .collect();
        let mut v = json!({
            "name": j.name,
            "template": j.template,
            "status": j.status.name(),
            "generation": j.generation,
            "commit": j.commit,
            "created_at_ms": j.created_at_ms,
            "updated_at_ms": j.updated_at_ms,
            "steps": steps,
            "events": shown,
        });
        if j.name == record.name {
            v["this_job"] = Value::Bool(true);
        }
        if let Some(by) = &j.resolved_by {
            v["resolved_by"] = Value::String(by.to_string());
        }
        out.push(v);
    }
    let body = json!({"target": key, "jobs": out});
    (body.to_string(), false)
}

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
                    .find(|s| s.id == step)
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
