//! `george serve` with an MCP tool server from `[mcp.servers.<alias>]`: an agent step
//! calls `ev_get-sum` on a real server-everything over stdio and reports what it saw.
//! The model is a loopback server speaking the OpenAI wire format. Skipped loudly
//! without `GEORGE_TEST_MCP_DIR` (`scripts/mcp-servers-setup.sh`, as `.ci/run` sets it).

mod common;

use common::{Server, git, wait_status, write};
use george_llm::replay::{ReplayServer, Reply};
use serde_json::json;

const TOKEN: &str = "alice-token-0123456789";

fn tool_call_reply(n: usize, name: &str, args: serde_json::Value) -> Reply {
    let body = json!({"id": format!("chatcmpl-{n}"), "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": format!("call_{n}"), "type": "function",
                 "function": {"name": name, "arguments": args.to_string()}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}});
    Reply::json(200, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_calls_an_mcp_tool_configured_in_george_toml() {
    let Some(mcp_dir) = std::env::var_os("GEORGE_TEST_MCP_DIR").filter(|d| !d.is_empty()) else {
        eprintln!(
            "!!! SKIPPED an_agent_calls_an_mcp_tool_configured_in_george_toml: GEORGE_TEST_MCP_DIR \
             is not set; run `GEORGE_TEST_MCP_DIR=$(scripts/mcp-servers-setup.sh)` first"
        );
        return;
    };
    let everything = std::path::Path::new(&mcp_dir).join("node_modules/.bin/mcp-server-everything");
    let model = ReplayServer::start(vec![
        tool_call_reply(1, "ev_get-sum", json!({"a": 20, "b": 22})),
        tool_call_reply(
            2,
            "report_success",
            json!({"summary": "added", "outputs": {"sum": 42}}),
        ),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ops = root.join("ops");
    std::fs::create_dir_all(&ops).unwrap();
    git(&ops, &["init", "-q", "-b", "main"]);
    write(
        &ops,
        "agent-specs/adder.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: adder}\nspec:\n  provider: fake\n  model: m\n  system_prompt: You add.\n  tools: [ev_get-sum]\n",
    );
    write(
        &ops,
        "task-templates/t.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: add, agent: adder, instructions: Add 20 and 22.}\n",
    );
    write(
        &ops,
        "jobs/j.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n",
    );
    git(&ops, &["add", "-A"]);
    git(&ops, &["commit", "-q", "-m", "order j"]);
    write(
        root,
        "providers.yaml",
        &format!(
            "providers:\n  - name: fake\n    kind: openai\n    base_url: {}\n",
            model.base_url()
        ),
    );
    common::alice_decides(root, TOKEN);
    write(
        root,
        "george.toml",
        &format!(
            "[source]\npath = \"ops\"\npoll_interval_ms = 200\n\n[store]\nsqlite = \"george.db\"\n\n\
             [providers]\nprofiles = \"providers.yaml\"\nstream = false\n\n\
             [mcp.servers.ev]\nprogram = {:?}\nargs = [\"stdio\"]\nread = [\"get-sum\"]\ntimeout_ms = 20000\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\ntokens = \"tokens.toml\"\n",
            everything.to_string_lossy()
        ),
    );
    let (server, url) = Server::start(&root.join("george.toml"), &[]);
    let url2 = url.clone();
    tokio::task::spawn_blocking(move || wait_status(&url2, TOKEN, "j", "succeeded"))
        .await
        .unwrap();
    server.stop();
    let received = model.received();
    assert_eq!(received.len(), 2);
    let first = received[0].json();
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(offered.contains(&"ev_get-sum"), "{offered:?}");
    let second = received[1].json().to_string();
    assert!(
        second.contains("The sum of 20 and 22 is 42."),
        "the model saw the MCP result: {second}"
    );
}
