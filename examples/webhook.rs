//! The push webhook in front of an engine: a Git push announced by a signed
//! GitHub-style request makes the engine reconcile the new commit at once.
//!
//! What it does, on real input:
//! 1. creates a bare `ops` repository in a temporary folder (standing in for the team's
//!    repository) and pushes an agent spec, a task template and a first job to it with
//!    the `git` program;
//! 2. starts an engine following that repository (`LocalGitSource`, in-memory store,
//!    an instant model that answers every step with success) whose own poll is an hour
//!    away — only the webhook makes it look;
//! 3. serves `george::sources::webhook::router` under `/hooks` on 127.0.0.1 (`POST
//!    /hooks/github`, `POST /hooks/gitlab`);
//! 4. pushes a new job, prints the `curl` command that announces it (with the HMAC-SHA256
//!    signature computed for that exact body), sends that request itself, and shows the
//!    new job being dispatched and finishing.
//!
//! The secret comes from `GEORGE_WEBHOOK_SECRET` (a random one for this run otherwise);
//! it is never printed. With a repository on a server, build the engine over a
//! `RemoteGitSource` and pass that source to `EngineSync` instead: the webhook then
//! fetches before the engine syncs.
//!
//! Run: `cargo run --example webhook --features webhook [-- --port 8080 --serve]`
//! (`--serve` keeps serving after the self-check, so you can push and curl yourself).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use george::prelude::*;
use george::provider::{AssistantMessage, Message, ToolCall, Usage};
use george::sources::webhook::{EngineSync, WebhookConfig, WebhookSecret, router};

/// A model that answers every step with success, and says what it was asked.
#[derive(Debug)]
struct Instant;

#[async_trait]
impl Provider for Instant {
    fn name(&self) -> &str {
        "instant"
    }
    async fn complete(&self, req: ChatRequest) -> george::Result<ChatResponse> {
        if let Some(Message::User { content }) = req.messages.first() {
            let asked = content.lines().find(|l| l.starts_with("Report on"));
            println!("  model called: {:?}", asked.unwrap_or("(a step)"));
        }
        Ok(ChatResponse::new(
            AssistantMessage {
                content: None,
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "report_success".into(),
                    arguments: serde_json::json!({"summary": "done", "outputs": {}}),
                    provider_metadata: None,
                }],
            },
            Usage::default(),
        ))
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=George Example",
            "-c",
            "user.email=george@example.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn write(dir: &Path, path: &str, content: &str) -> std::io::Result<()> {
    let full = dir.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(full, content)
}

/// Commits `jobs/<name>.yaml` and pushes it; returns the new commit.
fn push_job(work: &Path, name: &str, what: &str) -> Result<String, Box<dyn std::error::Error>> {
    write(
        work,
        &format!("jobs/{name}.yaml"),
        &format!(
            "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {name}}}\nspec: {{template: report, params: {{what: \"{what}\"}}}}\n"
        ),
    )?;
    git(work, &["add", "-A"])?;
    git(work, &["commit", "-q", "-m", &format!("Order {name}")])?;
    git(work, &["push", "-q", "origin", "main"])?;
    git(work, &["rev-parse", "HEAD"])
}

fn arg_value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = arg_value("--port").map_or(Ok(0), |p| p.parse())?;
    let serve_on = std::env::args().any(|a| a == "--serve");
    let secret = std::env::var("GEORGE_WEBHOOK_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)));

    // 1. The ops repository (bare, as on a server) and a working copy.
    let dir = tempfile::tempdir()?;
    let (bare, work) = (dir.path().join("ops.git"), dir.path().join("work"));
    git(dir.path(), &["init", "-q", "--bare", "ops.git"])?;
    std::fs::create_dir_all(&work)?;
    git(&work, &["init", "-q"])?;
    git(
        &work,
        &["remote", "add", "origin", &bare.display().to_string()],
    )?;
    write(
        &work,
        "agent-specs/reporter.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: reporter}\nspec: {model: instant, system_prompt: You write short reports.}\n",
    )?;
    write(
        &work,
        "task-templates/report.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: report}\nspec:\n  parameters:\n    - {name: what, type: string}\n  steps:\n    - {id: write, agent: reporter, instructions: 'Report on {{ params.what }}.'}\n",
    )?;
    push_job(&work, "weekly-report", "the deploys of last week")?;
    println!("ops repository: {}", bare.display());

    // 2. The engine, which only looks at Git when told (or once an hour).
    let source = george::sources::LocalGitSource::open(&bare, "main")?;
    let engine = Engine::builder(
        Arc::new(InMemoryStateStore::new()),
        Arc::new(source.clone()),
    )
    .provider("default", Arc::new(Instant))
    .poll_interval(Duration::from_secs(3600))
    .build()?;
    engine.start().await?;
    for e in engine.manifest_errors() {
        println!("invalid manifest: {e}");
    }
    let run = engine.spawn();
    engine
        .wait_finished("weekly-report", Duration::from_secs(30))
        .await?;
    println!(
        "engine on commit {}; job weekly-report finished",
        engine
            .commit()
            .map(|c| c.short().to_owned())
            .unwrap_or_default()
    );

    // 3. The webhook, mounted under /hooks in "our own" server.
    let config = WebhookConfig::new("main")
        .github_secret(secret.as_str())
        .gitlab_token(secret.as_str());
    let hooks = router(config, EngineSync::new(source, engine.clone()))?;
    let app: axum::Router = axum::Router::new().nest("/hooks", hooks);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}/hooks/github", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("webhook listening: POST {url} (and .../gitlab)");

    // 4. A push, its announcement, and the engine's reaction.
    let head = push_job(&work, "nightly-report", "the alerts of last night")?;
    println!("\npushed jobs/nightly-report.yaml as {}", &head[..8]);
    let body = serde_json::json!({"ref": "refs/heads/main", "after": head, "repository": {"full_name": "team/ops"}}).to_string();
    let signature = WebhookSecret::from(secret.as_str()).github_signature(body.as_bytes());
    println!(
        "announce it (this is what GitHub sends):\n  curl -i -X POST {url} \\\n    -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \\\n    -H 'X-Hub-Signature-256: {signature}' \\\n    --data-binary '{body}'"
    );

    let t = std::time::Instant::now();
    let res = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", &signature)
        .body(body)
        .send()
        .await?;
    println!(
        "\nself-check: sent it; the handler answered {} in {:?}",
        res.status(),
        t.elapsed()
    );
    let status = engine
        .wait_finished("nightly-report", Duration::from_secs(30))
        .await?;
    let job = engine
        .job("nightly-report")
        .await?
        .ok_or("the job is missing")?;
    println!(
        "job nightly-report: {status:?}, built from commit {} ({:?} after the request)",
        &job.commit[..8],
        t.elapsed()
    );
    for e in engine.events("nightly-report").await? {
        println!("  event {:>2} {:<16} {}", e.seq, e.action, e.detail);
    }
    let forged = reqwest::Client::new()
        .post(&url)
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", "sha256=0000")
        .body("{}")
        .send()
        .await?;
    println!("a request with a wrong signature gets {}", forged.status());

    if serve_on {
        println!(
            "\nserving until Ctrl-C; push to {} and sign your requests with GEORGE_WEBHOOK_SECRET",
            bare.display()
        );
        server.await??;
    }
    run.shutdown().await;
    Ok(())
}
