//! Where the real MCP servers are: `GEORGE_TEST_MCP_DIR`, the directory
//! `scripts/mcp-servers-setup.sh` prints (`.ci/run` sets it). Without it every test
//! says loudly that it did not run, and returns.

#![allow(dead_code)]

use std::path::PathBuf;

use george_mcp::McpServer;

/// The servers' directory, or `None` after saying loudly that `test` is skipped.
pub fn mcp_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os("GEORGE_TEST_MCP_DIR") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => {
            eprintln!(
                "!!! SKIPPED {test}: GEORGE_TEST_MCP_DIR is not set; run \
                 `GEORGE_TEST_MCP_DIR=$(scripts/mcp-servers-setup.sh)` first (as .ci/run does)"
            );
            None
        }
    }
}

/// `@modelcontextprotocol/server-everything` over stdio, as `alias`.
pub fn everything(dir: &std::path::Path, alias: &str) -> McpServer {
    let bin = dir.join("node_modules/.bin/mcp-server-everything");
    McpServer::stdio(alias, bin.to_string_lossy(), ["stdio"])
}

/// `@modelcontextprotocol/server-filesystem` over stdio, serving `root`.
pub fn filesystem(dir: &std::path::Path, alias: &str, root: &std::path::Path) -> McpServer {
    let bin = dir.join("node_modules/.bin/mcp-server-filesystem");
    McpServer::stdio(alias, bin.to_string_lossy(), [root.to_string_lossy()])
}

/// A program of the venv (`mcp-server-time`, `python`).
pub fn venv_bin(dir: &std::path::Path, name: &str) -> String {
    dir.join("venv/bin")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The fixture server `tests/fixtures/meta_server.py` on the venv's Python.
pub fn fixture(dir: &std::path::Path, alias: &str) -> McpServer {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/meta_server.py");
    McpServer::stdio(alias, venv_bin(dir, "python"), [script.to_string_lossy()])
}

/// The text of a tool output, for assertions.
pub fn text(out: &george_core::tool::ToolOutput) -> &str {
    &out.content
}
