//! The quickstart's agents, unchanged but for `provider:` and `model:`, run through each
//! real adapter (built by `george::llm::Registry`) against a loopback server speaking
//! that provider's wire format. The model's answers are the quickstart's scripted ones,
//! encoded as OpenAI, Anthropic or Gemini responses; what the adapter sent is checked on
//! the wire: each rejection's reason reaches the next planning request.

#![cfg(feature = "llm")]

#[path = "../examples/support/mod.rs"]
mod support;

use std::time::Duration;

use george::llm::registry::{ProviderKind, ProviderProfile};
use george::llm::replay::{ReplayServer, Reply};
use george::llm::{ApiKey, Registry};
use george::prelude::*;
use george::provider::ChatResponse;
use serde_json::{Value, json};

const KEY_VAR: &str = "GEORGE_TEST_LLM_KEY";

fn openai(r: &ChatResponse) -> Value {
    let calls: Vec<Value> = r
        .message
        .tool_calls
        .iter()
        .map(|c| {
            json!({"id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments.to_string()}})
        })
        .collect();
    json!({"id": "chatcmpl-q", "object": "chat.completion", "model": "gpt-4.1-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": calls}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280,
            "prompt_tokens_details": {"cached_tokens": 1000}}})
}

fn anthropic(r: &ChatResponse) -> Value {
    let blocks: Vec<Value> = r
        .message
        .tool_calls
        .iter()
        .map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}))
        .collect();
    json!({"id": "msg_q", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": blocks, "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 200, "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 0, "output_tokens": 80}})
}

fn gemini(r: &ChatResponse) -> Value {
    let parts: Vec<Value> = r
        .message
        .tool_calls
        .iter()
        .map(|c| json!({"functionCall": {"name": c.name, "args": c.arguments}, "thoughtSignature": "sig"}))
        .collect();
    json!({"candidates": [{"index": 0, "finishReason": "STOP",
            "content": {"role": "model", "parts": parts}}],
        "usageMetadata": {"promptTokenCount": 1200, "cachedContentTokenCount": 1000,
            "candidatesTokenCount": 80, "totalTokenCount": 1280}})
}

async fn quickstart_over(
    provider: &str,
    model: &str,
    base_path: &str,
    encode: fn(&ChatResponse) -> Value,
) {
    let answers: Vec<ChatResponse> = support::investigation_answers()
        .into_iter()
        .chain(support::planning_answers())
        .collect();
    let server = ReplayServer::start(
        answers
            .iter()
            .map(|a| Reply::json(200, encode(a).to_string()))
            .collect(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let s = support::setup(dir.path());
    let base_url = format!("{}{base_path}", server.base_url());
    support::point_agents_at(&s, provider, model, Some(&base_url), Some(KEY_VAR)).unwrap();

    // The loopback server is the operator's endpoint: a profile by the provider's
    // name, which the committed specs (restating its base_url and key variable) choose.
    let kind = ProviderKind::parse(provider).expect("a wire protocol");
    let registry = Registry::new()
        .unwrap()
        .profile(ProviderProfile::new(provider, kind, &base_url).key_env(KEY_VAR))
        .stream(false)
        .key(KEY_VAR, ApiKey::new("k"));
    let (human, approvals) = ChannelHuman::new();
    let engine = support::engine_with(&s, human, "engine-wire", |b| {
        b.provider_factory(std::sync::Arc::new(registry))
    })
    .await
    .unwrap();
    let _human = support::spawn_human(engine.clone(), approvals);
    let _cluster = support::spawn_cluster_sync(&s, Duration::from_millis(500));
    engine.start().await.unwrap();
    let run = engine.spawn();
    let status = engine
        .wait_finished(support::JOB, Duration::from_secs(60))
        .await
        .unwrap();
    run.shutdown().await;
    let rec = engine.job(support::JOB).await.unwrap().unwrap();
    assert_eq!(
        status,
        JobStatus::Succeeded,
        "{provider}: {:?}",
        rec.steps
            .iter()
            .map(|s| (&s.id, &s.message))
            .collect::<Vec<_>>()
    );
    assert!(
        support::app_values(&s).contains("replicaCount: 2"),
        "{provider}: the approved change landed"
    );

    let sent = server.received();
    assert_eq!(
        sent.len(),
        5,
        "{provider}: five model calls, as in the quickstart"
    );
    let bodies: Vec<String> = sent
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(
        bodies[1].contains("replicaCount: 5"),
        "{provider}: the tool's result went back"
    );
    assert!(
        !bodies[2].contains("REJECTED"),
        "{provider}: no rejection before the first plan"
    );
    assert!(
        bodies[3].contains(support::REJECT_1),
        "{provider}: the first rejection reached plan 2"
    );
    let reject_2 = support::REJECT_2.replace('"', "\\\"");
    assert!(
        bodies[4].contains(support::REJECT_1) && bodies[4].contains(&reject_2),
        "{provider}: both rejections reached plan 3"
    );
    let cost: f64 = rec.steps.iter().map(|s| s.usage.cost_usd).sum();
    let cached: u64 = rec.steps.iter().map(|s| s.usage.cache_read_tokens).sum();
    assert!(
        cost > 0.0,
        "{provider}: cost rolled up into the job's steps"
    );
    assert_eq!(cached, 5000, "{provider}: cache reads rolled up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_over_openai_chat_completions() {
    quickstart_over("openai", "gpt-4.1-mini", "/v1", openai).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_over_anthropic_messages() {
    quickstart_over("anthropic", "claude-sonnet-4-5", "", anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_over_gemini() {
    quickstart_over("gemini", "gemini-2.5-flash", "/v1beta", gemini).await;
}
