//! Pods without kubelets: kwok's fake node, or marking pods Ready through the status
//! subresource when kwok is not there.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::control_plane::NODE;
use super::{Error, TestEnv};

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
