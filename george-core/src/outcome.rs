//! The outcome tools: how an agent ends a step attempt. Their names and argument schemas
//! are a protocol between the engine and any [`Provider`](crate::provider::Provider):
//!
//! | tool | arguments | when |
//! |---|---|---|
//! | `report_success` | `{summary: string, outputs: object, resolves?: [job]}` | the step is done (steps without approval); `resolves` ends other jobs on the same target (agents with `may_resolve: true`) |
//! | `submit_plan` | `{summary: string, actions: [{tool, arguments}]}` | steps that need approval: the exact calls to run once approved |
//! | `report_failure` | `{reason: string, retryable: bool}` | the step failed |
//! | `report_blocked` | `{reason: string}` | a missing capability or condition |
//! | `defer` | `{seconds: integer ≥ 1, reason: string}` | check again later (steps without approval) |
//! | `order_job` | `{template, params?, wait?, key?, on_child_failure?, parent_close?}` | order a child job (agents with `may_order`, steps without approval; see [sub-jobs](crate::children)): with `wait` (the default) it ends the attempt waiting for the child; without, the attempt goes on |
//!
//! The constructors build those calls, so a rule-based provider is short:
//!
//! ```
//! use george_core::outcome;
//! use george_core::provider::ChatResponse;
//!
//! let done = ChatResponse::tool_calls(vec![outcome::report_success("3 replicas", serde_json::json!({"replicas": 3}))]);
//! assert_eq!(done.message.tool_calls[0].name, outcome::REPORT_SUCCESS);
//! ```

use serde_json::{Value, json};

pub use crate::engine::prompt::{
    DEFER, REPORT_BLOCKED, REPORT_FAILURE, REPORT_SUCCESS, SUBMIT_PLAN,
};
use crate::provider::ToolCall;
use crate::state::PlannedAction;

/// `report_success {summary, outputs}`; `outputs` should be a JSON object.
pub fn report_success(summary: impl Into<String>, outputs: Value) -> ToolCall {
    ToolCall::new(
        "call_report_success",
        REPORT_SUCCESS,
        json!({"summary": summary.into(), "outputs": outputs}),
    )
}

/// `report_success {summary, outputs, resolves}`: the step is done, and so are the other
/// jobs `resolves` names (on the same target; the agent's spec needs `may_resolve`).
pub fn report_success_resolving<I, S>(
    summary: impl Into<String>,
    outputs: Value,
    resolves: I,
) -> ToolCall
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let resolves: Vec<String> = resolves.into_iter().map(Into::into).collect();
    ToolCall::new(
        "call_report_success",
        REPORT_SUCCESS,
        json!({"summary": summary.into(), "outputs": outputs, "resolves": resolves}),
    )
}

/// `submit_plan {summary, actions}`: the exact tool calls to run once a human approves.
pub fn submit_plan(summary: impl Into<String>, actions: Vec<PlannedAction>) -> ToolCall {
    ToolCall::new(
        "call_submit_plan",
        SUBMIT_PLAN,
        json!({"summary": summary.into(), "actions": actions}),
    )
}

/// `report_failure {reason, retryable}`.
pub fn report_failure(reason: impl Into<String>, retryable: bool) -> ToolCall {
    ToolCall::new(
        "call_report_failure",
        REPORT_FAILURE,
        json!({"reason": reason.into(), "retryable": retryable}),
    )
}

/// `report_blocked {reason}`.
pub fn report_blocked(reason: impl Into<String>) -> ToolCall {
    ToolCall::new(
        "call_report_blocked",
        REPORT_BLOCKED,
        json!({"reason": reason.into()}),
    )
}

/// `defer {seconds, reason}`: run the step again in `seconds` (1 to 86,400).
pub fn defer(seconds: u64, reason: impl Into<String>) -> ToolCall {
    ToolCall::new(
        "call_defer",
        DEFER,
        json!({"seconds": seconds, "reason": reason.into()}),
    )
}

/// `order_job {template, params, wait}`: order a child job of `template` (see
/// [sub-jobs](crate::children) for the other arguments).
pub fn order_job(template: impl Into<String>, params: Value, wait: bool) -> ToolCall {
    ToolCall::new(
        "call_order_job",
        crate::children::ORDER_JOB,
        json!({"template": template.into(), "params": params, "wait": wait}),
    )
}

/// One planned action: `tool` called with `arguments`.
pub fn action(tool: impl Into<String>, arguments: Value) -> PlannedAction {
    PlannedAction {
        tool: tool.into(),
        arguments,
    }
}
