//! A custom resource rendered as the manifest George reads from Git: the same
//! `apiVersion`, `kind`, `metadata.name` and `spec`, at a path of its own
//! (`jobs/<namespace>/<name>.yaml`), with the CR's `metadata.generation` in the
//! annotation [`SOURCE_GENERATION_ANNOTATION`]. The spec is taken as the API server
//! stores it, unparsed: George's own manifest parser validates it, so an invalid CR gets
//! the same error (file, line, field) a file in Git would.

use george_core::model::{API_VERSION, SOURCE_GENERATION_ANNOTATION};
use kube::CustomResourceExt as _;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde_json::{Value, json};

use crate::crd;

/// One of George's three kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// `AgentSpec` (`agent-specs/`).
    AgentSpec,
    /// `TaskTemplate` (`task-templates/`).
    TaskTemplate,
    /// `Job` (`jobs/`).
    Job,
}

impl SourceKind {
    /// All three, agents first.
    pub const ALL: [SourceKind; 3] = [
        SourceKind::AgentSpec,
        SourceKind::TaskTemplate,
        SourceKind::Job,
    ];

    /// The kind's name (`Job`).
    pub fn kind(self) -> &'static str {
        match self {
            SourceKind::AgentSpec => "AgentSpec",
            SourceKind::TaskTemplate => "TaskTemplate",
            SourceKind::Job => "Job",
        }
    }

    /// The folder its manifests are under, with the trailing `/` (`jobs/`).
    pub fn dir(self) -> &'static str {
        match self {
            SourceKind::AgentSpec => "agent-specs/",
            SourceKind::TaskTemplate => "task-templates/",
            SourceKind::Job => "jobs/",
        }
    }

    /// The kind's API resource (group `george.dev`, `v1alpha1`).
    pub fn api_resource(self) -> ApiResource {
        let crd = match self {
            SourceKind::AgentSpec => crd::AgentSpec::crd(),
            SourceKind::TaskTemplate => crd::TaskTemplate::crd(),
            SourceKind::Job => crd::Job::crd(),
        };
        let plural = crd.spec.names.plural;
        ApiResource {
            group: crd::GROUP.to_string(),
            version: crd::VERSION.to_string(),
            api_version: API_VERSION.to_string(),
            kind: self.kind().to_string(),
            plural,
        }
    }

    /// The kind whose folder `path` is in.
    pub fn of_path(path: &str) -> Option<SourceKind> {
        SourceKind::ALL
            .into_iter()
            .find(|k| path.starts_with(k.dir()))
    }
}

/// Where the CR `namespace`/`name` of `kind` is rendered: `<dir><namespace>/<name>.yaml`.
pub fn path(kind: SourceKind, namespace: &str, name: &str) -> String {
    format!("{}{namespace}/{name}.yaml", kind.dir())
}

/// The `(kind, namespace, name)` a rendered path stands for.
pub fn parse_path(path: &str) -> Option<(SourceKind, &str, &str)> {
    let kind = SourceKind::of_path(path)?;
    let rest = path.strip_prefix(kind.dir())?.strip_suffix(".yaml")?;
    let (ns, name) = rest.split_once('/')?;
    Some((kind, ns, name))
}

/// The manifest `obj` renders to, as `(path, YAML)`; `None` for an object without a name.
pub fn render(kind: SourceKind, obj: &DynamicObject) -> Option<(String, Vec<u8>)> {
    let name = obj.metadata.name.as_deref()?;
    let namespace = obj.metadata.namespace.as_deref().unwrap_or("default");
    let mut metadata = json!({ "name": name });
    if let Some(g) = obj.metadata.generation {
        metadata["annotations"] = json!({ SOURCE_GENERATION_ANNOTATION: g.to_string() });
    }
    let doc = json!({
        "apiVersion": API_VERSION,
        "kind": kind.kind(),
        "metadata": metadata,
        "spec": obj.data.get("spec").cloned().unwrap_or(Value::Null),
    });
    // A JSON value always serializes as YAML.
    let yaml = serde_saphyr::to_string(&doc).unwrap_or_else(|_| doc.to_string());
    Some((path(kind, namespace, name), yaml.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: SourceKind, name: &str, generation: Option<i64>, spec: Value) -> DynamicObject {
        let mut o = DynamicObject::new(name, &kind.api_resource()).within("team-a");
        o.metadata.generation = generation;
        o.data = json!({ "spec": spec });
        o
    }

    #[test]
    fn a_job_cr_renders_as_the_manifest_git_would_hold() {
        let o = obj(
            SourceKind::Job,
            "scale",
            Some(3),
            json!({"template": "t", "params": {"n": 2}}),
        );
        let (path, bytes) = render(SourceKind::Job, &o).expect("rendered");
        assert_eq!(path, "jobs/team-a/scale.yaml");
        assert!(george_core::git::is_manifest_path(&path));
        let text = String::from_utf8(bytes).expect("UTF-8");
        let job: george_core::model::Job = serde_saphyr::from_str(&text).expect("a Job manifest");
        assert_eq!(job.metadata.name, "scale");
        assert_eq!(job.metadata.source_generation(), Some(3));
        assert_eq!(job.spec.template, "t");
    }

    #[test]
    fn paths_round_trip() {
        for kind in SourceKind::ALL {
            let p = path(kind, "ns", "x-1");
            assert!(george_core::git::is_manifest_path(&p), "{p}");
            assert_eq!(parse_path(&p), Some((kind, "ns", "x-1")));
        }
        assert_eq!(parse_path("jobs/x.yaml"), None);
        assert_eq!(parse_path("other/ns/x.yaml"), None);
    }

    #[test]
    fn api_resources_name_the_crds() {
        assert_eq!(SourceKind::Job.api_resource().plural, "jobs");
        assert_eq!(SourceKind::AgentSpec.api_resource().plural, "agentspecs");
        assert_eq!(
            SourceKind::TaskTemplate.api_resource().plural,
            "tasktemplates"
        );
    }
}
