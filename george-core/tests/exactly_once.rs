//! Approved actions run exactly once across restarts, and every job status change is
//! in the event log.

mod guarantees_support;

use std::time::Duration;

use george_core::approval::Approver;
use george_core::events::EventAction;
use george_core::scripted::tool_call;
use george_core::state::JobStatus;
use guarantees_support::*;
use serde_json::json;

/// The engine stops while the second of three approved actions is in flight; a new
/// engine on the same store takes the step over. The first action's effect was recorded
/// and is never run again; the second runs again under the *same* key (the executor
/// applies it once); the third runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_action_keeps_its_key_across_a_restart_and_takes_effect_once() {
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("jobs/j.yaml", job(1)),
    ]);
    s.provider.expect_call("plan", plan_answer("c1", 3));
    let (e1, mut rx) = s.engine("e1");
    e1.start().await.unwrap();
    let run = e1.spawn();
    let req = next_open(&mut rx).await;
    let second = format!("{}/2", req.id);
    *s.ledger.hang_on.lock().unwrap() = Some(second.clone());
    e1.approve(&req.id, &Approver::user("a"), None)
        .await
        .unwrap();
    // Wait until the second action is in flight, then stop the engine.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !s.ledger.calls_of("change").iter().any(|c| c.key == second) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "action 2 never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.shutdown().await;

    let (e2, _rx2) = s.engine("e2");
    e2.start().await.unwrap();
    let run = e2.spawn();
    assert_eq!(
        e2.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;

    let calls = s.ledger.calls_of("change");
    let keys: Vec<&str> = calls.iter().map(|c| c.key.as_str()).collect();
    let k = |i: usize| format!("{}/{i}", req.id);
    assert_eq!(
        keys,
        [k(1), k(2), k(2), k(3)],
        "action 1 was recorded: not re-run"
    );
    assert_eq!(s.ledger.effects(), 3, "each action took effect once");
    // The calls carry their context: the approval, the action, a fencing token that grew.
    assert_eq!(calls[1].context.action, Some(2));
    assert_eq!(calls[1].context.fencing.holder, "e1");
    assert_eq!(calls[2].context.fencing.holder, "e2");
    assert!(calls[2].context.fencing.sequence > calls[1].context.fencing.sequence);
    let events = e2.events("j").await.unwrap();
    let executed = events
        .iter()
        .filter(|ev| ev.action == EventAction::ActionExecuted)
        .count();
    assert_eq!(executed, 3);
}

/// Jobs walked through every status have a `job.status` event for each change, each
/// following the previous one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_transition_is_in_the_event_log() {
    let plain = template("").replace("name: t", "name: u");
    let other = |name: &str| {
        job(1)
            .replace("name: j", &format!("name: {name}"))
            .replace("template: t", "template: u")
    };
    let s = Setup::new(vec![
        ("agent-specs/p.yaml", agent("change")),
        ("task-templates/t.yaml", template("required")),
        ("task-templates/u.yaml", plain),
        ("jobs/j.yaml", job(1)),
    ]);
    s.provider.expect_call("plan", plan_answer("c1", 1));
    s.provider.expect_call(
        "blocked",
        tool_call("c2", "report_blocked", json!({"reason": "cannot"})),
    );
    s.provider.expect_call(
        "failed",
        tool_call(
            "c3",
            "report_failure",
            json!({"reason": "broken", "retryable": false}),
        ),
    );
    let (e, mut rx) = s.engine("e1");
    e.start().await.unwrap();
    let run = e.spawn();
    // j: Pending → Running → AwaitingApproval → Running → Succeeded.
    let req = next_open(&mut rx).await;
    e.approve(&req.id, &Approver::user("a"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    // b: Blocked, then Cancelled by its removal; f: Failed.
    s.git
        .commit_files("main", [("jobs/b.yaml", other("b"))], "order b");
    e.sync().await.unwrap();
    assert_eq!(
        e.wait_finished("b", LIMIT).await.unwrap(),
        JobStatus::Blocked
    );
    s.git
        .commit_files("main", [("jobs/f.yaml", other("f"))], "order f");
    e.sync().await.unwrap();
    assert_eq!(
        e.wait_finished("f", LIMIT).await.unwrap(),
        JobStatus::Failed
    );
    s.git
        .commit("main", [("jobs/b.yaml", None::<&str>)], "remove b");
    e.sync().await.unwrap();
    e.wait_for("b", LIMIT, |st| st == JobStatus::Cancelled)
        .await
        .unwrap();
    run.shutdown().await;
    let mut seen = Vec::new();
    for (job, last) in [("j", "Succeeded"), ("b", "Cancelled"), ("f", "Failed")] {
        let events = e.events(job).await.unwrap();
        let statuses: Vec<&str> = events
            .iter()
            .filter(|ev| ev.action == EventAction::JobStatus)
            .map(|ev| ev.detail.as_str())
            .collect();
        let mut current = "Pending".to_string();
        for d in &statuses {
            let (from, rest) = d.split_once(" → ").expect("from → to");
            assert_eq!(from, current, "{job}: {statuses:#?}");
            current = rest.split(':').next().unwrap().trim().to_string();
            seen.push(current.clone());
        }
        assert_eq!(current, last, "{job}: {statuses:#?}");
    }
    for st in [
        "Running",
        "AwaitingApproval",
        "Succeeded",
        "Blocked",
        "Failed",
        "Cancelled",
    ] {
        assert!(
            seen.iter().any(|x| x == st),
            "no job.status event to {st}: {seen:?}"
        );
    }
}
