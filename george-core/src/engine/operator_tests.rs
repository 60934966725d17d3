//! Tests of the operator's reads and actions (`operator.rs`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::approval::Decision;
use crate::command::CommandToolExecutor;
use crate::human::ChannelHuman;
use crate::memory::{InMemoryGitSource, InMemoryStateStore};
use crate::scripted::{ScriptedProvider, tool_call};
use crate::tool::EffectClass;

const LIMIT: Duration = Duration::from_secs(10);
const AGENT: &str = "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: planner}\nspec: {model: m, system_prompt: You plan.}\n";
const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: plan, agent: planner, instructions: Plan., approval: required}\n    - {id: after, depends_on: [plan], command: {program: 'true'}}\n";
const FAILING: &str = "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: f}\nspec:\n  steps:\n    - {id: s, command: {program: 'false'}, retry: {attempts: 1}}\n    - {id: next, depends_on: [s], command: {program: 'true'}}\n";

fn job(name: &str, template: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {name}}}\nspec: {{template: {template}}}\n"
    )
}

fn plan(id: &str) -> crate::provider::ChatResponse {
    tool_call(
        id,
        "submit_plan",
        json!({"summary": "nothing", "actions": []}),
    )
}

struct Setup {
    engine: Engine,
    provider: ScriptedProvider,
    requests: tokio::sync::mpsc::UnboundedReceiver<ApprovalRequest>,
    run: super::super::RunHandle,
}

async fn setup() -> Setup {
    let git = InMemoryGitSource::new();
    let files = vec![
        ("agent-specs/planner.yaml", AGENT.to_string()),
        ("task-templates/t.yaml", TEMPLATE.to_string()),
        ("task-templates/f.yaml", FAILING.to_string()),
        ("jobs/gated.yaml", job("gated", "t")),
        ("jobs/failing.yaml", job("failing", "f")),
    ];
    git.commit_files("main", files, "c1");
    let provider = ScriptedProvider::new();
    provider.expect_call("plan 1", plan("c1"));
    let (human, requests) = ChannelHuman::new();
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider("default", Arc::new(provider.clone()))
        .commands(CommandToolExecutor::new(["true", "false"]))
        .effect_class("run_command", EffectClass::DryRun)
        .human(Arc::new(human))
        .build()
        .expect("engine");
    engine.start().await.expect("start");
    let run = engine.spawn();
    Setup {
        engine,
        provider,
        requests,
        run,
    }
}

async fn next_open(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<ApprovalRequest>,
) -> ApprovalRequest {
    loop {
        let req = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("in time")
            .expect("open");
        if req.status == ApprovalStatus::Open {
            return req;
        }
    }
}

#[tokio::test]
async fn cancel_stops_a_waiting_job_for_good_and_voids_its_request() {
    let mut s = setup().await;
    let req = next_open(&mut s.requests).await;
    let alice = Approver::user("alice");
    let rec = s
        .engine
        .cancel_job("gated", &alice, "not today")
        .await
        .expect("cancel");
    assert_eq!(rec.status, JobStatus::Cancelled);
    assert!(rec.steps.iter().all(|st| st.state == StepState::Cancelled));
    let stored = s.engine.approval(&req.id).await.unwrap().unwrap();
    assert_eq!(stored.status.name(), "cancelled");
    let err = s
        .engine
        .decide(&req.id, &alice, &Decision::approve(None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // The reconciler leaves it alone; cancelling again changes nothing.
    s.engine.requeue("gated");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = s
        .engine
        .cancel_job("gated", &alice, "")
        .await
        .expect("idempotent");
    assert_eq!(again.revision, rec.revision);
    let events = s.engine.events("gated").await.unwrap();
    let by_alice: Vec<_> = events.iter().filter(|e| e.actor == "human:alice").collect();
    assert!(by_alice.iter().any(|e| e.action == "approval.cancelled"));
    assert!(
        by_alice
            .iter()
            .any(|e| e.action == "job.status" && e.detail.ends_with("→ Cancelled"))
    );
    assert!(
        by_alice
            .iter()
            .any(|e| e.detail.contains("cancelled by human:alice: not today"))
    );
    s.run.shutdown().await;
}

#[tokio::test]
async fn retry_after_cancel_plans_again_under_a_new_request_id() {
    let mut s = setup().await;
    let first = next_open(&mut s.requests).await;
    let alice = Approver::user("alice");
    s.engine
        .cancel_job("gated", &alice, "")
        .await
        .expect("cancel");
    s.provider.expect_call("plan 2", plan("c2"));
    let rec = s
        .engine
        .retry_job("gated", &alice, "go")
        .await
        .expect("retry");
    assert!(!rec.status.is_finished());
    let second = next_open(&mut s.requests).await;
    assert_ne!(first.id, second.id);
    s.engine
        .approve(&second.id, &alice, None)
        .await
        .expect("approve");
    let status = s.engine.wait_finished("gated", LIMIT).await.unwrap();
    assert_eq!(status, JobStatus::Succeeded);
    s.run.shutdown().await;
}

#[tokio::test]
async fn retry_gives_a_failed_job_one_more_attempt_and_refuses_other_states() {
    let s = setup().await;
    let alice = Approver::user("alice");
    assert_eq!(
        s.engine.wait_finished("failing", LIMIT).await.unwrap(),
        JobStatus::Failed
    );
    let failed = s.engine.job("failing").await.unwrap().unwrap();
    assert_eq!(failed.step("next").unwrap().state, StepState::Cancelled);
    let err = s
        .engine
        .cancel_job("failing", &alice, "")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let rec = s
        .engine
        .retry_job("failing", &alice, "")
        .await
        .expect("retry");
    assert!(rec.steps.iter().all(|st| st.state == StepState::Pending));
    assert_eq!(rec.status, JobStatus::Pending);
    s.engine
        .wait_for("failing", LIMIT, |st| st == JobStatus::Failed)
        .await
        .unwrap();
    let after = s.engine.job("failing").await.unwrap().unwrap();
    assert_eq!(after.step("s").unwrap().attempt, 2);
    let events = s.engine.events("failing").await.unwrap();
    assert!(events.iter().any(
        |e| e.actor == "human:alice" && e.detail == "failed → pending: retried by human:alice"
    ));
    // A job waiting for a human is neither failed nor cancelled.
    s.engine
        .wait_for("gated", LIMIT, |st| st == JobStatus::AwaitingApproval)
        .await
        .unwrap();
    let err = s.engine.retry_job("gated", &alice, "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = s.engine.retry_job("nope", &alice, "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!s.engine.known_jobs().contains("nope"));
    s.run.shutdown().await;
}

#[tokio::test]
async fn the_catalogue_and_reads_show_what_the_engine_has() {
    let mut s = setup().await;
    let req = next_open(&mut s.requests).await;
    let c = s.engine.catalogue();
    let names: Vec<_> = c
        .agents
        .iter()
        .map(|a| a.value.metadata.name.as_str())
        .collect();
    assert_eq!(names, ["planner"]);
    let names: Vec<_> = c
        .templates
        .iter()
        .map(|t| t.value.metadata.name.as_str())
        .collect();
    assert_eq!(names, ["f", "t"]);
    let tools: Vec<_> = c
        .tools
        .iter()
        .map(|t| {
            (
                t.definition.name.as_str(),
                t.definition.effect,
                t.effect_fixed,
            )
        })
        .collect();
    assert_eq!(tools, [("run_command", EffectClass::DryRun, true)]);
    assert_eq!(
        s.engine.source_head().await.unwrap(),
        s.engine.commit().unwrap()
    );
    assert_eq!(s.engine.reference(), "main");
    assert_eq!(s.engine.approvals(true).await.unwrap().len(), 1);
    assert_eq!(
        s.engine.approval(&req.id).await.unwrap().unwrap().digest,
        req.digest
    );
    let all = s.engine.events("gated").await.unwrap();
    let page = s.engine.events_after("gated", 1, 2).await.unwrap();
    assert_eq!(page, all[1..3]);
    let transcript = s
        .engine
        .transcript("gated", "plan", 1)
        .await
        .unwrap()
        .expect("kept");
    assert!(!transcript.is_empty());
    assert!(
        s.engine
            .transcript("gated", "plan", 9)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.engine.jobs().await.unwrap().len(), 2);
    s.run.shutdown().await;
}
