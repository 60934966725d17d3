//! Seed 001's feature delivery, end to end, on real Git repositories: two jobs on one
//! service run at once and one fix resolves both.
//!
//! - `darwin-store-product-images` (from Git, target `service/darwin-store`): the
//!   architect plans with read tools; a person approves; the developer commits the code
//!   (it now needs PostgreSQL, and the chart does not pass the database settings, as in
//!   the seed); the verify step defers while "CI" runs and then finds the rollout stuck
//!   at 4/5; the sysadmin reads the ops journal and commits the Helm fix under the
//!   target's lock (`concurrency: {key: target, limit: 1}`), resolving the incident;
//!   `confirm` waits for revision 3 to be ready.
//! - `darwin-store-watch` (from Git): the aligner watches the rollout and, on 4/5, orders
//!   `investigate-rollout` (`order_job`, a sub-job pinned to the commit, idempotent by key).
//!   The sysadmin investigates from the ops journal; its remediation waits for the lock and
//!   defers to the feature job, whose fix ends it `Succeeded`, "resolved by".
//!
//! **The agents are scripted** (they react to what their tools return; no model, no key).
//! A small file stands in for the cluster's view of the rollout (see `spawn_cluster`).
//!
//! Run: `cargo run --example feature_delivery`

#[path = "support/mod.rs"]
mod support;

#[path = "support/feature.rs"]
mod feature;

use std::time::Duration;

use george::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let s = feature::setup(dir.path());
    println!("George feature delivery (seed 001) — the agents are SCRIPTED; no model is called.");
    println!(
        "ops repo: {}\napp repo: {}\n",
        s.ops.display(),
        s.app.display()
    );
    let (engine, report) = feature::run(&s, Duration::from_secs(120)).await?;
    for job in [feature::FEATURE, feature::WATCH, feature::INCIDENT] {
        println!("\nTimeline of job {job}:");
        for line in support::timeline(&engine, job).await? {
            println!("  {line}");
        }
    }
    println!("\nOps journal of service/darwin-store (jobs on the target, newest first):");
    let mut on_target: Vec<_> = engine
        .jobs()
        .await?
        .into_iter()
        .filter(|j| j.target.get("name").map(String::as_str) == Some("darwin-store"))
        .collect();
    on_target.sort_by_key(|j| std::cmp::Reverse(j.updated_at_ms));
    for j in on_target {
        let resolved = j
            .resolved_by
            .as_ref()
            .map(|r| format!(" (resolved by {}/{})", r.job, r.step))
            .unwrap_or_default();
        println!("  {:<44} {:<20} {}{resolved}", j.name, j.template, j.status);
    }
    println!("\napp repository history:");
    for line in feature::app_log(&s) {
        println!("  {line}");
    }
    if !report.agents.failures().is_empty() {
        println!("\nscript mismatches: {:#?}", report.agents.failures());
    }
    println!(
        "\nJob {}: {}\nJob {}: {}\nJob {}: {}",
        feature::FEATURE,
        report.feature,
        feature::INCIDENT,
        report.incident,
        feature::WATCH,
        report.watch
    );
    let ok = [report.feature, report.incident, report.watch]
        .iter()
        .all(|s| *s == JobStatus::Succeeded)
        && report.agents.failures().is_empty();
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
