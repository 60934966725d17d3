//! Step and job budgets stop the tool loop with a clear outcome; usage and cost roll
//! up into the step records and the event log; a provider factory builds the provider
//! an agent spec names (and a failing factory blocks the step with its reason).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use george::model::AgentConfig;
use george::prelude::*;
use george::provider::{DynProvider, ProviderFactory, Usage};
use george::scripted::tool_call;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);

fn agent(provider: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {{name: worker}}
spec:
  provider: {provider}
  model: m-1
  base_url: http://127.0.0.1:9/v1
  api_key_env: GEORGE_TEST_NO_SUCH_KEY
  system_prompt: You work.
  tools: [run_command]
"
    )
}

const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: t}
spec:
  steps:
    - id: first
      agent: worker
      instructions: Work.
    - id: second
      agent: worker
      depends_on: [first]
      instructions: Work more.
      budget: {max_tokens: 5000}
";

fn job(budget: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {{name: j}}
spec: {{template: t{budget}}}
"
    )
}

/// A response that calls `run_command` (so the loop goes on) and costs `usd`.
fn expensive(tokens: u64, usd: f64) -> ChatResponse {
    let mut r = tool_call("c", "run_command", json!({"program": "true"}));
    r.usage = Usage {
        input_tokens: tokens,
        output_tokens: 10,
        cost_usd: usd,
        ..Usage::default()
    };
    r
}

fn success(usd: f64) -> ChatResponse {
    let mut r = tool_call(
        "s",
        "report_success",
        json!({"summary": "done", "outputs": {}}),
    );
    r.usage = Usage {
        input_tokens: 100,
        output_tokens: 10,
        cost_usd: usd,
        ..Usage::default()
    };
    r
}

fn engine(git: &InMemoryGitSource, provider: ScriptedProvider) -> Engine {
    Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
        .provider("default", Arc::new(provider))
        .commands(CommandToolExecutor::new(["true"]))
        .build()
        .expect("engine")
}

#[tokio::test]
async fn a_job_budget_in_usd_stops_the_tool_loop() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/worker.yaml", agent("default")),
            ("task-templates/t.yaml", TEMPLATE.to_string()),
            ("jobs/j.yaml", job(", budget: {max_cost_usd: 0.05}")),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    provider.expect_call("first succeeds", success(0.02));
    provider.expect_call("second works", expensive(100, 0.02));
    provider.expect_call("second works more", expensive(100, 0.02));
    let e = engine(&git, provider.clone());
    e.start().await.unwrap();
    let run = e.spawn();
    let status = e.wait_finished("j", LIMIT).await.unwrap();
    run.shutdown().await;
    assert_eq!(status, JobStatus::Failed);
    let rec = e.job("j").await.unwrap().unwrap();
    let second = rec.step("second").unwrap();
    let msg = second.message.clone().unwrap_or_default();
    assert!(msg.contains("job budget exceeded"), "{msg}");
    assert!(msg.contains("$0.06"), "{msg}");
    assert_eq!(
        provider.requests().len(),
        3,
        "no model call after the budget ran out"
    );
    // Usage and cost roll up per step.
    assert!((rec.step("first").unwrap().usage.cost_usd - 0.02).abs() < 1e-9);
    assert!((second.usage.cost_usd - 0.04).abs() < 1e-9);
    assert_eq!(second.usage.input_tokens, 200);
    let events = e.events("j").await.unwrap();
    assert!(events.iter().any(|ev| ev.action == "budget.exceeded"));
    assert!(
        events
            .iter()
            .any(|ev| ev.action == "model.responded" && ev.detail.contains("$0.020000")),
        "the event log names each call's cost"
    );
}

#[tokio::test]
async fn a_step_token_budget_stops_the_tool_loop_and_is_not_retried() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/worker.yaml", agent("default")),
            ("task-templates/t.yaml", TEMPLATE.to_string()),
            ("jobs/j.yaml", job("")),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    provider.expect_call("first succeeds", success(0.0));
    provider.expect_call("second burns tokens", expensive(6000, 0.0));
    let e = engine(&git, provider.clone());
    e.start().await.unwrap();
    let run = e.spawn();
    let status = e.wait_finished("j", LIMIT).await.unwrap();
    run.shutdown().await;
    assert_eq!(status, JobStatus::Failed);
    let rec = e.job("j").await.unwrap().unwrap();
    let second = rec.step("second").unwrap();
    assert_eq!(second.attempt, 1, "a budget failure is not retried");
    let msg = second.message.clone().unwrap_or_default();
    assert!(
        msg.contains("step budget exceeded: 6010 tokens used, budget 5000"),
        "{msg}"
    );
}

/// (provider, base_url, api_key_env) of each build.
type Built = Vec<(String, Option<String>, Option<String>)>;

#[derive(Debug, Default)]
struct Factory {
    built: Mutex<Built>,
    provider: Option<ScriptedProvider>,
}

impl ProviderFactory for Factory {
    fn build(&self, agent: &AgentConfig) -> george::Result<DynProvider> {
        self.built.lock().unwrap().push((
            agent.provider.clone(),
            agent.base_url.clone(),
            agent.api_key_env.clone(),
        ));
        match &self.provider {
            Some(p) => Ok(Arc::new(p.clone())),
            None => Err(george::Error::new(
                george::ErrorKind::Unauthenticated,
                "the environment variable GEORGE_TEST_NO_SUCH_KEY (the API key) is not set",
            )),
        }
    }
}

#[tokio::test]
async fn a_provider_factory_builds_what_the_agent_spec_names_once() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/worker.yaml", agent("acme")),
            ("task-templates/t.yaml", TEMPLATE.to_string()),
            ("jobs/j.yaml", job("")),
        ],
        "c1",
    );
    let provider = ScriptedProvider::new();
    provider.expect_call("first", success(0.0));
    provider.expect_call("second", success(0.0));
    let factory = Arc::new(Factory {
        provider: Some(provider.clone()),
        ..Factory::default()
    });
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
        .provider_factory(factory.clone())
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    assert_eq!(
        *factory.built.lock().unwrap(),
        vec![(
            "acme".to_string(),
            Some("http://127.0.0.1:9/v1".to_string()),
            Some("GEORGE_TEST_NO_SUCH_KEY".to_string())
        )],
        "built once, from the agent spec's provider, base_url and api_key_env"
    );
    assert!(provider.requests().iter().all(|r| &*r.model == "m-1"));
}

#[tokio::test]
async fn a_factory_error_blocks_the_step_with_its_reason() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            ("agent-specs/worker.yaml", agent("acme")),
            ("task-templates/t.yaml", TEMPLATE.to_string()),
            ("jobs/j.yaml", job("")),
        ],
        "c1",
    );
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git.clone()))
        .provider_factory(Arc::new(Factory::default()))
        .build()
        .expect("engine");
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Blocked
    );
    run.shutdown().await;
    let rec = e.job("j").await.unwrap().unwrap();
    let msg = rec.steps[0].message.clone().unwrap_or_default();
    assert!(msg.contains("GEORGE_TEST_NO_SUCH_KEY"), "{msg}");
}
