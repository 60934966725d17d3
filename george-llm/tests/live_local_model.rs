//! The OpenAI-compatible adapter against a model that actually runs: Gemma 3 270M
//! (Q4_K_M) served by llama.cpp's `llama-server` on loopback, both installed by
//! `scripts/local-model-setup.sh` and found through `GEORGE_TEST_LOCAL_MODEL_DIR`
//! (skipped loudly without it).
//!
//! - a plain completion: text and usage, streamed and not;
//! - one tool and `tool_choice: required`: a tool call with parsed arguments, streamed
//!   and not (llama.cpp constrains the output with a grammar built from the schema);
//! - a one-step George job on the engine whose agent is this model, finishing the step
//!   through `report_success`;
//! - a request longer than the context maps to `ContextTooLong`, streamed and not.
//!
//! Each test starts its own server (a second or two: the model is small), one test at a
//! time; the server runs at temperature 0 with a fixed seed.
#![cfg(all(feature = "openai", feature = "reqwest"))]

mod live_support;

use std::sync::Arc;
use std::time::Duration;

use george_core::ErrorKind;
use george_core::engine::Engine;
use george_core::events::EventAction;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::provider::{ChatRequest, Message, Provider, StopReason};
use george_core::state::JobStatus;
use george_core::tool::ToolDefinition;
use george_llm::openai::{OpenAiProvider, ToolChoice};
use live_support::{CTX_SIZE, LlamaServer, MODEL, model_dir};
use serde_json::json;

fn weather_tool() -> ToolDefinition {
    ToolDefinition::new(
        "get_weather",
        "Get the current weather in a city.",
        json!({
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name"}},
            "required": ["city"]
        }),
    )
}

async fn plain_completion(stream: bool) {
    let test = format!("plain_completion_stream_{stream}");
    let Some(dir) = model_dir(&test) else {
        return;
    };
    let server = LlamaServer::start(&dir, &test).await;
    let provider = OpenAiProvider::new(server.config(stream));
    let answer = provider
        .complete(
            ChatRequest::new(
                MODEL,
                "You are a helpful assistant. Answer in one short sentence.",
                vec![Message::User {
                    content: "What is the capital of France?".into(),
                }],
            )
            .with_max_tokens(Some(32))
            .with_temperature(Some(0.0)),
        )
        .await
        .unwrap_or_else(|e| panic!("completion failed: {e}\n{}", server.log_tail()));
    eprintln!("{test}: {answer:?}");
    // A base model of 270M parameters: the text is not checked for sense, only that there
    // is some.
    let text = answer.message.content.as_deref().unwrap_or_default();
    assert!(!text.trim().is_empty(), "no text: {answer:?}");
    assert!(answer.message.tool_calls.is_empty());
    // The prompt is a few dozen tokens once in the chat template; the answer at most 32,
    // and cut there (`finish_reason: length`) when it used them all.
    let usage = answer.usage;
    assert!(usage.input_tokens > 10, "{usage:?}");
    assert!(
        usage.output_tokens > 0 && usage.output_tokens <= 32,
        "{usage:?}"
    );
    let expected = if usage.output_tokens == 32 {
        StopReason::MaxTokens
    } else {
        StopReason::EndTurn
    };
    assert_eq!(answer.stop_reason, expected, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_completion_returns_text_and_usage() {
    plain_completion(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_plain_completion_returns_text_and_usage() {
    plain_completion(true).await;
}

async fn forced_tool_call(stream: bool) {
    let test = format!("forced_tool_call_stream_{stream}");
    let Some(dir) = model_dir(&test) else {
        return;
    };
    let server = LlamaServer::start(&dir, &test).await;
    let provider = OpenAiProvider::new(server.config(stream)).tool_choice(ToolChoice::Required);
    let answer = provider
        .complete(
            ChatRequest::new(
                MODEL,
                "You are a helpful assistant. Use the tools.",
                vec![Message::User {
                    content: "What is the weather in Paris?".into(),
                }],
            )
            .with_tools(vec![weather_tool()])
            .with_max_tokens(Some(64))
            .with_temperature(Some(0.0)),
        )
        .await
        .unwrap_or_else(|e| panic!("completion failed: {e}\n{}", server.log_tail()));
    eprintln!("{test}: {answer:?}");
    assert_eq!(answer.stop_reason, StopReason::ToolUse, "{answer:?}");
    let [call] = answer.message.tool_calls.as_slice() else {
        panic!("one tool call expected: {answer:?}");
    };
    assert_eq!(call.name, "get_weather");
    assert!(!call.id.is_empty());
    // The arguments arrive as a JSON string on the wire: parsed, not kept as text.
    let city = call.arguments["city"]
        .as_str()
        .unwrap_or_else(|| panic!("arguments {:?}", call.arguments));
    assert!(city.contains("Paris"), "{city:?}");
    assert!(answer.usage.input_tokens > 0, "{:?}", answer.usage);
    assert!(answer.usage.output_tokens > 0, "{:?}", answer.usage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_tool_call_comes_back_parsed() {
    forced_tool_call(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_forced_tool_call_comes_back_parsed() {
    forced_tool_call(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_model_finishes_a_step_through_report_success() {
    let test = "the_live_model_finishes_a_step_through_report_success";
    let Some(dir) = model_dir(test) else {
        return;
    };
    let server = LlamaServer::start(&dir, test).await;
    // `required`: every answer is a tool call; the outcome tools are the only ones offered.
    // A base model of 270M parameters picks `report_failure` as readily as
    // `report_success`: the agent's system prompt shows it the call it should make (an
    // operator's prompt, not the engine's), the grammar makes the arguments fit the schema.
    let provider = OpenAiProvider::new(server.config(false)).tool_choice(ToolChoice::Required);
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        vec![
            (
                "agent-specs/greeter.yaml",
                format!(
                    "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {{name: greeter}}
spec:
  model: {MODEL}
  system_prompt: |
    You finish every task by calling report_success, like this:
    <tool_call>
    {{\"name\": \"report_success\", \"arguments\": {{\"outputs\": {{\"result\": \"ok\"}}, \"summary\": \"done\"}}}}
    </tool_call>
  temperature: 0
  max_tokens: 128
  max_iterations: 3
"
                ),
            ),
            (
                "task-templates/greet.yaml",
                "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: greet}
spec:
  steps:
    - id: greet
      agent: greeter
      instructions: |
        Say hello. Call report_success with summary \"said hello\" and outputs {\"greeting\": \"hello\"}.
"
                .to_string(),
            ),
            (
                "jobs/hello.yaml",
                "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: hello}
spec: {template: greet}
"
                .to_string(),
            ),
        ],
        "a job for the live model",
    );
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .id("live")
        .provider("default", Arc::new(provider))
        .poll_interval(Duration::from_secs(3600))
        .build()
        .expect("engine");
    engine.start().await.expect("start");
    assert!(
        engine.manifest_errors().is_empty(),
        "{:?}",
        engine.manifest_errors()
    );
    let run = engine.spawn();
    let status = engine
        .wait_finished("hello", Duration::from_secs(300))
        .await
        .expect("wait");
    run.shutdown().await;
    let events = engine.events("hello").await.expect("events");
    for e in &events {
        eprintln!(
            "{:<20} {:<8} {}",
            e.action,
            e.step.as_deref().unwrap_or("-"),
            e.detail
        );
    }
    assert_eq!(status, JobStatus::Succeeded, "{}", server.log_tail());
    let job = engine.job("hello").await.expect("job").expect("stored");
    let step = &job.steps[0];
    let outputs = step.outputs.as_deref().expect("outputs");
    assert!(outputs.is_object(), "{outputs}");
    assert!(step.usage.input_tokens > 0, "{:?}", step.usage);
    assert!(step.usage.output_tokens > 0, "{:?}", step.usage);
    assert!(
        events
            .iter()
            .any(|e| e.action == EventAction::ModelResponded),
        "the model's answer is in the log"
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == EventAction::OutcomeReported
                && e.detail.starts_with("report_success")),
        "the model called report_success"
    );
}

async fn context_too_long(stream: bool) {
    let test = format!("context_too_long_stream_{stream}");
    let Some(dir) = model_dir(&test) else {
        return;
    };
    let server = LlamaServer::start(&dir, &test).await;
    let provider = OpenAiProvider::new(server.config(stream));
    // Well over CTX_SIZE tokens: each "word" is at least one token.
    let long = "word ".repeat(CTX_SIZE as usize * 2);
    let err = provider
        .complete(
            ChatRequest::new(MODEL, "Summarise.", vec![Message::User { content: long }])
                .with_max_tokens(Some(8)),
        )
        .await
        .expect_err("a prompt longer than the context");
    eprintln!("{test}: {err}");
    assert_eq!(err.kind(), ErrorKind::ContextTooLong, "{err}");
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_longer_than_the_context_is_context_too_long() {
    context_too_long(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_request_longer_than_the_context_is_context_too_long() {
    context_too_long(true).await;
}
