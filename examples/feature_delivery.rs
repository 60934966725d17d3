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
//! A small file stands in for the cluster's view of the rollout (see `spawn_cluster`);
//! `examples/feature_delivery_k8s.rs` runs the same event on a real Kubernetes API server.
//!
//! Run: `cargo run --example feature_delivery`

#[path = "support/mod.rs"]
mod support;

#[path = "support/feature.rs"]
mod feature;

use std::time::Duration;

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
    feature::print_report(&engine, &s, &report).await?;
    if !report.ok() {
        std::process::exit(1);
    }
    Ok(())
}
