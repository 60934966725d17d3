//! The engine's access to observed state: the per-job cache slots, the write-through
//! commit, status broadcasts, the desired state at the current commit, and the one
//! job-update primitive (load, change, commit, reload on `Conflict`).

use std::sync::Arc;

use super::{ApprovalUpdate, JobUpdate, Shared, Slot, lock};
use crate::error::{ErrorKind, Result};
use crate::events::EventAction;
use crate::manifest::DesiredJob;
use crate::model::AgentSpec;
use crate::state::{JobRecord, JobStatus, NewEvent};
use crate::store::JobWrite;

/// Attempts of one read–change–commit before a `Conflict` is returned.
pub(super) const ROUNDS: usize = 5;

/// The cache slot of `job` (created empty when absent).
pub(super) fn slot(shared: &Shared, job: &str) -> Slot {
    let mut cache = lock(&shared.cache);
    if let Some(s) = cache.get(job) {
        return s.clone();
    }
    cache
        .entry(job.to_string())
        .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(None)))
        .clone()
}

/// Fills an empty slot from the store (the cache drops records at rest, see
/// [`JobRecord::at_rest`]); after it, `None` means the store has no such job.
pub(super) async fn load(
    shared: &Shared,
    job: &str,
    guard: &mut Option<Arc<JobRecord>>,
) -> Result<()> {
    if guard.is_none() {
        *guard = shared.store.get_job(job).await?.map(Arc::new);
    }
    Ok(())
}

/// The job's valid desired state, whether its manifest is invalid, and the commit. A
/// child job's desired state is the one pinned when it was ordered.
pub(super) fn desired_of(shared: &Shared, job: &str) -> (Option<DesiredJob>, bool, Arc<str>) {
    match shared.desired.read() {
        Ok(d) => (
            d.set.jobs.get(job).or_else(|| d.children.get(job)).cloned(),
            d.set.invalid_job_names.contains(job),
            d.commit_id.clone(),
        ),
        Err(_) => (None, true, "".into()),
    }
}

/// The last definition of a job removed from Git and kept by policy.
pub(super) fn retained_of(shared: &Shared, job: &str) -> Option<DesiredJob> {
    shared
        .desired
        .read()
        .ok()
        .and_then(|d| d.retained.get(job).cloned())
}

/// The agent spec `name` at the current commit.
pub(super) fn agent_of(shared: &Shared, name: &str) -> Option<Arc<AgentSpec>> {
    shared
        .desired
        .read()
        .ok()
        .and_then(|d| d.set.agents.get(name).map(|a| a.value.clone()))
}

/// Engine events from [`reconcile::apply`](crate::reconcile::apply)'s changes.
pub(super) fn events_of(
    now: u64,
    changes: Vec<(Option<Arc<str>>, EventAction, String)>,
) -> impl Iterator<Item = NewEvent> {
    let engine = crate::events::engine_actor();
    changes.into_iter().map(move |(step, action, detail)| {
        NewEvent::shared(now, &engine, action, step.as_ref(), detail)
    })
}

/// Broadcasts the job's status when it changed, then each approval request the write
/// opened or closed.
fn publish(
    shared: &Shared,
    before: Option<JobStatus>,
    rec: &JobRecord,
    approvals: Vec<ApprovalUpdate>,
) {
    let update = |approval| JobUpdate {
        job: rec.name.clone(),
        status: rec.status,
        generation: rec.generation,
        approval,
    };
    if before != Some(rec.status) {
        shared.watchers.notify(&rec.name);
        let _ = shared.updates.send(update(None));
    }
    for a in approvals {
        let _ = shared.updates.send(update(Some(a)));
    }
}

/// Stores `write` and updates the cached record; on `Conflict`, reloads the record from
/// the store so the next round works on fresh state. Returns the stored record (the
/// cache keeps it unless it is at rest).
pub(super) async fn commit(
    shared: &Shared,
    guard: &mut Option<Arc<JobRecord>>,
    write: JobWrite,
) -> Result<Arc<JobRecord>> {
    let before = guard.as_ref().map(|r| r.status);
    commit_after(shared, guard, write, before).await
}

/// [`commit`] of a write whose record was taken out of the cache (`guard` is empty):
/// `before` is the status the record had, so a broadcast goes out only on a change.
pub(super) async fn commit_after(
    shared: &Shared,
    guard: &mut Option<Arc<JobRecord>>,
    write: JobWrite,
    before: Option<JobStatus>,
) -> Result<Arc<JobRecord>> {
    // The record is shared with the write (and with an in-memory store): no copy.
    let mut rec = write.job.clone();
    // Nothing is allocated unless the write carries approval requests (rare).
    let approvals: Vec<ApprovalUpdate> = write
        .approvals
        .iter()
        .map(|a| ApprovalUpdate {
            id: a.request.id.clone(),
            step: a.request.step.clone(),
            status: a.request.status.clone(),
        })
        .collect();
    let started = std::time::Instant::now();
    let result = shared.store.commit(write).await;
    shared.metrics.store_commit.observe(started.elapsed());
    match result {
        Ok(rev) => {
            crate::store::set_revision(&mut rec, rev);
            publish(shared, before, &rec, approvals);
            super::children::after_write(shared, before, &rec);
            // A record at rest leaves the cache: the store has it, and nothing here
            // needs it until an outside event, which reloads it.
            *guard = (!rec.at_rest()).then(|| rec.clone());
            Ok(rec)
        }
        Err(e) if e.kind() == ErrorKind::Conflict => {
            *guard = shared.store.get_job(&rec.name).await?.map(Arc::new);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// The job-update primitive: under the job's slot lock, hands the current record to
/// `change`, which returns the write to commit (built from a modified copy) and a value,
/// or `None` when there is nothing to do. A `Conflict` reloads the record and asks
/// `change` again, up to [`ROUNDS`] times.
///
/// # Errors
/// `change`'s errors; store errors; `Conflict` after the last round.
pub(super) async fn update_job<T>(
    shared: &Shared,
    job: &str,
    mut change: impl FnMut(&JobRecord) -> Result<Option<(JobWrite, T)>>,
) -> Result<Option<T>> {
    let slot = slot(shared, job);
    let mut guard = slot.lock().await;
    load(shared, job, &mut guard).await?;
    for round in 1..=ROUNDS {
        let Some(rec) = guard.as_deref() else {
            return Ok(None);
        };
        let Some((write, value)) = change(rec)? else {
            return Ok(None);
        };
        match commit(shared, &mut guard, write).await {
            Ok(_) => return Ok(Some(value)),
            Err(e) if e.kind() == ErrorKind::Conflict && round < ROUNDS => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}
