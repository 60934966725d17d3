//! Shared parts of the guarantee tests: a ledger tool executor that applies each
//! idempotency key once, manifests with a planning step and its execution, and an
//! engine on in-memory backends.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george_core::engine::Engine;
use george_core::human::ChannelHuman;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::scripted::{ScriptedProvider, tool_call};
use george_core::state::ApprovalRequest;
use george_core::tool::{
    EffectClass, ToolContext, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput,
};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

pub const LIMIT: Duration = Duration::from_secs(20);

/// One call that reached the ledger.
#[derive(Debug, Clone)]
pub struct Call {
    pub tool: String,
    pub key: String,
    pub context: ToolContext,
}

/// Tools `peek` (read) and `change` (write). `change` applies its effect once per
/// idempotency key (a replay returns the first result), like a well-behaved executor.
/// With `hang_on` set, the first call of `change` with that key never returns.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub effects: Arc<Mutex<HashMap<String, usize>>>,
    pub hang_on: Arc<Mutex<Option<String>>>,
}

impl Ledger {
    pub fn calls_of(&self, tool: &str) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|c| c.tool == tool).cloned().collect()
    }

    /// How many distinct effects `change` had (one per key).
    pub fn effects(&self) -> usize {
        self.effects.lock().unwrap().len()
    }
}

#[async_trait]
impl ToolExecutor for Ledger {
    fn tools(&self) -> Vec<ToolDefinition> {
        vec![
            ToolDefinition::new("peek", "Reads.", json!({"type": "object"}))
                .with_effect(EffectClass::Read),
            ToolDefinition::new("change", "Changes.", json!({"type": "object"})),
        ]
    }

    async fn call(&self, inv: ToolInvocation) -> george_core::Result<ToolOutput> {
        self.calls.lock().unwrap().push(Call {
            tool: inv.name.clone(),
            key: inv.idempotency_key.clone(),
            context: inv.context.clone(),
        });
        if inv.name == "change" {
            let hang = {
                let mut h = self.hang_on.lock().unwrap();
                if h.as_deref() == Some(inv.idempotency_key.as_str()) {
                    *h = None;
                    true
                } else {
                    false
                }
            };
            if hang {
                std::future::pending::<()>().await;
            }
            *self
                .effects
                .lock()
                .unwrap()
                .entry(inv.idempotency_key)
                .or_default() += 1;
        }
        Ok(ToolOutput::ok("done"))
    }
}

pub fn agent(tools: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {{name: planner}}
spec:
  model: m
  system_prompt: You plan.
  tools: [{tools}]
"
    )
}

/// A template with `plan` (gated by `approval`) and `execute` running its plan; with
/// `approval` empty, `plan` only (no gate, no execution).
pub fn template(approval: &str) -> String {
    let mut t = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: t}
spec:
  parameters:
    - {name: n, type: integer}
  steps:
    - id: plan
      agent: planner
      instructions: Plan change {{ params.n }}.
"
    .to_string();
    if !approval.is_empty() {
        t.push_str(&format!(
            "      approval: {approval}
    - id: execute
      depends_on: [plan]
      execute_approved: plan
"
        ));
    }
    t
}

pub fn job(n: i64) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {{name: j}}
spec: {{template: t, params: {{n: {n}}}}}
"
    )
}

/// The planner's answer: a plan of `n` `change` actions.
pub fn plan_answer(id: &str, n: usize) -> george_core::provider::ChatResponse {
    let actions: Vec<_> = (0..n)
        .map(|i| json!({"tool": "change", "arguments": {"i": i}}))
        .collect();
    tool_call(
        id,
        "submit_plan",
        json!({"summary": format!("{n} change(s)"), "actions": actions}),
    )
}

pub struct Setup {
    pub git: InMemoryGitSource,
    pub store: Arc<InMemoryStateStore>,
    pub provider: ScriptedProvider,
    pub ledger: Ledger,
}

impl Setup {
    pub fn new(files: Vec<(&str, String)>) -> Self {
        let git = InMemoryGitSource::new();
        git.commit_files("main", files, "c1");
        Setup {
            git,
            store: Arc::new(InMemoryStateStore::new()),
            provider: ScriptedProvider::new(),
            ledger: Ledger::default(),
        }
    }

    pub fn engine(&self, id: &str) -> (Engine, UnboundedReceiver<ApprovalRequest>) {
        let (human, rx) = ChannelHuman::new();
        let e = Engine::builder(self.store.clone(), Arc::new(self.git.clone()))
            .id(id)
            .provider("default", Arc::new(self.provider.clone()))
            .tools(Arc::new(self.ledger.clone()))
            .human(Arc::new(human))
            .poll_interval(Duration::from_secs(3600))
            .build()
            .expect("engine");
        (e, rx)
    }
}

/// The next request on `rx` that is open, within [`LIMIT`].
pub async fn next_open(rx: &mut UnboundedReceiver<ApprovalRequest>) -> ApprovalRequest {
    loop {
        let req = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("an approval request in time")
            .expect("channel open");
        if req.status == george_core::state::ApprovalStatus::Open {
            return req;
        }
    }
}
