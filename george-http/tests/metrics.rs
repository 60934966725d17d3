//! `/metrics` after a job was rejected twice and approved once, parsed by a Prometheus
//! text parser.

mod support;

use std::collections::HashMap;

use george_core::provider::Usage;
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use support::{ALICE, LIMIT, READER, Server};

fn costly_plan(id: &str) -> george_core::provider::ChatResponse {
    let mut r = support::plan(id, id);
    r.usage = Usage {
        input_tokens: 100,
        output_tokens: 10,
        cost_usd: 0.25,
        ..Usage::default()
    };
    r
}

async fn scrape(s: &Server) -> Scrape {
    let text = text(s).await;
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parsed")
}

async fn text(s: &Server) -> String {
    let res = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth(READER)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("application/openmetrics-text"))
    );
    res.text().await.expect("text")
}

fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{metric} {labels:?}: {:?}",
        scrape.samples.iter().map(|s| &s.metric).collect::<Vec<_>>()
    );
    match &found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
        other => panic!("{metric}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_jobs_approvals_tokens_and_cost_without_job_labels() {
    let mut s = Server::start().await;
    // The first plan (no usage) is rejected, then two costly ones: rejected, approved.
    s.provider.expect_call("plan 2", costly_plan("c2"));
    s.provider.expect_call("plan 3", costly_plan("c3"));
    for verdict in ["reject", "reject", "approve"] {
        let req = s.next_open().await;
        let body = if verdict == "reject" {
            json!({"reason": "smaller"})
        } else {
            json!({})
        };
        let (st, _) = s
            .post(
                &format!("/api/v1/approvals/{}/{verdict}", req.id),
                Some(ALICE),
                body,
            )
            .await;
        assert_eq!(st, 200);
    }
    s.engine
        .wait_finished("gated", LIMIT)
        .await
        .expect("gated ends");
    s.engine
        .wait_finished("failing", LIMIT)
        .await
        .expect("failing ends");
    let m = scrape(&s).await;

    assert_eq!(value(&m, "george_jobs", &[("status", "succeeded")]), 1.0);
    assert_eq!(value(&m, "george_jobs", &[("status", "failed")]), 1.0);
    assert_eq!(value(&m, "george_jobs", &[("status", "running")]), 0.0);
    assert_eq!(value(&m, "george_approval_requests_total", &[]), 3.0);
    assert_eq!(
        value(
            &m,
            "george_approval_decisions_total",
            &[("decision", "rejected"), ("decided_by", "human")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            "george_approval_decisions_total",
            &[("decision", "approved"), ("decided_by", "human")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "george_approval_decisions_total",
            &[("decision", "cancelled"), ("decided_by", "engine")]
        ),
        0.0
    );
    assert_eq!(value(&m, "george_approvals_open", &[]), 0.0);
    assert_eq!(
        value(
            &m,
            "george_approval_latency_seconds",
            &[("decision", "rejected")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            "george_approval_latency_seconds",
            &[("decision", "approved")]
        ),
        1.0
    );
    let planner = [
        ("agent", "planner"),
        ("provider", "default"),
        ("model", "m"),
    ];
    let with = |kind: &'static str| {
        let mut l = planner.to_vec();
        l.push(("type", kind));
        l
    };
    assert_eq!(value(&m, "george_tokens_total", &with("input")), 200.0);
    assert_eq!(value(&m, "george_tokens_total", &with("output")), 20.0);
    assert_eq!(value(&m, "george_cost_usd_total", &planner), 0.5);
    assert_eq!(value(&m, "george_step_attempts_total", &[]), 5.0);
    assert_eq!(value(&m, "george_manifest_errors", &[]), 1.0);
    assert_eq!(value(&m, "george_git_in_sync", &[]), 1.0);
    assert!(value(&m, "george_engine_reconciles_total", &[]) >= 1.0);
    assert_eq!(value(&m, "george_engine_leases_held", &[]), 0.0);
    // This engine's: the queue, step durations by mode, store commits, the lag.
    assert!(value(&m, "george_engine_queue_depth", &[]) >= 0.0);
    assert!(value(&m, "george_engine_queue_delayed", &[]) >= 0.0);
    let duration = |mode: &str| value(&m, "george_step_duration_seconds", &[("mode", mode)]);
    assert_eq!(duration("agent"), 3.0, "three planning attempts");
    assert_eq!(duration("command"), 2.0, "check and the failing step");
    assert_eq!(duration("approved"), 0.0);
    let commits = value(&m, "george_store_commit_seconds", &[]);
    assert!(commits >= 8.0, "every transition is a commit: {commits}");
    assert_eq!(value(&m, "george_git_lag_commits", &[]), 0.0);
    // The engine's histograms as Prometheus reads them: typed, cumulative, with +Inf.
    let t = text(&s).await;
    for line in [
        "# TYPE george_step_duration_seconds histogram",
        "george_step_duration_seconds_count{mode=\"command\"} 2",
        "george_step_duration_seconds_bucket{le=\"+Inf\",mode=\"agent\"} 3",
        "# TYPE george_store_commit_seconds histogram",
        "george_store_commit_seconds_bucket{le=\"0.0001\"} ",
    ] {
        assert!(t.contains(line), "{line} in\n{t}");
    }
    // Attempts by mode: the plan 3 (agent), `check` and the failing step (command).
    let mode = |m: &str| [("mode", m.to_string())];
    let by_mode = |x: &str| {
        let l = mode(x);
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        value(&m, "george_step_attempts_by_mode_total", &l)
    };
    assert_eq!(by_mode("agent"), 3.0);
    assert_eq!(by_mode("command"), 2.0);
    assert_eq!(by_mode("approved"), 0.0);
    let finished = [("template", "gated"), ("outcome", "succeeded")];
    assert_eq!(value(&m, "george_steps_finished_total", &finished), 2.0);
    let failed = [("template", "failing"), ("outcome", "failed")];
    assert_eq!(value(&m, "george_steps_finished_total", &failed), 1.0);
    // Of `gated`'s two succeeded steps, the plan needed a human; `check` did not.
    assert_eq!(
        value(
            &m,
            "george_autonomy_ratio",
            &[("template", "gated"), ("autonomy", "supervised")]
        ),
        0.5
    );
    // Nothing was decided by a policy; the success rate and cost per task by template
    // and autonomy level.
    assert_eq!(
        value(
            &m,
            "george_approval_decisions_total",
            &[("decision", "approved"), ("decided_by", "policy")]
        ),
        0.0
    );
    let job = |t: &str, o: &str| {
        value(
            &m,
            "george_jobs_finished_total",
            &[("template", t), ("autonomy", "supervised"), ("outcome", o)],
        )
    };
    assert_eq!(job("gated", "succeeded"), 1.0);
    assert_eq!(job("failing", "failed"), 1.0);
    assert_eq!(
        value(
            &m,
            "george_job_cost_usd_total",
            &[("template", "gated"), ("autonomy", "supervised")]
        ),
        0.5
    );

    // No job names as labels: label values come from fixed sets and the manifests.
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    for sample in &m.samples {
        for (k, v) in sample.labels.iter() {
            values.entry(k.clone()).or_default().push(v.clone());
        }
    }
    for (k, vs) in &values {
        assert!(
            [
                "status",
                "decision",
                "decided_by",
                "autonomy",
                "agent",
                "provider",
                "model",
                "type",
                "template",
                "outcome",
                "mode"
            ]
            .contains(&k.as_str()),
            "label {k}"
        );
        // The fixture's jobs are named like their templates: a `template` label carries
        // a template's name, never a job's.
        assert!(
            k == "template" || !vs.iter().any(|v| v == "gated" || v == "failing"),
            "{k}: {vs:?}"
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_behind_the_source_shows_in_health_and_metrics() {
    let s = Server::start().await;
    let (st, h) = s.get("/api/v1/health", Some(READER)).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(
        (&h["in_sync"], &h["lag_commits"]),
        (&json!(true), &json!(0))
    );
    // Two commits the engine has not synced yet (it polls once an hour here).
    s.git
        .commit_files("main", [("notes/a.md", "a")], "one ahead");
    let head = s
        .git
        .commit_files("main", [("notes/b.md", "b")], "two ahead");
    let (st, h) = s.get("/api/v1/health", Some(READER)).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["source_head"], head.as_str());
    assert_eq!(
        (&h["in_sync"], &h["lag_commits"]),
        (&json!(false), &json!(2))
    );
    let m = scrape(&s).await;
    assert_eq!(value(&m, "george_git_in_sync", &[]), 0.0);
    assert_eq!(value(&m, "george_git_lag_commits", &[]), 2.0);
    // Synced: no lag.
    s.engine.sync().await.expect("sync");
    let (_, h) = s.get("/api/v1/health", Some(READER)).await;
    assert_eq!(
        (&h["in_sync"], &h["lag_commits"]),
        (&json!(true), &json!(0))
    );
    assert_eq!(value(&scrape(&s).await, "george_git_lag_commits", &[]), 0.0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policys_decisions_count_as_autonomous() {
    let mut s = Server::start().await;
    let _gated = s.next_open().await;
    let template = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: auto}
spec:
  steps:
    - {id: plan, agent: planner, instructions: Plan., approval: required}
    - {id: run, depends_on: [plan], execute_approved: plan}
";
    let policy = "apiVersion: george.dev/v1alpha1
kind: Policy
metadata: {name: harmless}
spec:
  rules:
    - {name: true-only, effect: allow, tool: run_command, arguments: {program: {equals: 'true'}}}
";
    s.provider.expect_call(
        "plan auto",
        george_core::scripted::tool_call(
            "a1",
            "submit_plan",
            json!({"summary": "run true", "actions": [
                {"tool": "run_command", "arguments": {"program": "true"}}
            ]}),
        ),
    );
    s.git.commit_files(
        "main",
        [
            ("task-templates/auto.yaml", template.to_string()),
            ("policies/harmless.yaml", policy.to_string()),
            ("jobs/auto.yaml", support::job("auto", "auto", "")),
        ],
        "an auto-approved job",
    );
    s.engine.sync().await.expect("sync");
    assert_eq!(
        s.engine
            .wait_finished("auto", LIMIT)
            .await
            .expect("auto ends"),
        george_core::state::JobStatus::Succeeded
    );
    let m = scrape(&s).await;
    assert_eq!(
        value(
            &m,
            "george_approval_decisions_total",
            &[("decision", "approved"), ("decided_by", "policy")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "george_approval_latency_seconds",
            &[
                ("decision", "approved"),
                ("decided_by", "policy"),
                ("template", "auto"),
                ("autonomy", "supervised")
            ]
        ),
        1.0,
        "one observation"
    );
    assert_eq!(
        value(
            &m,
            "george_autonomy_ratio",
            &[("template", "auto"), ("autonomy", "supervised")]
        ),
        1.0,
        "a policy's approval is not a person's"
    );
    assert_eq!(
        value(
            &m,
            "george_jobs_finished_total",
            &[
                ("template", "auto"),
                ("autonomy", "supervised"),
                ("outcome", "succeeded")
            ]
        ),
        1.0
    );
    s.shutdown().await;
}
