//! `KubeToolExecutor` against a real kube-apiserver (with kube-controller-manager) from
//! `george_k8s::testenv`: every tool on real objects, the scope's refusals, dry runs that
//! change nothing, Secret values redacted. Skipped loudly without the binaries.

mod engine;
mod read;
mod scope;
mod write;

use std::time::{Duration, Instant};

use george_core::tool::{ToolExecutor, ToolInvocation, ToolOutput};
use george_k8s::testenv::TestNamespace;
use george_k8s::tools::KubeToolExecutor;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// Calls `tool` with `args`; panics on an executor error.
pub async fn call(ex: &KubeToolExecutor, tool: &str, args: Value) -> ToolOutput {
    ex.call(ToolInvocation::new(
        tool,
        args.clone(),
        format!("job/step/1/{tool}"),
    ))
    .await
    .unwrap_or_else(|e| panic!("{tool} {args}: executor error {e}"))
}

/// Calls `tool` and asserts that it succeeded.
pub async fn ok(ex: &KubeToolExecutor, tool: &str, args: Value) -> ToolOutput {
    let out = call(ex, tool, args.clone()).await;
    assert!(!out.is_error, "{tool} {args} failed: {}", out.content);
    out
}

/// Calls `tool` and asserts that the scope refused it (with `rule`).
pub async fn refused(ex: &KubeToolExecutor, tool: &str, args: Value, rule: &str) -> ToolOutput {
    let out = call(ex, tool, args.clone()).await;
    assert!(
        out.is_error,
        "{tool} {args} should be refused: {}",
        out.content
    );
    let data = out.data.clone().unwrap_or(Value::Null);
    assert_eq!(data["refused"], true, "{tool} {args}: {}", out.content);
    assert_eq!(data["rule"], rule, "{tool} {args}: {}", out.content);
    out
}

/// The executor of a test: scoped to its namespace.
pub fn executor(ns: &TestNamespace) -> KubeToolExecutor {
    KubeToolExecutor::new(ns.client())
        .with_namespaces([ns.name()])
        .expect("one namespace")
}

/// Creates a ConfigMap `name` with `data` and label `app=<name>`.
pub async fn config_map(ns: &TestNamespace, name: &str, data: Value) -> ConfigMap {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}}, "data": data
    }))
    .expect("a ConfigMap");
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .expect("create the ConfigMap")
}

/// Creates a Deployment `name` of `replicas` (an image nothing pulls: no kubelet here).
pub async fn deployment(ns: &TestNamespace, name: &str, replicas: i32) -> Deployment {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}
            }
        }
    }))
    .expect("a Deployment");
    ns.api::<Deployment>()
        .create(&PostParams::default(), &d)
        .await
        .expect("create the Deployment")
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The live ConfigMap `name`'s data.
pub async fn live_data(ns: &TestNamespace, name: &str) -> Option<Value> {
    let api: Api<ConfigMap> = ns.api();
    let cm = api.get_opt(name).await.expect("get the ConfigMap")?;
    Some(serde_json::to_value(cm.data).expect("json"))
}
