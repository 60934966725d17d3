//! The quickstart's scaling event where the cluster is a real Kubernetes API server.
//!
//! 1. A sync loop standing in for Argo CD renders the podinfo Deployment from the chart's
//!    `values.yaml` in the `app` repository (`replicaCount: 5`) and applies it
//!    (server-side apply); kube-controller-manager makes the ReplicaSet and 5 Pods.
//! 2. investigate: `sysadmin` reads the Deployment with `k8s_get` (the Kubernetes tools of
//!    `george-k8s`, scoped to the example's namespace) and reports 5 replicas;
//! 3. plan: `architect` proposes an HPA — rejected; a conditional-replicas HPA — rejected;
//!    static scaling to 2 in Git — approved (scripted model, scripted human);
//! 4. execute: the approved commit is made to `app`; the sync loop applies it;
//! 5. verify: `verifier` calls `k8s_rollout_status` and defers until the Deployment has
//!    2 ready replicas (its "model" is a rule: see `RolloutCheck`).
//!
//! **Pods**: with kwok (built by `scripts/k8s-testenv.sh` when it can be), a fake node
//! runs them and makes them Ready; without it, the example marks them Running and Ready
//! through the status subresource (a kubelet stand-in) — it says which.
//!
//! **The cluster**: with `GEORGE_TEST_K8S_BIN` set (the directory `bash
//! scripts/k8s-testenv.sh` prints), a throw-away control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok) on 127.0.0.1; otherwise the current
//! kubeconfig context, in a new namespace `george-quickstart-<n>` (real nodes pull
//! `ghcr.io/stefanprodan/podinfo`).
//!
//! Run: `GEORGE_TEST_K8S_BIN=$(bash scripts/k8s-testenv.sh) cargo run --example quickstart_k8s --features k8s-testenv`

#[path = "support/mod.rs"]
mod support;

#[path = "support/k8s.rs"]
mod k8s_support;

use george::k8s::k8s_openapi::api::core::v1::Namespace;
use george::k8s::kube::{Api, Client};
use george::k8s::testenv::{self, TestEnv};
use george::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The cluster: a test control plane, or the kubeconfig's.
    let (env, client, namespace, kubelet_stand_in) = match std::env::var_os(testenv::BIN_ENV) {
        Some(bin) => {
            let env = TestEnv::start(std::path::Path::new(&bin)).await?;
            let ns = env.namespace("quickstart").await?;
            let stand_in = !env.has_kwok();
            println!(
                "cluster: a test control plane at {} (kwok: {})",
                env.server_url(),
                env.has_kwok()
            );
            (Some(env), ns.client(), ns.name().to_owned(), stand_in)
        }
        None => {
            let client = Client::try_default().await?;
            let name = format!("george-quickstart-{}", std::process::id());
            let ns: Namespace =
                serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
            Api::<Namespace>::all(client.clone())
                .create(&Default::default(), &ns)
                .await?;
            println!("cluster: the current kubeconfig context, namespace {name}");
            (None, client, name, false)
        }
    };
    let outcome = k8s_support::run(client, &namespace, kubelet_stand_in).await;
    drop(env);
    let (status, ready) = outcome?;
    println!(
        "\nJob {}: {status}; Deployment {}: {ready} ready replicas",
        support::JOB,
        k8s_support::DEPLOYMENT
    );
    if status != JobStatus::Succeeded || ready != 2 {
        std::process::exit(1);
    }
    Ok(())
}
