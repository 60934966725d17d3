//! Seed 001's feature delivery where the rollout is a real Kubernetes Deployment
//! (`examples/feature_delivery_k8s.rs`, `tests/feature_delivery_k8s.rs`; included beside
//! `support/mod.rs` as `support` and `support/feature.rs` as `feature`).
//!
//! - **Argo CD's stand-in** ([`spawn_sync_loop`]): on every new commit of the `app`
//!   repository it renders the chart (`helm/templates/deployment.yaml` with
//!   `helm/values.yaml`, by [`render_chart`]: enough of Helm for this chart) and applies
//!   the Deployment `darwin-store` (5 replicas, one pod replaced at a time, a 6 s progress
//!   deadline) with server-side apply. The pod template also carries what the code at that
//!   commit reads from its environment (annotation [`REQUIRES_ENV`], standing in for the
//!   image CI would build), so the developer's commit is revision 2 and the chart fix 3.
//! - **The kubelet's stand-in** ([`spawn_kubelet_stand_in`]): the rendered pods name a
//!   scheduler that does not exist ([`STAND_IN_SCHEDULER`]), so neither kube-scheduler nor
//!   kwok's node ever takes them, with or without kwok; this stand-in alone reports their
//!   status (status subresource): Running and Ready when the container's env has every
//!   variable the code reads, otherwise not Ready, waiting in `CrashLoopBackOff` with
//!   `KeyError: 'DB_HOST'` (what the Python code raises).
//!
//! kube-controller-manager does the rest: the ReplicaSets, the rolling update that sticks
//! at 4 of 5 ready with the new pod crashing, `ProgressDeadlineExceeded`, and, after the
//! sysadmin's chart fix, revision 3 rolled out. The agents read it all with
//! `k8s_rollout_status` and `k8s_list` ([`Rollout::Kube`]).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use george::k8s::k8s_openapi::api::apps::v1::Deployment;
use george::k8s::k8s_openapi::api::core::v1::Pod;
use george::k8s::kube::Client;
use george::k8s::kube::api::{Api, ListParams, Patch, PatchParams};
use george::k8s::tools::KubeToolExecutor;
use george::prelude::*;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::feature::{self, CHART, DEPLOYMENT, Report, Rollout, Scenario};
use crate::support::{commit_all, copy_dir};

/// The pod-template annotation listing what the code reads from its environment
/// (comma-separated), rendered by the sync loop from `app/*.py`.
pub const REQUIRES_ENV: &str = "darwin-store.example/requires-env";
/// The scheduler the rendered pods name: none runs, so only the kubelet stand-in
/// reports their status.
pub const STAND_IN_SCHEDULER: &str = "george-example-kubelet-stand-in";
/// The field manager of the sync loop (standing in for Argo CD).
pub const SYNC_MANAGER: &str = "argocd-stand-in";
/// The chart's values.
pub const VALUES: &str = "helm/values.yaml";

/// The event's repositories (`support/feature.rs`'s), with `examples/feature-delivery-k8s/`
/// over the `ops` repository: the aligner and the sysadmin read the cluster with the
/// Kubernetes tools, and `confirm` is the sysadmin's (it waits for the Deployment).
pub fn setup(root: &Path) -> Scenario {
    let s = feature::setup(root);
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/feature-delivery-k8s");
    copy_dir(&here, &s.ops);
    commit_all(
        &s.ops,
        "On Kubernetes: read the rollout from the API server",
    );
    s
}

/// Renders a Helm template as this chart uses Helm: `{{ .Release.Name }}` and
/// `{{ .Values.a.b }}`, each optionally `| quote`, then parses the YAML. Not a Helm
/// implementation: anything else is an error, so the renderer never guesses.
///
/// # Errors
/// `values` or the rendered text is not YAML, a value is missing or not a scalar, or the
/// template uses more of Helm than the above.
pub fn render_chart(template: &str, values: &str, release: &str) -> Result<Value, String> {
    let values: Value = serde_saphyr::from_str(values).map_err(|e| format!("values: {e}"))?;
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| "an unclosed {{ in the template".to_string())?;
        let expr = rest[start + 2..start + end].trim();
        let mut parts = expr.split('|').map(str::trim);
        let path = parts.next().unwrap_or("");
        let value = if path == ".Release.Name" {
            release.to_owned()
        } else if let Some(key) = path.strip_prefix(".Values.") {
            let pointer = format!("/{}", key.replace('.', "/"));
            match values.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                _ => return Err(format!("{path}: no such scalar in the values")),
            }
        } else {
            return Err(format!("{{{{ {expr} }}}}: not supported by this renderer"));
        };
        match parts.next() {
            None => out.push_str(&value),
            Some("quote") => out.push_str(&Value::String(value).to_string()),
            Some(f) => return Err(format!("{{{{ {expr} }}}}: no filter {f:?} here")),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    serde_saphyr::from_str(&out).map_err(|e| format!("the rendered template: {e}"))
}

/// The environment variables `code` reads with `os.environ["NAME"]`, in order.
pub fn required_env(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for piece in code.split("os.environ[").skip(1) {
        let piece = piece.trim_start_matches(['"', '\'']);
        if let Some(end) = piece.find(['"', '\'']) {
            let name = piece[..end].to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The Deployment the sync loop applies for `namespace`: the chart rendered with
/// `values`, the pods bound to no scheduler ([`STAND_IN_SCHEDULER`]) and annotated with
/// the variables `code` reads ([`REQUIRES_ENV`]).
///
/// # Errors
/// As [`render_chart`]; or the chart does not render a Deployment with a pod template.
pub fn render_deployment(
    chart: &str,
    values: &str,
    code: &str,
    namespace: &str,
) -> Result<Value, String> {
    let mut d = render_chart(chart, values, DEPLOYMENT)?;
    if d["kind"] != "Deployment" || d.pointer("/spec/template/spec").is_none() {
        return Err("the chart does not render a Deployment with a pod template".into());
    }
    d["metadata"]["namespace"] = json!(namespace);
    let template = &mut d["spec"]["template"];
    template["metadata"]["annotations"][REQUIRES_ENV] = json!(required_env(code).join(","));
    template["spec"]["schedulerName"] = json!(STAND_IN_SCHEDULER);
    Ok(d)
}

/// The `app` repository at `main`: the head, the chart, the values and the code (every
/// `app/*.py`); `None` while git cannot say.
fn app_at_main(app: &Path) -> Option<(String, String, String, String)> {
    let run = |args: &[&str]| super::support::git_output(app, args);
    let head = run(&["rev-parse", "main"])?;
    let show = |path: &str| run(&["show", &format!("{}:{path}", head.trim())]);
    let mut code = String::new();
    for file in run(&["ls-tree", "--name-only", head.trim(), "app/"])?.lines() {
        if file.ends_with(".py") {
            code.push_str(&show(file)?);
        }
    }
    Some((head.trim().to_owned(), show(CHART)?, show(VALUES)?, code))
}

/// Stands in for Argo CD: renders and applies the `app` repository's Deployment at once,
/// then after every new commit on `main` (polled every 300 ms); server-side apply as
/// [`SYNC_MANAGER`], forced (Git wins).
pub fn spawn_sync_loop(app: PathBuf, client: Client, namespace: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Deployment> = Api::namespaced(client, &namespace);
        let mut synced = String::new();
        loop {
            if let Some((head, chart, values, code)) = app_at_main(&app)
                && head != synced
            {
                let applied = match render_deployment(&chart, &values, &code, &namespace) {
                    Ok(d) => api
                        .patch(
                            DEPLOYMENT,
                            &PatchParams::apply(SYNC_MANAGER).force(),
                            &Patch::Apply(&d),
                        )
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                let short = head.get(..8).unwrap_or(&head);
                match applied {
                    Ok(()) => println!("sync loop: applied app main@{short}"),
                    Err(e) => eprintln!("sync loop: main@{short}: {e}"),
                }
                synced = head;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// What the kubelet stand-in reports for `pod`, once: `None` when it already did (the pod
/// has a `Ready` condition) or the pod is going away.
pub fn pod_status(pod: &Pod) -> Option<Value> {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    if pod.metadata.deletion_timestamp.is_some()
        || conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready"))
    {
        return None;
    }
    let container = pod.spec.as_ref()?.containers.first()?;
    let has: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    let requires = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUIRES_ENV))
        .map_or("", String::as_str);
    let missing = requires
        .split(',')
        .map(str::trim)
        .find(|n| !n.is_empty() && !has.contains(n));
    let now = george::k8s::k8s_openapi::jiff::Timestamp::now().to_string();
    let cond = |t: &str, ok: bool| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now});
    let (name, image) = (&container.name, container.image.as_deref().unwrap_or(""));
    let (ready, container_status) = match missing {
        None => (
            true,
            json!({"name": name, "image": image, "imageID": "", "ready": true, "started": true,
                   "restartCount": 0, "state": {"running": {"startedAt": now}}}),
        ),
        Some(var) => {
            let error = format!("KeyError: '{var}'");
            (
                false,
                json!({"name": name, "image": image, "imageID": "", "ready": false, "started": false,
                       "restartCount": 3,
                       "state": {"waiting": {"reason": "CrashLoopBackOff",
                           "message": format!("back-off 40s restarting failed container={name}: {error}")}},
                       "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": error,
                           "startedAt": now, "finishedAt": now}}}),
            )
        }
    };
    Some(json!({"status": {
        "phase": "Running", "startTime": now,
        "conditions": [cond("PodScheduled", true), cond("Initialized", true),
                       cond("ContainersReady", ready), cond("Ready", ready)],
        "containerStatuses": [container_status]
    }}))
}

/// Stands in for the kubelet of the darwin-store pods: every 300 ms, reports the status
/// of each new one ([`pod_status`]) through the status subresource.
pub fn spawn_kubelet_stand_in(client: Client, namespace: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(client, &namespace);
        let pods = ListParams::default().labels("app=darwin-store");
        loop {
            for pod in api.list(&pods).await.map(|l| l.items).unwrap_or_default() {
                if let (Some(name), Some(status)) = (pod.metadata.name.as_deref(), pod_status(&pod))
                {
                    let patch = Patch::Merge(&status);
                    if let Err(e) = api
                        .patch_status(name, &PatchParams::default(), &patch)
                        .await
                    {
                        eprintln!("kubelet stand-in: pod {name}: {e}");
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// The Deployment `darwin-store`, if it exists.
pub async fn deployment(client: &Client, namespace: &str) -> Option<Deployment> {
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(DEPLOYMENT)
        .await
        .ok()
}

/// Whether `d` has rolled out: its latest spec observed, every replica updated and ready.
pub fn rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = d.status.as_ref() else {
        return false;
    };
    st.observed_generation >= d.metadata.generation
        && st.replicas == Some(want)
        && st.updated_replicas == Some(want)
        && st.ready_replicas == Some(want)
}

/// The Kubernetes tools the agents get: reads of the namespace's Deployments,
/// ReplicaSets, Pods and Events only (the service changes through Git).
pub fn kube_tools(client: Client, namespace: &str) -> george::Result<KubeToolExecutor> {
    Ok(KubeToolExecutor::new(client)
        .with_namespaces([namespace])?
        .with_allowed_kinds(["Deployment", "ReplicaSet", "Pod", "Event"])
        .with_read_only_kinds(["Deployment", "ReplicaSet", "Pod", "Event"]))
}

/// The event against `client`'s cluster in `namespace`: the sync loop and the kubelet
/// stand-in run, revision 1 rolls out (5/5), then the jobs run to their end (or
/// `timeout`). Returns the engine and the report; the Deployment stays for the caller
/// to inspect.
pub async fn run(
    s: &Scenario,
    client: Client,
    namespace: &str,
    timeout: Duration,
) -> Result<(Engine, Report), Box<dyn std::error::Error>> {
    let kubelet = spawn_kubelet_stand_in(client.clone(), namespace.to_owned());
    let argocd = spawn_sync_loop(s.app.clone(), client.clone(), namespace.to_owned());
    let mut first = false;
    for _ in 0..240 {
        if deployment(&client, namespace)
            .await
            .is_some_and(|d| rolled_out(&d))
        {
            first = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let outcome = if first {
        println!("darwin-store: revision 1 rolled out, 5/5 ready, before the jobs start\n");
        let tools = Arc::new(kube_tools(client, namespace)?);
        feature::run_event(s, Rollout::Kube, timeout, move |b| b.tools(tools))
            .await
            .map_err(Into::into)
    } else {
        Err("the first sync did not roll out 5 ready replicas within 60 s".into())
    };
    argocd.abort();
    kubelet.abort();
    outcome
}
