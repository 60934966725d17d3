//! Embeddability: a provider written outside the crate, as a user would, runs the
//! quickstart's job end to end. The provider itself (between the markers) is the
//! ≤ 30-line goal of issue 9 §7: it decides from the request's structured context.

#[path = "../examples/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use george::outcome;
use george::prelude::*;
use serde_json::json;

// --- the provider: under 30 lines, markers included ---
#[derive(Debug)]
struct RuleBased;

#[async_trait::async_trait]
impl Provider for RuleBased {
    fn name(&self) -> &str {
        "rule-based"
    }
    async fn complete(&self, req: ChatRequest) -> george::Result<ChatResponse> {
        let step = req.context.as_ref().map_or("", |c| c.step.as_str());
        let call = match step {
            "investigate" => {
                outcome::report_success("5, no HPA", json!({"replicas": 5, "hpa_enabled": false}))
            }
            _ => outcome::submit_plan(
                "scale to 2",
                vec![outcome::action(
                    "app_commit",
                    json!({"message": "podinfo: 2 replicas",
                "changes": [{"path": support::VALUES, "find": "replicaCount: 5", "replace": "replicaCount: 2"}]}),
                )],
            ),
        };
        Ok(ChatResponse::tool_calls(vec![call]))
    }
}
// --- end of the provider ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_from_outside_the_crate_runs_the_quickstart_job() {
    let dir = tempfile::tempdir().unwrap();
    let s = support::setup(dir.path());
    let (human, mut rx) = ChannelHuman::new();
    let engine = support::engine_with(&s, human, "e1", |b| {
        b.provider("default", Arc::new(RuleBased))
    })
    .await
    .unwrap();
    let decider = engine.clone();
    let _h = tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            decider
                .approve(&req.id, &Approver::user("alice"), None)
                .await
                .expect("approve");
        }
    });
    let _c = support::spawn_cluster_sync(&s, Duration::from_millis(200));
    engine.start().await.unwrap();
    let run = engine.spawn();
    let status = engine
        .wait_finished(support::JOB, Duration::from_secs(60))
        .await
        .unwrap();
    run.shutdown().await;
    assert_eq!(status, JobStatus::Succeeded);
    assert!(support::app_values(&s).contains("replicaCount: 2"));
}
