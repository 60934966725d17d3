//! The read tools on real objects: get, list, describe, events, logs, rollout status,
//! schemas.

use george_k8s::testenv_or_skip;
use george_k8s::tools::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn get_list_and_describe_read_real_objects() {
    let env = testenv_or_skip!("get_list_and_describe_read_real_objects");
    let ns = env.namespace("tools-read").await.expect("namespace");
    let ex = executor(&ns);
    config_map(&ns, "settings", json!({"color": "blue"})).await;
    config_map(&ns, "other", json!({"color": "red"})).await;

    let out = ok(
        &ex,
        K8S_GET,
        json!({"kind": "ConfigMap", "name": "settings"}),
    )
    .await;
    assert!(out.content.contains("color: blue"), "{}", out.content);
    assert!(!out.content.contains("managedFields"), "{}", out.content);
    let data = out.data.expect("data");
    assert_eq!(
        (data["kind"].as_str(), data["namespace"].as_str()),
        (Some("ConfigMap"), Some(ns.name()))
    );
    // Plural names, any case, and an explicit api_version resolve too.
    ok(
        &ex,
        K8S_GET,
        json!({"kind": "configmaps", "name": "settings", "api_version": "v1"}),
    )
    .await;
    let missing = call(&ex, K8S_GET, json!({"kind": "ConfigMap", "name": "nope"})).await;
    assert!(
        missing.is_error && missing.content.contains("NotFound"),
        "{}",
        missing.content
    );
    let unknown = call(&ex, K8S_GET, json!({"kind": "Gizmo", "name": "x"})).await;
    assert!(
        unknown.is_error && unknown.content.contains("no kind `Gizmo`"),
        "{}",
        unknown.content
    );

    let out = ok(
        &ex,
        K8S_LIST,
        json!({"kind": "ConfigMap", "label_selector": "app=settings"}),
    )
    .await;
    assert_eq!(
        out.data.as_ref().unwrap()["names"],
        json!(["settings"]),
        "{}",
        out.content
    );
    let out = ok(
        &ex,
        K8S_LIST,
        json!({"kind": "ConfigMap", "field_selector": "metadata.name=other"}),
    )
    .await;
    assert_eq!(
        out.data.as_ref().unwrap()["names"],
        json!(["other"]),
        "{}",
        out.content
    );
    let out = ok(
        &ex,
        K8S_LIST,
        json!({"kind": "ConfigMap", "label_selector": "app", "limit": 1}),
    )
    .await;
    assert_eq!(out.data.as_ref().unwrap()["more"], true, "{}", out.content);

    // The operator's size cap: cut at a line, with a note, and said in `data`.
    let small = executor(&ns).with_max_output_bytes(256);
    config_map(&ns, "big", json!({"text": "line\n".repeat(500)})).await;
    let out = ok(&small, K8S_GET, json!({"kind": "ConfigMap", "name": "big"})).await;
    assert!(
        out.content.len() < 512 && out.content.contains("output cut to"),
        "{}",
        out.content
    );
    assert_eq!(out.data.as_ref().unwrap()["truncated"], true);
    assert!(out.data.as_ref().unwrap().get("object").is_none());

    // The controller-manager scales the Deployment's ReplicaSet and records an event.
    deployment(&ns, "web", 2).await;
    let out = eventually("the ScalingReplicaSet event in describe", 60, || {
        let ex = ex.clone();
        async move {
            let out = ok(
                &ex,
                K8S_DESCRIBE,
                json!({"kind": "Deployment", "name": "web"}),
            )
            .await;
            out.content.contains("ScalingReplicaSet").then_some(out)
        }
    })
    .await;
    assert!(
        out.content.contains("replicas: 2") && out.content.contains("Events:"),
        "{}",
        out.content
    );

    let out = ok(
        &ex,
        K8S_EVENTS,
        json!({"kind": "deployment", "name": "web"}),
    )
    .await;
    assert!(
        out.content.contains("ScalingReplicaSet") && out.content.contains("Deployment/web"),
        "{}",
        out.content
    );
    let out = ok(&ex, K8S_EVENTS, json!({"kind": "ConfigMap", "name": "web"})).await;
    assert!(out.content.starts_with("no events"), "{}", out.content);
}

/// Marks the namespace's pods Ready, unless kwok does (then it waits for nothing).
async fn pods_ready(env: &george_k8s::testenv::TestEnv, ns: &TestNamespace) {
    if !env.has_kwok() {
        george_k8s::testenv::mark_pods_ready(ns.client(), ns.name(), "app=web")
            .await
            .expect("mark pods ready");
    }
}

#[tokio::test]
async fn rollout_status_follows_the_controller_manager() {
    let env = testenv_or_skip!("rollout_status_follows_the_controller_manager");
    let ns = env.namespace("tools-rollout").await.expect("namespace");
    let ex = executor(&ns);
    deployment(&ns, "web", 2).await;
    let first = ok(&ex, K8S_ROLLOUT_STATUS, json!({"name": "web"})).await;
    // Pods exist only once the controller-manager made them; none is ready yet.
    if !env.has_kwok() {
        assert_eq!(
            first.data.as_ref().unwrap()["done"],
            false,
            "{}",
            first.content
        );
    }
    let out = eventually("the rollout to finish", 90, || {
        let (ex, ns) = (ex.clone(), ns.clone());
        async move {
            pods_ready(env, &ns).await;
            let out = ok(
                &ex,
                K8S_ROLLOUT_STATUS,
                json!({"name": "web", "kind": "Deployment"}),
            )
            .await;
            (out.data.as_ref().unwrap()["done"] == true).then_some(out)
        }
    })
    .await;
    let data = out.data.as_ref().unwrap();
    assert_eq!(data["readyReplicas"], 2, "{}", out.content);
    assert!(
        out.content.contains("successfully rolled out") && out.content.contains("readyReplicas: 2"),
        "{}",
        out.content
    );
    let not_workload = call(
        &ex,
        K8S_ROLLOUT_STATUS,
        json!({"name": "web", "kind": "ConfigMap"}),
    )
    .await;
    assert!(not_workload.is_error, "{}", not_workload.content);
}

#[tokio::test]
async fn logs_reach_the_api_server() {
    let env = testenv_or_skip!("logs_reach_the_api_server");
    let ns = env.namespace("tools-logs").await.expect("namespace");
    let ex = executor(&ns);
    // A pod no scheduler takes: it never has a node, so no kubelet has logs of it; the
    // request (pod, container, tail) is still served by the API server.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "lonely"},
        "spec": {"schedulerName": "nobody", "containers": [{"name": "app", "image": "registry.invalid/app:1"}]}
    }))
    .unwrap();
    Api::<Pod>::namespaced(ns.client(), ns.name())
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let out = call(
        &ex,
        K8S_LOGS,
        json!({"name": "lonely", "container": "app", "tail_lines": 10}),
    )
    .await;
    if out.is_error {
        assert!(out.content.contains("lonely"), "{}", out.content);
    } else {
        // Kubernetes 1.36 answers an empty log for a pod that never started.
        assert_eq!(out.content, "<no log lines>\n");
        let data = out.data.as_ref().unwrap();
        assert_eq!(
            (
                data["pod"].as_str(),
                data["container"].as_str(),
                data["lines"].as_u64()
            ),
            (Some("lonely"), Some("app"), Some(0))
        );
    }
    let out = call(
        &ex,
        K8S_LOGS,
        json!({"name": "lonely", "container": "nope"}),
    )
    .await;
    assert!(out.is_error, "{}", out.content);
    let out = call(&ex, K8S_LOGS, json!({"name": "absent"})).await;
    assert!(
        out.is_error && out.content.contains("NotFound"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn logs_of_a_running_pod_are_served_by_its_node() {
    use george_k8s::testenv::LOGGED_CONTAINERS;
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    let env = testenv_or_skip!("logs_of_a_running_pod_are_served_by_its_node");
    if !env.has_kwok() {
        eprintln!(
            "\n!!! `logs_of_a_running_pod_are_served_by_its_node` DID NOT RUN: kwok is not \
             built (see scripts/k8s-testenv.sh) !!!\n"
        );
        return;
    }
    let [main, sidecar] = LOGGED_CONTAINERS;
    // What kwok's kubelet API serves for the containers of every pod on its node: two
    // lines of two hours ago, then four of now; the sidecar's and the previous instance's
    // own lines.
    let now = Timestamp::now();
    let old = now - SignedDuration::from_hours(2);
    env.write_container_log(
        main,
        false,
        &[
            (old, "old 1"),
            (old, "old 2"),
            (now, "new 1"),
            (now, "new 2"),
            (now, "new 3"),
            (now, "new 4"),
        ],
    )
    .expect("main's log");
    env.write_container_log(main, true, &[(old, "before the crash")])
        .expect("main's previous log");
    env.write_container_log(sidecar, false, &[(now, "sidecar says hi")])
        .expect("sidecar's log");
    assert!(env.write_container_log("app", false, &[]).is_err());

    let ns = env.namespace("tools-logs-kwok").await.expect("namespace");
    let ex = executor(&ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [
            {"name": main, "image": "registry.invalid/app:1"},
            {"name": sidecar, "image": "registry.invalid/sidecar:1"}
        ]}
    }))
    .unwrap();
    let pods = Api::<Pod>::namespaced(ns.client(), ns.name());
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    // The scheduler binds it to kwok's node, and kwok makes it Running.
    eventually("the pod to run on kwok's node", 60, || {
        let pods = pods.clone();
        async move {
            let p = pods.get("web").await.expect("get pod");
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let phase = p.status.as_ref().and_then(|s| s.phase.clone());
            (node.as_deref() == Some(env.node_name()) && phase.as_deref() == Some("Running"))
                .then_some(())
        }
    })
    .await;

    let lines = |out: &george_core::tool::ToolOutput| out.data.as_ref().unwrap()["lines"].clone();
    let out = ok(&ex, K8S_LOGS, json!({"name": "web", "container": main})).await;
    assert_eq!(
        out.content, "old 1\nold 2\nnew 1\nnew 2\nnew 3\nnew 4\n",
        "{}",
        out.content
    );
    let data = out.data.as_ref().unwrap();
    assert_eq!(
        (
            data["namespace"].as_str(),
            data["pod"].as_str(),
            data["container"].as_str(),
            data["lines"].as_u64()
        ),
        (Some(ns.name()), Some("web"), Some(main), Some(6))
    );
    // tail_lines: only the last N.
    let out = ok(
        &ex,
        K8S_LOGS,
        json!({"name": "web", "container": main, "tail_lines": 2}),
    )
    .await;
    assert_eq!(out.content, "new 3\nnew 4\n");
    assert_eq!(lines(&out), 2);
    // since_seconds: only the lines of the last ten minutes.
    let out = ok(
        &ex,
        K8S_LOGS,
        json!({"name": "web", "container": main, "since_seconds": 600}),
    )
    .await;
    assert_eq!(out.content, "new 1\nnew 2\nnew 3\nnew 4\n");
    assert_eq!(lines(&out), 4);
    // Both: of the last five lines, those of the last ten minutes.
    let out = ok(
        &ex,
        K8S_LOGS,
        json!({"name": "web", "container": main, "tail_lines": 5, "since_seconds": 600}),
    )
    .await;
    assert_eq!(out.content, "new 1\nnew 2\nnew 3\nnew 4\n");
    // container picks the other container's log; previous the crashed instance's.
    let out = ok(&ex, K8S_LOGS, json!({"name": "web", "container": sidecar})).await;
    assert_eq!(out.content, "sidecar says hi\n");
    let out = ok(
        &ex,
        K8S_LOGS,
        json!({"name": "web", "container": main, "previous": true}),
    )
    .await;
    assert_eq!(out.content, "before the crash\n");
    // Two containers: one must be named, and it must be the pod's.
    let out = call(&ex, K8S_LOGS, json!({"name": "web"})).await;
    assert!(
        out.is_error && out.content.contains("container name must be specified"),
        "{}",
        out.content
    );
    let out = call(&ex, K8S_LOGS, json!({"name": "web", "container": "nope"})).await;
    assert!(
        out.is_error && out.content.contains("nope"),
        "{}",
        out.content
    );
    let out = call(&ex, K8S_LOGS, json!({"name": "absent", "container": main})).await;
    assert!(
        out.is_error && out.content.contains("NotFound"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn schemas_of_built_in_kinds_and_fields() {
    let env = testenv_or_skip!("schemas_of_built_in_kinds_and_fields");
    let ns = env.namespace("tools-schema").await.expect("namespace");
    let ex = executor(&ns);
    let out = ok(&ex, K8S_GET_SCHEMA, json!({"kind": "Deployment"})).await;
    assert!(
        out.content.contains("FIELD: Deployment <object>") && out.content.contains("spec <object>"),
        "{}",
        out.content
    );
    let out = ok(
        &ex,
        K8S_GET_SCHEMA,
        json!({"kind": "Deployment", "field": "spec.replicas"}),
    )
    .await;
    assert!(out.content.contains("<integer>"), "{}", out.content);
    let out = ok(
        &ex,
        K8S_GET_SCHEMA,
        json!({"kind": "Deployment", "field": "spec.template.spec.containers"}),
    )
    .await;
    assert!(
        out.content.contains("image <string>") && out.content.contains("name <string> -required-"),
        "{}",
        out.content
    );
    let data: &Value = &out.data.as_ref().unwrap()["schema"];
    assert!(data["properties"]["image"].is_object(), "{data}");
    let out = call(
        &ex,
        K8S_GET_SCHEMA,
        json!({"kind": "Deployment", "field": "spec.nope"}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("no field `nope`"),
        "{}",
        out.content
    );
    // Cluster-scoped kinds may be explained even though their objects are out of scope.
    ok(
        &ex,
        K8S_GET_SCHEMA,
        json!({"kind": "Namespace", "field": "spec"}),
    )
    .await;
}

#[tokio::test]
async fn custom_resources_are_read_and_explained() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let env = testenv_or_skip!("custom_resources_are_read_and_explained");
    let ns = env.namespace("tools-crd").await.expect("namespace");
    // A CRD of its own per test run (CRDs are cluster-scoped): `Widget<suffix>`.
    let suffix: String = ns.name().chars().rev().take(6).collect();
    let (kind, plural, group) = (
        format!("Widget{suffix}"),
        format!("widgets{suffix}"),
        "tools.george.dev",
    );
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": format!("widget{suffix}"), "listKind": format!("{kind}List")},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "description": "What the widget should be.", "required": ["size"],
                    "properties": {"size": {"type": "integer", "description": "How big, in cm."}, "color": {"type": "string"}}}}
            }}}]
        }
    }))
    .unwrap();
    Api::<CustomResourceDefinition>::all(ns.client())
        .create(&PostParams::default(), &crd)
        .await
        .expect("create the CRD");
    let ex = executor(&ns);
    let manifest = json!({"apiVersion": format!("{group}/v1"), "kind": kind, "metadata": {"name": "w1"}, "spec": {"size": 3}});
    // The CRD becomes Established (and served) within seconds.
    eventually("the custom resource to be applied", 60, || {
        let (ex, manifest) = (ex.clone(), manifest.clone());
        async move {
            let out = call(&ex, K8S_APPLY, json!({ "manifest": manifest })).await;
            (!out.is_error).then_some(())
        }
    })
    .await;
    let out = ok(&ex, K8S_GET, json!({"kind": kind, "name": "w1"})).await;
    assert!(out.content.contains("size: 3"), "{}", out.content);
    let out = ok(&ex, K8S_LIST, json!({"kind": plural})).await;
    assert_eq!(out.data.as_ref().unwrap()["names"], json!(["w1"]));
    let out = ok(&ex, K8S_GET_SCHEMA, json!({"kind": kind, "field": "spec"})).await;
    assert!(
        out.content.contains("size <integer> -required-"),
        "{}",
        out.content
    );
    assert!(out.content.contains("How big, in cm."), "{}", out.content);
}
