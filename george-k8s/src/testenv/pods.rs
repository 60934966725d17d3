//! Pods without kubelets: kwok's fake node (with container logs it serves from files), or
//! marking pods Ready through the status subresource when kwok is not there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::control_plane::NODE;
use super::{Error, TestEnv};

/// The containers whose logs kwok serves, in any pod on its node: each from a file of its
/// own that [`TestEnv::write_container_log`] fills (empty until then). Other containers
/// have no logs (kwok answers an error).
pub const LOGGED_CONTAINERS: [&str; 2] = ["main", "sidecar"];

/// The directory of the log files kwok serves, under the environment's directory.
const LOG_DIR: &str = "kwok-logs";

fn log_file(dir: &Path, container: &str, previous: bool) -> PathBuf {
    let suffix = if previous { ".previous" } else { "" };
    dir.join(LOG_DIR).join(format!("{container}{suffix}.log"))
}

/// kwok's configuration in `dir`: the stages built with it (`stages`), then a
/// `ClusterLogs` serving each of [`LOGGED_CONTAINERS`]' current and previous logs from
/// its (created, empty) files. Returns the file's path.
pub(crate) fn write_kwok_config(dir: &Path, stages: &Path) -> Result<PathBuf, Error> {
    let mut config = std::fs::read_to_string(stages).map_err(|e| Error::io(stages, e))?;
    let logs = dir.join(LOG_DIR);
    std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
    config.push_str(
        "\n---\napiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterLogs\nmetadata:\n  \
         name: george-testenv-logs\nspec:\n  logs:\n",
    );
    for c in LOGGED_CONTAINERS {
        let (current, previous) = (log_file(dir, c, false), log_file(dir, c, true));
        for f in [&current, &previous] {
            std::fs::write(f, "").map_err(|e| Error::io(f, e))?;
        }
        // JSON strings are YAML strings: the paths need no escaping of their own.
        let quote = |p: &Path| serde_json::Value::from(p.display().to_string()).to_string();
        config.push_str(&format!(
            "  - containers: [{c}]\n    logsFile: {}\n    previousLogsFile: {}\n",
            quote(&current),
            quote(&previous),
        ));
    }
    let path = dir.join("kwok.yaml");
    std::fs::write(&path, config).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

impl TestEnv {
    /// Replaces the log kwok serves for container `container` (one of
    /// [`LOGGED_CONTAINERS`]) in every pod on its node — its `previous` instance's log
    /// when `previous` — with `lines`, each written to stdout at its time (CRI log format,
    /// so `sinceSeconds` and `tailLines` filter them as a kubelet would). The file is the
    /// environment's, shared by the tests of the binary: one test should own a container
    /// name.
    ///
    /// # Errors
    /// kwok does not run, `container` is not one it serves, or the file cannot be written.
    pub fn write_container_log(
        &self,
        container: &str,
        previous: bool,
        lines: &[(k8s_openapi::jiff::Timestamp, &str)],
    ) -> Result<(), Error> {
        if !self.has_kwok() {
            return Err(Error::Unsupported(
                "kwok does not run: no container logs are served".into(),
            ));
        }
        if !LOGGED_CONTAINERS.contains(&container) {
            return Err(Error::Unsupported(format!(
                "kwok serves the logs of containers {LOGGED_CONTAINERS:?} only, not {container:?}"
            )));
        }
        let text: String = lines
            .iter()
            .map(|(at, line)| format!("{at} stdout F {line}\n"))
            .collect();
        let path = log_file(self.dir(), container, previous);
        // Written aside and renamed: a reader sees the old log or the new one, whole.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// Creates kwok's node and waits (≤ 30 s) until kwok reports it Ready.
pub(crate) async fn add_fake_node(env: &TestEnv) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(env.client());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": NODE,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok"
            }
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}
        }
    }))
    .map_err(|e| Error::Start(format!("the fake node: {e}")))?;
    nodes.create(&PostParams::default(), &node).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = nodes.get(NODE).await?;
        let ready = n
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            return Ok(());
        }
        env.check_alive()?;
        if Instant::now() > deadline {
            return Err(Error::Start(format!(
                "kwok did not make node {NODE} Ready within 30 s (see {})",
                env.dir().join("kwok.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Marks every pod in `namespace` matching `selector` (a label selector, `""` for all)
/// Running and Ready through the status subresource, as a kubelet would — for an
/// environment without kwok. Returns how many pods it changed. ReplicaSets and
/// Deployments then count them as ready replicas.
///
/// # Errors
/// The API server refused.
pub async fn mark_pods_ready(
    client: kube::Client,
    namespace: &str,
    selector: &str,
) -> Result<usize, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let mut changed = 0;
    for pod in pods.list(&ListParams::default().labels(selector)).await? {
        let status = pod.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let containers: Vec<_> = pod
            .spec
            .as_ref()
            .map(|s| {
                s.containers
                    .iter()
                    .map(|c| (c.name.clone(), c.image.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
        let patch = json!({"status": {
            "phase": "Running",
            "podIP": "10.0.1.10",
            "hostIP": "10.0.1.1",
            "startTime": now,
            "conditions": [cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")],
            "containerStatuses": containers.iter().map(|(name, image)| json!({
                "name": name,
                "image": image.clone().unwrap_or_default(),
                "imageID": "",
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}}
            })).collect::<Vec<_>>()
        }});
        let name = pod.metadata.name.clone().unwrap_or_default();
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        changed += 1;
    }
    Ok(changed)
}
