//! # george-core
//!
//! The heart of George: the domain model ([`model`], [`state`]), manifest loading and
//! validation ([`manifest`]), template rendering ([`template`]), every plug-in trait
//! ([`provider::Provider`], [`tool::ToolExecutor`], [`store::StateStore`],
//! [`git::GitSource`], [`human::HumanChannel`]), the pure reconciler ([`reconcile`]), pure
//! policy verdicts on plans ([`policy`]), the
//! engine and the agent tool loop ([`engine`]), child jobs agents order ([`children`]),
//! and in-memory backends ([`memory`],
//! [`scripted`], [`command`]) that are always compiled, for tests and examples.
//!
//! A team writing its own adapter depends on this crate alone. It has no network,
//! database or Git dependency (CI checks it).
//!
//! ```
//! use std::sync::Arc;
//! use george_core::command::CommandToolExecutor;
//! use george_core::engine::Engine;
//! use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
//! use george_core::state::JobStatus;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> george_core::Result<()> {
//! let git = InMemoryGitSource::new();
//! git.commit_files("main", [
//!     ("task-templates/t.yaml", "apiVersion: george.dev/v1alpha1
//! kind: TaskTemplate
//! metadata: {name: t}
//! spec:
//!   steps:
//!     - {id: hello, command: {program: echo, args: [hi]}}
//! "),
//!     ("jobs/j.yaml", "apiVersion: george.dev/v1alpha1
//! kind: Job
//! metadata: {name: j}
//! spec: {template: t}
//! "),
//! ], "order a job");
//! let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
//!     .commands(CommandToolExecutor::new(["echo"]))
//!     .build()?;
//! engine.start().await?;
//! let run = engine.spawn();
//! let status = engine.wait_finished("j", std::time::Duration::from_secs(10)).await?;
//! assert_eq!(status, JobStatus::Succeeded);
//! run.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod approval;
pub mod children;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod events;
mod fastmap;
pub mod git;
pub mod human;
pub mod manifest;
pub mod memory;
pub mod model;
pub mod outcome;
mod params;
pub mod policy;
pub mod provider;
pub mod state;
pub mod store;
pub mod template;
mod text;
pub mod tool;

pub use error::{Error, ErrorKind, Result, RetryStatus};
pub mod backoff;
pub mod command;
pub mod engine;
pub mod reconcile;
pub mod scripted;
pub mod secret;
