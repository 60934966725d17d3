//! The write tools and the dry run on real objects: apply (created, unchanged,
//! configured), a dry run's diff that changes nothing, patch, scale, delete (twice), and
//! previews.

use george_core::tool::{ToolExecutor, ToolInvocation};
use george_k8s::testenv_or_skip;
use george_k8s::tools::*;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::json;

use super::*;

fn cm_manifest(name: &str, color: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"color": color}})
}

#[tokio::test]
async fn apply_is_idempotent_and_dry_run_changes_nothing() {
    let env = testenv_or_skip!("apply_is_idempotent_and_dry_run_changes_nothing");
    let ns = env.namespace("tools-apply").await.expect("namespace");
    let ex = executor(&ns).with_field_manager("george-test");

    // A dry run of a new object: a diff from /dev/null, and still no object.
    let out = ok(
        &ex,
        K8S_APPLY_DRY_RUN,
        json!({"manifest": cm_manifest("app", "blue")}),
    )
    .await;
    assert!(
        out.content
            .starts_with("dry run (nothing changed): ConfigMap"),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("--- /dev/null") && out.content.contains("+  color: blue"),
        "{}",
        out.content
    );
    assert_eq!(
        live_data(&ns, "app").await,
        None,
        "a dry run created the object"
    );

    let out = ok(
        &ex,
        K8S_APPLY,
        json!({"manifest": cm_manifest("app", "blue")}),
    )
    .await;
    assert_eq!(
        out.data.as_ref().unwrap()["result"],
        "created",
        "{}",
        out.content
    );
    let again = ok(
        &ex,
        K8S_APPLY,
        json!({"manifest": cm_manifest("app", "blue")}),
    )
    .await;
    assert_eq!(
        again.data.as_ref().unwrap()["result"],
        "unchanged",
        "{}",
        again.content
    );

    // A dry run of a change: the diff against the live object; the object stays.
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: {}\ndata:\n  color: green\n",
        ns.name()
    );
    let out = ok(&ex, K8S_APPLY_DRY_RUN, json!({"manifest": yaml})).await;
    assert!(
        out.content.contains("would be configured"),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("-  color: blue") && out.content.contains("+  color: green"),
        "{}",
        out.content
    );
    assert_eq!(live_data(&ns, "app").await, Some(json!({"color": "blue"})));

    // The preview of an apply is the same dry run: what the approval inbox shows.
    let inv = ToolInvocation::new(K8S_APPLY, json!({"manifest": yaml}), "approval-1/1");
    let preview = ex.preview(&inv).await.expect("preview").expect("a preview");
    assert!(!preview.is_error, "{preview:?}");
    let diff = preview.diff.expect("a diff");
    assert!(
        diff.starts_with(&format!(
            "diff --git a/v1.ConfigMap.{0}.app b/v1.ConfigMap.{0}.app\n",
            ns.name()
        )),
        "{diff}"
    );
    assert!(diff.contains("+  color: green"), "{diff}");
    assert_eq!(
        live_data(&ns, "app").await,
        Some(json!({"color": "blue"})),
        "a preview changed the object"
    );

    ok(&ex, K8S_APPLY, json!({"manifest": yaml})).await;
    assert_eq!(live_data(&ns, "app").await, Some(json!({"color": "green"})));

    // Invalid manifests are results the model sees, not executor errors.
    let bad = call(&ex, K8S_APPLY_DRY_RUN, json!({"manifest": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dta": {}}})).await;
    assert!(
        bad.is_error && bad.content.contains("dta"),
        "{}",
        bad.content
    );
    let bad = call(&ex, K8S_APPLY, json!({"manifest": "kind: ConfigMap"})).await;
    assert!(
        bad.is_error && bad.content.contains("required"),
        "{}",
        bad.content
    );
}

#[tokio::test]
async fn apply_conflicts_with_another_manager_unless_forced() {
    let env = testenv_or_skip!("apply_conflicts_with_another_manager_unless_forced");
    let ns = env.namespace("tools-conflict").await.expect("namespace");
    let argo = executor(&ns).with_field_manager("argocd");
    let agent = executor(&ns).with_field_manager("george");
    ok(
        &argo,
        K8S_APPLY,
        json!({"manifest": cm_manifest("owned", "blue")}),
    )
    .await;
    let out = call(
        &agent,
        K8S_APPLY,
        json!({"manifest": cm_manifest("owned", "red")}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("409"),
        "{}",
        out.content
    );
    assert_eq!(
        live_data(&ns, "owned").await,
        Some(json!({"color": "blue"}))
    );
    ok(
        &agent,
        K8S_APPLY,
        json!({"manifest": cm_manifest("owned", "red"), "force": true}),
    )
    .await;
    assert_eq!(live_data(&ns, "owned").await, Some(json!({"color": "red"})));
}

#[tokio::test]
async fn patch_scale_and_delete_change_real_objects_once() {
    let env = testenv_or_skip!("patch_scale_and_delete_change_real_objects_once");
    let ns = env.namespace("tools-write").await.expect("namespace");
    let ex = executor(&ns);
    config_map(&ns, "settings", json!({"color": "blue", "size": "s"})).await;
    deployment(&ns, "web", 5).await;

    let out = ok(&ex, K8S_PATCH, json!({"kind": "ConfigMap", "name": "settings", "patch": {"data": {"color": "red", "size": null}}})).await;
    assert!(
        out.content.contains("+  color: red") && out.content.contains("-  size: s"),
        "{}",
        out.content
    );
    assert_eq!(
        live_data(&ns, "settings").await,
        Some(json!({"color": "red"}))
    );
    let out = ok(&ex, K8S_PATCH, json!({"kind": "Deployment", "name": "web", "patch_type": "strategic",
        "patch": {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.invalid/app:2"}]}}}}})).await;
    assert!(
        out.content
            .contains("+        image: registry.invalid/app:2")
            || out.content.contains("app:2"),
        "{}",
        out.content
    );

    // The preview of a scale names the change; the scale sets an absolute count.
    let inv = ToolInvocation::new(
        K8S_SCALE,
        json!({"name": "web", "replicas": 2}),
        "approval-2/1",
    );
    let p = ex.preview(&inv).await.unwrap().unwrap();
    assert!(p.summary.contains("from 5 to 2"), "{p:?}");
    let out = ok(&ex, K8S_SCALE, json!({"name": "web", "replicas": 2})).await;
    assert!(out.content.contains("from 5 to 2"), "{}", out.content);
    let again = ok(&ex, K8S_SCALE, json!({"name": "web", "replicas": 2})).await;
    assert!(again.content.contains("already at 2"), "{}", again.content);
    let d = Api::<Deployment>::namespaced(ns.client(), ns.name())
        .get("web")
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(2));
    let not_scalable = call(
        &ex,
        K8S_SCALE,
        json!({"kind": "ConfigMap", "name": "settings", "replicas": 1}),
    )
    .await;
    assert!(
        not_scalable.is_error && not_scalable.content.contains("scale subresource"),
        "{}",
        not_scalable.content
    );

    // Delete: the preview shows the object going away; a repeated call is a no-op success.
    let inv = ToolInvocation::new(
        K8S_DELETE,
        json!({"kind": "ConfigMap", "name": "settings"}),
        "approval-3/1",
    );
    let p = ex.preview(&inv).await.unwrap().unwrap();
    assert!(
        p.summary.contains("would be deleted")
            && p.diff.as_deref().unwrap_or("").contains("+++ /dev/null"),
        "{p:?}"
    );
    let out = ok(
        &ex,
        K8S_DELETE,
        json!({"kind": "ConfigMap", "name": "settings"}),
    )
    .await;
    assert_eq!(out.data.as_ref().unwrap()["already_absent"], false);
    assert_eq!(live_data(&ns, "settings").await, None);
    let out = ok(
        &ex,
        K8S_DELETE,
        json!({"kind": "ConfigMap", "name": "settings"}),
    )
    .await;
    assert_eq!(
        out.data.as_ref().unwrap()["already_absent"],
        true,
        "{}",
        out.content
    );
    let p = ex.preview(&inv).await.unwrap().unwrap();
    assert!(p.summary.contains("does not exist"), "{p:?}");
}
