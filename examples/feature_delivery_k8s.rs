//! Seed 001's feature delivery (`examples/feature_delivery.rs`) where the rollout is a real
//! Kubernetes Deployment on a real API server: the same jobs, agents and scripts, but the
//! aligner and the sysadmin read the rollout with `k8s_rollout_status` (and the crashing
//! pods with `k8s_list`) instead of a file.
//!
//! - A sync loop standing in for Argo CD renders `darwin-store`'s Deployment from the app
//!   repository's Helm chart on every commit and applies it (server-side apply);
//!   kube-controller-manager rolls it out one pod at a time.
//! - A kubelet stand-in reports the pods' status: Ready when the container's env has what
//!   the code reads, otherwise `CrashLoopBackOff` with `KeyError: 'DB_HOST'`. The pods name
//!   a scheduler that does not run, so kwok's node never takes them (see
//!   `support/feature_k8s.rs`).
//! - The developer's commit (the code now reads `DB_HOST`) makes revision 2, which sticks at
//!   4/5 ready until the Deployment controller reports `ProgressDeadlineExceeded`; the
//!   detector sees it and orders the investigation; the sysadmin's chart fix makes revision
//!   3, which rolls out 5/5; `confirm` waits for it.
//!
//! **The cluster**: a throw-away control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok) on 127.0.0.1 from the binaries in
//! `GEORGE_TEST_K8S_BIN` (the directory `bash scripts/k8s-testenv.sh` prints); required.
//! **The agents are scripted** (no model, no key).
//!
//! Run: `GEORGE_TEST_K8S_BIN=$(bash scripts/k8s-testenv.sh) cargo run --example feature_delivery_k8s --features k8s-testenv`

#[path = "support/mod.rs"]
mod support;

#[path = "support/feature.rs"]
mod feature;

#[path = "support/feature_k8s.rs"]
mod feature_k8s;

use std::time::Duration;

use george::k8s::testenv::{self, TestEnv};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(bin) = std::env::var_os(testenv::BIN_ENV).filter(|b| !b.is_empty()) else {
        eprintln!(
            "{} is not set: this example needs a test control plane. Run\n  \
             GEORGE_TEST_K8S_BIN=$(bash scripts/k8s-testenv.sh) cargo run --example feature_delivery_k8s --features k8s-testenv\n\
             (or `cargo run --example feature_delivery` for the variant without Kubernetes)",
            testenv::BIN_ENV
        );
        std::process::exit(2);
    };
    let env = TestEnv::start(std::path::Path::new(&bin)).await?;
    let ns = env.namespace("feature-delivery").await?;
    let dir = tempfile::tempdir()?;
    let s = feature_k8s::setup(dir.path());
    println!(
        "George feature delivery (seed 001) on Kubernetes — the agents are SCRIPTED; no model is called."
    );
    println!(
        "cluster: a test control plane at {} (kwok: {}; the darwin-store pods go to the kubelet stand-in)",
        env.server_url(),
        env.has_kwok()
    );
    println!(
        "namespace: {}\nops repo: {}\napp repo: {}\n",
        ns.name(),
        s.ops.display(),
        s.app.display()
    );
    let (engine, report) =
        feature_k8s::run(&s, ns.client(), ns.name(), Duration::from_secs(180)).await?;
    feature::print_report(&engine, &s, &report).await?;
    let d = feature_k8s::deployment(&ns.client(), ns.name()).await;
    let rolled_out = d.as_ref().is_some_and(feature_k8s::rolled_out);
    let revision = d
        .as_ref()
        .and_then(|d| d.metadata.annotations.as_ref())
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned()
        .unwrap_or_default();
    let ready = d
        .as_ref()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    println!(
        "Deployment {}: revision {revision}, {ready}/5 ready, rolled out: {rolled_out}",
        feature::DEPLOYMENT
    );
    drop(env);
    if !report.ok() || !rolled_out {
        std::process::exit(1);
    }
    Ok(())
}
