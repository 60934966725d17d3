//! George's three kinds as custom resources: `AgentSpec`, `TaskTemplate` and `Job` in
//! group `george.dev`, version `v1alpha1`, namespaced.
//!
//! One definition, two carriers: each CR's `spec` *is* the `spec` type of the Git manifest
//! ([`george_core::model::AgentConfig`], [`TemplateSpec`], [`JobSpec`]), and the CRD's
//! schema is generated from the same schemars types, rewritten into a structural schema
//! (see [`schema`](self) rules in `structural_schema_for`). A manifest in Git and the
//! same document applied to a cluster are one and the same object.
//!
//! ```
//! use george_k8s::crd::{self, Job, JobSpec};
//! use kube::CustomResourceExt as _;
//!
//! let crd = Job::crd();
//! assert_eq!(crd.metadata.name.as_deref(), Some("jobs.george.dev"));
//! let spec: george_core::model::JobSpec =
//!     serde_json::from_value(serde_json::json!({"template": "scale", "params": {"replicas": 2}})).unwrap();
//! let job = Job::new("scale-podinfo", JobSpec(spec));
//! assert_eq!(job.spec.0.template, "scale");
//! assert!(crd::all_yaml().contains("name: jobs.george.dev"));
//! ```

// Each `printcolumn(...)` repeats `type_ = ...`, which clippy takes for a duplicate.
#![allow(clippy::duplicated_attributes)]

mod install;
mod schema;
mod status;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use install::{CRD_FIELD_MANAGER, established, install};
pub use status::{
    Condition, ConditionStatus, DefinitionStatus, JobStatus, MAX_APPROVALS, MAX_MESSAGE, MAX_STEPS,
    Phase, StepSummary,
};

/// The API group.
pub const GROUP: &str = "george.dev";
/// The version.
pub const VERSION: &str = "v1alpha1";

/// The `spec` of an [`AgentSpec`] CR: George's [`george_core::model::AgentConfig`].
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
#[kube(
    group = "george.dev",
    version = "v1alpha1",
    kind = "AgentSpec",
    plural = "agentspecs",
    namespaced,
    status = "DefinitionStatus",
    schema = "manual",
    category = "george",
    doc = "An agent: its provider and model, its static system prompt, the tools it may call, and its limits (George's AgentSpec).",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct AgentSpecSpec(pub george_core::model::AgentConfig);

/// The `spec` of a [`TaskTemplate`] CR: George's [`george_core::model::TemplateSpec`].
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
#[kube(
    group = "george.dev",
    version = "v1alpha1",
    kind = "TaskTemplate",
    plural = "tasktemplates",
    namespaced,
    status = "DefinitionStatus",
    schema = "manual",
    category = "george",
    doc = "Parameters and steps a Job instantiates (George's TaskTemplate).",
    printcolumn(
        name = "Description",
        type_ = "string",
        json_path = ".spec.description",
        priority = "1"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct TemplateSpec(pub george_core::model::TemplateSpec);

/// The `spec` of a [`Job`] CR: George's [`george_core::model::JobSpec`].
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
#[kube(
    group = "george.dev",
    version = "v1alpha1",
    kind = "Job",
    plural = "jobs",
    namespaced,
    status = "JobStatus",
    schema = "manual",
    category = "george",
    doc = "A template plus parameter values: the work George reconciles (George's Job).",
    printcolumn(
        name = "Template",
        type_ = "string",
        json_path = ".spec.template",
        priority = "1"
    ),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Step", type_ = "string", json_path = ".status.currentStep"),
    printcolumn(
        name = "Approval",
        type_ = "string",
        json_path = ".status.waitingApproval"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct JobSpec(pub george_core::model::JobSpec);

/// The structural `openAPIV3Schema` of a CR whose spec is `S` and status `T`.
fn resource_schema<S: JsonSchema, T: JsonSchema>(description: &str) -> Value {
    let mut status = schema::structural_schema_for::<T>();
    if let Some(props) = status.get_mut("properties").and_then(Value::as_object_mut) {
        // Merged entry by entry by server-side apply.
        for (list, key) in [("conditions", "type"), ("steps", "id")] {
            if let Some(p) = props.get_mut(list).and_then(Value::as_object_mut) {
                p.insert("x-kubernetes-list-type".into(), json!("map"));
                p.insert("x-kubernetes-list-map-keys".into(), json!([key]));
            }
        }
    }
    json!({
        "description": description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": schema::structural_schema_for::<S>(),
            "status": status,
        }
    })
}

macro_rules! manual_schema {
    ($root:ty, $spec:ty, $status:ty, $name:literal, $doc:literal) => {
        impl JsonSchema for $root {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::Schema::try_from(resource_schema::<$spec, $status>($doc))
                    .expect("an object schema")
            }
        }
    };
}

manual_schema!(
    AgentSpec,
    george_core::model::AgentConfig,
    DefinitionStatus,
    "AgentSpec",
    "An agent: its provider and model, its static system prompt, the tools it may call, and its limits (George's AgentSpec)."
);
manual_schema!(
    TaskTemplate,
    george_core::model::TemplateSpec,
    DefinitionStatus,
    "TaskTemplate",
    "Parameters and steps a Job instantiates (George's TaskTemplate)."
);
manual_schema!(
    Job,
    george_core::model::JobSpec,
    JobStatus,
    "Job",
    "A template plus parameter values: the work George reconciles (George's Job)."
);

/// The three CRDs: `agentspecs`, `tasktemplates`, `jobs` (`.george.dev`).
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![AgentSpec::crd(), TaskTemplate::crd(), Job::crd()]
}

/// One CRD as the YAML committed under `deploy/crds/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let body = serde_saphyr::to_string(crd).expect("a CRD serializes");
    format!(
        "# Generated from george-k8s (george_k8s::crd); do not edit. Regenerate with\n\
         #   GEORGE_K8S_BLESS=1 cargo test -p george-k8s --test crd_files\n{body}"
    )
}

/// Every CRD, as one multi-document YAML stream (what `--example crds` prints).
pub fn all_yaml() -> String {
    all().iter().map(to_yaml).collect::<Vec<_>>().join("---\n")
}

/// The file name of `crd` under `deploy/crds/` (`jobs.george.dev.yaml`).
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("crd"))
}
