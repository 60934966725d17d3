//! The test environment itself: the control plane starts, namespaces are separate, and
//! pods become Ready (through kwok's fake node, or the status subresource without it).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

#[tokio::test]
async fn the_control_plane_serves_and_namespaces_are_separate() {
    let env = george_k8s::testenv_or_skip!("the_control_plane_serves_and_namespaces_are_separate");
    let version = env.client().apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let a = env.namespace("separate-a").await.unwrap();
    let b = env.namespace("separate-b").await.unwrap();
    assert_ne!(a.name(), b.name());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})).unwrap();
    a.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    assert!(a.api::<ConfigMap>().get_opt("c").await.unwrap().is_some());
    assert!(b.api::<ConfigMap>().get_opt("c").await.unwrap().is_none());
    assert!(env.processes().iter().any(|(n, _)| *n == "kube-apiserver"));
}

#[tokio::test]
async fn a_deployment_gets_ready_replicas() {
    let env = george_k8s::testenv_or_skip!("a_deployment_gets_ready_replicas");
    let ns = env.namespace("deploy-ready").await.unwrap();
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]}
            }
        }
    }))
    .unwrap();
    let api: Api<Deployment> = ns.api();
    api.create(&PostParams::default(), &d).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if !env.has_kwok() {
            george_k8s::testenv::mark_pods_ready(ns.client(), ns.name(), "app=web")
                .await
                .unwrap();
        }
        let d = api.get("web").await.unwrap();
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        if ready == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the Deployment did not get 2 ready replicas within 60 s (kwok: {})",
            env.has_kwok()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn mark_pods_ready_stands_in_for_a_kubelet() {
    let env = george_k8s::testenv_or_skip!("mark_pods_ready_stands_in_for_a_kubelet");
    let ns = env.namespace("mark-ready").await.unwrap();
    // Bound to a node nobody runs: neither the scheduler nor kwok touches it.
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "labels": {"app": "p"}},
        "spec": {"nodeName": "no-such-node", "containers": [{"name": "c", "image": "example.invalid/c:1"}]}
    }))
    .unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = ns.api();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let n = george_k8s::testenv::mark_pods_ready(ns.client(), ns.name(), "app=p")
        .await
        .unwrap();
    assert_eq!(n, 1);
    let status = pods.get("p").await.unwrap().status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(
        status
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    // Already Ready: nothing to do.
    let again = george_k8s::testenv::mark_pods_ready(ns.client(), ns.name(), "app=p")
        .await
        .unwrap();
    assert_eq!(again, 0);
}
