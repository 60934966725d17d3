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
        let slot = slot(shared, &rec.name);
        let mut guard = slot.lock().await;
        names.push(rec.name.clone());
        if guard.as_ref().is_none_or(|c| c.revision < rec.revision) {
            *guard = Some(std::sync::Arc::new(rec));
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
        update_job(shared, job, |rec| {
            let now = shared.clock.now_ms();
            let mut rec = rec.clone();
            let mut events = Vec::new();
            for s in &mut rec.steps {
                if matches!(&s.state, StepState::Running { holder, .. } if **holder == **me)
                    && let Ok(next) = s.state.apply(StepEvent::Interrupt)
                {
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
