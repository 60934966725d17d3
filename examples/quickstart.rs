//! The quickstart: the seed's GitOps scaling event, end to end, on real input.
//!
//! Two real Git repositories are created in a temporary folder: `ops` (the manifests in
//! `examples/ops-repo/`) and `app` (a real Helm chart, podinfo, at 5 replicas). George
//! reconciles the `ops` commit into a job on a SQLite file and runs it:
//!
//! 1. investigate: `sysadmin` reads `values.yaml` with a tool, reports 5 replicas, no HPA;
//! 2. plan: `architect` proposes an HPA — rejected; a conditional-replicas HPA — rejected
//!    with the drift explanation; static scaling to 2 — approved;
//! 3. execute: the approved commit is made to `app`, exactly as approved;
//! 4. verify: `grep` checks the observed replicas, deferring while the "cluster" syncs.
//!
//! **The model's answers are scripted** (`ScriptedProvider`): no network, no key. To run
//! with a real model, register a real `Provider` under the name `default` instead (the
//! `george-llm` adapters, or your own implementation of the trait) and drop the script.
//!
//! Run: `cargo run --example quickstart`

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use george::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let s = support::setup(dir.path());
    println!(
        "George quickstart — the model's answers are SCRIPTED (ScriptedProvider); no model is called."
    );
    println!(
        "ops repo: {}\napp repo: {}\nstore:    {}\n",
        s.ops.display(),
        s.app.display(),
        s.db.display()
    );

    let provider = ScriptedProvider::new();
    support::script_investigation(&provider);
    support::script_planning(&provider);
    let (human, approvals) = ChannelHuman::new();
    let engine = support::engine(&s, provider.clone(), human, "engine-1").await?;
    let _human = support::spawn_human(engine.clone(), approvals);
    let _cluster = support::spawn_cluster_sync(&s, Duration::from_secs(3));

    let status = support::run_and_report(&engine, &s, Duration::from_secs(120)).await?;
    let values = support::app_values(&s);
    let replicas = values
        .lines()
        .find(|l| l.starts_with("replicaCount:"))
        .unwrap_or("?");
    println!("\napp values.yaml at main: {replicas}");
    if !provider.failures().is_empty() {
        println!("script mismatches: {:#?}", provider.failures());
    }
    println!("\nJob {}: {status}", support::JOB);
    if status != JobStatus::Succeeded {
        std::process::exit(1);
    }
    Ok(())
}
