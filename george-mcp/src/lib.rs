//! # george-mcp
//!
//! [MCP](https://modelcontextprotocol.io) tool servers as George tool executors: an
//! [`McpToolExecutor`] connects to one server — a program speaking MCP over stdio, or a
//! URL speaking streamable HTTP — on the official Rust SDK (`rmcp`), and offers the
//! server's tools to agents as `<alias>_<tool>`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use george_core::engine::Engine;
//! use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
//! use george_core::tool::EffectClass;
//! use george_mcp::{McpServer, McpToolExecutor};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> george_core::Result<()> {
//! // A filesystem server over stdio: a cleared environment plus what is named here.
//! let fs = McpServer::stdio("fs", "mcp-server-filesystem", ["/srv/repo"])
//!     .effect("read_text_file", EffectClass::Read)
//!     .effect("list_directory", EffectClass::Read);
//! let fs = McpToolExecutor::connect(fs).await?;
//! // A server over streamable HTTP, with a token read from a variable the operator names.
//! let ops = McpServer::http("ops", "https://tools.example/mcp").header_from_env(
//!     "Authorization",
//!     "Bearer ",
//!     "OPS_TOOLS_TOKEN",
//!     george_core::secret::KnownSecrets::global(),
//! )?;
//! let ops = McpToolExecutor::connect(ops).await?;
//! let engine = Engine::builder(
//!     Arc::new(InMemoryStateStore::new()),
//!     Arc::new(InMemoryGitSource::new()),
//! )
//! .tools(Arc::new(fs)) // fs_read_text_file, fs_write_file, ...
//! .tools(Arc::new(ops))
//! .build()?;
//! # let _ = engine; Ok(()) }
//! ```
//!
//! ## Effect classes
//! Every tool is [`EffectClass::Write`](george_core::tool::EffectClass::Write) unless
//! the operator declares it otherwise ([`McpServer::effect`]). The server's annotations
//! may only **raise** a class: a tool the server marks `readOnlyHint: false` or
//! `destructiveHint: true` is `Write` whatever the operator declared; a server saying
//! `readOnlyHint: true` of a tool the operator did not declare leaves it `Write`. A
//! step whose outcome needs approval (a planning step) may call `Read` and `DryRun`
//! tools only: the engine refuses a `Write` call before it reaches the server.
//!
//! ## Trust
//! A server's `instructions` and its tools' descriptions are untrusted text. George
//! never puts them in a system prompt: descriptions reach the model as tool
//! descriptions only, capped ([`McpServer::max_description_bytes`]) behind a line
//! naming the server; the instructions are available to the operator
//! ([`McpToolExecutor::instructions`]). A stdio server runs with a cleared environment
//! (the engine's secrets are not inherited) in its own process group. Header values
//! read from the environment are registered for redaction.
//!
//! ## Results
//! Text blocks are joined; images, audio and resources are summarised in the text (a
//! text resource's text is kept); `structuredContent` becomes the output's `data`;
//! `isError` is kept; text and structured content are capped
//! ([`McpServer::max_output_bytes`]). Each call carries its idempotency key in `_meta`
//! under [`IDEMPOTENCY_META_KEY`].
#![warn(missing_docs)]

mod config;
mod connect;
mod executor;
mod result;
mod tools;

pub use config::{McpServer, Transport};
pub use executor::{IDEMPOTENCY_META_KEY, McpToolExecutor};
/// The `rmcp` SDK this crate is built on.
pub use rmcp;
