//! The Kubernetes tools inside the engine, against the real API server: a planning
//! attempt cannot apply (the engine refuses the `write` call), its dry run changes
//! nothing, the approval's preview carries the server-side dry run's diff, and the
//! approved apply runs once.

use std::sync::Arc;
use std::time::Duration;

use george_core::approval::Approver;
use george_core::engine::Engine;
use george_core::human::ChannelHuman;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::scripted::{ScriptedProvider, tool_call};
use george_core::state::JobStatus;
use george_k8s::testenv_or_skip;
use george_k8s::tools::*;
use serde_json::json;

use super::*;

const AGENT: &str = "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: operator}
spec:
  provider: default
  model: scripted
  system_prompt: You change Kubernetes objects, after a human approved the plan.
  tools: [k8s_get, k8s_apply_dry_run, k8s_apply]
";

const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: recolor}
spec:
  steps:
    - id: plan
      agent: operator
      approval: required
      instructions: Make the settings green.
    - id: execute
      depends_on: [plan]
      execute_approved: plan
";

const JOB: &str = "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: recolor}
spec: {template: recolor}
";

#[tokio::test]
async fn a_plan_carries_the_dry_run_diff_and_applies_only_once_approved() {
    let env = testenv_or_skip!("a_plan_carries_the_dry_run_diff_and_applies_only_once_approved");
    let ns = env.namespace("tools-engine").await.expect("namespace");
    config_map(&ns, "settings", json!({"color": "blue"})).await;
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"color": "green"}});
    // The ConfigMap was created imperatively (field manager "unknown"): taking its field
    // over needs `force`, else the dry run and the preview report the 409 conflict.
    let args = json!({"manifest": manifest, "force": true});

    let provider = ScriptedProvider::new();
    // The attack: applying while planning. The engine refuses it before any executor.
    provider.expect_call(
        "plan: apply at once",
        tool_call("c1", K8S_APPLY, args.clone()),
    );
    provider.expect_call(
        "plan: dry run",
        tool_call("c2", K8S_APPLY_DRY_RUN, args.clone()),
    );
    provider.expect_call(
        "plan: submit",
        tool_call(
            "c3",
            "submit_plan",
            json!({
                "summary": "Recolor the settings to green",
                "actions": [{"tool": K8S_APPLY, "arguments": args}]
            }),
        ),
    );
    let git = InMemoryGitSource::new();
    git.commit(
        "main",
        [
            ("agent-specs/operator.yaml", Some(AGENT.as_bytes())),
            ("task-templates/recolor.yaml", Some(TEMPLATE.as_bytes())),
            ("jobs/recolor.yaml", Some(JOB.as_bytes())),
        ],
        "order the recolor",
    );
    let (human, mut approvals) = ChannelHuman::new();
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider("default", Arc::new(provider.clone()))
        .tools(Arc::new(executor(&ns)))
        .human(Arc::new(human))
        .build()
        .expect("engine");
    engine.start().await.expect("start");
    let run = engine.spawn();

    let request = tokio::time::timeout(Duration::from_secs(60), approvals.recv())
        .await
        .expect("an approval request in time")
        .expect("an approval request");
    assert_eq!(
        live_data(&ns, "settings").await,
        Some(json!({"color": "blue"})),
        "changed before approval"
    );
    let previews = engine.preview_approval(&request.id).await.expect("preview");
    let preview = previews[0].preview.clone().expect("a preview of k8s_apply");
    assert!(!preview.is_error, "{preview:?}");
    let diff = preview.diff.unwrap_or_default();
    assert!(
        diff.contains("-  color: blue") && diff.contains("+  color: green"),
        "{diff}"
    );
    assert_eq!(
        live_data(&ns, "settings").await,
        Some(json!({"color": "blue"})),
        "changed by the preview"
    );

    engine
        .approve(&request.id, &Approver::user("alice"), Some("go"))
        .await
        .expect("approve");
    let status = engine
        .wait_finished("recolor", Duration::from_secs(60))
        .await
        .expect("finished");
    run.shutdown().await;
    assert_eq!(status, JobStatus::Succeeded, "{:?}", provider.failures());
    assert!(provider.failures().is_empty(), "{:?}", provider.failures());
    assert_eq!(
        live_data(&ns, "settings").await,
        Some(json!({"color": "green"}))
    );
    let refused = provider.requests()[1].messages.iter().any(|m| {
        matches!(m, george_core::provider::Message::Tool { name, is_error: true, .. } if name == K8S_APPLY)
    });
    assert!(
        refused,
        "the planning attempt's k8s_apply should have been refused"
    );
}
