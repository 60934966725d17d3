//! Reconcile and dispatch: one reconcile of one job (the pure reconciler's actions
//! applied durably, approval requests of a changed job cancelled), starting ready steps
//! within the concurrency limits, running each attempt under a renewed lease.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::attempt::{AttemptCtx, AttemptReport, EffectLog, Outcome};
use super::io::{agent_of, commit, desired_of, events_of, retained_of, slot};
use super::{Engine, Shared, lock};
use crate::error::{ErrorKind, Result};
use crate::events::EventAction;
use crate::manifest::DesiredJob;
use crate::reconcile::{self, Action};
use crate::state::{
    ActionEffect, ApprovalRequest, ApprovalStatus, JobRecord, NewEvent, StepEvent, StepState,
};
use crate::store::JobWrite;

pub(in crate::engine) async fn reconcile_key(engine: &Engine, job: &str) {
    let shared = &engine.shared;
    if let Err(e) = reconcile_inner(engine, job).await {
        tracing::warn!(job, error = %e, "reconcile failed; requeued with backoff");
        let at = shared.clock.now_ms() + 500 + fastrand::u64(0..500);
        lock(&shared.queue).add_at(job, at);
    }
}

async fn reconcile_inner(engine: &Engine, job: &str) -> Result<()> {
    let shared = &engine.shared;
    shared.reconciles.fetch_add(1, Ordering::Relaxed);
    let slot = slot(shared, job);
    let mut guard = slot.lock().await;
    let mut synced = false;
    for _round in 0..4 {
        let (mut desired, invalid, commit_id) = desired_of(shared, job);
        let now = shared.clock.now_ms();
        let kept = match (&desired, guard.as_ref()) {
            (None, Some(rec)) if rec.removed && rec.keep_on_removal => retained_of(shared, job),
            _ => None,
        };
        let actions = match (&kept, guard.as_ref()) {
            (Some(k), Some(rec)) => reconcile::reconcile_kept(k, rec, now),
            _ => reconcile::reconcile(desired.as_ref(), invalid, guard.as_ref(), now),
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
                Ok(()) => continue,
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(mut rec) = guard.clone() else {
            return Ok(());
        };
        let structural = actions
            .iter()
            .any(|a| matches!(a, Action::NewGeneration(_) | Action::Remove { .. }));
        if structural && !synced && rec.commit != commit_id {
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
        let mut requeue = None;
        let mut to_start = Vec::new();
        if let Some(d) = &desired {
            for a in &actions {
                match a {
                    Action::Dispatch { step } => {
                        if let Some(attempt) =
                            try_start(engine, d, &mut rec, step, now, &mut events)
                        {
                            to_start.push((step.clone(), attempt));
                        }
                    }
                    Action::RequeueAt(at) => requeue = Some(*at),
                    _ => {}
                }
            }
        }
        let changed = guard.as_ref() != Some(&rec);
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

/// Loads the open requests in `ids` and cancels them (`(id, reason)`), with an
/// `approval.cancelled` event each; the caller stores them with the job write.
async fn cancel_requests(
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

pub(super) fn d_agents(
    desired: &Option<DesiredJob>,
    started: &[(String, u32)],
) -> Vec<Option<String>> {
    started
        .iter()
        .map(|(s, _)| {
            desired.as_ref().and_then(|d| {
                d.template
                    .spec
                    .steps
                    .iter()
                    .find(|x| &x.id == s)
                    .and_then(|x| x.agent.clone())
            })
        })
        .collect()
}

/// Reserves a slot and moves the step to `Running` in `rec`; `None` when a limit is hit.
pub(super) fn try_start(
    engine: &Engine,
    d: &DesiredJob,
    rec: &mut JobRecord,
    step: &str,
    now: u64,
    events: &mut Vec<NewEvent>,
) -> Option<u32> {
    let shared = &engine.shared;
    let spec = d.template.spec.steps.iter().find(|s| s.id == step)?;
    let agent_limit = spec
        .agent
        .as_deref()
        .and_then(|a| agent_of(shared, a))
        .and_then(|a| a.spec.max_concurrency);
    {
        let mut slots = lock(&shared.slots);
        let job_running = slots.per_job.get(&rec.name).copied().unwrap_or(0);
        let agent_running = spec
            .agent
            .as_ref()
            .and_then(|a| slots.per_agent.get(a).copied())
            .unwrap_or(0);
        let over = slots.total >= shared.config.max_running
            || d.job
                .spec
                .max_parallel_steps
                .is_some_and(|m| job_running >= m as usize)
            || agent_limit.is_some_and(|m| agent_running >= m as usize);
        if over {
            slots.waiting.insert(rec.name.clone());
            return None;
        }
        slots.total += 1;
        *slots.per_job.entry(rec.name.clone()).or_default() += 1;
        if let Some(a) = &spec.agent {
            *slots.per_agent.entry(a.clone()).or_default() += 1;
        }
    }
    let s = rec.step_mut(step)?;
    let next = s
        .state
        .apply(StepEvent::Start {
            holder: shared.config.id.clone(),
            lease_until_ms: now + shared.config.lease_ms,
        })
        .ok()?;
    s.state = next;
    s.attempt += 1;
    let attempt = s.attempt;
    events.push(NewEvent::new(
        now,
        "engine",
        EventAction::StepStarted,
        Some(step),
        format!("attempt {attempt} on {}", shared.config.id),
    ));
    shared.started.fetch_add(1, Ordering::Relaxed);
    Some(attempt)
}

pub(super) fn release(engine: &Engine, job: &str, agent: Option<&str>) {
    let mut slots = lock(&engine.shared.slots);
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
    let waiting = std::mem::take(&mut slots.waiting);
    drop(slots);
    engine.enqueue(waiting);
}

pub(super) fn release_all(engine: &Engine, job: &str, agents: Vec<Option<String>>) {
    for a in agents {
        release(engine, job, a.as_deref());
    }
}

pub(super) fn spawn_attempt(
    engine: &Engine,
    d: DesiredJob,
    rec: JobRecord,
    step: String,
    attempt: u32,
) {
    let e = engine.clone();
    let key = (rec.name.clone(), step.clone());
    let handle = tokio::spawn(async move {
        let job = rec.name.clone();
        let Some(spec) = d.template.spec.steps.iter().find(|s| s.id == step).cloned() else {
            return;
        };
        let mut agents = HashMap::new();
        if let Some(a) = spec.agent.as_deref().and_then(|a| agent_of(&e.shared, a)) {
            agents.insert(a.metadata.name.clone(), a);
        }
        // An execution: the approval its source step links to, as stored, and the
        // planning agent's spec *now* (a tool removed since is not run).
        let mut approval = None;
        if let Some(src) = &spec.execute_approved
            && let Some(link) = rec.step(src).and_then(|s| s.approved.as_ref())
        {
            match e.shared.store.approval(&link.request).await {
                Ok(req) => approval = req,
                Err(err) => {
                    tracing::warn!(job, step, error = %err, "loading the approved plan failed");
                }
            }
            if let Some(a) = approval
                .as_ref()
                .and_then(|r| agent_of(&e.shared, &r.agent))
            {
                agents.insert(a.metadata.name.clone(), a);
            }
        }
        let log = StepEffects {
            engine: e.clone(),
            job: job.clone(),
            step: step.clone(),
            attempt,
        };
        let ctx = AttemptCtx {
            clock: &*e.shared.clock,
            providers: &e.shared.providers,
            factory: &e.shared.factory,
            tools: &e.shared.tools,
            commands: e.shared.commands.as_ref(),
            agents: &agents,
            desired: &d,
            record: &rec,
            spec: &spec,
            attempt,
            holder: &e.shared.config.id,
            approval: approval.as_ref(),
            effects: Some(&log),
        };
        let run = ctx.run();
        tokio::pin!(run);
        let timeout = spec.timeout_ms.map(Duration::from_millis);
        let started = tokio::time::Instant::now();
        let renew_every = Duration::from_millis((e.shared.config.lease_ms / 3).max(1));
        let report = loop {
            let limit = timeout.map_or(renew_every, |t| {
                renew_every.min(t.saturating_sub(started.elapsed()))
            });
            tokio::select! {
                r = &mut run => break r,
                _ = tokio::time::sleep(limit) => {
                    if timeout.is_some_and(|t| started.elapsed() >= t) {
                        break AttemptReport {
                            outcome: Outcome::Failed { reason: format!("timed out after {} ms", spec.timeout_ms.unwrap_or(0)), retryable: true },
                            usage: Default::default(), transcript: vec![], events: vec![],
                        };
                    }
                    if !renew(&e, &job, &step, attempt).await {
                        // Lost the lease: another engine owns the attempt now.
                        lock(&e.shared.attempts).remove(&(job.clone(), step.clone()));
                        release(&e, &job, spec.agent.as_deref());
                        return;
                    }
                }
            }
        };
        lock(&e.shared.attempts).remove(&(job.clone(), step.clone()));
        release(&e, &job, spec.agent.as_deref());
        match super::finish::finish(&e, &d, &job, &step, attempt, report).await {
            Ok(true) => {}
            Ok(false) => e.requeue(&job),
            Err(err) => {
                tracing::warn!(job, step, error = %err, "recording the attempt's outcome failed");
                e.requeue(&job);
            }
        }
    });
    lock(&engine.shared.attempts).insert(key, (attempt, handle));
}

pub(super) fn holds(rec: &JobRecord, step: &str, attempt: u32, holder: &str) -> bool {
    rec.step(step)
        .is_some_and(|s| holds_step(s, attempt, holder))
}

/// Whether `holder` holds attempt `attempt` of step `s`.
pub(super) fn holds_step(s: &crate::state::StepRecord, attempt: u32, holder: &str) -> bool {
    s.attempt == attempt && matches!(&s.state, StepState::Running { holder: h, .. } if h == holder)
}

async fn renew(engine: &Engine, job: &str, step: &str, attempt: u32) -> bool {
    let shared = &engine.shared;
    let slot = slot(shared, job);
    let mut guard = slot.lock().await;
    for _round in 0..4 {
        let Some(mut rec) = guard.clone() else {
            return false;
        };
        if !holds(&rec, step, attempt, &shared.config.id) {
            return false;
        }
        let now = shared.clock.now_ms();
        let held_until = match rec.step(step).map(|s| &s.state) {
            Some(StepState::Running { lease_until_ms, .. }) => *lease_until_ms,
            _ => 0,
        };
        if let Some(s) = rec.step_mut(step)
            && let Ok(next) = s.state.apply(StepEvent::Renew {
                lease_until_ms: now + shared.config.lease_ms,
            })
        {
            s.state = next;
        }
        rec.updated_at_ms = now;
        match commit(shared, &mut guard, JobWrite::update(rec)).await {
            Ok(()) => return true,
            // Another write to the job (another step, a human): reloaded; try again.
            Err(e) if e.kind() == ErrorKind::Conflict => continue,
            // The store is unreachable: the lease still holds until it expires.
            Err(e) => {
                tracing::warn!(job, step, error = %e, "renewing a lease failed");
                return now < held_until;
            }
        }
    }
    false
}

/// Records each approved action's effect on its step, fenced by the attempt's lease,
/// before the next action runs.
struct StepEffects {
    engine: Engine,
    job: String,
    step: String,
    attempt: u32,
}

#[async_trait::async_trait]
impl EffectLog for StepEffects {
    async fn record(&self, effect: ActionEffect) -> Result<()> {
        let shared = &self.engine.shared;
        let recorded = super::io::update_job(shared, &self.job, |rec| {
            if !holds(rec, &self.step, self.attempt, &shared.config.id) {
                return Err(crate::Error::conflict(format!(
                    "attempt {} of {}/{} lost its lease",
                    self.attempt, self.job, self.step
                )));
            }
            let now = shared.clock.now_ms();
            let mut rec = rec.clone();
            let Some(s) = rec.step_mut(&self.step) else {
                return Ok(None);
            };
            if s.effects.iter().any(|e| e.index == effect.index) {
                return Ok(None);
            }
            s.effects.push(effect.clone());
            rec.updated_at_ms = now;
            let ev = NewEvent::new(
                now,
                "engine",
                EventAction::ActionExecuted,
                Some(&self.step),
                format!(
                    "approved action {} ({}) took effect: {}",
                    effect.index, effect.key, effect.tool
                ),
            );
            Ok(Some((JobWrite::update(rec).event(ev), ())))
        })
        .await?;
        let _ = recorded;
        Ok(())
    }
}
