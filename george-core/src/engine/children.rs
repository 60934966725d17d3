//! The engine's side of [sub-jobs](crate::children): ordering a child from an attempt
//! (validated, limited, created once, linked to its parent under the attempt's lease),
//! restoring children's pinned desired states on start, settling waiting steps when
//! their children finish, and applying the parent-close policy.
//!
//! Locks are taken parent-free: nothing here holds a job's slot while it takes another
//! job's, so a tree of jobs cannot deadlock. Restoring, settling and closing are in
//! [`children_life`](super::children_life).

use std::sync::Arc;

use serde_json::Value;

use super::dispatch::holds;
use super::io::{commit, load, slot, update_job};
use super::{Engine, Shared, lock};
use crate::children::{ChildLink, ChildOrder, ChildView, OrderedBy, child_name};
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventAction;
use crate::git::CommitId;
use crate::manifest::{DesiredJob, ManifestSet};
use crate::model::Params;
use crate::reconcile::{self, Action, JobDefinition};
use crate::state::{JobRecord, JobStatus, NewEvent};
use crate::store::JobWrite;

/// What an `order_job` call returns to the model.
#[derive(Debug, Clone)]
pub(crate) struct OrderReply {
    /// The child's name.
    pub(crate) name: String,
    /// Its status now.
    pub(crate) status: JobStatus,
    /// `{<step>: <outputs>}` of its steps so far.
    pub(crate) outputs: Value,
    /// Whether this call created it (`false`: it existed: the order is idempotent).
    pub(crate) created: bool,
}

/// Where an attempt orders child jobs.
#[async_trait::async_trait]
pub(crate) trait ChildOrders: Send + Sync {
    /// Orders `order` (its template already checked against the agent's `may_order`).
    /// An error is a refusal, worded for the model.
    async fn order(&self, order: &ChildOrder) -> std::result::Result<OrderReply, String>;
}

/// The orders of one attempt of one step.
pub(super) struct StepOrders {
    pub(super) engine: Engine,
    pub(super) job: String,
    pub(super) step: String,
    pub(super) attempt: u32,
    /// `agent:<name>`, the actor of `job.ordered`.
    pub(super) actor: Arc<str>,
}

#[async_trait::async_trait]
impl ChildOrders for StepOrders {
    async fn order(&self, order: &ChildOrder) -> std::result::Result<OrderReply, String> {
        self.order_inner(order).await.map_err(|e| match e.kind() {
            ErrorKind::InvalidInput | ErrorKind::PermissionDenied | ErrorKind::Conflict => {
                e.message().to_string()
            }
            _ => format!("ordering the child job failed: {e}"),
        })
    }
}

impl StepOrders {
    async fn order_inner(&self, order: &ChildOrder) -> Result<OrderReply> {
        let shared = &self.engine.shared;
        let holder = shared.config.id.as_str();
        let parent = self
            .engine
            .job(&self.job)
            .await?
            .ok_or_else(|| Error::not_found(format!("job {} is gone", self.job)))?;
        if !holds(&parent, &self.step, self.attempt, holder) {
            return Err(Error::conflict(
                "this attempt no longer holds its lease: nothing was ordered",
            ));
        }
        let key = order.key();
        let name = child_name(&self.job, &self.step, &key);
        let linked = parent
            .steps
            .iter()
            .flat_map(|s| s.children.iter())
            .any(|l| l.job == name);
        let mut created = false;
        match self.engine.job(&name).await? {
            Some(c) if c.ordered_by.as_ref().is_some_and(|o| o.job == self.job) => {}
            Some(_) => {
                return Err(Error::conflict(format!(
                    "a job named {name} exists and was not ordered by {}",
                    self.job
                )));
            }
            None => {
                self.check_limits(&parent, &name)?;
                let path = format!("ordered-by:{}/{}", self.job, self.step);
                let desired = resolve_at(
                    shared,
                    &parent.commit,
                    &name,
                    &path,
                    &order.template,
                    &order.params,
                )
                .await?
                .map_err(|why| {
                    Error::invalid_input(format!(
                        "template {:?} refused the order: {why}",
                        order.template
                    ))
                })?;
                let now = shared.clock.now_ms();
                let def = JobDefinition::of(&desired);
                let Some(mut rec) =
                    reconcile::new_record(&name, &Action::CreateJob(def), &parent.commit, now)
                else {
                    return Err(Error::backend("building the child's record failed"));
                };
                rec.ordered_by = Some(OrderedBy {
                    job: self.job.clone(),
                    step: self.step.clone(),
                    attempt: self.attempt,
                    commit: parent.commit.to_string(),
                    params: order.params.clone(),
                    key,
                    depth: depth_of(&parent) + 1,
                    parent_close: order.parent_close,
                    abandoned: false,
                });
                // Known before the record exists, so no reconcile sees the child without
                // its desired state (and cancels it as "removed").
                if let Ok(mut d) = shared.desired.write() {
                    d.children.insert(name.clone(), desired);
                }
                let detail = format!(
                    "ordered by {}/{} attempt {} (template {}, params {}) at commit {}",
                    self.job,
                    self.step,
                    self.attempt,
                    order.template,
                    serde_json::to_string(&order.params).unwrap_or_default(),
                    short(&parent.commit)
                );
                let slot = slot(shared, &name);
                let mut guard = slot.lock().await;
                load(shared, &name, &mut guard).await?;
                if guard.is_none() {
                    let w = JobWrite::create(rec).event(NewEvent::new(
                        now,
                        format!("job:{}", self.job),
                        EventAction::JobCreated,
                        None,
                        detail,
                    ));
                    match commit(shared, &mut guard, w).await {
                        Ok(_) => created = true,
                        Err(e) if e.kind() == ErrorKind::Conflict => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if !linked {
            self.link(order, &name).await?;
        }
        self.engine.requeue(&name);
        let child = self
            .engine
            .job(&name)
            .await?
            .ok_or_else(|| Error::not_found(format!("child job {name} is gone")))?;
        let view = ChildView::of(&child);
        Ok(OrderReply {
            name,
            status: view.status,
            outputs: view.outputs,
            created,
        })
    }

    /// Refuses an order beyond the operator's limits, or whose name a Git job has.
    fn check_limits(&self, parent: &JobRecord, name: &str) -> Result<()> {
        let config = &self.engine.shared.config;
        let depth = depth_of(parent) + 1;
        if depth > config.max_child_depth {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the child would have depth {depth}, over the operator's limit of {} (EngineConfig::max_child_depth)",
                    config.max_child_depth
                ),
            ));
        }
        let count = parent.steps.iter().map(|s| s.children.len()).sum::<usize>();
        if count >= config.max_children_per_job {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "job {} already ordered {count} child jobs, the operator's limit (EngineConfig::max_children_per_job)",
                    self.job
                ),
            ));
        }
        let taken = self
            .engine
            .shared
            .desired
            .read()
            .map(|d| d.set.jobs.contains_key(name) || d.set.invalid_job_names.contains(name))
            .unwrap_or(true);
        if taken {
            return Err(Error::conflict(format!(
                "a Job manifest in Git is named {name}"
            )));
        }
        Ok(())
    }

    /// Links the child to the parent's step, fenced by the attempt's lease.
    async fn link(&self, order: &ChildOrder, name: &str) -> Result<()> {
        let shared = &self.engine.shared;
        let holder = shared.config.id.clone();
        let now = shared.clock.now_ms();
        update_job(shared, &self.job, |rec| {
            if !holds(rec, &self.step, self.attempt, &holder) {
                return Err(Error::conflict(
                    "this attempt no longer holds its lease: the child is not linked",
                ));
            }
            let mut next = rec.clone();
            let Some(s) = next.step_mut(&self.step) else {
                return Ok(None);
            };
            if s.children.iter().any(|l| l.job == name) {
                return Ok(None);
            }
            s.children.push(ChildLink {
                job: name.to_string(),
                template: order.template.clone(),
                wait: order.wait,
                on_child_failure: order.on_child_failure,
                parent_close: order.parent_close,
                status: None,
                outputs: None,
                closed: false,
            });
            let id = s.id.clone();
            next.updated_at_ms = now;
            let w = JobWrite::update(next).event(NewEvent::shared(
                now,
                &self.actor,
                EventAction::JobOrdered,
                Some(&id),
                format!(
                    "ordered {name} (template {}, wait {}, on_child_failure {:?}, parent_close {})",
                    order.template,
                    order.wait,
                    order.on_child_failure,
                    order.parent_close.as_str()
                ),
            ));
            Ok(Some((w, ())))
        })
        .await?;
        Ok(())
    }
}

fn depth_of(rec: &JobRecord) -> u32 {
    rec.ordered_by.as_ref().map_or(0, |o| o.depth)
}

fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

/// Resolves an order against the manifests at `commit`: the current set when it is the
/// current commit, else the set loaded at that commit (the last one is kept). The outer
/// error is Git's; the inner one the order's (unknown template, bad parameters).
pub(super) async fn resolve_at(
    shared: &Shared,
    commit: &str,
    name: &str,
    path: &str,
    template: &str,
    params: &Params,
) -> Result<std::result::Result<DesiredJob, String>> {
    if let Ok(d) = shared.desired.read()
        && d.commit.as_ref().is_some_and(|c| c.0 == commit)
    {
        return Ok(d.set.resolve_ordered(name, path, template, params));
    }
    let cached = lock(&shared.pinned)
        .as_ref()
        .filter(|(c, _)| c == commit)
        .map(|(_, s)| s.clone());
    let set = match cached {
        Some(s) => s,
        None => {
            let files = shared
                .git
                .read_manifests(&CommitId(commit.to_string()))
                .await?;
            let limits = shared.config.manifest_limits;
            let set =
                tokio::task::spawn_blocking(move || ManifestSet::load_with_limits(files, limits))
                    .await
                    .map_err(|e| Error::backend("manifest loading panicked").with_source(e))?;
            let set = Arc::new(set);
            *lock(&shared.pinned) = Some((commit.to_string(), set.clone()));
            set
        }
    };
    Ok(set.resolve_ordered(name, path, template, params))
}

pub(super) use super::children_life::{after_write, close_due, restore, restore_one, settle_write};
