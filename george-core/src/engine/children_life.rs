//! The life of children after they are ordered (see [`children`](super::children)):
//! their pinned desired states restored on start, waiting steps settled when their
//! children finish, and the parent-close policy applied.

use super::io::{events_of, update_job};
use super::{Engine, Shared, lock};
use crate::children::{ChildLink, ChildView, ParentClosePolicy, settle, to_close, unsettled};
use crate::error::Result;
use crate::events::EventAction;
use crate::manifest::DesiredJob;
use crate::reconcile::{self};
use crate::state::{ApprovalRequest, ApprovalStatus, JobRecord, JobStatus, NewEvent};
use crate::store::JobWrite;

use super::children::resolve_at;

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
        for s in next.steps_mut() {
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
