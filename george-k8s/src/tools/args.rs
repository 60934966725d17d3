//! The tools' arguments: one type per tool, parsed with serde and described to the model
//! by its schemars JSON Schema.

use george_core::tool::ToolDefinition;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One object: `{kind, name, namespace?, api_version?}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Target {
    /// The kind (`Deployment`, `ConfigMap`, `Pod`, a custom resource's kind), or its
    /// plural resource name (`deployments`).
    pub(crate) kind: String,
    /// The object's name.
    pub(crate) name: String,
    /// The namespace (default: the executor's namespace).
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// `group/version` or `v1`, when the kind is ambiguous (default: the preferred version).
    #[serde(default)]
    pub(crate) api_version: Option<String>,
}

/// `k8s_list`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArgs {
    /// The kind (or plural resource name).
    pub(crate) kind: String,
    /// The namespace (default: the executor's namespace).
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// `group/version` or `v1`, when the kind is ambiguous.
    #[serde(default)]
    pub(crate) api_version: Option<String>,
    /// A label selector, e.g. `app=podinfo,tier!=cache`.
    #[serde(default)]
    pub(crate) label_selector: Option<String>,
    /// A field selector, e.g. `status.phase=Running`.
    #[serde(default)]
    pub(crate) field_selector: Option<String>,
    /// At most this many objects (default 50, at most 500).
    #[serde(default)]
    pub(crate) limit: Option<u32>,
    /// List in every namespace this executor may read (instead of `namespace`).
    #[serde(default)]
    pub(crate) all_namespaces: bool,
}

/// `k8s_events`' arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsArgs {
    /// The namespace (default: the executor's namespace).
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// Only events about objects of this kind.
    #[serde(default)]
    pub(crate) kind: Option<String>,
    /// Only events about the object of this name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// At most this many events, the newest (default 50, at most 500).
    #[serde(default)]
    pub(crate) limit: Option<u32>,
}

/// `k8s_logs`' arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogsArgs {
    /// The pod's name.
    pub(crate) name: String,
    /// The namespace (default: the executor's namespace).
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// The container (required when the pod has several).
    #[serde(default)]
    pub(crate) container: Option<String>,
    /// Only the last lines (default 200, at most 5000).
    #[serde(default)]
    pub(crate) tail_lines: Option<u32>,
    /// Only lines newer than this many seconds.
    #[serde(default)]
    pub(crate) since_seconds: Option<u32>,
    /// The previous (crashed) instance of the container.
    #[serde(default)]
    pub(crate) previous: bool,
}

/// `k8s_rollout_status`' arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutArgs {
    /// `Deployment` (default), `StatefulSet` or `DaemonSet`.
    #[serde(default)]
    pub(crate) kind: Option<String>,
    /// The workload's name.
    pub(crate) name: String,
    /// The namespace (default: the executor's namespace).
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// `group/version`, when the kind is ambiguous.
    #[serde(default)]
    pub(crate) api_version: Option<String>,
}

/// `k8s_get_schema`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SchemaArgs {
    /// The kind (or plural resource name), built-in or custom.
    pub(crate) kind: String,
    /// `group/version` or `v1`, when the kind is ambiguous.
    #[serde(default)]
    pub(crate) api_version: Option<String>,
    /// A dotted field path to explain, e.g. `spec.template.spec.containers` (default:
    /// the whole kind, one level deep).
    #[serde(default)]
    pub(crate) field: Option<String>,
}

/// `k8s_apply`'s and `k8s_apply_dry_run`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApplyArgs {
    /// One manifest: an object with `apiVersion`, `kind`, `metadata.name` (and
    /// `metadata.namespace`, default the executor's), or the same as a YAML string.
    pub(crate) manifest: Value,
    /// Take over fields another field manager owns (server-side apply's `force`).
    #[serde(default)]
    pub(crate) force: bool,
}

/// How `k8s_patch` merges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PatchType {
    /// JSON merge patch (RFC 7386): objects merge, lists are replaced, `null` deletes.
    #[default]
    Merge,
    /// Kubernetes' strategic merge patch (built-in kinds only): lists of containers,
    /// ports, … merge by their key.
    Strategic,
}

/// `k8s_patch`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchArgs {
    /// The kind (or plural resource name).
    pub(crate) kind: String,
    /// The object's name.
    pub(crate) name: String,
    /// The namespace (default: the executor's namespace).
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// `group/version` or `v1`, when the kind is ambiguous.
    #[serde(default)]
    pub(crate) api_version: Option<String>,
    /// The patch: a JSON object.
    pub(crate) patch: serde_json::Map<String, Value>,
    /// `merge` (default) or `strategic`.
    #[serde(default)]
    pub(crate) patch_type: PatchType,
}

/// `k8s_scale`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScaleArgs {
    /// `Deployment` (default), `StatefulSet`, `ReplicaSet`, or any kind with a scale
    /// subresource.
    #[serde(default)]
    pub(crate) kind: Option<String>,
    /// The workload's name.
    pub(crate) name: String,
    /// The namespace (default: the executor's namespace).
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// `group/version`, when the kind is ambiguous.
    #[serde(default)]
    pub(crate) api_version: Option<String>,
    /// The desired replicas.
    pub(crate) replicas: u32,
}

/// Parses `args` as `T`; `Err` is the message for the model.
pub(crate) fn parse<T: DeserializeOwned>(tool: &str, args: &Value) -> Result<T, String> {
    serde_json::from_value(args.clone()).map_err(|e| format!("{tool}: invalid arguments: {e}"))
}

/// The JSON Schema of `T`, as the tool's input schema.
pub(crate) fn schema<T: JsonSchema>() -> Value {
    let mut v = schemars::schema_for!(T).to_value();
    if let Some(o) = v.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
    }
    v
}

/// The twelve tools, their descriptions for the model, schemas and effect classes.
pub(crate) fn definitions() -> Vec<ToolDefinition> {
    use super::*;
    use EffectClass::{DryRun, Read, Write};
    let def = |name: &str, text: &str, schema: serde_json::Value, effect| {
        ToolDefinition::new(name, text, schema).with_effect(effect)
    };
    vec![
        def(
            K8S_GET,
            "Get one Kubernetes object (any kind, custom resources too) as YAML.",
            schema::<Target>(),
            Read,
        ),
        def(
            K8S_LIST,
            "List Kubernetes objects of a kind in a namespace, optionally filtered by label and field selectors.",
            schema::<ListArgs>(),
            Read,
        ),
        def(
            K8S_DESCRIBE,
            "Describe one Kubernetes object: the object and the events about it (like kubectl describe).",
            schema::<Target>(),
            Read,
        ),
        def(
            K8S_EVENTS,
            "A namespace's events, oldest first, optionally only those about one kind or object.",
            schema::<EventsArgs>(),
            Read,
        ),
        def(
            K8S_LOGS,
            "A pod container's logs (tail, since, previous instance).",
            schema::<LogsArgs>(),
            Read,
        ),
        def(
            K8S_ROLLOUT_STATUS,
            "Whether a Deployment, StatefulSet or DaemonSet has rolled out: replica counts and data.done.",
            schema::<RolloutArgs>(),
            Read,
        ),
        def(
            K8S_GET_SCHEMA,
            "The OpenAPI v3 schema of a kind (built-in or CRD), or of one field path like spec.template.spec.containers (like kubectl explain).",
            schema::<SchemaArgs>(),
            Read,
        ),
        def(
            K8S_APPLY_DRY_RUN,
            "Validate a manifest with a server-side apply dry run (dryRun=All): changes nothing, returns the diff against the live object.",
            schema::<ApplyArgs>(),
            DryRun,
        ),
        def(
            K8S_APPLY,
            "Server-side apply one manifest (creates or updates the object).",
            schema::<ApplyArgs>(),
            Write,
        ),
        def(
            K8S_PATCH,
            "Patch one object with a JSON merge patch (default) or a strategic merge patch.",
            schema::<PatchArgs>(),
            Write,
        ),
        def(
            K8S_SCALE,
            "Set the replicas of a Deployment, StatefulSet or other scalable workload.",
            schema::<ScaleArgs>(),
            Write,
        ),
        def(
            K8S_DELETE,
            "Delete one object (succeeds when it is already gone).",
            schema::<Target>(),
            Write,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_parse_and_unknown_fields_are_refused() {
        let t: Target = parse("k8s_get", &json!({"kind": "Deployment", "name": "x"})).unwrap();
        assert_eq!((t.kind.as_str(), t.name.as_str()), ("Deployment", "x"));
        assert!(parse::<Target>("k8s_get", &json!({"kind": "Pod"})).is_err());
        assert!(parse::<Target>("k8s_get", &json!({"kind": "Pod", "name": "x", "x": 1})).is_err());
        let p: PatchArgs = parse(
            "k8s_patch",
            &json!({"kind": "ConfigMap", "name": "c", "patch": {"data": {"a": "1"}}, "patch_type": "strategic"}),
        )
        .unwrap();
        assert_eq!(p.patch_type, PatchType::Strategic);
        let s = schema::<ScaleArgs>();
        assert_eq!(s["type"], "object");
        assert!(
            s["required"]
                .as_array()
                .unwrap()
                .contains(&json!("replicas"))
        );
    }
}
