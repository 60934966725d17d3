//! `k8s_rollout_status`'s verdict, by `kubectl rollout status`'s rules, from a workload
//! object's spec and status.

use serde_json::{Value, json};

/// The rollout state of a workload (`kubectl rollout status`'s rules): `{"done", the
/// replica counts, "message"}`; `None` for other kinds.
pub(crate) fn rollout(kind: &str, v: &Value) -> Option<Value> {
    let n = |p: &str| v.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let generation = n("/metadata/generation");
    let observed = n("/status/observedGeneration");
    let synced = observed >= generation;
    let (done, message, counts) = match kind {
        "Deployment" => {
            let want = v
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (total, updated, ready, available) = (
                n("/status/replicas"),
                n("/status/updatedReplicas"),
                n("/status/readyReplicas"),
                n("/status/availableReplicas"),
            );
            let stalled = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded"
                    })
                });
            let (done, msg) = if !synced {
                (
                    false,
                    "waiting for the deployment spec update to be observed".to_owned(),
                )
            } else if stalled {
                (
                    false,
                    "rollout stalled: progress deadline exceeded".to_owned(),
                )
            } else if updated < want {
                (
                    false,
                    format!(
                        "waiting for rollout to finish: {updated} of {want} updated replicas are available"
                    ),
                )
            } else if total > updated {
                (
                    false,
                    format!(
                        "waiting for rollout to finish: {} old replicas are pending termination",
                        total - updated
                    ),
                )
            } else if available < updated {
                (
                    false,
                    format!(
                        "waiting for rollout to finish: {available} of {updated} updated replicas are available"
                    ),
                )
            } else {
                (
                    true,
                    format!("successfully rolled out ({ready}/{want} ready)"),
                )
            };
            (
                done,
                msg,
                json!({"replicas": want, "statusReplicas": total, "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": available}),
            )
        }
        "StatefulSet" => {
            let want = v
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (ready, updated) = (n("/status/readyReplicas"), n("/status/updatedReplicas"));
            let same_rev =
                v.pointer("/status/currentRevision") == v.pointer("/status/updateRevision");
            let done = synced && ready >= want && updated >= want && same_rev;
            let msg = if done {
                format!("successfully rolled out ({ready}/{want} ready)")
            } else {
                format!("waiting: {ready} of {want} pods ready, {updated} updated")
            };
            (
                done,
                msg,
                json!({"replicas": want, "readyReplicas": ready, "updatedReplicas": updated}),
            )
        }
        "DaemonSet" => {
            let (want, updated, available) = (
                n("/status/desiredNumberScheduled"),
                n("/status/updatedNumberScheduled"),
                n("/status/numberAvailable"),
            );
            let done = synced && updated >= want && available >= want;
            let msg = if done {
                format!("successfully rolled out ({available}/{want} available)")
            } else {
                format!("waiting: {updated} of {want} updated, {available} available")
            };
            (
                done,
                msg,
                json!({"desiredNumberScheduled": want, "updatedNumberScheduled": updated, "numberAvailable": available}),
            )
        }
        _ => return None,
    };
    let mut out = counts;
    out["done"] = done.into();
    out["message"] = message.into();
    out["generation"] = generation.into();
    out["observedGeneration"] = observed.into();
    Some(out)
}
