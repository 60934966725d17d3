//! The engine's side of [sub-jobs](crate::children): ordering a child from an attempt
//! (validated, limited, created once, linked to its parent under the attempt's lease),
//! restoring children's pinned desired states on start, settling waiting steps when
//! their children finish, and applying the parent-close policy.
//!
//! Locks are taken parent-free: nothing here holds a job's slot while it takes another
//! job's, so a tree of jobs cannot deadlock.

use std::sync::Arc;

use serde_json::Value;

use super::dispatch::holds;
use super::io::{commit, events_of, load, slot, update_job};
use super::{Engine, Shared, lock};
use crate::children::{
    ChildLink, ChildOrder, ChildView, OrderedBy, ParentClosePolicy, child_name, settle, to_close,
    unsettled,
};
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventAction;
use crate::git::CommitId;
use crate::manifest::{DesiredJob, ManifestSet};
use crate::model::Params;
use crate::reconcile::{self, Action, JobDefinition};
use crate::state::{ApprovalRequest, ApprovalStatus, JobRecord, JobStatus, NewEvent};
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
                    commit: parent.commit.clone(),
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
async fn resolve_at(
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

/// On start, before anything is reconciled: the desired state of every child not
/// removed, resolved again at its pinned commit; and the parents whose parent-close
/// policy is still due.
pub(super) async fn restore(shared: &Shared, jobs: &[JobRecord]) {
    let mut children: Vec<&JobRecord> = jobs
        .iter()
        .filter(|r| r.ordered_by.is_some() && !r.removed)
        .collect();
    children.sort_by(|a, b| a.commit.cmp(&b.commit));
    for rec in children {
        let _ = restore_one(shared, rec).await;
    }
    let mut closing = lock(&shared.closing);
    for rec in jobs {
        if !to_close(rec).is_empty() {
            closing.insert(rec.name.clone());
        }
    }
}

/// The desired state of child job `rec` resolved again at its pinned commit (and kept
/// beside the Git jobs'), or `None` (logged) when it no longer resolves.
///
/// When the pinned commit cannot be read (a source that keeps no history, such as the
/// Kubernetes CR source after a restart), the current commit's manifests are used if,
/// and only if, they resolve to the very definition the record was built from (the
/// same hash of name, template, parameters, template file and agent files).
pub(super) async fn restore_one(shared: &Shared, rec: &JobRecord) -> Option<DesiredJob> {
    let ob = rec.ordered_by.as_ref()?;
    let pinned = resolve_at(
        shared,
        &ob.commit,
        &rec.name,
        &rec.path,
        &rec.template,
        &ob.params,
    )
    .await;
    let found = match pinned {
        Ok(Ok(d)) => Some(d),
        Ok(Err(why)) => {
            tracing::warn!(job = %rec.name, why, "a child job's pinned definition no longer resolves");
            None
        }
        Err(e) => {
            let same = shared.desired.read().ok().and_then(|d| {
                d.set
                    .resolve_ordered(&rec.name, &rec.path, &rec.template, &ob.params)
                    .ok()
                    .filter(|x| x.hash == rec.spec_hash)
            });
            if same.is_none() {
                tracing::warn!(job = %rec.name, error = %e, "reading a child job's pinned commit failed");
            }
            same
        }
    };
    let d = found?;
    if let Ok(mut desired) = shared.desired.write() {
        desired.children.insert(rec.name.clone(), d.clone());
    }
    Some(d)
}

/// After a job write: a child that finished requeues its parent (which may wait for
/// it); a closed parent with children to close is queued for [`close_due`].
pub(super) fn after_write(shared: &Shared, before: Option<JobStatus>, rec: &JobRecord) {
    let mut wake = Vec::new();
    if let Some(ob) = &rec.ordered_by
        && rec.status.is_finished()
        && before != Some(rec.status)
    {
        wake.push(ob.job.clone());
    }
    if rec.status == JobStatus::Cancelled || rec.removed {
        let due = rec
            .steps
            .iter()
            .any(|s| s.children.iter().any(|l| !l.closed));
        if due && !to_close(rec).is_empty() {
            lock(&shared.closing).insert(rec.name.clone());
            wake.push(rec.name.clone());
        }
    }
    if !wake.is_empty() {
        let mut q = lock(&shared.queue);
        for k in &wake {
            q.add(k);
        }
        drop(q);
        shared.wake.notify_one();
    }
}

/// The write that settles `rec`'s links and waiting steps given their children now,
/// if anything changed (see [`settle`]). Reads only the children not yet seen finished.
pub(super) async fn settle_write(
    shared: &Shared,
    rec: &JobRecord,
    now: u64,
) -> Result<Option<JobWrite>> {
    let names = unsettled(rec);
    if names.is_empty() {
        return Ok(None);
    }
    let mut views = Vec::with_capacity(names.len());
    for n in &names {
        if let Some(c) = shared.store.get_job(n).await? {
            views.push(ChildView::of(&c));
        }
    }
    let mut next = rec.clone();
    let events = settle(&mut next, &views, now);
    if events.is_empty() {
        return Ok(None);
    }
    next.updated_at_ms = now;
    Ok(Some(JobWrite::update(next).events(events)))
}

/// Applies the parent-close policy of every parent queued for it.
pub(super) async fn close_due(engine: &Engine) {
    loop {
        let due: Vec<String> = std::mem::take(&mut *lock(&engine.shared.closing))
            .into_iter()
            .collect();
        if due.is_empty() {
            return;
        }
        for parent in due {
            if let Err(e) = close(engine, &parent).await {
                tracing::warn!(job = parent, error = %e, "applying the parent-close policy failed; retried");
                lock(&engine.shared.closing).insert(parent.clone());
                let at = engine.shared.clock.now_ms() + 1_000;
                lock(&engine.shared.queue).add_at(&parent, at);
                return;
            }
        }
    }
}

async fn close(engine: &Engine, parent: &str) -> Result<()> {
    let shared = &engine.shared;
    let Some(rec) = engine.job(parent).await? else {
        return Ok(());
    };
    let links = to_close(&rec);
    if links.is_empty() {
        return Ok(());
    }
    for l in &links {
        close_child(engine, parent, l).await?;
    }
    let now = shared.clock.now_ms();
    let engine_actor = crate::events::engine_actor();
    update_job(shared, parent, |rec| {
        let mut next = rec.clone();
        let mut events = Vec::new();
        for s in &mut next.steps {
            for l in &mut s.children {
                if !l.closed && links.iter().any(|c| c.job == l.job) {
                    l.closed = true;
                    events.push(NewEvent::shared(
                        now,
                        &engine_actor,
                        EventAction::ChildClosed,
                        Some(&s.id),
                        format!("child {}: parent_close {}", l.job, l.parent_close.as_str()),
                    ));
                }
            }
        }
        if events.is_empty() {
            return Ok(None);
        }
        next.updated_at_ms = now;
        Ok(Some((JobWrite::update(next).events(events), ())))
    })
    .await?;
    Ok(())
}

async fn close_child(engine: &Engine, parent: &str, link: &ChildLink) -> Result<()> {
    let shared = &engine.shared;
    let policy = link.parent_close;
    let why = format!(
        "parent {parent} was cancelled: parent_close {}",
        policy.as_str()
    );
    // A child already finished is left as it is: there is nothing to cancel. (Read
    // before the desired state is dropped, so a finished child keeps it.)
    let finished = engine
        .job(&link.job)
        .await?
        .is_none_or(|c| c.status.is_finished());
    if policy == ParentClosePolicy::Cancel
        && !finished
        && let Ok(mut d) = shared.desired.write()
    {
        d.children.remove(&link.job);
    }
    // A cancelled child's open approval requests are cancelled in the same write.
    let open: Vec<ApprovalRequest> = if policy == ParentClosePolicy::Cancel {
        shared
            .store
            .approvals(true)
            .await?
            .into_iter()
            .filter(|r| r.job == link.job)
            .collect()
    } else {
        Vec::new()
    };
    let now = shared.clock.now_ms();
    let engine_actor = crate::events::engine_actor();
    let cancelled = update_job(shared, &link.job, |rec| {
        let mut next = rec.clone();
        let mut events = Vec::new();
        let mut requests = Vec::new();
        match policy {
            ParentClosePolicy::Cancel => {
                if rec.removed || rec.status.is_finished() {
                    return Ok(None);
                }
                // Marked removed: it has no desired state any more (no reconcile brings
                // it back), and the reason is the `child.closed` event below.
                next.removed = true;
                let actions = reconcile::end_job(rec, JobStatus::Cancelled, &why);
                let applied = reconcile::apply(&mut next, &actions, &rec.commit);
                events.extend(events_of(now, applied.changes));
                for (id, reason) in &applied.cancel_approvals {
                    if let Some(req) = open.iter().find(|r| &r.id == id) {
                        let mut req = req.clone();
                        req.status = ApprovalStatus::Cancelled {
                            at_ms: now,
                            reason: reason.clone(),
                        };
                        events.push(NewEvent::new(
                            now,
                            engine_actor.clone(),
                            EventAction::ApprovalCancelled,
                            Some(req.step.as_str()),
                            format!("cancelled {id}: {reason}"),
                        ));
                        requests.push(req);
                    }
                }
            }
            ParentClosePolicy::Finish => {
                if rec.status.is_finished() {
                    return Ok(None);
                }
            }
            ParentClosePolicy::Abandon => match next.ordered_by.as_mut() {
                Some(o) if !o.abandoned => o.abandoned = true,
                _ => return Ok(None),
            },
        }
        events.push(NewEvent::shared(
            now,
            &engine_actor,
            EventAction::ChildClosed,
            None,
            why.clone(),
        ));
        next.updated_at_ms = now;
        let mut w = JobWrite::update(next).events(events);
        for r in &requests {
            w = w.update_approval(r.clone());
        }
        Ok(Some((w, requests)))
    })
    .await?;
    for req in cancelled.unwrap_or_default() {
        if let Err(e) = shared.human.approval_cancelled(&req).await {
            tracing::warn!(id = %req.id, error = %e, "notifying the human channel failed");
        }
    }
    engine.requeue(&link.job);
    Ok(())
}
