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
    /// The conversation (empty for steps without a model). Shared with each model
    /// request of the attempt and, once written, with the store's copy.
    pub transcript: std::sync::Arc<Vec<Message>>,
    /// Events (tool calls, model calls) to append with the outcome.
    pub events: Vec<NewEvent>,
    /// The other jobs a success resolves (`report_success {resolves}`), checked.
    pub resolves: Vec<crate::state::Resolves>,
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
    pub(crate) agents: &'a AttemptAgents,
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
    /// Where the agent's `order_job` calls order child jobs.
    pub(crate) orders: Option<&'a dyn super::children::ChildOrders>,
    /// The fuel and output cap of every render (instructions, command arguments).
    pub(crate) render: crate::template::Limits,
    /// The operator's caps on an agent attempt.
    pub(crate) limits: super::AgentLimits,
    /// Secret values redacted from what the attempt reports (transcript, events).
    pub(crate) secrets: &'a crate::secret::KnownSecrets,
    /// The tool lists offered to agents, built once per agent spec.
    pub(crate) tool_lists: &'a ToolLists,
    /// The agents' actors, shared.
    pub(crate) actors: &'a Actors,
    /// The operator's autonomy ceiling ([`EngineConfig::autonomy_ceiling`](super::EngineConfig::autonomy_ceiling)).
    pub(crate) autonomy_ceiling: crate::model::Autonomy,
    /// The store, read by `ops_journal` and the check of `resolves`.
    pub(crate) store: &'a dyn crate::store::StateStore,
}

/// The tools offered to each agent, planning (`[1]`) or not (`[0]`): built once per
/// agent spec (the entry keeps the spec it was built from, and a new spec at the same
/// name replaces it), shared by every request of every attempt.
#[derive(Default)]
pub(crate) struct ToolLists(
    std::sync::Mutex<crate::fastmap::FastMap<String, [Option<ToolList>; 2]>>,
);

/// The agents an attempt may use, by name: the step's and, for an execution, the
/// planning agent's. Two at most, kept inline (no map, no copied names).
#[derive(Debug, Default)]
pub(crate) struct AttemptAgents([Option<Arc<AgentSpec>>; 2]);

impl AttemptAgents {
    /// Adds `agent`, replacing one of the same name.
    pub(crate) fn insert(&mut self, agent: Arc<AgentSpec>) {
        let name = agent.metadata.name.as_str();
        let slot = match self
            .0
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.metadata.name == name))
        {
            Some(i) => i,
            None => usize::from(self.0[0].is_some()),
        };
        self.0[slot] = Some(agent);
    }

    /// The agent named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<AgentSpec>> {
        self.0.iter().flatten().find(|a| a.metadata.name == name)
    }

    /// Every agent.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<AgentSpec>> {
        self.0.iter().flatten()
    }
}

/// The actors `agent:<name>`, one shared string per agent: every step's events name
/// their agent, and formatting it each time cost two allocations.
#[derive(Debug, Default)]
pub(crate) struct Actors(std::sync::Mutex<crate::fastmap::FastMap<String, Arc<str>>>);

impl Actors {
    /// `agent:<name>`, or `engine` for no agent.
    pub(crate) fn agent(&self, name: &str) -> Arc<str> {
        if name.is_empty() {
            return crate::events::engine_actor();
        }
        let mut actors = super::lock(&self.0);
        if let Some(a) = actors.get(name) {
            return a.clone();
        }
        let a: Arc<str> = crate::events::detail!("agent:{name}").into();
        actors.insert(name.to_string(), a.clone());
        a
    }
}

/// A built tool list and the agent spec it was built from.
type ToolList = (Arc<AgentSpec>, Arc<[ToolDefinition]>);

impl ToolLists {
    /// Forgets every list (the tool table changed).
    pub(crate) fn clear(&self) {
        super::lock(&self.0).clear();
    }

    /// The list for `agent` (planning or not), built by `build` when absent or stale.
    pub(crate) fn get(
        &self,
        agent: &Arc<AgentSpec>,
        planning: bool,
        build: impl FnOnce() -> Arc<[ToolDefinition]>,
    ) -> Arc<[ToolDefinition]> {
        let name = agent.metadata.name.as_str();
        let i = usize::from(planning);
        if let Some((spec, list)) = super::lock(&self.0).get(name).and_then(|e| e[i].as_ref())
            && Arc::ptr_eq(spec, agent)
        {
            return list.clone();
        }
        let list = build();
        let mut lists = super::lock(&self.0);
        let entry = lists.entry(name.to_string()).or_default();
        entry[i] = Some((agent.clone(), list.clone()));
        if entry[1 - i]
            .as_ref()
            .is_some_and(|(spec, _)| !Arc::ptr_eq(spec, agent))
        {
            entry[1 - i] = None;
        }
        list
    }
}

pub(super) fn fail(reason: impl Into<String>, retryable: bool) -> Outcome {
    Outcome::Failed {
        reason: reason.into(),
        retryable,
    }
}

pub(super) use crate::text::{clip, clip_json};

impl AttemptCtx<'_> {
    pub(super) fn report(&self, outcome: Outcome) -> AttemptReport {
        AttemptReport {
            outcome,
            usage: Usage::default(),
            transcript: Default::default(),
            events: Vec::new(),
            resolves: Vec::new(),
        }
    }

    /// An event of this attempt's step; the step id is shared with the record's.
    pub(super) fn event(
        &self,
        actor: &std::sync::Arc<str>,
        action: crate::events::EventAction,
        detail: String,
    ) -> NewEvent {
        match self.record.step(&self.spec.id) {
            Some(s) => NewEvent::shared(self.clock.now_ms(), actor, action, Some(&s.id), detail),
            None => NewEvent::new(
                self.clock.now_ms(),
                actor.clone(),
                action,
                Some(&self.spec.id),
                detail,
            ),
        }
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

#[cfg(test)]
mod tool_list_tests {
    use super::*;

    fn agent(model: &str) -> Arc<AgentSpec> {
        let yaml = format!(
            "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {{name: a}}\nspec: {{model: {model}, system_prompt: s}}\n"
        );
        Arc::new(serde_saphyr::from_str(&yaml).expect("agent"))
    }

    fn list(name: &str) -> Arc<[ToolDefinition]> {
        vec![ToolDefinition::new(name, "d", serde_json::json!({}))].into()
    }

    #[test]
    fn built_once_per_spec_and_mode_and_rebuilt_for_a_new_spec() {
        let lists = ToolLists::default();
        let (v1, v2) = (agent("m1"), agent("m2"));
        let first = lists.get(&v1, false, || list("x"));
        let again = lists.get(&v1, false, || list("never built"));
        assert!(Arc::ptr_eq(&first, &again));
        let planning = lists.get(&v1, true, || list("p"));
        assert_eq!(planning[0].name, "p");
        // A new spec under the same name: both modes are rebuilt.
        let fresh = lists.get(&v2, false, || list("y"));
        assert_eq!(fresh[0].name, "y");
        let planning2 = lists.get(&v2, true, || list("p2"));
        assert_eq!(planning2[0].name, "p2");
    }
}
