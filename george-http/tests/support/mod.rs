//! An engine on in-memory backends with a planning step that needs approval (by group
//! `sre`), served by the operator API on loopback, and a small client.

#![allow(dead_code)]

pub mod sse;
use std::sync::Arc;
use std::time::Duration;

use george_core::command::CommandToolExecutor;
use george_core::engine::Engine;
use george_core::human::ChannelHuman;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::scripted::{ScriptedProvider, tool_call};
use george_core::state::{ApprovalRequest, ApprovalStatus};
use george_core::tool::EffectClass;
use george_http::{AuthConfig, Identity, Role};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

pub const LIMIT: Duration = Duration::from_secs(20);

/// Tokens: `reader` (read), `alice` (decide, group sre), `mallory` (decide, no group),
/// `root` (admin, group sre).
pub const READER: &str = "reader-token";
pub const ALICE: &str = "alice-token";
pub const MALLORY: &str = "mallory-token";
pub const ROOT: &str = "root-token";

const AGENT: &str = "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: planner}
spec: {model: m, system_prompt: You plan., tools: [run_command]}
";

const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: gated}
spec:
  description: Plan, wait for sre, then check.
  parameters:
    - {name: n, type: integer}
  steps:
    - id: plan
      agent: planner
      instructions: Plan change {{ params.n }}.
      approval: {required: true, approvers: [group:sre]}
    - id: check
      depends_on: [plan]
      command: {program: 'true'}
";

const FAILING: &str = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: failing}
spec:
  steps:
    - {id: s, command: {program: 'false'}, retry: {attempts: 1}}
";

pub fn job(name: &str, template: &str, params: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {name}}}\nspec: {{template: {template}, params: {{{params}}}}}\n"
    )
}

/// The planner's answer: a plan with no action.
pub fn plan(id: &str, summary: &str) -> george_core::provider::ChatResponse {
    tool_call(
        id,
        "submit_plan",
        json!({"summary": summary, "actions": []}),
    )
}

pub fn auth() -> AuthConfig {
    AuthConfig::new()
        .token(READER, Identity::new("reader", Role::Read))
        .token(ALICE, Identity::new("alice", Role::Decide).in_group("sre"))
        .token(MALLORY, Identity::new("mallory", Role::Decide))
        .token(ROOT, Identity::new("root", Role::Admin).in_group("sre"))
}

pub struct Server {
    pub base: String,
    pub engine: Engine,
    pub store: Arc<InMemoryStateStore>,
    pub git: InMemoryGitSource,
    pub provider: ScriptedProvider,
    pub requests: UnboundedReceiver<ApprovalRequest>,
    pub http: reqwest::Client,
    run: Option<george_core::engine::RunHandle>,
}

impl Server {
    /// Jobs `gated` (waits for a plan's approval) and `failing` (fails), and an invalid
    /// `jobs/broken.yaml`; the provider answers the first planning call.
    pub async fn start() -> Server {
        Self::start_with(auth()).await
    }

    pub async fn start_with(auth: AuthConfig) -> Server {
        let git = InMemoryGitSource::new();
        git.commit_files(
            "main",
            vec![
                ("agent-specs/planner.yaml", AGENT.to_string()),
                ("task-templates/gated.yaml", TEMPLATE.to_string()),
                ("task-templates/failing.yaml", FAILING.to_string()),
                ("jobs/gated.yaml", job("gated", "gated", "n: 1")),
                ("jobs/failing.yaml", job("failing", "failing", "")),
                (
                    "jobs/broken.yaml",
                    "kind: Job\nmetadata: {name: broken}\n".to_string(),
                ),
            ],
            "c1",
        );
        let provider = ScriptedProvider::new();
        provider.expect_call("plan 1", plan("c1", "first plan"));
        let (human, requests) = ChannelHuman::new();
        let store = Arc::new(InMemoryStateStore::new());
        let engine = Engine::builder(store.clone(), Arc::new(git.clone()))
            .id("engine-1")
            .provider("default", Arc::new(provider.clone()))
            .commands(CommandToolExecutor::new(["true", "false"]))
            .effect_class("run_command", EffectClass::Read)
            .human(Arc::new(human))
            .poll_interval(Duration::from_secs(3600))
            .build()
            .expect("engine");
        let app = axum::Router::new().nest("/ops", george_http::router(engine.clone(), auth));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}/ops", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        engine.start().await.expect("start");
        let run = Some(engine.spawn());
        Server {
            base,
            engine,
            store,
            git,
            provider,
            requests,
            http: reqwest::Client::new(),
            run,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` (under `/ops`) with `token`: the status and the JSON body.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        answer(req.send().await.expect("sent")).await
    }

    /// POST `body` as JSON to `path` with `token`.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        answer(req.send().await.expect("sent")).await
    }

    /// The next open approval request, within [`LIMIT`].
    pub async fn next_open(&mut self) -> ApprovalRequest {
        loop {
            let req = tokio::time::timeout(LIMIT, self.requests.recv())
                .await
                .expect("an approval request in time")
                .expect("channel open");
            if req.status == ApprovalStatus::Open {
                return req;
            }
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(run) = self.run.take() {
            run.shutdown().await;
        }
    }
}

/// The status and JSON body of `res`; a problem's content type is checked.
pub async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = res.bytes().await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{status}: {body}");
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://george.dev/problems/")),
            "{body}"
        );
    }
    (status, body)
}
