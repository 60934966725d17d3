//! Helpers of `anthropic_replay.rs`: the recordings, a provider over loopback, the
//! comparison of what was sent with what the real client sent, and hand-made events.

use std::sync::Arc;
use std::time::Duration;

use george_core::provider::{ChatRequest, ChatResponse, Message, ToolCall};
use george_core::tool::ToolDefinition;
use george_llm::anthropic::{ANTHROPIC_VERSION, AnthropicProvider};
use george_llm::replay::{Cassette, Exchange, Received, ReplayServer, Reply, json_includes};
use george_llm::{ApiKey, ProviderConfig, ReqwestTransport, RetryPolicy};
use serde_json::{Value, json};

/// The key the tests send.
pub const KEY: &str = "sk-ant-test-key";

/// A recording of `fixtures/llm-wire/anthropic/`.
pub fn cassette(name: &str) -> Cassette {
    let path = format!(
        "{}/tests/fixtures/llm-wire/anthropic/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    Cassette::load(path).expect("recording")
}

/// A configuration for `server` over reqwest.
pub fn config(server: &ReplayServer, stream: bool) -> ProviderConfig {
    let transport = ReqwestTransport::new(Duration::from_secs(5)).expect("client");
    ProviderConfig::new(server.base_url(), Arc::new(transport))
        .api_key(ApiKey::new(KEY))
        .stream(stream)
}

/// The adapter for `server`, default caching.
pub fn provider(server: &ReplayServer, stream: bool) -> AnthropicProvider {
    AnthropicProvider::new(config(server, stream))
}

/// The recorded request body as JSON.
pub fn recorded_body(e: &Exchange) -> Value {
    serde_json::from_str(&e.when.body).expect("recorded body is JSON")
}

/// The recorded body, minus what George cannot or need not send (see the module docs).
pub fn expected_subset(e: &Exchange) -> Value {
    let mut body = recorded_body(e);
    if let Some(o) = body.as_object_mut() {
        o.remove("tool_choice");
    }
    body
}

/// Path, query, headers and body of `sent` against the recorded request.
pub fn check_sent(sent: &Received, e: &Exchange) {
    assert_eq!(sent.method, e.when.method);
    assert_eq!(sent.path, e.when.path);
    assert!(sent.query.is_empty() && e.when.query_param.is_empty());
    // `accept` only when the recording asked for events: the recorded client sent
    // `*/*` for JSON, this adapter sends `application/json`.
    for h in &e.when.header {
        let compared = h.name == "anthropic-version"
            || h.name == "content-type"
            || (h.name == "accept" && h.value == "text/event-stream");
        if compared {
            assert_eq!(sent.header(&h.name), Some(h.value.as_str()), "{}", h.name);
        }
    }
    assert_eq!(sent.header("anthropic-version"), Some(ANTHROPIC_VERSION));
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    let body = sent.json();
    if let Err(diff) = json_includes(&body, &expected_subset(e)) {
        panic!("sent body differs from the recording at {diff}\nsent: {body}");
    }
    let recorded_stream = recorded_body(e).get("stream").is_some();
    assert_eq!(body.get("stream").is_some(), recorded_stream, "stream flag");
}

/// The request for the first turn of a recording: system, first user text, tools,
/// max_tokens and temperature read from the recorded body.
pub fn first_request(e: &Exchange) -> ChatRequest {
    let b = recorded_body(e);
    let system = b["system"][0]["text"].as_str().unwrap_or("").to_string();
    let user = b["messages"][0]["content"][0]["text"]
        .as_str()
        .expect("user text")
        .to_string();
    let tools: Vec<ToolDefinition> = b["tools"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    ToolDefinition::new(
                        t["name"].as_str().expect("name"),
                        t["description"].as_str().expect("description"),
                        t["input_schema"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ChatRequest::new(
        b["model"].as_str().expect("model"),
        system,
        vec![Message::User { content: user }],
    )
    .with_tools(tools)
    .with_max_tokens(b["max_tokens"].as_u64().map(|n| n as u32))
    .with_temperature(b["temperature"].as_f64().map(|t| t as f32))
}

/// A tool call.
pub fn call(id: &str, name: &str, arguments: Value) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments,
        provider_metadata: None,
    }
}

/// Checks the usage counts and that a cost was computed.
pub fn check_usage(r: &ChatResponse, input: u64, read: u64, write: u64, output: u64) {
    let u = &r.usage;
    assert_eq!(
        (
            u.input_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
            u.output_tokens,
            u.reasoning_tokens
        ),
        (input, read, write, output, 0)
    );
    assert!(u.cost_usd > 0.0, "claude-sonnet-4-6 is priced");
}

/// The recorded replies of the calculator tool loop.
pub fn tool_loop_replies(stream: bool) -> Vec<Reply> {
    let name = if stream {
        "messages_sessions/sequential_tool_calls_streaming"
    } else {
        "messages_sessions/sequential_tool_calls_nonstreaming"
    };
    cassette(name).replies()
}

/// The calculator tool loop's first request.
pub fn first_turn() -> ChatRequest {
    first_request(&cassette("messages_sessions/sequential_tool_calls_nonstreaming").exchanges[0])
}

/// A retry policy with short backoffs.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay_ms: 10,
        max_delay_ms: 50,
        ..RetryPolicy::default()
    }
}

/// A 200 event stream with `body`.
pub fn sse_reply(body: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body: body.as_bytes().to_vec(),
        ..Reply::default()
    }
}

/// One event, named after its `type`.
pub fn event(data: Value) -> String {
    format!(
        "event: {}\ndata: {data}\n\n",
        data["type"].as_str().unwrap_or("")
    )
}

/// A `message_start` with input 10, cache read 5, cache write 2.
pub fn message_start() -> String {
    event(
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "content": [], "model": "claude-sonnet-4-6",
        "usage": {"input_tokens": 10, "output_tokens": 1,
                  "cache_read_input_tokens": 5, "cache_creation_input_tokens": 2}}}),
    )
}
