//! # George
//!
//! GitOps and Kubernetes-style reconciliation for LLM-agent work. Teams commit agent
//! specs, task templates and jobs to Git; George's reconciler makes the observed state
//! match; stateless agents (a [`Provider`](core::provider::Provider) plus tool executors)
//! do each step; humans approve or reject plans; everything is kept in a
//! [`StateStore`](core::store::StateStore), so a crash loses nothing.
//!
//! This is the facade: it re-exports [`george_core`] and, behind features, the backends.
//!
//! | feature | what |
//! |---|---|
//! | `sqlite` (default) | [`stores::SqliteStateStore`] |
//! | `postgres` | `stores::PgStateStore`, for several engines sharing one PostgreSQL database |
//! | `git` (default) | [`sources::LocalGitSource`], [`sources::GitWriteTool`] |
//! | `http` | `http::router`: the operator's HTTP API (JSON, OpenAPI, live updates, auth) |
//! | `dashboard` | `http::dashboard`: the HTML dashboard under `/ui` of the same router |
//! | `k8s` | `k8s::tools::KubeToolExecutor`: the Kubernetes API as tools for agents |
//! | `mcp` | `mcp::McpToolExecutor`: MCP tool servers (stdio or streamable HTTP) as tools for agents |
//! | `k8s-testenv` | `k8s::testenv`: a real kube-apiserver for tests (binaries from `scripts/k8s-testenv.sh`) |
//! | `mocks` | mockall mocks of the plug-in traits |
//! | `conformance` | the conformance suites for adapter authors |
//!
//! ```
//! use std::sync::Arc;
//! use george::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> george::Result<()> {
//! let git = InMemoryGitSource::new();
//! git.commit("main", [
//!     ("task-templates/hello.yaml", Some(&b"apiVersion: george.dev/v1alpha1
//! kind: TaskTemplate
//! metadata: {name: hello}
//! spec:
//!   steps:
//!     - id: greet
//!       command: {program: echo, args: [\"hello {{ params.who }}\"]}
//!   parameters:
//!     - {name: who, type: string}
//! "[..])),
//!     ("jobs/hello.yaml", Some(&b"apiVersion: george.dev/v1alpha1
//! kind: Job
//! metadata: {name: hello}
//! spec: {template: hello, params: {who: world}}
//! "[..])),
//! ], "add a job");
//! let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
//!     .commands(CommandToolExecutor::new(["echo"]))
//!     .build()?;
//! engine.start().await?;
//! let run = engine.spawn();
//! let status = engine.wait_finished("hello", std::time::Duration::from_secs(10)).await?;
//! assert_eq!(status, JobStatus::Succeeded);
//! let job = engine.job("hello").await?.expect("stored");
//! assert_eq!(job.steps[0].outputs.as_ref().unwrap()["stdout"], "hello world\n");
//! run.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use george_core as core;
pub use george_core::{
    Error, ErrorKind, Result, RetryStatus, approval, backoff, clock, command, engine, events, git,
    human, manifest, memory, model, outcome, provider, reconcile, scripted, state, store, template,
    tool,
};

#[cfg(feature = "conformance")]
pub use george_core::conformance;

/// Model provider adapters, the retry wrapper, prices and the [`llm::Registry`]
/// provider factory (feature `llm`).
#[cfg(feature = "llm")]
pub use george_llm as llm;

/// The operator's HTTP API: [`http::router`] makes an axum `Router` of an engine, with
/// the JSON API, its OpenAPI document, live updates and authentication (feature `http`).
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use george_http as http;

/// Kubernetes: [`k8s::tools::KubeToolExecutor`] (the API as tools for agents), the
/// `kube` and `k8s_openapi` crates it uses, and with `k8s-testenv` a real control plane
/// for tests (feature `k8s`).
#[cfg(feature = "k8s")]
#[cfg_attr(docsrs, doc(cfg(feature = "k8s")))]
pub use george_k8s as k8s;

/// MCP tool servers: [`mcp::McpToolExecutor`] offers the tools of a server reached over
/// stdio or streamable HTTP to agents, as `<alias>_<tool>`, with the operator's effect
/// classes (feature `mcp`).
#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub use george_mcp as mcp;

/// State stores: the in-memory one and, with `sqlite`, [`SqliteStateStore`] (with
/// `postgres`, also `PgStateStore`).
pub mod stores {
    pub use george_core::memory::InMemoryStateStore;
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    pub use george_store::*;
}

/// Git sources: the in-memory one and, with `git`, [`LocalGitSource`] and the
/// [`GitWriteTool`].
pub mod sources {
    pub use george_core::git::{CommitId, GitSource, SourceFile};
    pub use george_core::memory::InMemoryGitSource;
    #[cfg(feature = "git")]
    #[cfg_attr(docsrs, doc(cfg(feature = "git")))]
    pub use george_git::*;
}

/// The names most programs need.
pub mod prelude {
    pub use george_core::approval::{Approver, Decision};
    pub use george_core::command::CommandToolExecutor;
    pub use george_core::engine::{Engine, EngineConfig};
    pub use george_core::git::{CommitId, GitSource};
    pub use george_core::human::{ChannelHuman, HumanChannel};
    pub use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
    pub use george_core::provider::{ChatRequest, ChatResponse, Provider};
    pub use george_core::scripted::ScriptedProvider;
    pub use george_core::state::{JobRecord, JobStatus, StepState};
    pub use george_core::store::StateStore;
    pub use george_core::tool::{EffectClass, ToolExecutor};
    #[cfg(feature = "git")]
    pub use george_git::{GitAuthor, GitWriteTool, LocalGitSource};
    #[cfg(feature = "sqlite")]
    pub use george_store::SqliteStateStore;
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
