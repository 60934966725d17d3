//! The approved-actions workload of the worker (`--plan <n>`): a provider that always
//! submits the same plan of `n` `apply` actions, and the `apply` tool, an executor that
//! is idempotent by key as a real one must be.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use george::provider::{AssistantMessage, ChatRequest, ChatResponse, Provider, ToolCall, Usage};
use george::tool::{ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput};

use crate::runlog;

/// The action tool's name.
pub const APPLY: &str = "apply";
/// How a call that applied the effect answers: `applied <key>`.
pub const APPLIED: &str = "applied";
/// How a call whose key already had its effect answers: `already-applied <key>`.
pub const ALREADY: &str = "already-applied";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Answers every planning request the same way: `submit_plan` with `actions` calls of
/// `apply`, the `i`-th (1-based) with arguments `{"n": i}`. So planning again after a
/// kill submits the same plan.
#[derive(Debug)]
pub struct SamePlan {
    /// How many actions the plan has.
    pub actions: usize,
}

impl SamePlan {
    /// The plan's tool call.
    pub fn call(&self) -> ToolCall {
        let actions: Vec<serde_json::Value> = (1..=self.actions)
            .map(|n| serde_json::json!({"tool": APPLY, "arguments": {"n": n}}))
            .collect();
        ToolCall {
            id: "plan".into(),
            name: "submit_plan".into(),
            arguments: serde_json::json!({
                "summary": format!("apply {} changes", self.actions),
                "actions": actions,
            }),
            provider_metadata: None,
        }
    }
}

#[async_trait]
impl Provider for SamePlan {
    fn name(&self) -> &str {
        "crash-planner"
    }
    async fn complete(&self, _req: ChatRequest) -> george::Result<ChatResponse> {
        Ok(ChatResponse::new(
            AssistantMessage {
                content: None,
                tool_calls: vec![self.call()],
            },
            Usage::default(),
        ))
    }
}

/// The `apply` tool: an executor idempotent by key. Each call appends `start <key>` to
/// the run log, then applies its effect unless the key already has one (the effect is
/// an `effect <key>` line: written only when the log has none for the key), then
/// appends `end <key>`. It sleeps `step_ms / 2` before and after the effect, so kills
/// land inside a call, before and after its effect.
///
/// A call whose key, context or arguments disagree (the key is not
/// `<context.approval>/<context.action>`, or `arguments.n` is not the index) is logged
/// as `badcall <key>` and fails.
#[derive(Debug)]
pub struct Apply {
    /// The run log.
    pub runlog: PathBuf,
    /// This engine's id.
    pub engine: String,
    /// How long a call takes.
    pub step_ms: u64,
}

impl Apply {
    fn log(&self, kind: &str, key: &str) {
        runlog::append_line(&self.runlog, kind, key, &self.engine, now_ms());
    }
}

#[async_trait]
impl ToolExecutor for Apply {
    fn tools(&self) -> Vec<ToolDefinition> {
        vec![ToolDefinition::new(
            APPLY,
            "Applies change `n` (runs only as an approved action).",
            serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
        )]
    }
    async fn call(&self, inv: ToolInvocation) -> george::Result<ToolOutput> {
        let key = inv.idempotency_key.as_str();
        let ctx = &inv.context;
        let expected = match (&ctx.approval, ctx.action) {
            (Some(id), Some(index)) => Some((format!("{id}/{index}"), index as u64)),
            _ => None,
        };
        let n = inv.arguments.get("n").and_then(serde_json::Value::as_u64);
        if key.contains(' ')
            || expected.as_ref().map(|(k, i)| (k.as_str(), Some(*i))) != Some((key, n))
        {
            self.log("badcall", &key.replace(' ', "_"));
            return Ok(ToolOutput::error(format!(
                "key {key:?} does not match the context {ctx:?} and arguments {}",
                inv.arguments
            )));
        }
        self.log("start", key);
        let half = Duration::from_millis(self.step_ms / 2);
        tokio::time::sleep(half).await;
        let applied = runlog::read_lines(&self.runlog)
            .iter()
            .any(|l| l.kind == "effect" && l.key == key);
        if !applied {
            self.log("effect", key);
        }
        tokio::time::sleep(half).await;
        self.log("end", key);
        Ok(ToolOutput::ok(if applied {
            format!("{ALREADY} {key}")
        } else {
            format!("{APPLIED} {key}")
        }))
    }
}
