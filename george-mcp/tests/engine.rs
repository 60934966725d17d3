//! MCP tools in the engine: an agent step that reads a file through server-filesystem,
//! and a `write` MCP tool refused during a planning step (it never reaches the server),
//! then run once the plan is approved. Engine on in-memory backends with a scripted
//! model. Skipped loudly without `GEORGE_TEST_MCP_DIR`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use george_core::approval::Approver;
use george_core::engine::Engine;
use george_core::events::EventAction;
use george_core::human::ChannelHuman;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::scripted::{ScriptedProvider, last_tool_result_contains, tool_call};
use george_core::state::{ApprovalStatus, JobStatus};
use george_core::tool::{EffectClass, ToolExecutor as _};
use george_mcp::McpToolExecutor;
use serde_json::json;
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

fn files(tools: &str, approval: &str) -> Vec<(&'static str, String)> {
    let agent = format!(
        "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {{name: worker}}
spec:
  model: m
  system_prompt: You work on files.
  tools: [{tools}]
"
    );
    let mut template = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: t}
spec:
  steps:
    - id: work
      agent: worker
      instructions: Do the work.
"
    .to_string();
    if !approval.is_empty() {
        template.push_str(&format!(
            "      approval: {approval}
    - id: execute
      depends_on: [work]
      execute_approved: work
"
        ));
    }
    let job = "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: j}
spec: {template: t}
"
    .to_string();
    vec![
        ("agent-specs/worker.yaml", agent),
        ("task-templates/t.yaml", template),
        ("jobs/j.yaml", job),
    ]
}

async fn engine(
    files: Vec<(&'static str, String)>,
    provider: &ScriptedProvider,
    fs: McpToolExecutor,
) -> (
    Engine,
    tokio::sync::mpsc::UnboundedReceiver<george_core::state::ApprovalRequest>,
) {
    let git = InMemoryGitSource::new();
    git.commit_files("main", files, "c1");
    let (human, rx) = ChannelHuman::new();
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .id("e1")
        .provider("default", Arc::new(provider.clone()))
        .tools(Arc::new(fs))
        .human(Arc::new(human))
        .poll_interval(Duration::from_secs(3600))
        .build()
        .expect("engine");
    e.start().await.unwrap();
    (e, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_step_uses_an_mcp_tool() {
    let Some(dir) = mcp_dir("an_agent_step_uses_an_mcp_tool") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().canonicalize().unwrap();
    std::fs::write(root_path.join("replicas.txt"), "replicas: 3\n").unwrap();
    let fs = McpToolExecutor::connect(
        filesystem(&dir, "fs", &root_path).effect("read_text_file", EffectClass::Read),
    )
    .await
    .unwrap();
    let provider = ScriptedProvider::new();
    provider.expect_call(
        "read the file",
        tool_call(
            "c1",
            "fs_read_text_file",
            json!({"path": root_path.join("replicas.txt")}),
        ),
    );
    provider.expect_call(
        "report what it says",
        tool_call(
            "c2",
            "report_success",
            json!({"summary": "read it", "outputs": {"replicas": 3}}),
        ),
    );
    let (e, _rx) = engine(files("fs_read_text_file", ""), &provider, fs).await;
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    let requests = provider.requests();
    let offered: Vec<&str> = requests[0].tools.iter().map(|t| t.name.as_str()).collect();
    assert!(offered.contains(&"fs_read_text_file"), "{offered:?}");
    assert!(
        last_tool_result_contains(&requests[1], "replicas: 3"),
        "the model saw the file through the MCP server"
    );
    let job = e.job("j").await.unwrap().expect("stored");
    let outputs = job.steps[0].outputs.as_deref().expect("outputs");
    assert_eq!(outputs["replicas"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_mcp_tool_is_refused_while_planning() {
    let Some(dir) = mcp_dir("a_write_mcp_tool_is_refused_while_planning") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().canonicalize().unwrap();
    let target = root_path.join("scaled.txt");
    // The operator even declares write_file `read`: the server's destructiveHint
    // raises it back to `write`.
    let fs = McpToolExecutor::connect(
        filesystem(&dir, "fs", &root_path)
            .effect("read_text_file", EffectClass::Read)
            .effect("write_file", EffectClass::Read),
    )
    .await
    .unwrap();
    let write = json!({"path": target, "content": "replicas: 5\n"});
    let provider = ScriptedProvider::new();
    provider.expect_call(
        "plan: sneak a write",
        tool_call("c1", "fs_write_file", write.clone()),
    );
    provider.expect_call(
        "plan: submit it",
        tool_call(
            "c2",
            "submit_plan",
            json!({"summary": "scale to 5", "actions": [{"tool": "fs_write_file", "arguments": write}]}),
        ),
    );
    let (e, mut rx) = engine(
        files("fs_read_text_file, fs_write_file", "required"),
        &provider,
        fs,
    )
    .await;
    let run = e.spawn();
    let req = loop {
        let req = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("an approval request in time")
            .expect("channel open");
        if req.status == ApprovalStatus::Open {
            break req;
        }
    };
    assert!(!target.exists(), "the write never reached the server");
    let offered: Vec<String> = provider.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(offered.contains(&"fs_read_text_file".to_string()));
    assert!(
        !offered.contains(&"fs_write_file".to_string()),
        "{offered:?}"
    );
    let events = e.events("j").await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.action == EventAction::ToolRefused && ev.detail.contains("fs_write_file")),
        "a tool.refused event names the tool"
    );
    // Approved, the plan runs through the server.
    e.approve(&req.id, &Approver::user("alice"), None)
        .await
        .unwrap();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "replicas: 5\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_engine_picks_up_tools_a_server_adds() {
    let Some(dir) = mcp_dir("a_running_engine_picks_up_tools_a_server_adds") else {
        return;
    };
    let fx = Arc::new(
        McpToolExecutor::connect(fixture(&dir, "fx").effect("late", EffectClass::Read))
            .await
            .unwrap(),
    );
    let git = InMemoryGitSource::new();
    let (agent, template, _) = {
        let f = files("fx_late", "");
        (f[0].1.clone(), f[1].1.clone(), ())
    };
    git.commit_files(
        "main",
        [
            ("agent-specs/worker.yaml", agent.clone()),
            ("task-templates/t.yaml", template.clone()),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    provider.expect_call(
        "call the late tool",
        tool_call("c1", "fx_late", json!({"x": 21})),
    );
    provider.expect_call(
        "report",
        tool_call(
            "c2",
            "report_success",
            json!({"summary": "added", "outputs": {}}),
        ),
    );
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
        .provider("default", Arc::new(provider.clone()))
        .tools(fx.clone())
        .poll_interval(Duration::from_millis(100))
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    let offered = |e: &Engine| {
        e.catalogue()
            .tools
            .iter()
            .any(|t| t.definition.name == "fx_late")
    };
    assert!(!offered(&e), "not listed by the server yet");

    // The server adds a tool and says so (notifications/tools/list_changed); the running
    // engine's next poll takes the new list.
    let out = fx
        .call(george_core::tool::ToolInvocation::new(
            "fx_add_late_tool",
            json!({}),
            "k1",
        ))
        .await
        .unwrap();
    assert_eq!(out.content, "added");
    let deadline = std::time::Instant::now() + LIMIT;
    while !offered(&e) {
        assert!(
            std::time::Instant::now() < deadline,
            "fx_late never reached the engine"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!e.refresh_tools().unwrap(), "nothing more changed");
    // A job ordered now: its agent is offered the new tool and calls it.
    git.commit_files(
        "main",
        [
            ("agent-specs/worker.yaml", agent),
            ("task-templates/t.yaml", template),
            ("jobs/j.yaml", "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n".to_string()),
        ],
        "c2",
    );
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    let requests = provider.requests();
    let names: Vec<&str> = requests[0].tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"fx_late"), "{names:?}");
    assert!(
        last_tool_result_contains(&requests[1], "42"),
        "the late tool ran on the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_passed_to_a_server_is_redacted_from_what_george_stores() {
    let Some(dir) = mcp_dir("a_secret_passed_to_a_server_is_redacted_from_what_george_stores")
    else {
        return;
    };
    // A variable every test process has stands in for a token; it is a secret here only.
    let token = std::env::var("PATH").expect("PATH");
    let secrets = george_core::secret::KnownSecrets::new();
    let ev = McpToolExecutor::connect(
        everything(&dir, "ev")
            .without_env("PATH")
            .secret_env("PATH", &secrets)
            .expect("PATH is set")
            .effect("get-env", EffectClass::Read),
    )
    .await
    .unwrap();
    let provider = ScriptedProvider::new();
    provider.expect_call(
        "read the environment",
        tool_call("c1", "ev_get-env", json!({})),
    );
    provider.expect_call(
        "report",
        tool_call(
            "c2",
            "report_success",
            json!({"summary": "read it", "outputs": {}}),
        ),
    );
    let git = InMemoryGitSource::new();
    git.commit_files("main", files("ev_get-env", ""), "c1");
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider("default", Arc::new(provider.clone()))
        .tools(Arc::new(ev))
        .known_secrets(secrets)
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    // The server had it (the model saw the tool's answer) ...
    assert!(last_tool_result_contains(&provider.requests()[1], "PATH"));
    // ... and nothing George stored holds it.
    let transcript = e.transcript("j", "work", 1).await.unwrap().expect("stored");
    let text = serde_json::to_string(&transcript).unwrap();
    assert!(text.contains("PATH"), "{text}");
    assert!(
        !text.contains(&token),
        "the secret reached the stored transcript"
    );
    assert!(text.contains(george_core::secret::REDACTED), "{text}");
    for event in e.events("j").await.unwrap() {
        assert!(!event.detail.contains(&token), "{event:?}");
    }
}
