//! The quickstart's job driven from the shell: `george serve` runs the quickstart's
//! repositories (its agents pointed at a loopback server speaking the OpenAI wire format
//! with the quickstart's answers), and a person rejects the plan twice with the seed's
//! reasons and approves the third with `george reject` / `george approve`. The job
//! succeeds, the approved change lands in the app repository, and `/metrics` counts what
//! happened.

#[path = "../../examples/support/mod.rs"]
mod support;

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Server, george, next_open, wait_status};

use george::provider::ChatResponse;
use george_llm::replay::{ReplayServer, Reply};
use serde_json::{Value, json};

const TOKEN: &str = "quickstart-token-0123456789";

/// A quickstart answer as an OpenAI chat completion (priced: model `gpt-4.1-mini`).
fn openai(r: &ChatResponse) -> String {
    let calls: Vec<Value> = r
        .message
        .tool_calls
        .iter()
        .map(|c| {
            json!({"id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments.to_string()}})
        })
        .collect();
    json!({"id": "chatcmpl-q", "object": "chat.completion", "model": "gpt-4.1-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": calls}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280}})
    .to_string()
}

fn sh(dir: &Path, program: &str, args: &[&str]) {
    let ok = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .expect(program)
        .success();
    assert!(ok, "{program} {args:?}");
}

/// The quickstart's two repositories and observed-state file under `root`.
fn scenario(root: &Path) -> support::Scenario {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let (ops, app) = (root.join("ops"), root.join("app"));
    std::fs::create_dir_all(app.join("charts")).unwrap();
    sh(
        root,
        "cp",
        &["-r", examples.join("ops-repo").to_str().unwrap(), "ops"],
    );
    let chart = examples.join("data/podinfo-chart");
    sh(
        &app,
        "cp",
        &["-r", chart.to_str().unwrap(), "charts/podinfo"],
    );
    for repo in [&ops, &app] {
        sh(repo, "git", &["init", "-q", "-b", "main"]);
        sh(repo, "git", &["add", "-A"]);
        sh(
            repo,
            "git",
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "commit",
                "-qm",
                "init",
            ],
        );
    }
    let observed = root.join("observed/replicas.txt");
    std::fs::create_dir_all(root.join("observed")).unwrap();
    std::fs::write(&observed, "replicas: 5/5\n").unwrap();
    support::Scenario {
        root: root.to_path_buf(),
        ops,
        app,
        observed,
        db: root.join("george.db"),
    }
}

fn configure(s: &support::Scenario, model_url: &str) {
    let root = &s.root;
    std::fs::write(
        root.join("providers.yaml"),
        format!("providers:\n  - name: fake\n    kind: openai\n    base_url: {model_url}/v1\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("tokens.toml"),
        format!(
            "[tokens.{}]\nuser = \"user\"\nroles = [\"admin\"]\n",
            common::sha256_hex(TOKEN)
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("george.toml"),
        "[source]\npath = \"ops\"\npoll_interval_ms = 200\n\n[store]\nsqlite = \"george.db\"\n\n\
         [providers]\nprofiles = \"providers.yaml\"\nstream = false\n\n\
         [commands]\nprograms = [\"grep\"]\ncwd = \".\"\n\n\
         [[git_write]]\nalias = \"app\"\npath = \"app\"\nbranch = \"main\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\ntokens = \"tokens.toml\"\n",
    )
    .unwrap();
}

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
    let answers: Vec<ChatResponse> = support::investigation_answers()
        .into_iter()
        .chain(support::planning_answers())
        .collect();
    let model = ReplayServer::start(
        answers
            .iter()
            .map(|a| Reply::json(200, openai(a)))
            .collect(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    support::point_agents_at(&s, "fake", "gpt-4.1-mini", None, None).unwrap();
    configure(&s, model.base_url());
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
            &format!("decision=\"{d}\""),
        )
    };
    assert_eq!(decided("rejected"), 2.0);
    assert_eq!(decided("approved"), 1.0);
    let latency = sample(
        &metrics,
        "george_approval_latency_seconds_count",
        "decision=\"approved\"",
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
