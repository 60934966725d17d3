//! The step metrics of `GET /metrics`, computed from job records at each scrape:
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `george_step_attempts_by_mode_total` | counter | `mode`: `agent`, `command`, `approved` | step attempts started, by how the step runs (its template at the current commit; `unknown` when gone) |
//! | `george_steps_finished_total` | counter | `template`, `outcome`: `succeeded`, `failed`, `cancelled` | steps that finished, by how |
//! | `george_autonomy_ratio` | gauge | `template` | of the template's succeeded steps, the share that needed no human decision (no approval, no rejection) |
//!
//! Template names come from the manifests (a handful); no label names a job.

use std::collections::HashMap;

use george_core::engine::Engine;
use george_core::state::{JobRecord, StepState};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// How each (template, step) of the current commit runs.
fn modes(engine: &Engine) -> HashMap<(String, String), &'static str> {
    let mut out = HashMap::new();
    for t in engine.catalogue().templates {
        for s in &t.value.spec.steps {
            let mode = if s.execute_approved.is_some() {
                "approved"
            } else if s.command.is_some() {
                "command"
            } else {
                "agent"
            };
            out.insert((t.value.metadata.name.clone(), s.id.clone()), mode);
        }
    }
    out
}

/// Registers the step metrics of `jobs` in `registry`.
pub(crate) fn register(registry: &mut Registry, engine: &Engine, jobs: &[JobRecord]) {
    let modes = modes(engine);
    let by_mode = Family::<Labels, Counter>::default();
    for m in ["agent", "command", "approved"] {
        let _ = by_mode.get_or_create_owned(&vec![("mode", m.to_string())]);
    }
    let finished = Family::<Labels, Counter>::default();
    // (template) → (succeeded steps, of which without a human decision)
    let mut autonomy: HashMap<&str, (u64, u64)> = HashMap::new();
    for j in jobs {
        for s in &j.steps {
            let mode = modes
                .get(&(j.template.clone(), s.id.to_string()))
                .copied()
                .unwrap_or("unknown");
            by_mode
                .get_or_create(&vec![("mode", mode.to_string())])
                .inc_by(u64::from(s.attempt));
            let outcome = match s.state {
                StepState::Succeeded => "succeeded",
                StepState::Failed {
                    retry_at_ms: None, ..
                } => "failed",
                StepState::Cancelled => "cancelled",
                _ => continue,
            };
            finished
                .get_or_create(&vec![
                    ("template", j.template.clone()),
                    ("outcome", outcome.to_string()),
                ])
                .inc();
            if outcome == "succeeded" {
                let e = autonomy.entry(j.template.as_str()).or_default();
                e.0 += 1;
                if s.approved.is_none() && s.rejections.is_empty() {
                    e.1 += 1;
                }
            }
        }
    }
    let ratio = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (template, (all, alone)) in autonomy {
        ratio
            .get_or_create(&vec![("template", template.to_string())])
            .set(alone as f64 / all as f64);
    }
    registry.register(
        "step_attempts_by_mode",
        "Step attempts started, by how the step runs",
        by_mode,
    );
    registry.register(
        "steps_finished",
        "Steps that finished, by template and outcome",
        finished,
    );
    registry.register(
        "autonomy_ratio",
        "Of a template's succeeded steps, the share that needed no human decision",
        ratio,
    );
}
