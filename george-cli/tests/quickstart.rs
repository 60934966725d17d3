//! The quickstart's job driven from the shell: `george serve` runs the quickstart's
//! repositories (its agents pointed at a loopback server speaking the OpenAI wire format
//! with the quickstart's answers), and a person rejects the plan twice with the seed's
//! reasons and approves the third with `george reject` / `george approve`. The job
//! succeeds, the approved change lands in the app repository, and `/metrics` counts what
//! happened.

#[path = "../../examples/support/mod.rs"]
mod support;

mod common;
#[path = "common/quickstart.rs"]
mod quickstart;

use std::time::Duration;

use common::{Server, george, next_open, wait_status};
use quickstart::{configure, scenario, token_entry};

const TOKEN: &str = "quickstart-token-0123456789";

/// The value of the sample `name` (with exactly `labels`, rendered as Prometheus does).
fn sample(metrics: &str, name: &str, labels: &str) -> f64 {
    let key = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {key} in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_job_is_driven_from_the_shell() {
    let model = quickstart::model().await;
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    support::point_agents_at(&s, "fake", "gpt-4.1-mini", None, None).unwrap();
    configure(&s, model.base_url(), &token_entry(TOKEN, "user", "admin"));
    let _cluster = support::spawn_cluster_sync(&s, Duration::from_millis(300));

    let (server, url) = Server::start(&s.root.join("george.toml"), &[]);

    let u = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for reason in [support::REJECT_1, support::REJECT_2] {
            let id = next_open(&u, TOKEN, &seen);
            let (code, _, err) = george(&u, TOKEN, &["reject", &id, "--reason", reason]);
            assert_eq!(code, 0, "{err}");
            seen.push(id);
        }
        let id = next_open(&u, TOKEN, &seen);
        let (code, out, _) = george(&u, TOKEN, &["show", "approval", &id]);
        assert_eq!(code, 0);
        assert!(out.contains("app_commit"), "{out}");
        // The human sees the change the plan would make, as a diff.
        assert!(
            out.contains("-replicaCount: 5") && out.contains("+replicaCount: 2"),
            "{out}"
        );
        let (code, _, err) = george(
            &u,
            TOKEN,
            &["approve", &id, "--note", "static scaling, go ahead"],
        );
        assert_eq!(code, 0, "{err}");
        wait_status(&u, TOKEN, support::JOB, "succeeded");
    })
    .await
    .unwrap();
    assert!(
        support::app_values(&s).contains("replicaCount: 2"),
        "the approved change landed"
    );
    assert_eq!(
        model.received().len(),
        5,
        "five model calls, as in the quickstart"
    );

    let metrics = reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sample(&metrics, "george_approval_requests_total", ""), 3.0);
    let decided = |d: &str| {
        sample(
            &metrics,
            "george_approval_decisions_total",
            &format!("decision=\"{d}\",decided_by=\"human\""),
        )
    };
    assert_eq!(decided("rejected"), 2.0);
    assert_eq!(decided("approved"), 1.0);
    let latency = sample(
        &metrics,
        "george_approval_latency_seconds_count",
        "decision=\"approved\",decided_by=\"human\",template=\"right-size-service\",autonomy=\"supervised\"",
    );
    assert_eq!(latency, 1.0);
    let tokens: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("george_tokens_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(tokens, 5.0 * 1280.0, "five calls of 1,200 + 80 tokens");
    let cost: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("george_cost_usd_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(cost > 0.0, "priced from the price table: {cost}");
    server.stop();
}
