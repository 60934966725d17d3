//! The operator's view of an engine: reads an HTTP API or a dashboard needs (every job,
//! a page of events, a transcript, approvals, the catalogue of agents, templates and
//! tools, the head of the followed reference), and two operator actions, cancelling and
//! retrying a job.
//!
//! Both actions take the authenticated identity (an [`Approver`]) of whoever asked and
//! record it as the actor (`human:<id>`) of their events. Neither checks any role: the
//! caller (e.g. `george-http`, which requires its `admin` role) decides who may.
//!
//! - [`Engine::cancel_job`] applies the state machine's `Cancel` event to every step
//!   that is not `Succeeded` or `Cancelled`, cancels the job's open approval requests
//!   and sets the job `Cancelled`, in one write. The reconciler then leaves the job
//!   alone until a new generation (a changed manifest) starts its cancelled steps over.
//!   A running attempt loses its lease and stops at its next renewal (a third of
//!   `lease_ms`); its outcome is discarded.
//! - [`Engine::retry_job`] starts a `Failed`, `Cancelled` or `Blocked` job over, as a new
//!   generation would, without changing the generation: its terminally failed, cancelled
//!   and blocked steps become `Pending` again (their message cleared, their attempt count
//!   kept, so transcript keys and approval ids stay unique); succeeded steps keep their
//!   outputs, and an approved plan not yet executed still runs (it was approved for
//!   this generation). Each retried step gets one more attempt than its retry policy
//!   had left, not a fresh set.
//!
//! ```
//! # use std::sync::Arc;
//! # use george_core::{approval::Approver, engine::Engine, state::JobStatus};
//! # use george_core::{command::CommandToolExecutor, memory::{InMemoryGitSource, InMemoryStateStore}};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> george_core::Result<()> {
//! let git = InMemoryGitSource::new();
//! git.commit_files("main", [
//!     ("task-templates/t.yaml", "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: s, command: {program: 'false'}, retry: {attempts: 1}}\n"),
//!     ("jobs/j.yaml", "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n"),
//! ], "c1");
//! let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
//!     .commands(CommandToolExecutor::new(["false"]))
//!     .build()?;
//! engine.start().await?;
//! let run = engine.spawn();
//! let limit = std::time::Duration::from_secs(10);
//! assert_eq!(engine.wait_finished("j", limit).await?, JobStatus::Failed);
//! let alice = Approver::user("alice");
//! engine.retry_job("j", &alice, "the disk is free again").await?;  // one more attempt
//! engine.wait_for("j", limit, |s| s == JobStatus::Failed).await?;
//! assert_eq!(engine.job("j").await?.unwrap().steps[0].attempt, 2);
//! run.shutdown().await;
//! # Ok(()) }
//! ```

use super::Engine;
use super::io::{ROUNDS, commit, desired_of, slot};
use crate::approval::Approver;
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventAction;
use crate::git::CommitId;
use crate::manifest::Loaded;
use crate::model::{AgentSpec, TaskTemplate};
use crate::provider::Message;
use crate::reconcile::{self, Action, derive_status};
use crate::state::{
    ApprovalRequest, ApprovalStatus, Event, JobRecord, JobStatus, NewEvent, StepState,
};
use crate::store::{JobWrite, TranscriptKey};
use crate::tool::ToolDefinition;

/// What is available at the current commit: valid agent specs and templates (each
/// sorted by name), and the tools registered with the engine (sorted by name).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Catalogue {
    /// Valid agent specs, with their paths.
    pub agents: Vec<Loaded<AgentSpec>>,
    /// Valid task templates, with their paths.
    pub templates: Vec<Loaded<TaskTemplate>>,
    /// Registered tools.
    pub tools: Vec<CatalogueTool>,
}

/// One registered tool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CatalogueTool {
    /// Its definition; `definition.effect` is the operator's class when one was set
    /// (`EngineBuilder::effect_class`), else the executor's declared default.
    pub definition: ToolDefinition,
    /// Whether the operator fixed the effect class (then it is final); when not, the
    /// executor may classify each call itself (`ToolExecutor::effect_of`).
    pub effect_fixed: bool,
}

impl Engine {
    /// Every job record in the store (any order).
    ///
    /// # Errors
    /// Store errors.
    pub async fn jobs(&self) -> Result<Vec<JobRecord>> {
        self.shared.store.list_jobs().await
    }

    /// At most `limit` events of `job` with a sequence number above `after_seq`, in order.
    ///
    /// # Errors
    /// Store errors.
    pub async fn events_after(
        &self,
        job: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.shared.store.events(job, after_seq, limit).await
    }

    /// The transcript of `attempt` (1-based) of `job`/`step`; `None` when there is none
    /// (never written, or deleted by [`Engine::compact`]).
    ///
    /// # Errors
    /// Store errors.
    pub async fn transcript(
        &self,
        job: &str,
        step: &str,
        attempt: u32,
    ) -> Result<Option<Vec<Message>>> {
        let key = TranscriptKey {
            job: job.into(),
            step: step.into(),
            attempt,
        };
        self.shared.store.transcript(&key).await
    }

    /// The approval request `id`, open or decided.
    ///
    /// # Errors
    /// Store errors.
    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>> {
        self.shared.store.approval(id).await
    }

    /// Approval requests: the open ones, or all of them (decided and cancelled too).
    ///
    /// # Errors
    /// Store errors.
    pub async fn approvals(&self, open_only: bool) -> Result<Vec<ApprovalRequest>> {
        self.shared.store.approvals(open_only).await
    }

    /// The agents and templates valid at the current commit and the registered tools.
    pub fn catalogue(&self) -> Catalogue {
        let mut out = Catalogue::default();
        if let Ok(d) = self.shared.desired.read() {
            out.agents = d.set.agents.values().cloned().collect();
            out.templates = d.set.templates.values().cloned().collect();
        }
        out.agents
            .sort_by(|a, b| a.value.metadata.name.cmp(&b.value.metadata.name));
        out.templates
            .sort_by(|a, b| a.value.metadata.name.cmp(&b.value.metadata.name));
        out.tools = self
            .tool_table()
            .values()
            .map(|t| CatalogueTool {
                definition: t.definition.clone(),
                effect_fixed: t.effect_fixed,
            })
            .collect();
        out.tools
            .sort_by(|a, b| a.definition.name.cmp(&b.definition.name));
        out
    }

    /// The desired state of `job` at the current commit, when its manifest is valid there
    /// (`None` for an unknown or invalid job); for a child job
    /// ([sub-jobs](crate::children)) this engine knows, the one pinned at its parent's
    /// commit. Cheap: the parts are shared.
    pub fn desired_job(&self, job: &str) -> Option<crate::manifest::DesiredJob> {
        self.shared
            .desired
            .read()
            .ok()
            .and_then(|d| d.set.jobs.get(job).or_else(|| d.children.get(job)).cloned())
    }

    /// The Git reference this engine follows (`main`).
    pub fn reference(&self) -> &str {
        &self.shared.config.reference
    }

    /// The commit the followed reference points to now in the Git source (for a remote
    /// source: as of its last fetch). Compare with [`Engine::commit`] to see whether the
    /// engine is behind.
    ///
    /// # Errors
    /// Git errors.
    pub async fn source_head(&self) -> Result<CommitId> {
        self.shared.git.resolve(&self.shared.config.reference).await
    }

    /// Cancels `job` on behalf of `by` (see the [module docs](self)); `reason` (may be
    /// empty) goes to the event log. Cancelling a cancelled job changes nothing.
    /// Returns the job's record after the write.
    ///
    /// # Errors
    /// `NotFound` (no such job); `Conflict` (the job `Succeeded` or `Failed`, or kept
    /// changing); store errors.
    pub async fn cancel_job(&self, job: &str, by: &Approver, reason: &str) -> Result<JobRecord> {
        let why = because(by, "cancelled", reason);
        let record = self
            .change_job(
                job,
                |rec| {
                    match rec.status {
                        JobStatus::Cancelled => return Ok(None),
                        JobStatus::Succeeded | JobStatus::Failed => {
                            return Err(Error::conflict(format!(
                                "job {job} is {}: only an unfinished job can be cancelled",
                                rec.status
                            )));
                        }
                        _ => {}
                    }
                    let actions = reconcile::end_job(rec, JobStatus::Cancelled, &why);
                    let mut next = rec.clone();
                    let applied = reconcile::apply(&mut next, &actions, &rec.commit);
                    Ok(Some((next, applied.changes, applied.cancel_approvals)))
                },
                by,
            )
            .await?;
        Ok(record)
    }

    /// Starts the `Failed`, `Cancelled` or `Blocked` job `job` over on behalf of `by`
    /// (see the [module docs](self)); `reason` (may be empty) goes to the event log.
    /// Returns the job's record after the write.
    ///
    /// # Errors
    /// `NotFound` (no such job); `Conflict` (the job is in another status, its manifest
    /// was removed from Git or does not validate at the current commit, or it kept
    /// changing); store errors.
    pub async fn retry_job(&self, job: &str, by: &Approver, reason: &str) -> Result<JobRecord> {
        let why = because(by, "retried", reason);
        let (desired, _, _) = desired_of(&self.shared, job);
        let record = self
            .change_job(job, |rec| {
                if !matches!(
                    rec.status,
                    JobStatus::Failed | JobStatus::Cancelled | JobStatus::Blocked
                ) {
                    return Err(Error::conflict(format!(
                        "job {job} is {}: only a Failed, Cancelled or Blocked job can be retried",
                        rec.status
                    )));
                }
                if rec.removed || desired.is_none() {
                    return Err(Error::conflict(format!(
                        "job {job} has no valid manifest at the current commit: nothing to run"
                    )));
                }
                let mut next = rec.clone();
                let mut changes = Vec::new();
                for s in next.steps_mut() {
                    if matches!(
                        s.state,
                        StepState::Failed { retry_at_ms: None } | StepState::Cancelled | StepState::Blocked
                    ) {
                        changes.push((
                            Some(s.id.clone()),
                            EventAction::StepTransition,
                            format!("{} → pending: {why}", s.state.name()),
                        ));
                        s.state = StepState::Pending;
                        s.message = None;
                    }
                }
                let status = derive_status(next.steps.iter().map(|s| &s.state), next.removed);
                let applied = reconcile::apply(&mut next, &[Action::SetStatus(status)], &rec.commit);
                changes.extend(applied.changes);
                Ok(Some((next, changes, Vec::new())))
            }, by)
            .await?;
        Ok(record)
    }

    /// Read, change, commit under the job's lock, retried on `Conflict`: `change` returns
    /// the new record, the changes for the event log (logged as `by`) and the approval
    /// requests to cancel, or `None` when there is nothing to do. Notifies the human
    /// channel of cancelled requests and requeues the job.
    async fn change_job(
        &self,
        job: &str,
        mut change: impl FnMut(&JobRecord) -> Result<Option<Changed>>,
        by: &Approver,
    ) -> Result<JobRecord> {
        let shared = &self.shared;
        let actor = by.actor();
        // Checked first, so that asking about a name that is no job leaves no cache slot.
        if self.job(job).await?.is_none() {
            return Err(Error::not_found(format!("no job {job}")));
        }
        let slot = slot(shared, job);
        for round in 1..=ROUNDS {
            let mut guard = slot.lock().await;
            super::io::load(shared, job, &mut guard).await?;
            let Some(rec) = guard.as_deref().cloned() else {
                return Err(Error::not_found(format!("no job {job}")));
            };
            let Some((mut next, changes, to_cancel)) = change(&rec)? else {
                return Ok(rec);
            };
            let now = shared.clock.now_ms();
            next.updated_at_ms = now;
            let mut events: Vec<NewEvent> = changes
                .into_iter()
                .map(|(step, action, detail)| {
                    NewEvent::new(now, actor.as_str(), action, step.as_deref(), detail)
                })
                .collect();
            let mut cancelled = Vec::new();
            for (id, why) in to_cancel {
                let Some(mut req) = shared.store.approval(&id).await? else {
                    continue;
                };
                if req.status != ApprovalStatus::Open {
                    continue;
                }
                req.status = ApprovalStatus::Cancelled {
                    at_ms: now,
                    reason: why.clone(),
                };
                events.push(NewEvent::new(
                    now,
                    actor.as_str(),
                    EventAction::ApprovalCancelled,
                    Some(&req.step),
                    format!("cancelled {id}: {why}"),
                ));
                cancelled.push(req);
            }
            let mut write = JobWrite::update(next).events(events);
            for req in &cancelled {
                write = write.update_approval(req.clone());
            }
            match commit(shared, &mut guard, write).await {
                Ok(stored) => {
                    let stored = Some(JobRecord::clone(&stored));
                    drop(guard);
                    for req in &cancelled {
                        if let Err(e) = shared.human.approval_cancelled(req).await {
                            tracing::warn!(id = %req.id, error = %e, "notifying the human channel failed");
                        }
                    }
                    self.requeue(job);
                    return stored.ok_or_else(|| Error::not_found(format!("no job {job}")));
                }
                Err(e) if e.kind() == ErrorKind::Conflict && round < ROUNDS => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(format!(
            "job {job} kept changing; try again"
        )))
    }
}

/// A changed record, its event-log changes, and the approval requests to cancel.
type Changed = (
    JobRecord,
    Vec<(Option<std::sync::Arc<str>>, EventAction, String)>,
    Vec<(String, String)>,
);

fn because(by: &Approver, what: &str, reason: &str) -> String {
    let reason = reason.trim();
    if reason.is_empty() {
        format!("{what} by {}", by.actor())
    } else {
        format!("{what} by {}: {reason}", by.actor())
    }
}

#[cfg(test)]
#[path = "operator_tests.rs"]
mod tests;
