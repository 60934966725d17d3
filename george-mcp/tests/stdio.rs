//! `McpToolExecutor` against real MCP servers over stdio: server-everything and
//! server-filesystem (npm), mcp-server-time (PyPI). Skipped loudly without
//! `GEORGE_TEST_MCP_DIR` (see `support`).

mod support;

use std::time::{Duration, Instant};

use george_core::error::{ErrorKind, RetryStatus};
use george_core::tool::{EffectClass, ToolExecutor, ToolInvocation};
use george_mcp::{McpToolExecutor, rmcp};
use rmcp::ServiceExt;
use serde_json::json;
use support::*;

fn call(name: &str, args: serde_json::Value) -> ToolInvocation {
    ToolInvocation::new(name, args, format!("test/{name}"))
}

#[tokio::test]
async fn discovers_tools_prefixed_with_schemas_unchanged() {
    let Some(dir) = mcp_dir("discovers_tools_prefixed_with_schemas_unchanged") else {
        return;
    };
    let config = everything(&dir, "ev").effect("get-sum", EffectClass::Read);
    let ex = McpToolExecutor::connect(config.clone()).await.unwrap();
    let tools = ex.tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for want in ["ev_echo", "ev_get-sum", "ev_get-env", "ev_get-tiny-image"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(names.iter().all(|n| n.starts_with("ev_")));

    // The schemas are the server's, byte for byte as JSON values: list them with a
    // plain rmcp client and compare.
    let bin = dir.join("node_modules/.bin/mcp-server-everything");
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("stdio");
    let raw = ().serve(rmcp::transport::TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let listed = raw.list_all_tools().await.unwrap();
    for tool in &listed {
        let def = tools
            .iter()
            .find(|d| d.name == format!("ev_{}", tool.name))
            .unwrap_or_else(|| panic!("{} offered", tool.name));
        assert_eq!(
            *def.input_schema,
            json!(*tool.input_schema),
            "{}",
            tool.name
        );
        assert!(
            def.description.contains("MCP server \"ev\""),
            "{}",
            def.description
        );
    }
    raw.cancel().await.unwrap();

    // Effect classes: declared read stays read; undeclared is write even though the
    // server says readOnlyHint: true (annotations never lower a class).
    let effect = |n: &str| tools.iter().find(|t| t.name == n).map(|t| t.effect);
    assert_eq!(effect("ev_get-sum"), Some(EffectClass::Read));
    assert_eq!(effect("ev_echo"), Some(EffectClass::Write));
}

#[tokio::test]
async fn calls_with_arguments_and_maps_results() {
    let Some(dir) = mcp_dir("calls_with_arguments_and_maps_results") else {
        return;
    };
    let ex = McpToolExecutor::connect(everything(&dir, "ev"))
        .await
        .unwrap();
    let out = ex
        .call(call("ev_get-sum", json!({"a": 2, "b": 40})))
        .await
        .unwrap();
    assert!(!out.is_error);
    assert_eq!(out.content, "The sum of 2 and 40 is 42.");

    let out = ex
        .call(call(
            "ev_get-structured-content",
            json!({"location": "Chicago"}),
        ))
        .await
        .unwrap();
    let data = out.data.expect("structuredContent as data");
    assert!(data.get("temperature").is_some(), "{data}");

    let out = ex.call(call("ev_get-tiny-image", json!({}))).await.unwrap();
    assert!(
        out.content.contains("[image content: image/png"),
        "{}",
        out.content
    );

    let out = ex
        .call(call(
            "ev_get-resource-reference",
            json!({"resourceType": "Text", "resourceId": 1}),
        ))
        .await
        .unwrap();
    assert!(out.content.contains("[resource demo://"), "{}", out.content);

    let e = ex.call(call("ev_nope", json!({}))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn is_error_results_reach_the_model() {
    let Some(dir) = mcp_dir("is_error_results_reach_the_model") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), "alpha\n").unwrap();
    let root_path = root.path().canonicalize().unwrap();
    let config = filesystem(&dir, "fs", &root_path)
        .effect("read_text_file", EffectClass::Read)
        .effect("write_file", EffectClass::Read);
    let ex = McpToolExecutor::connect(config).await.unwrap();
    let tools = ex.tools();
    let effect = |n: &str| tools.iter().find(|t| t.name == n).map(|t| t.effect);
    assert_eq!(effect("fs_read_text_file"), Some(EffectClass::Read));
    // Declared read, but the server says destructiveHint: true: raised to write.
    assert_eq!(effect("fs_write_file"), Some(EffectClass::Write));

    let a = root_path.join("a.txt");
    let out = ex
        .call(call("fs_read_text_file", json!({"path": a})))
        .await
        .unwrap();
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("alpha"));

    let out = ex
        .call(call("fs_read_text_file", json!({"path": "/etc/hostname"})))
        .await
        .unwrap();
    assert!(out.is_error, "outside the root: {}", out.content);
    assert!(
        out.content.to_lowercase().contains("denied"),
        "{}",
        out.content
    );

    // Arguments the schema refuses: an error result too, not an Err.
    let out = ex
        .call(call("fs_read_text_file", json!({"path": 7})))
        .await
        .unwrap();
    assert!(out.is_error, "{}", out.content);
}

#[tokio::test]
async fn the_environment_is_cleared_but_for_named_variables() {
    let Some(dir) = mcp_dir("the_environment_is_cleared_but_for_named_variables") else {
        return;
    };
    // The test's own environment has GEORGE_TEST_MCP_DIR (and cargo's variables): the
    // server must see none of it. (No set_var here: other tests run on other threads.)
    let config = everything(&dir, "ev").env("GEORGE_MCP_NAMED", "named-value");
    let ex = McpToolExecutor::connect(config).await.unwrap();
    let out = ex.call(call("ev_get-env", json!({}))).await.unwrap();
    assert!(out.content.contains("named-value"), "{}", out.content);
    assert!(
        !out.content.contains("engine-secret-value"),
        "{}",
        out.content
    );
    assert!(
        !out.content.contains("GEORGE_TEST_MCP_DIR"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn a_call_past_its_timeout_is_cancelled() {
    let Some(dir) = mcp_dir("a_call_past_its_timeout_is_cancelled") else {
        return;
    };
    let config = everything(&dir, "ev").call_timeout(Duration::from_millis(800));
    let ex = McpToolExecutor::connect(config).await.unwrap();
    let t0 = Instant::now();
    let e = ex
        .call(call(
            "ev_trigger-long-running-operation",
            json!({"duration": 20, "steps": 4}),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // The server is fine afterwards: the same connection answers.
    let out = ex
        .call(call("ev_echo", json!({"message": "still here"})))
        .await
        .unwrap();
    assert_eq!(out.content, "Echo: still here");
    assert_eq!(ex.starts(), 1);
}

#[cfg(unix)]
#[tokio::test]
async fn a_killed_server_is_restarted() {
    let Some(dir) = mcp_dir("a_killed_server_is_restarted") else {
        return;
    };
    let ex = std::sync::Arc::new(
        McpToolExecutor::connect(everything(&dir, "ev"))
            .await
            .unwrap(),
    );
    let pid = ex.server_pid().await.expect("a stdio server has a pid");
    // Killed during a call: that call fails with a transient error.
    let running = {
        let ex = ex.clone();
        tokio::spawn(async move {
            ex.call(call(
                "ev_trigger-long-running-operation",
                json!({"duration": 20, "steps": 2}),
            ))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // SAFETY: kill(2) on the server's own process group (it runs in one of its own).
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    let e = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the call ends when its server dies")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(matches!(e.retry(), RetryStatus::Transient { .. }), "{e}");
    // The next call restarts the server and succeeds.
    let out = ex
        .call(call("ev_echo", json!({"message": "back"})))
        .await
        .unwrap();
    assert_eq!(out.content, "Echo: back");
    assert_eq!(ex.starts(), 2);
    assert_ne!(ex.server_pid().await, Some(pid));

    // Killed between calls: the next call restarts it before sending.
    let pid = ex.server_pid().await.unwrap();
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = ex
        .call(call("ev_echo", json!({"message": "again"})))
        .await
        .unwrap();
    assert_eq!(out.content, "Echo: again");
    assert_eq!(ex.starts(), 3);
}

#[tokio::test]
async fn a_python_server_from_pypi() {
    let Some(dir) = mcp_dir("a_python_server_from_pypi") else {
        return;
    };
    let config = george_mcp::McpServer::stdio(
        "time",
        venv_bin(&dir, "mcp-server-time"),
        ["--local-timezone", "UTC"],
    )
    .effect("get_current_time", EffectClass::Read)
    .effect("convert_time", EffectClass::Read);
    let ex = McpToolExecutor::connect(config).await.unwrap();
    let names: Vec<String> = ex.tools().into_iter().map(|t| t.name).collect();
    assert!(
        names.contains(&"time_get_current_time".to_string()),
        "{names:?}"
    );
    let out = ex
        .call(call(
            "time_convert_time",
            json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
        ))
        .await
        .unwrap();
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("21:00"), "{}", out.content);
    let out = ex
        .call(call(
            "time_get_current_time",
            json!({"timezone": "Not/AZone"}),
        ))
        .await
        .unwrap();
    assert!(out.is_error, "{}", out.content);
}
