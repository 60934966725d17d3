//! `GET /api/v1/approvals/{id}` shows what each planned action would change: the tool's
//! preview (a unified diff of the files) beside the plan, computed without calling the
//! tool; an action whose tool cannot preview has none.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use george_core::command::CommandToolExecutor;
use george_core::engine::Engine;
use george_core::human::ChannelHuman;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::scripted::{ScriptedProvider, tool_call};
use george_core::state::ApprovalStatus;
use george_core::tool::{
    EffectClass, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput, ToolPreview,
};
use serde_json::json;
use support::{ALICE, LIMIT, READER, answer, auth, job};

const AGENT: &str = "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: planner}
spec: {model: m, system_prompt: You plan., tools: [write_file, run_command]}
";

const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: edit}
spec:
  steps:
    - {id: plan, agent: planner, instructions: Plan., approval: required}
    - {id: apply, depends_on: [plan], execute_approved: plan}
";

/// A file-writing tool, implemented outside the crates as a user would: its preview is
/// the diff of the one file it writes; it counts its calls.
#[derive(Debug, Default)]
struct Files {
    calls: AtomicUsize,
}

#[async_trait]
impl ToolExecutor for Files {
    fn tools(&self) -> Vec<ToolDefinition> {
        vec![ToolDefinition::new(
            "write_file",
            "Writes a file.",
            json!({"type": "object"}),
        )]
    }

    async fn call(&self, _: ToolInvocation) -> george_core::Result<ToolOutput> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(ToolOutput::ok("written"))
    }

    async fn preview(&self, inv: &ToolInvocation) -> george_core::Result<Option<ToolPreview>> {
        let path = inv.arguments["path"].as_str().unwrap_or("?");
        let content = inv.arguments["content"].as_str().unwrap_or_default();
        Ok(Some(
            ToolPreview::new(format!("would write `{path}` ({})", inv.idempotency_key))
                .with_diff(format!(
                    "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-old\n+{content}\n"
                )),
        ))
    }
}

#[tokio::test]
async fn an_approval_shows_the_diff_of_each_action() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        vec![
            ("agent-specs/planner.yaml", AGENT.to_string()),
            ("task-templates/edit.yaml", TEMPLATE.to_string()),
            ("jobs/edit.yaml", job("edit", "edit", "")),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    let actions = json!([
        {"tool": "write_file", "arguments": {"path": "app.yaml", "content": "replicas: 3"}},
        {"tool": "run_command", "arguments": {"program": "true"}}
    ]);
    provider.expect_call(
        "plan",
        tool_call(
            "c1",
            "submit_plan",
            json!({"summary": "scale", "actions": actions}),
        ),
    );
    let files = Arc::new(Files::default());
    let (human, mut requests) = ChannelHuman::new();
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider("default", Arc::new(provider))
        .tools(files.clone())
        .effect_class("write_file", EffectClass::Write)
        .commands(CommandToolExecutor::new(["true"]))
        .human(Arc::new(human))
        .poll_interval(Duration::from_secs(3600))
        .build()
        .expect("engine");
    let app = axum::Router::new().nest("/ops", george_http::router(engine.clone(), auth()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/ops", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    engine.start().await.expect("start");
    let run = engine.spawn();
    let req = loop {
        let r = tokio::time::timeout(LIMIT, requests.recv())
            .await
            .expect("a request in time")
            .expect("open channel");
        if r.status == ApprovalStatus::Open {
            break r;
        }
    };

    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/approvals/{}", req.id);
    let (status, detail) = answer(
        http.get(&url)
            .bearer_auth(READER)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    let previews = detail["previews"].as_array().expect("previews");
    assert_eq!(previews.len(), 2, "{detail}");
    assert_eq!(previews[0]["index"], 1);
    assert_eq!(previews[0]["tool"], "write_file");
    let first = &previews[0]["preview"];
    assert_eq!(
        first["summary"],
        format!("would write `app.yaml` ({}/1)", req.id),
        "built as the approved action"
    );
    assert_eq!(
        first["diff"],
        "diff --git a/app.yaml b/app.yaml\n--- a/app.yaml\n+++ b/app.yaml\n@@ -1 +1 @@\n-old\n+replicas: 3\n"
    );
    assert_eq!(
        (&first["is_error"], &first["truncated"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(previews[1]["tool"], "run_command");
    assert!(previews[1].get("preview").is_none(), "no preview: {detail}");
    assert!(previews[1].get("error").is_none(), "{detail}");
    assert_eq!(
        files.calls.load(Ordering::SeqCst),
        0,
        "a preview calls nothing"
    );

    // A decision's answer carries no previews; the plan then runs once.
    let (status, decided) = answer(
        http.post(format!("{url}/approve"))
            .bearer_auth(ALICE)
            .header("content-type", "application/json")
            .body(json!({"digest": req.digest}).to_string())
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["previews"], json!([]));
    run.shutdown().await;
}
