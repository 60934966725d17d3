//! The operator's scope against a real API server: refusals never reach it (nothing is
//! created or changed), and Secret values are never shown.

use george_core::tool::{ToolExecutor, ToolInvocation};
use george_k8s::testenv_or_skip;
use george_k8s::tools::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::*;

#[tokio::test]
async fn calls_outside_the_scope_are_refused_and_change_nothing() {
    let env = testenv_or_skip!("calls_outside_the_scope_are_refused_and_change_nothing");
    let ns = env.namespace("tools-scope").await.expect("namespace");
    let other = env.namespace("tools-scope-other").await.expect("namespace");
    config_map(&other, "theirs", json!({"color": "blue"})).await;
    let ex = executor(&ns)
        .with_denied_kinds(["Secret"])
        .with_read_only_kinds(["ConfigMap"]);

    let theirs = json!({"kind": "ConfigMap", "name": "theirs", "namespace": other.name()});
    refused(&ex, K8S_GET, theirs.clone(), "namespace").await;
    refused(&ex, K8S_DELETE, theirs, "namespace").await;
    refused(
        &ex,
        K8S_LIST,
        json!({"kind": "ConfigMap", "namespace": other.name()}),
        "namespace",
    )
    .await;
    refused(
        &ex,
        K8S_EVENTS,
        json!({"namespace": "kube-system"}),
        "namespace",
    )
    .await;
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": other.name()}, "data": {"color": "red"}});
    refused(&ex, K8S_APPLY, json!({"manifest": manifest}), "namespace").await;
    assert_eq!(
        live_data(&other, "theirs").await,
        Some(json!({"color": "blue"})),
        "a refused call changed the object"
    );

    // Kinds: denied (even for reading), read-only (no writes, dry runs included), cluster-scoped.
    refused(
        &ex,
        K8S_GET,
        json!({"kind": "Secret", "name": "db"}),
        "denied_kind",
    )
    .await;
    refused(&ex, K8S_LIST, json!({"kind": "secrets"}), "denied_kind").await;
    config_map(&ns, "mine", json!({"color": "blue"})).await;
    ok(&ex, K8S_GET, json!({"kind": "ConfigMap", "name": "mine"})).await;
    refused(
        &ex,
        K8S_PATCH,
        json!({"kind": "ConfigMap", "name": "mine", "patch": {"data": {"color": "red"}}}),
        "read_only_kind",
    )
    .await;
    refused(&ex, K8S_APPLY_DRY_RUN, json!({"manifest": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine"}}}), "read_only_kind").await;
    refused(
        &ex,
        K8S_DELETE,
        json!({"kind": "ConfigMap", "name": "mine"}),
        "read_only_kind",
    )
    .await;
    assert_eq!(live_data(&ns, "mine").await, Some(json!({"color": "blue"})));
    refused(&ex, K8S_APPLY, json!({"manifest": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "admin"}, "rules": []}}), "read_only_kind").await;
    refused(
        &ex,
        K8S_GET,
        json!({"kind": "Namespace", "name": ns.name()}),
        "cluster_scoped",
    )
    .await;
    let wide = executor(&ns).with_cluster_scoped(true);
    ok(
        &wide,
        K8S_GET,
        json!({"kind": "Namespace", "name": ns.name()}),
    )
    .await;

    // Only Deployments: a ConfigMap is out; the preview of a refused write says why.
    let narrow = executor(&ns).with_allowed_kinds(["Deployment"]);
    refused(
        &narrow,
        K8S_GET,
        json!({"kind": "ConfigMap", "name": "mine"}),
        "allowed_kinds",
    )
    .await;
    let inv = ToolInvocation::new(
        K8S_DELETE,
        json!({"kind": "ConfigMap", "name": "mine"}),
        "approval-1/1",
    );
    let p = narrow.preview(&inv).await.unwrap().unwrap();
    assert!(p.is_error && p.summary.contains("refused"), "{p:?}");
}

#[tokio::test]
async fn secret_values_are_never_returned() {
    let env = testenv_or_skip!("secret_values_are_never_returned");
    let ns = env.namespace("tools-secret").await.expect("namespace");
    let ex = executor(&ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "db", "labels": {"app": "db"}},
        "stringData": {"password": "hunter2-plaintext"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(ns.client(), ns.name())
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let encoded = "aHVudGVyMi1wbGFpbnRleHQ"; // base64 of the password, as the API returns it
    let leaks = |text: &str| text.contains("hunter2") || text.contains(encoded);

    for (tool, args) in [
        (K8S_GET, json!({"kind": "Secret", "name": "db"})),
        (
            K8S_LIST,
            json!({"kind": "Secret", "label_selector": "app=db"}),
        ),
        (K8S_DESCRIBE, json!({"kind": "Secret", "name": "db"})),
    ] {
        let out = ok(&ex, tool, args).await;
        let all = format!("{} {}", out.content, out.data.clone().unwrap_or_default());
        assert!(!leaks(&all), "{tool} leaked the secret: {all}");
        assert!(
            all.contains("password") && all.contains(REDACTED),
            "{tool}: {all}"
        );
    }
    // A dry run and a preview of a change to it show redacted values on both sides.
    let manifest = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "new-secret-value"}});
    let out = ok(
        &ex,
        K8S_APPLY_DRY_RUN,
        json!({"manifest": manifest.clone()}),
    )
    .await;
    let all = format!("{} {}", out.content, out.data.clone().unwrap_or_default());
    assert!(
        !leaks(&all)
            && !all.contains("new-secret-value")
            && !all.contains("bmV3LXNlY3JldC12YWx1ZQ"),
        "{all}"
    );
    let p = ex
        .preview(&ToolInvocation::new(
            K8S_APPLY,
            json!({"manifest": manifest}),
            "a/1",
        ))
        .await
        .unwrap()
        .unwrap();
    let shown = format!("{} {}", p.summary, p.diff.unwrap_or_default());
    assert!(
        !leaks(&shown)
            && !shown.contains("new-secret-value")
            && !shown.contains("bmV3LXNlY3JldC12YWx1ZQ"),
        "{shown}"
    );
}

#[tokio::test]
async fn listing_all_namespaces_covers_exactly_the_allowed_ones() {
    let env = testenv_or_skip!("listing_all_namespaces_covers_exactly_the_allowed_ones");
    let a = env.namespace("tools-list-a").await.expect("namespace");
    let b = env.namespace("tools-list-b").await.expect("namespace");
    let outside = env.namespace("tools-list-out").await.expect("namespace");
    for (ns, name) in [(&a, "in-a"), (&b, "in-b"), (&outside, "out")] {
        config_map(ns, name, json!({"k": "v"})).await;
    }
    // The client's default namespace is in neither: nothing may fall back to it.
    let ex = KubeToolExecutor::new(a.client())
        .with_namespaces([a.name(), b.name()])
        .expect("two namespaces");
    let out = ok(
        &ex,
        K8S_LIST,
        json!({"kind": "ConfigMap", "all_namespaces": true}),
    )
    .await;
    let data = out.data.expect("data");
    let names: Vec<&str> = data["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|n| !n.ends_with("kube-root-ca.crt"))
        .collect();
    assert_eq!(
        names,
        [format!("{}/in-a", a.name()), format!("{}/in-b", b.name())],
        "{}",
        out.content
    );
    assert!(!out.content.contains("out"), "{}", out.content);
    // The limit holds across namespaces.
    let out = ok(
        &ex,
        K8S_LIST,
        json!({"kind": "ConfigMap", "all_namespaces": true, "limit": 1}),
    )
    .await;
    let data = out.data.expect("data");
    assert_eq!(data["count"], 1);
    assert_eq!(data["more"], true);
    // Both at once is a mistake the model is told about.
    let out = call(
        &ex,
        K8S_LIST,
        json!({"kind": "ConfigMap", "all_namespaces": true, "namespace": a.name()}),
    )
    .await;
    assert!(out.is_error, "{}", out.content);
}
