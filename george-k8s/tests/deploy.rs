//! The example manifests under `deploy/george/` against the real API server: every object
//! passes a server-side dry run with strict field validation, and the engine's RBAC is
//! enough for the StatusProjector (acting as the `george` service account) and no more.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use george_core::command::CommandToolExecutor;
use george_core::engine::Engine;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_k8s::crd::{self, Job, JobSpec, Phase};
use george_k8s::status::StatusProjector;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// Every document of `deploy/george/*.yaml`, with the namespaces `george` and `apps`
/// renamed to the test's own.
fn manifests(engine_ns: &str, apps_ns: &str) -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/george");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let rename = |ns: &str| match ns {
        "george" => engine_ns.to_string(),
        "apps" => apps_ns.to_string(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in text.split("\n---\n") {
            let mut v: Value = serde_saphyr::from_str(doc).unwrap();
            if let Some(ns) = v["metadata"]["namespace"].as_str() {
                v["metadata"]["namespace"] = rename(ns).into();
            }
            if let Some(subjects) = v.get_mut("subjects").and_then(Value::as_array_mut) {
                for s in subjects {
                    let ns = rename(s["namespace"].as_str().unwrap_or_default());
                    s["namespace"] = ns.into();
                }
            }
            if v["kind"] == "Namespace" {
                v["metadata"]["name"] = format!("{engine_ns}-x").into();
            }
            out.push((f.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out
}

async fn api_for(client: &kube::Client, v: &Value) -> Api<DynamicObject> {
    let (group, version) = match v["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, ver)) => (g.to_string(), ver.to_string()),
        None => (String::new(), v["apiVersion"].as_str().unwrap().to_string()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, v["kind"].as_str().unwrap());
    let (ar, caps) = discovery::pinned_kind(client, &gvk).await.unwrap();
    match (caps.scope, v["metadata"]["namespace"].as_str()) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    }
}

#[tokio::test]
async fn every_deploy_manifest_passes_a_server_side_dry_run() {
    let env = george_k8s::testenv_or_skip!("every_deploy_manifest_passes_a_server_side_dry_run");
    let george = env.namespace("deploy-dry-run").await.unwrap();
    let apps = env.namespace("deploy-dry-run-apps").await.unwrap();
    let client = env.client();
    let pp = PatchParams::apply("george-test")
        .dry_run()
        .validation_strict();
    let docs = manifests(george.name(), apps.name());
    let kinds: std::collections::BTreeSet<_> = docs
        .iter()
        .map(|(_, v)| v["kind"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "ConfigMap",
        "ClusterRole",
        "Deployment",
        "Namespace",
        "PersistentVolumeClaim",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ] {
        assert!(kinds.contains(k), "no {k} in deploy/george: {kinds:?}");
    }
    for (file, v) in &docs {
        let name = v["metadata"]["name"].as_str().unwrap();
        let obj: DynamicObject = serde_json::from_value(v.clone()).unwrap();
        let api = api_for(&client, v).await;
        api.patch(name, &pp, &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("{file}: {} {name}: {e}", v["kind"]));
    }
    // The pod the Deployment makes meets the `restricted` Pod Security Standard, which
    // namespace.yaml enforces: a dry run of it in a namespace enforcing it is admitted.
    let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let label = serde_json::json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}});
    ns_api
        .patch(
            george.name(),
            &PatchParams::default(),
            &Patch::Merge(&label),
        )
        .await
        .unwrap();
    let (_, deployment) = docs
        .iter()
        .find(|(_, v)| v["kind"] == "Deployment")
        .unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "george-pod", "namespace": george.name()},
        "spec": deployment["spec"]["template"]["spec"],
    });
    let pods: Api<k8s_openapi::api::core::v1::Pod> = george.api();
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
    pods.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &pod,
    )
    .await
    .unwrap_or_else(|e| panic!("the george pod under the restricted standard: {e}"));
    let mut root = pod.clone();
    root.spec.as_mut().unwrap().security_context = None;
    let e = pods
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &root,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("restricted"), "{e}");
    // A dry run changes nothing.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = george.api();
    assert!(deployments.get_opt("george").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_role_is_enough_for_the_status_projector_and_no_more() {
    let env = george_k8s::testenv_or_skip!(
        "the_engine_role_is_enough_for_the_status_projector_and_no_more"
    );
    crd::install(env.client(), LIMIT).await.unwrap();
    let ns = env.namespace("deploy-rbac").await.unwrap();
    let admin = env.client();
    // The service account, Role and RoleBinding, for real.
    for (file, v) in manifests(ns.name(), ns.name()) {
        if !(file == "serviceaccount.yaml" || file == "rbac.yaml") {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(v.clone()).unwrap();
        let name = obj.metadata.name.clone().unwrap();
        api_for(&admin, &v)
            .await
            .patch(
                &name,
                &PatchParams::apply("george-test"),
                &Patch::Apply(&obj),
            )
            .await
            .unwrap();
    }
    let mut cfg = env.config().unwrap();
    cfg.auth_info.impersonate = Some(format!("system:serviceaccount:{}:george", ns.name()));
    cfg.default_namespace = ns.name().to_string();
    let as_george = kube::Client::try_from(cfg).unwrap();

    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("task-templates/t.yaml", "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: s, command: {program: 'true'}}\n".to_string()),
            ("jobs/j.yaml", "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n".to_string()),
        ],
        "c1",
    );
    let spec: george_core::model::JobSpec =
        serde_json::from_value(serde_json::json!({"template": "t"})).unwrap();
    ns.api::<Job>()
        .create(&PostParams::default(), &Job::new("j", JobSpec(spec)))
        .await
        .unwrap();
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .commands(CommandToolExecutor::new(["true"]))
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    engine.start().await.unwrap();
    let run = engine.spawn();
    let projector = StatusProjector::new(engine.clone(), as_george.clone(), ns.name())
        .with_resync(Duration::from_millis(200))
        .spawn();
    let jobs: Api<Job> = ns.api();
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let cr = jobs.get("j").await.unwrap();
        if cr.status.and_then(|s| s.phase) == Some(Phase::Succeeded) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the projector, as the service account, wrote no Succeeded status"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    projector.shutdown().await;
    run.shutdown().await;
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let ours: Vec<_> = events
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.reporting_controller.as_deref() == Some(george_k8s::status::REPORTING_CONTROLLER)
        })
        .collect();
    assert!(!ours.is_empty(), "the service account emitted no Event");

    // And no more: no Secrets, no deleting Jobs, no spec writes, nothing elsewhere.
    let forbidden = |r: Result<(), kube::Error>| match r {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("expected 403, got {other:?}"),
    };
    let secrets: Api<Secret> = Api::namespaced(as_george.clone(), ns.name());
    forbidden(secrets.list(&Default::default()).await.map(|_| ()));
    let their_jobs: Api<Job> = Api::namespaced(as_george.clone(), ns.name());
    forbidden(
        their_jobs
            .delete("j", &DeleteParams::default())
            .await
            .map(|_| ()),
    );
    let spec_patch = serde_json::json!({"spec": {"params": {"x": 1}}});
    forbidden(
        their_jobs
            .patch("j", &PatchParams::default(), &Patch::Merge(&spec_patch))
            .await
            .map(|_| ()),
    );
    let elsewhere: Api<Job> = Api::namespaced(as_george, "default");
    forbidden(elsewhere.list(&Default::default()).await.map(|_| ()));
}
