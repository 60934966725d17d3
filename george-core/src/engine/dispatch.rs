//! Reconcile and dispatch: one reconcile of one job (the pure reconciler's actions
//! applied durably, approval requests of a changed job cancelled), starting ready steps
//! within the concurrency limits, running each attempt under a renewed lease.

use crate::state::record::same_id;
use std::sync::atomic::Ordering;

use super::io::{agent_of, commit, desired_of, events_of, load, retained_of, slot};
use super::lease::spawn_attempt;
use super::waiters::Gate;
use super::{Engine, Shared, lock};
use crate::error::{ErrorKind, Result};
use crate::events::EventAction;
use crate::manifest::DesiredJob;
use crate::reconcile::{self, Action};
use crate::state::{ApprovalRequest, ApprovalStatus, JobRecord, NewEvent, StepEvent, StepState};
use crate::store::JobWrite;

pub(in crate::engine) async fn reconcile_key(engine: &Engine, job: &str) {
    let shared = &engine.shared;
    if let Err(e) = reconcile_inner(engine, job).await {
        tracing::warn!(job, error = %e, "reconcile failed; requeued with backoff");
        let at = shared.clock.now_ms() + 500 + fastrand::u64(0..500);
        lock(&shared.queue).add_at(job, at);
    }
    // Parents cancelled by this reconcile (or earlier) close their children, with no
    // job's lock held.
    if !lock(&shared.closing).is_empty() {
        super::children::close_due(engine).await;
    }
}

async fn reconcile_inner(engine: &Engine, job: &str) -> Result<()> {
    let shared = &engine.shared;
    shared.reconciles.fetch_add(1, Ordering::Relaxed);
    let slot = slot(shared, job);
    let mut guard = slot.lock().await;
    let mut synced = false;
    for _round in 0..4 {
        load(shared, job, &mut guard).await?;
        let (mut desired, mut invalid, commit_id) = desired_of(shared, job);
        let now = shared.clock.now_ms();
        // Children that ended are recorded on their links, and a step waiting for them
        // settled (made ready, or failed), first, in their own write; the next round
        // reconciles and dispatches.
        if let Some(rec) = guard.as_deref()
            && let Some(w) = super::children::settle_write(shared, rec, now).await?
        {
            match commit(shared, &mut guard, w).await {
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        // A child job: its pinned definition (resolved again when this engine has not
        // seen it, e.g. another engine ordered it); none once cancelled by its parent.
        if let Some(rec) = guard.as_deref()
            && rec.ordered_by.is_some()
        {
            if rec.removed {
                desired = None;
            } else if desired.is_none() {
                desired = super::children::restore_one(shared, rec).await;
                // Unresolvable (its commit is gone): left as it is, like an invalid
                // manifest, never cancelled for it.
                invalid = desired.is_none();
            }
        }
        let kept = match (&desired, guard.as_deref()) {
            (None, Some(rec)) if rec.removed && rec.keep_on_removal => retained_of(shared, job),
            _ => None,
        };
        let actions = match (&kept, guard.as_deref()) {
            (Some(k), Some(rec)) => reconcile::reconcile_kept(k, rec, now),
            _ => reconcile::reconcile(desired.as_ref(), invalid, guard.as_deref(), now),
        };
        if kept.is_some() {
            desired = kept;
        }
        if actions.is_empty() {
            return Ok(());
        }
        if let Some(create) = actions
            .first()
            .filter(|a| matches!(a, Action::CreateJob(_)))
        {
            let Some(rec) = reconcile::new_record(job, create, &commit_id, now) else {
                return Ok(());
            };
            let detail = format!(
                "created from {} (template {}) at commit {}",
                rec.path,
                rec.template,
                commit_id.get(..8).unwrap_or(&commit_id)
            );
            let w =
                JobWrite::create(rec).event(NewEvent::new(now, "git", "job.created", None, detail));
            match commit(shared, &mut guard, w).await {
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(mut rec) = guard.as_deref().cloned() else {
            return Ok(());
        };
        let structural = actions
            .iter()
            .any(|a| matches!(a, Action::NewGeneration(_) | Action::Remove { .. }));
        if structural && !synced && *rec.commit != *commit_id {
            // The record may come from an engine that has seen a newer commit than this
            // one: catch up with the branch before changing the job's definition, so
            // that engines behind never roll a job back to an older definition.
            synced = true;
            super::sync::sync(shared, engine).await?;
            continue;
        }
        let applied = reconcile::apply(&mut rec, &actions, &commit_id);
        let mut events: Vec<NewEvent> = events_of(now, applied.changes).collect();
        let cancelled =
            cancel_requests(shared, &applied.cancel_approvals, now, &mut events).await?;
        if let Some(d) = &desired {
            super::targets::refresh_foreign(engine, d, &rec, &actions, now).await?;
        }
        let (to_start, requeue) = match &desired {
            Some(d) => start_ready(engine, d, &mut rec, &actions, now, &mut events),
            None => (Vec::new(), None),
        };
        let changed = guard.as_deref() != Some(&rec);
        if changed {
            rec.updated_at_ms = now;
            let mut w = JobWrite::update(rec).events(events);
            for req in &cancelled {
                w = w.update_approval(req.clone());
            }
            if let Err(e) = commit(shared, &mut guard, w).await {
                release_all(engine, job, d_agents(&desired, &to_start));
                if e.kind() == ErrorKind::Conflict {
                    continue;
                }
                return Err(e);
            }
        }
        if let (Some(d), Some(rec)) = (&desired, guard.as_ref()) {
            for (step, attempt) in to_start {
                spawn_attempt(engine, d.clone(), rec.clone(), step, attempt);
            }
        }
        for req in &cancelled {
            if let Err(e) = shared.human.approval_cancelled(req).await {
                tracing::warn!(id = %req.id, error = %e, "notifying the human channel failed");
            }
        }
        if let Some(at) = requeue {
            lock(&shared.queue).add_at(job, at);
        }
        if !structural {
            return Ok(());
        }
    }
    Ok(())
}

/// The one "reconcile then dispatch" step both reconciles and outcomes use: reserves a
/// slot and starts (in `rec`) each step the actions `Dispatch`, within the limits.
/// Returns the started `(step, attempt)`s, to spawn once the write is stored, and the
/// earliest `RequeueAt`.
pub(super) fn start_ready(
    engine: &Engine,
    d: &DesiredJob,
    rec: &mut JobRecord,
    actions: &[Action],
    now: u64,
    events: &mut Vec<NewEvent>,
) -> (Vec<(std::sync::Arc<str>, u32)>, Option<u64>) {
    let mut to_start = Vec::new();
    let mut requeue: Option<u64> = None;
    for a in actions {
        match a {
            Action::Dispatch { step } => {
                if let Some(attempt) = try_start(engine, d, rec, step, now, events) {
                    to_start.push((step.clone(), attempt));
                }
            }
            Action::RequeueAt(at) => requeue = Some(requeue.map_or(*at, |r| r.min(*at))),
            _ => {}
        }
    }
    (to_start, requeue)
}

/// Loads the open requests in `ids` and cancels them (`(id, reason)`), with an
/// `approval.cancelled` event each; the caller stores them with the job write.
pub(super) async fn cancel_requests(
    shared: &Shared,
    ids: &[(String, String)],
    now: u64,
    events: &mut Vec<NewEvent>,
) -> Result<Vec<ApprovalRequest>> {
    let mut out = Vec::with_capacity(ids.len());
    for (id, reason) in ids {
        let Some(mut req) = shared.store.approval(id).await? else {
            continue;
        };
        if req.status != ApprovalStatus::Open {
            continue;
        }
        req.status = ApprovalStatus::Cancelled {
            at_ms: now,
            reason: reason.clone(),
        };
        events.push(NewEvent::new(
            now,
            "engine",
            EventAction::ApprovalCancelled,
            Some(&req.step),
            format!("cancelled {id}: {reason}"),
        ));
        out.push(req);
    }
    Ok(out)
}

/// The `(step, agent)` of each started step, to release their slots.
pub(super) fn d_agents(
    desired: &Option<DesiredJob>,
    started: &[(std::sync::Arc<str>, u32)],
) -> Vec<(String, Option<String>)> {
    started
        .iter()
        .map(|(s, _)| {
            let agent = desired.as_ref().and_then(|d| {
                d.template
                    .spec
                    .steps
                    .iter()
                    .find(|x| same_id(&x.id, s))
                    .and_then(|x| x.agent.clone())
            });
            (s.to_string(), agent)
        })
        .collect()
}

/// Reserves a slot and moves the step to `Running` in `rec`; `None` when a limit is hit.
fn try_start(
    engine: &Engine,
    d: &DesiredJob,
    rec: &mut JobRecord,
    step: &str,
    now: u64,
    events: &mut Vec<NewEvent>,
) -> Option<u32> {
    let shared = &engine.shared;
    let spec = d
        .template
        .spec
        .steps
        .iter()
        .find(|s| same_id(&s.id, step))?;
    let agent_limit = spec
        .agent
        .as_deref()
        .and_then(|a| agent_of(shared, a))
        .and_then(|a| a.spec.max_concurrency);
    // A step under a `concurrency: {key: target}` limit: its job's target key.
    let target_limit = super::targets::target_limit(d, spec, rec);
    {
        let mut slots = lock(&shared.slots);
        // Other engines' holds, as read by this pass (`targets::refresh_foreign`);
        // without a reading of this pass the step waits for the job's next reconcile.
        let foreign = target_limit
            .as_ref()
            .map(|(k, _)| match slots.foreign.get(k) {
                Some(&(n, at)) if at == now => Some(n),
                _ => None,
            });
        if foreign == Some(None)
            && let Some((k, _)) = &target_limit
        {
            slots.waiting.wait(&rec.name, Gate::Target(k.clone()));
            drop(slots);
            lock(&shared.queue).add(&rec.name);
            shared.wake.notify_one();
            return None;
        }
        let target_running = target_limit.as_ref().map_or(0, |(k, _)| {
            slots.per_target.get(k).copied().unwrap_or(0) + foreign.flatten().unwrap_or(0)
        });
        let job_running = slots.per_job.get(&rec.name).copied().unwrap_or(0);
        let agent_running = spec
            .agent
            .as_ref()
            .and_then(|a| slots.per_agent.get(a).copied())
            .unwrap_or(0);
        let gate = if slots.total >= shared.config.max_running {
            Some(Gate::Engine)
        } else if d
            .job
            .spec
            .max_parallel_steps
            .is_some_and(|m| job_running >= m as usize)
        {
            Some(Gate::Job)
        } else if let Some(a) = spec.agent.as_ref()
            && agent_limit.is_some_and(|m| agent_running >= m as usize)
        {
            Some(Gate::Agent(a.clone()))
        } else if let Some((k, m)) = target_limit.as_ref()
            && target_running >= *m as usize
        {
            Some(Gate::Target(k.clone()))
        } else {
            None
        };
        if let Some(gate) = gate {
            slots.waiting.wait(&rec.name, gate);
            return None;
        }
        slots.total += 1;
        match slots.per_job.get_mut(&rec.name) {
            Some(n) => *n += 1,
            None => {
                slots.per_job.insert(rec.name.clone(), 1);
            }
        }
        if let Some(a) = &spec.agent {
            match slots.per_agent.get_mut(a) {
                Some(n) => *n += 1,
                None => {
                    slots.per_agent.insert(a.clone(), 1);
                }
            }
        }
        if let Some((key, _)) = target_limit {
            *slots.per_target.entry(key.clone()).or_default() += 1;
            slots
                .target_held
                .insert((rec.name.clone(), step.to_string()), key);
        }
    }
    let s = rec.step_mut(step)?;
    let next = s
        .state
        .apply(StepEvent::Start {
            holder: shared.holder.clone(),
            lease_until_ms: now + shared.config.lease_ms,
        })
        .ok()?;
    s.state = next;
    s.attempt += 1;
    let attempt = s.attempt;
    events.push(NewEvent::shared(
        now,
        &crate::events::engine_actor(),
        EventAction::StepStarted,
        Some(&s.id),
        crate::events::detail!("attempt {attempt} on {}", shared.config.id),
    ));
    shared.started.fetch_add(1, Ordering::Relaxed);
    Some(attempt)
}

/// Releases the slots the step `step` of `job` (of `agent`) holds, and queues the jobs
/// that waited for one.
pub(super) fn release(engine: &Engine, job: &str, step: &str, agent: Option<&str>) {
    let released = release_quiet(engine, job, step, agent);
    wake_released(engine, released);
}

/// Slots given back whose waiters are not woken yet (see [`release_quiet`]).
pub(super) struct Released<'a> {
    job: &'a str,
    agent: Option<&'a str>,
    target: Option<String>,
}

/// Releases the slots the step `step` of `job` (of `agent`) holds without waking anyone:
/// a finished attempt gives its slot back before its outcome is recorded, so the job's
/// next step can take it in the same write; [`wake_released`] runs after, and wakes a
/// waiter only for a slot still free then (no waiter is woken for a slot that the job
/// itself takes again at once).
pub(super) fn release_quiet<'a>(
    engine: &Engine,
    job: &'a str,
    step: &str,
    agent: Option<&'a str>,
) -> Released<'a> {
    let mut slots = lock(&engine.shared.slots);
    let target = if slots.target_held.is_empty() {
        None
    } else {
        slots
            .target_held
            .remove(&(job.to_string(), step.to_string()))
    };
    if let Some(key) = &target
        && let Some(n) = slots.per_target.get_mut(key)
    {
        *n = n.saturating_sub(1);
        if *n == 0 {
            slots.per_target.remove(key);
        }
    }
    slots.total = slots.total.saturating_sub(1);
    if let Some(n) = slots.per_job.get_mut(job) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            slots.per_job.remove(job);
        }
    }
    if let Some(a) = agent
        && let Some(n) = slots.per_agent.get_mut(a)
    {
        *n = n.saturating_sub(1);
    }
    Released { job, agent, target }
}

/// Queues the jobs waiting for what `released` gave back (see [`Waiters::released`](super::waiters::Waiters::released)).
pub(super) fn wake_released(engine: &Engine, released: Released<'_>) {
    let mut slots = lock(&engine.shared.slots);
    let free = engine.shared.config.max_running.saturating_sub(slots.total);
    let due = slots.waiting.released(
        released.job,
        released.agent,
        released.target.as_deref(),
        free,
    );
    drop(slots);
    if !due.is_empty() {
        engine.enqueue(due);
    }
}

/// Queues as many jobs waiting for an engine slot as there are free ones: called after
/// each reconcile, so a waiter woken for a slot it could not use passes it on.
pub(super) fn wake_for_free_slots(engine: &Engine) {
    let mut slots = lock(&engine.shared.slots);
    if !slots.waiting.any_engine() {
        return;
    }
    let free = engine.shared.config.max_running.saturating_sub(slots.total);
    let due = slots.waiting.due_engine(free);
    drop(slots);
    if !due.is_empty() {
        engine.enqueue(due);
    }
}

pub(super) fn release_all(engine: &Engine, job: &str, started: Vec<(String, Option<String>)>) {
    for (step, a) in started {
        release(engine, job, &step, a.as_deref());
    }
}

pub(super) fn holds(rec: &JobRecord, step: &str, attempt: u32, holder: &str) -> bool {
    rec.step(step)
        .is_some_and(|s| holds_step(s, attempt, holder))
}

/// Whether `holder` holds attempt `attempt` of step `s`.
pub(super) fn holds_step(s: &crate::state::StepRecord, attempt: u32, holder: &str) -> bool {
    s.attempt == attempt
        && matches!(&s.state, StepState::Running { holder: h, .. } if **h == *holder)
}
