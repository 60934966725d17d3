//! Job status on the cluster, against the real API server: an engine on the in-memory store
//! with a scripted provider runs jobs whose `Job` CRs exist (as Argo CD would create them
//! from the same Git repository); the StatusProjector writes phase, conditions, step
//! summaries, open approvals and observedGeneration by server-side apply under its own
//! field manager, and emits Events; after an engine restart the status is rebuilt from
//! the store and follows the job to the end.

use std::sync::Arc;
use std::time::Duration;

use george_core::approval::Approver;
use george_core::command::CommandToolExecutor;
use george_core::engine::Engine;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::scripted::{ScriptedProvider, tool_call};
use george_k8s::crd::{self, ConditionStatus, Job, JobSpec, Phase};
use george_k8s::status::{Projected, StatusProjector};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);
const AGENT: &str = "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: planner}\nspec: {model: m, system_prompt: You plan.}\n";
const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: plan, agent: planner, instructions: Plan., approval: required}\n    - {id: after, depends_on: [plan], command: {program: 'true'}}\n";
const FAILING: &str = "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: f}\nspec:\n  steps:\n    - {id: s, command: {program: 'false'}, retry: {attempts: 1}}\n    - {id: next, depends_on: [s], command: {program: 'true'}}\n";

fn job_yaml(name: &str, template: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {name}}}\nspec: {{template: {template}}}\n"
    )
}

fn engine(
    store: &Arc<InMemoryStateStore>,
    git: &InMemoryGitSource,
    provider: &ScriptedProvider,
) -> Engine {
    Engine::builder(store.clone(), Arc::new(git.clone()))
        .provider("default", Arc::new(provider.clone()))
        .commands(CommandToolExecutor::new(["true", "false"]))
        .poll_interval(Duration::from_millis(50))
        .build()
        .expect("engine")
}

/// Polls `name`'s CR until `pred` holds on its status.
async fn wait_status(
    api: &Api<Job>,
    name: &str,
    what: &str,
    pred: impl Fn(&crd::JobStatus) -> bool,
) -> Job {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let cr = api.get(name).await.unwrap();
        if cr.status.as_ref().is_some_and(&pred) {
            return cr;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: {what} within {LIMIT:?}; status {:#?}",
            cr.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reasons(ns: &george_k8s::testenv::TestNamespace, name: &str) -> Vec<(String, String)> {
    let events: Api<K8sEvent> = ns.api();
    let mut out: Vec<_> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.type_.unwrap_or_default()))
        .collect();
    out.sort();
    out
}

fn condition(s: &crd::JobStatus, t: &str) -> ConditionStatus {
    s.conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status)
        .unwrap_or(ConditionStatus::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_projected_into_job_crs_and_survives_an_engine_restart() {
    let env = george_k8s::testenv_or_skip!(
        "status_is_projected_into_job_crs_and_survives_an_engine_restart"
    );
    crd::install(env.client(), LIMIT).await.unwrap();
    let ns = env.namespace("status-projection").await.unwrap();
    let api: Api<Job> = ns.api();

    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/planner.yaml", AGENT.to_string()),
            ("task-templates/t.yaml", TEMPLATE.to_string()),
            ("task-templates/f.yaml", FAILING.to_string()),
            ("jobs/gated.yaml", job_yaml("gated", "t")),
            ("jobs/failing.yaml", job_yaml("failing", "f")),
            ("jobs/orphan.yaml", job_yaml("orphan", "f")),
        ],
        "c1",
    );
    // The same Jobs as CRs (no CR for `orphan`: it is skipped).
    for (name, template) in [("gated", "t"), ("failing", "f")] {
        let spec: george_core::model::JobSpec =
            serde_json::from_value(json!({"template": template})).unwrap();
        api.create(&PostParams::default(), &Job::new(name, JobSpec(spec)))
            .await
            .unwrap();
    }

    let store = Arc::new(InMemoryStateStore::new());
    let provider = ScriptedProvider::new();
    provider.expect_call(
        "plan",
        tool_call(
            "c1",
            "submit_plan",
            json!({"summary": "scale down", "actions": []}),
        ),
    );
    let e1 = engine(&store, &git, &provider);
    e1.start().await.unwrap();
    let run1 = e1.spawn();
    let projector = StatusProjector::new(e1.clone(), ns.client(), ns.name())
        .with_resync(Duration::from_millis(200))
        .spawn();

    let gated = wait_status(&api, "gated", "AwaitingApproval", |s| {
        s.phase == Some(Phase::AwaitingApproval)
    })
    .await;
    let s = gated.status.unwrap();
    let id = s.waiting_approval.clone().expect("an open approval");
    assert_eq!(s.open_approvals, std::slice::from_ref(&id));
    assert_eq!(s.observed_generation, gated.metadata.generation);
    assert_eq!(s.current_step.as_deref(), Some("plan"));
    assert_eq!(s.steps.len(), 2);
    assert_eq!(
        (s.steps[0].id.as_str(), s.steps[0].state.as_str()),
        ("plan", "AwaitingApproval")
    );
    assert_eq!(s.steps[0].approval.as_deref(), Some(id.as_str()));
    assert_eq!(s.steps[1].state, "Pending");
    assert_eq!(condition(&s, "AwaitingApproval"), ConditionStatus::True);
    assert_eq!(condition(&s, "Ready"), ConditionStatus::False);
    let failing = wait_status(&api, "failing", "Failed", |s| {
        s.phase == Some(Phase::Failed)
    })
    .await;
    let f = failing.status.unwrap();
    assert_eq!(condition(&f, "Stalled"), ConditionStatus::True);
    let stalled = f.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert!(stalled.message.contains("step s"), "{stalled:?}");
    // Written under the projector's own field manager, on the status subresource.
    let managers: Vec<_> = gated
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["george-engine"]);
    // Events tell the story.
    let deadline = std::time::Instant::now() + LIMIT;
    while !reasons(&ns, "failing")
        .await
        .iter()
        .any(|(r, t)| r == "JobFailed" && t == "Warning")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            reasons(&ns, "failing").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reasons(&ns, "gated")
            .await
            .iter()
            .any(|(r, _)| r == "JobAwaitingApproval")
    );

    // One job, direct calls: no CR, no job.
    let direct = StatusProjector::new(e1.clone(), ns.client(), ns.name());
    assert_eq!(
        direct.project("orphan").await.unwrap(),
        Projected::NoResource
    );
    assert_eq!(direct.project("nobody").await.unwrap(), Projected::NoJob);
    assert_eq!(direct.project("gated").await.unwrap(), Projected::Unchanged);

    // Editing the CR's spec bumps its generation: the projector observes it.
    let edit = json!({"spec": {"params": {"note": "edited"}}});
    let edited = api
        .patch("gated", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    let generation = edited.metadata.generation;
    assert_eq!(generation, Some(2));
    wait_status(&api, "gated", "observedGeneration 2", |s| {
        s.observed_generation == generation
    })
    .await;

    // The engine and the projector stop; someone wipes the status.
    projector.shutdown().await;
    run1.shutdown().await;
    drop(e1);
    let wipe = json!({"status": null});
    api.patch_status("gated", &PatchParams::default(), &Patch::Merge(&wipe))
        .await
        .unwrap();
    assert!(api.get("gated").await.unwrap().status.is_none());

    // A new engine on the same store: the projection is rebuilt from the store.
    let e2 = engine(&store, &git, &provider);
    e2.start().await.unwrap();
    let run2 = e2.spawn();
    let projector = StatusProjector::new(e2.clone(), ns.client(), ns.name())
        .with_resync(Duration::from_millis(200))
        .spawn();
    let rebuilt = wait_status(&api, "gated", "rebuilt", |s| {
        s.phase == Some(Phase::AwaitingApproval)
    })
    .await;
    assert_eq!(
        rebuilt.status.unwrap().waiting_approval.as_deref(),
        Some(id.as_str())
    );

    // The approval goes through the new engine; the CR follows the job to the end.
    e2.approve(&id, &Approver::user("alice"), None)
        .await
        .unwrap();
    let done = wait_status(&api, "gated", "Succeeded", |s| {
        s.phase == Some(Phase::Succeeded)
    })
    .await;
    let s = done.status.unwrap();
    assert_eq!(condition(&s, "Ready"), ConditionStatus::True);
    assert_eq!(condition(&s, "AwaitingApproval"), ConditionStatus::False);
    assert!(
        s.open_approvals.is_empty() && s.waiting_approval.is_none() && s.current_step.is_none()
    );
    assert!(
        s.steps.iter().all(|st| st.state == "Succeeded"),
        "{:?}",
        s.steps
    );
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let r = reasons(&ns, "gated").await;
        if r.iter().any(|(r, _)| r == "JobSucceeded") && r.iter().any(|(r, _)| r == "StepApproved")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    projector.shutdown().await;
    run2.shutdown().await;
    assert!(provider.failures().is_empty(), "{:?}", provider.failures());
}
