//! Committed policies decide plans like a person would — and only within what the
//! operator allows. Each test is written as the attack or the claim it checks: a policy
//! approves exactly what its rule matches, a deny rule wins, the operator's ceiling
//! caps any committed policy, and a step that names its approvers is not a policy's to
//! approve.

#[path = "guarantees_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use george_core::approval::Approver;
use george_core::engine::Engine;
use george_core::events::EventAction;
use george_core::human::ChannelHuman;
use george_core::model::Autonomy;
use george_core::scripted::tool_call;
use george_core::state::{ApprovalStatus, JobStatus};
use serde_json::json;
use support::{LIMIT, Setup, agent, next_open, plan_answer, template};

/// Allows `change` with `i ≤ 1`; denies `change` with `i = 7`, whatever else allows it.
const POLICY: &str = "apiVersion: george.dev/v1alpha1
kind: Policy
metadata: {name: small-changes}
spec:
  rules:
    - {name: deny-seven, effect: deny, tool: change, arguments: {i: {equals: 7}}}
    - {name: small, effect: allow, tool: 'chan*', arguments: {i: {max: 1}}}
";

fn job(name: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {name}}}\nspec: {{template: t, params: {{n: 1}}}}\n"
    )
}

type Requests = tokio::sync::mpsc::UnboundedReceiver<george_core::state::ApprovalRequest>;

/// A started, running engine on `s` under the operator's `ceiling`, and the requests
/// that reach a person.
async fn start(s: &Setup, ceiling: Autonomy) -> (Engine, Requests, george_core::engine::RunHandle) {
    let (human, rx) = ChannelHuman::new();
    let e = Engine::builder(s.store.clone(), Arc::new(s.git.clone()))
        .id("e1")
        .provider("default", Arc::new(s.provider.clone()))
        .tools(Arc::new(s.ledger.clone()))
        .human(Arc::new(human))
        .poll_interval(Duration::from_secs(3600))
        .autonomy_ceiling(ceiling)
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    (e, rx, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_approves_exactly_what_its_rule_matches() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("policies/small.yaml", POLICY.to_string()),
        ("jobs/small.yaml", job("small")),
    ]);
    s.provider
        .expect_call("two small changes", plan_answer("c1", 2));
    let (e, mut rx, run) = start(&s, Autonomy::Supervised).await;
    assert_eq!(
        e.wait_finished("small", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(s.ledger.effects(), 2, "both approved actions ran, once");
    let approvals = e.approvals(false).await.unwrap();
    assert_eq!(approvals.len(), 1);
    match &approvals[0].status {
        ApprovalStatus::Approved { by, note, .. } => {
            assert_eq!(by, "policy:small-changes");
            assert!(note.as_deref().unwrap_or("").contains("small"), "{note:?}");
        }
        other => panic!("not approved by the policy: {other:?}"),
    }
    let events = e.events("small").await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.action == EventAction::ApprovalApproved
                && ev.actor == "policy:small-changes")
    );
    assert!(rx.try_recv().is_err(), "nobody was asked");

    // Three changes: `i = 2` matches no rule, so a person decides; nothing runs first.
    s.provider
        .expect_call("three changes", plan_answer("c2", 3));
    s.git
        .commit_files("main", [("jobs/big.yaml", job("big"))], "a bigger job");
    e.sync().await.unwrap();
    let req = next_open(&mut rx).await;
    assert_eq!(req.job, "big");
    assert_eq!(s.ledger.effects(), 2, "nothing of the big plan ran");
    e.approve(&req.id, &Approver::user("alice"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("big", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(s.ledger.effects(), 5);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_rule_wins_over_an_allow_rule() {
    let allow_all = "apiVersion: george.dev/v1alpha1
kind: Policy
metadata: {name: a-allow-all}
spec:
  rules:
    - {name: anything, effect: allow, tool: change}
";
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("policies/allow.yaml", allow_all.to_string()),
        ("policies/small.yaml", POLICY.to_string()),
        ("jobs/j.yaml", job("j")),
    ]);
    s.provider.expect_call(
        "a plan with a denied action",
        tool_call(
            "c1",
            "submit_plan",
            json!({"summary": "two", "actions": [
                {"tool": "change", "arguments": {"i": 0}},
                {"tool": "change", "arguments": {"i": 7}},
            ]}),
        ),
    );
    s.provider.expect_call_where(
        "plans again, told why",
        |req| {
            let all = serde_json::to_string(&req.messages).unwrap_or_default();
            if all.contains("deny-seven") {
                Ok(())
            } else {
                Err("the rejection's reason is not in the prompt".into())
            }
        },
        plan_answer("c2", 1),
    );
    let (e, mut rx, run) = start(&s, Autonomy::Supervised).await;
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(
        s.ledger.effects(),
        1,
        "only the second plan's one action ran"
    );
    let events = e.events("j").await.unwrap();
    let rejected = events
        .iter()
        .find(|ev| ev.action == EventAction::ApprovalRejected)
        .expect("a rejection");
    assert_eq!(rejected.actor, "policy:small-changes");
    assert!(
        rejected.detail.contains("deny-seven"),
        "{}",
        rejected.detail
    );
    assert!(rx.try_recv().is_err(), "nobody was asked");
    assert!(
        s.provider.failures().is_empty(),
        "{:?}",
        s.provider.failures()
    );
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_ceiling_caps_a_committed_policy() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("policies/small.yaml", POLICY.to_string()),
        ("jobs/j.yaml", job("j")),
    ]);
    s.provider
        .expect_call("two small changes", plan_answer("c1", 2));
    let (e, mut rx, run) = start(&s, Autonomy::Manual).await;
    let req = next_open(&mut rx).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.ledger.effects(), 0, "the policy approved nothing");
    assert_eq!(
        e.job("j").await.unwrap().unwrap().status,
        JobStatus::AwaitingApproval
    );
    e.approve(&req.id, &Approver::user("alice"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    let approval = e.approval(&req.id).await.unwrap().unwrap();
    assert!(matches!(&approval.status, ApprovalStatus::Approved { by, .. } if by == "human:alice"));
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_names_its_approvers_is_not_a_policys_to_approve() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        (
            "task-templates/t.yaml",
            template("{required: true, approvers: ['group:sre']}"),
        ),
        ("policies/small.yaml", POLICY.to_string()),
        ("jobs/j.yaml", job("j")),
    ]);
    s.provider
        .expect_call("two small changes", plan_answer("c1", 2));
    let (e, mut rx, run) = start(&s, Autonomy::Supervised).await;
    let req = next_open(&mut rx).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.ledger.effects(), 0);
    e.approve(&req.id, &Approver::user("bob").in_group("sre"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(s.ledger.effects(), 2);
    run.shutdown().await;
}

fn autonomous_agent() -> String {
    "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: planner}
spec:
  model: m
  system_prompt: You plan.
  tools: [change]
  autonomy: autonomous
"
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_autonomous_agent_still_plans_under_a_supervised_ceiling() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", autonomous_agent()),
        ("task-templates/t.yaml", template("required")),
        ("jobs/j.yaml", job("j")),
    ]);
    s.provider.expect_call(
        "tries to change at once",
        tool_call("c1", "change", json!({"i": 0})),
    );
    s.provider.expect_call("then plans", plan_answer("c2", 1));
    let (_e, mut rx, run) = start(&s, Autonomy::Supervised).await;
    let _req = next_open(&mut rx).await;
    assert_eq!(s.ledger.effects(), 0, "the write tool never ran");
    let offered: Vec<String> = s.provider.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(!offered.contains(&"change".to_string()), "{offered:?}");
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_an_autonomous_ceiling_an_autonomous_agent_changes_without_a_plan() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", autonomous_agent()),
        ("task-templates/t.yaml", template("required")),
        ("jobs/j.yaml", job("j")),
    ]);
    s.provider
        .expect_call("changes itself", tool_call("c1", "change", json!({"i": 0})));
    s.provider.expect_call(
        "reports",
        tool_call("c2", "report_success", json!({"summary": "changed"})),
    );
    let (e, mut rx, run) = start(&s, Autonomy::Autonomous).await;
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(
        s.ledger.effects(),
        1,
        "its one change, once; the execute step ran nothing"
    );
    assert!(e.approvals(false).await.unwrap().is_empty());
    assert!(rx.try_recv().is_err(), "nobody was asked");
    let rec = e.job("j").await.unwrap().unwrap();
    assert!(rec.step("plan").unwrap().autonomous);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reporting_success_in_a_plan_step_never_runs_its_outputs() {
    // The execute step runs nothing only for a step the engine marked autonomous: a
    // supervised agent that reports success with plan-shaped outputs changes nothing.
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("jobs/j.yaml", job("j")),
    ]);
    s.provider.expect_call(
        "pretends",
        tool_call(
            "c1",
            "report_success",
            json!({"summary": "s", "outputs": {"autonomous": true, "actions": [{"tool": "change", "arguments": {}}]}}),
        ),
    );
    s.provider.expect_call("plans", plan_answer("c2", 1));
    let (_e, mut rx, run) = start(&s, Autonomy::Autonomous).await;
    let _req = next_open(&mut rx).await;
    assert_eq!(s.ledger.effects(), 0);
    run.shutdown().await;
}
