//! Request building against a mock API server (a tower service): which requests each
//! tool sends, and that refusals send none. Behaviour against a real API server is in
//! `tests/tools.rs`.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

use george_core::ErrorKind;
use george_core::tool::{EffectClass, ToolExecutor, ToolInvocation};

use super::*;

/// One request the mock saw: method, path and query, content type, body.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    content_type: String,
    body: Value,
}

type Route = Arc<dyn Fn(&str, &str) -> (u16, Value) + Send + Sync>;

/// A client whose requests are answered by `route(method, path)` and recorded.
fn mock(
    route: impl Fn(&str, &str) -> (u16, Value) + Send + Sync + 'static,
) -> (Client, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let route: Route = Arc::new(route);
    let log = seen.clone();
    let svc = tower::service_fn(move |req: Request<Body>| {
        let (route, log) = (route.clone(), log.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let content_type = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let uri = parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let (code, answer) = route(parts.method.as_str(), parts.uri.path());
            log.lock().unwrap().push(Seen {
                method: parts.method.to_string(),
                uri,
                content_type,
                body,
            });
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(answer.to_string().into_bytes()))
                    .unwrap(),
            )
        }
    });
    (Client::new(svc, "team-a"), seen)
}

fn apps_v1() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment", "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
    ]})
}

fn core_v1() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
        {"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret", "verbs": ["get", "list", "delete"]},
        {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": ["get", "list", "delete", "patch"]}
    ]})
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "not found", "reason": "NotFound", "code": 404}),
    )
}

fn deployment(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team-a", "uid": "u1", "resourceVersion": "7", "managedFields": [{"manager": "x"}]},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}}})
}

fn call(name: &str, args: Value) -> ToolInvocation {
    ToolInvocation::new(name, args, "job/step/1/1")
}

#[test]
fn tools_have_their_effect_classes() {
    let tools = super::args::definitions();
    let effect = |n: &str| tools.iter().find(|t| t.name == n).map(|t| t.effect);
    for read in [
        K8S_GET,
        K8S_LIST,
        K8S_DESCRIBE,
        K8S_EVENTS,
        K8S_LOGS,
        K8S_ROLLOUT_STATUS,
        K8S_GET_SCHEMA,
    ] {
        assert_eq!(effect(read), Some(EffectClass::Read), "{read}");
    }
    assert_eq!(effect(K8S_APPLY_DRY_RUN), Some(EffectClass::DryRun));
    for write in [K8S_APPLY, K8S_PATCH, K8S_SCALE, K8S_DELETE] {
        assert_eq!(effect(write), Some(EffectClass::Write), "{write}");
    }
    assert!(tools.iter().all(|t| t.input_schema["type"] == "object"));
}

#[tokio::test]
async fn a_namespace_outside_the_scope_sends_no_request() {
    let (client, seen) = mock(|_, _| (500, json!({})));
    let ex = KubeToolExecutor::new(client);
    for (tool, args) in [
        (
            K8S_GET,
            json!({"kind": "Deployment", "name": "web", "namespace": "kube-system"}),
        ),
        (K8S_LOGS, json!({"name": "p", "namespace": "kube-system"})),
        (
            K8S_DELETE,
            json!({"kind": "Deployment", "name": "web", "namespace": "kube-system"}),
        ),
        (
            K8S_APPLY,
            json!({"manifest": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "kube-system"}}}),
        ),
    ] {
        let out = ex.call(call(tool, args)).await.unwrap();
        assert!(
            out.is_error && out.content.contains("kube-system"),
            "{tool}: {out:?}"
        );
        assert_eq!(out.data.as_ref().unwrap()["rule"], "namespace");
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test]
async fn a_denied_kind_is_refused_after_discovery_only() {
    let (client, seen) = mock(|_, p| {
        if p == "/api/v1" {
            (200, core_v1())
        } else {
            (500, json!({}))
        }
    });
    let ex = KubeToolExecutor::new(client).with_denied_kinds(["Secret"]);
    let out = ex
        .call(call(
            K8S_GET,
            json!({"kind": "secret", "name": "db", "api_version": "v1"}),
        ))
        .await
        .unwrap();
    assert!(out.is_error && out.content.contains("denied"), "{out:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "only discovery: {seen:?}");
    assert_eq!(seen[0].uri, "/api/v1");
}

#[tokio::test]
async fn apply_dry_run_sends_a_server_side_apply_with_dry_run_and_diffs() {
    let (client, seen) = mock(|m, p| match (m, p) {
        ("GET", "/apis/apps/v1") => (200, apps_v1()),
        ("GET", "/apis/apps/v1/namespaces/team-a/deployments/web") => (200, deployment(5)),
        ("PATCH", "/apis/apps/v1/namespaces/team-a/deployments/web") => (200, deployment(2)),
        _ => (500, json!({})),
    });
    let ex = KubeToolExecutor::new(client).with_field_manager("ops-agent");
    let manifest =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n";
    let out = ex
        .call(call(K8S_APPLY_DRY_RUN, json!({"manifest": manifest})))
        .await
        .unwrap();
    assert!(!out.is_error, "{out:?}");
    assert!(
        out.content.contains("dry run")
            && out.content.contains("-  replicas: 5")
            && out.content.contains("+  replicas: 2"),
        "{}",
        out.content
    );
    let seen = seen.lock().unwrap();
    let patch = seen.iter().find(|s| s.method == "PATCH").expect("a PATCH");
    assert!(
        patch.uri.contains("dryRun=All")
            && patch.uri.contains("fieldManager=ops-agent")
            && patch.uri.contains("fieldValidation=Strict"),
        "{}",
        patch.uri
    );
    assert!(!patch.uri.contains("force=true"), "{}", patch.uri);
    assert_eq!(patch.content_type, "application/apply-patch+yaml");
    assert_eq!(
        patch.body["metadata"]["namespace"], "team-a",
        "the default namespace is filled in"
    );
}

#[tokio::test]
async fn scale_patches_the_scale_subresource_and_delete_of_an_absent_object_succeeds() {
    let (client, seen) = mock(|m, p| match (m, p) {
        ("GET", "/apis/apps/v1") => (200, apps_v1()),
        ("GET", "/api/v1") => (200, core_v1()),
        ("GET", "/apis/apps/v1/namespaces/team-a/deployments/web/scale") => (
            200,
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 5}}),
        ),
        ("PATCH", "/apis/apps/v1/namespaces/team-a/deployments/web/scale") => (
            200,
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 2}}),
        ),
        ("DELETE", _) => not_found(),
        _ => (500, json!({})),
    });
    let ex = KubeToolExecutor::new(client);
    let out = ex
        .call(call(
            K8S_SCALE,
            json!({"name": "web", "replicas": 2, "api_version": "apps/v1"}),
        ))
        .await
        .unwrap();
    assert!(
        !out.is_error && out.content.contains("from 5 to 2"),
        "{out:?}"
    );
    let out = ex
        .call(call(
            K8S_DELETE,
            json!({"kind": "ConfigMap", "name": "gone", "api_version": "v1"}),
        ))
        .await
        .unwrap();
    assert!(
        !out.is_error && out.data.as_ref().unwrap()["already_absent"] == true,
        "{out:?}"
    );
    let seen = seen.lock().unwrap();
    let scale = seen
        .iter()
        .find(|s| s.method == "PATCH")
        .expect("a PATCH of the scale");
    assert_eq!(scale.body, json!({"spec": {"replicas": 2}}));
    assert_eq!(scale.content_type, "application/merge-patch+json");
    assert!(
        seen.iter().any(|s| s.method == "DELETE"
            && s.uri
                .starts_with("/api/v1/namespaces/team-a/configmaps/gone")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn server_errors_are_executor_errors_and_client_errors_are_results() {
    let (client, _) = mock(|m, p| match (m, p) {
        ("GET", "/apis/apps/v1") => (200, apps_v1()),
        ("GET", "/apis/apps/v1/namespaces/team-a/deployments/web") => (
            503,
            json!({"kind": "Status", "code": 503, "message": "etcd down", "reason": "ServiceUnavailable"}),
        ),
        ("GET", "/apis/apps/v1/namespaces/team-a/deployments/nope") => not_found(),
        ("GET", "/apis/apps/v1/namespaces/team-a/deployments/auth") => (
            401,
            json!({"kind": "Status", "code": 401, "message": "no", "reason": "Unauthorized"}),
        ),
        _ => (500, json!({})),
    });
    let ex = KubeToolExecutor::new(client);
    let get = |name: &str| {
        call(
            K8S_GET,
            json!({"kind": "Deployment", "name": name, "api_version": "apps/v1"}),
        )
    };
    let e = ex.call(get("web")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(e.is_retryable());
    let e = ex.call(get("auth")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    let out = ex.call(get("nope")).await.unwrap();
    assert!(out.is_error && out.content.contains("not found"), "{out:?}");
    let e = ex.call(call("k8s_exec", json!({}))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn secrets_are_redacted_even_when_readable() {
    let (client, _) = mock(|m, p| match (m, p) {
        ("GET", "/api/v1") => (200, core_v1()),
        ("GET", "/api/v1/namespaces/team-a/secrets/db") => (
            200,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}}),
        ),
        _ => (500, json!({})),
    });
    let ex = KubeToolExecutor::new(client);
    let out = ex
        .call(call(
            K8S_GET,
            json!({"kind": "Secret", "name": "db", "api_version": "v1"}),
        ))
        .await
        .unwrap();
    assert!(!out.is_error, "{out:?}");
    let all = format!("{} {}", out.content, out.data.unwrap());
    assert!(
        !all.contains("aHVudGVyMg") && all.contains(REDACTED) && all.contains("password"),
        "{all}"
    );
}

#[tokio::test]
async fn logs_ask_for_the_container_tail_and_since() {
    let (client, seen) = mock(|m, p| match (m, p) {
        ("GET", "/api/v1/namespaces/team-a/pods/web-1/log") => (200, json!("line 1")),
        _ => (500, json!({})),
    });
    let ex = KubeToolExecutor::new(client).with_max_output_bytes(4096);
    let args = json!({"name": "web-1", "container": "app", "tail_lines": 10, "since_seconds": 60, "previous": true});
    let out = ex.call(call(K8S_LOGS, args)).await.unwrap();
    assert!(!out.is_error, "{out:?}");
    let uri = seen.lock().unwrap()[0].uri.clone();
    for part in [
        "container=app",
        "tailLines=10",
        "sinceSeconds=60",
        "previous=true",
        "limitBytes=4096",
    ] {
        assert!(uri.contains(part), "{uri} lacks {part}");
    }
}

#[tokio::test]
async fn a_write_under_a_stale_lease_is_refused() {
    use george_core::tool::{FencingToken, ToolContext};
    let (client, seen) = mock(|_, _| not_found());
    let ex = KubeToolExecutor::new(client);
    let at = |seq: u64| {
        let ctx = ToolContext::new("job", "step", 1, 1).with_fencing(FencingToken {
            holder: format!("engine-{seq}"),
            sequence: seq,
        });
        call(
            K8S_DELETE,
            json!({"kind": "ConfigMap", "name": "c", "api_version": "v1"}),
        )
        .with_context(ctx)
    };
    // Sequence 5 passes the fence (and fails on the mock's 404 discovery: an error result).
    let _ = ex.call(at(5)).await;
    let before = seen.lock().unwrap().len();
    let out = ex.call(at(4)).await.unwrap();
    assert!(
        out.is_error && out.data.as_ref().unwrap()["rule"] == "fencing",
        "{out:?}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "a stale call reached the API"
    );
    let _ = ex.call(at(6)).await;
    assert!(seen.lock().unwrap().len() > before);
}

#[test]
fn rollout_follows_kubectl_rules() {
    let mut d = deployment(2);
    d["metadata"]["generation"] = json!(3);
    d["status"] = json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1});
    let s = super::rollout::rollout("Deployment", &d).unwrap();
    assert_eq!(s["done"], false);
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("1 of 2 updated replicas are available")
    );
    d["status"]["readyReplicas"] = json!(2);
    d["status"]["availableReplicas"] = json!(2);
    assert_eq!(
        super::rollout::rollout("Deployment", &d).unwrap()["done"],
        true
    );
    d["status"]["observedGeneration"] = json!(2);
    assert_eq!(
        super::rollout::rollout("Deployment", &d).unwrap()["done"],
        false
    );
    assert!(super::rollout::rollout("ConfigMap", &d).is_none());
}
