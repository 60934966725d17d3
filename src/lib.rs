//! # george
//!
//! GitOps and Kubernetes-style reconciliation for LLM-agent work (facade crate).
#![warn(missing_docs)]

pub use george_core as core;
pub use george_core::*;
