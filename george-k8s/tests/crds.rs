//! George's CRDs against the real API server: they install and become Established; every
//! manifest of the example repositories is accepted as a CR and reads back unchanged
//! (nothing pruned: the schema covers the whole manifest); invalid CRs are refused by the
//! schema, naming the field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use george_k8s::crd::{self, AgentSpec, AgentSpecSpec, Job, JobSpec, TaskTemplate, TemplateSpec};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

async fn installed(test: &str) -> Option<(george_k8s::testenv::TestNamespace, kube::Client)> {
    let env = george_k8s::testenv::shared(test).await?;
    let client = env.client();
    crd::install(client.clone(), Duration::from_secs(30))
        .await
        .unwrap();
    Some((env.namespace(test).await.unwrap(), client))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(yaml_files(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_crds_install_and_become_established() {
    let Some((_, client)) = installed("the_crds_install_and_become_established").await else {
        return;
    };
    let api: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client);
    for name in [
        "agentspecs.george.dev",
        "tasktemplates.george.dev",
        "jobs.george.dev",
    ] {
        let crd = api.get(name).await.unwrap();
        assert!(crd::established(&crd), "{name} not Established");
        let accepted = crd.status.unwrap().conditions.unwrap();
        assert!(
            accepted
                .iter()
                .any(|c| c.type_ == "NamesAccepted" && c.status == "True")
        );
    }
}

#[tokio::test]
async fn every_example_manifest_is_accepted_as_a_cr_and_reads_back_unchanged() {
    let Some((ns, _)) =
        installed("every_example_manifest_is_accepted_as_a_cr_and_reads_back_unchanged").await
    else {
        return;
    };
    let pp = PatchParams::apply("george-test").validation_strict();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut kinds = std::collections::BTreeSet::new();
    for repo in [
        "ops-repo",
        "ops-repo-k8s",
        "feature-delivery",
        "feature-delivery-k8s",
    ] {
        for path in yaml_files(&root.join(repo)) {
            let text = std::fs::read_to_string(&path).unwrap();
            let kind: Value = serde_saphyr::from_str(&text).unwrap();
            let kind = kind["kind"].as_str().unwrap().to_string();
            let at = path.display();
            // The Git manifest, parsed by George's own types; the CR carries its spec.
            match kind.as_str() {
                "AgentSpec" => {
                    let m: george_core::model::AgentSpec = serde_saphyr::from_str(&text).unwrap();
                    let name = format!("{repo}-{}", m.metadata.name);
                    let cr = AgentSpec::new(&name, AgentSpecSpec(m.spec.clone()));
                    let back = ns
                        .api::<AgentSpec>()
                        .patch(&name, &pp, &Patch::Apply(&cr))
                        .await;
                    assert_eq!(
                        back.unwrap_or_else(|e| panic!("{at}: {e}")).spec.0,
                        m.spec,
                        "{at}"
                    );
                }
                "TaskTemplate" => {
                    let m: george_core::model::TaskTemplate =
                        serde_saphyr::from_str(&text).unwrap();
                    let name = format!("{repo}-{}", m.metadata.name);
                    let cr = TaskTemplate::new(&name, TemplateSpec(m.spec.clone()));
                    let back = ns
                        .api::<TaskTemplate>()
                        .patch(&name, &pp, &Patch::Apply(&cr))
                        .await;
                    assert_eq!(
                        back.unwrap_or_else(|e| panic!("{at}: {e}")).spec.0,
                        m.spec,
                        "{at}"
                    );
                }
                "Job" => {
                    let m: george_core::model::Job = serde_saphyr::from_str(&text).unwrap();
                    let name = format!("{repo}-{}", m.metadata.name);
                    let cr = Job::new(&name, JobSpec(m.spec.clone()));
                    let back = ns.api::<Job>().patch(&name, &pp, &Patch::Apply(&cr)).await;
                    assert_eq!(
                        back.unwrap_or_else(|e| panic!("{at}: {e}")).spec.0,
                        m.spec,
                        "{at}"
                    );
                }
                other => panic!("{at}: unexpected kind {other}"),
            }
            kinds.insert(kind);
        }
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

fn dynamic(
    ns: &george_k8s::testenv::TestNamespace,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(crd::GROUP, crd::VERSION, kind);
    Api::namespaced_with(
        ns.client(),
        ns.name(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// Creates `obj` and returns the API server's refusal message. (A create, not an apply:
/// server-side apply answers a wrongly typed field with a 500 from its typed patch.)
async fn refused(api: &Api<DynamicObject>, obj: Value) -> String {
    let obj: DynamicObject = serde_json::from_value(obj).unwrap();
    let name = obj.metadata.name.clone().unwrap();
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => panic!("{name} was accepted"),
        Err(kube::Error::Api(s)) => {
            assert!(matches!(s.code, 400 | 422), "{s:?}");
            s.message
        }
        Err(e) => panic!("{name}: {e}"),
    }
}

#[tokio::test]
async fn invalid_crs_are_refused_by_the_schema_naming_the_field() {
    let Some((ns, _)) = installed("invalid_crs_are_refused_by_the_schema_naming_the_field").await
    else {
        return;
    };
    let jobs = dynamic(&ns, "Job", "jobs");
    let agents = dynamic(&ns, "AgentSpec", "agentspecs");
    let templates = dynamic(&ns, "TaskTemplate", "tasktemplates");
    let v = |kind: &str, name: &str, spec: Value| json!({"apiVersion": "george.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec});

    let m = refused(&jobs, v("Job", "no-template", json!({"params": {"n": 1}}))).await;
    assert!(m.contains("spec.template") && m.contains("Required"), "{m}");
    let m = refused(
        &jobs,
        v(
            "Job",
            "typed",
            json!({"template": "t", "max_parallel_steps": "many"}),
        ),
    )
    .await;
    assert!(m.contains("spec.max_parallel_steps"), "{m}");
    // An unknown field is pruned, or refused under strict field validation.
    let unknown: DynamicObject = serde_json::from_value(v(
        "Job",
        "unknown",
        json!({"template": "t", "templte": "x"}),
    ))
    .unwrap();
    let strict = PatchParams::apply("george-test").validation_strict();
    let e = jobs
        .patch("unknown", &strict, &Patch::Apply(&unknown))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("templte"), "{e}");
    let m = refused(
        &agents,
        v(
            "AgentSpec",
            "yolo",
            json!({"model": "m", "system_prompt": "s", "autonomy": "yolo"}),
        ),
    )
    .await;
    assert!(
        m.contains("spec.autonomy") && m.contains("supervised"),
        "{m}"
    );
    let m = refused(
        &agents,
        v("AgentSpec", "no-model", json!({"system_prompt": "s"})),
    )
    .await;
    assert!(m.contains("spec.model"), "{m}");
    let m = refused(
        &templates,
        v(
            "TaskTemplate",
            "bad-param",
            json!({"steps": [], "parameters": [{"name": "p", "type": "colour"}]}),
        ),
    )
    .await;
    assert!(m.contains("spec.parameters[0].type"), "{m}");
    let m = refused(
        &templates,
        v(
            "TaskTemplate",
            "bad-retry",
            json!({"steps": [{"id": "a", "retry": {"attempts": -1}}]}),
        ),
    )
    .await;
    assert!(m.contains("spec.steps[0].retry.attempts"), "{m}");

    // A valid one next to them is accepted; its status is bounded by the schema.
    let ok: DynamicObject =
        serde_json::from_value(v("Job", "ok", json!({"template": "t"}))).unwrap();
    jobs.create(&PostParams::default(), &ok).await.unwrap();
    let steps: Vec<Value> = (0..=crd::MAX_STEPS)
        .map(|i| json!({"id": format!("s{i}"), "state": "Pending", "attempt": 0}))
        .collect();
    let too_many =
        json!({"apiVersion": "george.dev/v1alpha1", "kind": "Job", "status": {"steps": steps}});
    let e = jobs
        .patch_status(
            "ok",
            &PatchParams::apply("george-test"),
            &Patch::Apply(&too_many),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("status.steps"), "{e}");
}
