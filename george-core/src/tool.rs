//! The [`ToolExecutor`] trait: a set of tools, each with a JSON Schema, called with an
//! idempotency key.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A tool as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Unique tool name (`read_file`, `git_commit`).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object (shared: tool lists are cloned into every request).
    pub input_schema: Arc<serde_json::Value>,
}

/// One call of a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolInvocation {
    /// The tool's name.
    pub name: String,
    /// Its arguments (a JSON object).
    pub arguments: serde_json::Value,
    /// `<job>/<step>/<attempt>/<n>`: the same key means the same call, so an executor
    /// can recognise a call retried after a crash and return the first result.
    pub idempotency_key: String,
}

impl ToolInvocation {
    /// A new invocation.
    pub fn new(
        name: impl Into<String>,
        arguments: serde_json::Value,
        idempotency_key: impl Into<String>,
    ) -> Self {
        ToolInvocation {
            name: name.into(),
            arguments,
            idempotency_key: idempotency_key.into(),
        }
    }
}

/// What a tool returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    /// The result as text for the model (JSON for structured results).
    pub content: String,
    /// Whether the tool reports failure (the model sees it as an error result).
    pub is_error: bool,
    /// Structured data, when the tool has any (e.g. `{"exit_code": 0}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl ToolOutput {
    /// A successful text result.
    pub fn ok(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: false,
            data: None,
        }
    }

    /// An error result.
    pub fn error(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: true,
            data: None,
        }
    }

    /// Adds structured data.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// A set of tools the engine can call for agents.
///
/// # Contract
/// - `tools()` is cheap and stable for the executor's lifetime.
/// - `call` runs one tool; a tool-level failure the model should see is an
///   `Ok(ToolOutput { is_error: true, .. })`; an `Err` means the executor itself failed.
/// - Calls with the same idempotency key should have the effect of one call.
///
/// # Errors
/// `NotFound` for an unknown tool, `PermissionDenied` for a refused program,
/// `Timeout`, `Backend`.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ToolExecutor: Send + Sync + Debug + 'static {
    /// The tools this executor provides.
    fn tools(&self) -> Vec<ToolDefinition>;

    /// Calls one tool.
    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput>;
}

#[async_trait]
impl<T: ToolExecutor + ?Sized> ToolExecutor for Arc<T> {
    fn tools(&self) -> Vec<ToolDefinition> {
        (**self).tools()
    }
    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput> {
        (**self).call(invocation).await
    }
}

/// `Arc<dyn ToolExecutor>`.
pub type DynToolExecutor = Arc<dyn ToolExecutor>;
