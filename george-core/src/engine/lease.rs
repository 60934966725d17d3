//! A step attempt's task: it runs the attempt under a lease renewed at a third of its
//! length, enforces the step's timeout, records approved actions' effects as they happen
//! (fenced by the lease), and hands the outcome to [`finish`](super::finish).

use crate::state::record::same_id;
use std::time::Duration;

use tracing::Instrument as _;

use super::attempt::{AttemptCtx, AttemptReport, EffectLog, Outcome};
use super::dispatch::{holds, release, release_quiet, wake_released};
use super::io::{agent_of, commit, slot};
use super::{Engine, lock};
use crate::error::{ErrorKind, Result};
use crate::events::EventAction;
use crate::manifest::DesiredJob;
use crate::state::{ActionEffect, JobRecord, NewEvent, StepEvent, StepState};
use crate::store::JobWrite;

/// The next attempt an attempt's task runs itself (see [`spawn_attempt`]).
pub(super) struct Next {
    pub(super) d: DesiredJob,
    pub(super) rec: std::sync::Arc<JobRecord>,
    pub(super) step: std::sync::Arc<str>,
    pub(super) attempt: u32,
}

/// Spawns a task that runs attempt `attempt` of `step`. When its outcome makes the next
/// step of the job ready and this engine starts it in the same write, the same task goes
/// on with it (a chain of steps runs in one task, not one task per step); the in-flight
/// map follows it to the step it runs.
pub(super) fn spawn_attempt(
    engine: &Engine,
    d: DesiredJob,
    rec: std::sync::Arc<JobRecord>,
    step: std::sync::Arc<str>,
    attempt: u32,
) {
    let job = rec.clone();
    let first = Next {
        d,
        rec,
        step: step.clone(),
        attempt,
    };
    // Registered before the task can look itself up: the map's lock is held while it is
    // spawned.
    let mut attempts = lock(&engine.shared.attempts);
    let handle = tokio::spawn(run_chain(engine.clone(), first));
    attempts.insert(&job.name, step, attempt, handle);
}

async fn run_chain(e: Engine, first: Next) {
    let mut next = Some(first);
    while let Some(n) = next.take() {
        // One trace per attempt: a root span (never a child of whatever dispatched it),
        // with the model calls, tool calls and store writes of the attempt as its children.
        let span = tracing::info_span!(
            parent: None,
            "step.attempt",
            job = %n.rec.name,
            step = %n.step,
            attempt = n.attempt,
            agent = tracing::field::Empty,
            mode = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        next = run_attempt(&e, n).instrument(span).await;
    }
}

/// Runs one attempt to its outcome; returns the attempt this task runs next, if any.
async fn run_attempt(e: &Engine, n: Next) -> Option<Next> {
    let Next {
        d,
        rec,
        step: step_id,
        attempt,
    } = n;
    let step: &str = &step_id;
    {
        let job = rec.name.clone();
        // The template is shared (`Arc`) and lives as long as this task: no copy.
        let template = d.template.clone();
        let spec = template.spec.steps.iter().find(|s| same_id(&s.id, step))?;
        let current = tracing::Span::current();
        current.record("mode", mode_of(spec));
        if let Some(a) = spec.agent.as_deref() {
            current.record("agent", a);
        }
        let mut agents = super::attempt::AttemptAgents::default();
        if let Some(a) = spec.agent.as_deref().and_then(|a| agent_of(&e.shared, a)) {
            agents.insert(a);
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
                agents.insert(a);
            }
        }
        let tools = e.tool_table();
        // Only an execution records effects, only an agent that may order children
        // orders them.
        let log = spec.execute_approved.is_some().then(|| StepEffects {
            engine: e,
            job: &job,
            step,
            attempt,
        });
        let orders = agents
            .values()
            .any(|a| !a.spec.may_order.is_empty())
            .then(|| super::children::StepOrders {
                engine: e.clone(),
                job: job.clone(),
                step: step.to_string(),
                attempt,
                actor: e
                    .shared
                    .actors
                    .agent(spec.agent.as_deref().unwrap_or_default()),
            });
        let ctx = AttemptCtx {
            clock: &*e.shared.clock,
            providers: &e.shared.providers,
            factory: &e.shared.factory,
            tools: &tools,
            agents: &agents,
            desired: &d,
            record: &rec,
            spec,
            attempt,
            holder: &e.shared.config.id,
            approval: approval.as_ref(),
            effects: log.as_ref().map(|l| l as &dyn EffectLog),
            orders: orders
                .as_ref()
                .map(|o| o as &dyn super::children::ChildOrders),
            render: e.shared.config.manifest_limits.template,
            limits: e.shared.config.agent_limits,
            secrets: &e.shared.secrets,
            tool_lists: &e.shared.tool_lists,
            actors: &e.shared.actors,
            autonomy_ceiling: e.shared.config.autonomy_ceiling,
            store: &*e.shared.store,
        };
        // Boxed: the attempt's and the outcome's state machines are large, and a task's
        // future is copied when it is spawned and moved.
        let mut run = Box::pin(ctx.run());
        let timeout = spec.timeout_ms.map(Duration::from_millis);
        let started = tokio::time::Instant::now();
        let renew_every = Duration::from_millis((e.shared.config.lease_ms / 3).max(1));
        // The renewal runs beside the attempt, never instead of it: the attempt may hold
        // the job's lock (recording an approved action's effect) while a renewal waits
        // for it, so the attempt must keep being polled.
        let mut renewing: Option<std::pin::Pin<Box<dyn Future<Output = bool> + Send + '_>>> = None;
        let report = loop {
            let limit = timeout.map_or(renew_every, |t| {
                renew_every.min(t.saturating_sub(started.elapsed()))
            });
            tokio::select! {
                r = &mut run => break r,
                held = async {
                    match renewing.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                } => {
                    renewing = None;
                    if !held {
                        // Lost the lease: another engine owns the attempt now.
                        lock(&e.shared.attempts).remove(&job, step);
                        release(e, &job, step, spec.agent.as_deref());
                        return None;
                    }
                }
                _ = tokio::time::sleep(limit), if renewing.is_none() => {
                    if timeout.is_some_and(|t| started.elapsed() >= t) {
                        break AttemptReport {
                            outcome: Outcome::Failed { reason: format!("timed out after {} ms", spec.timeout_ms.unwrap_or(0)), retryable: true },
                            usage: Default::default(), transcript: Default::default(), events: vec![], resolves: vec![],
                        };
                    }
                    renewing = Some(Box::pin(renew(e, &job, step, attempt)));
                }
            }
        };
        drop(renewing);
        // The record this attempt started from is let go before the outcome is
        // recorded, so `finish` can take the cached record instead of copying it.
        drop(run);
        drop(rec);
        tracing::Span::current().record("outcome", outcome_of(&report.outcome));
        e.shared
            .metrics
            .step_finished(mode_of(spec), started.elapsed());
        let released = release_quiet(e, &job, step, spec.agent.as_deref());
        let resolves = !report.resolves.is_empty();
        let mut next = None;
        match Box::pin(super::finish::finish(
            e, &d, &job, step, attempt, report, &mut next,
        ))
        .await
        {
            Ok(true) => {}
            Ok(false) => e.requeue(&job),
            Err(err) => {
                tracing::warn!(job, step, error = %err, "recording the attempt's outcome failed");
                e.requeue(&job);
            }
        }
        wake_released(e, released);
        // The in-flight entry follows the task to the step it runs next; without one
        // (the engine is stopping and took it), the next step gets a task of its own.
        let next = {
            let mut attempts = lock(&e.shared.attempts);
            match next {
                Some(n) if attempts.follow(&job, step, n.step.clone(), n.attempt) => Some(n),
                Some(n) => {
                    drop(attempts);
                    spawn_attempt(e, n.d, n.rec, n.step, n.attempt);
                    None
                }
                None => {
                    attempts.remove(&job, step);
                    None
                }
            }
        };
        // The second write of a resolution: from the outcome as recorded (nothing when
        // it was discarded), so it is the same code a restart repairs with.
        if resolves && let Err(err) = super::resolves::complete_resolutions(e, &job).await {
            tracing::warn!(job, step, error = %err, "ending the resolved jobs failed; an engine start completes it");
        }
        next
    }
}

/// The `mode` of a `step.attempt` span.
fn mode_of(spec: &crate::model::StepSpec) -> &'static str {
    if spec.command.is_some() {
        "command"
    } else if spec.execute_approved.is_some() {
        "approved"
    } else {
        "agent"
    }
}

/// The `outcome` of a `step.attempt` span.
fn outcome_of(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded(_) => "succeeded",
        Outcome::Failed { .. } => "failed",
        Outcome::Blocked(_) => "blocked",
        Outcome::NeedsApproval(_) => "needs_approval",
        Outcome::Deferred { .. } => "deferred",
        Outcome::WaitForChildren(_) => "waiting_for_children",
    }
}

async fn renew(engine: &Engine, job: &str, step: &str, attempt: u32) -> bool {
    let shared = &engine.shared;
    let slot = slot(shared, job);
    let mut guard = slot.lock().await;
    for _round in 0..4 {
        if super::io::load(shared, job, &mut guard).await.is_err() {
            return false;
        }
        let Some(mut rec) = guard.as_deref().cloned() else {
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
        let span = tracing::info_span!("store.commit", write = "lease");
        match commit(shared, &mut guard, JobWrite::update(rec))
            .instrument(span)
            .await
        {
            Ok(_) => return true,
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
struct StepEffects<'a> {
    engine: &'a Engine,
    job: &'a str,
    step: &'a str,
    attempt: u32,
}

#[async_trait::async_trait]
impl EffectLog for StepEffects<'_> {
    async fn record(&self, effect: ActionEffect) -> Result<()> {
        let shared = &self.engine.shared;
        let recorded = super::io::update_job(shared, self.job, |rec| {
            if !holds(rec, self.step, self.attempt, &shared.config.id) {
                return Err(crate::Error::conflict(format!(
                    "attempt {} of {}/{} lost its lease",
                    self.attempt, self.job, self.step
                )));
            }
            let now = shared.clock.now_ms();
            let mut rec = rec.clone();
            let Some(s) = rec.step_mut(self.step) else {
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
                Some(self.step),
                format!(
                    "approved action {} ({}) took effect: {}",
                    effect.index, effect.key, effect.tool
                ),
            );
            Ok(Some((JobWrite::update(rec).event(ev), ())))
        })
        .instrument(tracing::info_span!("store.commit", write = "effect"))
        .await?;
        let _ = recorded;
        Ok(())
    }
}
