//! The cluster as the source of desired state, against the real API server: AgentSpecs,
//! TaskTemplates and Jobs created as CRs drive an engine through `CrSource`; editing one
//! Job reconciles that one job, at the CR's generation; an invalid CR gets `Ready=False`
//! naming the field and never stops the others; deleting a Job cancels it (or keeps it, by
//! its policy); and a restarted engine over a new source loses nothing.

use std::sync::Arc;
use std::time::Duration;

use george_core::command::CommandToolExecutor;
use george_core::engine::Engine;
use george_core::memory::InMemoryStateStore;
use george_core::scripted::{ScriptedProvider, tool_call};
use george_core::state::JobStatus;
use george_k8s::crd;
use george_k8s::source::{CrSource, CrSourceConfig, SourceKind};
use george_k8s::status::StatusProjector;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(30);

fn api(ns: &george_k8s::testenv::TestNamespace, kind: SourceKind) -> Api<DynamicObject> {
    Api::namespaced_with(ns.client(), ns.name(), &kind.api_resource())
}

async fn create(
    ns: &george_k8s::testenv::TestNamespace,
    kind: SourceKind,
    name: &str,
    spec: Value,
) {
    let mut obj = DynamicObject::new(name, &kind.api_resource()).within(ns.name());
    obj.data = json!({ "spec": spec });
    api(ns, kind)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

async fn patch_spec(ns: &george_k8s::testenv::TestNamespace, name: &str, spec: Value) -> i64 {
    let obj = api(ns, SourceKind::Job)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .unwrap();
    obj.metadata.generation.expect("a generation")
}

fn engine(
    store: &Arc<InMemoryStateStore>,
    source: &CrSource,
    provider: &ScriptedProvider,
) -> Engine {
    Engine::builder(store.clone(), Arc::new(source.clone()))
        .provider("default", Arc::new(provider.clone()))
        .commands(CommandToolExecutor::new(["true"]))
        // Long: the follower, not the poll, must be what reconciles a change.
        .poll_interval(Duration::from_secs(3600))
        .build()
        .expect("engine")
}

async fn wait_job(
    e: &Engine,
    name: &str,
    what: &str,
    pred: impl Fn(&george_core::state::JobRecord) -> bool,
) -> george_core::state::JobRecord {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        if let Some(r) = e.job(name).await.unwrap()
            && pred(&r)
        {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: {what} within {LIMIT:?}; record {:?}",
            e.job(name).await.unwrap().map(|r| (r.status, r.generation))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(status, message)` of the CR's `Ready` condition, once `pred` holds on it.
async fn wait_ready(
    ns: &george_k8s::testenv::TestNamespace,
    kind: SourceKind,
    name: &str,
    pred: impl Fn(&str, &str) -> bool,
) -> (String, String) {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let obj = api(ns, kind).get(name).await.unwrap();
        let ready = obj.data["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("status"), s("message"))
            });
        if let Some((status, message)) = &ready
            && pred(status, message)
        {
            return (status.clone(), message.clone());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: Ready condition within {LIMIT:?}; status {}",
            obj.data["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_drive_the_engine() {
    let env = george_k8s::testenv_or_skip!("custom_resources_drive_the_engine");
    crd::install(env.client(), LIMIT).await.unwrap();
    let ns = env.namespace("cr-source").await.unwrap();

    create(
        &ns,
        SourceKind::AgentSpec,
        "planner",
        json!({"model": "m", "system_prompt": "You plan."}),
    )
    .await;
    create(
        &ns,
        SourceKind::TaskTemplate,
        "quick",
        json!({
            "parameters": [{"name": "n", "type": "integer", "default": 1}],
            "steps": [{"id": "run", "command": {"program": "true"}}],
        }),
    )
    .await;
    create(&ns, SourceKind::TaskTemplate, "gated", json!({
        "steps": [{"id": "plan", "agent": "planner", "instructions": "Plan.", "approval": "required"}],
    })).await;
    // Valid for the API server's schema, invalid for George: an unknown agent.
    create(
        &ns,
        SourceKind::TaskTemplate,
        "broken",
        json!({
            "steps": [{"id": "s", "agent": "ghost", "instructions": "Boo."}],
        }),
    )
    .await;
    for (name, spec) in [
        ("quick-a", json!({"template": "quick"})),
        ("quick-b", json!({"template": "quick"})),
        ("waiting", json!({"template": "gated"})),
        ("kept", json!({"template": "gated", "on_removal": "keep"})),
        ("bad", json!({"template": "nope"})),
    ] {
        create(&ns, SourceKind::Job, name, spec).await;
    }

    let source = CrSource::start(ns.client(), CrSourceConfig::namespace(ns.name()))
        .await
        .expect("the first lists complete");
    assert_eq!(source.paths().len(), 9);
    let store = Arc::new(InMemoryStateStore::new());
    let provider = ScriptedProvider::new();
    for id in ["c1", "c2"] {
        provider.expect_call(
            "plan",
            tool_call(id, "submit_plan", json!({"summary": "s", "actions": []})),
        );
    }
    let e1 = engine(&store, &source, &provider);
    e1.start().await.unwrap();
    let run1 = e1.spawn();
    let follower = source.follow(e1.clone());
    let projector = StatusProjector::new(e1.clone(), ns.client(), ns.name())
        .with_resync(Duration::from_millis(200))
        .spawn();

    let succeeded = |r: &george_core::state::JobRecord| r.status == JobStatus::Succeeded;
    let waiting = |r: &george_core::state::JobRecord| r.status == JobStatus::AwaitingApproval;
    let a = wait_job(&e1, "quick-a", "Succeeded", succeeded).await;
    let b = wait_job(&e1, "quick-b", "Succeeded", succeeded).await;
    wait_job(&e1, "waiting", "AwaitingApproval", waiting).await;
    wait_job(&e1, "kept", "AwaitingApproval", waiting).await;
    assert_eq!(a.generation, 1, "the CR's generation");
    assert!(a.path.starts_with("jobs/cr-source"), "{}", a.path);

    // Invalid CRs: Ready=False naming the field; the valid ones are Ready.
    assert!(e1.job("bad").await.unwrap().is_none());
    let (_, m) = wait_ready(&ns, SourceKind::Job, "bad", |s, _| s == "False").await;
    assert!(m.contains("spec.template") && m.contains("nope"), "{m}");
    let (_, m) = wait_ready(&ns, SourceKind::TaskTemplate, "broken", |s, _| s == "False").await;
    assert!(m.contains("ghost"), "{m}");
    wait_ready(&ns, SourceKind::AgentSpec, "planner", |s, _| s == "True").await;
    wait_ready(&ns, SourceKind::TaskTemplate, "quick", |s, _| s == "True").await;

    // Editing one Job reconciles that one job, at the CR's new generation.
    let g = patch_spec(&ns, "quick-a", json!({"params": {"n": 2}})).await;
    assert_eq!(g, 2);
    let a2 = wait_job(&e1, "quick-a", "generation 2, Succeeded", |r| {
        r.generation == 2 && succeeded(r)
    })
    .await;
    assert_eq!(a2.generation, 2);
    let b2 = e1.job("quick-b").await.unwrap().unwrap();
    assert_eq!(b2.revision, b.revision, "quick-b was not touched");
    // The status says which generation the engine acted on.
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let cr = ns.api::<crd::Job>().get("quick-a").await.unwrap();
        if cr.status.as_ref().and_then(|s| s.observed_generation) == Some(2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", cr.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Fixing the invalid Job runs it; its Ready=False is withdrawn.
    patch_spec(&ns, "bad", json!({"template": "quick"})).await;
    wait_job(&e1, "bad", "Succeeded", succeeded).await;
    wait_ready(&ns, SourceKind::Job, "bad", |s, _| s == "True").await;

    // Deleting cancels, unless the Job says keep.
    for name in ["waiting", "kept"] {
        api(&ns, SourceKind::Job)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    wait_job(&e1, "waiting", "Cancelled", |r| {
        r.status == JobStatus::Cancelled
    })
    .await;
    let kept = wait_job(&e1, "kept", "removed, kept", |r| r.removed).await;
    assert_eq!(kept.status, JobStatus::AwaitingApproval);

    // A restart: a new source and engine over the same store lose nothing.
    projector.shutdown().await;
    follower.shutdown().await;
    run1.shutdown().await;
    drop(source);
    let source2 = CrSource::start(ns.client(), CrSourceConfig::namespace(ns.name()))
        .await
        .unwrap();
    let e2 = engine(&store, &source2, &provider);
    e2.start().await.unwrap();
    let run2 = e2.spawn();
    let follower2 = source2.follow(e2.clone());
    create(
        &ns,
        SourceKind::Job,
        "after-restart",
        json!({"template": "quick"}),
    )
    .await;
    wait_job(&e2, "after-restart", "Succeeded", succeeded).await;
    let a3 = e2.job("quick-a").await.unwrap().unwrap();
    assert_eq!((a3.generation, a3.status), (2, JobStatus::Succeeded));
    let b3 = e2.job("quick-b").await.unwrap().unwrap();
    assert_eq!(
        b3.revision, b.revision,
        "a restart re-reads everything but changes nothing"
    );
    let k = e2.job("kept").await.unwrap().unwrap();
    assert_eq!(k.status, JobStatus::AwaitingApproval);
    follower2.shutdown().await;
    run2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_selector_narrows_what_the_source_sees() {
    let env = george_k8s::testenv_or_skip!("a_label_selector_narrows_what_the_source_sees");
    crd::install(env.client(), LIMIT).await.unwrap();
    let ns = env.namespace("cr-selector").await.unwrap();
    for (name, team) in [("ours", "payments"), ("theirs", "search")] {
        let mut obj = DynamicObject::new(name, &SourceKind::Job.api_resource()).within(ns.name());
        obj.metadata.labels = Some([("team".to_string(), team.to_string())].into());
        obj.data = json!({"spec": {"template": "t"}});
        api(&ns, SourceKind::Job)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }
    let config = CrSourceConfig::all_namespaces("team=payments");
    let source = CrSource::start(ns.client(), config).await.unwrap();
    let paths = source.paths();
    assert!(
        paths
            .iter()
            .any(|p| p == &format!("jobs/{}/ours.yaml", ns.name())),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.ends_with("/theirs.yaml")),
        "{paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_from_several_namespaces_get_their_status_where_they_are() {
    let env = george_k8s::testenv_or_skip!(
        "jobs_from_several_namespaces_get_their_status_where_they_are"
    );
    crd::install(env.client(), LIMIT).await.unwrap();
    let a = env.namespace("cr-across-a").await.unwrap();
    let b = env.namespace("cr-across-b").await.unwrap();
    let labelled =
        |ns: &george_k8s::testenv::TestNamespace, kind: SourceKind, name: &str, spec: Value| {
            let mut obj = DynamicObject::new(name, &kind.api_resource()).within(ns.name());
            obj.metadata.labels = Some([("team".to_string(), "across".to_string())].into());
            obj.data = json!({ "spec": spec });
            obj
        };
    let pp = PostParams::default();
    let quick = json!({"steps": [{"id": "run", "command": {"program": "true"}}]});
    api(&a, SourceKind::TaskTemplate)
        .create(
            &pp,
            &labelled(&a, SourceKind::TaskTemplate, "quick-across", quick),
        )
        .await
        .unwrap();
    for (ns, name) in [(&a, "in-a"), (&b, "in-b")] {
        api(ns, SourceKind::Job)
            .create(
                &pp,
                &labelled(
                    ns,
                    SourceKind::Job,
                    name,
                    json!({"template": "quick-across"}),
                ),
            )
            .await
            .unwrap();
    }
    let source = CrSource::start(a.client(), CrSourceConfig::all_namespaces("team=across"))
        .await
        .unwrap();
    let e = engine(
        &Arc::new(InMemoryStateStore::new()),
        &source,
        &ScriptedProvider::new(),
    );
    e.start().await.unwrap();
    let run = e.spawn();
    let follower = source.follow(e.clone());
    let projector = StatusProjector::new(e.clone(), a.client(), a.name())
        .with_resync(Duration::from_millis(200))
        .across_namespaces()
        .spawn();
    for (ns, name) in [(&a, "in-a"), (&b, "in-b")] {
        wait_job(&e, name, "Succeeded", |r| r.status == JobStatus::Succeeded).await;
        let jobs: Api<crd::Job> = ns.api();
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let cr = jobs.get(name).await.unwrap();
            if cr.status.as_ref().and_then(|s| s.phase) == Some(crd::Phase::Succeeded) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: {:?}",
                cr.status
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    projector.shutdown().await;
    follower.shutdown().await;
    run.shutdown().await;
}
