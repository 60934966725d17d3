//! The [`ToolExecutor`] trait: a set of tools, each with a JSON Schema and an
//! [`EffectClass`], called with an idempotency key and the [`ToolContext`] of the call.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What a tool call may do to the world. Ordered: `Read < DryRun < Write`.
///
/// The engine enforces it: a step whose outcome needs a human's approval runs its tool
/// loop with `Read` and `DryRun` tools only — `Write` tools are not offered to the
/// model, and a call to one is refused before it reaches any executor. The class is the
/// operator's word (the executor the operator registers, or
/// [`EngineBuilder::effect_class`](crate::engine::EngineBuilder::effect_class)); a tool
/// that declares nothing is `Write` (fail safe).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EffectClass {
    /// No side effect (reading a file, listing pods).
    Read,
    /// Validates a change without making it (a server-side dry run, a diff preview).
    DryRun,
    /// Changes something (a commit, an apply, a message sent). The default.
    #[default]
    Write,
}

impl EffectClass {
    /// `read`, `dry_run` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectClass::Read => "read",
            EffectClass::DryRun => "dry_run",
            EffectClass::Write => "write",
        }
    }

    /// Whether a planning attempt (a step whose outcome needs approval) may call it.
    pub fn allowed_while_planning(self) -> bool {
        self <= EffectClass::DryRun
    }
}

impl std::fmt::Display for EffectClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tool as the model sees it, plus its [`EffectClass`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolDefinition {
    /// Unique tool name (`read_file`, `git_commit`).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object (shared: tool lists are cloned into every request).
    pub input_schema: Arc<serde_json::Value>,
    /// What a call may change; `Write` when the executor says nothing.
    #[serde(default)]
    pub effect: EffectClass,
}

impl ToolDefinition {
    /// A tool of class [`EffectClass::Write`] (the fail-safe default).
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: serde_json::Value,
    ) -> Self {
        ToolDefinition {
            name: name.into(),
            description: description.into(),
            input_schema: Arc::new(input_schema),
            effect: EffectClass::Write,
        }
    }

    /// Sets the effect class.
    pub fn with_effect(mut self, effect: EffectClass) -> Self {
        self.effect = effect;
        self
    }
}

/// A token that grows with each lease of a step attempt, so an executor can refuse a
/// call from a holder that was taken over (a stale engine still running after its lease
/// expired).
///
/// `sequence` is `generation << 32 | attempt`: it grows with every new attempt of the
/// step (a restart, a crash recovery, a takeover) and with every new generation of the
/// job. Compare tokens of one step only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FencingToken {
    /// The engine that holds the attempt's lease.
    pub holder: String,
    /// Grows with each lease of the step.
    pub sequence: u64,
}

/// Where a tool call comes from: the job, step, generation and attempt, whether it is an
/// approved action, and the fencing token of the lease it runs under.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolContext {
    /// The job.
    pub job: String,
    /// The step.
    pub step: String,
    /// The job's generation.
    pub generation: u64,
    /// The step attempt (1-based).
    pub attempt: u32,
    /// For an approved action: the approval request it runs under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// For an approved action: its 1-based index in the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<usize>,
    /// The lease the call runs under.
    #[serde(default)]
    pub fencing: FencingToken,
}

impl ToolContext {
    /// The context of a call made by `attempt` of `job`/`step` at `generation`.
    pub fn new(
        job: impl Into<String>,
        step: impl Into<String>,
        generation: u64,
        attempt: u32,
    ) -> Self {
        ToolContext {
            job: job.into(),
            step: step.into(),
            generation,
            attempt,
            approval: None,
            action: None,
            fencing: FencingToken::default(),
        }
    }

    /// Marks the call as approved action `index` (1-based) of approval request `approval`.
    pub fn approved(mut self, approval: impl Into<String>, index: usize) -> Self {
        self.approval = Some(approval.into());
        self.action = Some(index);
        self
    }

    /// Sets the fencing token.
    pub fn with_fencing(mut self, fencing: FencingToken) -> Self {
        self.fencing = fencing;
        self
    }

    /// Whether this call is an approved action.
    pub fn is_approved_action(&self) -> bool {
        self.approval.is_some()
    }
}

/// One call of a tool.
///
/// # The idempotency key (a contract)
/// - A call in an agent's own tool loop: `<job>/<step>/<attempt>/<n>`, `n` the 1-based
///   number of the call in the attempt. A new attempt makes new keys.
/// - An approved action: `<approval id>/<index>`, `index` 1-based in the approved plan.
///   It never contains the attempt number: the same approved action has the same key
///   across attempts, engine restarts, crash recoveries and lease takeovers, so an
///   executor that remembers keys applies it once.
/// - A command step: `<job>/<step>/<attempt>/command`.
///
/// Keys never contain line breaks. Approval ids contain no `/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolInvocation {
    /// The tool's name.
    pub name: String,
    /// Its arguments (a JSON object).
    pub arguments: serde_json::Value,
    /// The same key means the same call (see the type's docs for the format), so an
    /// executor can recognise a call retried after a crash and return the first result.
    pub idempotency_key: String,
    /// Where the call comes from (empty for calls made outside the engine).
    #[serde(default)]
    pub context: ToolContext,
}

impl ToolInvocation {
    /// A new invocation with an empty context.
    pub fn new(
        name: impl Into<String>,
        arguments: serde_json::Value,
        idempotency_key: impl Into<String>,
    ) -> Self {
        ToolInvocation {
            name: name.into(),
            arguments,
            idempotency_key: idempotency_key.into(),
            context: ToolContext::default(),
        }
    }

    /// Sets the context.
    pub fn with_context(mut self, context: ToolContext) -> Self {
        self.context = context;
        self
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
/// - `tools()` is cheap and stable for the executor's lifetime; each definition's
///   [`EffectClass`] says what a call may change (`Write` when unsure).
/// - [`effect_of`](ToolExecutor::effect_of) may name the class of one call more
///   precisely (e.g. a command executor whose `run_command` runs `kubectl get` as `Read`
///   and `kubectl apply` as `Write`); the engine asks it before every call of a planning
///   attempt and refuses a `Write` call without calling [`call`](ToolExecutor::call).
/// - `call` runs one tool; a tool-level failure the model should see is an
///   `Ok(ToolOutput { is_error: true, .. })`; an `Err` means the executor itself failed.
/// - Calls with the same idempotency key must have the effect of one call. The key
///   format is part of the contract: see [`ToolInvocation`]. An approved action keeps its
///   key across attempts, restarts and takeovers.
/// - [`ToolInvocation::context`] names the job, step, generation, attempt, approval and
///   the lease's [`FencingToken`]; an executor that keeps state may refuse a call whose
///   token is older than one it has seen for the same step.
///
/// # Errors
/// `NotFound` for an unknown tool, `PermissionDenied` for a refused program,
/// `Timeout`, `Backend`.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ToolExecutor: Send + Sync + Debug + 'static {
    /// The tools this executor provides.
    fn tools(&self) -> Vec<ToolDefinition>;

    /// The effect class of one call, when it is known more precisely than the tool's
    /// definition says; `None` (the default): the definition's class.
    fn effect_of(&self, invocation: &ToolInvocation) -> Option<EffectClass> {
        let _ = invocation;
        None
    }

    /// Calls one tool.
    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput>;

    /// What `invocation` would change if it were called now, for a human reviewing a
    /// plan before approving it; `None` (the default): this executor cannot tell.
    ///
    /// # Contract
    /// - **No side effects**: a preview changes nothing a later [`call`](Self::call)
    ///   could see or that anyone else could (no commit, no write, no push, no fetch or
    ///   other network access that moves state; no idempotency key is recorded). It may
    ///   read. It is what a human reviews, and it may be asked for any number of times,
    ///   for plans that are never approved.
    /// - It is cheap: the engine bounds it in time and caps the diff it shows (see
    ///   [`Engine::preview_approval`](crate::engine::Engine::preview_approval)).
    /// - A call that would be refused or fail as it stands (a denied path, a `find`
    ///   text that is absent) is an `Ok(Some(..))` with
    ///   [`is_error`](ToolPreview::is_error) set and the reason in the summary, not an
    ///   `Err`: it is what the human should see.
    /// - The invocation is built as the approved action would be: its key
    ///   `<approval id>/<index>` and its context naming the approval and the action.
    ///
    /// # Errors
    /// The executor failed to compute a preview (`Backend`, `Timeout`…); the engine
    /// shows the error in place of the preview.
    async fn preview(&self, invocation: &ToolInvocation) -> Result<Option<ToolPreview>> {
        let _ = invocation;
        Ok(None)
    }
}

/// What a tool call would change, computed without making it
/// ([`ToolExecutor::preview`]).
///
/// Serialised as `{"summary": "...", "diff": "..."?, "is_error": false, "truncated": false}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolPreview {
    /// One or a few lines for a human: what the call would do and against what (e.g.
    /// `2 file(s) on branch main at 1a2b3c4d`), or why it would be refused.
    pub summary: String,
    /// The file changes as a unified diff, `git diff` style: for each file a
    /// `diff --git a/<path> b/<path>` header, `--- a/<path>` / `+++ b/<path>` lines
    /// (`/dev/null` for a created or deleted file) and `@@` hunks with 3 lines of
    /// context. `None` when the call changes no files (or the executor cannot show
    /// them). Binary files are named but not shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The call would be refused or fail as it stands; the summary says why.
    #[serde(default)]
    pub is_error: bool,
    /// The diff was cut (at a line boundary) to a size cap; the summary says so.
    #[serde(default)]
    pub truncated: bool,
}

impl ToolPreview {
    /// A preview with `summary` and no diff.
    pub fn new(summary: impl Into<String>) -> Self {
        ToolPreview {
            summary: summary.into(),
            ..ToolPreview::default()
        }
    }

    /// A preview of a call that would be refused or fail: `summary` says why.
    pub fn error(summary: impl Into<String>) -> Self {
        ToolPreview {
            is_error: true,
            ..ToolPreview::new(summary)
        }
    }

    /// Sets the unified diff (`None` for an empty one).
    pub fn with_diff(mut self, diff: impl Into<String>) -> Self {
        let diff = diff.into();
        self.diff = (!diff.is_empty()).then_some(diff);
        self
    }

    /// Cuts the diff to at most `max_bytes` bytes, at the end of a line (`None` when
    /// nothing is left), and marks the preview [`truncated`](Self::truncated) (with a
    /// note in the summary). Nothing happens when the diff is no longer than that.
    pub fn truncate_diff(&mut self, max_bytes: usize) {
        let Some(diff) = self.diff.as_mut() else {
            return;
        };
        if diff.len() <= max_bytes {
            return;
        }
        let mut cut = max_bytes;
        while !diff.is_char_boundary(cut) {
            cut -= 1;
        }
        let cut = diff[..cut].rfind('\n').map_or(0, |i| i + 1);
        let total = diff.len();
        diff.truncate(cut);
        if diff.is_empty() {
            self.diff = None;
        }
        self.truncated = true;
        self.summary
            .push_str(&format!(" (diff cut to {cut} of {total} bytes)"));
    }
}

#[async_trait]
impl<T: ToolExecutor + ?Sized> ToolExecutor for Arc<T> {
    fn tools(&self) -> Vec<ToolDefinition> {
        (**self).tools()
    }
    fn effect_of(&self, invocation: &ToolInvocation) -> Option<EffectClass> {
        (**self).effect_of(invocation)
    }
    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput> {
        (**self).call(invocation).await
    }
    async fn preview(&self, invocation: &ToolInvocation) -> Result<Option<ToolPreview>> {
        (**self).preview(invocation).await
    }
}

/// `Arc<dyn ToolExecutor>`.
pub type DynToolExecutor = Arc<dyn ToolExecutor>;
