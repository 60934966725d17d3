//! The command boundary, attacked the way a model's tool calls would: a secret in the
//! engine's environment, options that make an allowed program run a shell, and children
//! that outlive their timeout. (The memory bound is in `boundaries_command_memory.rs`,
//! alone in its binary so that nothing else moves the process's peak.)

use std::sync::Arc;
use std::time::Duration;

use george_core::command::{ArgPolicy, CommandToolExecutor};
use george_core::engine::Engine;
use george_core::error::ErrorKind;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::outcome;
use george_core::provider::ChatResponse;
use george_core::scripted::{ScriptedProvider, tool_call};
use george_core::state::JobStatus;
use george_core::tool::{ToolExecutor, ToolInvocation};
use serde_json::json;

const SECRET_VAR: &str = "GEORGE_BOUNDARY_DB_PASSWORD";
const SECRET: &str = "s3cr3t-db-password-0451";

fn files() -> Vec<(&'static str, String)> {
    vec![
        (
            "agent-specs/a.yaml",
            "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: a}
spec: {model: m, system_prompt: You look., tools: [run_command]}
"
            .into(),
        ),
        (
            "task-templates/t.yaml",
            "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: t}
spec:
  steps:
    - {id: look, agent: a, instructions: Look around.}
"
            .into(),
        ),
        (
            "jobs/j.yaml",
            "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: j}
spec: {template: t}
"
            .into(),
        ),
    ]
}

/// Runs job `j` whose agent makes `call` (a `run_command` call) and then succeeds;
/// returns the model's second request (it carries the tool result).
async fn run_agent_call(commands: CommandToolExecutor, call: serde_json::Value) -> String {
    let git = InMemoryGitSource::new();
    git.commit_files("main", files(), "c1");
    let provider = ScriptedProvider::new();
    provider.expect_call("call", tool_call("c1", "run_command", call));
    provider.expect_call(
        "done",
        ChatResponse::tool_calls(vec![outcome::report_success("done", json!({}))]),
    );
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider("default", Arc::new(provider.clone()))
        .commands(commands)
        .build()
        .expect("engine");
    engine.start().await.expect("start");
    let run = engine.spawn();
    let status = engine.wait_finished("j", Duration::from_secs(20)).await;
    let Ok(status) = status else {
        panic!(
            "not finished: {:#?} {:?}",
            engine.manifest_errors(),
            provider.failures()
        );
    };
    run.shutdown().await;
    assert_eq!(status, JobStatus::Succeeded);
    let requests = provider.requests();
    let second = requests.get(1).expect("a second model request");
    serde_json::to_string(&second.messages).expect("json")
}

#[tokio::test]
async fn a_tool_call_cannot_read_the_engines_secrets() {
    // SAFETY: set before any child is spawned; this binary's tests never read it back
    // from another thread.
    unsafe { std::env::set_var(SECRET_VAR, SECRET) };
    let commands = CommandToolExecutor::new(["printenv"]);
    let transcript = run_agent_call(
        commands.clone(),
        json!({"program": "printenv", "args": [SECRET_VAR]}),
    )
    .await;
    assert!(!transcript.contains(SECRET), "{transcript}");
    // And the whole environment holds only the declared variables.
    let all = commands.run("printenv", &[]).await.expect("printenv");
    assert!(!all.stdout.contains(SECRET));
    for line in all.stdout.lines() {
        let name = line.split('=').next().unwrap_or_default();
        assert!(
            george_core::command::DEFAULT_PASSED_ENV.contains(&name),
            "{name} reached the child"
        );
    }
    // A variable the operator passes on purpose does reach it.
    let passed = commands.pass_env(SECRET_VAR);
    let o = passed.run("printenv", &[SECRET_VAR.into()]).await.unwrap();
    assert_eq!(o.stdout.trim(), SECRET);
}

#[tokio::test]
async fn git_config_alias_cannot_run_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let git = CommandToolExecutor::new(["git"]).with_cwd(dir.path());
    git.run("git", &["init".into(), "-q".into()]).await.unwrap();
    let alias = format!("alias.x=!touch {}", marker.display());
    let transcript = run_agent_call(
        git.clone(),
        json!({"program": "git", "args": ["-c", alias, "x"]}),
    )
    .await;
    assert!(transcript.contains("refused"), "{transcript}");
    assert!(!marker.exists(), "the alias ran");
    // The two-call variant: write the alias to the repository's config, then run it.
    let e = git
        .run(
            "git",
            &[
                "config".into(),
                "alias.x".into(),
                format!("!touch {}", marker.display()),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("subcommand \"config\""), "{e}");
    for args in [
        vec!["fetch", "--upload-pack=touch /tmp/x", "origin"],
        vec!["-c", "core.sshCommand=touch /tmp/x", "fetch"],
        vec!["--config-env=core.pager=X", "log"],
        vec!["rebase", "-x", "touch /tmp/x", "HEAD"],
    ] {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let e = git.run("git", &args).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{args:?}");
    }
    assert!(!marker.exists());
}

#[tokio::test]
async fn find_exec_and_program_runners_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let ex = CommandToolExecutor::new(["find", "env", "xargs", "sh"]).with_cwd(dir.path());
    for (program, args) in [
        ("find", vec![".", "-exec", "touch", "pwned", ";"]),
        ("find", vec![".", "-execdir", "touch", "pwned", ";"]),
        ("find", vec![".", "-ok", "touch", "pwned", ";"]),
        ("env", vec!["touch", "pwned"]),
        ("xargs", vec!["touch"]),
        ("sh", vec!["-c", "touch pwned"]),
        ("sh", vec!["-ec", "touch pwned"]),
    ] {
        let out = ex
            .call(ToolInvocation::new(
                "run_command",
                json!({"program": program, "args": args}),
                "k",
            ))
            .await
            .unwrap();
        assert!(out.is_error, "{program} {args:?}");
        assert!(out.content.contains("refused"), "{}", out.content);
    }
    assert!(!marker.exists());
    // A plain find still works, and an operator can lift the rules on purpose.
    let ok = ex.run("find", &[".".into()]).await.unwrap();
    assert_eq!(ok.exit_code, 0);
    let lifted = ex.with_policy("env", ArgPolicy::permissive());
    assert_eq!(lifted.run("env", &[]).await.unwrap().exit_code, 0);
}

/// Whether process `pid` is gone (or a zombie no one has reaped yet: it runs nothing).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_timed_out_childs_grandchildren_are_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let ex = CommandToolExecutor::new(["sh"])
        .with_policy("sh", ArgPolicy::permissive())
        .with_timeout(Duration::from_millis(300));
    let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
    let e = ex.run("sh", &["-c".into(), script]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gone(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone(pid), "grandchild {pid} outlived the timeout");

    // A child that exits while its background job holds the pipes: the run ends at
    // once and the job is killed with the group.
    let ex = ex.with_timeout(Duration::from_secs(20));
    let started = std::time::Instant::now();
    let script = format!("sleep 300 & echo $! > {}; echo started", pid_file.display());
    let o = ex.run("sh", &["-c".into(), script]).await.unwrap();
    assert_eq!(o.stdout.trim(), "started");
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gone(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone(pid), "background job {pid} outlived its parent");
}
