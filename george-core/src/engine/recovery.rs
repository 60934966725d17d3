//! Recovery and shutdown: claiming due jobs (other engines' ready work, dead engines'
//! expired leases), taking back this engine's own attempts after a restart, and
//! returning in-flight attempts on shutdown.

use super::io::{slot, update_job};
use super::{Engine, lock};
use crate::error::Result;
use crate::events::EventAction;
use crate::state::{NewEvent, StepEvent, StepState};
use crate::store::{Claim, JobWrite};

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
        names.push(rec.name.clone());
        adopt_claimed(shared, rec).await;
    }
    if !names.is_empty() {
        tracing::debug!(count = names.len(), "claimed due jobs");
        engine.enqueue(names);
    }
    Ok(())
}

/// Refreshes the cached record of a claimed job with the claimed one when it is newer.
///
/// An empty slot stays empty: it means "the store has it" (a record at rest leaves the
/// cache), and the claim was read before this slot's lock was taken, so the job may
/// have moved on (even finished) since. Filling the slot with the claimed record would
/// serve that stale record to readers ([`Engine::job`], [`Engine::wait_for`]) until the
/// next write; the reconcile the claim queues loads the record from the store instead.
pub(super) async fn adopt_claimed(shared: &super::Shared, rec: crate::state::JobRecord) {
    let slot = slot(shared, &rec.name);
    let mut guard = slot.lock().await;
    if guard.as_ref().is_some_and(|c| c.revision < rec.revision) {
        *guard = Some(std::sync::Arc::new(rec));
    }
}

/// At start: this engine has no attempt in flight, so any step still `Running` under
/// its id was left by an earlier incarnation that crashed. Make them `Ready` again.
pub(super) async fn recover_own_attempts(engine: &Engine, jobs: &[String]) -> Result<()> {
    let shared = &engine.shared;
    let me = &shared.config.id;
    for job in jobs {
        update_job(shared, job, |rec| {
            let now = shared.clock.now_ms();
            let mut rec = rec.clone();
            let mut events = Vec::new();
            for s in &mut rec.steps {
                if matches!(&s.state, StepState::Running { holder, .. } if **holder == **me)
                    && let Ok(next) = s.state.apply(StepEvent::Interrupt)
                {
                    let s = std::sync::Arc::make_mut(s);
                    s.state = next;
                    events.push(NewEvent::new(
                        now,
                        "engine",
                        EventAction::StepInterrupted,
                        Some(&s.id),
                        format!("attempt {} interrupted: engine {me} restarted", s.attempt),
                    ));
                }
            }
            if events.is_empty() {
                return Ok(None);
            }
            rec.updated_at_ms = now;
            Ok(Some((JobWrite::update(rec).events(events), ())))
        })
        .await?;
    }
    Ok(())
}

/// Aborts in-flight attempts and durably returns their steps to `Ready`.
pub(super) async fn interrupt_all(engine: &Engine) {
    let shared = &engine.shared;
    let running = lock(&shared.attempts).drain();
    for (job, step, attempt, handle) in running {
        handle.abort();
        let _ = handle.await;
        let res = update_job(shared, &job, |rec| {
            if !super::dispatch::holds(rec, &step, attempt, &shared.config.id) {
                return Ok(None);
            }
            let now = shared.clock.now_ms();
            let mut rec = rec.clone();
            if let Some(s) = rec.step_mut(&step)
                && let Ok(next) = s.state.apply(StepEvent::Interrupt)
            {
                s.state = next;
            }
            rec.updated_at_ms = now;
            let ev = NewEvent::new(
                now,
                "engine",
                EventAction::StepInterrupted,
                Some(&step),
                format!(
                    "attempt {attempt} interrupted: engine {} stopped",
                    shared.config.id
                ),
            );
            Ok(Some((JobWrite::update(rec).event(ev), ())))
        })
        .await;
        if let Err(e) = res {
            tracing::warn!(job, step = &*step, error = %e, "could not release an interrupted attempt; its lease will expire");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::command::CommandToolExecutor;
    use crate::memory::{InMemoryGitSource, InMemoryStateStore};
    use crate::state::JobStatus;

    const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: a, command: {program: 'true'}}\n    - {id: b, depends_on: [a], command: {program: 'true'}}\n";
    const JOB: &str =
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n";

    /// The attack: a claim read while the job was still running is applied after the
    /// job finished and left the cache. Before the fix, the claimed record filled the
    /// empty slot, and the engine served the job as `Running` again: `wait_finished`
    /// missed the end (its wake-up had gone out already) and slept its 1 s recheck.
    #[tokio::test]
    async fn a_claim_older_than_the_store_never_fills_an_empty_slot() {
        let git = InMemoryGitSource::new();
        git.commit_files(
            "main",
            vec![
                ("task-templates/t.yaml", TEMPLATE.to_string()),
                ("jobs/j.yaml", JOB.to_string()),
            ],
            "c1",
        );
        let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
            .commands(CommandToolExecutor::new(["true"]))
            .build()
            .unwrap();
        engine.start().await.unwrap();
        let run = engine.spawn();
        let limit = Duration::from_secs(10);
        assert_eq!(
            engine.wait_finished("j", limit).await.unwrap(),
            JobStatus::Succeeded
        );
        run.shutdown().await;
        let done = engine.job("j").await.unwrap().unwrap();
        // The claim: the job as it was while its first step was ready.
        let mut claimed = done.clone();
        claimed.revision = 2;
        claimed.status = JobStatus::Running;
        std::sync::Arc::make_mut(&mut claimed.steps[0]).state = StepState::Ready;
        std::sync::Arc::make_mut(&mut claimed.steps[1]).state = StepState::Pending;

        // At rest, the record left the cache: the slot is empty.
        *slot(&engine.shared, "j").lock().await = None;
        adopt_claimed(&engine.shared, claimed.clone()).await;
        assert_eq!(engine.job("j").await.unwrap().unwrap(), done);
        assert_eq!(
            tokio::time::timeout(Duration::from_millis(100), engine.wait_finished("j", limit))
                .await
                .expect("the finished job is seen at once")
                .unwrap(),
            JobStatus::Succeeded
        );

        // A cached record older than the claim is refreshed; a newer one is kept.
        let mut older = claimed.clone();
        older.revision = 1;
        *slot(&engine.shared, "j").lock().await = Some(Arc::new(older));
        adopt_claimed(&engine.shared, claimed.clone()).await;
        assert_eq!(engine.job("j").await.unwrap().unwrap(), claimed);
        *slot(&engine.shared, "j").lock().await = Some(Arc::new(done.clone()));
        adopt_claimed(&engine.shared, claimed).await;
        assert_eq!(engine.job("j").await.unwrap().unwrap(), done);
    }
}
