//! The engine with each real adapter, built by `george::llm::Registry` from the agent
//! spec (`provider`, `model`, `base_url`, `api_key_env`), against a loopback server
//! speaking that provider's wire format: a tool call, its result sent back, then the
//! outcome. Usage, cache reads and cost reach the step record and the event log.

#![cfg(feature = "llm")]

use std::sync::Arc;
use std::time::Duration;

use george::llm::registry::{ProviderKind, ProviderProfile};
use george::llm::replay::{ReplayServer, Reply};
use george::llm::{ApiKey, Registry};
use george::prelude::*;
use serde_json::{Value, json};

const KEY_VAR: &str = "GEORGE_TEST_LLM_KEY";
const KEY: &str = "test-key-123";

struct Case {
    provider: &'static str,
    model: &'static str,
    /// Appended to the server's URL to make the base URL.
    base_path: &'static str,
    /// The header that must carry the key.
    auth_header: &'static str,
    tool_call: Value,
    success: Value,
}

fn openai() -> Case {
    let usage = json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 5}});
    let msg = |id: &str, name: &str, args: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": id, "type": "function",
                    "function": {"name": name, "arguments": args.to_string()}}]}}],
            "usage": usage})
    };
    Case {
        provider: "openai",
        model: "gpt-4o-mini",
        base_path: "/v1",
        auth_header: "authorization",
        tool_call: msg(
            "call_1",
            "run_command",
            json!({"program": "echo", "args": ["hi"]}),
        ),
        success: msg(
            "call_2",
            "report_success",
            json!({"summary": "done", "outputs": {"said": "hi"}}),
        ),
    }
}

fn anthropic() -> Case {
    let msg = |id: &str, name: &str, input: Value| {
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "tool_use", "id": id, "name": name, "input": input}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 60, "cache_read_input_tokens": 40,
                "cache_creation_input_tokens": 0, "output_tokens": 20}})
    };
    Case {
        provider: "anthropic",
        model: "claude-sonnet-4-5",
        base_path: "",
        auth_header: "x-api-key",
        tool_call: msg(
            "toolu_1",
            "run_command",
            json!({"program": "echo", "args": ["hi"]}),
        ),
        success: msg(
            "toolu_2",
            "report_success",
            json!({"summary": "done", "outputs": {"said": "hi"}}),
        ),
    }
}

fn gemini() -> Case {
    let msg = |name: &str, args: Value| {
        json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model",
                "parts": [{"functionCall": {"name": name, "args": args}, "thoughtSignature": "sig-1"}]}}],
            "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 40,
                "candidatesTokenCount": 15, "thoughtsTokenCount": 5, "totalTokenCount": 120},
            "modelVersion": "gemini-2.5-flash"})
    };
    Case {
        provider: "gemini",
        model: "gemini-2.5-flash",
        base_path: "/v1beta",
        auth_header: "x-goog-api-key",
        tool_call: msg("run_command", json!({"program": "echo", "args": ["hi"]})),
        success: msg(
            "report_success",
            json!({"summary": "done", "outputs": {"said": "hi"}}),
        ),
    }
}

async fn run(case: Case) {
    let server = ReplayServer::start(vec![
        Reply::json(200, case.tool_call.to_string()),
        Reply::json(200, case.success.to_string()),
    ])
    .await;
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            (
                "agent-specs/worker.yaml",
                format!(
                    "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {{name: worker}}\nspec:\n  \
                     provider: {}\n  model: {}\n  base_url: {}{}\n  api_key_env: {KEY_VAR}\n  \
                     system_prompt: You work.\n  tools: [run_command]\n",
                    case.provider,
                    case.model,
                    server.base_url(),
                    case.base_path
                ),
            ),
            (
                "task-templates/t.yaml",
                "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    \
                 - {id: say, agent: worker, instructions: Say hi with echo.}\n"
                    .to_string(),
            ),
            (
                "jobs/j.yaml",
                "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n"
                    .to_string(),
            ),
        ],
        "c1",
    );
    // The loopback server is the operator's endpoint: a profile by the provider's
    // name, which the committed spec (restating its base_url and key variable) chooses.
    let kind = ProviderKind::parse(case.provider).expect("a wire protocol");
    let url = format!("{}{}", server.base_url(), case.base_path);
    let registry = Registry::new()
        .expect("HTTP client")
        .profile(ProviderProfile::new(case.provider, kind, url).key_env(KEY_VAR))
        .stream(false)
        .key(KEY_VAR, ApiKey::new(KEY));
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider_factory(Arc::new(registry))
        .commands(CommandToolExecutor::new(["echo"]))
        .build()
        .expect("engine");
    e.start().await.expect("start");
    let run = e.spawn();
    let status = e
        .wait_finished("j", Duration::from_secs(20))
        .await
        .expect("finished");
    run.shutdown().await;
    let rec = e.job("j").await.unwrap().unwrap();
    assert_eq!(
        status,
        JobStatus::Succeeded,
        "{}: {:?}",
        case.provider,
        rec.steps[0].message
    );
    let step = &rec.steps[0];
    assert_eq!(
        step.outputs.as_ref().and_then(|o| o.get("said")),
        Some(&json!("hi")),
        "{}",
        case.provider
    );
    let u = step.usage;
    assert_eq!(
        u.cache_read_tokens, 80,
        "{}: two calls, 40 cached each",
        case.provider
    );
    assert_eq!(u.input_tokens, 120, "{}: uncached input", case.provider);
    assert_eq!(
        u.output_tokens, 40,
        "{}: output, reasoning included",
        case.provider
    );
    assert!(u.cost_usd > 0.0, "{}: priced", case.provider);
    let events = e.events("j").await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|ev| ev.action == "model.responded")
            .count(),
        2
    );
    let sent = server.received();
    assert_eq!(sent.len(), 2, "{}", case.provider);
    for r in &sent {
        let auth = r.header(case.auth_header).unwrap_or_default();
        assert!(
            auth.contains(KEY),
            "{}: key sent in {}",
            case.provider,
            case.auth_header
        );
    }
    let second = String::from_utf8_lossy(&sent[1].body);
    assert!(
        second.contains("hi"),
        "{}: the tool's result goes back to the model: {second}",
        case.provider
    );
}

#[tokio::test]
async fn openai_adapter_runs_an_agent_step() {
    run(openai()).await;
}

#[tokio::test]
async fn anthropic_adapter_runs_an_agent_step() {
    run(anthropic()).await;
}

#[tokio::test]
async fn gemini_adapter_runs_an_agent_step() {
    run(gemini()).await;
}
