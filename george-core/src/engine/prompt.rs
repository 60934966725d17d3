//! What the model sees: the outcome tools and the dynamic user message of a step attempt.

use crate::state::record::same_id;
use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::manifest::DesiredJob;
use crate::model::StepSpec;
use crate::state::{JobRecord, Rejection};
use crate::tool::{EffectClass, ToolDefinition};

/// Tool that reports success with outputs.
pub const REPORT_SUCCESS: &str = "report_success";
/// Tool that reports failure.
pub const REPORT_FAILURE: &str = "report_failure";
/// Tool that reports the step cannot proceed.
pub const REPORT_BLOCKED: &str = "report_blocked";
/// Tool that asks to be checked again later.
pub const DEFER: &str = "defer";
/// Tool that submits a plan for a human's approval.
pub const SUBMIT_PLAN: &str = "submit_plan";

/// Whether `name` is one of the outcome tools.
pub fn is_outcome_tool(name: &str) -> bool {
    matches!(
        name,
        REPORT_SUCCESS | REPORT_FAILURE | REPORT_BLOCKED | DEFER | SUBMIT_PLAN
    )
}

/// The outcome tools offered to an attempt. With `needs_approval`, `submit_plan`
/// replaces `report_success` (and `defer` is not offered). Built once, then shared.
pub fn outcome_tools(needs_approval: bool) -> &'static [ToolDefinition] {
    static PLAIN: OnceLock<Vec<ToolDefinition>> = OnceLock::new();
    static APPROVAL: OnceLock<Vec<ToolDefinition>> = OnceLock::new();
    let cell = if needs_approval { &APPROVAL } else { &PLAIN };
    cell.get_or_init(|| build_outcome_tools(needs_approval))
}

fn build_outcome_tools(needs_approval: bool) -> Vec<ToolDefinition> {
    let mut v = Vec::with_capacity(4);
    if needs_approval {
        v.push(ToolDefinition::new(SUBMIT_PLAN, "Submit your plan for a human's approval. `actions` are the exact tool calls that will run, unchanged, once a human approves. Ends this step attempt.", json!({
                "type": "object",
                "properties": {
                    "summary": {"type": "string", "description": "What the plan does and why, for the reviewer."},
                    "actions": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"tool": {"type": "string"}, "arguments": {"type": "object"}},
                        "required": ["tool", "arguments"]
                    }}
                },
                "required": ["summary", "actions"]
            })));
    } else {
        v.push(ToolDefinition::new(REPORT_SUCCESS, "Report that the step is done, with its outputs (a JSON object later steps can use). Ends this step attempt.", json!({
                "type": "object",
                "properties": {
                    "summary": {"type": "string"},
                    "outputs": {"type": "object"},
                    "resolves": {"type": "array", "items": {"type": "string"},
                                 "description": "Other unfinished jobs on this job's target that this success makes moot (only if your spec allows it); they end Succeeded."}
                },
                "required": ["summary", "outputs"]
            })));
    }
    v.push(ToolDefinition::new(REPORT_FAILURE, "Report that the step failed. Set `retryable` when trying again later may succeed. Ends this step attempt.", json!({
            "type": "object",
            "properties": {"reason": {"type": "string"}, "retryable": {"type": "boolean"}},
            "required": ["reason"]
        })));
    v.push(ToolDefinition::new(REPORT_BLOCKED, "Report that you cannot do this step (a missing capability, a condition not met). Say why; do not improvise. Ends this step attempt.", json!({
            "type": "object",
            "properties": {"reason": {"type": "string"}},
            "required": ["reason"]
        })));
    if !needs_approval {
        v.push(ToolDefinition::new(DEFER, "Ask to be run again later, e.g. while waiting for a sync. Ends this step attempt.", json!({
                "type": "object",
                "properties": {"seconds": {"type": "integer", "minimum": 1}, "reason": {"type": "string"}},
                "required": ["seconds", "reason"]
            })));
    }
    // Reporting an outcome changes nothing outside the engine.
    v.into_iter()
        .map(|t| t.with_effect(EffectClass::Read))
        .collect()
}

/// The rendering context of a step's templates: `params`, `steps.<id>.outputs` and,
/// for child jobs the job ordered ([sub-jobs](crate::children)),
/// `children.<name>.{template, step, status, outputs}`.
pub fn render_context(desired: &DesiredJob, record: &JobRecord) -> Value {
    let mut steps = serde_json::Map::new();
    for s in &record.steps {
        if let Some(o) = &s.outputs {
            steps.insert(s.id.to_string(), json!({ "outputs": o }));
        }
    }
    let mut ctx =
        json!({ "params": &*desired.params, "steps": steps, "job": { "name": record.name } });
    if record.steps.iter().any(|s| !s.children.is_empty()) {
        ctx["children"] = crate::children::context_of(record);
    }
    ctx
}

/// The `order_job` tool ([sub-jobs](crate::children)), for an agent that may order
/// child jobs of `templates`.
pub fn order_job_tool(templates: &[String]) -> ToolDefinition {
    ToolDefinition::new(
        crate::children::ORDER_JOB,
        "Order a child job from a task template. With `wait` (the default) this step attempt ends and runs again, with the children's outputs, once they finish; without, the child runs on its own and you continue. Ordering the same template and params (or `key`) again returns the existing child and its status and outputs.",
        json!({
            "type": "object",
            "properties": {
                "template": {"type": "string", "enum": templates},
                "params": {"type": "object"},
                "wait": {"type": "boolean", "default": true},
                "key": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"},
                "on_child_failure": {"type": "string", "enum": ["fail", "continue"], "default": "fail"},
                "parent_close": {"type": "string", "enum": ["cancel", "finish", "abandon"], "default": "cancel"}
            },
            "required": ["template"]
        }),
    )
    .with_effect(EffectClass::Write)
}

/// How rejections are worded for the next planning attempt: explicit that the plan was
/// rejected, and that the reviewer's reasons are constraints to re-plan around.
pub fn rejection_feedback(rejections: &[Rejection]) -> String {
    let mut s = String::from(
        "# Rejected plans\nA human reviewer REJECTED the previous plan(s) for this step. Do not propose a rejected plan again, \
         not even in a modified form that keeps the rejected approach: treat every reason below as a hard constraint \
         and make a new plan that addresses all of them.\n",
    );
    for (i, r) in rejections.iter().enumerate() {
        let _ = write!(
            s,
            "{}. Rejected plan: \"{}\"\n   Reviewer {} said why: \"{}\"\n",
            i + 1,
            r.plan,
            r.by,
            r.reason
        );
    }
    s
}

/// The dynamic user message of an attempt.
pub fn user_message(
    instructions: &str,
    desired: &DesiredJob,
    record: &JobRecord,
    spec: &StepSpec,
    attempt: u32,
    rejections: &[Rejection],
    needs_approval: bool,
) -> String {
    let mut s = String::with_capacity(1024);
    // Pieces are pushed rather than formatted: this runs for every attempt.
    for piece in [
        "# Task\n",
        instructions.trim(),
        "\n\n# Job\njob: ",
        &record.name,
        " (template ",
        &record.template,
        ", generation ",
    ] {
        s.push_str(piece);
    }
    let _ = write!(s, "{}", record.generation);
    for piece in [
        ", commit ",
        record.commit.get(..8).unwrap_or(&record.commit),
        ")\nstep: ",
        &spec.id,
        " (attempt ",
    ] {
        s.push_str(piece);
    }
    let _ = write!(s, "{attempt}");
    s.push_str(")\n\n");
    if !record.target.is_empty() {
        let _ = writeln!(
            s,
            "# Target\nThis job works on {}. Other jobs may work on it too: `ops_journal` shows them, \
             their outcomes and their changes; read it before you change anything.\n",
            record.target_key()
        );
    }
    if !desired.params.is_empty() {
        let _ = writeln!(
            s,
            "# Parameters\n{}\n",
            serde_json::to_string_pretty(&*desired.params).unwrap_or_default()
        );
    }
    let deps: Vec<_> = record
        .steps
        .iter()
        .filter(|x| spec.depends_on.iter().any(|d| same_id(d, &x.id)))
        .filter_map(|x| x.outputs.as_ref().map(|o| (&*x.id, o)))
        .collect();
    if !deps.is_empty() {
        s.push_str("# Results of earlier steps\n");
        for (id, o) in deps {
            s.push_str("- ");
            s.push_str(id);
            s.push_str(": ");
            crate::text::push_json(&mut s, o);
            s.push('\n');
        }
        s.push('\n');
    }
    if let Some(step) = record.step(&spec.id)
        && !step.children.is_empty()
    {
        s.push_str("# Child jobs this step ordered\n");
        for l in &step.children {
            let _ = writeln!(
                s,
                "- {} (template {}): {}{}",
                l.job,
                l.template,
                l.status.map_or("running", crate::state::JobStatus::name),
                l.outputs
                    .as_ref()
                    .map(|o| format!(", outputs {o}"))
                    .unwrap_or_default()
            );
        }
        s.push('\n');
    }
    if !rejections.is_empty() {
        s.push_str(&rejection_feedback(rejections));
        s.push('\n');
    }
    if needs_approval {
        s.push_str(
            "# How to finish\nThis step needs a human's approval. Investigate with your tools if needed, then call \
             `submit_plan` with a summary and the exact tool calls (`actions`) to run once approved. Do not make the \
             changes yourself. If you cannot plan, call `report_blocked` or `report_failure`.\n",
        );
    } else {
        s.push_str(
            "# How to finish\nWhen done, call exactly one of `report_success` (with outputs), `report_failure`, \
             `report_blocked` or `defer`.\n",
        );
    }
    s
}

/// Lists, for a planning attempt, the `write` tools its plan's actions may name: they are
/// not offered as callable tools while planning, so their schemas are given here.
pub fn append_plannable_tools(message: &mut String, tools: &[&ToolDefinition]) {
    if tools.is_empty() {
        return;
    }
    message.push_str(
        "\n# Tools for the plan's actions\nThese tools change things, so they run only after a human approves: name them in `submit_plan` actions, do not call them now.\n",
    );
    for t in tools {
        let _ = writeln!(
            message,
            "- {} ({}): {} Arguments: {}",
            t.name, t.effect, t.description, t.input_schema
        );
    }
}
