//! Jobs that share a target (`target: {kind: service, name: darwin-store}` on a Job or
//! its template): they see each other, may be serialised, and one may resolve another.
//!
//! - **`ops_journal`** — a `read` tool the engine offers to every agent whose job has a
//!   target (next to the outcome tools, not through an executor). It returns the recent
//!   jobs on the *calling job's* target, newest first: the target comes from the job's
//!   record, never from the model's arguments (`{limit?: 1..=100, default 20}`).
//!   Each job carries its steps (state, message and outputs, clipped) and its last
//!   [`JOURNAL_ACTIONS`] events. Cost: one [`StateStore::jobs_on_target`] (whose provided
//!   implementation reads every job) and one event read per listed job.
//! - **Concurrency** — a step under `concurrency: {key: target, limit: n}` (its own, or
//!   its template's for `execute_approved` steps: see
//!   [`TemplateSpec::concurrency_of`](crate::model::TemplateSpec::concurrency_of)) is
//!   started only while fewer than `n` such steps run on the same target: this engine's
//!   own (in-memory slots, reserved in `dispatch::try_start`, released when the attempt
//!   ends) plus other engines' with a live lease (read from the store by
//!   `refresh_foreign` in the same reconcile pass). Otherwise it stays `Ready` and its
//!   job is queued again when a slot frees (or, for another engine's hold, at the
//!   earliest of its lease's expiry and the claim interval). A restarted engine first
//!   takes its own running attempts back (they become `Ready`, see `recovery`), so it
//!   starts with no slot held and none lost; under a new id, its old incarnation's live
//!   leases count as another engine's.
//! - **`resolves`** — `report_success {…, resolves: [job]}` ends other jobs on the same
//!   target `Succeeded`. Checked when the agent reports (a refused name is a tool error:
//!   no effect at all, the model may report again): the agent's spec has
//!   `may_resolve: true`, the reporting job has a target, and each named job exists, is
//!   another job on the same target, and is not finished. Then two writes, in this
//!   order: (1) the reporter's outcome, with the step's
//!   [`resolves`](crate::state::StepRecord::resolves) and a `job.resolved` event
//!   (`resolves <job>`); (2) for each named job, under its lock and retried on
//!   conflict: its unfinished steps `Cancelled`, its open approval requests cancelled,
//!   [`resolved_by`](crate::state::JobRecord::resolved_by) set, status `Succeeded`, and a
//!   `job.resolved` event (`resolved by <job>/<step>`). A crash between the two is
//!   repaired when an engine starts: (2) is derived from the reporter's recorded step
//!   and is idempotent. Each resolution names the generation it was checked against:
//!   a job edited in Git since is not resolved.

use crate::state::record::same_id;
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::Engine;
use crate::error::Result;
use crate::events::EventAction;
use crate::manifest::DesiredJob;
use crate::model::{ConcurrencyKey, StepSpec};
use crate::reconcile::Action;
use crate::state::{JobRecord, StepState};
use crate::store::StateStore;
use crate::tool::{EffectClass, ToolDefinition};

/// The read tool that shows an agent the recent jobs on its job's target.
pub const OPS_JOURNAL: &str = "ops_journal";

/// The event actions `ops_journal` shows.
pub const JOURNAL_ACTIONS: &[EventAction] = &[
    EventAction::StepSucceeded,
    EventAction::StepFailed,
    EventAction::JobStatus,
    EventAction::JobResolved,
    EventAction::ActionExecuted,
];

/// Events shown per job.
const EVENTS_PER_JOB: usize = 10;

/// The definition of [`OPS_JOURNAL`] (effect `read`).
pub fn ops_journal_tool() -> &'static ToolDefinition {
    static DEF: OnceLock<ToolDefinition> = OnceLock::new();
    DEF.get_or_init(|| {
        ToolDefinition::new(
            OPS_JOURNAL,
            "The operations journal of the service (target) this job works on: the recent jobs on \
             the same target, newest first, with their status, steps and last events (outcomes, \
             executed actions, resolutions). Read it before changing the target: another job may \
             be working on it or may already have fixed it.",
            json!({
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100,
                              "description": "How many jobs (default 20)."}
                }
            }),
        )
        .with_effect(EffectClass::Read)
    })
}

/// The `(target key, limit)` step `spec` of the job `rec` counts against, if any.
pub(super) fn target_limit(
    d: &DesiredJob,
    spec: &StepSpec,
    rec: &JobRecord,
) -> Option<(String, u32)> {
    let c = d.template.spec.concurrency_of(spec)?;
    match c.key {
        ConcurrencyKey::Target if !rec.target.is_empty() => Some((rec.target_key(), c.limit)),
        ConcurrencyKey::Target => None,
    }
}

/// Counts, from the store, the running steps of *other engines* (another holder with a
/// live lease) that hold the target limit the ready steps of `rec` would take: a
/// snapshot kept in the engine's slots (`foreign`, with the time `now` it was taken)
/// for [`try_start`](super::dispatch) to add to its own count. A dispatch without a
/// snapshot of its own pass (e.g. a step made ready by an outcome, dispatched in the
/// outcome's write) does not start the step: it queues the job, whose reconcile takes
/// one. So a limit holds across
/// engines sharing a store, and across a restart under a new id while the old
/// incarnation's leases run. Reads the store only when a step to dispatch counts
/// against a target limit. While another engine holds the target, the job is requeued
/// at the earliest of those leases' expiry and the claim interval.
pub(super) async fn refresh_foreign(
    engine: &Engine,
    d: &DesiredJob,
    rec: &JobRecord,
    actions: &[Action],
    now: u64,
) -> Result<()> {
    let shared = &engine.shared;
    let key = actions.iter().find_map(|a| match a {
        Action::Dispatch { step } => d
            .template
            .spec
            .steps
            .iter()
            .find(|s| same_id(&s.id, step))
            .and_then(|s| target_limit(d, s, rec))
            .map(|(k, _)| k),
        _ => None,
    });
    let Some(key) = key else {
        return Ok(());
    };
    let me = &*shared.holder;
    let mut held = 0usize;
    let mut until: Option<u64> = None;
    for other in shared.store.jobs_on_target(&key).await? {
        if other.name == rec.name {
            continue;
        }
        let od = super::io::desired_of(shared, &other.name).0;
        for s in &other.steps {
            let StepState::Running {
                holder,
                lease_until_ms,
            } = &s.state
            else {
                continue;
            };
            if **holder == *me || *lease_until_ms <= now {
                continue;
            }
            // A step whose definition this engine does not know is counted: the limit
            // errs on the side of waiting.
            let counted = od.as_ref().is_none_or(|od| {
                od.template
                    .spec
                    .steps
                    .iter()
                    .find(|x| same_id(&x.id, &s.id))
                    .is_none_or(|x| target_limit(od, x, &other).is_some())
            });
            if counted {
                held += 1;
                until = Some(until.map_or(*lease_until_ms, |u| u.min(*lease_until_ms)));
            }
        }
    }
    super::lock(&shared.slots).foreign.insert(key, (held, now));
    if let Some(until) = until {
        let poll = u64::try_from(shared.config.claim_interval.as_millis()).unwrap_or(u64::MAX);
        super::lock(&shared.queue).add_at(&rec.name, until.min(now.saturating_add(poll)));
    }
    Ok(())
}

fn clip(s: &str, n: usize) -> String {
    super::attempt::clip(s, n)
}

/// Runs `ops_journal` for the job `record`: returns the tool result and whether it is an
/// error. `args` may set `limit`; everything else in it is ignored (the target is the
/// calling job's).
pub(super) async fn ops_journal(
    store: &dyn StateStore,
    record: &JobRecord,
    args: &Value,
) -> (String, bool) {
    let limit = match args.get("limit") {
        None | Some(Value::Null) => 20,
        Some(v) => match v.as_u64() {
            Some(n) => n.clamp(1, 100) as usize,
            None => return ("`limit` must be a positive integer".into(), true),
        },
    };
    if record.target.is_empty() {
        return ("this job has no target: there is no journal".into(), true);
    }
    let key = record.target_key();
    let mut jobs = match store.jobs_on_target(&key).await {
        Ok(j) => j,
        Err(e) => return (format!("reading the journal failed: {e}"), true),
    };
    // Never another target, whatever the store returned.
    jobs.retain(|j| j.target == record.target);
    jobs.sort_by(|a, b| {
        (b.updated_at_ms, b.created_at_ms, &a.name).cmp(&(
            a.updated_at_ms,
            a.created_at_ms,
            &b.name,
        ))
    });
    jobs.truncate(limit);
    let mut out = Vec::with_capacity(jobs.len());
    for j in &jobs {
        let events = match store.events(&j.name, 0, usize::MAX).await {
            Ok(ev) => ev,
            Err(e) => return (format!("reading the journal failed: {e}"), true),
        };
        let mut shown: Vec<Value> = events
            .iter()
            .rev()
            .filter(|e| JOURNAL_ACTIONS.iter().any(|a| e.action == *a))
            .take(EVENTS_PER_JOB)
            .map(|e| {
                json!({
                    "at_ms": e.at_ms,
                    "actor": e.actor,
                    "action": e.action,
                    "step": e.step,
                    "detail": clip(&e.detail, 200),
                })
            })
            .collect();
        shown.reverse();
        let steps: Vec<Value> = j
            .steps
            .iter()
            .map(|s| {
                let mut v = json!({"id": &*s.id, "state": s.state.name(), "attempt": s.attempt});
                if let Some(m) = &s.message {
                    v["message"] = Value::String(clip(m, 200));
                }
                if let Some(o) = &s.outputs {
                    v["outputs"] = Value::String(clip(&o.to_string(), 300));
                }
                v
            })
            .collect();
        let mut v = json!({
            "name": j.name,
            "template": j.template,
            "status": j.status.name(),
            "generation": j.generation,
            "commit": j.commit,
            "created_at_ms": j.created_at_ms,
            "updated_at_ms": j.updated_at_ms,
            "steps": steps,
            "events": shown,
        });
        if j.name == record.name {
            v["this_job"] = Value::Bool(true);
        }
        if let Some(by) = &j.resolved_by {
            v["resolved_by"] = Value::String(by.to_string());
        }
        out.push(v);
    }
    let body = json!({"target": key, "jobs": out});
    (body.to_string(), false)
}
