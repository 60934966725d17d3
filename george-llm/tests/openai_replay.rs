//! The OpenAI-compatible adapter against recorded exchanges (tests/fixtures/llm-wire/
//! openai/ and llamacpp/) served over loopback, and against faults.
//!
//! For each recording the test rebuilds the `ChatRequest` from the recorded body,
//! checks that the adapter sends what the real client sent and that it understands
//! the answer. What the check leaves out of the recorded body, and why:
//! - the system message's content: the recorded client sends an array of text parts,
//!   the adapter a plain string (accepted by every compatible server); the test
//!   compares the text;
//! - the `accept` header: the recorded client sent `*/*` for plain JSON, the adapter
//!   `application/json` (only `text/event-stream` for streams is checked);
//! - extra fields the adapter sends (e.g. `tool_choice: auto` for the llama.cpp tool
//!   recording): `json_includes` allows them.
#![cfg(all(feature = "openai", feature = "replay"))]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use george_core::provider::{
    AssistantMessage, ChatRequest, ChatResponse, Message, Provider, StopReason, ToolCall,
};
use george_core::tool::ToolDefinition;
use george_core::{ErrorKind, Result};
use george_llm::openai::{MaxTokensField, OpenAiProvider, ToolChoice};
use george_llm::replay::{Cassette, Received, ReplayServer, Reply, json_includes};
use george_llm::{ApiKey, ProviderConfig, ReqwestTransport, RetryPolicy, Retrying};
use serde_json::{Value, json};

fn cassette(rel: &str) -> Cassette {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llm-wire")
        .join(rel);
    Cassette::load(path).unwrap()
}

/// A configuration for the replay server, over the real HTTP client; the recordings'
/// paths are `/v1/chat/completions`.
fn config(server: &ReplayServer, stream: bool) -> ProviderConfig {
    let transport = ReqwestTransport::new(Duration::from_secs(5)).unwrap();
    ProviderConfig::new(format!("{}/v1", server.base_url()), Arc::new(transport)).stream(stream)
}

/// The `ChatRequest` the recorded body asks for.
fn request_from(body: &Value) -> ChatRequest {
    let mut system = String::new();
    let mut messages = Vec::new();
    for m in body["messages"].as_array().unwrap() {
        match m["role"].as_str().unwrap() {
            "system" => system = text_of(&m["content"]),
            "user" => messages.push(Message::User {
                content: text_of(&m["content"]),
            }),
            other => panic!("unexpected role {other} in a first request"),
        }
    }
    let tools: Vec<ToolDefinition> = body["tools"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    ToolDefinition::new(
                        t["function"]["name"].as_str().unwrap(),
                        t["function"]["description"].as_str().unwrap(),
                        t["function"]["parameters"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ChatRequest::new(body["model"].as_str().unwrap(), system, messages)
        .with_tools(tools)
        .with_max_tokens(body["max_tokens"].as_u64().map(|n| n as u32))
}

/// A message content: a string, or the text of an array of text parts.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        other => panic!("content {other}"),
    }
}

/// The recorded body as the adapter should send it: the system content as a string.
fn expected_body(recorded: &str) -> Value {
    let mut v: Value = serde_json::from_str(recorded).unwrap();
    for m in v["messages"].as_array_mut().unwrap() {
        if m["role"] == "system" {
            m["content"] = Value::String(text_of(&m["content"]));
        }
    }
    v
}

/// The provider options the recorded body shows.
fn provider_for(cfg: ProviderConfig, body: &Value) -> OpenAiProvider {
    let mut p = OpenAiProvider::new(cfg);
    if body["tool_choice"] == "required" {
        p = p.tool_choice(ToolChoice::Required);
    }
    if let Some(par) = body["parallel_tool_calls"].as_bool() {
        p = p.parallel_tool_calls(par);
    }
    p
}

fn check_sent(sent: &Received, recorded: &george_llm::replay::RecordedRequest, expected: &Value) {
    assert_eq!(sent.method, recorded.method);
    assert_eq!(sent.path, recorded.path);
    assert!(sent.query.is_empty());
    assert_eq!(sent.header("content-type"), Some("application/json"));
    if expected["stream"] == true {
        assert_eq!(sent.header("accept"), Some("text/event-stream"));
    }
    if let Err(diff) = json_includes(&sent.json(), expected) {
        panic!(
            "sent body differs from the recording: {diff}\n{}",
            sent.json()
        );
    }
}

/// Replays the single-exchange recording `rel` (optionally with every reply split
/// into `chunk` bytes), checks the request, returns the answer.
async fn replay_one(rel: &str, key: Option<&str>, chunk: Option<usize>) -> ChatResponse {
    let c = cassette(rel);
    assert_eq!(c.exchanges.len(), 1, "{rel}");
    let ex = &c.exchanges[0];
    let replies = c
        .replies()
        .into_iter()
        .map(|r| match chunk {
            Some(n) => r.chunked(n),
            None => r,
        })
        .collect();
    let server = ReplayServer::start(replies).await;
    let expected = expected_body(&ex.when.body);
    let mut cfg = config(&server, expected["stream"] == true);
    if let Some(k) = key {
        cfg = cfg.api_key(ApiKey::new(k));
    }
    let provider = provider_for(cfg, &expected);
    let answer = provider.complete(request_from(&expected)).await.unwrap();
    let sent = server.received();
    assert_eq!(sent.len(), 1);
    check_sent(&sent[0], &ex.when, &expected);
    match key {
        Some(k) => assert_eq!(
            sent[0].header("authorization"),
            Some(&*format!("Bearer {k}"))
        ),
        None => assert_eq!(sent[0].header("authorization"), None),
    }
    answer
}

fn calls(r: &ChatResponse) -> Vec<(&str, &str, &Value)> {
    r.message
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), &c.arguments))
        .collect()
}

fn usage(r: &ChatResponse) -> (u64, u64, u64, u64, u64) {
    let u = &r.usage;
    (
        u.input_tokens,
        u.cache_read_tokens,
        u.cache_write_tokens,
        u.output_tokens,
        u.reasoning_tokens,
    )
}

fn check_record_payload(r: &ChatResponse) {
    let args = json!({"label": "café 東京", "values": [3, 5, 8], "meta": {"active": true}});
    assert_eq!(calls(r), vec![("call_REDACTED_1", "record_payload", &args)]);
    assert_eq!(r.message.content, None);
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(usage(r), (93, 0, 0, 30, 0));
    assert!(r.usage.cost_usd > 0.0, "gpt-4.1-mini is priced");
}

const GPT41_BLOCKING: &str = "openai/chat_tool_lifecycle_matrix/blocking_gpt41_nested_model.yaml";
const GPT4O_PARALLEL: &str = "openai/chat_tool_lifecycle_matrix/blocking_gpt4o_parallel_model.yaml";
const GPT41_STREAMING: &str = "openai/chat_tool_lifecycle_matrix/streaming_gpt41_nested_model.yaml";
const LLAMA_UNICODE: &str = "llamacpp/content_matrix/unicode_across_chunks.yaml";
const LLAMA_TOOLS: &str =
    "llamacpp/bare_openai_client/tool_call_stream_without_the_single_chunk_const.yaml";

#[tokio::test]
async fn openai_blocking_nested_arguments() {
    let r = replay_one(GPT41_BLOCKING, Some("sk-test"), None).await;
    check_record_payload(&r);
}

#[tokio::test]
async fn openai_blocking_parallel_calls() {
    let r = replay_one(GPT4O_PARALLEL, Some("sk-test"), None).await;
    let (red, blue) = (json!({"value": "red"}), json!({"value": "blue"}));
    assert_eq!(
        calls(&r),
        vec![
            ("call_REDACTED_1", "alpha", &red),
            ("call_REDACTED_2", "beta", &blue)
        ]
    );
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(usage(&r), (90, 0, 0, 42, 0));
    assert!(r.usage.cost_usd > 0.0);
}

#[tokio::test]
async fn openai_streaming_nested_arguments_whole_and_in_tiny_chunks() {
    let whole = replay_one(GPT41_STREAMING, Some("sk-test"), None).await;
    check_record_payload(&whole);
    let tiny = replay_one(GPT41_STREAMING, Some("sk-test"), Some(7)).await;
    assert_eq!(tiny, whole);
}

#[tokio::test]
async fn llamacpp_unicode_across_chunks() {
    let whole = replay_one(LLAMA_UNICODE, None, None).await;
    assert_eq!(
        whole.message.content.as_deref(),
        Some("🌍こんにちは世界🎉안녕하세요🚀Здравствуйте🌸")
    );
    assert!(whole.message.tool_calls.is_empty());
    assert_eq!(whole.stop_reason, StopReason::EndTurn);
    // prompt_tokens 60 of which 59 cached.
    assert_eq!(usage(&whole), (1, 59, 0, 20, 0));
    assert_eq!(whole.usage.cost_usd, 0.0, "a local model has no price");
    for n in [1, 7] {
        let split = replay_one(LLAMA_UNICODE, None, Some(n)).await;
        assert_eq!(split, whole, "chunks of {n} bytes");
    }
}

/// The two-turn tool loop of llama.cpp: reasoning deltas before the tool call and the
/// answer; the second recorded request has no body, so the test checks the second
/// request against the first turn's recorded body plus the tool call and its result.
async fn llamacpp_tool_loop(chunk: Option<usize>) {
    let c = cassette(LLAMA_TOOLS);
    assert_eq!(c.exchanges.len(), 2);
    let replies = c
        .replies()
        .into_iter()
        .map(|r| chunk.map_or(r.clone(), |n| r.chunked(n)))
        .collect();
    let server = ReplayServer::start(replies).await;
    let first = expected_body(&c.exchanges[0].when.body);
    let provider = provider_for(config(&server, true), &first);
    let mut req = request_from(&first);

    let turn1 = provider.complete(req.clone()).await.unwrap();
    let args = json!({"x": 2, "y": 5});
    assert_eq!(calls(&turn1), vec![("call_REDACTED_1", "subtract", &args)]);
    assert_eq!(turn1.message.content, None, "reasoning is not the answer");
    assert_eq!(turn1.stop_reason, StopReason::ToolUse);
    assert_eq!(usage(&turn1), (1, 290, 0, 97, 0));

    req.push(Message::Assistant(turn1.message.clone()));
    req.push(Message::Tool {
        tool_call_id: "call_REDACTED_1".into(),
        name: "subtract".into(),
        content: "-3".into(),
        is_error: false,
    });
    let turn2 = provider.complete(req).await.unwrap();
    let text = turn2.message.content.as_deref().unwrap();
    assert!(
        text.starts_with("The result of $ 2 - 5 $ is $-3$."),
        "{text}"
    );
    assert!(text.contains("\\boxed{-3}"), "{text}");
    assert!(!text.contains("Okay"), "no reasoning in the answer: {text}");
    assert!(turn2.message.tool_calls.is_empty());
    assert_eq!(turn2.stop_reason, StopReason::EndTurn);
    assert_eq!(usage(&turn2), (16, 387, 0, 86, 0));

    let sent = server.received();
    assert_eq!(sent.len(), 2);
    check_sent(&sent[0], &c.exchanges[0].when, &first);
    let mut second = first.clone();
    let msgs = second["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_REDACTED_1", "type": "function", "function": {"name": "subtract"}}
    ]}));
    msgs.push(json!({"role": "tool", "tool_call_id": "call_REDACTED_1", "content": "-3"}));
    check_sent(&sent[1], &c.exchanges[1].when, &second);
    let body = sent[1].json();
    let sent_args = body["messages"][2]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .expect("arguments travel as a JSON string");
    assert_eq!(serde_json::from_str::<Value>(sent_args).unwrap(), args);
}

#[tokio::test]
async fn llamacpp_tool_loop_with_reasoning() {
    llamacpp_tool_loop(None).await;
    llamacpp_tool_loop(Some(7)).await;
}

fn tool(name: &str, schema: Value) -> ToolDefinition {
    ToolDefinition::new(name, format!("the {name} tool"), schema)
}

const PLAIN_ANSWER: &str = r#"{"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"ok"}}],"usage":{"prompt_tokens":10,"completion_tokens":2}}"#;

#[tokio::test]
async fn request_mapping_options_errors_and_schema() {
    let server = ReplayServer::start(vec![
        Reply::json(200, PLAIN_ANSWER),
        Reply::json(200, PLAIN_ANSWER),
    ])
    .await;
    let provider = OpenAiProvider::new(config(&server, false).api_key(ApiKey::new("k")))
        .tool_choice(ToolChoice::None)
        .max_tokens_field(MaxTokensField::MaxCompletionTokens);
    let schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object", "properties": {"path": {"type": "string"}}});
    let broken = ToolCall {
        id: "c1".into(),
        name: "read".into(),
        arguments: Value::String("{\"path\": ".into()),
        provider_metadata: None,
    };
    let req = ChatRequest::new(
        "gpt-4.1",
        "sys",
        vec![
            Message::User {
                content: "go".into(),
            },
            Message::Assistant(AssistantMessage {
                content: Some("reading".into()),
                tool_calls: vec![broken],
            }),
            Message::Tool {
                tool_call_id: "c1".into(),
                name: "read".into(),
                content: "invalid arguments".into(),
                is_error: true,
            },
        ],
    )
    .with_tools(vec![tool("read", schema)])
    .with_max_tokens(Some(50))
    .with_temperature(Some(0.5));
    let r = provider.complete(req.clone()).await.unwrap();
    assert_eq!(r.message.content.as_deref(), Some("ok"));
    assert!(r.usage.cost_usd > 0.0);
    let sent = server.received()[0].json();
    let expected = json!({
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "reading", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{\"path\": "}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "Error: invalid arguments"}
        ],
        "tools": [{"type": "function", "function": {"name": "read", "description": "the read tool",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}],
        "tool_choice": "none",
        "max_completion_tokens": 50,
        "temperature": 0.5,
    });
    json_includes(&sent, &expected).unwrap();
    assert!(
        sent["tools"][0]["function"]["parameters"]
            .get("$schema")
            .is_none()
    );
    // parallel_tool_calls only when set (o-series models reject it).
    for absent in [
        "max_tokens",
        "stream",
        "stream_options",
        "parallel_tool_calls",
    ] {
        assert!(sent.get(absent).is_none(), "{absent} sent");
    }
    assert_eq!(
        server.received()[0].header("authorization"),
        Some("Bearer k")
    );

    // Without tools: no tool_choice, no parallel_tool_calls; no system prompt, no
    // system message.
    let bare = ChatRequest::new(
        "m",
        "",
        vec![Message::User {
            content: "hi".into(),
        }],
    );
    provider.complete(bare).await.unwrap();
    let sent = server.received()[1].json();
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "hi"}]));
    for absent in ["tools", "tool_choice", "parallel_tool_calls", "temperature"] {
        assert!(sent.get(absent).is_none(), "{absent} sent");
    }
}

async fn one_error(reply: Reply) -> george_core::Error {
    let server = ReplayServer::start(vec![reply]).await;
    let p = OpenAiProvider::new(config(&server, true));
    p.complete(ChatRequest::new("gpt-4o", "s", vec![]))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn error_envelopes() {
    let cases = [
        (
            Reply::json(
                401,
                r#"{"error":{"message":"Incorrect API key provided: sk-xx.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
            ),
            ErrorKind::Unauthenticated,
            "Incorrect API key provided",
            false,
        ),
        (
            Reply::json(
                400,
                r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            ),
            ErrorKind::ContextTooLong,
            "maximum context length",
            false,
        ),
        (
            Reply::json(
                429,
                r#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            ),
            ErrorKind::RateLimited,
            "exceeded your current quota",
            false,
        ),
        (
            Reply::json(503, r#"{"error":"server busy, please try again."}"#),
            ErrorKind::Overloaded,
            "server busy",
            true,
        ),
        (
            Reply::json(
                500,
                r#"{"error":{"message":"The server had an error.","type":"server_error","param":null,"code":null}}"#,
            ),
            ErrorKind::Backend,
            "server_error: The server had an error.",
            true,
        ),
    ];
    for (reply, kind, text, retryable) in cases {
        let status = reply.status;
        let e = one_error(reply).await;
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.message().contains(&format!("HTTP {status}")), "{e}");
        assert!(e.message().contains(text), "{e}");
        assert_eq!(e.is_retryable(), retryable, "{e}");
    }
}

fn gpt4o_parallel_reply() -> Reply {
    cassette(GPT4O_PARALLEL).replies().remove(0)
}

#[tokio::test]
async fn rate_limited_then_success_honours_retry_after() {
    let limited = Reply::json(
        429,
        r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
    )
    .header("retry-after", "1");
    let server = ReplayServer::start(vec![limited, gpt4o_parallel_reply()]).await;
    let p = Retrying::new(
        OpenAiProvider::new(config(&server, false)),
        RetryPolicy::default(),
    );
    let t = Instant::now();
    let r = p
        .complete(ChatRequest::new("gpt-4o-mini", "s", vec![]))
        .await
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(r.message.tool_calls.len(), 2);
    assert_eq!(server.received().len(), 2);
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay_ms: 10,
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn server_error_then_success() {
    let server = ReplayServer::start(vec![
        Reply::json(500, r#"{"error":{"message":"oops","type":"server_error"}}"#),
        gpt4o_parallel_reply(),
    ])
    .await;
    let p = Retrying::new(OpenAiProvider::new(config(&server, false)), quick_retries());
    let r = p
        .complete(ChatRequest::new("gpt-4o-mini", "s", vec![]))
        .await
        .unwrap();
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(server.received().len(), 2);
}

fn streamed_reply() -> Reply {
    cassette(GPT41_STREAMING).replies().remove(0)
}

#[tokio::test]
async fn connection_dropped_mid_stream_is_retryable_not_partial() {
    let reply = streamed_reply();
    let half = reply.body.len() / 2;
    let e = one_error(reply.dropped_after(half)).await;
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");

    // Through Retrying: the next attempt gets the whole answer.
    let server =
        ReplayServer::start(vec![streamed_reply().dropped_after(700), streamed_reply()]).await;
    let p = Retrying::new(OpenAiProvider::new(config(&server, true)), quick_retries());
    let r = p
        .complete(ChatRequest::new("gpt-4.1-mini", "s", vec![]))
        .await
        .unwrap();
    check_record_payload(&r);
}

#[tokio::test]
async fn stream_ending_early_is_cut_short() {
    let mut reply = streamed_reply();
    let text = String::from_utf8(reply.body.clone()).unwrap();
    // Cleanly closed after the tenth event: no finish_reason, no [DONE].
    let cut: String = text.split_inclusive("\n\n").take(10).collect();
    reply.body = cut.into_bytes();
    let e = one_error(reply).await;
    assert_eq!(e.kind(), ErrorKind::MalformedResponse, "{e}");
    assert!(e.message().contains("ended before"), "{e}");
}

#[tokio::test]
async fn malformed_json_is_malformed_response() {
    let server = ReplayServer::start(vec![Reply::json(200, r#"{"choices": [{"message": "#)]).await;
    let p = OpenAiProvider::new(config(&server, false));
    let e = p
        .complete(ChatRequest::new("gpt-4o", "s", vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MalformedResponse, "{e}");

    let e = one_error(Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body: b"data: {\"choices\": [\n\ndata: [DONE]\n\n".to_vec(),
        ..Reply::default()
    })
    .await;
    assert_eq!(e.kind(), ErrorKind::MalformedResponse, "{e}");
}

#[tokio::test]
async fn slow_server_hits_the_call_timeout() {
    let server =
        ReplayServer::start(vec![gpt4o_parallel_reply().delayed(Duration::from_secs(5))]).await;
    let p = OpenAiProvider::new(config(&server, false).timeout(Duration::from_millis(300)));
    let t = Instant::now();
    let e = p
        .complete(ChatRequest::new("gpt-4o-mini", "s", vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    assert!(t.elapsed() < Duration::from_secs(3));
}

/// Quirks of compatible servers in one stream: reasoning deltas, a constant index 0
/// for two calls, a delta without index, arguments that are not JSON, `stop` as the
/// finish reason after tool calls, usage in a last chunk with no choices, and no
/// `[DONE]`.
const QUIRKY_STREAM: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"Let me think\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Calling.\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"alpha\",\"arguments\":\"{\\\"v\\\":\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"\\\"é\\\"}\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"b\",\"type\":\"function\",\"function\":{\"name\":\"beta\",\"arguments\":\"{not json\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":20,\"prompt_tokens_details\":{\"cached_tokens\":80},\"completion_tokens_details\":{\"reasoning_tokens\":5}}}\n\n",
);

#[tokio::test]
async fn quirky_stream_whole_and_in_tiny_chunks() {
    let mut answers = Vec::new();
    for chunk in [None, Some(7), Some(1)] {
        let mut reply = Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: QUIRKY_STREAM.as_bytes().to_vec(),
            ..Reply::default()
        };
        if let Some(n) = chunk {
            reply = reply.chunked(n);
        }
        let server = ReplayServer::start(vec![reply]).await;
        let p = OpenAiProvider::new(config(&server, true));
        let r = p
            .complete(ChatRequest::new("gpt-4o", "s", vec![]))
            .await
            .unwrap();
        assert_eq!(r.message.content.as_deref(), Some("Calling."));
        let (ok, broken) = (json!({"v": "é"}), json!("{not json"));
        assert_eq!(calls(&r), vec![("a", "alpha", &ok), ("b", "beta", &broken)]);
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        assert_eq!(usage(&r), (20, 80, 0, 20, 5));
        assert!(r.usage.cost_usd > 0.0);
        answers.push(r);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
}

#[tokio::test]
async fn a_server_that_ignores_stream_answers_json() -> Result<()> {
    let server = ReplayServer::start(vec![Reply::json(200, PLAIN_ANSWER)]).await;
    let p = OpenAiProvider::new(config(&server, true));
    let r = p.complete(ChatRequest::new("m", "s", vec![])).await?;
    assert_eq!(r.message.content.as_deref(), Some("ok"));
    assert_eq!(server.received()[0].json()["stream"], true);
    Ok(())
}
