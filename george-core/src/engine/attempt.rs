//! One step attempt: a command, the execution of approved actions, or an agent's tool
//! loop. Pure of store writes: it returns an [`AttemptReport`] that the engine commits.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::manifest::DesiredJob;
use crate::model::{AgentSpec, StepSpec};
use crate::provider::{DynProvider, Message, Usage};
use crate::state::{ActionEffect, ApprovalRequest, JobRecord, NewEvent};
use crate::tool::{
    DynToolExecutor, EffectClass, FencingToken, ToolContext, ToolDefinition, ToolInvocation,
};

pub use crate::reconcile::Outcome;

/// What an attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    /// The outcome.
    pub outcome: Outcome,
    /// Tokens used.
    pub usage: Usage,
    /// The conversation (empty for steps without a model).
    pub transcript: Vec<Message>,
    /// Events (tool calls, model calls) to append with the outcome.
    pub events: Vec<NewEvent>,
}

/// A registered tool: its executor and definition.
#[derive(Debug, Clone)]
pub(crate) struct RegisteredTool {
    pub(crate) executor: DynToolExecutor,
    /// The definition, with the operator's effect class when one was set.
    pub(crate) definition: ToolDefinition,
    /// Whether the operator set the effect class ([`EngineBuilder::effect_class`]): then
    /// it is final, and the executor is not asked per call.
    ///
    /// [`EngineBuilder::effect_class`]: super::EngineBuilder::effect_class
    pub(crate) effect_fixed: bool,
}

impl RegisteredTool {
    /// The effect class of one call.
    pub(crate) fn effect_of(&self, invocation: &ToolInvocation) -> EffectClass {
        if self.effect_fixed {
            return self.definition.effect;
        }
        self.executor
            .effect_of(invocation)
            .unwrap_or(self.definition.effect)
    }
}

/// Where an `execute_approved` attempt records each approved action's effect, durably and
/// fenced by the attempt's lease, before it runs the next one.
#[async_trait::async_trait]
pub(crate) trait EffectLog: Send + Sync {
    /// Records `effect`; an error (the lease was lost, the store failed) stops the
    /// execution before the next action.
    async fn record(&self, effect: ActionEffect) -> crate::Result<()>;
}

/// What an attempt needs from the engine.
pub(crate) struct AttemptCtx<'a> {
    pub(crate) clock: &'a dyn Clock,
    pub(crate) providers: &'a HashMap<String, DynProvider>,
    pub(crate) factory: &'a super::ProviderCache,
    pub(crate) tools: &'a HashMap<String, RegisteredTool>,
    pub(crate) agents: &'a HashMap<String, Arc<AgentSpec>>,
    pub(crate) desired: &'a DesiredJob,
    pub(crate) record: &'a JobRecord,
    pub(crate) spec: &'a StepSpec,
    pub(crate) attempt: u32,
    /// The engine holding the attempt's lease.
    pub(crate) holder: &'a str,
    /// For an `execute_approved` step: the approval request its source step links to, as
    /// stored (loaded before the attempt).
    pub(crate) approval: Option<&'a ApprovalRequest>,
    /// For an `execute_approved` step: where each action's effect is recorded.
    pub(crate) effects: Option<&'a dyn EffectLog>,
    /// The fuel and output cap of every render (instructions, command arguments).
    pub(crate) render: crate::template::Limits,
    /// The operator's caps on an agent attempt.
    pub(crate) limits: super::AgentLimits,
    /// Secret values redacted from what the attempt reports (transcript, events).
    pub(crate) secrets: &'a crate::secret::KnownSecrets,
}

pub(super) fn fail(reason: impl Into<String>, retryable: bool) -> Outcome {
    Outcome::Failed {
        reason: reason.into(),
        retryable,
    }
}

pub(super) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

impl AttemptCtx<'_> {
    pub(super) fn report(&self, outcome: Outcome) -> AttemptReport {
        AttemptReport {
            outcome,
            usage: Usage::default(),
            transcript: Vec::new(),
            events: Vec::new(),
        }
    }

    pub(super) fn event(&self, actor: &str, action: &str, detail: String) -> NewEvent {
        NewEvent::new(
            self.clock.now_ms(),
            actor,
            action,
            Some(&self.spec.id),
            detail,
        )
    }

    /// Why a model turn making `calls` tool calls is over the operator's cap.
    pub(super) fn over_turn_cap(&self, calls: usize) -> Option<String> {
        (calls > self.limits.max_tool_calls_per_turn).then(|| {
            format!(
                "the model made {calls} tool calls in one turn, over the cap of {} \
                 (AgentLimits::max_tool_calls_per_turn); none of them ran",
                self.limits.max_tool_calls_per_turn
            )
        })
    }

    /// Why the step's or the job's budget is exhausted once `attempt` (this attempt's
    /// usage so far) is added to what earlier attempts and steps used.
    pub(super) fn over_budget(&self, attempt: &Usage) -> Option<String> {
        if let Some(b) = &self.spec.budget {
            let mut used = self
                .record
                .step(&self.spec.id)
                .map(|s| s.usage)
                .unwrap_or_default();
            used.add(attempt);
            if let Some(why) = b.exceeded_by(&used) {
                return Some(format!("step budget exceeded: {why}"));
            }
        }
        if let Some(b) = &self.desired.job.spec.budget {
            let mut used = *attempt;
            for s in &self.record.steps {
                used.add(&s.usage);
            }
            if let Some(why) = b.exceeded_by(&used) {
                return Some(format!("job budget exceeded: {why}"));
            }
        }
        None
    }

    pub(super) fn key(&self, n: usize) -> String {
        format!(
            "{}/{}/{}/{}",
            self.record.name, self.spec.id, self.attempt, n
        )
    }

    /// The context of this attempt's tool calls.
    pub(super) fn tool_context(&self) -> ToolContext {
        ToolContext::new(
            &self.record.name,
            &self.spec.id,
            self.record.generation,
            self.attempt,
        )
        .with_fencing(FencingToken {
            holder: self.holder.to_string(),
            sequence: (self.record.generation << 32) | u64::from(self.attempt),
        })
    }

    /// Runs the attempt.
    pub(crate) async fn run(&self) -> AttemptReport {
        if let Some(cmd) = &self.spec.command {
            return self.run_command(&cmd.program, &cmd.args).await;
        }
        if let Some(src) = &self.spec.execute_approved {
            return self.run_approved(src).await;
        }
        self.run_agent().await
    }
}
