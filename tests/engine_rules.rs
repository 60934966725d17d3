//! Engine rules on in-memory backends: capability checks, refused tool calls, one
//! commit → one job reconciled, removal, invalid manifests that do not stop the others.

use std::sync::Arc;
use std::time::Duration;

use george::prelude::*;
use george::provider::Message;
use george::scripted::{tool_call, tool_calls};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);

const AGENT: &str = "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: reader}
spec:
  model: m
  system_prompt: You read.
  tools: [run_command]
";

fn template(tools: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {{name: t}}
spec:
  parameters:
    - {{name: n, type: integer}}
  steps:
    - id: work
      agent: reader
      tools: [{tools}]
      instructions: Do item {{{{ params.n }}}}.
"
    )
}

fn echo_template() -> &'static str {
    "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: echo}
spec:
  parameters:
    - {name: n, type: integer}
  steps:
    - id: a
      command: {program: echo, args: ['{{ params.n }}']}
    - id: b
      depends_on: [a]
      command: {program: echo, args: ['b{{ steps.a.outputs.stdout }}']}
"
}

fn job(name: &str, template: &str, n: i64) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec: {{template: {template}, params: {{n: {n}}}}}
"
    )
}

fn engine(git: &InMemoryGitSource, provider: ScriptedProvider) -> Engine {
    Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
        .provider("default", Arc::new(provider))
        .commands(CommandToolExecutor::new(["echo"]))
        .poll_interval(Duration::from_millis(50))
        .build()
        .expect("engine")
}

#[tokio::test]
async fn a_step_needing_a_tool_the_agent_lacks_is_blocked_with_the_reason() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/reader.yaml", AGENT.to_string()),
            (
                "task-templates/t.yaml",
                template("run_command, kubectl_apply"),
            ),
            ("jobs/j.yaml", job("j", "t", 1)),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    let e = engine(&git, provider.clone());
    e.start().await.unwrap();
    let run = e.spawn();
    let status = e.wait_finished("j", LIMIT).await.unwrap();
    assert_eq!(status, JobStatus::Blocked);

    // Removing the manifest of an unfinished job cancels it.
    git.commit("main", [("jobs/j.yaml", None::<&str>)], "remove j");
    e.sync().await.unwrap();
    let cancelled = e
        .wait_for("j", LIMIT, |s| s == JobStatus::Cancelled)
        .await
        .unwrap();
    assert_eq!(cancelled, JobStatus::Cancelled);
    run.shutdown().await;
    let rec = e.job("j").await.unwrap().unwrap();
    assert!(rec.removed);
    let msg = rec.steps[0].message.clone().unwrap_or_default();
    assert!(msg.contains("lacks tool \"kubectl_apply\""), "{msg}");
    assert!(
        provider.requests().is_empty(),
        "no model call for a step that cannot run"
    );
    let events = e.events("j").await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.action == "step.blocked" && ev.detail.contains("kubectl_apply"))
    );
}

#[tokio::test]
async fn a_tool_call_outside_the_allowlist_gets_an_error_result() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/reader.yaml", AGENT.to_string()),
            ("task-templates/t.yaml", template("run_command")),
            ("jobs/j.yaml", job("j", "t", 1)),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    // Two calls in one turn: one refused (not allowed), one allowed.
    provider.expect_call(
        "forbidden + allowed",
        tool_calls(vec![
            ("c1", "delete_cluster", json!({})),
            (
                "c2",
                "run_command",
                json!({"program": "echo", "args": ["hi"]}),
            ),
        ]),
    );
    provider.expect_call_where(
        "report",
        |r: &ChatRequest| {
            let refused = r.messages.iter().any(|m| {
                matches!(m,
                Message::Tool { tool_call_id, is_error: true, content, .. }
                    if tool_call_id == "c1" && content.contains("not allowed"))
            });
            refused
                .then_some(())
                .ok_or_else(|| "c1 must get an error result".into())
        },
        tool_call(
            "c3",
            "report_success",
            json!({"summary": "ok", "outputs": {"n": 1}}),
        ),
    );
    let e = engine(&git, provider.clone());
    e.start().await.unwrap();
    let run = e.spawn();
    let status = e.wait_finished("j", LIMIT).await.unwrap();
    run.shutdown().await;
    assert_eq!(provider.failures(), Vec::<String>::new());
    assert_eq!(status, JobStatus::Succeeded);
    let events = e.events("j").await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.action == "tool.refused" && ev.detail.contains("delete_cluster"))
    );
}

#[tokio::test]
async fn a_commit_that_changes_one_job_reconciles_one_job() {
    let git = InMemoryGitSource::new();
    let mut files = vec![(
        "task-templates/echo.yaml".to_string(),
        echo_template().to_string(),
    )];
    for i in 0..50 {
        files.push((format!("jobs/j{i}.yaml"), job(&format!("j{i}"), "echo", i)));
    }
    git.commit_files("main", files, "c1");
    let e = engine(&git, ScriptedProvider::new());
    e.start().await.unwrap();
    let run = e.spawn();
    for i in 0..50 {
        assert_eq!(
            e.wait_finished(&format!("j{i}"), LIMIT).await.unwrap(),
            JobStatus::Succeeded
        );
    }
    let j7 = e.job("j7").await.unwrap().unwrap();
    assert_eq!(j7.steps[1].outputs.as_ref().unwrap()["stdout"], "b7\n\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = e.stats().reconciles;

    git.commit_files(
        "main",
        [("jobs/j7.yaml", job("j7", "echo", 700))],
        "edit j7",
    );
    e.sync().await.unwrap();
    for _ in 0..200 {
        let j = e.job("j7").await.unwrap().unwrap();
        if j.generation == 2 && j.status == JobStatus::Succeeded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = e.stats().reconciles;
    run.shutdown().await;
    let j7 = e.job("j7").await.unwrap().unwrap();
    assert_eq!(j7.generation, 2);
    let used = after - before;
    assert!(
        used <= 10,
        "one edited job: {used} reconciles (50 jobs exist)"
    );
    let j8 = e.job("j8").await.unwrap().unwrap();
    assert_eq!(j8.generation, 1);
}

#[tokio::test]
async fn an_invalid_manifest_does_not_stop_the_others() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("task-templates/echo.yaml", echo_template().to_string()),
            ("jobs/good.yaml", job("good", "echo", 1)),
            ("jobs/bad.yaml", job("bad", "no-such-template", 1)),
            (
                "jobs/broken.yaml",
                "kind: Job\nmetadata: {name: [\n".to_string(),
            ),
        ],
        "c1",
    );
    let e = engine(&git, ScriptedProvider::new());
    e.start().await.unwrap();
    let errs = e.manifest_errors();
    assert!(
        errs.iter()
            .any(|x| x.path == "jobs/bad.yaml" && x.field == "spec.template"),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|x| x.path == "jobs/broken.yaml"),
        "{errs:?}"
    );
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("good", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert!(e.job("bad").await.unwrap().is_none());

    git.commit("main", [("jobs/good.yaml", None::<&str>)], "remove good");
    e.sync().await.unwrap();
    let mut rec = e.job("good").await.unwrap().unwrap();
    for _ in 0..200 {
        if rec.removed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        rec = e.job("good").await.unwrap().unwrap();
    }
    assert!(rec.removed, "a removed job is marked removed");
    assert_eq!(
        rec.status,
        JobStatus::Succeeded,
        "a finished job keeps its result"
    );
    run.shutdown().await;
}

fn retry_template() -> String {
    "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: t}
spec:
  parameters:
    - {name: n, type: integer}
  steps:
    - id: work
      agent: reader
      instructions: Do item {{ params.n }}.
      retry: {attempts: 3, backoff_ms: 20, max_backoff_ms: 100}
"
    .to_string()
}

#[tokio::test]
async fn transient_provider_errors_are_retried_with_backoff_terminal_ones_never() {
    use george::ErrorKind;
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/reader.yaml", AGENT.to_string()),
            ("task-templates/t.yaml", retry_template()),
            ("jobs/flaky.yaml", job("flaky", "t", 1)),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    provider.expect_error("429", ErrorKind::RateLimited, "slow down");
    provider.expect_call(
        "ok",
        tool_call(
            "c",
            "report_success",
            json!({"summary": "ok", "outputs": {}}),
        ),
    );
    let e = engine(&git, provider.clone());
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("flaky", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    let rec = e.job("flaky").await.unwrap().unwrap();
    assert_eq!(rec.steps[0].attempt, 2, "one retry after the rate limit");
    let events = e.events("flaky").await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.action == "step.failed" && ev.detail.contains("retry in"))
    );
    run.shutdown().await;

    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/reader.yaml", AGENT.to_string()),
            ("task-templates/t.yaml", retry_template()),
            ("jobs/bad.yaml", job("bad", "t", 1)),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    provider.expect_error("401", ErrorKind::Unauthenticated, "bad key");
    let e = engine(&git, provider.clone());
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("bad", LIMIT).await.unwrap(),
        JobStatus::Failed
    );
    let rec = e.job("bad").await.unwrap().unwrap();
    assert_eq!(rec.steps[0].attempt, 1, "a terminal error is never retried");
    run.shutdown().await;
}

#[tokio::test]
async fn concurrency_limit_per_job_is_respected() {
    let git = InMemoryGitSource::new();
    let t = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: wide}
spec:
  steps:
    - {id: a, command: {program: sleep, args: ['0.2']}}
    - {id: b, command: {program: sleep, args: ['0.2']}}
    - {id: c, command: {program: sleep, args: ['0.2']}}
";
    git.commit_files(
        "main",
        [
            ("task-templates/wide.yaml", t.to_string()),
            (
                "jobs/w.yaml",
                "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: w}\nspec: {template: wide, max_parallel_steps: 1}\n".to_string(),
            ),
        ],
        "c1",
    );
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
        .commands(CommandToolExecutor::new(["sleep"]))
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    let mut max_running = 0;
    for _ in 0..200 {
        let rec = e.job("w").await.unwrap();
        if let Some(rec) = rec {
            let n = rec
                .steps
                .iter()
                .filter(|s| matches!(s.state, george::state::StepState::Running { .. }))
                .count();
            max_running = max_running.max(n);
            if rec.status == JobStatus::Succeeded {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        e.wait_finished("w", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(max_running, 1, "max_parallel_steps: 1");
    run.shutdown().await;
}

#[tokio::test]
async fn a_removed_job_kept_by_policy_runs_to_the_end() {
    let git = InMemoryGitSource::new();
    let t = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: slow}
spec:
  steps:
    - {id: a, command: {program: sleep, args: ['0.3']}}
    - {id: b, depends_on: [a], command: {program: sleep, args: ['0.1']}}
";
    git.commit_files(
        "main",
        [
            ("task-templates/slow.yaml", t.to_string()),
            (
                "jobs/k.yaml",
                "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: k}\nspec: {template: slow, on_removal: keep}\n".to_string(),
            ),
        ],
        "c1",
    );
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
        .commands(CommandToolExecutor::new(["sleep"]))
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    e.wait_for("k", LIMIT, |s| s == JobStatus::Running)
        .await
        .unwrap();
    git.commit("main", [("jobs/k.yaml", None::<&str>)], "remove k");
    e.sync().await.unwrap();
    assert_eq!(
        e.wait_finished("k", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    let rec = e.job("k").await.unwrap().unwrap();
    assert!(rec.removed);
    run.shutdown().await;
}

#[tokio::test]
async fn an_agent_that_reports_blocked_stops_and_says_why_with_a_mock_provider() {
    use george::provider::MockProvider;
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/reader.yaml", AGENT.to_string()),
            ("task-templates/t.yaml", template("run_command")),
            ("jobs/j.yaml", job("j", "t", 1)),
        ],
        "c1",
    );
    let mut mock = MockProvider::new();
    mock.expect_name().return_const("mock".to_string());
    mock.expect_complete()
        .times(1)
        .withf(|r: &ChatRequest| &*r.system == "You read." && r.user_text().contains("Do item 1."))
        .returning(|_| {
            Ok(tool_call(
                "c1",
                "report_blocked",
                json!({"reason": "the cluster is unreachable"}),
            ))
        });
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider("default", Arc::new(mock))
        .commands(CommandToolExecutor::new(["echo"]))
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Blocked
    );
    let rec = e.job("j").await.unwrap().unwrap();
    assert_eq!(
        rec.steps[0].message.as_deref(),
        Some("the cluster is unreachable")
    );
    run.shutdown().await;
}

/// An embedder's own executor of `run_command` (a sandbox) runs command steps: they go
/// through the `ToolExecutor` trait, with the step's context and a per-attempt key.
#[tokio::test]
async fn command_steps_run_through_the_registered_run_command_executor() {
    #[derive(Debug, Default, Clone)]
    struct Sandbox(Arc<std::sync::Mutex<Vec<george::tool::ToolInvocation>>>);
    #[async_trait::async_trait]
    impl ToolExecutor for Sandbox {
        fn tools(&self) -> Vec<george::tool::ToolDefinition> {
            vec![george::tool::ToolDefinition::new(
                george::command::RUN_COMMAND,
                "Runs a program in a sandbox.",
                json!({"type": "object"}),
            )]
        }
        async fn call(
            &self,
            inv: george::tool::ToolInvocation,
        ) -> george::Result<george::tool::ToolOutput> {
            let program = inv.arguments["program"].as_str().unwrap_or("").to_string();
            self.0.lock().unwrap().push(inv);
            if program == "rm" {
                return Ok(george::tool::ToolOutput::error("the sandbox refuses rm"));
            }
            Ok(george::tool::ToolOutput::ok("sandboxed").with_data(
                json!({"exit_code": 0, "stdout": format!("sandboxed {program}"), "stderr": ""}),
            ))
        }
    }
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("task-templates/echo.yaml", echo_template().to_string()),
            ("jobs/j.yaml", job("j", "echo", 7)),
        ],
        "c1",
    );
    let sandbox = Sandbox::default();
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
        .tools(Arc::new(sandbox.clone()))
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    let calls = sandbox.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].idempotency_key, "j/a/1/command");
    assert_eq!(calls[0].context.step, "a");
    assert_eq!(
        calls[0].arguments,
        json!({"program": "echo", "args": ["7"]})
    );
    let rec = e.job("j").await.unwrap().unwrap();
    assert_eq!(
        rec.step("b").unwrap().outputs.as_ref().unwrap()["stdout"],
        "sandboxed echo"
    );

    // A refusal by the executor blocks the step with its reason.
    let refused = echo_template()
        .replace("name: echo", "name: rm")
        .replace("program: echo, args: ['b", "program: rm, args: ['b");
    git.commit_files(
        "main",
        [
            ("task-templates/rm.yaml", refused),
            ("jobs/k.yaml", job("k", "rm", 1)),
        ],
        "c2",
    );
    e.sync().await.unwrap();
    let run = e.spawn();
    let status = e.wait_finished("k", LIMIT).await.unwrap();
    run.shutdown().await;
    assert_eq!(status, JobStatus::Blocked);
    let rec = e.job("k").await.unwrap().unwrap();
    assert_eq!(
        rec.step("b").unwrap().message.as_deref(),
        Some("the sandbox refuses rm")
    );
}

/// Two executors providing a tool of the same name, or an effect class for a tool no
/// executor has, are refused when the engine is built (not resolved by registration order).
#[test]
fn duplicate_tool_names_are_an_error_at_build() {
    let git = InMemoryGitSource::new();
    let build = |b: george::engine::EngineBuilder| b.build().map(|_| ()).unwrap_err();
    let err = build(
        Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
            .commands(CommandToolExecutor::new(["echo"]))
            .commands(CommandToolExecutor::new(["rm"])),
    );
    assert_eq!(err.kind(), george::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"run_command\""), "{err}");
    let err = build(
        Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
            .effect_class("kubectl_get", EffectClass::Read),
    );
    assert!(err.to_string().contains("kubectl_get"), "{err}");
}
