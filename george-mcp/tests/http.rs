//! `McpToolExecutor` over streamable HTTP, against server-everything's
//! `streamableHttp` mode on a free loopback port. Skipped loudly without
//! `GEORGE_TEST_MCP_DIR`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use george_core::secret::KnownSecrets;
use george_core::tool::{ToolExecutor, ToolInvocation};
use george_mcp::{McpServer, McpToolExecutor};
use serde_json::json;
use support::*;

#[tokio::test]
async fn tools_over_streamable_http() {
    let Some(dir) = mcp_dir("tools_over_streamable_http") else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server =
        tokio::process::Command::new(dir.join("node_modules/.bin/mcp-server-everything"))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server-everything listens on {port}");

    // A header whose value comes from a variable the operator names: registered as a
    // secret.
    // SAFETY: this test's own variable, set before anything reads it.
    unsafe { std::env::set_var("GEORGE_MCP_TEST_TOKEN", "http-token-0123456789") };
    let secrets = KnownSecrets::new();
    let config = McpServer::http("web", format!("http://127.0.0.1:{port}/mcp"))
        .header_from_env(
            "Authorization",
            "Bearer ",
            "GEORGE_MCP_TEST_TOKEN",
            &secrets,
        )
        .unwrap();
    assert_eq!(secrets.redact("x http-token-0123456789"), "x [REDACTED]");
    let ex = McpToolExecutor::connect(config).await.unwrap();
    assert!(ex.tools().iter().any(|t| t.name == "web_get-sum"));
    assert_eq!(ex.server_pid().await, None);
    let out = ex
        .call(ToolInvocation::new(
            "web_get-sum",
            json!({"a": 1, "b": 2}),
            "k",
        ))
        .await
        .unwrap();
    assert_eq!(out.content, "The sum of 1 and 2 is 3.");
    let out = ex
        .call(ToolInvocation::new(
            "web_echo",
            json!({"message": "over http"}),
            "k2",
        ))
        .await
        .unwrap();
    assert_eq!(out.content, "Echo: over http");
    drop(ex);
    server.kill().await.ok();
}
