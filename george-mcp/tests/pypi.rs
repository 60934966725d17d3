//! `McpToolExecutor` against mcp-server-git (PyPI) over stdio, on a throwaway
//! repository: read tools declared `read`, the rest `write`, a status and a log read
//! through the server. Skipped loudly without `GEORGE_TEST_MCP_DIR`.

mod support;

use std::process::Command;

use george_core::tool::{EffectClass, ToolExecutor, ToolInvocation};
use george_mcp::{McpServer, McpToolExecutor};
use serde_json::json;
use support::*;

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[tokio::test]
async fn mcp_server_git_reads_a_repository() {
    let Some(dir) = mcp_dir("mcp_server_git_reads_a_repository") else {
        return;
    };
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path().canonicalize().unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("values.yaml"), "replicas: 3\n").unwrap();
    git(&root, &["add", "values.yaml"]);
    git(&root, &["commit", "-q", "-m", "three replicas"]);
    std::fs::write(root.join("values.yaml"), "replicas: 5\n").unwrap();

    let config = McpServer::stdio(
        "git",
        venv_bin(&dir, "mcp-server-git"),
        [
            "--repository".to_string(),
            root.to_string_lossy().into_owned(),
        ],
    )
    .effect("git_status", EffectClass::Read)
    .effect("git_log", EffectClass::Read)
    .effect("git_diff_unstaged", EffectClass::Read);
    let ex = McpToolExecutor::connect(config).await.unwrap();
    let tools = ex.tools();
    let effect = |n: &str| tools.iter().find(|t| t.name == n).map(|t| t.effect);
    assert_eq!(effect("git_git_status"), Some(EffectClass::Read));
    assert_eq!(effect("git_git_commit"), Some(EffectClass::Write));
    assert_eq!(effect("git_git_add"), Some(EffectClass::Write));

    let repo_path = root.to_string_lossy();
    let out = ex
        .call(ToolInvocation::new(
            "git_git_status",
            json!({"repo_path": repo_path}),
            "k1",
        ))
        .await
        .unwrap();
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("values.yaml"), "{}", out.content);
    let out = ex
        .call(ToolInvocation::new(
            "git_git_diff_unstaged",
            json!({"repo_path": repo_path}),
            "k2",
        ))
        .await
        .unwrap();
    assert!(out.content.contains("+replicas: 5"), "{}", out.content);
    let out = ex
        .call(ToolInvocation::new(
            "git_git_log",
            json!({"repo_path": repo_path}),
            "k3",
        ))
        .await
        .unwrap();
    assert!(out.content.contains("three replicas"), "{}", out.content);
}
