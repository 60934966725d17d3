//! Acceptance tests on the quickstart's scenario: real Git repositories, a real Helm
//! chart, a real SQLite file; the model and the human are scripted.

#[path = "../examples/support/mod.rs"]
mod support;

use std::time::Duration;

use george::prelude::*;
use george::provider::Message;
use george::state::StepState;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scaling_event_runs_from_commit_to_verified_result() {
    let dir = tempfile::tempdir().unwrap();
    let s = support::setup(dir.path());
    let provider = ScriptedProvider::new();
    support::script_investigation(&provider);
    support::script_planning(&provider);
    let (human, rx) = ChannelHuman::new();
    let engine = support::engine(&s, provider.clone(), human, "e1")
        .await
        .unwrap();
    let _h = support::spawn_human(engine.clone(), rx);
    let _c = support::spawn_cluster_sync(&s, Duration::from_millis(1500));
    engine.start().await.unwrap();
    assert!(
        engine.manifest_errors().is_empty(),
        "{:?}",
        engine.manifest_errors()
    );
    let run = engine.spawn();
    let status = engine.wait_finished(support::JOB, LIMIT).await.unwrap();
    run.shutdown().await;

    assert_eq!(
        provider.failures(),
        Vec::<String>::new(),
        "every request matched the script"
    );
    assert_eq!(provider.remaining(), 0);
    assert_eq!(status, JobStatus::Succeeded);

    // Rejection feedback: the 2nd and 3rd planning requests carried the reasons.
    let reqs = provider.requests();
    let plans: Vec<_> = reqs
        .iter()
        .filter(|r| &*r.model == "scripted-architect")
        .collect();
    assert_eq!(plans.len(), 3);
    assert!(!plans[0].user_text().contains(support::REJECT_1));
    assert!(plans[1].user_text().contains(support::REJECT_1));
    assert!(plans[2].user_text().contains(support::REJECT_1));
    assert!(plans[2].user_text().contains(support::REJECT_2));
    assert!(
        plans[2]
            .user_text()
            .contains("Do not propose a rejected plan again")
    );
    // The static system prompt never carries per-step data.
    assert!(!plans[2].system.contains(support::REJECT_1));

    // What was approved is what executed: one commit, replicaCount 2, nothing else.
    let values = support::app_values(&s);
    assert!(values.contains("\nreplicaCount: 2\n"), "{values}");
    assert!(
        values.contains("hpa:\n  enabled: false"),
        "rejected plans never ran"
    );
    let log = support::app_log(&s);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].contains("scale to 2 replicas"));

    // Verification deferred at least once before succeeding.
    let events = engine.events(support::JOB).await.unwrap();
    let deferred = events
        .iter()
        .filter(|e| e.action == "step.deferred")
        .count();
    assert!(deferred >= 1, "verify deferred while the cluster synced");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "no gaps"
    );
    for action in [
        "approval.rejected",
        "approval.approved",
        "tool.called",
        "job.created",
    ] {
        assert!(
            events.iter().any(|e| e.action == action),
            "{action} audited"
        );
    }
    let rejected: Vec<_> = events
        .iter()
        .filter(|e| e.action == "approval.rejected")
        .collect();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].actor, "human:user");

    // Transcripts are kept per attempt, and every tool call got exactly one result.
    let store = SqliteStateStore::open(&s.db).await.unwrap();
    for attempt in 1..=3 {
        let key = george::store::TranscriptKey {
            job: support::JOB.into(),
            step: "plan".into(),
            attempt,
        };
        let t = store
            .transcript(&key)
            .await
            .unwrap()
            .expect("transcript stored");
        let calls: usize = t
            .iter()
            .map(|m| match m {
                Message::Assistant(a) => a.tool_calls.len(),
                _ => 0,
            })
            .sum();
        let results = t
            .iter()
            .filter(|m| matches!(m, Message::Tool { .. }))
            .count();
        assert_eq!(calls, results);
    }
    // A decision on a request that is no longer open is refused.
    let err = engine
        .approve("podinfo-right-size~plan~1~1", &Approver::user("user"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), george::ErrorKind::Conflict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_engine_resumes_without_rerunning_succeeded_steps() {
    let dir = tempfile::tempdir().unwrap();
    let s = support::setup(dir.path());

    // Engine 1: investigates, submits the first plan, and is stopped while it waits.
    let p1 = ScriptedProvider::new();
    support::script_investigation(&p1);
    support::script_planning(&p1);
    let (human1, _rx_unanswered) = ChannelHuman::new();
    let e1 = support::engine(&s, p1.clone(), human1, "e1").await.unwrap();
    e1.start().await.unwrap();
    let run = e1.spawn();
    e1.wait_for(support::JOB, LIMIT, |st| st == JobStatus::AwaitingApproval)
        .await
        .unwrap();
    run.shutdown().await;
    drop(e1);
    assert_eq!(p1.requests().len(), 3, "investigate (2 calls) + plan 1");

    // Engine 2 on the same SQLite file, with a script that has NO investigation answers:
    // re-running `investigate` would be an unmatched call.
    let p2 = ScriptedProvider::new();
    p2.expect_call_where(
        "plan 2 after restart",
        |r: &george::provider::ChatRequest| {
            r.user_text().contains(support::REJECT_1).then_some(()).ok_or_else(|| "feedback lost".to_string())
        },
        george::scripted::tool_call("c", "submit_plan", serde_json::json!({
            "summary": "Change replicaCount from 5 to 2 in values.yaml.",
            "actions": [{ "tool": "app_commit", "arguments": {
                "message": "podinfo: scale to 2 replicas",
                "changes": [{ "path": support::VALUES, "find": "replicaCount: 5", "replace": "replicaCount: 2" }]
            }}]
        })),
    );
    let (human2, mut rx2) = ChannelHuman::new();
    let e2 = support::engine(&s, p2.clone(), human2, "e2").await.unwrap();
    // On start, engine 2 re-notifies the open request of attempt 1: reject it; approve the next.
    let decider = e2.clone();
    let _h = tokio::spawn(async move {
        while let Some(req) = rx2.recv().await {
            let r = if req.attempt == 1 {
                decider
                    .reject(&req.id, &Approver::user("user"), support::REJECT_1)
                    .await
            } else {
                decider
                    .approve(&req.id, &Approver::user("user"), None)
                    .await
            };
            r.expect("decision");
        }
    });
    let _c = support::spawn_cluster_sync(&s, Duration::from_millis(300));
    e2.start().await.unwrap();
    let run = e2.spawn();
    let status = e2.wait_finished(support::JOB, LIMIT).await.unwrap();
    run.shutdown().await;
    assert_eq!(p2.failures(), Vec::<String>::new());
    assert_eq!(status, JobStatus::Succeeded);

    let events = e2.events(support::JOB).await.unwrap();
    let investigate_starts = events
        .iter()
        .filter(|e| e.action == "step.started" && e.step.as_deref() == Some("investigate"))
        .count();
    assert_eq!(
        investigate_starts, 1,
        "investigate ran once, before the restart"
    );
    let job = e2.job(support::JOB).await.unwrap().unwrap();
    assert_eq!(job.step("investigate").unwrap().state, StepState::Succeeded);
    assert_eq!(job.step("investigate").unwrap().attempt, 1);
}
