//! `examples/quickstart_k8s.rs` against a real kube-apiserver (with
//! kube-controller-manager, and kwok when it was built): the job ends `Succeeded` and the
//! Deployment has 2 ready replicas. Skipped loudly without `GEORGE_TEST_K8S_BIN`.

#[path = "../examples/support/mod.rs"]
mod support;

#[path = "../examples/support/k8s.rs"]
mod k8s_support;

use george::k8s::testenv_or_skip;
use george::prelude::JobStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_k8s_scales_podinfo_to_two_ready_replicas() {
    let env = testenv_or_skip!("quickstart_k8s_scales_podinfo_to_two_ready_replicas");
    let ns = env.namespace("quickstart-k8s").await.expect("namespace");
    let (status, ready) = k8s_support::run(ns.client(), ns.name(), !env.has_kwok())
        .await
        .expect("the scenario runs");
    assert_eq!(status, JobStatus::Succeeded);
    assert_eq!(ready, 2, "the Deployment should have 2 ready replicas");
    let (ready, want) = k8s_support::replicas(&ns.client(), ns.name())
        .await
        .expect("the Deployment");
    assert_eq!((ready, want), (2, 2));
}
