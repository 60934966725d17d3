//! The wiring: Git sync, per-job reconcile with write-through to the store, dispatch,
//! attempt completion, human decisions, and shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::attempt::{AttemptCtx, AttemptReport, Outcome};
use super::{Engine, JobUpdate, Shared, Slot, lock};
use crate::backoff::backoff_ms;
use crate::error::{Error, ErrorKind, Result};
use crate::git::{CommitId, is_manifest_path};
use crate::manifest::{DesiredJob, ManifestSet};
use crate::model::AgentSpec;
use crate::reconcile::{self, Action};
use crate::state::{
    ApprovalRequest, ApprovalStatus, JobRecord, JobStatus, NewEvent, Rejection, StepEvent,
    StepState,
};
use crate::store::{Claim, JobWrite, TranscriptKey};

const META_COMMIT: &str = "last_reconciled_commit";

pub(super) async fn sync(shared: &Shared, engine: &Engine) -> Result<Option<CommitId>> {
    let head = shared.git.resolve(&shared.config.reference).await?;
    let prev = shared.desired.read().ok().and_then(|d| d.commit.clone());
    if prev.as_ref() == Some(&head) {
        return Ok(None);
    }
    let keys: Vec<String> = match prev {
        None => {
            let files = shared.git.read_manifests(&head).await?;
            let set = tokio::task::spawn_blocking(move || ManifestSet::load(files))
                .await
                .map_err(|e| Error::backend("manifest loading panicked").with_source(e))?;
            for e in &set.errors {
                tracing::warn!(error = %e, "invalid manifest");
            }
            let mut keys: Vec<String> = set.jobs.keys().cloned().collect();
            keys.extend(set.invalid_job_names.iter().cloned());
            keys.extend(lock(&shared.cache).keys().cloned());
            if let Ok(mut d) = shared.desired.write() {
                d.set = set;
                d.commit = Some(head.clone());
            }
            keys
        }
        Some(prev) => {
            let changed: Vec<String> = shared
                .git
                .changed_paths(&prev, &head)
                .await?
                .into_iter()
                .filter(|p| is_manifest_path(p))
                .collect();
            let files = shared.git.read_files(&head, &changed).await?;
            let removed: Vec<String> = changed
                .iter()
                .filter(|p| !files.iter().any(|f| &f.path == *p))
                .cloned()
                .collect();
            let mut d = shared
                .desired
                .write()
                .map_err(|_| Error::backend("desired-state lock poisoned"))?;
            let before: Vec<(String, DesiredJob)> = d
                .set
                .jobs
                .iter()
                .filter(|(_, j)| {
                    removed.contains(&j.path)
                        && j.job.spec.on_removal == crate::model::RemovalPolicy::Keep
                })
                .map(|(n, j)| (n.clone(), j.clone()))
                .collect();
            let keys = d.set.update(files, &removed);
            for (name, job) in before {
                if !d.set.jobs.contains_key(&name) {
                    d.retained.insert(name, job);
                }
            }
            let readded: Vec<String> = d
                .retained
                .keys()
                .filter(|n| d.set.jobs.contains_key(*n))
                .cloned()
                .collect();
            for n in readded {
                d.retained.remove(&n);
            }
            d.commit = Some(head.clone());
            for e in d.set.errors.iter().filter(|e| changed.contains(&e.path)) {
                tracing::warn!(error = %e, "invalid manifest");
            }
            keys.into_iter().collect()
        }
    };
    shared.store.put_meta(META_COMMIT, head.as_str()).await?;
    engine.enqueue(keys);
    Ok(Some(head))
}

fn slot(shared: &Shared, job: &str) -> Slot {
    lock(&shared.cache)
        .entry(job.to_string())
        .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(None)))
        .clone()
}

fn desired_of(shared: &Shared, job: &str) -> (Option<DesiredJob>, bool, String) {
    match shared.desired.read() {
        Ok(d) => (
            d.set.jobs.get(job).cloned(),
            d.set.invalid_job_names.contains(job),
            d.commit.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
        ),
        Err(_) => (None, true, String::new()),
    }
}

/// The last definition of a job removed from Git and kept by policy.
fn retained_of(shared: &Shared, job: &str) -> Option<DesiredJob> {
    shared
        .desired
        .read()
        .ok()
        .and_then(|d| d.retained.get(job).cloned())
}

fn agent_of(shared: &Shared, name: &str) -> Option<Arc<AgentSpec>> {
    shared
        .desired
        .read()
        .ok()
        .and_then(|d| d.set.agents.get(name).map(|a| a.value.clone()))
}

fn events_of(
    now: u64,
    changes: Vec<(Option<String>, &'static str, String)>,
) -> impl Iterator<Item = NewEvent> {
    changes.into_iter().map(move |(step, action, detail)| {
        NewEvent::new(now, "engine", action, step.as_deref(), detail)
    })
}

fn publish(shared: &Shared, before: Option<JobStatus>, rec: &JobRecord) {
    if before != Some(rec.status) {
        let _ = shared.updates.send(JobUpdate {
            job: rec.name.clone(),
            status: rec.status,
            generation: rec.generation,
        });
    }
}

/// Stores `write` and updates the cached record; on `Conflict`, reloads the record from
/// the store so the next pass works on fresh state.
async fn commit(shared: &Shared, guard: &mut Option<JobRecord>, write: JobWrite) -> Result<()> {
    let mut rec = write.job.clone();
    match shared.store.commit(write).await {
        Ok(rev) => {
            rec.revision = rev;
            let before = guard.as_ref().map(|r| r.status);
            publish(shared, before, &rec);
            *guard = Some(rec);
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::Conflict => {
            *guard = shared.store.get_job(&rec.name).await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Claims due jobs from the store (as many as this engine has free slots), refreshes
/// their cached records and queues them.
pub(super) async fn claim_due(engine: &Engine) -> Result<()> {
    let shared = &engine.shared;
    let free = shared
        .config
        .max_running
        .saturating_sub(lock(&shared.slots).total);
    if free == 0 {
        return Ok(());
    }
    let claim = Claim {
        holder: shared.config.id.clone(),
        now_ms: shared.clock.now_ms(),
        visibility_ms: shared.config.claim_visibility_ms,
        limit: free.min(256),
    };
    let jobs = shared.store.claim_due(&claim).await?;
    let mut names = Vec::with_capacity(jobs.len());
    for rec in jobs {
        let slot = slot(shared, &rec.name);
        let mut guard = slot.lock().await;
        names.push(rec.name.clone());
        if guard.as_ref().is_none_or(|c| c.revision < rec.revision) {
            *guard = Some(rec);
        }
    }
    if !names.is_empty() {
        tracing::debug!(count = names.len(), "claimed due jobs");
        engine.enqueue(names);
    }
    Ok(())
}

/// At start: this engine has no attempt in flight, so any step still `Running` under
/// its id was left by an earlier incarnation that crashed. Make them `Ready` again.
pub(super) async fn recover_own_attempts(engine: &Engine, jobs: &[String]) -> Result<()> {
    let shared = &engine.shared;
    let me = &shared.config.id;
    for job in jobs {
        let slot = slot(shared, job);
        let mut guard = slot.lock().await;
        for _round in 0..4 {
            let Some(mut rec) = guard.clone() else {
                break;
            };
            let now = shared.clock.now_ms();
            let mut events = Vec::new();
            for s in &mut rec.steps {
                if matches!(&s.state, StepState::Running { holder, .. } if holder == me)
                    && let Ok(next) = s.state.apply(StepEvent::Interrupt)
                {
                    s.state = next;
                    events.push(NewEvent::new(
                        now,
                        "engine",
                        "step.interrupted",
                        Some(&s.id),
                        format!("attempt {} interrupted: engine {me} restarted", s.attempt),
                    ));
                }
            }
            if events.is_empty() {
                break;
            }
            rec.updated_at_ms = now;
            match commit(shared, &mut guard, JobWrite::update(rec).events(events)).await {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// One reconcile of one job: compute actions, apply them durably, dispatch.
pub(super) async fn reconcile_key(engine: &Engine, job: &str) {
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
            sync(shared, engine).await?;
            continue;
        }
        let changes = reconcile::apply(&mut rec, &actions, &commit_id);
        let mut events: Vec<NewEvent> = events_of(now, changes).collect();
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
            let w = JobWrite::update(rec).events(events);
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
        if let Some(at) = requeue {
            lock(&shared.queue).add_at(job, at);
        }
        if !structural {
            return Ok(());
        }
    }
    Ok(())
}

fn d_agents(desired: &Option<DesiredJob>, started: &[(String, u32)]) -> Vec<Option<String>> {
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
fn try_start(
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
        "step.started",
        Some(step),
        format!("attempt {attempt} on {}", shared.config.id),
    ));
    shared.started.fetch_add(1, Ordering::Relaxed);
    Some(attempt)
}

fn release(engine: &Engine, job: &str, agent: Option<&str>) {
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

fn release_all(engine: &Engine, job: &str, agents: Vec<Option<String>>) {
    for a in agents {
        release(engine, job, a.as_deref());
    }
}

fn spawn_attempt(engine: &Engine, d: DesiredJob, rec: JobRecord, step: String, attempt: u32) {
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
        match finish(&e, &d, &job, &step, attempt, report).await {
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

fn holds(rec: &JobRecord, step: &str, attempt: u32, holder: &str) -> bool {
    rec.step(step).is_some_and(|s| {
        s.attempt == attempt
            && matches!(&s.state, StepState::Running { holder: h, .. } if h == holder)
    })
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

/// Records an attempt's outcome, fenced: only the lease holder of that attempt may.
/// Returns whether the job was also reconciled in the same write (no requeue needed).
///
/// A `Conflict` means another write to the job came first (another step's outcome, a
/// human's decision, another engine): the record is reloaded and, while this engine
/// still holds the attempt's lease, the outcome is applied again on top of it.
async fn finish(
    engine: &Engine,
    d: &DesiredJob,
    job: &str,
    step: &str,
    attempt: u32,
    report: AttemptReport,
) -> Result<bool> {
    let shared = &engine.shared;
    let slot = slot(shared, job);
    let mut guard = slot.lock().await;
    const ROUNDS: usize = 5;
    let mut report = Some(report);
    for round in 1..=ROUNDS {
        let Some(this) = (if round == ROUNDS {
            report.take()
        } else {
            report.clone()
        }) else {
            break;
        };
        match finish_once(engine, d, job, step, attempt, this, &mut guard).await {
            Err(e) if e.kind() == ErrorKind::Conflict && round < ROUNDS => {
                tracing::debug!(
                    job,
                    step,
                    attempt,
                    "outcome write conflicted; reloaded, retrying"
                );
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

async fn finish_once(
    engine: &Engine,
    d: &DesiredJob,
    job: &str,
    step: &str,
    attempt: u32,
    report: AttemptReport,
    guard: &mut tokio::sync::MutexGuard<'_, Option<JobRecord>>,
) -> Result<(bool, Option<ApprovalRequest>)> {
    let shared = &engine.shared;
    let Some(mut rec) = guard.clone() else {
        return Ok((false, None));
    };
    if !holds(&rec, step, attempt, &shared.config.id) {
        tracing::warn!(
            job,
            step,
            attempt,
            "outcome of an attempt whose lease was lost: discarded"
        );
        return Ok((false, None));
    }
    let now = shared.clock.now_ms();
    let spec = d.template.spec.steps.iter().find(|s| s.id == step);
    let policy = spec.map(|s| s.retry).unwrap_or_default();
    let agent = spec.and_then(|s| s.agent.clone()).unwrap_or_default();
    let mut w_events = report.events;
    let mut approval = None;
    let Some(s) = rec.step_mut(step) else {
        return Ok((false, None));
    };
    s.usage.add(&report.usage);
    let (event, action, detail) = match report.outcome {
        Outcome::Succeeded(outputs) => {
            let d = format!("succeeded: {}", clip_json(&outputs));
            s.outputs = Some(outputs);
            s.message = None;
            (StepEvent::Succeed, "step.succeeded", d)
        }
        Outcome::Failed { reason, retryable } => {
            let retry_at = (retryable && attempt < policy.attempts)
                .then(|| now + backoff_ms(&policy, attempt));
            let d = match retry_at {
                Some(at) => format!("failed (retry in {} ms): {reason}", at - now),
                None => format!("failed: {reason}"),
            };
            s.message = Some(reason);
            (
                StepEvent::Fail {
                    retry_at_ms: retry_at,
                },
                "step.failed",
                d,
            )
        }
        Outcome::Blocked(reason) => {
            let d = format!("blocked: {reason}");
            s.message = Some(reason);
            (StepEvent::Block, "step.blocked", d)
        }
        Outcome::Deferred { until_ms, reason } => {
            let d = format!("deferred {} ms: {reason}", until_ms.saturating_sub(now));
            s.message = Some(reason);
            (StepEvent::Defer { until_ms }, "step.deferred", d)
        }
        Outcome::NeedsApproval(plan) => {
            let id = ApprovalRequest::make_id(job, step, attempt);
            let d = format!("plan submitted for approval ({id}): {}", plan.summary);
            approval = Some(ApprovalRequest {
                id: id.clone(),
                job: job.to_string(),
                step: step.to_string(),
                attempt,
                agent: agent.clone(),
                plan,
                requested_at_ms: now,
                status: ApprovalStatus::Open,
            });
            (
                StepEvent::RequestApproval { request: id },
                "approval.requested",
                d,
            )
        }
    };
    s.state = s
        .state
        .apply(event)
        .map_err(|e| Error::backend(format!("state machine: {e}")))?;
    rec.status = reconcile::derive_status(rec.steps.iter().map(|s| &s.state), rec.removed);
    rec.updated_at_ms = now;
    let actor = if agent.is_empty() {
        "engine".to_string()
    } else {
        format!("agent:{agent}")
    };
    w_events.push(NewEvent::new(now, actor, action, Some(step), detail));
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
            let changes = reconcile::apply(&mut rec, &actions, &commit_id);
            w_events.extend(events_of(now, changes));
            for a in &actions {
                match a {
                    Action::Dispatch { step } => {
                        if let Some(n) = try_start(engine, dn, &mut rec, step, now, &mut w_events) {
                            to_start.push((step.clone(), n));
                        }
                    }
                    Action::RequeueAt(at) => lock(&shared.queue).add_at(job, *at),
                    _ => {}
                }
            }
        }
    }
    let mut w = JobWrite::update(rec).events(w_events);
    if !report.transcript.is_empty() {
        w = w.transcript(
            TranscriptKey {
                job: job.into(),
                step: step.into(),
                attempt,
            },
            report.transcript,
        );
    }
    if let Some(req) = &approval {
        w = w.approval(req.clone(), false);
    }
    if let Err(e) = commit(shared, guard, w).await {
        release_all(engine, job, d_agents(&desired_now, &to_start));
        return Err(e);
    }
    if let (Some(dn), Some(rec)) = (&desired_now, guard.as_ref()) {
        for (step, n) in to_start {
            spawn_attempt(engine, dn.clone(), rec.clone(), step, n);
        }
    }
    Ok((reconciled, approval))
}

fn clip_json(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        let mut t: String = s.chars().take(160).collect();
        t.push('…');
        t
    } else {
        s
    }
}

pub(super) enum Decision {
    Approve(Option<String>),
    Reject(String),
}

pub(super) async fn decide(engine: &Engine, id: &str, by: &str, decision: Decision) -> Result<()> {
    let shared = &engine.shared;
    let Some(mut req) = shared.store.approval(id).await? else {
        return Err(Error::not_found(format!("no approval request {id}")));
    };
    if req.status != ApprovalStatus::Open {
        return Err(Error::conflict(format!(
            "approval request {id} is no longer open ({})",
            status_name(&req.status)
        )));
    }
    let slot = slot(shared, &req.job);
    let mut guard = slot.lock().await;
    if guard.is_none() {
        *guard = shared.store.get_job(&req.job).await?;
    }
    let Some(mut rec) = guard.clone() else {
        return Err(Error::not_found(format!("no job {}", req.job)));
    };
    let now = shared.clock.now_ms();
    let Some(s) = rec.step_mut(&req.step) else {
        return Err(Error::conflict(format!(
            "step {} no longer exists",
            req.step
        )));
    };
    if s.state
        != (StepState::AwaitingApproval {
            request: id.to_string(),
        })
    {
        return Err(Error::conflict(format!(
            "step {} does not wait for request {id} (it is {})",
            req.step,
            s.state.name()
        )));
    }
    let actor = format!("human:{by}");
    let event = match decision {
        Decision::Approve(note) => {
            s.state = s
                .state
                .apply(StepEvent::Approve)
                .map_err(|e| Error::backend(e.to_string()))?;
            s.outputs = Some(json!({ "summary": req.plan.summary, "actions": req.plan.actions }));
            s.message = None;
            req.status = ApprovalStatus::Approved {
                by: by.into(),
                at_ms: now,
                note: note.clone(),
            };
            NewEvent::new(
                now,
                actor,
                "approval.approved",
                Some(&req.step),
                format!(
                    "approved {id}{}",
                    note.map(|n| format!(": {n}")).unwrap_or_default()
                ),
            )
        }
        Decision::Reject(reason) => {
            s.state = s
                .state
                .apply(StepEvent::Reject)
                .map_err(|e| Error::backend(e.to_string()))?;
            s.rejections.push(Rejection {
                plan: req.plan.summary.clone(),
                reason: reason.clone(),
                by: by.into(),
            });
            s.message = Some(format!("plan rejected: {reason}"));
            req.status = ApprovalStatus::Rejected {
                by: by.into(),
                at_ms: now,
                reason: reason.clone(),
            };
            NewEvent::new(
                now,
                actor,
                "approval.rejected",
                Some(&req.step),
                format!("rejected {id}: {reason}"),
            )
        }
    };
    rec.status = reconcile::derive_status(rec.steps.iter().map(|s| &s.state), rec.removed);
    rec.updated_at_ms = now;
    let job = rec.name.clone();
    commit(
        shared,
        &mut guard,
        JobWrite::update(rec).event(event).approval(req, true),
    )
    .await?;
    drop(guard);
    engine.requeue(&job);
    Ok(())
}

fn status_name(s: &ApprovalStatus) -> String {
    match s {
        ApprovalStatus::Open => "open".into(),
        ApprovalStatus::Approved { by, .. } => format!("approved by {by}"),
        ApprovalStatus::Rejected { by, .. } => format!("rejected by {by}"),
        ApprovalStatus::Cancelled { .. } => "cancelled".into(),
    }
}

/// Aborts in-flight attempts and durably returns their steps to `Ready`.
pub(super) async fn interrupt_all(engine: &Engine) {
    let shared = &engine.shared;
    let running: Vec<_> = lock(&shared.attempts).drain().collect();
    for ((job, step), (attempt, handle)) in running {
        handle.abort();
        let _ = handle.await;
        let slot = slot(shared, &job);
        let mut guard = slot.lock().await;
        let Some(mut rec) = guard.clone() else {
            continue;
        };
        if !holds(&rec, &step, attempt, &shared.config.id) {
            continue;
        }
        let now = shared.clock.now_ms();
        if let Some(s) = rec.step_mut(&step)
            && let Ok(next) = s.state.apply(StepEvent::Interrupt)
        {
            s.state = next;
        }
        rec.updated_at_ms = now;
        let ev = NewEvent::new(
            now,
            "engine",
            "step.interrupted",
            Some(&step),
            format!(
                "attempt {attempt} interrupted: engine {} stopped",
                shared.config.id
            ),
        );
        if let Err(e) = commit(shared, &mut guard, JobWrite::update(rec).event(ev)).await {
            tracing::warn!(job, step, error = %e, "could not release an interrupted attempt; its lease will expire");
        }
    }
}
