//! The step metrics of `GET /metrics`, computed from job records at each scrape:
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `george_step_attempts_by_mode_total` | counter | `mode`: `agent`, `command`, `approved` | step attempts started, by how the step runs (its template at the current commit; `unknown` when gone) |
//! | `george_steps_finished_total` | counter | `template`, `outcome`: `succeeded`, `failed`, `cancelled` | steps that finished, by how |
//! | `george_autonomy_ratio` | gauge | `template`, `autonomy` | of the template's succeeded steps, the share that needed no human decision (no approval or rejection by a person; a committed Policy's decision is not a person's) |
//! | `george_jobs_finished_total` | counter | `template`, `autonomy`, `outcome`: `succeeded`, `failed`, `cancelled` | finished jobs: the success rate per template and autonomy level |
//! | `george_job_cost_usd_total` | counter | `template`, `autonomy` | the cost of finished jobs in US dollars (divide by `george_jobs_finished_total` for the cost per task) |
//!
//! `autonomy` is the template's level at the current commit — its declared `autonomy`
//! (`supervised` when it declares none) capped by the operator's ceiling: `manual`,
//! `supervised` or `autonomous`; `unknown` when the template is gone. Template names
//! come from the manifests (a handful); no label names a job.

use std::collections::{HashMap, HashSet};

use george_core::engine::Engine;
use george_core::model::Autonomy;
use george_core::state::{JobRecord, JobStatus, StepState};
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

/// Each template's autonomy level at the current commit (see the module's doc).
pub(crate) fn levels(engine: &Engine) -> HashMap<String, &'static str> {
    let ceiling = engine.autonomy_ceiling();
    engine
        .catalogue()
        .templates
        .iter()
        .map(|t| {
            let level = t
                .value
                .spec
                .autonomy
                .unwrap_or(Autonomy::Supervised)
                .min(ceiling);
            (t.value.metadata.name.clone(), level.as_str())
        })
        .collect()
}

/// Registers the step metrics of `jobs` in `registry`; `by_policy` holds the ids of
/// the approval requests a committed Policy approved.
pub(crate) fn register(
    registry: &mut Registry,
    engine: &Engine,
    jobs: &[JobRecord],
    by_policy: &HashSet<&str>,
) {
    let modes = modes(engine);
    let levels = levels(engine);
    let jobs_finished = Family::<Labels, Counter>::default();
    let job_cost = Family::<Labels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
    let by_mode = Family::<Labels, Counter>::default();
    for m in ["agent", "command", "approved"] {
        let _ = by_mode.get_or_create_owned(&vec![("mode", m.to_string())]);
    }
    let finished = Family::<Labels, Counter>::default();
    // (template) → (succeeded steps, of which without a human decision)
    let mut autonomy: HashMap<&str, (u64, u64)> = HashMap::new();
    for j in jobs {
        let level = levels.get(&*j.template).copied().unwrap_or("unknown");
        let job_labels = |extra: Option<&str>| {
            let mut l: Labels = vec![
                ("template", j.template.to_string()),
                ("autonomy", level.to_string()),
            ];
            if let Some(o) = extra {
                l.push(("outcome", o.to_string()));
            }
            l
        };
        let job_outcome = match j.status {
            JobStatus::Succeeded => Some("succeeded"),
            JobStatus::Failed => Some("failed"),
            JobStatus::Cancelled => Some("cancelled"),
            _ => None,
        };
        if let Some(o) = job_outcome {
            jobs_finished.get_or_create(&job_labels(Some(o))).inc();
            job_cost
                .get_or_create(&job_labels(None))
                .inc_by(j.usage().cost_usd);
        }
        for s in &j.steps {
            let mode = modes
                .get(&(j.template.to_string(), s.id.to_string()))
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
                    ("template", j.template.to_string()),
                    ("outcome", outcome.to_string()),
                ])
                .inc();
            if outcome == "succeeded" {
                let e = autonomy.entry(&*j.template).or_default();
                e.0 += 1;
                let approved_alone = s
                    .approved
                    .as_ref()
                    .is_none_or(|a| by_policy.contains(a.request.as_str()));
                let rejected_alone = s.rejections.iter().all(|r| r.by.starts_with("policy:"));
                if approved_alone && rejected_alone {
                    e.1 += 1;
                }
            }
        }
    }
    let ratio = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (template, (all, alone)) in autonomy {
        let level = levels.get(template).copied().unwrap_or("unknown");
        ratio
            .get_or_create(&vec![
                ("template", template.to_string()),
                ("autonomy", level.to_string()),
            ])
            .set(alone as f64 / all as f64);
    }
    registry.register(
        "jobs_finished",
        "Finished jobs, by template, autonomy level and outcome",
        jobs_finished,
    );
    registry.register(
        "job_cost_usd",
        "Cost of finished jobs in US dollars, by template and autonomy level",
        job_cost,
    );
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
