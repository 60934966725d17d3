//! George's approval guarantees, each written as the attack it stops, through the
//! public API on in-memory backends (README, "Guarantees").

mod guarantees_support;

use george_core::approval::{Approver, Decision};
use george_core::error::ErrorKind;
use george_core::events::EventAction;
use george_core::scripted::tool_calls;
use george_core::state::{ApprovalStatus, JobStatus, StepState};
use guarantees_support::*;
use serde_json::json;

/// A model that calls a `write` tool while planning: the engine refuses the call before
/// any executor sees it, and the tool was not even offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_tool_called_while_planning_never_reaches_its_executor() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("peek, change")),
        ("task-templates/t.yaml", template("required")),
        ("jobs/j.yaml", job(1)),
    ]);
    s.provider.expect_call(
        "plan: peek and sneak a change",
        tool_calls(vec![
            ("c1", "peek", json!({})),
            ("c2", "change", json!({"sneaky": true})),
        ]),
    );
    s.provider.expect_call("plan: submit", plan_answer("c3", 1));
    let (e, mut rx) = s.engine("e1");
    e.start().await.unwrap();
    let run = e.spawn();
    let req = next_open(&mut rx).await;
    assert!(
        s.ledger.calls_of("change").is_empty(),
        "nothing changed before approval"
    );
    assert_eq!(s.ledger.calls_of("peek").len(), 1, "read tools still work");
    let offered: Vec<String> = s.provider.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(offered.contains(&"peek".to_string()));
    assert!(!offered.contains(&"change".to_string()), "{offered:?}");
    let events = e.events("j").await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.action == EventAction::ToolRefused && ev.detail.contains("\"change\""))
    );
    // The approved plan runs, once, under the approval's key.
    e.approve(&req.id, &Approver::user("alice"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    let changes = s.ledger.calls_of("change");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].key, format!("{}/1", req.id));
    assert_eq!(
        changes[0].context.approval.as_deref(),
        Some(req.id.as_str())
    );
}

/// Outputs a model produced before the template had an approval gate never run as an
/// approved plan: the gated step plans again and waits for a human.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_without_an_approval_never_execute() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("")),
        ("jobs/j.yaml", job(1)),
    ]);
    s.provider.expect_call(
        "no gate: report a plan-shaped success",
        george_core::scripted::tool_call(
            "c1",
            "report_success",
            json!({"summary": "s", "outputs": {"summary": "s", "actions": [{"tool": "change", "arguments": {}}]}}),
        ),
    );
    s.provider
        .expect_call("gated: a real plan", plan_answer("c2", 1));
    let (e, mut rx) = s.engine("e1");
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    s.git.commit_files(
        "main",
        [("task-templates/t.yaml", template("required"))],
        "add the gate and the execution",
    );
    e.sync().await.unwrap();
    let req = next_open(&mut rx).await;
    assert!(s.ledger.calls_of("change").is_empty());
    assert_eq!(req.generation, 2);
    e.approve(&req.id, &Approver::user("a"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    assert_eq!(s.ledger.calls_of("change").len(), 1);
}

/// A plan waiting for a human is cancelled by a new generation and cannot be approved
/// afterwards; the replayed approval of its id is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_plan_is_cancelled_by_a_new_generation() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("jobs/j.yaml", job(1)),
    ]);
    s.provider.expect_call("plan 1", plan_answer("c1", 1));
    s.provider.expect_call("plan 2", plan_answer("c2", 2));
    let (e, mut rx) = s.engine("e1");
    e.start().await.unwrap();
    let run = e.spawn();
    let first = next_open(&mut rx).await;
    s.git
        .commit_files("main", [("jobs/j.yaml", job(2))], "a new target");
    e.sync().await.unwrap();
    let second = next_open(&mut rx).await;
    assert_ne!(first.id, second.id, "ids are never reused");
    let stored = e.open_approvals().await.unwrap();
    assert_eq!(stored.len(), 1);
    let old = s.store_approval(&first.id).await;
    assert!(
        matches!(old.status, ApprovalStatus::Cancelled { .. }),
        "{old:?}"
    );
    let err = e
        .approve(&first.id, &Approver::user("a"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    e.approve(&second.id, &Approver::user("a"), None)
        .await
        .unwrap();
    // A replayed approval of a decided request is refused too.
    let err = e
        .approve(&second.id, &Approver::user("b"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    // Only the second plan's two actions ran.
    let keys: Vec<String> = s
        .ledger
        .calls_of("change")
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(
        keys,
        [format!("{}/1", second.id), format!("{}/2", second.id)]
    );
    let events = e.events("j").await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.action == EventAction::ApprovalCancelled)
    );
}

impl Setup {
    async fn store_approval(&self, id: &str) -> george_core::state::ApprovalRequest {
        use george_core::store::StateStore;
        self.store.approval(id).await.unwrap().expect("stored")
    }
}

/// A decision carries the digest of the plan the human saw; another plan's is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_mismatch_is_refused() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("jobs/j.yaml", job(1)),
    ]);
    s.provider.expect_call("plan", plan_answer("c1", 1));
    let (e, mut rx) = s.engine("e1");
    e.start().await.unwrap();
    let run = e.spawn();
    let req = next_open(&mut rx).await;
    assert_eq!(req.digest, req.plan.digest());
    let wrong = Decision::approve(None).with_digest("sha256:0000");
    let err = e
        .decide(&req.id, &Approver::user("a"), &wrong)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(s.ledger.calls_of("change").is_empty());
    let right = Decision::approve(None).with_digest(req.digest.clone());
    e.decide(&req.id, &Approver::user("a"), &right)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    let rec = e.job("j").await.unwrap().unwrap();
    let out = rec.step("execute").unwrap().outputs.clone().unwrap();
    assert_eq!(out["approval"], json!(req.id));
    assert_eq!(out["digest"], json!(req.digest));
}

/// A tool revoked from the planning agent after the approval is not executed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_tool_is_not_executed_even_if_approved() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("jobs/j.yaml", job(1)),
    ]);
    s.provider.expect_call("plan", plan_answer("c1", 1));
    s.provider.expect_call(
        "re-plan without the tool",
        george_core::scripted::tool_call("c2", "report_blocked", json!({"reason": "no tool"})),
    );
    let (e, mut rx) = s.engine("e1");
    e.start().await.unwrap();
    let run = e.spawn();
    let req = next_open(&mut rx).await;
    // Stop the loop, approve, revoke the tool, then let the engine go on.
    run.shutdown().await;
    e.approve(&req.id, &Approver::user("a"), None)
        .await
        .unwrap();
    s.git.commit_files(
        "main",
        [("agent-specs/p.yaml", agent("peek"))],
        "revoke change",
    );
    e.sync().await.unwrap();
    let run = e.spawn();
    let status = e.wait_finished("j", LIMIT).await.unwrap();
    run.shutdown().await;
    assert_eq!(status, JobStatus::Blocked);
    assert!(
        s.ledger.calls_of("change").is_empty(),
        "the revoked tool never ran"
    );
}

/// An approver outside the step's rule is refused, naming the rule; the two-person rule
/// needs two distinct approvers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvers_outside_the_rule_are_refused_and_two_people_are_needed() {
    let rule = "{required: true, approvers: ['group:sre'], min_approvals: 2}";
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template(rule)),
        ("jobs/j.yaml", job(1)),
    ]);
    s.provider.expect_call("plan", plan_answer("c1", 1));
    let (e, mut rx) = s.engine("e1");
    e.start().await.unwrap();
    let run = e.spawn();
    let req = next_open(&mut rx).await;
    let err = e
        .approve(&req.id, &Approver::user("mallory"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("group:sre"), "{err}");
    let alice = Approver::user("alice").in_group("sre");
    e.approve(&req.id, &alice, None).await.unwrap();
    let again = e.approve(&req.id, &alice, None).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "one person counts once");
    let rec = e.job("j").await.unwrap().unwrap();
    assert!(matches!(
        rec.step("plan").unwrap().state,
        StepState::AwaitingApproval { .. }
    ));
    assert!(s.ledger.calls_of("change").is_empty());
    e.approve(&req.id, &Approver::user("bob").in_group("sre"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    assert_eq!(s.ledger.effects(), 1);
}

/// The author of the job's commit may not approve it under `forbid_self_approval`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_approval_is_refused_when_forbidden() {
    let rule = "{required: true, forbid_self_approval: true}";
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template(rule)),
        ("jobs/j.yaml", job(1)),
    ]);
    let head = george_core::git::GitSource::resolve(&s.git, "main")
        .await
        .unwrap();
    s.git.set_author(&head, "Alice Doe <alice@example.org>");
    s.provider.expect_call("plan", plan_answer("c1", 1));
    let (e, mut rx) = s.engine("e1");
    e.start().await.unwrap();
    let run = e.spawn();
    let req = next_open(&mut rx).await;
    let alice = Approver::user("alice").with_email("alice@example.org");
    let err = e.approve(&req.id, &alice, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    e.approve(&req.id, &Approver::user("bob"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
}
