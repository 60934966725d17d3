//! The scaling event on a real Kubernetes API server (`examples/quickstart_k8s.rs` and
//! `tests/quickstart_k8s.rs`): the podinfo Deployment is rendered from the chart's
//! `values.yaml` and applied by a sync loop standing in for Argo CD; agents read the
//! cluster through `KubeToolExecutor`; the plan is a Git change; the verify step checks
//! the rollout through the Kubernetes tools, deferring until 2 replicas are ready.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use george::k8s::k8s_openapi::api::apps::v1::Deployment;
use george::k8s::k8s_openapi::api::core::v1::Pod;
use george::k8s::kube::Client;
use george::k8s::kube::api::{Api, ListParams, Patch, PatchParams};
use george::k8s::tools::{K8S_GET, K8S_ROLLOUT_STATUS, KubeToolExecutor};
use george::prelude::*;
use george::provider::{ChatResponse, Message};
use george::scripted::{last_tool_result_contains, tool_call};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::support::{self, Scenario, VALUES};

/// The Deployment the scenario right-sizes.
pub const DEPLOYMENT: &str = "podinfo";
/// The field manager of the sync loop (standing in for Argo CD).
pub const SYNC_MANAGER: &str = "argocd-stand-in";

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The quickstart's two repositories under `root`, with the `ops` repository holding
/// `examples/ops-repo-k8s/` (agents with Kubernetes tools, the `right-size-deployment`
/// template) instead of `examples/ops-repo/`.
pub fn setup(root: &Path) -> Scenario {
    let s = support::setup(root);
    for dir in ["agent-specs", "task-templates", "jobs"] {
        std::fs::remove_dir_all(s.ops.join(dir)).expect("clear the ops repository");
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ops-repo-k8s");
    copy_dir(&here, &s.ops).expect("copy examples/ops-repo-k8s");
    support::commit_all(&s.ops, "Order: right-size podinfo on Kubernetes");
    s
}

/// The podinfo Deployment of the chart in `examples/data/podinfo-chart`, rendered from
/// `values` (its `values.yaml`) for `namespace`: the fields of
/// `templates/deployment.yaml` that the scaling event touches (replicas unless the HPA is
/// enabled, image, ports, probes' ports, resources), as Helm would render them with the
/// default release name `podinfo`. Not a Helm implementation: no Helm is needed here.
///
/// # Errors
/// `values` is not YAML, or lacks `image.repository` / `image.tag`.
pub fn render_podinfo(values: &str, namespace: &str) -> Result<Value, String> {
    let v: Value = serde_saphyr::from_str(values).map_err(|e| format!("values.yaml: {e}"))?;
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let (Some(repo), Some(tag)) = (s("/image/repository"), s("/image/tag")) else {
        return Err("values.yaml: image.repository and image.tag are required".into());
    };
    let port = |p: &str, d: i64| v.pointer(p).and_then(Value::as_i64).unwrap_or(d);
    let (http, metrics, grpc) = (
        port("/service/httpPort", 9898),
        port("/service/metricsPort", 9797),
        port("/service/grpcPort", 9999),
    );
    let labels = json!({"app.kubernetes.io/name": DEPLOYMENT});
    let mut spec = json!({
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": http.to_string()}},
            "spec": {
                "terminationGracePeriodSeconds": 30,
                "containers": [{
                    "name": DEPLOYMENT,
                    "image": format!("{repo}:{tag}"),
                    "imagePullPolicy": s("/image/pullPolicy").unwrap_or_else(|| "IfNotPresent".into()),
                    "command": ["./podinfo", format!("--port={http}"), format!("--port-metrics={metrics}"), format!("--grpc-port={grpc}"),
                                "--level=info", "--random-delay=false", "--random-error=false"],
                    "ports": [
                        {"name": "http", "containerPort": http, "protocol": "TCP"},
                        {"name": "http-metrics", "containerPort": metrics, "protocol": "TCP"},
                        {"name": "grpc", "containerPort": grpc, "protocol": "TCP"}
                    ],
                    "resources": v.get("resources").cloned().unwrap_or(json!({})),
                }]
            }
        }
    });
    if v.pointer("/hpa/enabled") != Some(&Value::Bool(true)) {
        spec["replicas"] = json!(v.get("replicaCount").and_then(Value::as_i64).unwrap_or(1));
    }
    if let Some(r) = spec
        .pointer_mut("/template/spec/containers/0/resources")
        .and_then(Value::as_object_mut)
    {
        r.retain(|_, v| !v.is_null());
    }
    Ok(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": namespace, "labels": labels},
        "spec": spec
    }))
}

/// The `app` repository's `main` head and `values.yaml` there.
fn app_head(app: &Path) -> Option<(String, String)> {
    let run = |args: &[&str]| super::support::git_output(app, args);
    Some((
        run(&["rev-parse", "main"])?,
        run(&["show", &format!("main:{VALUES}")])?,
    ))
}

/// Renders the Deployment from `values` and applies it (server-side apply as
/// [`SYNC_MANAGER`], forced: Git wins, as with Argo CD).
pub async fn sync_once(client: &Client, namespace: &str, values: &str) -> Result<(), String> {
    let manifest = render_podinfo(values, namespace)?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    api.patch(
        DEPLOYMENT,
        &PatchParams::apply(SYNC_MANAGER).force(),
        &Patch::Apply(&manifest),
    )
    .await
    .map(drop)
    .map_err(|e| format!("sync: {e}"))
}

/// Stands in for Argo CD: applies the `app` repository's manifests at once, then again
/// after every new commit on `main` (polled every 300 ms).
pub fn spawn_sync_loop(s: &Scenario, client: Client, namespace: String) -> JoinHandle<()> {
    let app = s.app.clone();
    tokio::spawn(async move {
        let mut synced = String::new();
        loop {
            if let Some((head, values)) = app_head(&app)
                && head != synced
            {
                match sync_once(&client, &namespace, &values).await {
                    Ok(()) => {
                        println!(
                            "sync loop: applied main@{} to the cluster",
                            &head[..8.min(head.len())]
                        );
                        synced = head;
                    }
                    Err(e) => eprintln!("sync loop: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Stands in for the kubelet where no node runs pods (no kwok): marks every pod of the
/// namespace Running and Ready through the status subresource, every 300 ms.
pub fn spawn_kubelet_stand_in(client: Client, namespace: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(client, &namespace);
        loop {
            if let Ok(pods) = api.list(&ListParams::default()).await {
                for p in pods.items {
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    let (Some(name), false, None) =
                        (p.metadata.name, ready, p.metadata.deletion_timestamp)
                    else {
                        continue;
                    };
                    let now = george::k8s::k8s_openapi::jiff::Timestamp::now().to_string();
                    let cond =
                        |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
                    let status = json!({"status": {"phase": "Running", "startTime": now,
                        "conditions": [cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")]}});
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// The Deployment's `status.readyReplicas` and `spec.replicas`.
pub async fn replicas(client: &Client, namespace: &str) -> Option<(i32, i32)> {
    let d = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(DEPLOYMENT)
        .await
        .ok()?;
    let want = d.spec.and_then(|s| s.replicas).unwrap_or(1);
    Some((d.status.and_then(|s| s.ready_replicas).unwrap_or(0), want))
}

/// Waits (at most `secs` seconds) until `ready` replicas of the Deployment are ready.
pub async fn wait_ready(client: &Client, namespace: &str, ready: i32, secs: u64) -> bool {
    for _ in 0..secs * 4 {
        if replicas(client, namespace)
            .await
            .is_some_and(|(r, w)| r == ready && w == ready)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// The scripted investigation: read the Deployment with `k8s_get`, report its replicas.
pub fn script_investigation(p: &ScriptedProvider) {
    p.expect_call(
        "investigate: k8s_get the Deployment",
        tool_call(
            "call_1",
            K8S_GET,
            json!({"kind": "Deployment", "name": DEPLOYMENT}),
        ),
    );
    p.expect_call_where(
        "investigate: report",
        |req: &ChatRequest| {
            last_tool_result_contains(req, "replicas: 5")
                .then_some(())
                .ok_or_else(|| "k8s_get should show the Deployment's 5 replicas".to_string())
        },
        tool_call(
            "call_2",
            "report_success",
            json!({
                "summary": "the podinfo Deployment runs a static 5 replicas",
                "outputs": {"replicas": 5}
            }),
        ),
    );
}

/// The verify step's "model": a rule, not a language model (so that the example needs
/// no key and is deterministic whatever the timing). It reads the rollout with
/// `k8s_rollout_status`; reports success once the result says `done: true` and
/// `readyReplicas: <ready>`; defers 1 s otherwise.
#[derive(Debug, Clone)]
pub struct RolloutCheck {
    /// The ready replicas that mean done.
    pub ready: i64,
}

#[async_trait]
impl Provider for RolloutCheck {
    fn name(&self) -> &str {
        "rollout-check"
    }

    async fn complete(&self, request: ChatRequest) -> george::Result<ChatResponse> {
        let last = request.messages.iter().rev().find_map(|m| match m {
            Message::Tool { content, .. } => Some(content.as_str()),
            Message::User { .. } => Some(""),
            Message::Assistant(_) => None,
        });
        let Some(result) = last.filter(|r| !r.is_empty()) else {
            return Ok(tool_call(
                "check",
                K8S_ROLLOUT_STATUS,
                json!({"name": DEPLOYMENT}),
            ));
        };
        let has = |line: &str| result.lines().any(|l| l.trim() == line);
        if has("done: true") && has(&format!("readyReplicas: {}", self.ready)) {
            return Ok(tool_call(
                "ok",
                "report_success",
                json!({
                    "summary": format!("{DEPLOYMENT} rolled out with {} ready replicas", self.ready),
                    "outputs": {"ready_replicas": self.ready}
                }),
            ));
        }
        let first = result.lines().next().unwrap_or("not rolled out yet");
        Ok(tool_call(
            "later",
            "defer",
            json!({"seconds": 1, "reason": first}),
        ))
    }
}

/// The Kubernetes tools the agents get: the scenario's namespace, workloads and their
/// pods and events only, applied as `george`.
pub fn kube_tools(client: Client, namespace: &str) -> george::Result<KubeToolExecutor> {
    Ok(KubeToolExecutor::new(client)
        .with_namespaces([namespace])?
        .with_allowed_kinds(["Deployment", "ReplicaSet", "Pod", "Event"]))
}

/// The engine: the quickstart's (SQLite, the `ops` repository, the Git write tool as
/// `app_*`, `grep`), plus the Kubernetes tools, `provider` as `default` and
/// [`RolloutCheck`] as `rollout-check`.
pub async fn engine(
    s: &Scenario,
    client: Client,
    namespace: &str,
    provider: ScriptedProvider,
    human: ChannelHuman,
    id: &str,
) -> george::Result<Engine> {
    let tools = Arc::new(kube_tools(client, namespace)?);
    support::engine_with(s, human, id, move |b| {
        b.provider("default", Arc::new(provider))
            .provider("rollout-check", Arc::new(RolloutCheck { ready: 2 }))
            .tools(tools)
    })
    .await
}

/// The scenario against `client`'s cluster in `namespace`: the job's final status and
/// the Deployment's ready replicas at the end.
pub async fn run(
    client: Client,
    namespace: &str,
    kubelet_stand_in: bool,
) -> Result<(JobStatus, i32), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let s = setup(dir.path());
    println!(
        "George quickstart on Kubernetes — the model's answers are SCRIPTED; no model is called."
    );
    println!(
        "namespace: {namespace}\nops repo:  {}\napp repo:  {}\n",
        s.ops.display(),
        s.app.display()
    );
    if kubelet_stand_in {
        println!(
            "pods: no kwok here, so the example marks pods Running and Ready through the status subresource"
        );
    }
    let kubelet =
        kubelet_stand_in.then(|| spawn_kubelet_stand_in(client.clone(), namespace.to_owned()));
    let argocd = spawn_sync_loop(&s, client.clone(), namespace.to_owned());
    if !wait_ready(&client, namespace, 5, 120).await {
        return Err("the first sync did not bring 5 ready replicas within 120 s".into());
    }
    println!("podinfo: 5/5 ready before the job starts\n");

    let provider = ScriptedProvider::new();
    script_investigation(&provider);
    support::script_planning(&provider);
    let (human, approvals) = ChannelHuman::new();
    let engine = engine(
        &s,
        client.clone(),
        namespace,
        provider.clone(),
        human,
        "engine-1",
    )
    .await?;
    let _human = support::spawn_human(engine.clone(), approvals);
    let status = support::run_and_report(&engine, &s, Duration::from_secs(240)).await?;
    if !provider.failures().is_empty() {
        println!("script mismatches: {:#?}", provider.failures());
    }
    let ready = replicas(&client, namespace).await.map_or(0, |(r, _)| r);
    argocd.abort();
    if let Some(k) = kubelet {
        k.abort();
    }
    Ok((status, ready))
}
