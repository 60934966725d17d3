//! # george-core
//!
//! The heart of George: the domain model, manifest loading and validation, template
//! rendering, every plug-in trait, the reconciler, the step engine and the agent tool
//! loop, plus in-memory implementations for tests and examples.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod git;
pub mod human;
pub mod manifest;
pub mod memory;
pub mod model;
pub mod provider;
pub mod state;
pub mod store;
pub mod template;
pub mod tool;

pub use error::{Error, ErrorKind, Result, RetryStatus};
pub mod backoff;
pub mod command;
pub mod engine;
pub mod reconcile;
pub mod scripted;
