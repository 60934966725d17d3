//! The quickstart's scenario for `george serve`: its two repositories, its agents pointed
//! at a loopback server speaking the OpenAI wire format with the quickstart's five
//! answers, and a config file. Shared by `quickstart.rs` (driven from the shell) and
//! `dashboard_e2e.rs` (driven from a browser); both include `examples/support` as
//! `support` next to this module.

use std::path::Path;
use std::process::Command;

use george::provider::ChatResponse;
use george_llm::replay::{ReplayServer, Reply};
use serde_json::{Value, json};

use crate::support;

/// A quickstart answer as an OpenAI chat completion (priced: model `gpt-4.1-mini`).
pub fn openai(r: &ChatResponse) -> String {
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

/// A loopback model answering the quickstart's investigation, then its three plans.
pub async fn model() -> ReplayServer {
    let answers: Vec<ChatResponse> = support::investigation_answers()
        .into_iter()
        .chain(support::planning_answers())
        .collect();
    ReplayServer::start(
        answers
            .iter()
            .map(|a| Reply::json(200, openai(a)))
            .collect(),
    )
    .await
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
pub fn scenario(root: &Path) -> support::Scenario {
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

/// One entry of a token file: `token`'s hash for `user` with `role`.
pub fn token_entry(token: &str, user: &str, role: &str) -> String {
    format!(
        "[tokens.{}]\nuser = \"{user}\"\nroles = [\"{role}\"]\n",
        crate::common::sha256_hex(token)
    )
}

/// Writes `providers.yaml` (profile `fake` at `model_url`), `tokens.toml` (`tokens`, a
/// token file's text) and `george.toml` under the scenario's root.
pub fn configure(s: &support::Scenario, model_url: &str, tokens: &str) {
    let root = &s.root;
    std::fs::write(
        root.join("providers.yaml"),
        format!("providers:\n  - name: fake\n    kind: openai\n    base_url: {model_url}/v1\n"),
    )
    .unwrap();
    std::fs::write(root.join("tokens.toml"), tokens).unwrap();
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
