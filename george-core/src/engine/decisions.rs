//! Humans' decisions: the stored request and the job are loaded, the pure
//! [`record_decision`] checks and applies the decision, and both are committed in one
//! write (the request must still be open).

use super::Engine;
use super::io::{ROUNDS, commit, slot};
use crate::approval::{Approver, Decision};
use crate::error::{Error, ErrorKind, Result};
use crate::reconcile::record_decision;
use crate::store::JobWrite;

/// Applies `decision` by `approver` to request `id`.
pub(super) async fn decide(
    engine: &Engine,
    id: &str,
    approver: &Approver,
    decision: &Decision,
) -> Result<()> {
    let shared = &engine.shared;
    for round in 1..=ROUNDS {
        let Some(mut req) = shared.store.approval(id).await? else {
            return Err(Error::not_found(format!("no approval request {id}")));
        };
        let slot = slot(shared, &req.job);
        let mut guard = slot.lock().await;
        super::io::load(shared, &req.job, &mut guard).await?;
        let Some(mut rec) = guard.as_deref().cloned() else {
            return Err(Error::not_found(format!("no job {}", req.job)));
        };
        let now = shared.clock.now_ms();
        let events = record_decision(&mut rec, &mut req, decision, approver, now)?;
        rec.updated_at_ms = now;
        let job = rec.name.clone();
        let write = JobWrite::update(rec).events(events).update_approval(req);
        match commit(shared, &mut guard, write).await {
            Ok(_) => {
                drop(guard);
                engine.requeue(&job);
                return Ok(());
            }
            // Another write came first (an outcome, another decision): reload both and
            // decide again; a request decided meanwhile is refused then.
            Err(e) if e.kind() == ErrorKind::Conflict && round < ROUNDS => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(format!(
        "approval request {id}: the job kept changing; try again"
    )))
}
